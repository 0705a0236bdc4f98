// Device-side error flags (issue 9): out-of-range indices on WebGPU raise the CPU backend's
// IndexError at the next read (no extra readback), device-born labels and embedding indices use
// the same mechanism; the WebGPU allocation limit is a typed error; composite frees its
// temporaries when its body throws.
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type Backend, BufferLimitError, DeviceError, Embedding, IndexError, type Tensor, WebGPUBackend, composite, crossEntropy, embedding,
  gather, grad, indexAdd, indexSelect, matmul, memory, nllLoss, logSoftmax, scatterAdd, setBackend, takeAlongAxis, tensor, tidy,
  validateIndices, zeros,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

afterEach(() => {
  setBackend(cpu);
});

const i32 = (data: number[], shape: number[], backend: Backend) => tensor(data, shape, { dtype: 'int32', backend });
const f32 = (data: number[], shape: number[], backend: Backend) => tensor(data, shape, { backend });
/** An int32 tensor computed on `backend` (so no host copy of its values exists). */
const computed = (data: number[], shape: number[], backend: Backend) => i32(data.map(() => 0), shape, backend).add(i32(data, shape, backend));

async function cpuMessage(f: (be: Backend) => Tensor): Promise<string> {
  try {
    await f(cpu).data();
  } catch (e) {
    expect(e).toBeInstanceOf(IndexError);
    return (e as Error).message;
  }
  throw new Error('the CPU backend did not throw');
}

async function gpuError(t: Tensor): Promise<IndexError> {
  try {
    await t.data();
  } catch (e) {
    expect(e).toBeInstanceOf(IndexError);
    return e as IndexError;
  }
  throw new Error('WebGPU raised nothing at the read');
}

const x45 = (be: Backend) => f32(Array.from({ length: 20 }, (_, i) => i + 1), [4, 5], be);
const CASES: [string, (be: Backend) => Tensor][] = [
  ['indexSelect', (be) => indexSelect(x45(be), 1, i32([0, 4, 5, 1], [2, 2], be))],
  ['indexSelect negative', (be) => indexSelect(x45(be), 0, i32([1, -1], [2], be))],
  ['gather', (be) => gather(x45(be), i32([0, 1, 2, 3, 4, 7, 0, 1], [4, 2], be), 1)],
  ['takeAlongAxis', (be) => takeAlongAxis(x45(be), i32([0, 1, 2, -3, 4], [1, 5], be), 0)],
  ['scatterAdd', (be) => scatterAdd(x45(be), 1, i32([0, 1, 9, 2], [2, 2], be), f32([1, 1, 1, 1], [2, 2], be))],
  ['indexAdd', (be) => indexAdd(x45(be), 0, i32([3, 4], [2], be), f32(new Array(10).fill(1), [2, 5], be))],
];

describe('WebGPU: out-of-range indices raise the CPU IndexError at the next read', () => {
  for (const [name, f] of CASES) {
    it(name, async (ctx) => {
      const gpu = await requireWebGPU(ctx);
      const want = await cpuMessage(f);
      const out = f(gpu); // recorded without error: the kernel only sets the flag
      const err = await gpuError(out);
      expect(err.message).toBe(`${want} (detected on WebGPU, raised at the next read)`);
      // The flag is cleared: the next read of a good result succeeds.
      expect(Array.from(await indexSelect(x45(gpu), 0, i32([3], [1], gpu)).data())).toEqual([16, 17, 18, 19, 20]);
    });
  }

  it('names the first bad dispatch, and raises at sync() or any later read of the backend', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const x = x45(gpu);
    const a = gather(x, i32([6], [1, 1], gpu), 1);
    const b = indexSelect(x, 0, i32([9], [1], gpu));
    const other = x.mul(2);
    await expect(other.data()).rejects.toThrow(/^gather: index 6 at flat position 0 of indices \[1,1\] \(x \[4,5\], axis 1\)/);
    // Both were reported by that one read; nothing is pending now.
    await expect(gpu.sync()).resolves.toBeUndefined();
    expect((await a.data())[0]).toBe(0);
    expect((await b.data())[0]).toBe(0);
    indexSelect(x, 1, i32([0, 5], [2], gpu));
    await expect(gpu.sync()).rejects.toThrow(/^indexSelect: index 5 at position 1 of indices \[2\]/);
    expect(Array.from(await other.data())).toEqual(Array.from({ length: 20 }, (_, i) => 2 * (i + 1)));
  });

  it('the gradient of a gather with a bad index raises too (the scatter kernel flags it)', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const idx = i32([0, 8], [1, 2], gpu);
    const g = grad((x) => gather(x, idx, 1).sum())(x45(gpu));
    await expect(g.data()).rejects.toThrow(/^(gather|scatterAdd): index 8 at flat position 1 of indices \[1,2\]/);
    const cidx = i32([0, 8], [1, 2], cpu);
    expect(() => grad((x) => gather(x, cidx, 1).sum())(x45(cpu))).toThrow(/^gather: index 8 at flat position 1/);
  });

  it('costs no extra readback: the flag is mapped with the data that is read', async (ctx) => {
    const gpu = (await requireWebGPU(ctx)) as WebGPUBackend;
    const probe = gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const maps = vi.spyOn(Object.getPrototypeOf(probe) as GPUBuffer, 'mapAsync');
    probe.destroy();
    const x = x45(gpu);
    const ys = tidy(() => {
      const r: Tensor[] = [];
      for (let k = 0; k < 5; k++) r.push(gather(x, i32([k % 5, 1], [1, 2], gpu), 1));
      return r;
    });
    const submits = gpu.submitCount;
    maps.mockClear();
    const got = await ys[4].data();
    expect(Array.from(got)).toEqual([5, 2]);
    expect(maps).toHaveBeenCalledTimes(1);
    expect(gpu.submitCount - submits).toBe(1);
    maps.mockRestore();
    for (const t of [x, ...ys]) t.dispose();
  });
});

describe('device-born labels and embedding indices use the device flag (IndexError, not NaN)', () => {
  it('crossEntropy / nllLoss on WebGPU: a computed bad label raises at the next read', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const logits = f32([1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3], [4, 3], gpu);
    const dev = computed([0, 1, 7, -100], [4], gpu); // −100 is the ignoreIndex
    const loss = crossEntropy(logits, dev, { reduction: 'none' });
    const err = await gpuError(loss);
    expect(err.message).toMatch(/^crossEntropy: class index 7 at position 2 of \[4\] is out of range for input \[4,3\] with C = 3 classes; expected 0 <= class index < 3 or the ignoreIndex -100 \(detected on WebGPU/);
    await expect(nllLoss(logSoftmax(logits, 1), computed([0, -1, 1, 2], [4], gpu)).item()).rejects.toThrow(/^nllLoss: class index -1 at position 1 of \[4\]/);
    // Segmentation targets [N, d1]: the position is named in full.
    const seg = f32(new Array(2 * 3 * 2).fill(0.5), [2, 3, 2], gpu);
    await expect(crossEntropy(seg, computed([0, 1, 2, 3], [2, 2], gpu)).item()).rejects.toThrow(/^crossEntropy: class index 3 at position \[1, 1\] \(flat 3\) of \[2,2\]/);
    // Good (and ignored) labels: the value agrees with the CPU.
    const good = await crossEntropy(logits, computed([0, 1, 2, -100], [4], gpu)).item();
    const want = await crossEntropy(f32([1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3], [4, 3], cpu), i32([0, 1, 2, -100], [4], cpu)).item();
    expect(Math.abs(good - want)).toBeLessThan(1e-5);
    // The same labels on the CPU throw at once.
    expect(() => crossEntropy(f32([1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3], [4, 3], cpu), i32([0, 1, 7, -100], [4], cpu))).toThrow(/^crossEntropy: class index 7 at position 2 of \[4\]/);
  });

  it('embedding / Embedding on WebGPU: computed bad indices raise at the next read', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const w = f32([1, 2, 3, 4, 5, 6, 7, 8], [4, 2], gpu);
    await expect(embedding(computed([1, 4, 0], [3], gpu), w).data()).rejects.toThrow(/^embedding: index 4 at position 1 of indices \[3\] \(x \[4,2\], axis 0\) is out of range \[0, 4\)/);
    const table = Embedding.fromPretrained(f32([1, 2, 3, 4, 5, 6, 7, 8], [4, 2], gpu));
    await expect(table.forward(computed([[0, 1], [2, -2]].flat(), [2, 2], gpu)).data()).rejects.toThrow(/^embedding: index -2 at position 3 of indices \[2,2\]/);
    expect(Array.from(await table.forward(computed([3, 0], [2], gpu)).data())).toEqual([7, 8, 1, 2]);
  });

  it('validateIndices: at once on the CPU, at the next read on WebGPU; allowed values pass', async (ctx) => {
    const msg = (v: number, i: number) => `myOp: label ${v} at ${i}`;
    expect(() => validateIndices(i32([0, 2, 3], [3], cpu), 3, { message: msg })).toThrow(/^myOp: label 3 at 2$/);
    expect(() => validateIndices(i32([0, -5, 2], [3], cpu), 3, { allowed: -5, message: msg })).not.toThrow();
    const gpu = await requireWebGPU(ctx);
    const ok = f32([1], [1], gpu);
    validateIndices(computed([0, -5, 2], [3], gpu), 3, { allowed: -5, message: msg });
    validateIndices(computed([0, 1, 2], [3], gpu), 3, { message: msg });
    expect(await ok.item()).toBe(1);
    validateIndices(computed([0, 0, 0, -1, 0], [5], gpu), 3, { message: msg });
    await expect(ok.item()).rejects.toThrow(/^myOp: label -1 at 3 \(detected on WebGPU, raised at the next read\)$/);
    // Several bad values in one dispatch: one of them is named (which one may vary).
    validateIndices(computed([0, 7, 0, -1, 9], [5], gpu), 3, { message: msg });
    await expect(ok.item()).rejects.toThrow(/^myOp: label (7 at 1|-1 at 3|9 at 4) \(detected on WebGPU/);
  });
});

describe('WebGPU allocation limit', () => {
  it('an op whose output exceeds the adapter buffer limit throws a BufferLimitError naming op, shape and limit', async (ctx) => {
    const gpu = (await requireWebGPU(ctx)) as WebGPUBackend;
    const max = gpu.maxBufferBytes;
    const k = Math.ceil(Math.sqrt(max / 4)) + 1;
    const a = zeros([k, 1], { backend: gpu });
    const b = zeros([1, k], { backend: gpu });
    const live = memory().liveTensors;
    let err: unknown = null;
    try {
      matmul(a, b);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BufferLimitError);
    expect(err).toBeInstanceOf(DeviceError);
    const e = err as BufferLimitError;
    expect([e.op, e.shape, e.bytes, e.limit]).toEqual(['matmul', [k, k], k * k * 4, max]);
    expect(e.message).toMatch(new RegExp(`^matmul: a tensor \\[${k},${k}\\] needs .* which exceeds this adapter's limit of .*\\(${max} bytes\\)`));
    expect(memory().liveTensors).toBe(live);
    expect(() => zeros([k, k], { backend: gpu })).toThrow(BufferLimitError);
    a.dispose();
    b.dispose();
  });
});

describe('composite frees its temporaries when its body throws', () => {
  it('liveTensors is unchanged after a throwing composite (nested too)', () => {
    setBackend(cpu);
    const x = tensor([1, 2, 3]);
    const before = memory().liveTensors;
    const boom = () =>
      composite(() => {
        const a = x.mul(2);
        const b = composite(() => a.add(1).exp());
        b.reshape([3, 1]);
        return composite(() => {
          b.sub(a);
          throw new IndexError('boom');
        });
      });
    for (let i = 0; i < 3; i++) expect(boom).toThrow('boom');
    expect(memory().liveTensors).toBe(before);
    // Inside tidy, and with an op that throws its own typed error.
    tidy(() => {
      expect(() => composite(() => x.mul(3).reshape([2, 2]))).toThrow(/reshape/);
    });
    expect(memory().liveTensors).toBe(before);
    x.dispose();
  });
});
