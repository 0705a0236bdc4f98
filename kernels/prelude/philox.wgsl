// Philox4x32-10 counter-based random numbers and bit-exact transforms.
//
// Prelude `philox`: helper functions only (no entry point, no bindings), composed into a kernel
// by engine/webgpu/kernel-source.ts.
// Every function here is the exact WGSL twin of engine/random/philox.ts; both sides produce
// bit-identical results. See that file for the stream mapping:
//   key     = (lo32(seed), hi32(seed))
//   block b = offset + (i >> 2)          (64-bit; offset counts blocks of 4 words)
//   counter = (lo32(b), hi32(b), 0, 0)
//   element i uses word i & 3 of philox4x32_10(counter, key); normals use the word pair
//   (w[j & 2], w[(j & 2) + 1]) with j = i & 3, cosine for even j, sine for odd j.
// Only integer arithmetic is used until a final exact conversion to f32, so neither the lack of
// correctly rounded transcendentals nor FMA contraction can change a bit.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// Full 64-bit product of two u32s, returned as vec2(hi, lo). Exact: built from 16-bit halves.
fn mulhilo32(a: u32, b: u32) -> vec2<u32> {
  let al = a & 0xFFFFu;
  let ah = a >> 16u;
  let bl = b & 0xFFFFu;
  let bh = b >> 16u;
  let ll = al * bl;
  let lh = al * bh;
  let hl = ah * bl;
  let hh = ah * bh;
  let mid = (ll >> 16u) + (lh & 0xFFFFu) + (hl & 0xFFFFu);
  let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
  return vec2<u32>(hi, a * b);
}

// Unsigned Q31 product floor(a * b / 2^31); requires a * b < 2^63.
fn rand_mul_q31(a: u32, b: u32) -> u32 {
  let p = mulhilo32(a, b);
  return (p.x << 1u) | (p.y >> 31u);
}

fn philox4x32_round(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  let p0 = mulhilo32(PHILOX_M0, ctr.x);
  let p1 = mulhilo32(PHILOX_M1, ctr.z);
  return vec4<u32>(p1.x ^ ctr.y ^ key.x, p1.y, p0.x ^ ctr.w ^ key.y, p0.y);
}

// Philox4x32 with 10 rounds (Random123 philox4x32_10).
fn philox4x32_10(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = ctr;
  var k = key;
  c = philox4x32_round(c, k);
  for (var r = 1u; r < 10u; r++) {
    k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
    c = philox4x32_round(c, k);
  }
  return c;
}

// Block words for element index i of stream (seed, offset), both given as (lo, hi) u32 pairs.
fn rand_block_for_element(i: u32, seed: vec2<u32>, offset: vec2<u32>) -> vec4<u32> {
  let lo = offset.x + (i >> 2u);
  let hi = offset.y + select(0u, 1u, lo < offset.x);
  return philox4x32_10(vec4<u32>(lo, hi, 0u, 0u), seed);
}

// (u >> 8) * 2^-24: uniform in [0, 1), exact in f32.
fn rand_uniform_from_bits(u: u32) -> f32 {
  return f32(u >> 8u) * (1.0 / 16777216.0);
}

// Returns x unchanged, but as an opaque, already-rounded f32 value: `zero` must be 0 at run time
// without the compiler being able to prove it (e.g. a uniform-derived value). Use it on a
// product before adding to it so that a*b+c cannot be contracted into an FMA.
fn rand_opaque_f32(x: f32, zero: u32) -> f32 {
  return bitcast<f32>(bitcast<u32>(x) ^ zero);
}

// Box-Muller radius R = sqrt(-2 ln u1) in Q28, u1 = (w | 1) / 2^32.
fn rand_normal_radius_q28(w: u32) -> u32 {
  let x = w | 1u;
  let e = firstLeadingBit(x);
  var m = x << (31u - e);
  // log2(m) in Q31 by repeated squaring, one bit per step.
  var f = 0u;
  for (var k = 0u; k < 31u; k++) {
    let p = mulhilo32(m, m);
    if (p.x >= 0x80000000u) {
      m = p.x;
      f = (f << 1u) | 1u;
    } else {
      m = (p.x << 1u) | (p.y >> 31u);
      f = f << 1u;
    }
  }
  var L: u32;
  var sh: u32;
  if (e == 31u) {
    L = 0x80000000u - f;          // Q31, L < 1
    sh = 25u;
  } else {
    L = ((32u - e) << 26u) - ((f + 16u) >> 5u);  // Q26
    sh = 30u;
  }
  let Y = rand_mul_q31(L, 2977044472u);  // times round(2 ln2 * 2^31)
  let nh = Y >> (32u - sh);
  let nl = Y << sh;
  // floor(sqrt(nh:nl)), bit by bit.
  var r = 0u;
  for (var b = 31u; b > 0u; b--) {
    let c = r | (1u << (b - 1u));
    let p = mulhilo32(c, c);
    if (p.x < nh || (p.x == nh && p.y <= nl)) {
      r = c;
    }
  }
  return r;
}

// cos and sin of theta = 2 pi w / 2^32 as unsigned Q31 magnitudes (<= 2^31) plus sign flags:
// vec4(|cos|, |sin|, cos < 0, sin < 0). Folds to [0, pi/4] and uses nested Taylor series.
fn rand_trig_q31(w: u32) -> vec4<u32> {
  let ONE = 0x80000000u;
  let q = w >> 30u;
  var r = w & 0x3FFFFFFFu;
  let swap = r >= 0x20000000u;
  if (swap) {
    r = 0x40000000u - r;
  }
  let pa = mulhilo32(r, 3373259426u);  // round(pi * 2^30)
  let x = (pa.x << 2u) | (pa.y >> 30u);  // angle in Q31, <= pi/4
  let x2 = rand_mul_q31(x, x);
  var s = ONE - x2 / 110u;
  s = ONE - rand_mul_q31(x2, s) / 72u;
  s = ONE - rand_mul_q31(x2, s) / 42u;
  s = ONE - rand_mul_q31(x2, s) / 20u;
  s = ONE - rand_mul_q31(x2, s) / 6u;
  s = rand_mul_q31(x, s);
  var c = ONE - x2 / 132u;
  c = ONE - rand_mul_q31(x2, c) / 90u;
  c = ONE - rand_mul_q31(x2, c) / 56u;
  c = ONE - rand_mul_q31(x2, c) / 30u;
  c = ONE - rand_mul_q31(x2, c) / 12u;
  c = ONE - rand_mul_q31(x2, c) / 2u;
  let cs = select(c, s, swap);
  let sn = select(s, c, swap);
  switch q {
    case 0u: { return vec4<u32>(cs, sn, 0u, 0u); }
    case 1u: { return vec4<u32>(sn, cs, 1u, 0u); }
    case 2u: { return vec4<u32>(cs, sn, 1u, 1u); }
    default: { return vec4<u32>(sn, cs, 0u, 1u); }
  }
}

// Exact conversion of a Q28 magnitude (< 2^31) with sign flag to f32 (rounded half up to 24
// significant bits first, so that the int -> float conversion and the power-of-two scaling are
// exact). Zero converts to +0.
fn rand_q28_to_f32(mag_in: u32, negative: bool) -> f32 {
  if (mag_in == 0u) {
    return 0.0;
  }
  var mag = mag_in;
  let lb = firstLeadingBit(mag);
  var s = 0u;
  if (lb > 23u) {
    s = lb - 23u;
    mag = (mag + (1u << (s - 1u))) >> s;
  }
  let v = f32(mag) * bitcast<f32>((99u + s) << 23u);  // 2^(s - 28)
  return select(v, -v, negative);
}

// Standard normal from a word pair: sqrt(-2 ln u1) * (sine ? sin : cos)(2 pi u2),
// u1 = (w1 | 1) / 2^32, u2 = w2 / 2^32; fixed-point Box-Muller, bit-identical to normalFromBits.
fn rand_normal_from_bits(w1: u32, w2: u32, sine: bool) -> f32 {
  let R = rand_normal_radius_q28(w1);
  let t = rand_trig_q31(w2);
  let mag = select(t.x, t.y, sine);
  let neg = select(t.z, t.w, sine) != 0u;
  return rand_q28_to_f32(rand_mul_q31(R, mag), neg);
}
