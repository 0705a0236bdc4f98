// The benchmark rows. To add one, append a `Workload` (or turn a `Pending` into one) — see
// bench/types.ts for the contract and bench/README.md for the method.
import * as D from '../node.js';
import type { Backend, Tensor } from '../node.js';
import type { Entry, HostArray, HostTensor, Inputs, RunMode, TF, TfTensor, Workload } from './types.js';

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

function chainDubito(x0: Tensor): Tensor {
  let x = x0;
  for (let k = 0; k < CHAIN_OPS; k++) x = k % 3 === 0 ? x.mul(1.0001) : k % 3 === 1 ? x.add(0.001) : x.relu();
  return x;
}

/**
 * The same chain recorded once with `recordReplay` and replayed: the recorded dispatches are
 * re-encoded with their pipelines and bind groups, the JS op graph does not run again.
 */
const elementwiseChainReplayed: Workload<{ x: Tensor; rec: D.Replayable }> = {
  ...elementwiseChain,
  name: `chain ${CHAIN_OPS} ops [64] replayed (recordReplay)`,
  cpuRef: false,
  setupDubito: (x, be) => {
    const t = toDubito(x.x, be);
    return { x: t, rec: D.recordReplay(chainDubito, [t]) };
  },
  runDubito: (s) => s.rec.run(s.x),
  teardownDubito: (s) => s.rec.dispose(),
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

// ---------------------------------------------------------------- LeNet-5 training and MC dropout

// One set of LeNet-5 weights (PyTorch-style init bounds), loaded into both libraries. dubito
// layouts: conv OIHW, linear [out, in]; TF.js: conv HWIO, dense kernels [in, out], and its
// flatten runs over NHWC (h, w, c) where dubito's runs over NCHW (c, h, w), which only permutes
// the rows of the first dense kernel.
const LENET_PARAMS: [name: string, shape: number[], bound: number][] = [
  ['features.0.weight', [6, 1, 5, 5], 1 / 5], ['features.0.bias', [6], 1 / 5],
  ['features.3.weight', [16, 6, 5, 5], 1 / Math.sqrt(150)], ['features.3.bias', [16], 1 / Math.sqrt(150)],
  ['classifier.0.weight', [120, 400], 1 / 20], ['classifier.0.bias', [120], 1 / 20],
  ['classifier.2.weight', [84, 120], 1 / Math.sqrt(120)], ['classifier.2.bias', [84], 1 / Math.sqrt(120)],
  ['classifier.5.weight', [10, 84], 1 / Math.sqrt(84)], ['classifier.5.bias', [10], 1 / Math.sqrt(84)],
];

function lenetWeights(seed: number): Inputs {
  const w: Inputs = {};
  LENET_PARAMS.forEach(([name, shape, b], i) => (w[name] = randHost(shape, seed + i, -b, b)));
  return w;
}

/** Host [out, in] → [in, out]. */
function transposeHost(h: HostTensor): Float32Array {
  const [o, i] = h.shape;
  return permuteHost(h.data as Float32Array, [o, i], [1, 0]);
}

/** dubito fc1 weight [120, 400] (inputs in c·25 + h·5 + w order) → TF.js kernel [400, 120] with rows in (h·5 + w)·16 + c order. */
function fc1ToTf(h: HostTensor): Float32Array {
  const W = h.data as Float32Array;
  const out = new Float32Array(400 * 120);
  for (let o = 0; o < 120; o++) {
    for (let c = 0; c < 16; c++) for (let hw = 0; hw < 25; hw++) out[(hw * 16 + c) * 120 + o] = W[o * 400 + c * 25 + hw];
  }
  return out;
}

function loadLenetDubito(model: D.LeNet5, x: Inputs, be: Backend): void {
  const params = new Map(model.namedParameters());
  for (const [name] of LENET_PARAMS) {
    const p = params.get(name);
    if (!p) throw new Error(`LeNet5 has no parameter ${name}`);
    p.assign(toDubito(x[name], be));
  }
}

interface TfLenet {
  vars: TfTensor[];
  forward: (x: TfTensor, dropout: number) => TfTensor;
}

function tfLenet(tf: TF, x: Inputs): TfLenet {
  const v = (data: Float32Array, shape: number[]) => tf.variable(tf.tensor(data, shape));
  const c1 = v(permuteHost(x['features.0.weight'].data as Float32Array, [6, 1, 5, 5], OIHW_TO_HWIO), [5, 5, 1, 6]);
  const b1 = v(x['features.0.bias'].data as Float32Array, [6]);
  const c2 = v(permuteHost(x['features.3.weight'].data as Float32Array, [16, 6, 5, 5], OIHW_TO_HWIO), [5, 5, 6, 16]);
  const b2 = v(x['features.3.bias'].data as Float32Array, [16]);
  const k1 = v(fc1ToTf(x['classifier.0.weight']), [400, 120]);
  const d1 = v(x['classifier.0.bias'].data as Float32Array, [120]);
  const k2 = v(transposeHost(x['classifier.2.weight']), [120, 84]);
  const d2 = v(x['classifier.2.bias'].data as Float32Array, [84]);
  const k3 = v(transposeHost(x['classifier.5.weight']), [84, 10]);
  const d3 = v(x['classifier.5.bias'].data as Float32Array, [10]);
  const forward = (input: TfTensor, dropout: number): TfTensor => {
    // Same layer sequence as LeNet5 (bias + ReLU fused into conv/matmul, as tf.layers does).
    let h = tf.fused.conv2d({ x: input as never, filter: c1 as never, strides: 1, pad: 'same', bias: b1, activation: 'relu' }) as TfTensor;
    h = tf.maxPool(h as never, 2, 2, 'valid');
    h = tf.fused.conv2d({ x: h as never, filter: c2 as never, strides: 1, pad: 'valid', bias: b2, activation: 'relu' });
    h = tf.maxPool(h as never, 2, 2, 'valid');
    h = tf.reshape(h, [input.shape[0], 400]);
    h = tf.fused.matMul({ a: h as never, b: k1 as never, bias: d1, activation: 'relu' });
    h = tf.fused.matMul({ a: h as never, b: k2 as never, bias: d2, activation: 'relu' });
    if (dropout > 0) h = tf.dropout(h, dropout);
    return tf.fused.matMul({ a: h as never, b: k3 as never, bias: d3 });
  };
  return { vars: [c1, b1, c2, b2, k1, d1, k2, d2, k3, d3], forward };
}

const TRAIN_B = 64;
const TRAIN_LR = 1e-3;

interface LenetTrainDubito { model: D.LeNet5; opt: D.Adam; x: Tensor; y: Tensor }
interface LenetTrainTf { vars: TfTensor[]; x: TfTensor; y: TfTensor; step: () => TfTensor; loss: () => TfTensor; disposeOpt: () => void }

/**
 * One LeNet-5 training step at batch 64 (dropout off so that both sides compute the same thing):
 * forward, mean softmax cross-entropy, backward, Adam(lr 1e-3, β (0.9, 0.999), eps 1e-8) update
 * of all 10 parameters. Output: the step's loss. Both start from the same weights; after the
 * first (checked) step, the loss on the same batch and some updated weights are compared too.
 */
const lenetTrainStep: Workload<LenetTrainDubito, LenetTrainTf> = {
  name: 'LeNet training step b64 (Adam, no dropout)',
  group: 'training',
  modes: ALL,
  inputs: () => {
    const r = rng(52);
    const labels = new Int32Array(TRAIN_B);
    const onehot = new Float32Array(TRAIN_B * 10);
    for (let i = 0; i < TRAIN_B; i++) {
      labels[i] = Math.floor(r() * 10);
      onehot[i * 10 + labels[i]] = 1;
    }
    return {
      ...lenetWeights(60),
      x: randHost([TRAIN_B, 1, 28, 28], 51, 0, 1),
      labels: { data: labels, shape: [TRAIN_B], dtype: 'int32' },
      onehot: { data: onehot, shape: [TRAIN_B, 10], dtype: 'float32' },
    };
  },
  setupDubito: (x, be) => {
    const model = new D.LeNet5({ dropout: 0 });
    loadLenetDubito(model, x, be);
    const opt = new D.Adam(model.parameters(), { lr: TRAIN_LR, betas: [0.9, 0.999], eps: 1e-8 });
    return { model, opt, x: toDubito(x.x, be), y: toDubito(x.labels, be) };
  },
  runDubito: (s) => {
    s.opt.zeroGrad();
    const loss = D.crossEntropy(s.model.forward(s.x), s.y);
    loss.backward();
    s.opt.step();
    return loss.detach();
  },
  teardownDubito: (s) => {
    s.opt.zeroGrad();
    s.opt.dispose();
    s.model.dispose();
  },
  setupTf: (tf, x) => {
    const net = tfLenet(tf, x);
    const input = nhwc(tf, x.x);
    const y = toTf(tf, x.onehot);
    const opt = tf.train.adam(TRAIN_LR, 0.9, 0.999, 1e-8);
    const loss = () => tf.losses.softmaxCrossEntropy(y, net.forward(input, 0));
    return {
      vars: net.vars,
      x: input,
      y,
      step: () => opt.minimize(loss as never, true, net.vars as never) as TfTensor,
      loss,
      disposeOpt: () => opt.dispose(),
    };
  },
  runTf: (_tf, s) => s.step(),
  teardownTf: (_tf, s) => s.disposeOpt(),
  check: { rtol: 1e-4 },
  verify: [
    {
      name: 'loss after step 1',
      rtol: 1e-4,
      dubito: (s) => D.noGrad(() => D.crossEntropy(s.model.forward(s.x), s.y)),
      tf: (_tf, s) => s.loss(),
    },
    {
      // First Adam step: Δw ≈ −lr·sign(g); the last layer's gradients are far from 0, so no sign flips.
      name: 'fc3 W,b after step 1',
      rtol: 1e-4,
      dubito: (s) => [s.model.classifier.children()[5] as D.Linear].flatMap((l) => [l.weight.detach(), l.bias!.detach()]),
      tf: (tf, s) => [tf.clone(s.vars[8]), tf.clone(s.vars[9])],
      tfToDubitoLayout: ([k, b]) => [permuteHost(k, [84, 10], [1, 0]), b],
    },
  ],
};

interface LenetReplayDubito extends LenetTrainDubito { compiled: D.CompiledStep }

/**
 * The same training step compiled with `Optimizer.compile`: the row's first run (the checked
 * step) is eager, the second (warm-up) is recorded, the timed reps replay the recorded
 * forward/backward/Adam dispatches (parameters and moments updated in place, Adam's bias
 * corrections re-written per step) without running the JS op graph.
 */
const lenetTrainStepReplayed: Workload<LenetReplayDubito, LenetTrainTf> = {
  ...lenetTrainStep,
  name: 'LeNet training step b64 (Adam, no dropout, replayed)',
  setupDubito: (x, be) => {
    const s = lenetTrainStep.setupDubito(x, be);
    return { ...s, compiled: s.opt.compile((a, b) => D.crossEntropy(s.model.forward(a), b), { model: s.model }) };
  },
  runDubito: (s) => s.compiled.step(s.x, s.y),
  teardownDubito: (s) => {
    s.compiled.dispose();
    lenetTrainStep.teardownDubito!(s);
  },
};

// Ensemble training: M = 5 LeNet-5 members, each its own weights and its own batch of 64, one
// Adam step each. Three ways: dubito's stacked trainer (ONE forward/backward/optimiser pass for
// all members: grouped convs, batched matmuls, one fused Adam kernel per stacked parameter),
// dubito's 5 sequential steps, and TF.js's 5 sequential steps (the TF.js side is the same in both
// rows). Output: the 5 members' losses of the step.
const ENS_M = 5;

function ensembleInputs(): Inputs {
  const x: Inputs = {};
  for (let m = 0; m < ENS_M; m++) {
    const r = rng(152 + m);
    const labels = new Int32Array(TRAIN_B);
    const onehot = new Float32Array(TRAIN_B * 10);
    for (let i = 0; i < TRAIN_B; i++) {
      labels[i] = Math.floor(r() * 10);
      onehot[i * 10 + labels[i]] = 1;
    }
    for (const [k, v] of Object.entries(lenetWeights(160 + 20 * m))) x[`m${m}.${k}`] = v;
    x[`m${m}.x`] = randHost([TRAIN_B, 1, 28, 28], 151 + m, 0, 1);
    x[`m${m}.labels`] = { data: labels, shape: [TRAIN_B], dtype: 'int32' };
    x[`m${m}.onehot`] = { data: onehot, shape: [TRAIN_B, 10], dtype: 'float32' };
  }
  return x;
}

/** Member m's entries of the ensemble inputs, without the prefix. */
function memberInputs(x: Inputs, m: number): Inputs {
  const out: Inputs = {};
  const pre = `m${m}.`;
  for (const [k, v] of Object.entries(x)) if (k.startsWith(pre)) out[k.slice(pre.length)] = v;
  return out;
}

function concatHost(parts: HostTensor[], shape: number[]): HostTensor {
  const n = parts.reduce((a, p) => a + p.data.length, 0);
  const data = parts[0].dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
  let o = 0;
  for (const p of parts) {
    data.set(p.data, o);
    o += p.data.length;
  }
  return { data, shape, dtype: parts[0].dtype };
}

/** `data` holds the inputs, targets and variables, so that the setup's tf.tidy keeps them and the teardown frees them. */
interface EnsTf { steps: (() => TfTensor)[]; data: TfTensor[]; disposeOpt: () => void }

function ensembleTf(tf: TF, x: Inputs): EnsTf {
  const steps: (() => TfTensor)[] = [];
  const data: TfTensor[] = [];
  const opts: { dispose: () => void }[] = [];
  for (let m = 0; m < ENS_M; m++) {
    const xm = memberInputs(x, m);
    const net = tfLenet(tf, xm);
    const input = nhwc(tf, xm.x);
    const y = toTf(tf, xm.onehot);
    data.push(input, y, ...net.vars);
    const opt = tf.train.adam(TRAIN_LR, 0.9, 0.999, 1e-8);
    opts.push(opt);
    const loss = () => tf.losses.softmaxCrossEntropy(y, net.forward(input, 0));
    steps.push(() => opt.minimize(loss as never, true, net.vars as never) as TfTensor);
  }
  return { steps, data, disposeOpt: () => opts.forEach((o) => o.dispose()) };
}

const ensembleTfSide = {
  setupTf: (tf: TF, x: Inputs) => ensembleTf(tf, x),
  runTf: (tf: TF, s: EnsTf) => tf.stack(s.steps.map((st) => st())),
  teardownTf: (_tf: TF, s: EnsTf) => s.disposeOpt(),
};

interface EnsStackedDubito { members: D.LeNet5[]; trainer: D.EnsembleTrainer; x: Tensor; y: Tensor }

const ensembleStacked: Workload<EnsStackedDubito, EnsTf> = {
  name: `ensemble M=${ENS_M} LeNet training step b64 (stacked)`,
  group: 'training',
  modes: ALL,
  inputs: ensembleInputs,
  setupDubito: (x, be) => {
    const members = Array.from({ length: ENS_M }, (_, m) => {
      const model = new D.LeNet5({ dropout: 0 });
      loadLenetDubito(model, memberInputs(x, m), be);
      return model.train();
    });
    const trainer = new D.DeepEnsemble(members).trainer({ optimizer: (p) => new D.Adam(p, { lr: TRAIN_LR, betas: [0.9, 0.999], eps: 1e-8 }) });
    const xs = concatHost(members.map((_, m) => x[`m${m}.x`]), [ENS_M, TRAIN_B, 1, 28, 28]);
    const ys = concatHost(members.map((_, m) => x[`m${m}.labels`]), [ENS_M, TRAIN_B]);
    return { members, trainer, x: toDubito(xs, be), y: toDubito(ys, be) };
  },
  runDubito: (s) => s.trainer.step(s.x, s.y),
  teardownDubito: (s) => {
    s.trainer.dispose();
    for (const m of s.members) m.dispose();
  },
  ...ensembleTfSide,
  check: { rtol: 1e-4 },
};

interface EnsSeqDubito { models: D.LeNet5[]; opts: D.Adam[]; xs: Tensor[]; ys: Tensor[] }

const ensembleSequential: Workload<EnsSeqDubito, EnsTf> = {
  name: `ensemble M=${ENS_M} LeNet training step b64 (${ENS_M} sequential steps)`,
  group: 'training',
  modes: ALL,
  inputs: ensembleInputs,
  setupDubito: (x, be) => {
    const models = Array.from({ length: ENS_M }, (_, m) => {
      const model = new D.LeNet5({ dropout: 0 });
      loadLenetDubito(model, memberInputs(x, m), be);
      return model;
    });
    return {
      models,
      opts: models.map((model) => new D.Adam(model.parameters(), { lr: TRAIN_LR, betas: [0.9, 0.999], eps: 1e-8 })),
      xs: models.map((_, m) => toDubito(x[`m${m}.x`], be)),
      ys: models.map((_, m) => toDubito(x[`m${m}.labels`], be)),
    };
  },
  runDubito: (s) => {
    const losses = s.models.map((model, m) => {
      s.opts[m].zeroGrad();
      const loss = D.crossEntropy(model.forward(s.xs[m]), s.ys[m]);
      loss.backward();
      s.opts[m].step();
      return loss.detach();
    });
    return D.stack(losses, 0);
  },
  teardownDubito: (s) => {
    s.opts.forEach((o) => {
      o.zeroGrad();
      o.dispose();
    });
    for (const m of s.models) m.dispose();
  },
  ...ensembleTfSide,
  check: { rtol: 1e-4 },
};

// MC dropout: T stochastic forwards of a LeNet-5 (dropout 0.5 before the last layer) over B
// inputs, reduced to the predictive mean and per-class variance. TF.js: a loop of T forwards
// with tf.dropout (training-mode dropout); dubito: mcDropout (one batched (T·B)-row forward,
// chunked by maxRowsPerPass) — it also computes its other scores (entropy, mutual information,
// variation ratio), which TF.js does not: that work is in dubito's time only.
const MC_T = 50;
/**
 * Rows per batched forward. mcDropout's default (8192) makes conv1's output 8192·6·28·28·4 B =
 * 154 MB, over lavapipe's 128 MiB maxStorageBufferBindingSize; 4096 rows fit (77 MB).
 */
const MC_MAX_ROWS = 4096;

interface McDubito { model: D.LeNet5; x: Tensor }
interface McTf { vars: TfTensor[]; x: TfTensor; forward: (x: TfTensor, p: number) => TfTensor }

/**
 * |mean_d − mean_t| / (√((var_d + var_t)/T) + 1e-4), maximised over inputs and classes: the
 * masks differ, so the two predictive means agree only statistically (≤ 6 standard errors).
 */
function mcZScore(d: HostArray[], t: HostArray[]): number {
  const [md, vd] = d;
  const [mt, vt] = t;
  if (md.length !== mt.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < md.length; i++) {
    const z = Math.abs(md[i] - mt[i]) / (Math.sqrt((vd[i] + vt[i]) / MC_T) + 1e-4);
    if (!(z <= worst)) worst = Number.isNaN(z) ? Infinity : z;
  }
  return worst;
}

/**
 * `tfSubset`: TF.js runs its loop on the first `tfSubset` inputs only and its time is
 * extrapolated linearly to B (labelled in the row); the check compares those inputs.
 */
function mcWorkload(B: number, modes: readonly RunMode[], tfSubset?: number): Workload<McDubito, McTf> {
  const DET = Math.min(B, 256, tfSubset ?? B);
  const sub = tfSubset ?? B;
  return {
    name: `MC dropout T=${MC_T} × ${B} MNIST`,
    group: 'uncertainty',
    modes,
    ...(tfSubset ? { tfExtrapolate: { factor: B / tfSubset, label: `measured on ${tfSubset} of ${B} inputs, ×${B / tfSubset}` } } : {}),
    inputs: () => ({ ...lenetWeights(70), x: randHost([B, 1, 28, 28], 71, 0, 1) }),
    setupDubito: (x, be) => {
      const model = new D.LeNet5({ dropout: 0.5 });
      loadLenetDubito(model, x, be);
      model.eval();
      D.enableMCDropout(model);
      return { model, x: toDubito(x.x, be) };
    },
    runDubito: (s) => {
      const r = D.mcDropout(s.model, s.x, { samples: MC_T, seed: 1234, maxRowsPerPass: MC_MAX_ROWS });
      return [r.mean, r.perClassVariance];
    },
    teardownDubito: (s) => s.model.dispose(),
    setupTf: (tf, x) => {
      const net = tfLenet(tf, x);
      const all = nhwc(tf, x.x);
      return { vars: net.vars, x: sub < B ? tf.slice(all, [0, 0, 0, 0], [sub, 28, 28, 1]) : all, forward: net.forward };
    },
    runTf: (tf, s) => {
      let sum: TfTensor | null = null;
      let sumSq: TfTensor | null = null;
      for (let t = 0; t < MC_T; t++) {
        const p = tf.softmax(s.forward(s.x, 0.5));
        sum = sum ? tf.add(sum, p) : p;
        sumSq = sumSq ? tf.add(sumSq, tf.square(p)) : tf.square(p);
      }
      const mean = tf.div(sum!, MC_T);
      return [mean, tf.relu(tf.sub(tf.div(sumSq!, MC_T), tf.square(mean)))];
    },
    check: {
      rtol: 6,
      // With a TF.js subset: dubito's first `sub` rows (10 classes each) against TF.js's.
      metric: (d, t) => mcZScore(sub < B ? d.map((a) => a.subarray(0, sub * 10)) : d, t),
      metricName: `max z of the predictive-mean difference (≤ 6)${sub < B ? `, first ${sub} inputs` : ''}`,
    },
    verify: [
      {
        name: `deterministic fwd (p=0, ${DET} inputs)`,
        rtol: 1e-4,
        dubito: (s) => {
          D.enableMCDropout(s.model, false);
          try {
            return D.noGrad(() => s.model.forward(D.slice(s.x, [0, 0, 0, 0], [DET, 1, 28, 28])));
          } finally {
            D.enableMCDropout(s.model, true);
          }
        },
        tf: (tf, s) => s.forward(tf.slice(s.x, [0, 0, 0, 0], [DET, 28, 28, 1]), 0),
      },
    ],
  };
}

// ---------------------------------------------------------------- per-sample gradients

// Squared per-sample gradient norms of a LeNet-5 (dropout off), one column per parameter tensor
// ([B, 10], parameters in LENET_PARAMS order), for the per-sample softmax cross-entropy. Three
// ways, each against TF.js's only way (a loop of B single-sample `variableGrads`, which has no
// per-sample gradient API): dubito's perSampleGradNorms (ONE forward + ONE backward, ghost norms
// for the linear layers, grouped backward-weight convs), dubito's loop of B single-sample
// backwards, and — as the yardstick for "≤ 3× one backward" — one ordinary batched backward of
// the summed loss (output: the 10 parameter gradients, TF.js: one batched variableGrads).
interface PsDubito { model: D.LeNet5; x: Tensor; y: Tensor }
interface PsTf { vars: TfTensor[]; x: TfTensor; y: TfTensor; forward: TfLenet['forward'] }

function perSampleInputs(B: number): () => Inputs {
  return () => {
    const r = rng(182);
    const labels = new Int32Array(B);
    const onehot = new Float32Array(B * 10);
    for (let i = 0; i < B; i++) {
      labels[i] = Math.floor(r() * 10);
      onehot[i * 10 + labels[i]] = 1;
    }
    return {
      ...lenetWeights(190),
      x: randHost([B, 1, 28, 28], 181, 0, 1),
      labels: { data: labels, shape: [B], dtype: 'int32' },
      onehot: { data: onehot, shape: [B, 10], dtype: 'float32' },
    };
  };
}

const perSampleSetupDubito = (x: Inputs, be: Backend): PsDubito => {
  const model = new D.LeNet5({ dropout: 0 });
  loadLenetDubito(model, x, be);
  model.eval();
  return { model, x: toDubito(x.x, be), y: toDubito(x.labels, be) };
};

const perSampleTfSide = {
  setupTf: (tf: TF, x: Inputs): PsTf => {
    const net = tfLenet(tf, x);
    return { vars: net.vars, x: nhwc(tf, x.x), y: toTf(tf, x.onehot), forward: net.forward };
  },
  /** B single-sample variableGrads, each reduced to its 10 squared norms. */
  runTf: (tf: TF, s: PsTf) => {
    const B = s.x.shape[0];
    const rows: TfTensor[] = [];
    for (let b = 0; b < B; b++) {
      const xb = tf.slice(s.x, [b, 0, 0, 0], [1, 28, 28, 1]);
      const yb = tf.slice(s.y, [b, 0], [1, 10]);
      const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(yb, s.forward(xb, 0)) as never, s.vars as never);
      value.dispose();
      rows.push(tf.stack(s.vars.map((v) => tf.sum(tf.square(grads[(v as unknown as { name: string }).name])))));
      for (const g of Object.values(grads)) g.dispose();
    }
    return tf.stack(rows);
  },
};

const perSampleCe = (o: Tensor, y?: Tensor) => D.crossEntropy(o, y!, { reduction: 'none' });

function perSampleBatched(B: number, modes: readonly RunMode[]): Workload<PsDubito, PsTf> {
  return {
    name: `per-sample gradient norms LeNet B=${B} (batched)`,
    group: 'uncertainty',
    modes,
    inputs: perSampleInputs(B),
    setupDubito: perSampleSetupDubito,
    runDubito: (s) => D.perSampleGradNorms(s.model, perSampleCe, s.x, s.y).norms,
    teardownDubito: (s) => s.model.dispose(),
    ...perSampleTfSide,
    // Sums of squares of float32 gradients, accumulated in different orders.
    check: { rtol: 1e-3 },
  };
}

function perSampleLoop(B: number, modes: readonly RunMode[]): Workload<PsDubito, PsTf> {
  return {
    name: `per-sample gradient norms LeNet B=${B} (loop of ${B} backwards)`,
    group: 'uncertainty',
    modes,
    inputs: perSampleInputs(B),
    setupDubito: perSampleSetupDubito,
    runDubito: (s) => {
      const params = s.model.parameters();
      const rows: Tensor[] = [];
      for (let b = 0; b < B; b++) {
        const gs = D.gradients(D.sum(perSampleCe(s.model.forward(D.slice(s.x, [b], [1, 1, 28, 28])), D.slice(s.y, [b], [1]))), params);
        rows.push(D.stack(gs.map((g) => D.sum(D.square(g))), 0));
      }
      return D.stack(rows, 0);
    },
    teardownDubito: (s) => s.model.dispose(),
    ...perSampleTfSide,
    check: { rtol: 1e-3 },
  };
}

function batchedBackward(B: number, modes: readonly RunMode[]): Workload<PsDubito, PsTf> {
  return {
    name: `LeNet one batched backward B=${B} (summed CE, 10 parameter gradients)`,
    group: 'uncertainty',
    modes,
    inputs: perSampleInputs(B),
    setupDubito: perSampleSetupDubito,
    runDubito: (s) => D.gradients(D.crossEntropy(s.model.forward(s.x), s.y, { reduction: 'sum' }), s.model.parameters()),
    teardownDubito: (s) => s.model.dispose(),
    setupTf: perSampleTfSide.setupTf,
    runTf: (tf, s) => {
      const { value, grads } = tf.variableGrads(
        () => tf.losses.softmaxCrossEntropy(s.y, s.forward(s.x, 0), undefined, undefined, tf.Reduction.SUM) as never,
        s.vars as never,
      );
      value.dispose();
      return s.vars.map((v) => grads[(v as unknown as { name: string }).name]);
    },
    // TF.js gradients are in its layouts (HWIO convs, fc1 rows permuted): map back to dubito's.
    tfToDubitoLayout: (outs) => outs.map((g, i) => {
      const shape = LENET_PARAMS[i][1];
      if (shape.length === 4) return fromHwio(g, shape);
      if (i === 4) return fc1FromTf(g);
      return shape.length === 2 ? permuteHost(g, [shape[1], shape[0]], [1, 0]) : g;
    }),
    check: { rtol: 1e-3 },
  };
}

/** TF.js fc1 kernel [400, 120] (rows in (h·5 + w)·16 + c order) → dubito [120, 400] (c·25 + h·5 + w). */
function fc1FromTf(k: Float32Array): Float32Array {
  const out = new Float32Array(120 * 400);
  for (let o = 0; o < 120; o++) {
    for (let c = 0; c < 16; c++) for (let hw = 0; hw < 25; hw++) out[o * 400 + c * 25 + hw] = k[(hw * 16 + c) * 120 + o];
  }
  return out;
}

/**
 * The MC dropout pass recorded once with `recordReplay` (in the setup, untimed) and replayed:
 * the same dispatches (the fixed seed gives the same masks every run, as the eager row's
 * `seed: 1234` does), without the JS op graph of the T·B-row forward and the score reductions.
 */
function mcReplayed(B: number, modes: readonly RunMode[]): Workload<McDubito & { rec: D.Replayable }, McTf> {
  const base = mcWorkload(B, modes);
  return {
    ...base,
    name: `${base.name} (replayed)`,
    setupDubito: (x, be) => {
      const s = base.setupDubito(x, be);
      const rec = D.recordReplay((input) => {
        const r = D.mcDropout(s.model, input, { samples: MC_T, seed: 1234, maxRowsPerPass: MC_MAX_ROWS });
        return [r.mean, r.perClassVariance];
      }, [s.x]);
      return { ...s, rec };
    },
    runDubito: (s) => s.rec.run(s.x),
    teardownDubito: (s) => {
      s.rec.dispose();
      base.teardownDubito!(s);
    },
  };
}

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
  elementwiseChainReplayed,
  reductionChain,
  softmaxCrossEntropy,
  lenetConvFwd,
  lenetConvBwd,
  resBlockFwd,
  resBlockBwd,
  lenetTrainStep,
  lenetTrainStepReplayed,
  ensembleStacked,
  ensembleSequential,
  mcWorkload(100, FULL),
  mcReplayed(100, FULL),
  mcWorkload(32, QUICK),
  mcReplayed(32, QUICK),
  // TF.js's loop of T=50 forwards took 150 s for 250 inputs on lavapipe (load average ~13), so
  // 2000 inputs would take tens of minutes per run: TF.js runs 100 of them, extrapolated ×20.
  mcWorkload(2000, FULL, 100),
  perSampleBatched(128, FULL),
  perSampleLoop(128, FULL),
  batchedBackward(128, FULL),
  perSampleBatched(16, QUICK),
  perSampleLoop(16, QUICK),
  batchedBackward(16, QUICK),
];
