/**
 * Seeded permutations of 0..n−1 from Philox bits (`randomBits(n, seed, offset)`: the same
 * (seed, offset) gives the same order on every platform and backend). Two constructions, kept
 * because trained checkpoints and published figures depend on which one produced their data
 * order:
 *
 *   seededPermutation    Fisher–Yates, j = bits[i] mod (i + 1) for i = n−1 … 1 (the modulo bias is
 *                        below n / 2³² — negligible for any data set that fits in memory)
 *   sortKeyPermutation   argsort of n Philox keys, ties broken by index (used by the samplers)
 */
import { randomBits } from '../../engine/index.js';

/** Fisher–Yates permutation of 0..n−1 driven by `randomBits(n, seed, offset)`. */
export function seededPermutation(n: number, seed: number, offset = 0): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  if (n < 2) return p;
  const bits = randomBits(n, seed, offset);
  for (let i = n - 1; i > 0; i--) {
    const j = bits[i] % (i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** The indices 0..n−1 sorted by n Philox keys `randomBits(n, seed, offset)` (ties by index). */
export function sortKeyPermutation(n: number, seed: number, offset = 0): Int32Array {
  const keys = randomBits(n, seed, offset);
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => keys[a] - keys[b] || a - b);
  return idx;
}
