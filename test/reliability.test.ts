// No silent wrong answers (issue 9): bad input is rejected with typed errors, lifetimes and
// concurrency are safe, and errors name what the user called.
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AllocationError, ArgumentError, CpuBackend, DTypeError, DataLoader, DestroyedDeviceError, DubitoError, Linear, SGD, ScopeError,
  ShapeError, type Tensor, arange, cast, cpuBackend, decodeSafetensors, encodeSafetensors, fit, full, grad, gradients, init,
  intTensor, keep, matmul, memory, noGrad, randint, readSafetensorsHeader, safetensorsToTensors, setAsyncScopeContext, setBackend,
  setDebug, shutdown, softmax, tensor, tidy, uniform, valueAndGrad, webgpuBackend, zeros, manualSeed, type DType, Sequential,
} from '../node.js';
import { installNodeAsyncScopes } from '../platform/node-async-scope.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

afterEach(() => {
  setBackend(cpu);
});

describe('tensor() rejects ragged and mixed-depth nested arrays', () => {
  it('ragged rows whose total matches a rectangle', () => {
    setBackend(cpu);
    expect(() => tensor([[1, 2], [3], [4, 5, 6]])).toThrow(ShapeError);
    expect(() => tensor([[1, 2], [3], [4, 5, 6]])).toThrow(/tensor: ragged nested array: element \[1\] has length 1, expected 2 \(inferred shape \[3,2\]\)/);
    expect(() => tensor([[[1], [2]], [[3, 4]]])).toThrow(ShapeError);
  });

  it('mixed depths', () => {
    setBackend(cpu);
    expect(() => tensor([[1, 2], [[3], [4]]])).toThrow(/tensor: mixed nesting depth: element \[1\]\[0\] is an array/);
    expect(() => tensor([1, [2]])).toThrow(ShapeError);
    expect(() => tensor([[1], 2])).toThrow(/tensor: mixed nesting depth: element \[1\] is a number, expected an array of length 1/);
  });

  it('rectangular and empty arrays still work', async () => {
    setBackend(cpu);
    expect(tensor([[1, 2], [3, 4], [5, 6]]).shape).toEqual([3, 2]);
    expect(tensor([]).shape).toEqual([0]);
    expect(tensor([[], []]).shape).toEqual([2, 0]);
    expect(Array.from(await tensor([[true, false]]).data())).toEqual([1, 0]);
  });
});

describe('int32 creation rejects values that would wrap or vanish', () => {
  it('out of range and non-finite values throw; fractions truncate toward zero', async () => {
    setBackend(cpu);
    expect(() => full([2], 3e9, { dtype: 'int32' })).toThrow(ArgumentError);
    expect(() => full([2], 3e9, { dtype: 'int32' })).toThrow(/full: value 3000000000 cannot be stored as int32 \(outside \[-2147483648, 2147483647\]\)/);
    expect(() => tensor([1, Infinity], { dtype: 'int32' })).toThrow(/tensor: value Infinity at flat index 1 cannot be stored as int32 \(not finite\)/);
    expect(() => tensor([NaN], { dtype: 'int32' })).toThrow(ArgumentError);
    expect(() => tensor([-2147483649], [1], { dtype: 'int32' })).toThrow(ArgumentError);
    expect(() => arange(0, 3, 1, { dtype: 'int32' }).dispose()).not.toThrow();
    expect(() => arange(2147483640, 2147483660, 1, { dtype: 'int32' })).toThrow(/arange: value 2147483648 at flat index 8/);
    expect(Array.from(await tensor([1.9, -1.9, 2147483647, -2147483648], { dtype: 'int32' }).data())).toEqual([1, -1, 2147483647, -2147483648]);
    expect(Array.from(await full([1], -7.5, { dtype: 'int32' }).data())).toEqual([-7]);
  });

  it('intTensor is tensor(..., { dtype: "int32" })', async () => {
    setBackend(cpu);
    const t = intTensor([[0, 2], [1, 3]]);
    expect(t.dtype).toBe('int32');
    expect(t.shape).toEqual([2, 2]);
    expect(Array.from(await t.data())).toEqual([0, 2, 1, 3]);
    expect(() => intTensor([2 ** 40])).toThrow(ArgumentError);
  });
});

describe('unknown dtypes and impossible sizes', () => {
  it('float16 is a DTypeError listing the supported dtypes', () => {
    setBackend(cpu);
    const f16 = 'float16' as DType;
    expect(() => tensor([1], { dtype: f16 })).toThrow(DTypeError);
    expect(() => tensor([1], { dtype: f16 })).toThrow(/tensor: unsupported dtype 'float16'; supported: float32, int32, bool, float64/);
    expect(() => zeros([2], { dtype: f16 })).toThrow(/zeros: unsupported dtype 'float16'/);
    expect(() => arange(3, undefined, 1, { dtype: f16 })).toThrow(DTypeError);
    expect(() => cast(tensor([1]), f16)).toThrow(/cast: unsupported dtype 'float16'/);
  });

  it('arange(0, 1e10) is a typed error on both backends', async (ctx) => {
    setBackend(cpu);
    expect(() => arange(0, 1e10)).toThrow(AllocationError);
    expect(() => arange(0, 1e10)).toThrow(/arange: cannot allocate \[10000000000\] \(37\.25 GiB \(40000000000 bytes\)\), more than the 2\.00 GiB/);
    const gpu = await requireWebGPU(ctx);
    expect(() => arange(0, 1e10, 1, { backend: gpu })).toThrow(ArgumentError);
    expect(() => arange(0, 1e10, 1, { backend: gpu })).toThrow(/arange: \[0, 10000000000\) with step 1 has 10000000000 elements, more than one tensor can hold/);
    expect(() => arange(0, Infinity)).toThrow(ArgumentError);
  });
});

describe('CPU allocation cap', () => {
  it('huge tensors throw an AllocationError naming the op, the shape and the bytes', () => {
    setBackend(cpu);
    expect(cpu.maxAllocationBytes).toBe(2 * 1024 ** 3);
    const before = memory().liveTensors;
    expect(() => zeros([1024, 1024, 1024])).toThrow(AllocationError);
    expect(() => zeros([1024, 1024, 1024])).toThrow(/zeros: cannot allocate \[1024,1024,1024\] \(4\.00 GiB \(4294967296 bytes\)\)/);
    expect(() => zeros([2 ** 31, 2 ** 31])).toThrow(AllocationError); // was a raw RangeError
    const a = zeros([40000, 1]);
    const b = zeros([1, 40000]);
    let err: unknown;
    try {
      matmul(a, b); // 40000 × 40000 float32 = 6.4 GB
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AllocationError);
    expect(err).toBeInstanceOf(DubitoError);
    expect((err as AllocationError).op).toBe('matmul');
    expect((err as AllocationError).shape).toEqual([40000, 40000]);
    expect((err as AllocationError).bytes).toBe(6.4e9);
    a.dispose();
    b.dispose();
    expect(memory().liveTensors).toBe(before);
  });

  it('the cap is configurable through init() and the backend property', async () => {
    const be = cpuBackend();
    const saved = be.maxAllocationBytes;
    try {
      await init({ backend: 'cpu', cpuMaxAllocationBytes: 1024 });
      expect(be.maxAllocationBytes).toBe(1024);
      zeros([256]).dispose(); // exactly 1024 bytes
      expect(() => zeros([257])).toThrow(/zeros: cannot allocate \[257\] \(1\.00 KiB \(1028 bytes\)\), more than the 1\.00 KiB \(1024 bytes\) allowed/);
      expect(() => tensor(new Float32Array(300))).toThrow(AllocationError);
      be.maxAllocationBytes = 4096;
      zeros([257]).dispose();
      await expect(init({ backend: 'cpu', cpuMaxAllocationBytes: -1 })).rejects.toThrow(ArgumentError);
    } finally {
      be.maxAllocationBytes = saved;
    }
    expect(new CpuBackend().maxAllocationBytes).toBe(2 * 1024 ** 3);
  });
});

describe('gradients with respect to integer inputs', () => {
  it('grad / valueAndGrad / gradients / requireGrad throw a DTypeError', () => {
    setBackend(cpu);
    const i = intTensor([1, 2, 3]);
    const x = tensor([1, 2, 3]);
    const f = (t: Tensor) => cast(t, 'float32').square().sum();
    expect(() => grad(f)(i)).toThrow(DTypeError);
    expect(() => grad(f)(i)).toThrow(/grad: cannot differentiate with respect to argument 0, a int32 tensor \[3\]/);
    const g = (a: Tensor, b: Tensor) => a.mul(cast(b, 'float32')).sum();
    expect(() => valueAndGrad(g, { argnums: [0, 1] })(x, i)).toThrow(/grad: cannot differentiate with respect to argument 1, a int32 tensor/);
    const { grads } = valueAndGrad(g, { argnums: [0] })(x, i); // int inputs outside argnums are fine
    grads[0].dispose();
    const y = tidy(() => keep(x.requireGrad().mul(2).sum()));
    expect(() => gradients(y, [i])).toThrow(/gradients: cannot differentiate with respect to xs\[0\], a int32 tensor/);
    expect(() => tensor([true, false], { dtype: 'bool' }).requireGrad()).toThrow(DTypeError);
    y.dispose();
    x.requireGrad(false);
  });
});

describe('cast to the same dtype is a new tensor', () => {
  it('disposing the cast leaves the source alive', async () => {
    setBackend(cpu);
    const x = tensor([1, 2, 3]);
    const before = memory().liveTensors;
    const c = cast(x, 'float32');
    expect(c).not.toBe(x);
    expect(memory().liveTensors).toBe(before + 1);
    c.dispose();
    expect(x.isDisposed).toBe(false);
    expect(Array.from(await x.data())).toEqual([1, 2, 3]);
    const d = x.cast('float32');
    x.dispose();
    expect(Array.from(await d.data())).toEqual([1, 2, 3]); // shares the storage, own lifetime
    d.dispose();
    // Gradients flow through it.
    const gx = grad((t: Tensor) => cast(t, 'float32').square().sum())(tensor([3]));
    expect(Array.from(await gx.data())).toEqual([6]);
  });
});

describe('safetensors names that are Object.prototype keys', () => {
  it('__proto__, constructor and toString round-trip', async () => {
    setBackend(cpu);
    const rec: Record<string, Tensor> = Object.create(null);
    rec['__proto__'] = tensor([1, 2]);
    rec['constructor'] = tensor([3]);
    rec['toString'] = tensor([[4, 5]]);
    rec['w'] = tensor([6]);
    const bytes = await encodeSafetensors(rec, { hasOwnProperty: 'x' });
    const header = readSafetensorsHeader(bytes);
    expect(Object.keys(header.tensors).sort()).toEqual(['__proto__', 'constructor', 'toString', 'w']);
    const dec = decodeSafetensors(bytes);
    expect(Object.getPrototypeOf(dec.tensors)).toBe(null);
    expect(Object.keys(dec.tensors).sort()).toEqual(['__proto__', 'constructor', 'toString', 'w']);
    expect(Array.from(dec.tensors['__proto__'].data)).toEqual([1, 2]);
    expect(dec.tensors['toString'].shape).toEqual([1, 2]);
    expect(dec.metadata['hasOwnProperty']).toBe('x');
    const ts = safetensorsToTensors(dec);
    expect(Object.keys(ts).sort()).toEqual(['__proto__', 'constructor', 'toString', 'w']);
    expect(Array.from(await ts['__proto__'].data())).toEqual([1, 2]);
    for (const k of Object.keys(ts)) ts[k].dispose();
    for (const k of Object.keys(rec)) rec[k].dispose();
  });

  it('stateDict is a null-prototype record', () => {
    setBackend(cpu);
    const m = new Linear(2, 3);
    const sd = m.stateDict();
    expect(Object.getPrototypeOf(sd)).toBe(null);
    expect(Object.keys(sd).sort()).toEqual(['bias', 'weight']);
    m.loadStateDict(sd);
    for (const k of Object.keys(sd)) sd[k].dispose();
    m.dispose();
  });
});

describe('fit and evaluate on an empty loader', () => {
  it('throws instead of returning NaN losses', async () => {
    setBackend(cpu);
    const model = new Linear(2, 3);
    const opt = new SGD(model.parameters(), { lr: 0.1 });
    const empty = new DataLoader([{ data: [1, 2], shape: [1, 2], dtype: 'float32' }, { data: [0], shape: [1], dtype: 'int32' }], { batchSize: 4, dropLast: true });
    await expect(fit(model, empty, { epochs: 1, optimizer: opt, progress: false })).rejects.toThrow(ArgumentError);
    await expect(fit(model, empty, { epochs: 1, optimizer: opt, progress: false })).rejects.toThrow(/fit: the loader yields no batches \(1 samples, batchSize 4, dropLast\)/);
    const none = new DataLoader([{ data: [], shape: [0, 2], dtype: 'float32' }, { data: [], shape: [0], dtype: 'int32' }], { batchSize: 4 });
    await expect(fit(model, none, { epochs: 1, optimizer: opt, progress: false })).rejects.toThrow(/fit: the loader yields no batches \(0 samples/);
    model.dispose();
  });
});

describe('error messages name the op the user called', () => {
  it('softmax errors say softmax', () => {
    setBackend(cpu);
    const x = tensor([[1, 2]]);
    expect(() => softmax(x, 2)).toThrow(/^softmax: axis 2 is out of range/);
    x.dispose();
    expect(() => softmax(x)).toThrow(/^softmax: tensor #\d+ \[1,2\] float32 was used after dispose\(\)/);
  });

  it('errors during backward say backward and whose gradient failed', () => {
    setBackend(cpu);
    const w = tensor([1, 2]).requireGrad();
    const a = tensor([3, 4]);
    const y = w.mul(a).sum();
    a.dispose(); // needed by mul's gradient
    expect(() => y.backward()).toThrow(/^backward: in the gradient of 'mul' \(output #\d+ \[2\]\): mul: tensor #\d+ \[2\] float32 was used after dispose\(\)/);
    y.dispose();
    expect(() => y.backward()).toThrow(/^backward: tensor #\d+ \[\] float32 was used after dispose\(\)/);
    w.dispose();
  });

  it("loadStateDict '<key>' names the key", () => {
    setBackend(cpu);
    const m = new Linear(2, 1);
    const sd = m.stateDict();
    sd['bias'].dispose();
    expect(() => m.loadStateDict(sd)).toThrow(/^loadStateDict\(Linear\) 'bias': tensor #\d+ \[1\] float32 was used after dispose\(\)/);
    for (const k of Object.keys(sd)) sd[k].dispose();
    m.dispose();
  });
});

/** Two training loops that await inside their async tidy scopes at every step. */
async function asyncLoop(seed: number, steps: number, jitter: number[]): Promise<number[]> {
  manualSeed(seed);
  const x = keep(uniform([8, 4]));
  let w: Tensor = keep(uniform([4, 1])).requireGrad();
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const l = await tidy(async () => {
      const loss = x.matmul(w).sub(1).square().mean();
      await new Promise((r) => setTimeout(r, jitter[s % jitter.length]));
      loss.backward();
      const next = noGrad(() => w.sub(w.grad!.mul(0.1)));
      await Promise.resolve();
      w.dispose();
      w = keep(next).requireGrad();
      return loss.detach();
    });
    // The returned tensor belongs to this task: another task's scope must not dispose it.
    await new Promise((r) => setTimeout(r, jitter[(s + 1) % jitter.length]));
    losses.push(await l.item());
    l.dispose();
  }
  w.dispose();
  x.dispose();
  return losses;
}

describe('overlapping async tidy scopes', () => {
  it('Node: two interleaved async training loops neither leak nor dispose each other\'s tensors', async () => {
    setBackend(cpu);
    const base = memory().liveTensors;
    // Each loop's own draws come from explicit seeds: run them alone first for the reference.
    const refA = await asyncLoop(1, 12, [0]);
    const refB = await asyncLoop(2, 12, [0]);
    expect(refA[11]).toBeLessThan(refA[0]);
    expect(memory().liveTensors).toBe(base);
    // Each loop draws its random tensors synchronously before its first await, so the global
    // generator gives them the same values when they run interleaved.
    const [a, b] = await Promise.all([asyncLoop(1, 12, [1, 0, 2]), asyncLoop(2, 12, [0, 2, 1])]);
    expect(a).toEqual(refA);
    expect(b).toEqual(refB);
    expect(memory().liveTensors).toBe(base);
  });

  it('without per-task tracking (browsers) overlapping async scopes reject with a ScopeError and dispose nothing of the other task', async () => {
    setBackend(cpu);
    setAsyncScopeContext(null);
    try {
      const base = memory().liveTensors;
      const kept: Tensor[] = [];
      const task = (v: number) =>
        tidy(async () => {
          const t = tensor([v]);
          await new Promise((r) => setTimeout(r, 1));
          kept.push(t);
          return t;
        });
      const results = await Promise.allSettled([task(1), task(2)]);
      for (const r of results) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ScopeError);
        expect(String((r as PromiseRejectedResult).reason)).toMatch(/await one async tidy before starting the next/);
      }
      // Nothing was disposed by the overlapping scopes: the tensors are still readable.
      for (const t of kept) expect(t.isDisposed).toBe(false);
      expect(Array.from(await kept[0].data())).toEqual([1]);
      for (const t of kept) t.dispose();
      // Sequential async scopes still work without a carrier.
      const r = await tidy(async () => {
        const t = tensor([5]);
        await Promise.resolve();
        return t.add(1);
      });
      expect(await r.item()).toBe(6);
      r.dispose();
      expect(memory().liveTensors).toBe(base);
    } finally {
      installNodeAsyncScopes();
    }
  });
});

describe('leak warnings in debug mode', () => {
  it('the FinalizationRegistry warning names the op that created the leaked tensor', async () => {
    setBackend(cpu);
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const prev = setDebug({ warnLeaks: true });
    try {
      (() => {
        const a = tensor([[1, 2]]);
        const b = tensor([[3], [4]]);
        matmul(a, b); // leaked: never disposed, never referenced
        a.dispose();
        b.dispose();
      })();
      let found = false;
      for (let i = 0; i < 50 && !found; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 10));
        found = warn.mock.calls.some((c) => /made by 'matmul': #\d+ \[1,1\] float32/.test(String(c[0])));
      }
      expect(found).toBe(true);
      expect(warn.mock.calls.some((c) => /garbage-collected without dispose\(\)/.test(String(c[0])))).toBe(true);
    } finally {
      setDebug(prev);
      warn.mockRestore();
    }
  });
});

describe('devices: concurrent init and shutdown', () => {
  it('two concurrent init() calls share one WebGPU device', async (ctx) => {
    await requireWebGPU(ctx);
    shutdown();
    const [a, b] = await Promise.all([init({ backend: 'webgpu' }), init({ backend: 'webgpu' })]);
    expect(a).toBe(b);
    expect(a.name).toBe('webgpu');
    expect(typeof a.adapterInfo.vendor).toBe('string'); // no cast needed
    const x = tensor([1, 2], [2], { backend: a });
    const y = tensor([3, 4], [2], { backend: b });
    const s = x.add(y);
    expect(Array.from(await s.data())).toEqual([4, 6]);
    const [c, d] = await Promise.all([webgpuBackend(), webgpuBackend()]);
    expect(c).toBe(a);
    expect(d).toBe(a);
    for (const t of [x, y, s]) t.dispose();
  });

  it('a module created before shutdown() + init() gets a DestroyedDeviceError; memory() stops counting its tensors', async (ctx) => {
    await requireWebGPU(ctx);
    const gpu = await init({ backend: 'webgpu' });
    const model = new Sequential(new Linear(2, 2));
    const x = tensor([[1, 2]]);
    const live = memory().liveTensors;
    shutdown();
    expect(memory().liveTensors).toBe(live - 3); // weight, bias, x
    const gpu2 = await init({ backend: 'webgpu' });
    expect(gpu2).not.toBe(gpu);
    const x2 = tensor([[1, 2]]);
    expect(() => model.forward(x2)).toThrow(DestroyedDeviceError);
    expect(() => model.forward(x2)).toThrow(/tensor #\d+ \[\d+(,\d+)?\] float32 belongs to a webgpu device destroyed by shutdown\(\)/);
    expect(() => x.add(x2)).toThrow(/^add: tensor #\d+ \[1,2\] float32 belongs to a webgpu device destroyed by shutdown\(\)/);
    await expect(x.data()).rejects.toThrow(DestroyedDeviceError);
    x.dispose(); // disposing a dead tensor is harmless and does not change the count
    model.dispose();
    expect(memory().liveTensors).toBe(live - 3 + 1);
    x2.dispose();
    // The CPU backend holds no device: its tensors survive shutdown().
    const c = tensor([1], [1], { backend: cpu });
    shutdown();
    expect(await c.item()).toBe(1);
    c.dispose();
  });
});

describe('randint', () => {
  it('uniform integers in [low, high), identical on both backends', async (ctx) => {
    setBackend(cpu);
    const r = randint(-3, 5, [4000], { seed: 7 });
    expect(r.dtype).toBe('int32');
    const v = Array.from(await r.data());
    expect(Math.min(...v)).toBe(-3);
    expect(Math.max(...v)).toBe(4);
    const counts = new Array(8).fill(0);
    for (const k of v) counts[k + 3]++;
    for (const c of counts) expect(Math.abs(c - 500)).toBeLessThan(120); // ~5 sigma of Binomial(4000, 1/8)
    expect(() => randint(3, 3, [2])).toThrow(ArgumentError);
    expect(() => randint(0, 2 ** 25, [2])).toThrow(/randint: high - low = 33554432 is more than 2\^24/);
    expect(() => randint(0.5, 3, [2])).toThrow(ArgumentError);
    await requireWebGPU(ctx);
    const gpu = await webgpuBackend(); // the current device (an earlier test shut the first one down)
    const g = randint(-3, 5, [4000], { seed: 7, backend: gpu });
    expect(Array.from(await g.data())).toEqual(v);
    const big = randint(0, 2 ** 24, [1001], { seed: 3 });
    const bigG = randint(0, 2 ** 24, [1001], { seed: 3, backend: gpu });
    expect(Array.from(await bigG.data())).toEqual(Array.from(await big.data()));
    for (const t of [r, g, big, bigG]) t.dispose();
  });
});
