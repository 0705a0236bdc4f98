/**
 * A tiny seeded host PRNG (mulberry32: 32-bit state, uniform in [0, 1)) for the toy data sets and
 * the per-batch draws of the examples, so they draw the same values on every run without
 * touching the library's global Philox generator (which would shift the dropout and
 * initialisation streams).
 */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
