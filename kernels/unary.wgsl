// Elementwise unary ops. The engine prepends `alias TA = ...; alias TC = ...; alias TO = ...;`
// (input storage, compute and output types) and the special-function helpers; OP selects the
// function at pipeline creation, so every variant compiles to straight-line code.
override OP: u32 = 0u;

struct Params {
  n: u32,
  alpha: f32,   // leakyRelu slope, pow exponent
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<TA>;
@group(0) @binding(1) var<storage, read_write> out: array<TO>;
@group(0) @binding(2) var<uniform> params: Params;

fn log1p_f32(v: f32) -> f32 {
  // Series for small |v| keeps full relative precision where log(1 + v) would cancel.
  if (abs(v) < 1e-2) {
    return v * (1.0 - v * (0.5 - v * (1.0 / 3.0 - v * (0.25 - v * 0.2))));
  }
  return log(1.0 + v);
}

fn sigmoid_f32(v: f32) -> f32 {
  if (v >= 0.0) {
    return 1.0 / (1.0 + exp(-v));
  }
  let e = exp(v);
  return e / (1.0 + e);
}

fn tanh_f32(v: f32) -> f32 {
  // Builtin tanh may be computed as sinh/cosh and overflow for large |v|.
  if (abs(v) >= 10.0) {
    return sign(v);
  }
  return tanh(v);
}

fn apply(v: TC) -> TC {
  switch OP {
    case 0u: { return -v; }                                   // neg
    case 1u: { return TC(exp(f32(v))); }                      // exp
    case 2u: { return TC(log(f32(v))); }                      // log
    case 3u: { return TC(log1p_f32(f32(v))); }                // log1p
    case 4u: { return TC(sqrt(f32(v))); }                     // sqrt
    case 5u: { return TC(inverseSqrt(f32(v))); }              // rsqrt
    case 6u: { return abs(v); }                               // abs
    case 7u: { return sign(v); }                              // sign
    case 8u: { return max(v, TC(0)); }                        // relu
    case 9u: { return select(TC(f32(v) * params.alpha), v, v > TC(0)); } // leakyRelu (int: αx truncated toward 0)
    case 10u: {                                               // gelu (exact): ½x·erfc(−x/√2), accurate in the negative tail
      let f = f32(v);
      if (f < -20.0) { return TC(-0.0); }                     // ½x·erfc(14.1) < 1e-80 (and −inf·0 would be NaN)
      return TC(0.5 * f * erfc_f32(-f * 0.70710678118654752));
    }
    case 11u: { return TC(sigmoid_f32(f32(v))); }             // sigmoid
    case 12u: { return TC(tanh_f32(f32(v))); }                // tanh
    case 13u: {                                               // softplus = max(v,0) + log1p(exp(-|v|))
      let f = f32(v);
      return TC(max(f, 0.0) + log1p_f32(exp(-abs(f))));
    }
    case 14u: { return TC(lgamma_f32(f32(v))); }              // lgamma
    case 15u: { return TC(digamma_f32(f32(v))); }             // digamma
    case 16u: { return TC(trigamma_f32(f32(v))); }            // trigamma
    case 17u: { return TC(pow_f32(f32(v), params.alpha)); }   // pow by scalar
    case 18u: { return v * v; }                               // square
    case 19u: { return TC(erf_f32(f32(v))); }                 // erf
    case 20u: { return v; }                                   // identity / cast
    case 21u: { return TC(1.0) / v; }                         // reciprocal
    default: { return v; }
  }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= params.n) { return; }
  out[i] = TO(apply(TC(x[i])));
}
