/**
 * slice, pad, concat, stack, indexSelect/indexAdd, gather/scatterAdd, oneHot: WebGPU vs the CPU
 * reference on several shapes (odd sizes, size-1 and zero-size dims), hand-computed values,
 * typed errors, and gradients (first and second order) against central finite differences in
 * float64 on the CPU backend.
 */
import { describe, expect, it } from 'vitest';
import {
  type Backend, type DType, type Tensor, ArgumentError, DTypeError, IndexError, ShapeError,
  broadcastTo, concat, gather, grad, grads, permute, transpose, indexAdd, indexSelect, memory, noGrad, oneHot, pad, scatterAdd, setBackend, slice, stack,
  takeAlongAxis, tensor, tidy,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

import { type HostTensor, TOL, absTol, compareBackends, ints, seeded, sizeOf, values } from './helpers/compare.js';
import { gradcheck, hvpcheck } from './helpers/gradcheck.js';

// ---- slice ----
describe('slice', () => {
  it('hand values, negative begin, -1 size, errors', async () => {
    setBackend(cpu);
    const x = tensor([[1, 2, 3], [4, 5, 6]]);
    expect(await slice(x, [0, 1], [2, 2]).toArray()).toEqual([[2, 3], [5, 6]]);
    expect(await x.slice([-1, -2]).toArray()).toEqual([[5, 6]]);
    expect(await slice(x, [1], [-1, 1]).toArray()).toEqual([[4]]);
    expect(slice(x, [0, 0])).toBe(x);
    expect(() => slice(x, [0, 4])).toThrow(IndexError);
    expect(() => slice(x, [-3, 0])).toThrow(IndexError);
    expect(() => slice(x, [1, 1], [2, 1])).toThrow(IndexError);
    expect(() => slice(x, [0, 0, 0])).toThrow(IndexError);
    expect(() => slice(x, [0, 0], [1, -2])).toThrow(/slice: size -2/);
    expect(() => slice(x, [0.5])).toThrow(ArgumentError);
  });

  it('webgpu matches cpu', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    await compareBackends(cpu, gpu, (x) => slice(x, [1, 2], [3, -1]), [seeded([5, 7])], TOL.select);
    await compareBackends(cpu, gpu, (x) => slice(x, [-2, 0, 5], [2, 1, -1]), [seeded([3, 1, 70])], TOL.select);
    await compareBackends(cpu, gpu, (x) => slice(x, [1, 0, 0], [2, -1, 2]), [seeded([4, 0, 3])], TOL.select);
    await compareBackends(cpu, gpu, (x) => slice(x, [0, 3], [0, 2]), [seeded([4, 5])], TOL.select);
    await compareBackends(cpu, gpu, (x) => slice(x, [2, 1], [1, 1]), [seeded([3, 65], 3, 'int32')], TOL.select);
    await compareBackends(cpu, gpu, (x) => slice(x, [1, 1], [2, 63]), [{ data: values(195, 2, -1, 1).map((v) => +(v > 0)), shape: [3, 65], dtype: 'bool' }], TOL.select);
  });

  it('gradient (float64 finite differences)', async () => {
    await gradcheck((x) => slice(x, [1, -3, 0], [2, 2, -1]), [seeded([3, 4, 2])], { atol: 1e-6 });
    await hvpcheck((x) => slice(x, [1, 1], [2, 2]).square(), [seeded([3, 4])], { atol: 1e-6 });
  });
});

// ---- broadcastTo / permute (the strided-copy kernel) ----
describe('broadcastTo and permute', () => {
  it('hand values and errors', async () => {
    setBackend(cpu);
    const x = tensor([[1, 2, 3], [4, 5, 6]]);
    expect(await broadcastTo(tensor([1, 2, 3]), [2, 3]).toArray()).toEqual([[1, 2, 3], [1, 2, 3]]);
    expect(await permute(x, [1, 0]).toArray()).toEqual([[1, 4], [2, 5], [3, 6]]);
    expect(() => broadcastTo(x, [3, 3])).toThrow(ShapeError);
    expect(() => permute(x, [0, 0])).toThrow();
  });

  it('webgpu matches cpu (size-1, zero-size and odd dims, int32 and bool, rank 5)', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    await compareBackends(cpu, gpu, (x) => broadcastTo(x, [4, 3, 65]), [seeded([3, 1])], TOL.select);
    await compareBackends(cpu, gpu, (x) => broadcastTo(x, [2, 5, 1, 7]), [seeded([5, 1, 1])], TOL.select);
    await compareBackends(cpu, gpu, (x) => broadcastTo(x, [0, 3]), [seeded([1, 3])], TOL.select);
    await compareBackends(cpu, gpu, (x) => broadcastTo(x, [3, 2, 2]), [seeded([2, 1], 2, 'int32')], TOL.select);
    await compareBackends(cpu, gpu, (x) => permute(x, [2, 0, 1]), [seeded([3, 65, 2])], TOL.select);
    await compareBackends(cpu, gpu, (x) => permute(x, [4, 2, 0, 3, 1]), [seeded([2, 3, 1, 5, 4])], TOL.select);
    await compareBackends(cpu, gpu, (x) => permute(x, [1, 0, 2]), [seeded([0, 3, 2])], TOL.select);
    await compareBackends(cpu, gpu, (x) => transpose(x), [seeded([7, 9], 3, 'int32')], TOL.select);
    await compareBackends(cpu, gpu, (x) => permute(x, [1, 0]), [{ data: values(12, 4, -1, 1).map((v) => +(v > 0)), shape: [3, 4], dtype: 'bool' }], TOL.select);
  });

  it('gradient (float64 finite differences)', async () => {
    await hvpcheck((x) => broadcastTo(x, [3, 2, 4]).square(), [seeded([2, 1])], { atol: 1e-6 });
    await hvpcheck((x) => permute(x, [2, 0, 1]).square(), [seeded([2, 3, 4])], { atol: 1e-6 });
  });
});

// ---- pad ----
describe('pad', () => {
  it('hand values and errors', async () => {
    setBackend(cpu);
    const x = tensor([[1, 2], [3, 4]]);
    expect(await pad(x, [[1, 0], [0, 1]]).toArray()).toEqual([[0, 0, 0], [1, 2, 0], [3, 4, 0]]);
    expect(await pad(x, [[0, 1]], -1).toArray()).toEqual([[1, 2], [3, 4], [-1, -1]]);
    expect(pad(x, [[0, 0], [0, 0]])).toBe(x);
    expect(() => pad(x, [[-1, 0]])).toThrow(ArgumentError);
    expect(() => pad(x, [[0, 0], [0, 0], [0, 0]])).toThrow(ArgumentError);
  });

  it('webgpu matches cpu', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    await compareBackends(cpu, gpu, (x) => pad(x, [[1, 2], [0, 3]]), [seeded([3, 5])], TOL.select);
    await compareBackends(cpu, gpu, (x) => pad(x, [[1, 2], [0, 3]], -1.5), [seeded([3, 5])], TOL.select);
    await compareBackends(cpu, gpu, (x) => pad(x, [[0, 0], [1, 1], [2, 0]]), [seeded([2, 0, 3])], TOL.select);
    await compareBackends(cpu, gpu, (x) => pad(x, [[3, 64]]), [seeded([65])], TOL.select);
    await compareBackends(cpu, gpu, (x) => pad(x, [[1, 1], [2, 2]], 7), [seeded([1, 3], 4, 'int32')], TOL.select);
    await compareBackends(cpu, gpu, (x) => pad(x, [[0, 0], [1, 0], [0, 0], [2, 1]], -Infinity), [seeded([2, 1, 3, 67])], TOL.select);
  });

  it('gradient (float64 finite differences)', async () => {
    await gradcheck((x) => pad(x, [[1, 0], [2, 3]], 0.5), [seeded([2, 3])], { atol: 1e-6 });
    await hvpcheck((x) => pad(x, [[1, 1]]).square(), [seeded([4])], { atol: 1e-6 });
  });
});

// ---- concat / stack ----
describe('concat and stack', () => {
  it('hand values and errors', async () => {
    setBackend(cpu);
    const a = tensor([[1, 2], [3, 4]]);
    const b = tensor([[5], [6]]);
    expect(await concat([a, b], 1).toArray()).toEqual([[1, 2, 5], [3, 4, 6]]);
    expect(await concat([a, tensor([[7, 8]])], 0).toArray()).toEqual([[1, 2], [3, 4], [7, 8]]);
    expect(await stack([tensor([1, 2]), tensor([3, 4])], 1).toArray()).toEqual([[1, 3], [2, 4]]);
    expect(await stack([tensor([1, 2])]).toArray()).toEqual([[1, 2]]);
    expect(() => concat([a, b], 0)).toThrow(ShapeError);
    expect(() => concat([a, tensor([1, 2])], 0)).toThrow(ShapeError);
    expect(() => concat([a, tensor([[1]], undefined, { dtype: 'int32' })], 1)).toThrow(DTypeError);
    expect(() => concat([], 0)).toThrow(ArgumentError);
    expect(() => concat([a], 2)).toThrow(IndexError);
    expect(() => stack([a, b])).toThrow(ShapeError);
  });

  it('webgpu matches cpu', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    await compareBackends(cpu, gpu, (a, b, c) => concat([a, b, c], 0), [seeded([2, 3], 1), seeded([4, 3], 2), seeded([0, 3], 3)], TOL.select);
    await compareBackends(cpu, gpu, (a, b) => concat([a, b], 1), [seeded([2, 1, 5], 1), seeded([2, 3, 5], 2)], TOL.select);
    await compareBackends(cpu, gpu, (a, b) => concat([a, b], -1), [seeded([3, 70], 1), seeded([3, 1], 2)], TOL.select);
    await compareBackends(cpu, gpu, (a, b) => concat([a, b], 1), [seeded([0, 2], 1), seeded([0, 5], 2)], TOL.select);
    await compareBackends(cpu, gpu, (a, b) => concat([a, b], 0), [seeded([2, 65], 1, 'int32'), seeded([1, 65], 2, 'int32')], TOL.select);
    await compareBackends(cpu, gpu, (a, b, c) => stack([a, b, c], 1), [seeded([2, 33], 1), seeded([2, 33], 2), seeded([2, 33], 3)], TOL.select);
    await compareBackends(cpu, gpu, (a, b) => stack([a, b], -1), [seeded([3, 1, 5], 1), seeded([3, 1, 5], 2)], TOL.select);
  });

  it('gradient (float64 finite differences)', async () => {
    await gradcheck((a, b, c) => concat([a, b, c], 1), [seeded([2, 1], 1), seeded([2, 3], 2), seeded([2, 2], 3)], { atol: 1e-6 });
    await gradcheck((a, b) => stack([a, b], 1), [seeded([2, 3], 1), seeded([2, 3], 2)], { atol: 1e-6 });
    await hvpcheck((a, b) => concat([a, b], 0).square(), [seeded([2, 2], 1), seeded([1, 2], 2)], { atol: 1e-6 });
  });

  it('does not leak inside tidy', () => {
    setBackend(cpu);
    const a = tensor([1, 2, 3]);
    const m0 = memory().liveTensors;
    for (let i = 0; i < 5; i++) tidy(() => { grad((x: Tensor) => stack([x, x.square()], 0).sum())(a); });
    for (let i = 0; i < 5; i++) stack([a, a]).dispose();
    expect(memory().liveTensors).toBe(m0);
  });
});

// ---- indexSelect / indexAdd ----
describe('indexSelect and indexAdd', () => {
  it('hand values and errors', async () => {
    setBackend(cpu);
    const x = tensor([[1, 2, 3], [4, 5, 6]]);
    const i = tensor([2, 0, 2], [3], { dtype: 'int32' });
    expect(await indexSelect(x, 1, i).toArray()).toEqual([[3, 1, 3], [6, 4, 6]]);
    expect(await x.indexSelect(0, tensor([[1], [0]], undefined, { dtype: 'int32' })).toArray()).toEqual([[[4, 5, 6]], [[1, 2, 3]]]);
    expect(await indexAdd(x, 1, i, tensor([[10, 20, 30], [40, 50, 60]])).toArray()).toEqual([[21, 2, 43], [54, 5, 106]]);
    expect(() => indexSelect(x, 1, tensor([3], [1], { dtype: 'int32' }))).toThrow(IndexError);
    expect(() => indexSelect(x, 0, tensor([-1], [1], { dtype: 'int32' }))).toThrow(IndexError);
    expect(() => indexSelect(x, 2, i)).toThrow(IndexError);
    expect(() => indexSelect(x, 0, tensor([0]))).toThrow(DTypeError);
    expect(() => indexAdd(x, 1, i, tensor([[1, 2]]))).toThrow(ShapeError);
    expect(() => indexAdd(x, 1, tensor([0, 9], [2], { dtype: 'int32' }), tensor([[1, 2], [3, 4]]))).toThrow(IndexError);
  });

  it('webgpu matches cpu; out-of-range indices raise the IndexError at the next read on webgpu', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    await compareBackends(cpu, gpu, (x, i) => indexSelect(x, 0, i), [seeded([5, 7]), ints([4, 0, 4])], TOL.select);
    await compareBackends(cpu, gpu, (x, i) => indexSelect(x, 1, i), [seeded([5, 7]), ints([6, 1, 0, 6], [2, 2])], TOL.select);
    await compareBackends(cpu, gpu, (x, i) => indexSelect(x, 2, i), [seeded([2, 3, 65]), ints(values(70, 5, 0, 65).map(Math.floor))], TOL.select);
    await compareBackends(cpu, gpu, (x, i) => indexSelect(x, 0, i), [seeded([5, 3]), ints([])], TOL.select);
    await compareBackends(cpu, gpu, (x, i) => indexSelect(x, 1, i), [seeded([0, 4]), ints([3, 3])], TOL.select);
    await compareBackends(cpu, gpu, (x, i) => indexSelect(x, 0, i), [seeded([3, 2], 1, 'int32'), ints([2, 2, 1])], TOL.select);
    await compareBackends(cpu, gpu, (x, i, s) => indexAdd(x, 1, i, s), [seeded([3, 5, 2]), ints([4, 0, 4, 4, 1, 1, 3]), seeded([3, 7, 2], 2)], absTol(1e-5));
    await compareBackends(cpu, gpu, (x, i, s) => indexAdd(x, 0, i, s), [seeded([66]), ints(values(130, 6, 0, 66).map(Math.floor)), seeded([130], 3)], absTol(1e-5));
    await compareBackends(cpu, gpu, (x, i, s) => indexAdd(x, 0, i, s), [seeded([4, 2], 1, 'int32'), ints([1, 1]), seeded([2, 2], 2, 'int32')], TOL.select);
    // Out-of-range indices: the kernel selects 0 / drops them (never out of bounds) and flags them;
    // the CPU's IndexError is raised at the next read (test/device-errors.test.ts has the rest).
    setBackend(gpu);
    const x = tensor([[1, 2, 3], [4, 5, 6]]);
    await expect(indexSelect(x, 1, tensor([2, 3, -1], [3], { dtype: 'int32' })).toArray()).rejects.toThrow(/^indexSelect: index (3 at position 1|-1 at position 2) of indices \[3\] \(x \[2,3\], axis 1\) is out of range \[0, 3\)/);
    await expect(indexAdd(x, 1, tensor([7, 0], [2], { dtype: 'int32' }), tensor([[10, 20], [30, 40]])).toArray()).rejects.toThrow(/^indexAdd: index 7 at position 0 of indices \[2\] \(axis 1 of size 3\)/);
  });

  it('gradient (float64 finite differences)', async () => {
    await gradcheck((x, i) => indexSelect(x, 1, i), [seeded([2, 4, 3]), ints([3, 0, 3, 1], [2, 2])], { atol: 1e-6 });
    await gradcheck((x, i, s) => indexAdd(x, 0, i, s), [seeded([3, 2]), ints([2, 2, 0]), seeded([3, 2], 2)], { atol: 1e-6 });
    await hvpcheck((x, i) => indexSelect(x, 0, i).square(), [seeded([3, 2]), ints([2, 2, 0])], { atol: 1e-6 });
  });
});

// ---- gather / scatterAdd ----
describe('gather (takeAlongAxis) and scatterAdd', () => {
  it('hand values and errors', async () => {
    setBackend(cpu);
    const logits = tensor([[1, 2, 3], [4, 5, 6]]);
    const labels = tensor([[2], [0]], undefined, { dtype: 'int32' });
    expect(await gather(logits, labels, 1).toArray()).toEqual([[3], [4]]);
    expect(await takeAlongAxis(logits, tensor([[1, 0, 1]], undefined, { dtype: 'int32' }), 0).toArray()).toEqual([[4, 2, 6]]);
    expect(await scatterAdd(logits, 1, tensor([[0, 0]], undefined, { dtype: 'int32' }), tensor([[10, 20]])).toArray()).toEqual([[31, 2, 3], [4, 5, 6]]);
    expect(() => gather(logits, tensor([[3]], undefined, { dtype: 'int32' }), 1)).toThrow(IndexError);
    expect(() => gather(logits, tensor([2], [1], { dtype: 'int32' }), 1)).toThrow(ShapeError);
    expect(() => gather(logits, tensor([[0], [0], [0]], undefined, { dtype: 'int32' }), 1)).toThrow(ShapeError);
    expect(() => gather(logits, tensor([[0]]), 1)).toThrow(DTypeError);
    expect(() => scatterAdd(logits, 1, labels, tensor([[1, 2]]))).toThrow(ShapeError);
  });

  it('webgpu matches cpu; out-of-range indices raise the IndexError at the next read on webgpu', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const idx = (shape: number[], hi: number, seed: number) => ints(values(sizeOf(shape), seed, 0, hi).map(Math.floor), shape);
    await compareBackends(cpu, gpu, (x, i) => gather(x, i, 1), [seeded([4, 5]), idx([4, 2], 5, 1)], TOL.select);
    await compareBackends(cpu, gpu, (x, i) => gather(x, i, 0), [seeded([4, 5]), idx([3, 5], 4, 2)], TOL.select);
    await compareBackends(cpu, gpu, (x, i) => gather(x, i, 1), [seeded([4, 5]), idx([2, 3], 5, 3)], TOL.select);
    await compareBackends(cpu, gpu, (x, i) => gather(x, i, 2), [seeded([2, 3, 65]), idx([2, 3, 70], 65, 4)], TOL.select);
    await compareBackends(cpu, gpu, (x, i) => gather(x, i, 1), [seeded([0, 5]), idx([0, 2], 5, 5)], TOL.select);
    await compareBackends(cpu, gpu, (x, i) => gather(x, i, 0), [seeded([3, 4], 1, 'int32'), idx([2, 4], 3, 6)], TOL.select);
    await compareBackends(cpu, gpu, (x, i, s) => scatterAdd(x, 1, i, s), [seeded([4, 5]), idx([3, 7], 5, 7), seeded([3, 7], 2)], absTol(1e-5));
    await compareBackends(cpu, gpu, (x, i, s) => scatterAdd(x, 2, i, s), [seeded([2, 3, 65]), idx([2, 2, 70], 65, 8), seeded([2, 2, 70], 3)], absTol(1e-5));
    await compareBackends(cpu, gpu, (x, i, s) => scatterAdd(x, 0, i, s), [seeded([3, 1]), idx([0, 1], 3, 9), seeded([0, 1], 3)], TOL.select);
    setBackend(gpu);
    const x = tensor([[1, 2, 3], [4, 5, 6]]);
    await expect(gather(x, tensor([[5], [-2]], undefined, { dtype: 'int32' }), 1).toArray()).rejects.toThrow(/^gather: index (5 at flat position 0|-2 at flat position 1) of indices \[2,1\] \(x \[2,3\], axis 1\)/);
  });

  it('gradient (float64 finite differences)', async () => {
    await gradcheck((x, i) => gather(x, i, 1), [seeded([3, 4]), ints([1, 1, 0, 3, 3, 3], [3, 2])], { atol: 1e-6 });
    await gradcheck((x, i) => gather(x, i, 0), [seeded([3, 4]), ints([2, 2, 0], [1, 3])], { atol: 1e-6 });
    await gradcheck((x, i, s) => scatterAdd(x, 1, i, s), [seeded([2, 3]), ints([1, 1, 0, 2], [2, 2]), seeded([2, 2], 2)], { atol: 1e-6 });
    await hvpcheck((x, i) => gather(x, i, 1).square(), [seeded([2, 3]), ints([1, 1, 0, 2], [2, 2])], { atol: 1e-6 });
  });
});

// ---- oneHot ----
describe('oneHot', () => {
  it('hand values (out-of-range → zero row on every backend)', async (ctx) => {
    setBackend(cpu);
    const i = tensor([0, 2, -1, 3], [4], { dtype: 'int32' });
    const want = [[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]];
    expect(await oneHot(i, 3).toArray()).toEqual(want);
    expect(oneHot(i, 3, 'int32').dtype).toBe('int32');
    expect(() => oneHot(tensor([1]), 3)).toThrow(DTypeError);
    expect(() => oneHot(i, -1)).toThrow(ArgumentError);
    const gpu = await requireWebGPU(ctx);
    await compareBackends(cpu, gpu, (t) => oneHot(t, 3), [ints([0, 2, -1, 3])], TOL.select);
    await compareBackends(cpu, gpu, (t) => oneHot(t, 70, 'int32'), [ints(values(12, 3, -2, 72).map(Math.floor), [3, 4])], TOL.select);
    await compareBackends(cpu, gpu, (t) => oneHot(t, 4), [ints([], [0, 2])], TOL.select);
    await compareBackends(cpu, gpu, (t) => oneHot(t, 2, 'bool'), [ints([1, 0, 1])], TOL.select);
  });
});
