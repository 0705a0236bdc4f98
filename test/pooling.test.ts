/**
 * maxPool2d, avgPool2d, adaptiveAvgPool2d, globalAvgPool2d, upsampleBilinear2d (NCHW): WebGPU vs
 * the CPU reference (forward and backward, odd sizes, padding, stride ≠ kernel, dilation, N or
 * C = 1, empty batch), hand-computed values (PyTorch semantics), typed errors, and gradients
 * (first and second order) against central finite differences in float64 on the CPU backend.
 */
import { describe, expect, it } from 'vitest';
import {
  type Backend, type DType, type Tensor, ArgumentError, DTypeError, ShapeError,
  adaptiveAvgPool2d, avgPool2d, globalAvgPool2d, grad, grads, maxPool2d, maxPool2dWithIndices, memory, noGrad,
  setBackend, tensor, tidy, upsampleBilinear2d,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

import { type HostTensor, TOL, absTol, compareBackends, ints, seeded, sizeOf, values } from './helpers/compare.js';
import { gradcheck, hvpcheck } from './helpers/gradcheck.js';


/** Distinct values (no ties, so max pooling is differentiable everywhere nearby). */
const distinct = (shape: number[], seed = 1): HostTensor => {
  const n = sizeOf(shape);
  const r = values(n, seed, -1, 1);
  const order = r.map((v, i) => [v, i]).sort((a, b) => a[0] - b[0]).map(([, i]) => i);
  const v = new Array<number>(n);
  order.forEach((i, k) => (v[i] = (k - n / 2) / n + 0.001 * r[i]));
  return { data: v, shape, dtype: 'float32' };
};

/** Forward and (through grad with a random cotangent) backward, WebGPU vs CPU. */
async function fwdBwd(gpu: Backend, f: (x: Tensor) => Tensor, x: HostTensor, tol = 2e-5): Promise<void> {
  await compareBackends(cpu, gpu, f, [x], absTol(tol));
  const outShape = tidy(() => f(tensor(x.data, x.shape, { backend: cpu }))).shape;
  const wv = values(sizeOf(outShape), 42, -1, 1);
  await compareBackends(cpu, gpu, (t) => grad((u: Tensor) => f(u).mul(tensor(wv, outShape, { backend: t.backend })).sum())(t), [x], absTol(tol));
}

describe('maxPool2d', () => {
  it('hand values, padding excluded, indices', async () => {
    setBackend(cpu);
    const x = tensor(Array.from({ length: 16 }, (_, i) => i + 1), [1, 1, 4, 4]);
    expect(await maxPool2d(x, { kernelSize: 2 }).toArray()).toEqual([[[[6, 8], [14, 16]]]]);
    const r = maxPool2dWithIndices(x.neg(), { kernelSize: 3, stride: 2, padding: 1 });
    expect(await r.values.toArray()).toEqual([[[[-1, -2], [-5, -6]]]]);
    expect(await r.indices.toArray()).toEqual([[[[0, 1], [4, 5]]]]);
    expect(r.indices.dtype).toBe('int32');
    // gradient goes to the winner; a shared winner accumulates
    const g = grad((u: Tensor) => maxPool2d(u, { kernelSize: 2, stride: 1 }).sum())(tensor([1, 9, 2, 3], [1, 1, 2, 2]));
    expect(await g.toArray()).toEqual([[[[0, 1], [0, 0]]]]);
  });

  it('errors', () => {
    setBackend(cpu);
    const x = tensor(values(16, 1, -1, 1), [1, 1, 4, 4]);
    // [1, 4, 4] is an unbatched [C, H, W] input now (PyTorch semantics); rank 2 is still wrong.
    expect(() => maxPool2d(tensor(values(16, 1, -1, 1), [4, 4]), { kernelSize: 2 })).toThrow(ShapeError);
    expect(() => maxPool2d(tensor(values(4, 1, -1, 1), [1, 1, 2, 2], { dtype: 'int32' }), { kernelSize: 2 })).toThrow(DTypeError);
    expect(() => maxPool2d(x, { kernelSize: 5 })).toThrow(ShapeError);
    expect(() => maxPool2d(x, { kernelSize: 2, padding: 2 })).toThrow(ArgumentError);
    expect(() => maxPool2d(x, { kernelSize: 0 })).toThrow(ArgumentError);
    expect(() => maxPool2d(x, { kernelSize: [2, 2, 2] as unknown as [number, number] })).toThrow(ArgumentError);
  });

  it('webgpu matches cpu (forward and backward)', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    await fwdBwd(gpu, (x) => maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }), distinct([2, 3, 7, 9]));
    await fwdBwd(gpu, (x) => maxPool2d(x, { kernelSize: 2 }), distinct([1, 1, 5, 5], 2));
    await fwdBwd(gpu, (x) => maxPool2d(x, { kernelSize: [3, 2], stride: [1, 2], padding: [1, 0], dilation: [2, 1] }), distinct([2, 1, 9, 8], 3));
    await fwdBwd(gpu, (x) => maxPool2d(x, { kernelSize: [2, 1], stride: [3, 1] }), distinct([1, 2, 65, 3], 4));
    await fwdBwd(gpu, (x) => maxPool2d(x, { kernelSize: 2, stride: 1 }), distinct([0, 3, 6, 6], 5));
    // all-padding window (large dilation): index −1, value 0, no gradient
    await fwdBwd(gpu, (x) => maxPool2d(x, { kernelSize: 2, padding: 2, dilation: 3 }), distinct([1, 2, 1, 3], 6));
    await compareBackends(cpu, gpu, (x) => maxPool2dWithIndices(x, { kernelSize: 3, stride: 2, padding: 1 }).indices, [distinct([2, 3, 7, 9])], TOL.select);
    // second order on the GPU: the backward op's own gradient
    const f = (x: Tensor) => maxPool2d(x, { kernelSize: 2, stride: 1 }).square().sum();
    const v = values(30, 8, -1, 1);
    await compareBackends(cpu, gpu, (x) => grad((u: Tensor) => grad(f)(u).mul(tensor(v, [1, 2, 3, 5], { backend: x.backend })).sum())(x), [distinct([1, 2, 3, 5], 7)], absTol(1e-5));
  });

  it('gradient (float64 finite differences, first and second order)', async () => {
    await gradcheck((x) => maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }), [distinct([1, 2, 5, 4])], { atol: 1e-6 });
    await gradcheck((x) => maxPool2d(x, { kernelSize: 2, stride: 1, dilation: [1, 2] }), [distinct([2, 1, 3, 4], 2)], { atol: 1e-6 });
    await hvpcheck((x) => maxPool2d(x, { kernelSize: 2, stride: 1 }).square(), [distinct([1, 1, 3, 4], 3)], { atol: 1e-6 });
  });
});

describe('avgPool2d', () => {
  it('hand values (countIncludePad)', async () => {
    setBackend(cpu);
    const x = tensor(Array.from({ length: 16 }, (_, i) => i + 1), [1, 1, 4, 4]);
    expect(await avgPool2d(x, { kernelSize: 2 }).toArray()).toEqual([[[[3.5, 5.5], [11.5, 13.5]]]]);
    const inc = await avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }).data();
    const exc = await avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, countIncludePad: false }).data();
    expect(inc[0]).toBeCloseTo(14 / 9, 6);
    expect(exc[0]).toBeCloseTo(14 / 4, 6);
    expect(exc[3]).toBeCloseTo((6 + 7 + 8 + 10 + 11 + 12 + 14 + 15 + 16) / 9, 6);
    expect(() => avgPool2d(x, { kernelSize: 2, padding: 2 })).toThrow(ArgumentError);
  });

  it('webgpu matches cpu (forward and backward)', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    for (const countIncludePad of [true, false]) {
      await fwdBwd(gpu, (x) => avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, countIncludePad }), seeded([2, 3, 7, 9]));
      await fwdBwd(gpu, (x) => avgPool2d(x, { kernelSize: [2, 3], stride: [1, 2], padding: [1, 1], countIncludePad }), seeded([1, 1, 5, 6], 2));
    }
    await fwdBwd(gpu, (x) => avgPool2d(x, { kernelSize: 2, stride: 3 }), seeded([1, 2, 65, 4], 3));
    await fwdBwd(gpu, (x) => avgPool2d(x, { kernelSize: 2 }), seeded([0, 2, 4, 4], 4));
  });

  it('gradient (float64 finite differences, first and second order)', async () => {
    await gradcheck((x) => avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }), [seeded([1, 2, 5, 4])], { atol: 1e-6 });
    await gradcheck((x) => avgPool2d(x, { kernelSize: [2, 3], stride: [1, 2], padding: [1, 1], countIncludePad: false }), [seeded([1, 1, 4, 5], 2)], { atol: 1e-6 });
    await hvpcheck((x) => avgPool2d(x, { kernelSize: 2, stride: 1 }).square(), [seeded([1, 1, 3, 4], 3)], { atol: 1e-6 });
  });
});

describe('adaptiveAvgPool2d and globalAvgPool2d', () => {
  it('hand values (PyTorch bins)', async () => {
    setBackend(cpu);
    const x = tensor([1, 2, 3, 4, 5], [1, 1, 1, 5]);
    expect(await adaptiveAvgPool2d(x, [1, 3]).toArray()).toEqual([[[[1.5, 3, 4.5]]]]);
    expect(await globalAvgPool2d(x).toArray()).toEqual([[3]]);
    expect(globalAvgPool2d(x, true).shape).toEqual([1, 1, 1, 1]);
    expect(() => adaptiveAvgPool2d(x, [0, 1])).toThrow(ArgumentError);
    expect(() => globalAvgPool2d(tensor([1, 2]))).toThrow(ShapeError);
  });

  it('webgpu matches cpu (forward and backward)', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    await fwdBwd(gpu, (x) => adaptiveAvgPool2d(x, [3, 4]), seeded([2, 3, 7, 9]));
    await fwdBwd(gpu, (x) => adaptiveAvgPool2d(x, [5, 5]), seeded([1, 2, 5, 5], 2));
    await fwdBwd(gpu, (x) => adaptiveAvgPool2d(x, 1), seeded([2, 1, 3, 65], 3));
    await fwdBwd(gpu, (x) => adaptiveAvgPool2d(x, [7, 10]), seeded([1, 1, 3, 4], 4));
    await fwdBwd(gpu, (x) => adaptiveAvgPool2d(x, [2, 2]), seeded([0, 3, 5, 5], 5));
    await fwdBwd(gpu, (x) => globalAvgPool2d(x), seeded([2, 3, 5, 7], 6));
  });

  it('gradient (float64 finite differences, first and second order)', async () => {
    await gradcheck((x) => adaptiveAvgPool2d(x, [2, 3]), [seeded([1, 2, 5, 4])], { atol: 1e-6 });
    await gradcheck((x) => adaptiveAvgPool2d(x, [4, 5]), [seeded([1, 1, 3, 3], 2)], { atol: 1e-6 });
    await gradcheck((x) => globalAvgPool2d(x), [seeded([2, 1, 2, 3], 3)], { atol: 1e-6 });
    await hvpcheck((x) => adaptiveAvgPool2d(x, [2, 2]).square(), [seeded([1, 1, 3, 3], 4)], { atol: 1e-6 });
  });
});

describe('upsampleBilinear2d', () => {
  it('hand values (PyTorch interpolate, bilinear)', async () => {
    setBackend(cpu);
    const x = tensor([0, 1], [1, 1, 1, 2]);
    const close = (a: ArrayLike<number>, b: number[]) => b.forEach((v, i) => expect(a[i]).toBeCloseTo(v, 6));
    close(await upsampleBilinear2d(x, [1, 4]).data(), [0, 0.25, 0.75, 1]);
    close(await upsampleBilinear2d(x, [1, 4], { alignCorners: true }).data(), [0, 1 / 3, 2 / 3, 1]);
    close(await upsampleBilinear2d(tensor([1, 2, 3, 4], [1, 1, 2, 2]), 3, { alignCorners: true }).data(), [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4]);
    close(await upsampleBilinear2d(tensor([1, 2, 3, 4], [1, 1, 2, 2]), 3).data(), [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4]);
    // torch.nn.functional.interpolate(tensor([[[[1., 2.], [3., 4.]]]]), size=4, mode='bilinear')
    close(await upsampleBilinear2d(tensor([1, 2, 3, 4], [1, 1, 2, 2]), 4).data(),
      [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4]);
    expect(() => upsampleBilinear2d(x, [0, 2])).toThrow(ArgumentError);
    // [1, 1, 1] is an unbatched [C, H, W] input now (PyTorch semantics); rank 2 is still wrong.
    expect(() => upsampleBilinear2d(tensor([1], [1, 1]), 2)).toThrow(ShapeError);
  });

  it('webgpu matches cpu (forward and backward)', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    for (const alignCorners of [false, true]) {
      await fwdBwd(gpu, (x) => upsampleBilinear2d(x, [7, 9], { alignCorners }), seeded([2, 3, 4, 5]));
      await fwdBwd(gpu, (x) => upsampleBilinear2d(x, [3, 2], { alignCorners }), seeded([1, 2, 7, 5], 2));
      await fwdBwd(gpu, (x) => upsampleBilinear2d(x, [3, 3], { alignCorners }), seeded([1, 1, 1, 1], 3));
      await fwdBwd(gpu, (x) => upsampleBilinear2d(x, [1, 1], { alignCorners }), seeded([1, 2, 5, 3], 4));
      await fwdBwd(gpu, (x) => upsampleBilinear2d(x, [5, 65], { alignCorners }), seeded([1, 1, 3, 33], 5));
      await fwdBwd(gpu, (x) => upsampleBilinear2d(x, [4, 4], { alignCorners }), seeded([0, 2, 2, 2], 6));
    }
  });

  it('gradient (float64 finite differences, first and second order)', async () => {
    await gradcheck((x) => upsampleBilinear2d(x, [5, 7]), [seeded([1, 2, 3, 4])], { atol: 1e-6 });
    await gradcheck((x) => upsampleBilinear2d(x, [2, 3], { alignCorners: true }), [seeded([1, 1, 5, 4], 2)], { atol: 1e-6 });
    await gradcheck((x) => upsampleBilinear2d(x, [4, 3]), [seeded([2, 1, 3, 5], 3)], { atol: 1e-6 });
    await hvpcheck((x) => upsampleBilinear2d(x, [4, 5]).square(), [seeded([1, 1, 2, 3], 4)], { atol: 1e-6 });
  });
});

it('pooling ops do not leak', () => {
  setBackend(cpu);
  const x = tensor(values(2 * 3 * 6 * 6, 1, -1, 1), [2, 3, 6, 6]);
  const m0 = memory().liveTensors;
  const f = (u: Tensor) => upsampleBilinear2d(avgPool2d(maxPool2d(u, { kernelSize: 2 }), { kernelSize: 2, stride: 1 }), [5, 5]).square().mean();
  for (let i = 0; i < 3; i++) tidy(() => { grad(f)(x); });
  for (let i = 0; i < 3; i++) grad(f)(x).dispose();
  for (let i = 0; i < 3; i++) maxPool2d(x, { kernelSize: 3 }).dispose();
  expect(memory().liveTensors).toBe(m0);
});
