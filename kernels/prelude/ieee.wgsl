// Prelude `ieee`: IEEE-style helpers shared by the kernels (composed by engine/webgpu/kernel-source.ts).

// Builds inf/NaN at run time (a constant expression producing them is a compile error).
fn f32_from_bits(b: u32) -> f32 {
  var v = b;
  return bitcast<f32>(v);
}

// Bit test: `v != v` is not reliable (some drivers compile it as an ordered compare).
fn is_nan_f32(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn is_inf_f32(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) == 0x7f800000u;
}

// C99 / IEEE 754 pow (as PyTorch and the CPU reference's powC99): WGSL pow is undefined for b < 0
// and at 0 / inf, so the magnitude is |b|^e with the special cases spelled out, and the sign of b
// (including −0 and −inf) is kept for odd integer exponents. pow(1, y) = 1 and pow(x, ±0) = 1 for
// every x, y (NaN included), pow(−1, ±inf) = 1.
fn pow_f32(b: f32, e: f32) -> f32 {
  if (e == 0.0 || b == 1.0) { return 1.0; }
  if (is_nan_f32(b) || is_nan_f32(e)) { return f32_from_bits(0x7fc00000u); }
  let a = abs(b);
  let inf = f32_from_bits(0x7f800000u);
  if (a == 1.0 && is_inf_f32(e)) { return 1.0; }
  let is_int = floor(e) == e;
  var m: f32;
  if (a == 0.0) {
    m = select(0.0, inf, e < 0.0);
  } else if (a == inf) {
    m = select(inf, 0.0, e < 0.0);
  } else {
    if (b < 0.0 && !is_int) { return f32_from_bits(0x7fc00000u); }
    m = pow(a, e);
  }
  let odd = is_int && (abs(e) % 2.0) == 1.0;
  let negative = (bitcast<u32>(b) >> 31u) == 1u;
  return select(m, -m, negative && odd);
}
