import { describe, expect, it } from 'vitest';
import { type Backend, bernoulli, dropout, grad, manualSeed, normal, setBackend, tensor, uniform, ArgumentError } from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

async function draws(be: Backend) {
  setBackend(be);
  const u = await uniform([3, 37], { seed: 7, offset: 5 }).data();
  const n = await normal([1001], { seed: 2 ** 40 + 3, offset: 0, mean: 1, std: 2 }).data();
  const b = await bernoulli([65], 0.3, { seed: 1 }).data();
  const x = tensor(Array.from({ length: 130 }, (_, i) => i / 10 - 6));
  const d = await dropout(x, 0.25, { seed: 11, offset: 3 }).data();
  manualSeed(123);
  const g1 = await uniform([10]).data();
  const g2 = await uniform([10]).data();
  return { u, n, b, d, g1, g2 };
}

describe('random ops (Philox, identical on both backends)', () => {
  it('cpu: same stream gives same values; the global generator advances', async () => {
    const a = await draws(cpu);
    const b = await draws(cpu);
    expect(a).toEqual(b);
    expect(Array.from(a.g1)).not.toEqual(Array.from(a.g2));
    expect(a.u.every((v) => v >= 0 && v < 1)).toBe(true);
  });

  it('webgpu: bit-identical to the CPU reference for uniform, normal, bernoulli and dropout', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const c = await draws(cpu);
    const g = await draws(gpu);
    for (const k of Object.keys(c) as (keyof typeof c)[]) {
      expect(new Uint32Array(new Float32Array(g[k]).buffer), k).toEqual(new Uint32Array(new Float32Array(c[k]).buffer));
    }
  });

  it('dropout keeps about 1−p of the elements, scales them by 1/(1−p), and its gradient uses the same mask', async () => {
    setBackend(cpu);
    const x = tensor(new Array(4000).fill(1));
    const y = await dropout(x, 0.3, { seed: 5 }).data();
    const kept = y.filter((v) => v !== 0);
    expect(kept.length / 4000).toBeGreaterThan(0.66);
    expect(kept.length / 4000).toBeLessThan(0.74);
    expect(kept.every((v) => Math.abs(v - 1 / 0.7) < 1e-6)).toBe(true);
    const g = await grad((t) => dropout(t, 0.3, { seed: 5 }).sum())(x).data();
    expect(Array.from(g)).toEqual(Array.from(y));
  });

  it('rejects bad probabilities', () => {
    setBackend(cpu);
    expect(() => dropout(tensor([1]), 1)).toThrow(ArgumentError);
    expect(() => bernoulli([2], 1.5)).toThrow(/bernoulli: p must be in \[0, 1\]/);
  });
});
