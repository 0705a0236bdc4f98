// Elementwise binary ops with NumPy broadcasting. The engine prepends
// `alias TA/TB (storage types of a, b), TC (compute type), TO (output storage type)`.
// Shapes arrive collapsed (adjacent dims merged, size-1 dims dropped) so RANK is small;
// broadcast dims have stride 0. BCAST = false means both inputs are read at the output index.
override OP: u32 = 0u;
override BCAST: bool = true;

struct Params {
  n: u32,
  rank: u32,
  _pad0: u32,
  _pad1: u32,
  shape: array<vec4<u32>, 2>,
  a_strides: array<vec4<u32>, 2>,
  b_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> a: array<TA>;
@group(0) @binding(1) var<storage, read> b: array<TB>;
@group(0) @binding(2) var<storage, read_write> out: array<TO>;
@group(0) @binding(3) var<uniform> params: Params;

// Builds inf/NaN at run time (a constant expression producing them is a compile error).
fn f32_from_bits(b: u32) -> f32 {
  var v = b;
  return bitcast<f32>(v);
}

fn is_nan_c(v: TC) -> bool {
  // Bit test (f32 only): `v != v` is not reliable (some drivers compile it as an ordered compare).
  let f = f32(v);
  return (bitcast<u32>(f) & 0x7fffffffu) > 0x7f800000u;
}

fn pow_c(x: f32, e: f32) -> f32 {
  // IEEE pow (as JS Math.pow): WGSL pow is undefined for x < 0 and at 0 / inf, so the
  // magnitude is |x|^e with the special cases spelled out, and the sign of x (including −0
  // and −inf) is kept for odd integer exponents.
  if (e == 0.0) { return 1.0; }
  let nan = f32_from_bits(0x7fc00000u);
  if ((bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u || (bitcast<u32>(e) & 0x7fffffffu) > 0x7f800000u) { return nan; }
  let a = abs(x);
  let inf = f32_from_bits(0x7f800000u);
  let is_int = floor(e) == e;
  var m: f32;
  if (a == 0.0) {
    m = select(0.0, inf, e < 0.0);
  } else if (a == inf) {
    m = select(inf, 0.0, e < 0.0);
  } else {
    if (x < 0.0 && !is_int) { return nan; }
    m = pow(a, e);
  }
  let odd = is_int && (abs(e) % 2.0) == 1.0;
  let negative = (bitcast<u32>(x) >> 31u) == 1u;
  return select(m, -m, negative && odd);
}

fn b2o(c: bool) -> TO {
  return TO(select(0u, 1u, c));
}

fn apply(x: TC, y: TC) -> TO {
  switch OP {
    case 0u: { return TO(x + y); }
    case 1u: { return TO(x - y); }
    case 2u: { return TO(x * y); }
    case 3u: { return TO(x / y); }
    case 4u: { return TO(pow_c(f32(x), f32(y))); }
    case 5u: { if (is_nan_c(x) || is_nan_c(y)) { return TO(x + y); } return TO(max(x, y)); } // NaN propagates
    case 6u: { if (is_nan_c(x) || is_nan_c(y)) { return TO(x + y); } return TO(min(x, y)); }
    case 7u: { return b2o(x == y); }
    case 8u: { return b2o(!(x == y)); }                  // true when either is NaN
    case 9u: { return b2o(x < y); }
    case 10u: { return b2o(x <= y); }
    case 11u: { return b2o(x > y); }
    case 12u: { return b2o(x >= y); }
    default: { return TO(x); }
  }
}

fn dim(v: array<vec4<u32>, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= params.n) { return; }
  var ia = i;
  var ib = i;
  if (BCAST) {
    ia = 0u;
    ib = 0u;
    var rem = i;
    for (var d = i32(params.rank) - 1; d >= 0; d--) {
      let s = dim(params.shape, u32(d));
      let c = rem % s;
      rem = rem / s;
      ia += c * dim(params.a_strides, u32(d));
      ib += c * dim(params.b_strides, u32(d));
    }
  }
  out[i] = apply(TC(a[ia]), TC(b[ib]));
}
