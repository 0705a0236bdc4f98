/**
 * Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers:
 * as easy as 1, 2, 3", SC'11), written so that this TypeScript reference and the WGSL
 * helpers in `kernels/prelude/philox.wgsl` produce **bit-identical** results.
 *
 * ## Stream mapping (shared with `kernels/random_fill.wgsl`)
 *
 * A stream is keyed by `(seed, offset)`:
 *
 * - `seed` is a JS integer in `[0, 2^53)`. The Philox key is `(k0, k1) = (lo32(seed), hi32(seed))`.
 * - `offset` is a JS integer in `[0, 2^53)` that counts **blocks**. One block is one Philox call,
 *   i.e. four 32-bit words.
 * - Element `i` of a generated tensor lives in block `b = offset + floor(i / 4)`; the counter is
 *   `(lo32(b), hi32(b), 0, 0)` (counter words 2 and 3 are reserved and always 0), and the element
 *   uses word `i % 4` of `philox4x32_10(counter, key)`.
 * - A tensor of `n` elements therefore consumes `blocksFor(n) = ceil(n / 4)` blocks, for every
 *   distribution. A caller that advances `offset += blocksFor(n)` after each call never reuses
 *   a block for the same seed. Generation is prefix-stable: the first `m` elements of an `n`
 *   element draw equal an `m` element draw with the same `(seed, offset)`.
 *
 * ## Per-element transforms
 *
 * - uniform: `u = (w >>> 8) * 2^-24`, in `[0, 1)`, exact in f32. With bounds,
 *   `low + f32(f32(high - low) * u)`: each operation is one correctly rounded f32 op (the WGSL
 *   side prevents FMA contraction, see `rand_opaque_f32`). Note that rounding can make a value
 *   equal to `high` for some ranges.
 * - bernoulli: `1` where `u < f32(p)`, else `0` (`u` as above, compared exactly).
 * - normal: see {@link normalFromBits}. Element `i` uses the word pair `(w[j & 2], w[(j & 2) + 1])`
 *   with `j = i % 4`: even `j` takes the cosine branch of Box-Muller, odd `j` the sine branch, so
 *   a block yields four normals. With `mean`/`std`, `mean + f32(std * z)` as for the uniform
 *   (`random_fill.wgsl` takes `mean` in its `low` field and `std` in `high`).
 *
 * ## Bit-exact normal transform
 *
 * GPU `log`, `cos`, `sqrt` and even `/` are not correctly rounded in WGSL, and a compiler may
 * fuse `a * b + c`. The normal transform is therefore Box-Muller done entirely in **u32
 * fixed-point arithmetic** (add, sub, 32x32->64 multiply emulated with 16-bit halves, shifts,
 * compares, division of u32 by small constants), which is exact on both sides:
 *
 * 1. `x = w1 | 1`, so `u1 = x / 2^32` is uniform on the odd 31-bit grid (never 0 or 1).
 * 2. `L = -log2(u1) = 32 - e - log2(m)` with `e` the leading bit of `x` and `m` in `[1, 2)`;
 *    `log2(m)` is found bit by bit by repeated squaring of `m` (31 bits). `L` is kept in Q31 when
 *    `e = 31` (then `L < 1`, which is where `R` is small) and rounded to Q26 otherwise.
 * 3. `Y = 2 ln2 * L = -2 ln u1` (one fixed-point multiply), and `R = sqrt(Y)` in Q28 by an exact
 *    bit-by-bit integer square root of the < 2^62 value `Y * 2^25` (Q31 case) or `Y * 2^30`.
 * 4. `theta = 2 pi * w2 / 2^32`: the top two bits pick the quadrant, the rest is folded to
 *    `[0, pi/4]`, and `sin`/`cos` are evaluated as nested Taylor series (to x^11 and x^12,
 *    truncation error < 2e-12) in unsigned Q31, where every partial factor stays in `[0, 1]`.
 * 5. `z = R * trig` in Q28 is rounded (half up) to at most 24 significant bits and converted as
 *    `f32(int24) * 2^k`, which is exact.
 *
 * Precision (measured against double-precision Box-Muller on the same two words): absolute
 * error <= 2.5e-7 whenever `R >= 0.01` (for |z| > 2 this is just the f32 rounding of the result;
 * `P(R < 0.01) = 5e-5`), <= 2.5e-6 for `1e-3 <= R < 0.01` and <= 1e-5 below, where the 2^-31
 * grid of `u1` and the Q31 log dominate. The range is `|z| <= sqrt(64 ln 2) = 6.66`; the tail
 * is exact in distribution up to there (apart from the 2^-31 grid of `u1`; at |z| = 5 the grid
 * has ~16000 points in the tail).
 *
 * Cost: one Philox call per 4 elements, plus per normal ~31 + 31 emulated 32x32->64 multiplies
 * (log and square root) and ~12 for sin/cos.
 *
 * Everything here is plain ECMAScript (no Node-only imports), so it runs in browsers as well.
 */

/** Philox4x32 multipliers and Weyl key increments (Random123). */
export const PHILOX_M0 = 0xd2511f53;
export const PHILOX_M1 = 0xcd9e8d57;
export const PHILOX_W0 = 0x9e3779b9;
export const PHILOX_W1 = 0xbb67ae85;

/** Number of Philox blocks (4 words each) consumed by a tensor of `n` elements. */
export function blocksFor(n: number): number {
  return Math.ceil(n / 4);
}

// --- 32x32 -> 64 multiply -------------------------------------------------------------
// Results are left in these module-level slots to avoid allocating in hot loops.
let mulHi = 0;
let mulLo = 0;

/** Full 64-bit product of two u32s; sets `mulHi`/`mulLo`. Only exact double ops are used. */
function mul64(a: number, b: number): void {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const ll = al * bl; // < 2^32, exact
  const lh = al * bh;
  const hl = ah * bl;
  const hh = ah * bh;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff); // < 3 * 2^16
  mulLo = Math.imul(a, b) >>> 0;
  mulHi = (hh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) >>> 0;
}

/** `[hi, lo]` of the 64-bit product of two u32s. */
export function mulhilo32(a: number, b: number): [number, number] {
  mul64(a >>> 0, b >>> 0);
  return [mulHi, mulLo];
}

/** Unsigned Q31 product: floor(a * b / 2^31); requires a * b < 2^63. */
function mulQ31(a: number, b: number): number {
  mul64(a, b);
  return ((mulHi << 1) | (mulLo >>> 31)) >>> 0;
}

// --- Philox4x32-10 --------------------------------------------------------------------
let p0 = 0;
let p1 = 0;
let p2 = 0;
let p3 = 0;

/** Philox4x32-10 into the module slots p0..p3 (no allocation). */
function philoxInto(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number): void {
  c0 >>>= 0;
  c1 >>>= 0;
  c2 >>>= 0;
  c3 >>>= 0;
  k0 >>>= 0;
  k1 >>>= 0;
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = (k0 + PHILOX_W0) >>> 0;
      k1 = (k1 + PHILOX_W1) >>> 0;
    }
    mul64(PHILOX_M0, c0);
    const hi0 = mulHi;
    const lo0 = mulLo;
    mul64(PHILOX_M1, c2);
    const hi1 = mulHi;
    const lo1 = mulLo;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  p0 = c0;
  p1 = c1;
  p2 = c2;
  p3 = c3;
}

/** Philox4x32 with 10 rounds: counter (c0..c3), key (k0, k1); all u32 as JS numbers. */
export function philox4x32_10(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
): [number, number, number, number] {
  philoxInto(c0, c1, c2, c3, k0, k1);
  return [p0, p1, p2, p3];
}

// --- seeds and offsets ----------------------------------------------------------------
function checkU53(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`${name} must be an integer in [0, 2^53), got ${v}`);
  }
}

/** Splits a non-negative safe integer into `[lo32, hi32]`. */
export function splitU53(v: number): [number, number] {
  return [v % 0x100000000, Math.floor(v / 0x100000000)];
}

/** Philox key `[k0, k1]` for a JS integer seed in `[0, 2^53)`. */
export function seedToKey(seed: number): [number, number] {
  checkU53('seed', seed);
  return splitU53(seed);
}

/**
 * The raw 32-bit words for elements `0..n-1` of stream `(seed, offset)`, following the
 * mapping in the module comment.
 */
export function randomBits(n: number, seed: number, offset: number): Uint32Array {
  const out = new Uint32Array(n);
  forEachBlock(n, seed, offset, (base, count) => {
    out[base] = p0;
    if (count > 1) out[base + 1] = p1;
    if (count > 2) out[base + 2] = p2;
    if (count > 3) out[base + 3] = p3;
  });
  return out;
}

/** Calls `fn(firstElement, count)` after computing each block into p0..p3. */
function forEachBlock(
  n: number,
  seed: number,
  offset: number,
  fn: (base: number, count: number) => void,
): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`n must be a non-negative integer, got ${n}`);
  checkU53('offset', offset);
  const [k0, k1] = seedToKey(seed);
  const blocks = blocksFor(n);
  if (offset + blocks > Number.MAX_SAFE_INTEGER) throw new RangeError('offset + blocks exceeds 2^53');
  for (let b = 0; b < blocks; b++) {
    const [lo, hi] = splitU53(offset + b);
    philoxInto(lo, hi, 0, 0, k0, k1);
    const base = b * 4;
    fn(base, Math.min(4, n - base));
  }
}

// --- transforms -----------------------------------------------------------------------
const TWO_POW_M24 = 2 ** -24;

/** `(u >>> 8) * 2^-24`: a uniform in [0, 1) with 24 random bits, exactly representable in f32. */
export function uniformFromBits(u: number): number {
  return (u >>> 8) * TWO_POW_M24;
}

/** round(pi * 2^30) */
const PI_Q30 = 3373259426;
/** round(2 ln 2 * 2^31) */
const TWO_LN2_Q31 = 2977044472;
const ONE_Q31 = 0x80000000;

/** Box-Muller radius `R = sqrt(-2 ln u1)` in Q28 for `u1 = (w | 1) / 2^32`. */
export function normalRadiusQ28(w: number): number {
  const x = (w | 1) >>> 0;
  const e = 31 - Math.clz32(x);
  let m = (x << (31 - e)) >>> 0; // mantissa in Q31, [1, 2)
  // log2(m) by repeated squaring: one bit per step, 31 bits (f in Q31, f < 2^31).
  let f = 0;
  for (let k = 0; k < 31; k++) {
    mul64(m, m);
    if (mulHi >= 0x80000000) {
      m = mulHi;
      f = f * 2 + 1;
    } else {
      m = ((mulHi << 1) | (mulLo >>> 31)) >>> 0;
      f = f * 2;
    }
  }
  // L = -log2(u1) = 32 - e - f. For e = 31 (u1 >= 1/2, so L < 1) keep L in Q31 for accuracy
  // near R = 0; otherwise L < 32 is rounded to Q26.
  let L: number;
  let sh: number;
  if (e === 31) {
    L = 0x80000000 - f;
    sh = 25;
  } else {
    L = ((32 - e) * 0x4000000 - ((f + 16) >>> 5)) >>> 0; // <= 2^31
    sh = 30;
  }
  const Y = mulQ31(L, TWO_LN2_Q31); // -2 ln(u1) in Q31 (e = 31) or Q26, < 2^32
  // R = floor(sqrt(Y * 2^sh)) in Q28: bit-by-bit integer square root of a < 2^62 value.
  const nh = Y >>> (32 - sh);
  const nl = (Y << sh) >>> 0;
  let r = 0;
  for (let b = 30; b >= 0; b--) {
    const c = (r | (1 << b)) >>> 0;
    mul64(c, c);
    if (mulHi < nh || (mulHi === nh && mulLo <= nl)) r = c;
  }
  return r;
}

let trigCos = 0;
let trigSin = 0;

/**
 * Signed Q31 cos/sin of `theta = 2 pi w / 2^32` into trigCos/trigSin (magnitudes <= 2^31, as
 * JS numbers with sign).
 */
function trigQ31(w: number): void {
  const q = w >>> 30;
  let r = w & 0x3fffffff;
  const swap = r >= 0x20000000;
  if (swap) r = 0x40000000 - r; // fold to [0, pi/4]
  mul64(r, PI_Q30);
  const x = ((mulHi << 2) | (mulLo >>> 30)) >>> 0; // angle in Q31, <= pi/4
  const x2 = mulQ31(x, x);
  // sin x = x (1 - x^2/6 (1 - x^2/20 (1 - x^2/42 (1 - x^2/72 (1 - x^2/110)))))
  let s = ONE_Q31 - Math.floor(x2 / 110);
  s = ONE_Q31 - Math.floor(mulQ31(x2, s) / 72);
  s = ONE_Q31 - Math.floor(mulQ31(x2, s) / 42);
  s = ONE_Q31 - Math.floor(mulQ31(x2, s) / 20);
  s = ONE_Q31 - Math.floor(mulQ31(x2, s) / 6);
  s = mulQ31(x, s);
  // cos x = 1 - x^2/2 (1 - x^2/12 (1 - x^2/30 (1 - x^2/56 (1 - x^2/90 (1 - x^2/132)))))
  let c = ONE_Q31 - Math.floor(x2 / 132);
  c = ONE_Q31 - Math.floor(mulQ31(x2, c) / 90);
  c = ONE_Q31 - Math.floor(mulQ31(x2, c) / 56);
  c = ONE_Q31 - Math.floor(mulQ31(x2, c) / 30);
  c = ONE_Q31 - Math.floor(mulQ31(x2, c) / 12);
  c = ONE_Q31 - Math.floor(mulQ31(x2, c) / 2);
  const cs = swap ? s : c; // cos of the in-quadrant angle
  const sn = swap ? c : s; // sin of the in-quadrant angle
  switch (q) {
    case 0:
      trigCos = cs;
      trigSin = sn;
      break;
    case 1:
      trigCos = -sn;
      trigSin = cs;
      break;
    case 2:
      trigCos = -cs;
      trigSin = -sn;
      break;
    default:
      trigCos = sn;
      trigSin = -cs;
  }
}

/** Exact conversion of a signed Q28 magnitude (< 2^31) to the f32 value (as a JS number). */
function q28ToF32(mag: number, negative: boolean): number {
  if (mag === 0) return 0;
  const lb = 31 - Math.clz32(mag);
  let s = 0;
  if (lb > 23) {
    s = lb - 23;
    mag = (mag + (1 << (s - 1))) >>> s; // round half up to <= 24 significant bits (may be 2^24)
  }
  const v = mag * 2 ** (s - 28);
  return negative ? -v : v;
}

/**
 * Standard normal from a word pair: `z = sqrt(-2 ln u1) * (sine ? sin : cos)(2 pi u2)`, with
 * `u1 = (w1 | 1) / 2^32`, `u2 = w2 / 2^32`, computed in fixed point (see the module comment).
 * The result is exactly representable in f32.
 */
export function normalFromBits(w1: number, w2: number, sine: boolean): number {
  const R = normalRadiusQ28(w1 >>> 0);
  trigQ31(w2 >>> 0);
  const t = sine ? trigSin : trigCos;
  const mag = mulQ31(R, Math.abs(t));
  return q28ToF32(mag, t < 0);
}

// --- generators -----------------------------------------------------------------------
/** `n` uniforms in [low, high) for stream `(seed, offset)`; consumes `blocksFor(n)` blocks. */
export function randomUniform(n: number, seed: number, offset: number, low = 0, high = 1): Float32Array {
  const out = new Float32Array(n);
  const lo = Math.fround(low);
  const range = Math.fround(Math.fround(high) - lo);
  const words = [0, 0, 0, 0];
  forEachBlock(n, seed, offset, (base, count) => {
    words[0] = p0;
    words[1] = p1;
    words[2] = p2;
    words[3] = p3;
    for (let j = 0; j < count; j++) {
      out[base + j] = lo + Math.fround(range * uniformFromBits(words[j]!));
    }
  });
  return out;
}

/**
 * `n` normals `mean + std * z` for stream `(seed, offset)` (`z` from {@link normalFromBits});
 * consumes `blocksFor(n)` blocks. Scaling is f32 multiply then f32 add (unfused).
 */
export function randomNormal(n: number, seed: number, offset: number, mean = 0, std = 1): Float32Array {
  const out = new Float32Array(n);
  const mu = Math.fround(mean);
  const sd = Math.fround(std);
  const words = [0, 0, 0, 0];
  forEachBlock(n, seed, offset, (base, count) => {
    words[0] = p0;
    words[1] = p1;
    words[2] = p2;
    words[3] = p3;
    for (let pair = 0; pair < count; pair += 2) {
      const R = normalRadiusQ28(words[pair]!);
      trigQ31(words[pair + 1]!);
      const zc = q28ToF32(mulQ31(R, Math.abs(trigCos)), trigCos < 0);
      out[base + pair] = mu + Math.fround(sd * zc);
      if (pair + 1 < count) {
        const zs = q28ToF32(mulQ31(R, Math.abs(trigSin)), trigSin < 0);
        out[base + pair + 1] = mu + Math.fround(sd * zs);
      }
    }
  });
  return out;
}

/** `n` Bernoulli draws (1 where `uniform < f32(p)`) for stream `(seed, offset)`. */
export function randomBernoulli(n: number, seed: number, offset: number, p: number): Uint8Array {
  const out = new Uint8Array(n);
  const pf = Math.fround(p);
  const words = [0, 0, 0, 0];
  forEachBlock(n, seed, offset, (base, count) => {
    words[0] = p0;
    words[1] = p1;
    words[2] = p2;
    words[3] = p3;
    for (let j = 0; j < count; j++) out[base + j] = uniformFromBits(words[j]!) < pf ? 1 : 0;
  });
  return out;
}
