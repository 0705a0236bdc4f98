// Elementwise binary ops with NumPy broadcasting. The engine prepends kernels/ieee-math.wgsl and
// `alias TA/TB (storage types of a, b), TC (compute type), TO (output storage type)`.
// Shapes arrive collapsed (adjacent dims merged, size-1 dims dropped) so RANK is small;
// broadcast dims have stride 0. BCAST = false means both inputs are read at the output index.
override OP: u32 = 0u;
override BCAST: bool = true;
// 1: a is a single element (read at 0), b at the output index; 2: the reverse. Skips the index
// arithmetic of the general broadcast path (scalar operands are the most common broadcast).
override SCALAR: u32 = 0u;

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

fn is_nan_c(v: TC) -> bool {
  return is_nan_f32(f32(v));
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
    case 4u: { return TO(pow_f32(f32(x), f32(y))); }
    case 5u: { if (is_nan_c(x) || is_nan_c(y)) { return TO(x + y); } return TO(max(x, y)); } // NaN propagates
    case 6u: { if (is_nan_c(x) || is_nan_c(y)) { return TO(x + y); } return TO(min(x, y)); }
    case 7u: { return b2o(x == y); }
    case 8u: { return b2o(!(x == y)); }                  // true when either is NaN
    case 9u: { return b2o(x < y); }
    case 10u: { return b2o(x <= y); }
    case 11u: { return b2o(x > y); }
    case 12u: { return b2o(x >= y); }
    case 13u: { return select(TO(0), TO(y), x > TC(0)); }  // reluGrad: y where x > 0, else 0
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
  if (SCALAR == 1u) {
    ia = 0u;
  } else if (SCALAR == 2u) {
    ib = 0u;
  } else if (BCAST) {
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
