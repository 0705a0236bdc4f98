/** The two seeded permutations of nn/data/permutation.ts: valid, reproducible, and as documented. */
import { describe, expect, it } from 'vitest';
import { randomBits, seededPermutation, sortKeyPermutation } from '../index.js';

describe('seeded permutations', () => {
  it('Fisher–Yates with j = bits[i] mod (i + 1), reproducible per (seed, offset)', () => {
    const n = 37;
    const bits = randomBits(n, 5, 11);
    const want = Int32Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = bits[i] % (i + 1);
      [want[i], want[j]] = [want[j], want[i]];
    }
    expect(Array.from(seededPermutation(n, 5, 11))).toEqual(Array.from(want));
    expect(Array.from(seededPermutation(n, 5, 11))).toEqual(Array.from(seededPermutation(n, 5, 11)));
    expect(Array.from(seededPermutation(n, 5, 12))).not.toEqual(Array.from(want));
    expect(Array.from(seededPermutation(1, 3))).toEqual([0]);
    expect(Array.from(seededPermutation(0, 3))).toEqual([]);
  });
  it('sort-key permutation is the argsort of the Philox keys, and a permutation', () => {
    const n = 50;
    const keys = randomBits(n, 9, 0);
    const p = sortKeyPermutation(n, 9);
    for (let i = 1; i < n; i++) expect(keys[p[i - 1]] <= keys[p[i]]).toBe(true);
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
  });
});
