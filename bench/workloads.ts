// The benchmark rows. To add one, append a `Workload` (or turn a `Pending` into one) — see
// bench/types.ts for the contract and bench/README.md for the method.
import * as D from '../node.js';
import type { Backend, Tensor } from '../node.js';
import type { Entry, HostTensor, Inputs, RunMode, TF, TfTensor, Workload } from './types.js';

// ---------------------------------------------------------------- shared input helpers

/** Deterministic PRNG (mulberry32) so every run and both libraries see the same inputs. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform values in [lo, hi). */
export function randHost(shape: number[], seed: number, lo = -1, hi = 1): HostTensor {
  const n = shape.reduce((p, d) => p * d, 1);
  const r = rng(seed);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = lo + (hi - lo) * r();
  return { data, shape, dtype: 'float32' };
}

export function oneHotHost(rows: number, classes: number, seed: number): HostTensor {
  const r = rng(seed);
  const data = new Float32Array(rows * classes);
  for (let i = 0; i < rows; i++) data[i * classes + Math.floor(r() * classes)] = 1;
  return { data, shape: [rows, classes], dtype: 'float32' };
}

export function toDubito(h: HostTensor, backend: Backend): Tensor {
  return D.tensor(h.data, h.shape, { dtype: h.dtype, backend });
}

export function toTf(tf: TF, h: HostTensor): TfTensor {
  return tf.tensor(h.data, h.shape, h.dtype);
}

const ALL: readonly RunMode[] = ['quick', 'full'];
const FULL: readonly RunMode[] = ['full'];
const QUICK: readonly RunMode[] = ['quick'];

// ---------------------------------------------------------------- matmul

function matmulWorkload(M: number, K: number, N: number, opts: { batch?: number; modes: readonly RunMode[]; cpuRef?: boolean; name?: string }): Workload {
  const batch = opts.batch ?? 1;
  const lead = batch > 1 ? [batch] : [];
  const name = opts.name ?? (M === K && K === N && batch === 1 ? `matmul ${M}²` : `matmul ${batch > 1 ? `${batch}×` : ''}${M}×${K}·${K}×${N}`);
  return {
    name,
    group: 'matmul',
    flops: 2 * batch * M * N * K,
    modes: opts.modes,
    cpuRef: opts.cpuRef,
    inputs: () => ({ a: randHost([...lead, M, K], 1 + M + 7 * K), b: randHost([...lead, K, N], 2 + N + 13 * K) }),
    setupDubito: (x, be) => ({ a: toDubito(x.a, be), b: toDubito(x.b, be) }),
    runDubito: (s: { a: Tensor; b: Tensor }) => D.matmul(s.a, s.b),
    setupTf: (tf, x) => ({ a: toTf(tf, x.a), b: toTf(tf, x.b) }),
    runTf: (tf, s: { a: TfTensor; b: TfTensor }) => tf.matMul(s.a, s.b),
    // f32 accumulation over K terms; the two libraries sum in different orders.
    check: { rtol: 1e-4 },
  };
}

// ---------------------------------------------------------------- dispatch overhead

const CHAIN_OPS = 1000;

/** 1,000 tiny ops on a [64] tensor, cycling x·1.0001 → +0.001 → relu. */
const elementwiseChain: Workload = {
  name: `chain ${CHAIN_OPS} ops [64]: ·1.0001 +0.001 relu`,
  group: 'overhead',
  ops: CHAIN_OPS,
  modes: ALL,
  cpuRef: true,
  inputs: () => ({ x: randHost([64], 11) }),
  setupDubito: (x, be) => ({ x: toDubito(x.x, be) }),
  runDubito: (s: { x: Tensor }) => {
    let x = s.x;
    for (let k = 0; k < CHAIN_OPS; k++) x = k % 3 === 0 ? x.mul(1.0001) : k % 3 === 1 ? x.add(0.001) : x.relu();
    return x;
  },
  setupTf: (tf, x) => ({ x: toTf(tf, x.x) }),
  runTf: (tf, s: { x: TfTensor }) => {
    let x = s.x;
    for (let k = 0; k < CHAIN_OPS; k++) x = k % 3 === 0 ? tf.mul(x, 1.0001) : k % 3 === 1 ? tf.add(x, 0.001) : tf.relu(x);
    return x;
  },
  check: { rtol: 1e-4 },
};

const REDUCE_ITERS = 50;

/** 50 × (mean, max, logsumexp over a [64] tensor, then x = 0.5·x + 0.1·(mean + max − lse)). */
const reductionChain: Workload = {
  name: `reduce chain [64]: ${REDUCE_ITERS}× mean/max/logsumexp`,
  group: 'overhead',
  modes: ALL,
  cpuRef: true,
  inputs: () => ({ x: randHost([64], 12, -3, 3) }),
  setupDubito: (x, be) => ({ x: toDubito(x.x, be) }),
  runDubito: (s: { x: Tensor }) => {
    let x = s.x;
    for (let i = 0; i < REDUCE_ITERS; i++) {
      const c = x.mean().add(x.max()).sub(x.logsumexp());
      x = x.mul(0.5).add(c.mul(0.1));
    }
    return x;
  },
  setupTf: (tf, x) => ({ x: toTf(tf, x.x) }),
  runTf: (tf, s: { x: TfTensor }) => {
    let x = s.x;
    for (let i = 0; i < REDUCE_ITERS; i++) {
      const c = tf.sub(tf.add(tf.mean(x), tf.max(x)), tf.logSumExp(x));
      x = tf.add(tf.mul(x, 0.5), tf.mul(c, 0.1));
    }
    return x;
  },
  check: { rtol: 1e-4 },
};

// ---------------------------------------------------------------- training pieces

/** Mean softmax cross-entropy of [512, 10] logits against one-hot labels: loss and d loss/d logits. */
const softmaxCrossEntropy: Workload = {
  name: 'softmax CE fwd+bwd [512,10]',
  group: 'training',
  modes: ALL,
  cpuRef: true,
  inputs: () => ({ logits: randHost([512, 10], 21, -4, 4), labels: oneHotHost(512, 10, 22) }),
  setupDubito: (x, be) => ({ logits: toDubito(x.logits, be), labels: toDubito(x.labels, be) }),
  runDubito: (s: { logits: Tensor; labels: Tensor }) => {
    const lossFn = (z: Tensor) => D.mean(D.neg(D.sum(D.mul(s.labels, D.logSoftmax(z, -1)), -1)));
    const { value, grads } = D.valueAndGrad(lossFn)(s.logits);
    return [value, grads[0]];
  },
  setupTf: (tf, x) => ({ logits: toTf(tf, x.logits), labels: toTf(tf, x.labels) }),
  runTf: (tf, s: { logits: TfTensor; labels: TfTensor }) => {
    const { value, grad } = tf.valueAndGrad((z: TfTensor) => tf.losses.softmaxCrossEntropy(s.labels, z))(s.logits);
    return [value, grad];
  },
  check: { rtol: 1e-4 },
};

// ---------------------------------------------------------------- conv2d (dubito NCHW/OIHW, TF.js NHWC/HWIO)

/** Host-side axis permutation of a row-major array (layout conversion for TF.js; never timed). */
export function permuteHost(data: Float32Array, shape: readonly number[], perm: readonly number[]): Float32Array {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]);
  const inStrides = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) inStrides[i] = inStrides[i + 1] * shape[i + 1];
  const out = new Float32Array(data.length);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let d = 0; d < rank; d++) src += idx[d] * inStrides[perm[d]];
    out[o] = data[src];
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d] < outShape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

const NCHW_TO_NHWC = [0, 2, 3, 1];
const OIHW_TO_HWIO = [2, 3, 1, 0];
const NHWC_TO_NCHW = [0, 3, 1, 2];
const HWIO_TO_OIHW = [3, 2, 0, 1];

function nhwc(tf: TF, h: HostTensor): TfTensor {
  const [n, c, hh, ww] = h.shape;
  return tf.tensor4d(permuteHost(h.data as Float32Array, h.shape, NCHW_TO_NHWC), [n, hh, ww, c]);
}
function hwio(tf: TF, h: HostTensor): TfTensor {
  const [o, i, kh, kw] = h.shape;
  return tf.tensor4d(permuteHost(h.data as Float32Array, h.shape, OIHW_TO_HWIO), [kh, kw, i, o]);
}
/** NHWC shape of a dubito NCHW shape. */
const nhwcShape = (s: readonly number[]) => [s[0], s[2], s[3], s[1]];
const hwioShape = (s: readonly number[]) => [s[2], s[3], s[1], s[0]];
const fromNhwc = (v: Float32Array, nchw: readonly number[]) => permuteHost(v, nhwcShape(nchw), NHWC_TO_NCHW);
const fromHwio = (v: Float32Array, oihw: readonly number[]) => permuteHost(v, hwioShape(oihw), HWIO_TO_OIHW);

/** 2·N·O·Ho·Wo·(C/groups)·kH·kW. */
function convFlops(x: readonly number[], w: readonly number[], out: readonly number[]): number {
  return 2 * out[0] * out[1] * out[2] * out[3] * w[1] * w[2] * w[3];
}

// LeNet-5 convolutions at batch 64: conv1 1→6 5×5 on 28×28, conv2 6→16 5×5 on 12×12 (valid).
const LENET = {
  x1: [64, 1, 28, 28], w1: [6, 1, 5, 5], y1: [64, 6, 24, 24],
  x2: [64, 6, 12, 12], w2: [16, 6, 5, 5], y2: [64, 16, 8, 8],
};
const LENET_FLOPS = convFlops(LENET.x1, LENET.w1, LENET.y1) + convFlops(LENET.x2, LENET.w2, LENET.y2);

const lenetInputs = (): Inputs => ({
  x1: randHost(LENET.x1, 31, 0, 1), w1: randHost(LENET.w1, 32, -0.4, 0.4), b1: randHost([6], 33, -0.1, 0.1),
  x2: randHost(LENET.x2, 34, 0, 1), w2: randHost(LENET.w2, 35, -0.16, 0.16), b2: randHost([16], 36, -0.1, 0.1),
  g1: randHost(LENET.y1, 37), g2: randHost(LENET.y2, 38),
});

const lenetConvFwd: Workload = {
  name: 'conv2d fwd LeNet b64 (1→6, 6→16, 5×5)',
  group: 'conv',
  flops: LENET_FLOPS,
  modes: ALL,
  cpuRef: true,
  inputs: lenetInputs,
  setupDubito: (x, be) => ({ x1: toDubito(x.x1, be), w1: toDubito(x.w1, be), b1: toDubito(x.b1, be), x2: toDubito(x.x2, be), w2: toDubito(x.w2, be), b2: toDubito(x.b2, be) }),
  runDubito: (s: Record<string, Tensor>) => [D.conv2d(s.x1, s.w1, s.b1), D.conv2d(s.x2, s.w2, s.b2)],
  setupTf: (tf, x) => ({ x1: nhwc(tf, x.x1), w1: hwio(tf, x.w1), b1: toTf(tf, x.b1), x2: nhwc(tf, x.x2), w2: hwio(tf, x.w2), b2: toTf(tf, x.b2) }),
  runTf: (tf, s: Record<string, TfTensor>) => [
    tf.fused.conv2d({ x: s.x1 as never, filter: s.w1 as never, strides: 1, pad: 'valid', bias: s.b1 }),
    tf.fused.conv2d({ x: s.x2 as never, filter: s.w2 as never, strides: 1, pad: 'valid', bias: s.b2 }),
  ],
  tfToDubitoLayout: ([y1, y2]) => [fromNhwc(y1, LENET.y1), fromNhwc(y2, LENET.y2)],
  check: { rtol: 1e-4 },
};

/** d/dx and d/dw of Σ conv2d(x, w)·g for both LeNet convolutions (forward included). */
const lenetConvBwd: Workload = {
  name: 'conv2d fwd+bwd LeNet b64 (dx, dw)',
  group: 'conv',
  flops: 3 * LENET_FLOPS,
  modes: ALL,
  cpuRef: true,
  inputs: lenetInputs,
  setupDubito: (x, be) => ({ x1: toDubito(x.x1, be), w1: toDubito(x.w1, be), g1: toDubito(x.g1, be), x2: toDubito(x.x2, be), w2: toDubito(x.w2, be), g2: toDubito(x.g2, be) }),
  runDubito: (s: Record<string, Tensor>) => [
    ...D.grads((x: Tensor, w: Tensor) => D.sum(D.mul(D.conv2d(x, w), s.g1)), [0, 1])(s.x1, s.w1),
    ...D.grads((x: Tensor, w: Tensor) => D.sum(D.mul(D.conv2d(x, w), s.g2)), [0, 1])(s.x2, s.w2),
  ],
  setupTf: (tf, x) => ({
    x1: nhwc(tf, x.x1), w1: hwio(tf, x.w1), g1: nhwc(tf, x.g1),
    x2: nhwc(tf, x.x2), w2: hwio(tf, x.w2), g2: nhwc(tf, x.g2),
  }),
  runTf: (tf, s: Record<string, TfTensor>) => {
    const layer = (x: TfTensor, w: TfTensor, g: TfTensor) =>
      tf.grads((a: TfTensor, b: TfTensor) => tf.sum(tf.mul(tf.conv2d(a as never, b as never, 1, 'valid'), g)))([x, w]);
    return [...layer(s.x1, s.w1, s.g1), ...layer(s.x2, s.w2, s.g2)];
  },
  tfToDubitoLayout: ([dx1, dw1, dx2, dw2]) => [fromNhwc(dx1, LENET.x1), fromHwio(dw1, LENET.w1), fromNhwc(dx2, LENET.x2), fromHwio(dw2, LENET.w2)],
  check: { rtol: 1e-4 },
};

// ResNet basic block (BN folded into the conv bias, as at inference): 64 channels, 3×3, pad 1.
// y = relu(conv(relu(conv(x, w1) + b1), w2) + b2 + x)
const RES = { x: [2, 64, 28, 28], w: [64, 64, 3, 3] };
const RES_FLOPS = 2 * convFlops(RES.x, RES.w, RES.x);

const resInputs = (): Inputs => ({
  x: randHost(RES.x, 41), w1: randHost(RES.w, 42, -0.06, 0.06), b1: randHost([64], 43, -0.1, 0.1),
  w2: randHost(RES.w, 44, -0.06, 0.06), b2: randHost([64], 45, -0.1, 0.1), g: randHost(RES.x, 46),
});
const resDubito = (x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) =>
  D.relu(D.add(D.conv2d(D.conv2dBiasAct(x, w1, b1, { padding: 1 }, 'relu'), w2, b2, { padding: 1 }), x));
const resTf = (tf: TF, x: TfTensor, w1: TfTensor, b1: TfTensor, w2: TfTensor, b2: TfTensor) => {
  const h = tf.fused.conv2d({ x: x as never, filter: w1 as never, strides: 1, pad: 'same', bias: b1, activation: 'relu' });
  return tf.relu(tf.add(tf.fused.conv2d({ x: h, filter: w2 as never, strides: 1, pad: 'same', bias: b2 }), x));
};
const resSetupDubito = (x: Inputs, be: Backend) => ({ x: toDubito(x.x, be), w1: toDubito(x.w1, be), b1: toDubito(x.b1, be), w2: toDubito(x.w2, be), b2: toDubito(x.b2, be), g: toDubito(x.g, be) });
const resSetupTf = (tf: TF, x: Inputs) => ({ x: nhwc(tf, x.x), w1: hwio(tf, x.w1), b1: toTf(tf, x.b1), w2: hwio(tf, x.w2), b2: toTf(tf, x.b2), g: nhwc(tf, x.g) });

const resBlockFwd: Workload = {
  name: 'ResNet 3×3 block fwd [2,64,28,28]',
  group: 'conv',
  flops: RES_FLOPS,
  modes: FULL,
  inputs: resInputs,
  setupDubito: resSetupDubito,
  runDubito: (s: Record<string, Tensor>) => resDubito(s.x, s.w1, s.b1, s.w2, s.b2),
  setupTf: resSetupTf,
  runTf: (tf, s: Record<string, TfTensor>) => resTf(tf, s.x, s.w1, s.b1, s.w2, s.b2),
  tfToDubitoLayout: ([y]) => [fromNhwc(y, RES.x)],
  check: { rtol: 1e-4 },
};

/** d/dx, d/dw1, d/dw2 of Σ block(x)·g (forward included). */
const resBlockBwd: Workload = {
  name: 'ResNet 3×3 block fwd+bwd (dx, dw1, dw2)',
  group: 'conv',
  flops: 3 * RES_FLOPS,
  modes: FULL,
  inputs: resInputs,
  setupDubito: resSetupDubito,
  runDubito: (s: Record<string, Tensor>) =>
    D.grads((x: Tensor, w1: Tensor, w2: Tensor) => D.sum(D.mul(resDubito(x, w1, s.b1, w2, s.b2), s.g)), [0, 1, 2])(s.x, s.w1, s.w2),
  setupTf: resSetupTf,
  runTf: (tf, s: Record<string, TfTensor>) =>
    tf.grads((x: TfTensor, w1: TfTensor, w2: TfTensor) => tf.sum(tf.mul(resTf(tf, x, w1, s.b1, w2, s.b2), s.g)))([s.x, s.w1, s.w2]),
  tfToDubitoLayout: ([dx, dw1, dw2]) => [fromNhwc(dx, RES.x), fromHwio(dw1, RES.w), fromHwio(dw2, RES.w)],
  check: { rtol: 1e-4 },
};

// ---------------------------------------------------------------- the list

/**
 * Rows in print order. Rows marked Pending print "not yet available" until the dubito ops they
 * need exist; replace them with real `Workload`s then (never with made-up numbers).
 */
export const workloads: Entry[] = [
  matmulWorkload(256, 256, 256, { modes: ALL, cpuRef: true }),
  matmulWorkload(512, 512, 512, { modes: ALL, cpuRef: true }),
  matmulWorkload(1024, 1024, 1024, { modes: ALL }),
  matmulWorkload(2048, 2048, 2048, { modes: FULL }),
  matmulWorkload(4096, 64, 4096, { modes: FULL }),
  matmulWorkload(2048, 64, 2048, { modes: QUICK }),
  matmulWorkload(64, 64, 64, { batch: 8, modes: ALL, cpuRef: true }),
  elementwiseChain,
  reductionChain,
  softmaxCrossEntropy,
  lenetConvFwd,
  lenetConvBwd,
  resBlockFwd,
  resBlockBwd,
  // TODO(nn): conv2d, pooling and nn/ (layers, optim) have landed; these rows are not written yet.
  { name: 'LeNet training step b64', group: 'training', modes: ALL, todo: 'row not written yet (needs the nn/ LeNet + optimiser wired up here)' },
  { name: 'MC dropout T=50 × 2000 MNIST', group: 'uncertainty', modes: ALL, todo: 'needs the LeNet model (conv2d, nn/) and batched MC dropout (tfjs: loop of T, dubito: batched)' },
  { name: 'per-sample gradient norms', group: 'uncertainty', modes: ALL, todo: 'needs a per-sample gradient API (uncertainty/ or explain/)' },
];
