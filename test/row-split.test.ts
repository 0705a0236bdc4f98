// Ops over more than one storage binding's worth of data (engine/webgpu/webgpu-backend.ts
// `executeInRows`, the ops' `splitRows`): when an operand or the output exceeds
// maxStorageBufferBindingSize the WebGPU backend runs the op in chunks of rows of its leading
// dim, binding sub-ranges of the big buffers.
//
// * Every splitting op vs the CPU reference with the binding limit LOWERED (setBindingLimits), so
//   small tensors take the chunked path (the `rowSplits` counter proves they did): elementwise
//   with broadcasting, where/cast, dropout (the mask continues across chunks), conv2d and both of
//   its gradients (the weight gradient sums per-chunk partials), pooling forward/backward,
//   matmul (batched, 2-D rows, Aᵀ·B as summed partials), linear, reductions over other axes and
//   over dim 0, and the strided copies (permute, pad, concat, broadcastTo, slice); also with a
//   256-byte offset alignment (what most GPUs require).
// * Ops that cannot split throw an AllocationError naming the op, the shape, the limit and the
//   batch that fits.
// * A ~200-MiB activation (LeNet5's first conv on 11,000 images) at the adapter's real limit,
//   against the CPU reference on rows around the chunk boundary and at both ends.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AllocationError, type Backend, Dropout, LeNet5, Linear, ReLU, Sequential, enableMCDropout, mcDropoutLogits, type Tensor, WebGPUBackend, add, avgPool2d, cast, concat, conv2d, decodeSafetensors, dropout,
  grads, gt, linear, matmul, max, maxPool2d, mean, memory, mul, pad, permute, relu, safetensorsToTensors, setBackend, sum, tensor, tidy, where,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { values } from './helpers/compare.js';

/** Deterministic float32 values in [-1, 1) (the shared seeded generator of test/helpers/compare.ts). */
const rnd = (n: number, seed: number): Float32Array => Float32Array.from(values(n, seed, -1, 1));

const size = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);

type Case = { name: string; inputs: { shape: number[]; seed: number }[]; f: (...xs: Tensor[]) => Tensor | Tensor[]; tol?: number };

const CASES: Case[] = [
  { name: 'add with a broadcast row', inputs: [{ shape: [300, 50], seed: 1 }, { shape: [1, 50], seed: 2 }], f: (a, b) => add(a, b) },
  { name: 'mul of two big operands', inputs: [{ shape: [300, 50], seed: 1 }, { shape: [300, 50], seed: 3 }], f: (a, b) => mul(a, b) },
  { name: 'relu (unary) on rank 3', inputs: [{ shape: [90, 7, 11], seed: 4 }], f: (a) => relu(a) },
  { name: 'where / cast', inputs: [{ shape: [300, 50], seed: 5 }, { shape: [300, 50], seed: 6 }], f: (a, b) => cast(cast(where(gt(a, 0), a, b), 'int32'), 'float32') },
  { name: 'dropout with a fixed stream', inputs: [{ shape: [300, 50], seed: 7 }], f: (a) => dropout(a, 0.3, { seed: 42, offset: 5 }) },
  { name: 'conv2d (bias, stride 2, padding 1)', inputs: [{ shape: [40, 3, 12, 12], seed: 8 }, { shape: [5, 3, 3, 3], seed: 9 }, { shape: [5], seed: 10 }], f: (x, w, b) => conv2d(x, w, b, { stride: 2, padding: 1 }) },
  {
    name: 'conv2d gradients (input: chunked; weight and bias: summed partials)',
    inputs: [{ shape: [40, 3, 12, 12], seed: 8 }, { shape: [5, 3, 3, 3], seed: 9 }, { shape: [5], seed: 10 }, { shape: [40, 5, 10, 10], seed: 11 }],
    f: (x, w, b, g) => grads((xx, ww, bb) => sum(mul(conv2d(xx, ww, bb), g)), [0, 1, 2])(x, w, b),
    tol: 5e-4,
  },
  { name: 'maxPool2d forward and backward', inputs: [{ shape: [40, 3, 12, 12], seed: 12 }, { shape: [40, 3, 6, 6], seed: 13 }], f: (x, g) => [maxPool2d(x, { kernelSize: 2 }), ...grads((xx) => sum(mul(maxPool2d(xx, { kernelSize: 2 }), g)), [0])(x)] },
  { name: 'avgPool2d forward and backward', inputs: [{ shape: [40, 3, 12, 12], seed: 14 }, { shape: [40, 3, 4, 4], seed: 15 }], f: (x, g) => [avgPool2d(x, { kernelSize: 3 }), ...grads((xx) => sum(mul(avgPool2d(xx, { kernelSize: 3 }), g)), [0])(x)] },
  { name: 'batched matmul (both batched; b broadcast)', inputs: [{ shape: [30, 8, 20], seed: 16 }, { shape: [30, 20, 6], seed: 17 }, { shape: [20, 6], seed: 18 }], f: (a, b, c) => [matmul(a, b), matmul(a, c)] },
  { name: '2-D matmul rows and Aᵀ·B partial sums', inputs: [{ shape: [300, 40], seed: 19 }, { shape: [40, 7], seed: 20 }, { shape: [300, 7], seed: 21 }], f: (a, b, c) => [matmul(a, b), matmul(a, c, { transposeA: true })], tol: 5e-4 },
  {
    name: 'linear and its gradients',
    inputs: [{ shape: [300, 40], seed: 22 }, { shape: [7, 40], seed: 23 }, { shape: [7], seed: 24 }, { shape: [300, 7], seed: 25 }],
    f: (x, w, b, g) => [linear(x, w, b, 'relu'), ...grads((xx, ww, bb) => sum(mul(linear(xx, ww, bb), g)), [0, 1, 2])(x, w, b)],
    tol: 5e-4,
  },
  { name: 'reductions over other axes and over dim 0', inputs: [{ shape: [300, 50], seed: 26 }], f: (a) => [sum(a, 1), max(a, 1, true), mean(a, 1), sum(a, 0), sum(a.reshape([300, 5, 10]), [0, 2])], tol: 5e-4 },
  {
    name: 'strided copies: permute, pad, concat, broadcastTo, slice',
    inputs: [{ shape: [300, 5, 10], seed: 27 }, { shape: [300, 1, 10], seed: 28 }],
    f: (a, b) => [permute(a, [0, 2, 1]), pad(a, [[0, 0], [1, 2], [0, 1]]), concat([a, b], 1), b.broadcastTo([300, 4, 10]), a.slice([0, 1, 2], [-1, 3, 5])],
  },
];

async function run(be: Backend, c: Case): Promise<Float32Array[]> {
  const xs = c.inputs.map((i) => tensor(rnd(size(i.shape), i.seed), i.shape, { backend: be }));
  const outs = tidy(() => {
    const r = c.f(...xs);
    return Array.isArray(r) ? r : [r];
  });
  const data = await Promise.all(outs.map(async (o) => Float32Array.from(await o.data())));
  for (const t of [...xs, ...outs]) t.dispose();
  return data;
}

function expectClose(got: Float32Array[], want: Float32Array[], tol: number) {
  expect(got.length).toBe(want.length);
  for (let k = 0; k < want.length; k++) {
    expect(got[k].length).toBe(want[k].length);
    let worst = 0;
    for (let i = 0; i < want[k].length; i++) worst = Math.max(worst, Math.abs(got[k][i] - want[k][i]) / (1 + Math.abs(want[k][i])));
    expect(worst).toBeLessThan(tol);
  }
}

let lowered: WebGPUBackend | null = null;
afterEach(() => {
  lowered?.setBindingLimits({ maxBindingBytes: null, offsetAlignment: null });
  lowered = null;
});

async function gpuWithLimit(ctx: { skip: (note?: string) => void }, maxBindingBytes: number, offsetAlignment: number | null = null): Promise<WebGPUBackend> {
  const be = await requireWebGPU(ctx);
  if (!(be instanceof WebGPUBackend)) throw new Error('expected the WebGPU backend');
  be.setBindingLimits({ maxBindingBytes, offsetAlignment });
  lowered = be;
  return be;
}

describe('ops split along their leading dim when an operand exceeds the binding limit (limit lowered to 16 KiB)', () => {
  for (const c of CASES) {
    it(c.name, async (ctx) => {
      const gpu = await gpuWithLimit(ctx, 16384);
      const want = await run(cpu, c);
      const before = gpu.rowSplits;
      const live = memory().liveTensors;
      const got = await run(gpu, c);
      expect(gpu.rowSplits).toBeGreaterThan(before); // the chunked path ran
      expect(memory().liveTensors).toBe(live);
      // float32 kernels vs the CPU reference's float64 accumulation; summed partials reorder sums.
      expectClose(got, want, c.tol ?? 1e-5);
    });
  }

  it('with a 256-byte offset alignment (row sizes that are not multiples of it take more rows per chunk)', async (ctx) => {
    // Rows of 200..2000 bytes: with 256-byte offsets a chunk holds a multiple of 8..32 rows.
    const gpu = await gpuWithLimit(ctx, 32768, 256);
    for (const c of [CASES[0], CASES[4], CASES[5], CASES[6]]) {
      const want = await run(cpu, c);
      const before = gpu.rowSplits;
      const got = await run(gpu, c);
      expect(gpu.rowSplits).toBeGreaterThan(before);
      expectClose(got, want, c.tol ?? 1e-5);
    }
  });

  it('an op that cannot split throws an AllocationError naming the op, the shape, the limit and the batch that fits', async (ctx) => {
    const gpu = await gpuWithLimit(ctx, 16384);
    const live = memory().liveTensors;
    const a = tensor(rnd(300 * 50, 1), [300, 50], { backend: gpu });
    // A transpose of the leading dim cannot be chunked along it.
    let err: unknown = null;
    try {
      permute(a, [1, 0]).dispose();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AllocationError);
    const msg = (err as Error).message;
    expect(msg).toContain('permute');
    expect(msg).toContain('[300,50]');
    expect(msg).toContain('16.00 KiB');
    expect(msg).toMatch(/at most \d+ fits/);
    // One row larger than the limit cannot be split at all.
    const wide = tensor(rnd(2 * 5000, 2), [2, 5000], { backend: gpu });
    expect(() => relu(wide)).toThrow(/even one row/);
    a.dispose();
    wide.dispose();
    expect(memory().liveTensors).toBe(live); // the refused ops left no tensors behind
  });
});

describe('MC dropout with T·B rows beyond the binding limit', () => {
  it('mcDropoutLogits on WebGPU (chunked ops) equals the CPU reference: same masks, same logits', async (ctx) => {
    const gpu = await gpuWithLimit(ctx, 16384);
    setBackend(cpu);
    const net = new Sequential(new Linear(20, 64), new ReLU(), new Dropout(0.5), new Linear(64, 3));
    enableMCDropout(net);
    const x = rnd(50 * 20, 31);
    const opts = { samples: 8, seed: 7, maxRowsPerPass: 1 << 20 }; // one pass of 400 rows: [400, 64] activations
    const xc = tensor(x, [50, 20], { backend: cpu });
    const want = Float32Array.from(await mcDropoutLogits(net, xc, opts).data());
    await net.to(gpu);
    const xg = tensor(x, [50, 20], { backend: gpu });
    const before = gpu.rowSplits;
    const got = Float32Array.from(await mcDropoutLogits(net, xg, opts).data());
    expect(gpu.rowSplits).toBeGreaterThan(before);
    expectClose([got], [want], 1e-5);
    setBackend(cpu);
  });
});

describe('a ~200-MiB activation through LeNet5 at the adapter limit', () => {
  it('forward on 11,000 images equals the CPU reference around the chunk boundary and at both ends', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    if (!(gpu instanceof WebGPUBackend)) throw new Error('expected the WebGPU backend');
    const weights = decodeSafetensors(readFileSync(new URL('./fixtures/lenet.safetensors', import.meta.url)));
    const N = 11000;
    const act = N * 6 * 28 * 28 * 4;
    expect(act).toBeGreaterThan(gpu.maxBindingBytes); // the first conv's output needs chunks
    const x = rnd(N * 784, 99);
    const model = (be: Backend) => {
      setBackend(be);
      const m = new LeNet5();
      m.loadStateDict(safetensorsToTensors(weights, be));
      m.eval();
      return m;
    };
    const mg = model(gpu);
    const before = gpu.rowSplits;
    const xg = tensor(x, [N, 1, 28, 28], { backend: gpu });
    const yg = mg.forward(xg);
    const got = await yg.data();
    expect(gpu.rowSplits).toBeGreaterThan(before);
    xg.dispose();
    yg.dispose();
    const mc = model(cpu);
    // Chunk boundary of the first conv's output (rows per chunk ≈ limit / 18816 bytes per image).
    const boundary = Math.floor(gpu.maxBindingBytes / (6 * 28 * 28 * 4));
    for (const [s, n] of [[0, 16], [boundary - 20, 40], [N - 16, 16]]) {
      const xc = tensor(x.subarray(s * 784, (s + n) * 784), [n, 1, 28, 28], { backend: cpu });
      const want = await mc.forward(xc).data();
      xc.dispose();
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[s * 10 + i] - want[i]));
      expect(worst).toBeLessThan(1e-4);
    }
    setBackend(cpu);
  }, 120_000);
});
