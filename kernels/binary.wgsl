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

fn pow_c(x: f32, e: f32) -> f32 {
  if (e == 0.0) { return 1.0; }
  if (x >= 0.0) {
    if (x == 0.0) { return select(0.0, f32_from_bits(0x7f800000u), e < 0.0); }
    return pow(x, e);
  }
  if (floor(e) != e) { return f32_from_bits(0x7fc00000u); }
  let m = pow(-x, e);
  return select(m, -m, (abs(e) % 2.0) == 1.0);
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
    case 5u: { return TO(max(x, y)); }
    case 6u: { return TO(min(x, y)); }
    case 7u: { return b2o(x == y); }
    case 8u: { return b2o(x != y); }
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
