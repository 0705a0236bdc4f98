import { describe, expect, it } from 'vitest';
import { type Backend, type Tensor, keep, memory, noGrad, setBackend, tensor, tidy, uniform, manualSeed } from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

/** 1,000 forward/backward/update steps of a small MLP must keep live tensors and bytes flat. */
async function trainLoop(be: Backend, steps: number) {
  setBackend(be);
  manualSeed(1);
  let w1: Tensor = keep(uniform([8, 16], { low: -0.5, high: 0.5 })).requireGrad();
  let w2: Tensor = keep(uniform([16, 1], { low: -0.5, high: 0.5 })).requireGrad();
  const x = keep(uniform([32, 8]));
  const y = keep(uniform([32, 1]));
  const before = memory();
  const samples: { live: number; bytes: number }[] = [];
  let firstLoss = 0;
  let lastLoss = 0;
  for (let s = 0; s < steps; s++) {
    const loss = tidy(() => {
      const h = x.matmul(w1).tanh();
      const out = h.matmul(w2);
      const l = out.sub(y).square().mean();
      l.backward();
      const [n1, n2] = noGrad(() => [w1.sub(w1.grad!.mul(0.1)), w2.sub(w2.grad!.mul(0.1))]);
      w1.dispose();
      w2.dispose();
      w1 = keep(n1).requireGrad();
      w2 = keep(n2).requireGrad();
      return l.detach();
    });
    if (s === 0) firstLoss = await loss.item();
    if (s === steps - 1) lastLoss = await loss.item();
    loss.dispose();
    if (s % 100 === 99) {
      const m = memory();
      samples.push({ live: m.liveTensors, bytes: m.bytesInUse });
    }
  }
  const after = memory();
  for (const t of [w1, w2, x, y]) t.dispose();
  return { before, after, samples, firstLoss, lastLoss, end: memory() };
}

describe('no leaks over long training loops', () => {
  for (const name of ['cpu', 'webgpu'] as const) {
    it(`${name}: 1,000 forward/backward steps keep live tensors and bytes in use flat`, async (ctx) => {
      const be = name === 'cpu' ? cpu : await requireWebGPU(ctx);
      const r = await trainLoop(be, 1000);
      expect(r.lastLoss).toBeLessThan(r.firstLoss);
      // Every sample after warm-up is identical to the first: nothing accumulates.
      for (const s of r.samples) {
        expect(s.live).toBe(r.before.liveTensors);
        expect(s.bytes).toBe(r.samples[0].bytes);
      }
      expect(r.after.liveTensors).toBe(r.before.liveTensors);
      expect(r.end.liveTensors).toBe(r.before.liveTensors - 4);
    });
  }

  it('dispose and tidy release storage; views keep shared storage alive', async () => {
    setBackend(cpu);
    const m0 = memory();
    const a = tensor([1, 2, 3, 4]);
    const v = a.reshape([2, 2]);
    a.dispose();
    expect(await v.toArray()).toEqual([[1, 2], [3, 4]]);
    expect(memory().bytesInUse).toBe(m0.bytesInUse + 16);
    v.dispose();
    expect(memory().bytesInUse).toBe(m0.bytesInUse);
    const kept = tidy(() => {
      const t = tensor([1, 2]).mul(3);
      tensor([5]);
      return { t };
    });
    expect(memory().liveTensors).toBe(m0.liveTensors + 1);
    kept.t.dispose();
    expect(memory().liveTensors).toBe(m0.liveTensors);
  });

  it('async tidy disposes after the promise settles', async () => {
    setBackend(cpu);
    const m0 = memory().liveTensors;
    const r = await tidy(async () => {
      const t = tensor([1, 2, 3]);
      const s = await t.sum().item();
      return tensor([s]);
    });
    expect(memory().liveTensors).toBe(m0 + 1);
    expect(await r.item()).toBe(6);
    r.dispose();
  });

  it('webgpu: pooled bytes are reported separately from bytes in use', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    setBackend(gpu);
    const m0 = memory();
    const t = uniform([1000], { seed: 1 });
    await t.data();
    const m1 = memory();
    expect(m1.bytesInUse).toBeGreaterThanOrEqual(m0.bytesInUse + 4000);
    t.dispose();
    await gpu.sync();
    const m2 = memory();
    expect(m2.bytesInUse).toBe(m0.bytesInUse);
    expect(m2.bytesPooled).toBeGreaterThanOrEqual(4000);
  });
});
