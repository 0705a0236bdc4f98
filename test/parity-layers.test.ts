/**
 * LayerNorm, GroupNorm and Embedding (PyTorch semantics): exact values with fixed weights
 * against hand computations, parameter registration and stateDict keys as PyTorch's, float64
 * finite-difference gradients on the CPU, WebGPU against the CPU, typed errors.
 */
import { describe, expect, it } from 'vitest';
import {
  type Tensor, ArgumentError, DTypeError, DataLoader, Embedding, GroupNorm, IndexError, LayerNorm, Linear, SGD, Sequential, ShapeError,
  embedding, grads, groupNorm, layerNorm, memory, setBackend, tensor, tidy,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { Rng, TOL, compareBackends, expectClose, host, rand } from './helpers/compare.js';
import { gradcheck } from './helpers/gradcheck.js';

setBackend(cpu);
const f64 = (data: number[], shape: number[]) => tensor(data, shape, { dtype: 'float64' });
const i32 = (data: number[], shape = [data.length]) => tensor(data, shape, { dtype: 'int32' });
const val = async (t: Tensor) => Array.from(await t.data());

/** (v − mean)/√(biased var + eps) of a list. */
function normalize(v: number[], eps: number): number[] {
  const m = v.reduce((a, b) => a + b) / v.length;
  const s2 = v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length;
  return v.map((x) => (x - m) / Math.sqrt(s2 + eps));
}

describe('LayerNorm', () => {
  it('hand values over the last dim and over the last two dims, with fixed affine parameters', async () => {
    // Rows [1,2,3] and [2,4,8]: means 2 and 14/3, biased variances 2/3 and 56/9.
    const x = f64([1, 2, 3, 2, 4, 8], [2, 3]);
    const eps = 1e-5;
    const r0 = [-1, 0, 1].map((d) => d / Math.sqrt(2 / 3 + eps));
    const r1 = [2, 4, 8].map((v) => (v - 14 / 3) / Math.sqrt(56 / 9 + eps));
    expectClose(await val(layerNorm(x, 3)), [...r0, ...r1], TOL.arith, 'plain');
    const w = [0.5, 2, -1];
    const b = [0.1, 0, 0.3];
    const want = [...r0, ...r1].map((v, i) => v * w[i % 3] + b[i % 3]);
    expectClose(await val(layerNorm(x, [3], f64(w, [3]), f64(b, [3]))), want, TOL.arith, 'affine');
    // The module: set its parameters, same result; normalizing over [2, 3] uses all six values.
    const ln = new LayerNorm(3, { dtype: 'float64' });
    expect(ln.weight!.shape).toEqual([3]);
    expect(await ln.weight!.toArray()).toEqual([1, 1, 1]);
    expect(await ln.bias!.toArray()).toEqual([0, 0, 0]);
    ln.loadStateDict({ weight: f64(w, [3]), bias: f64(b, [3]) });
    expectClose(await val(ln.forward(x)), want, TOL.arith, 'module');
    const all = normalize([1, 2, 3, 2, 4, 8], 1e-3);
    expectClose(await val(new LayerNorm([2, 3], { eps: 1e-3, dtype: 'float64' }).forward(f64([1, 2, 3, 2, 4, 8], [1, 2, 3]))), all, TOL.arith, '[2,3]');
    // Batched leading dims: [N, L, D].
    expect(new LayerNorm(4).forward(tensor(new Array(24).fill(1), [2, 3, 4])).shape).toEqual([2, 3, 4]);
  });

  it('parameters and stateDict keys as PyTorch; elementwiseAffine=false and bias=false', () => {
    const net = new Sequential(new Linear(4, 3), new LayerNorm(3));
    expect(net.namedParameters().map(([k]) => k)).toEqual(['0.weight', '0.bias', '1.weight', '1.bias']);
    expect(Object.keys(tidy(() => net.stateDict()))).toEqual(['0.weight', '0.bias', '1.weight', '1.bias']);
    expect(new LayerNorm(3, { elementwiseAffine: false }).parameters()).toEqual([]);
    const nb = new LayerNorm(3, { bias: false });
    expect(nb.namedParameters().map(([k]) => k)).toEqual(['weight']);
  });

  it('typed errors', () => {
    const x = f64([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(() => new LayerNorm(4).forward(x)).toThrow(ShapeError);
    expect(() => new LayerNorm(4).forward(x)).toThrow(/LayerNorm\(\[4\]\): input \[2,3\] must end with normalizedShape \[4\]/);
    expect(() => layerNorm(x, [2, 3, 1])).toThrow(ShapeError);
    expect(() => layerNorm(x, 3, f64([1, 2], [2]))).toThrow(/layerNorm: weight \[2\] must have normalizedShape \[3\]/);
    expect(() => new LayerNorm(0)).toThrow(ArgumentError);
    expect(() => new LayerNorm([])).toThrow(ArgumentError);
    expect(() => layerNorm(x, 3, null, null, -1)).toThrow(ArgumentError);
  });

  it('gradients (float64 finite differences) and WebGPU vs CPU', async (ctx) => {
    const rng = new Rng(1);
    const x = rand(rng, [3, 2, 5], 'float64');
    const w = rand(rng, [2, 5], 'float64');
    const b = rand(rng, [2, 5], 'float64');
    await gradcheck((a, c, d) => layerNorm(a, [2, 5], c, d), [x, w, b], { label: 'layerNorm' });
    await gradcheck((a) => layerNorm(a, 5), [x], { label: 'layerNorm no affine' });
    const gpu = await requireWebGPU(ctx);
    const xf = rand(rng, [7, 33], 'float32', { lo: -3, hi: 3 });
    const wf = rand(rng, [33], 'float32');
    const bf = rand(rng, [33], 'float32');
    const tol = TOL.compositeReduction(33, 3);
    await compareBackends(cpu, gpu, (a, c, d) => layerNorm(a, 33, c, d), [xf, wf, bf], tol, 'layerNorm');
    await compareBackends(cpu, gpu, (a, c, d) => grads((p, q) => layerNorm(p, 33, q, d).square().sum(), [0, 1])(a, c)[0], [xf, wf, bf], tol, 'layerNorm dx');
    setBackend(cpu);
  });
});

describe('GroupNorm', () => {
  it('hand values: 4 channels in 2 groups, per-channel affine', async () => {
    // x [1, 4, 2]: group 0 = channels 0,1 = [1,2,3,4]; group 1 = channels 2,3 = [10,0,5,5].
    const X = [1, 2, 3, 4, 10, 0, 5, 5];
    const x = f64(X, [1, 4, 2]);
    const g0 = normalize([1, 2, 3, 4], 1e-5);
    const g1 = normalize([10, 0, 5, 5], 1e-5);
    expectClose(await val(groupNorm(x, 2)), [...g0, ...g1], TOL.arith, 'plain');
    const w = [1, 2, 3, 4];
    const b = [0, 1, 0, -1];
    const want = [...g0, ...g1].map((v, i) => v * w[Math.floor(i / 2)] + b[Math.floor(i / 2)]);
    const gn = new GroupNorm(2, 4, { dtype: 'float64' });
    gn.loadStateDict({ weight: f64(w, [4]), bias: f64(b, [4]) });
    expectClose(await val(gn.forward(x)), want, TOL.arith, 'module');
    // numGroups = C is instance norm; numGroups = 1 normalises over (C, *).
    const inst = [0, 1, 2, 3].flatMap((c) => normalize(X.slice(2 * c, 2 * c + 2), 1e-5));
    expectClose(await val(groupNorm(x, 4)), inst, TOL.arith, 'instance');
    expectClose(await val(groupNorm(x, 1)), normalize(X, 1e-5), TOL.arith, 'one group');
    // [N, C] and [N, C, H, W] inputs.
    expect(groupNorm(f64([1, 2, 3, 4, 5, 6], [2, 3]), 3).shape).toEqual([2, 3]);
    expect(new GroupNorm(3, 6).forward(tensor(new Array(2 * 6 * 2 * 3).fill(0).map((_, i) => i % 7), [2, 6, 2, 3])).shape).toEqual([2, 6, 2, 3]);
    expect(new GroupNorm(2, 4).namedParameters().map(([k]) => k)).toEqual(['weight', 'bias']);
    expect(new GroupNorm(2, 4, { affine: false }).parameters()).toEqual([]);
  });

  it('typed errors', () => {
    expect(() => new GroupNorm(3, 4)).toThrow(/GroupNorm: numChannels 4 must be divisible by numGroups 3/);
    expect(() => new GroupNorm(0, 4)).toThrow(ArgumentError);
    expect(() => new GroupNorm(2, 4).forward(f64([1, 2, 3], [1, 3]))).toThrow(/GroupNorm\(2, 4\): expected input \[N, 4, \*\], got \[1,3\]/);
    expect(() => groupNorm(f64([1, 2, 3], [1, 3]), 2)).toThrow(ShapeError);
    expect(() => groupNorm(f64([1, 2], [2]), 1)).toThrow(ShapeError);
    expect(() => groupNorm(f64([1, 2, 3, 4], [1, 4]), 2, f64([1], [1]))).toThrow(/weight \[1\] must be \[C\] = \[4\]/);
  });

  it('gradients (float64 finite differences) and WebGPU vs CPU', async (ctx) => {
    const rng = new Rng(2);
    const x = rand(rng, [2, 4, 3], 'float64');
    await gradcheck((a, c, d) => groupNorm(a, 2, c, d), [x, rand(rng, [4], 'float64'), rand(rng, [4], 'float64')], { label: 'groupNorm' });
    const gpu = await requireWebGPU(ctx);
    const xf = rand(rng, [3, 6, 5, 7], 'float32', { lo: -3, hi: 3 });
    const tol = TOL.compositeReduction(70, 3);
    await compareBackends(cpu, gpu, (a, c, d) => groupNorm(a, 3, c, d), [xf, rand(rng, [6], 'float32'), rand(rng, [6], 'float32')], tol, 'groupNorm');
    await compareBackends(cpu, gpu, (a) => grads((p) => groupNorm(p, 2).square().sum(), [0])(a)[0], [xf], tol, 'groupNorm dx');
    setBackend(cpu);
  });
});

describe('Embedding', () => {
  const Wt = [0, 0, 1, 2, 3, 4, 5, 6]; // 4 rows of 2

  it('lookup values, any index shape, paddingIdx row gets no gradient', async () => {
    const w = f64(Wt, [4, 2]);
    expect(await embedding(i32([2, 0, 3, 2], [2, 2]), w).toArray()).toEqual([[[3, 4], [0, 0]], [[5, 6], [3, 4]]]);
    expect(await embedding(i32([1], []), w).toArray()).toEqual([1, 2]);
    // Gradient: each used row accumulates its upstream gradient (ones → counts); padding row 2 gets none.
    const [g] = grads((ww) => embedding(i32([2, 0, 3, 2, 1], [5]), ww, { paddingIdx: 2 }).sum(), [0])(w);
    expect(await g.toArray()).toEqual([[1, 1], [1, 1], [0, 0], [1, 1]]);
    // The padding row's output is still its weight row (PyTorch).
    expect(await embedding(i32([2], [1]), w, { paddingIdx: 2 }).toArray()).toEqual([[3, 4]]);
    expect(await embedding(i32([2], [1]), w, { paddingIdx: -2 }).toArray()).toEqual([[3, 4]]);
  });

  it('the layer: N(0, 1) init with a zero padding row, stateDict key weight, fromPretrained (frozen), training leaves the padding row', async () => {
    const e = new Embedding(10, 3, { paddingIdx: 0 });
    expect(e.weight.shape).toEqual([10, 3]);
    const w0 = await e.weight.data();
    expect(Array.from(w0.slice(0, 3))).toEqual([0, 0, 0]);
    expect(Array.from(w0.slice(3)).some((v) => v !== 0)).toBe(true);
    expect(Object.keys(tidy(() => e.stateDict()))).toEqual(['weight']);
    expect(e.forward(i32([1, 2, 3, 0], [2, 2])).shape).toEqual([2, 2, 3]);
    const pre = Embedding.fromPretrained(f64(Wt, [4, 2]));
    expect(pre.weight.requiresGrad).toBe(false);
    expect(await pre.forward(i32([3], [1])).toArray()).toEqual([[5, 6]]);
    expect(Embedding.fromPretrained(f64(Wt, [4, 2]), { freeze: false }).weight.requiresGrad).toBe(true);
    // One SGD step on a lookup that includes the padding index: the padding row stays as it was.
    const model = new Embedding(4, 2, { paddingIdx: 1, dtype: 'float64' });
    const before = await model.weight.data();
    const opt = new SGD(model.parameters(), { lr: 0.5 });
    tidy(() => {
      opt.zeroGrad();
      model.forward(i32([1, 3, 1], [3])).square().sum().backward();
      opt.step();
    });
    const after = await model.weight.data();
    expect([after[2], after[3]]).toEqual([before[2], before[3]]);
    expect([after[6], after[7]]).not.toEqual([before[6], before[7]]);
    expect([after[0], after[1]]).toEqual([before[0], before[1]]);
  });

  it('indices are validated (IndexError naming the index, its position and the table size); typed errors', () => {
    const e = Embedding.fromPretrained(f64(Wt, [4, 2]));
    expect(() => e.forward(i32([0, 4], [2]))).toThrow(IndexError);
    expect(() => e.forward(i32([0, 1, 2, -1], [2, 2]))).toThrow(/Embedding\(4, 2\): index -1 at position \[1, 1\] \(flat 3\) of \[2,2\] is out of range for weight \[4,2\] with 4 embeddings; expected 0 <= index < 4/);
    expect(() => embedding(i32([9], [1]), f64(Wt, [4, 2]))).toThrow(/embedding: index 9 at position 0/);
    expect(() => e.forward(f64([0, 1], [2]))).toThrow(DTypeError);
    expect(() => embedding(i32([0], [1]), f64(Wt, [8]))).toThrow(ShapeError);
    expect(() => new Embedding(4, 2, { paddingIdx: 4 })).toThrow(ArgumentError);
    expect(() => new Embedding(0, 2)).toThrow(ArgumentError);
    expect(() => new Embedding(4, 2, { weight: f64(Wt, [2, 4]) })).toThrow(ShapeError);
  });

  it('gradients (float64 finite differences); WebGPU vs CPU; DataLoader indices checked on the host there; no leaks', async (ctx) => {
    const rng = new Rng(5);
    const w = rand(rng, [6, 3], 'float64');
    const idx = host([5, 0, 2, 2, 1, 5, 3], [7], 'int32');
    // (With paddingIdx the gradient is deliberately not the derivative for the padding row, as
    // PyTorch; that row's zero gradient is pinned above.)
    await gradcheck((a, b) => embedding(b, a).square(), [w, idx], { argnums: [0], label: 'embedding' });
    const m0 = memory().liveTensors;
    const wt = f64(Wt, [4, 2]);
    const it2 = i32([0, 3, 3], [3]);
    for (let i = 0; i < 3; i++) tidy(() => { grads((a) => embedding(it2, a, { paddingIdx: 3 }).sum(), [0])(wt); });
    wt.dispose();
    it2.dispose();
    expect(memory().liveTensors).toBe(m0);
    const gpu = await requireWebGPU(ctx);
    const wf = rand(rng, [50, 7], 'float32');
    const ids = rand(rng, [4, 9], 'int32', { lo: 0, hi: 49 });
    await compareBackends(cpu, gpu, (a, b) => embedding(b, a), [wf, ids], TOL.select, 'embedding');
    await compareBackends(cpu, gpu, (a, b) => grads((p) => embedding(b, p, { paddingIdx: 3 }).square().sum(), [0])(a)[0], [wf, ids], TOL.reduction(36, 4), 'embedding grad');
    // Indices from a DataLoader are validated on the host on WebGPU too; device-born bad indices raise at the next read.
    const loader = new DataLoader([{ data: [1, 2, 7], shape: [3], dtype: 'int32' }], { batchSize: 3, backend: gpu });
    const table = Embedding.fromPretrained(tensor(Wt, [4, 2], { backend: gpu }));
    for (const [b] of loader) {
      expect(() => table.forward(b)).toThrow(/Embedding\(4, 2\): index 7 at position 2 \(DataLoader array 0, sample 2\)/);
      b.dispose();
    }
    const dev = tensor([1, 2, 3], [3], { dtype: 'int32', backend: gpu }).add(tensor([0, 5, 0], [3], { dtype: 'int32', backend: gpu }));
    await expect(table.forward(dev).data()).rejects.toThrow(/embedding: index 7 at position 1 of indices \[3\] \(x \[4,2\], axis 0\) is out of range \[0, 4\)/);
    const devOk = tensor([1, 2, 3], [3], { dtype: 'int32', backend: gpu }).add(tensor([0, 0, -2], [3], { dtype: 'int32', backend: gpu }));
    expect(Array.from(await table.forward(devOk).data())).toEqual([1, 2, 3, 4, 1, 2]);
    setBackend(cpu);
  });
});
