// Elementwise binary ops with NumPy broadcasting. The kernel-source builder prepends the ieee,
// shape and grid preludes, the OP_<NAME> codes (BINARY_OPS in engine/webgpu/kernel-constants.ts)
// and `alias TA/TB (storage types of a, b), TC (compute type), TO (output storage type)`.
// Shapes arrive collapsed (adjacent dims merged, size-1 dims dropped) so RANK is small;
// broadcast dims have stride 0. BCAST = false means both inputs are read at the output index.
override OP: u32 = OP_ADD;
override BCAST: bool = true;
// 1: a is a single element (read at 0), b at the output index; 2: the reverse. Skips the index
// arithmetic of the general broadcast path (scalar operands are the most common broadcast).
override SCALAR: u32 = 0u;

struct Params {
  n: u32,
  rank: u32,
  shape: Shape,
  a_strides: Shape,
  b_strides: Shape,
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
    case OP_ADD: { return TO(x + y); }
    case OP_SUB: { return TO(x - y); }
    case OP_MUL: { return TO(x * y); }
    case OP_DIV: { return TO(x / y); }
    case OP_POW: { return TO(pow_f32(f32(x), f32(y))); }
    case OP_MAXIMUM: { if (is_nan_c(x) || is_nan_c(y)) { return TO(x + y); } return TO(max(x, y)); } // NaN propagates
    case OP_MINIMUM: { if (is_nan_c(x) || is_nan_c(y)) { return TO(x + y); } return TO(min(x, y)); }
    case OP_EQ: { return b2o(x == y); }
    case OP_NE: { return b2o(!(x == y)); }                  // true when either is NaN
    case OP_LT: { return b2o(x < y); }
    case OP_LE: { return b2o(x <= y); }
    case OP_GT: { return b2o(x > y); }
    case OP_GE: { return b2o(x >= y); }
    case OP_RELU_GRAD: { return select(TO(0), TO(y), x > TC(0)); }  // reluGrad: y where x > 0, else 0
    default: { return TO(x); }
  }
}

// Called by the `elementwise` prelude's entry point for each i < params.n.
fn element(i: u32) {
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
