/**
 * A small seeded host-side generator for code that needs a reproducible stream of JS numbers
 * (mini-batch shuffles, per-batch draws of examples and toy data) WITHOUT touching the library's
 * global Philox state (which drives dropout and initialisation): mulberry32, a 32-bit-state
 * generator (one add, two multiply-xorshift rounds per draw, period 2³²), uniform in [0, 1) with
 * 32-bit resolution. Its draws are identical on every backend and platform (pure integer
 * arithmetic on `Math.imul` and unsigned shifts).
 *
 * For streams that must match the device's random ops, use the Philox host streams
 * (`randomBits`, `randomUniform`) instead.
 */

/** mulberry32 seeded with `seed >>> 0`: returns a function drawing the next uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    let t = (s = (s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Fisher–Yates shuffle of `a` in place with draws from `rand` (j = ⌊rand()·(i + 1)⌋ for
 * i = n−1 … 1, one draw per position); returns `a`.
 */
export function shuffleWith<T extends { length: number; [i: number]: number }>(a: T, rand: () => number): T {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}
