// Elementwise unary ops. The kernel-source builder prepends `alias TA/TC/TO` (input storage,
// compute and output types), the OP_<NAME> codes (UNARY_OPS in engine/webgpu/kernel-constants.ts)
// and the ieee/special/grid preludes; OP selects the function at pipeline creation, so every
// variant compiles to straight-line code.
override OP: u32 = OP_NEG;

struct Params {
  n: u32,
  alpha: f32,   // leakyRelu slope, pow exponent
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
    case OP_NEG: { return -v; }                                   // neg
    case OP_EXP: { return TC(exp(f32(v))); }                      // exp
    case OP_LOG: { return TC(log(f32(v))); }                      // log
    case OP_LOG1P: { return TC(log1p_f32(f32(v))); }                // log1p
    case OP_SQRT: { return TC(sqrt(f32(v))); }                     // sqrt
    case OP_RSQRT: { return TC(inverseSqrt(f32(v))); }              // rsqrt
    case OP_ABS: { return abs(v); }                               // abs
    case OP_SIGN: { return sign(v); }                              // sign
    case OP_RELU: { return select(max(v, TC(0)), v, is_nan_f32(f32(v))); } // relu (NaN stays NaN, as PyTorch)
    case OP_LEAKY_RELU: { return select(TC(f32(v) * params.alpha), v, v > TC(0)); } // leakyRelu (int: αx truncated toward 0)
    case OP_GELU: {                                               // gelu (exact): ½x·erfc(−x/√2), accurate in the negative tail
      let f = f32(v);
      if (f < -20.0) { return TC(f32_from_bits(0x80000000u)); } // −0: ½x·erfc(14.1) < 1e-80 (and −inf·0 would be NaN)
      return TC(0.5 * f * erfc_f32(-f * 0.70710678118654752));
    }
    case OP_SIGMOID: { return TC(sigmoid_f32(f32(v))); }             // sigmoid
    case OP_TANH: { return TC(tanh_f32(f32(v))); }                // tanh
    case OP_SOFTPLUS: {                                               // softplus = max(v,0) + log1p(exp(-|v|))
      let f = f32(v);
      return TC(max(f, 0.0) + log1p_f32(exp(-abs(f))));
    }
    case OP_LGAMMA: { return TC(lgamma_f32(f32(v))); }              // lgamma
    case OP_DIGAMMA: { return TC(digamma_f32(f32(v))); }             // digamma
    case OP_TRIGAMMA: { return TC(trigamma_f32(f32(v))); }            // trigamma
    case OP_POW_SCALAR: { return TC(pow_f32(f32(v), params.alpha)); }   // pow by scalar
    case OP_SQUARE: { return v * v; }                               // square
    case OP_ERF: { return TC(erf_f32(f32(v))); }                 // erf
    case OP_IDENTITY: { return v; }                                   // identity / cast
    case OP_RECIPROCAL: { return TC(1.0) / v; }                         // reciprocal
    default: { return v; }
  }
}

// Called by the `elementwise` prelude's entry point for each i < params.n.
fn element(i: u32) {
  out[i] = TO(apply(TC(x[i])));
}
