import { describe, expect, it } from 'vitest';
import {
  ArgumentError, ClassBalancedSampler, DataLoader, WeightedSampler, classBalancedWeights, classWeights, memory, setBackend,
} from '../node.js';
import { cpu } from './helpers/backends.js';

setBackend(cpu);

describe('WeightedSampler', () => {
  it('draws indices with frequencies proportional to the weights (chi-square test)', () => {
    // weights 0, 1, 2, 3, 4 (index 0 must never appear); 100,000 draws per epoch.
    const w = [0, 1, 2, 3, 4];
    const s = new WeightedSampler(w, { numSamples: 100_000, seed: 7 });
    const idx = s.indices(0);
    expect(idx.length).toBe(100_000);
    const counts = new Array(5).fill(0);
    for (const i of idx) counts[i]++;
    expect(counts[0]).toBe(0);
    // Pearson's chi-square over the 4 possible outcomes (3 degrees of freedom): the 99.9% quantile
    // of chi2(3) is 16.27, so a correct sampler fails this with probability 1e-3 (and this seed is fixed).
    let chi2 = 0;
    for (let k = 1; k < 5; k++) {
      const e = (100_000 * w[k]) / 10;
      chi2 += (counts[k] - e) ** 2 / e;
    }
    expect(chi2).toBeLessThan(16.27);
    // and each frequency within 1% absolute of its probability (σ ≤ 0.0016 at n = 1e5)
    for (let k = 1; k < 5; k++) expect(Math.abs(counts[k] / 100_000 - w[k] / 10)).toBeLessThan(0.01);
    const p = s.probabilities();
    [0, 0.1, 0.2, 0.3, 0.4].forEach((q, i) => expect(p[i]).toBeCloseTo(q, 12));
  });

  it('is reproducible per (seed, epoch), differs across epochs, and setWeights takes effect', () => {
    const a = new WeightedSampler([1, 1, 1, 1], { seed: 3, numSamples: 64 });
    const b = new WeightedSampler([1, 1, 1, 1], { seed: 3, numSamples: 64 });
    expect(Array.from(a.indices(2))).toEqual(Array.from(b.indices(2)));
    expect(Array.from(a.indices(0))).not.toEqual(Array.from(a.indices(1)));
    a.setWeights([0, 0, 1, 0]);
    expect(new Set(a.indices(5))).toEqual(new Set([2]));
  });

  it('rejects weights that are all zero, negative, NaN or infinite, and a wrong length', () => {
    expect(() => new WeightedSampler([0, 0, 0])).toThrow(ArgumentError);
    expect(() => new WeightedSampler([0, 0, 0])).toThrow(/sum to 0/);
    expect(() => new WeightedSampler([1, NaN])).toThrow(/weight 1 is NaN/);
    expect(() => new WeightedSampler([1, Infinity])).toThrow(ArgumentError);
    expect(() => new WeightedSampler([1, -1])).toThrow(/weight 1 is -1/);
    expect(() => new WeightedSampler([])).toThrow(ArgumentError);
    const s = new WeightedSampler([1, 2]);
    expect(() => s.setWeights([1, 2, 3])).toThrow(/expected 2 weights/);
    expect(() => new WeightedSampler([1], { numSamples: 0 })).toThrow(ArgumentError);
  });

  it('inverse-frequency weights balance the classes in expectation', () => {
    const labels = [0, 0, 0, 0, 0, 0, 1, 1, 2, 2];
    const w = classBalancedWeights(labels);
    expect(Array.from(w)).toEqual([1 / 18, 1 / 18, 1 / 18, 1 / 18, 1 / 18, 1 / 18, 1 / 6, 1 / 6, 1 / 6, 1 / 6]);
    // loss class weights: n / (K n_c) = 10/18, 10/6, 10/6, and 0 for an absent class 3
    expect(Array.from(classWeights(labels, 4))).toEqual([10 / 18, 10 / 6, 10 / 6, 0]);
    expect(() => classWeights(labels, 2)).toThrow(/label 2 is outside \[0, 2\)/);
    expect(() => classBalancedWeights([0, 1.5])).toThrow(ArgumentError);
  });
});

describe('ClassBalancedSampler', () => {
  // 10:3:1 imbalance, 42 samples
  const labels = [...Array(30).fill(0), ...Array(9).fill(1), ...Array(3).fill(2)];

  it('puts exactly perClass samples of every class in every batch', () => {
    const s = new ClassBalancedSampler(labels, { perClass: 2, numBatches: 9, seed: 1 });
    expect(s.batchSize).toBe(6);
    expect(s.length).toBe(54);
    for (const epoch of [0, 1]) {
      const idx = s.indices(epoch);
      for (let b = 0; b < 9; b++) {
        const counts = [0, 0, 0];
        for (let j = 0; j < 6; j++) counts[labels[idx[b * 6 + j]]]++;
        expect(counts).toEqual([2, 2, 2]);
      }
      // the rare class (3 samples, 18 draws) cycles through whole permutations: each sample 6 times
      const rare = new Map<number, number>();
      for (const i of idx) if (labels[i] === 2) rare.set(i, (rare.get(i) ?? 0) + 1);
      expect([...rare.values()]).toEqual([6, 6, 6]);
      // the frequent class (30 samples, 18 draws) has no repeats
      const common = Array.from(idx).filter((i) => labels[i] === 0);
      expect(new Set(common).size).toBe(18);
    }
    expect(Array.from(s.indices(0))).not.toEqual(Array.from(s.indices(1)));
  });

  it('drives a DataLoader: batches of perClass·K, per-batch label counts, no leaks', async () => {
    const xs = { data: labels.map((_, i) => i), shape: [labels.length, 1], dtype: 'float32' as const };
    const ys = { data: labels, shape: [labels.length], dtype: 'int32' as const };
    const sampler = new ClassBalancedSampler(labels, { perClass: 1, seed: 4 });
    expect(sampler.numBatches).toBe(14); // ⌊42 / 3⌋
    const dl = new DataLoader([xs, ys], { sampler });
    expect(dl.batchSize).toBe(3);
    expect(dl.length).toBe(14);
    const before = memory().liveTensors;
    for (const [x, y] of dl) {
      const yv = Array.from(await y.data()).sort();
      expect(yv).toEqual([0, 1, 2]);
      expect(Array.from(await x.data()).map((i) => labels[i])).toEqual(Array.from(await y.data()));
      x.dispose();
      y.dispose();
    }
    expect(memory().liveTensors).toBe(before);
  });

  it('rejects bad options and a DataLoader that contradicts it', () => {
    expect(() => new ClassBalancedSampler(labels, { perClass: 0 })).toThrow(ArgumentError);
    expect(() => new ClassBalancedSampler([], { perClass: 1 })).toThrow(ArgumentError);
    expect(() => new ClassBalancedSampler([0, -1], { perClass: 1 })).toThrow(/label 1 is -1/);
    const s = new ClassBalancedSampler(labels, { perClass: 1 });
    const ys = { data: labels, shape: [labels.length], dtype: 'int32' as const };
    expect(() => new DataLoader([ys], { sampler: s, batchSize: 4 })).toThrow(/differs from the sampler's fixed batch size 3/);
    expect(() => new DataLoader([ys], { sampler: s, shuffle: true })).toThrow(/mutually exclusive/);
    expect(() => new DataLoader([{ data: [0, 1], shape: [2], dtype: 'int32' }], { sampler: s })).toThrow(/indexes 42 samples but the arrays hold 2/);
  });
});

describe('DataLoader with a WeightedSampler', () => {
  it('visits the sampled indices in order, numSamples per epoch', async () => {
    const xs = { data: [10, 11, 12, 13], shape: [4], dtype: 'float32' as const };
    const sampler = new WeightedSampler([1, 0, 3, 0], { numSamples: 10, seed: 9 });
    const dl = new DataLoader([xs], { sampler, batchSize: 4 });
    expect(dl.length).toBe(3);
    const seen: number[] = [];
    for (const [x] of dl) {
      seen.push(...Array.from(await x.data()));
      x.dispose();
    }
    expect(seen).toEqual(Array.from(sampler.indices(0)).map((i) => 10 + i));
    expect(new Set(seen).size).toBeLessThanOrEqual(2);
    expect(seen.every((v) => v === 10 || v === 12)).toBe(true);
  });
});
