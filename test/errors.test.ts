import { describe, expect, it, vi } from 'vitest';
import {
  ArgumentError, BackendMismatchError, DTypeError, DeviceError, DisposedTensorError, IndexError, KernelCompileError, ShapeError,
  WebGPUBackend, dropout, init, leakyRelu, logsumexp, matmul, powScalar, setBackend, setGpuProvider, softmax, sum, tensor, where,
} from '../node.js';
import { installNodeWebGPU } from '../platform/node-webgpu.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

describe('typed errors name the op, the shapes and what was expected', () => {
  it('using a disposed tensor', () => {
    setBackend(cpu);
    const a = tensor([1, 2]);
    a.dispose();
    expect(() => a.add(1)).toThrow(DisposedTensorError);
    expect(() => a.add(1)).toThrow(/add: tensor #\d+ \[2\] float32 was used after dispose\(\)/);
    return expect(a.data()).rejects.toThrow(DisposedTensorError);
  });

  it('mismatched shapes', async () => {
    setBackend(cpu);
    expect(() => tensor([[1, 2, 3], [4, 5, 6]]).add(tensor([1, 2]))).toThrow(ShapeError);
    expect(() => tensor([[1, 2, 3], [4, 5, 6]]).add(tensor([1, 2]))).toThrow(/add: shapes \[2,3\] and \[2\] cannot be broadcast/);
    expect(() => matmul(tensor([[1, 2, 3]]), tensor([[1, 2]]))).toThrow(/matmul: inner dims differ: \[1,3\] @ \[1,2\] \(K = 3 vs 1\)/);
    expect(() => tensor([1, 2, 3]).reshape([2, 2])).toThrow(/reshape: cannot reshape \[3\] \(3 elements\) to \[2,2\]/);
    await expect(tensor([1, 2, 3]).item()).rejects.toThrow(/item: expected a tensor with exactly one element, got shape \[3\]/);
    expect(() => tensor([1, 2, 3], [2, 2])).toThrow(/tensor: 3 values do not fill shape \[2,2\]/);
  });

  it('wrong dtypes', async (ctx) => {
    setBackend(cpu);
    const i = tensor([1, 2], [1, 2], { dtype: 'int32' });
    // int32 @ int32 is supported (test/matmul-int.test.ts); mixing int and float is not.
    expect(() => matmul(i, tensor([[1], [2]]))).toThrow(DTypeError);
    expect(() => where(tensor([1, 0]), tensor([1, 2]), tensor([3, 4]))).toThrow(/where: condition must be bool, got float32 \[2\]/);
    expect(() => dropout(i, 0.5)).toThrow(DTypeError);
    const gpu = await requireWebGPU(ctx);
    expect(() => tensor([1], [1], { dtype: 'float64', backend: gpu })).toThrow(/float64 is not supported on WebGPU/);
  });

  it('out-of-range axes', () => {
    setBackend(cpu);
    const x = tensor([[1, 2], [3, 4]]);
    expect(() => sum(x, 2)).toThrow(IndexError);
    expect(() => sum(x, 2)).toThrow(/sum: axis 2 is out of range for a tensor of rank 2 \(expected -2 <= axis < 2\)/);
    expect(() => x.transpose(0, -3)).toThrow(IndexError);
    expect(() => sum(x, [0, -2])).toThrow(/sum: axis 0 given twice/);
    expect(() => x.argmax(3)).toThrow(IndexError);
  });

  it('non-finite arguments are rejected where the output is promised finite', () => {
    setBackend(cpu);
    const x = tensor([1, -2]);
    expect(() => leakyRelu(x, NaN)).toThrow(ArgumentError);
    expect(() => powScalar(x, Infinity)).toThrow(/pow: exponent must be a finite number/);
    expect(() => dropout(x, NaN)).toThrow(/dropout: p must be in \[0, 1\)/);
  });

  it('numerically stable ops stay finite on extreme inputs', async () => {
    setBackend(cpu);
    const z = tensor([[1e4, -1e4, 0], [-Infinity, -Infinity, -Infinity]]);
    const lse = await logsumexp(z, 1).data();
    expect(lse[0]).toBeCloseTo(1e4, 3);
    expect(lse[1]).toBe(-Infinity);
    const p = await softmax(tensor([[1e4, -1e4, 0], [3e38, 3e38, -3e38]])).data();
    expect(Array.from(p).every(Number.isFinite)).toBe(true);
    expect(p[0]).toBe(1);
    expect(p[3] + p[4]).toBeCloseTo(1, 6);
  });

  it('tensors on different backends cannot be combined', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const a = tensor([1], [1], { backend: cpu });
    const b = tensor([1], [1], { backend: gpu });
    expect(() => a.add(b)).toThrow(BackendMismatchError);
    expect(() => a.add(b)).toThrow(/add: inputs live on different backends \(cpu and webgpu\)/);
  });

  it('a WGSL compile error names the kernel and the offending line', async (ctx) => {
    const gpu = (await requireWebGPU(ctx)) as WebGPUBackend;
    const bad = { name: 'broken_kernel', code: '@compute @workgroup_size(1)\nfn main() {\n  let x: f32 = 1u;\n}\n' };
    const err = await gpu.compileKernel(bad).catch((e) => e);
    expect(err).toBeInstanceOf(KernelCompileError);
    expect(err.kernel).toBe('broken_kernel');
    expect(err.line).toBe(3);
    expect(err.message).toMatch(/kernel 'broken_kernel' failed to compile at line 3/);
  });

  it('a lost device is detected and reported as DeviceError', async (ctx) => {
    await requireWebGPU(ctx);
    const be = (await WebGPUBackend.create())!;
    const t = tensor([1, 2], [2], { backend: be });
    be.device.destroy();
    await be.device.lost;
    await new Promise((r) => setTimeout(r, 0));
    expect(() => t.add(1)).toThrow(DeviceError);
    expect(() => t.add(1)).toThrow(/device was lost/);
  });

  it('no adapter: webgpu init fails with DeviceError, auto falls back to the CPU with a notice', async () => {
    setGpuProvider(() => undefined);
    try {
      expect(await WebGPUBackend.create()).toBeNull();
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
      const { runtime } = await import('../engine/runtime.js');
      const saved = runtime.backends.get('webgpu');
      runtime.backends.delete('webgpu');
      try {
        await expect(init({ backend: 'webgpu' })).rejects.toThrow(DeviceError);
        const be = await init({ backend: 'auto' });
        expect(be.name).toBe('cpu');
        expect(warn).toHaveBeenCalledTimes(1);
        expect(String(warn.mock.calls[0][0])).toMatch(/WebGPU unavailable .* using the CPU reference backend/);
      } finally {
        if (saved) runtime.backends.set('webgpu', saved);
        warn.mockRestore();
      }
    } finally {
      installNodeWebGPU();
    }
  });
});
