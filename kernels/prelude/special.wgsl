// Prelude `special` — f32 special functions for the elementwise kernels (helpers only: no entry
// point, no bindings; composed after the `ieee` prelude by engine/webgpu/kernel-source.ts).
//
// Public functions:
//   lgamma_f32(x)   log|Γ(x)|
//   digamma_f32(x)  ψ(x)
//   trigamma_f32(x) ψ'(x)
//   erf_f32(x)      erf(x)
//   erfc_f32(x)     1 − erf(x)  (relatively accurate for large x, use it for GELU's negative tail:
//                   gelu(x) = 0.5 * x * erfc_f32(-x * 0.70710678))
// Private helpers and constants are prefixed with `sf_` / `SF_`.
//
// Accuracy (asserted against the float64 versions in engine/special.ts by
// test/special-functions.test.ts; numbers measured on Mesa lavapipe):
//   lgamma / digamma / trigamma: pure relative error < 1e-5 on [1e-3, 1e4] (measured max
//   3.9e-7 / 2.4e-7 / 2.8e-7), including the f32 inputs next to the zeros of lgamma (x = 1, 2)
//   and of digamma (x0 = 1.4616321…); also < 1e-5 (measured ≤ 1.3e-7) on [1e-30, 1e-3] and
//   [1e4, 1e30] (trigamma overflows to +inf below x ≈ 5.4e-20, as the true value does).
//   erf: absolute error < 2e-7 everywhere (measured 9.7e-8).
//   erfc: relative error ≈ x²·6e-8 for large x (rounding of x² inside exp(−x²)), < 1e-5 while
//   erfc(x) > 1e-30.
//
// The WGSL spec only guarantees weak accuracy for the transcendental builtins (log: absolute
// 2^-21 on [0.5, 2]; exp: 3 + 2|x| ULP; sin/cos: absolute 2^-11), so none of them is used here.
// log, log1p, exp and sin(πx)/cos(πx) are implemented below with + − * / only (plus frexp,
// ldexp, round, abs, bitcast, which are exact).
//
// Methods (same range splits as engine/special.ts, shorter series):
//   lgamma:  [1.5, 2.5]  Taylor series at 2: lgamma(2+e) = (1−γ)e + Σ_{k≥2} (−1)^k (ζ(k)−1)/k e^k
//            [0.5, 1.5)  lgamma(1+e) = lgamma(2+e) − log1p(e), e = x − 1 exact
//            (0, 0.5)    lgamma(1+x) − log(x)
//            (2.5, 8)    lgamma(x) = log((x−1)…(x−n)) + lgamma(x−n)
//            [8, ∞)      Stirling: (x−½)(ln x − 1) + ½ln 2π − ½ + 1/(12x) − 1/(360x³) + 1/(1260x⁵) − 1/(1680x⁷)
//            x < 0       reflection log π − log|sin πx| − lgamma(1−x); poles 0, −1, … → +inf
//   digamma: [1, 2)      Taylor series at a = f32(x0), the f32 nearest the root x0 = 1.4616321…:
//                        ψ(a+δ) = ψ(a) + Σ_{n≥1} (−1)^{n+1} ζ(n+1, a) δⁿ, δ = x − a exact (Sterbenz);
//                        ψ(a) ≈ −1.2e-8 is a stored constant, so ψ is relatively accurate at its
//                        root. (Expanding at x0 with d = (x − x0_hi) − x0_lo does NOT work: GPU
//                        compilers, e.g. Mesa NIR, may fold the two constants into one f32.)
//            (0, 1)      ψ(x+1) − 1/x, with δ = x − (a − 1) (x+1 is never rounded)
//            [2, 6)      ψ(y) + Σ 1/(y+k), y = x − n ∈ [1, 2) exact
//            [6, ∞)      ln x − 1/(2x) − 1/(12x²) + 1/(120x⁴) − 1/(252x⁶) + 1/(240x⁸) − 1/(132x¹⁰)
//            x < 0       reflection ψ(1−x) − π cot(πx); poles 0, −1, … → NaN
//   trigamma: (0, 6)     ψ'(x) = ψ'(x+n) + Σ 1/(x+k)² (positive terms only)
//            [6, ∞)      1/x + 1/(2x²) + 1/(6x³) − 1/(30x⁵) + 1/(42x⁷) − 1/(30x⁹) + 5/(66x¹¹)
//            x < 0       reflection π²/sin²(πx) − ψ'(1−x); poles → +inf
//   erf:     |x| < 0.75  Maclaurin series x·Σ aₙ x²ⁿ (10 terms)
//            [0.75, 4)   1 − e^{−x²}·erfcx(x), erfcx = Chebyshev interpolants of degree 10 on
//                        [0.75, 2] and [2, 4] (coefficients: scripts/gen-special-fixtures.py --coeffs)
//            [4, 10.1)   erfc: e^{−x²}/√π / (x + (1/2)/(x + (2/2)/(x + … (8/2)/x))) (Laplace
//                        continued fraction, 8 levels, relative error < 2e-9 for x ≥ 4)
//            larger      erf = ±1, erfc = 0 (or 2)
//
// Compiler caveat: optimizers that reassociate float math (e.g. Mesa NIR folds (x + c1) + c2 into
// x + (c1 + c2)) would destroy hi/lo constant splits, so the digamma root is handled with a single
// exact subtraction x − f32(x0) plus the stored constant ψ(f32(x0)). The remaining Cody–Waite
// splits of ln 2 in sf_log / sf_exp multiply by a run-time k, which such folding does not touch.
//
// For x < 0 the gamma-family results are only absolutely accurate near their negative-axis zeros,
// and 1 − x rounds for tiny |x|. NaN input returns NaN. The NaN/inf values are produced at run
// time from bit patterns; note that WGSL lets implementations assume that no NaN/inf occurs, so
// those special results are best effort.

const SF_ONE_MINUS_EULER: f32 = 0.42278433509846714;
const SF_LOG_PI: f32 = 1.1447298858494002;
const SF_PI: f32 = 3.14159265358979324;
const SF_PI2: f32 = 9.86960440108935862;           // π²
const SF_HALF_LOG_2PI_MINUS_HALF: f32 = 0.41893853320467274;
const SF_INV_SQRT_PI: f32 = 0.56418958354775628;
// ln 2 = HI + LO with HI = 22713/32768 (15 significant bits, so k·HI is exact for |k| < 512).
const SF_LN2_HI: f32 = 0.693145751953125;
const SF_LN2_LO: f32 = 1.4286068203094173e-06;
const SF_LOG2E: f32 = 1.4426950408889634;
// a = f32 nearest to the digamma root x0 = 1.46163214496836234…, a − 1 (exact), and ψ(a).
const SF_X0_F32: f32 = 1.4616321325302124;
const SF_X0_F32_M1: f32 = 0.4616321325302124;
const SF_DIGAMMA_AT_X0_F32: f32 = -1.203605215494008e-08;

// NaN/inf helpers come from the ieee prelude (f32_from_bits, is_nan_f32, is_inf_f32).
fn sf_nan() -> f32 {
  return f32_from_bits(0x7fc00000u);
}

fn sf_inf() -> f32 {
  return f32_from_bits(0x7f800000u);
}

// log(1+f) for f in [-0.5, 1]: s = f/(2+f), log(1+f) = 2 atanh(s) written as
// f − (f²/2 − s(f²/2 + R)), R = Σ_{k≥1} 2 s^{2k}/(2k+1) (fdlibm-style; the division error only
// enters the small correction term).
fn sf_log1p_core(f: f32) -> f32 {
  let s = f / (2.0 + f);
  let z = s * s;
  let r = z * (0.66666666666666667 + z * (0.4 + z * (0.28571428571428571 + z * (0.22222222222222222
        + z * (0.18181818181818182 + z * (0.15384615384615385 + z * (0.13333333333333333
        + z * 0.11764705882352941)))))));
  let hfsq = 0.5 * f * f;
  return f - (hfsq - s * (hfsq + r));
}

// Natural log for finite y > 0 (normal range), error ≈ 1 ulp.
fn sf_log(y: f32) -> f32 {
  let fr = frexp(y);
  var m = fr.fract;
  var k = f32(fr.exp);
  if (m < 0.70710678118654752) {
    m = m * 2.0;
    k = k - 1.0;
  }
  return k * SF_LN2_HI + (sf_log1p_core(m - 1.0) + k * SF_LN2_LO);
}

// exp(y) for y <= 88.7 (results below the normal range may flush to 0).
fn sf_exp(y: f32) -> f32 {
  if (y < -104.0) {
    return 0.0;
  }
  let k = round(y * SF_LOG2E);
  let r = (y - k * SF_LN2_HI) - k * SF_LN2_LO; // |r| <= 0.347
  let p = 1.0 + r * (1.0 + r * (0.5 + r * (0.16666666666666667 + r * (0.041666666666666667
        + r * (0.0083333333333333333 + r * (0.0013888888888888889 + r * (1.9841269841269841e-4
        + r * 2.4801587301587302e-5)))))));
  return ldexp(p, i32(k));
}

// sin(πr) and cos(πr) for |r| <= 0.5 (Taylor series, error < 1e-9).
fn sf_sinpi_reduced(r: f32) -> f32 {
  let z = r * r;
  return r * (3.1415926535897932 + z * (-5.1677127800499700 + z * (2.5501640398773454
       + z * (-0.59926452932079208 + z * (0.082145886611128229 + z * (-0.0073704309457143508
       + z * 0.00046630280576761256))))));
}

fn sf_cospi_reduced(r: f32) -> f32 {
  let z = r * r;
  return 1.0 + z * (-4.9348022005446793 + z * (4.0587121264167682 + z * (-1.3352627688545895
       + z * (0.2353306303588932 + z * (-0.02580689139001406 + z * (0.001929574309403923
       + z * -0.00010463810492484571))))));
}

// ---------------------------------------------------------------- lgamma

// lgamma(2+e) for |e| <= 0.5; coefficients (−1)^k (ζ(k) − 1)/k, k = 2..14.
fn sf_lgamma_2p(e: f32) -> f32 {
  var s: f32 = 4.3748667899074878e-6;
  s = s * e - 9.4394882752683959e-6;
  s = s * e + 2.0507212775670692e-5;
  s = s * e - 4.4926236738133142e-5;
  s = s * e + 9.9457512781808534e-5;
  s = s * e - 2.2315475845357938e-4;
  s = s * e + 5.0966952474304242e-4;
  s = s * e - 1.1927539117032610e-3;
  s = s * e + 2.8905103307415233e-3;
  s = s * e - 7.3855510286739853e-3;
  s = s * e + 2.0580808427784548e-2;
  s = s * e - 6.7352301053198095e-2;
  s = s * e + 3.2246703342411322e-1;
  return e * (SF_ONE_MINUS_EULER + e * s);
}

// lgamma(1+e) for |e| <= 0.5.
fn sf_lgamma_1p(e: f32) -> f32 {
  return sf_lgamma_2p(e) - sf_log1p_core(e);
}

fn sf_lgamma_pos(x: f32) -> f32 {
  if (x < 0.5) {
    return sf_lgamma_1p(x) - sf_log(x);
  }
  if (x < 1.5) {
    return sf_lgamma_1p(x - 1.0);
  }
  if (x <= 2.5) {
    return sf_lgamma_2p(x - 2.0);
  }
  if (x < 8.0) {
    var y = x;
    var p: f32 = 1.0;
    for (var i = 0; i < 6; i++) {
      if (y > 2.5) {
        y = y - 1.0; // exact
        p = p * y;
      }
    }
    return sf_log(p) + sf_lgamma_2p(y - 2.0);
  }
  let r = 1.0 / x;
  let r2 = r * r;
  let corr = r * (0.083333333333333333 + r2 * (-0.0027777777777777778
           + r2 * (7.9365079365079365e-4 + r2 * -5.9523809523809524e-4)));
  return (x - 0.5) * (sf_log(x) - 1.0) + (SF_HALF_LOG_2PI_MINUS_HALF + corr);
}

fn lgamma_f32(x: f32) -> f32 {
  if (is_nan_f32(x)) {
    return x;
  }
  if (x > 0.0) {
    if (is_inf_f32(x)) {
      return x;
    }
    return sf_lgamma_pos(x);
  }
  if (is_inf_f32(x)) {
    return sf_nan();
  }
  let r = x - round(x); // exact
  if (r == 0.0) {
    return sf_inf(); // pole
  }
  return SF_LOG_PI - sf_log(abs(sf_sinpi_reduced(r))) - sf_lgamma_pos(1.0 - x);
}

// ---------------------------------------------------------------- digamma

// ψ(a + δ) for δ in [−0.47, 0.54], a = SF_X0_F32; coefficients (−1)^{n+1} ζ(n+1, x0), n = 1..20
// (at a they differ by ~n·1e-8 relative, below f32 resolution; only the constant term ψ(a) matters).
fn sf_digamma_root_series(d: f32) -> f32 {
  var s: f32 = 2.3635601564027053e-4;
  s = s * d - 3.4546802510630770e-4;
  s = s * d + 5.0495326583460204e-4;
  s = s * d - 7.3807093899600513e-4;
  s = s * d + 1.0788252019162966e-3;
  s = s * d - 1.5769367714301973e-3;
  s = s * d + 2.3051263267349278e-3;
  s = s * d - 3.3698016554393281e-3;
  s = s * d + 4.9267813957298534e-3;
  s = s * d - 7.2045343863568682e-3;
  s = s * d + 1.0538791616612175e-2;
  s = s * d - 1.5424765904948959e-2;
  s = s * d + 2.2597648232218105e-2;
  s = s * d - 3.3161126474847359e-2;
  s = s * d + 4.8804288164143107e-2;
  s = s * d - 7.2199561256454711e-2;
  s = s * d + 1.0782405069126237e-1;
  s = s * d - 1.6394270544240653e-1;
  s = s * d + 2.5849976095565101e-1;
  s = s * d - 4.4276316898359211e-1;
  s = s * d + 9.6767224544762117e-1;
  return SF_DIGAMMA_AT_X0_F32 + d * s;
}

fn sf_digamma_pos(x: f32) -> f32 {
  if (x < 1.0) {
    return sf_digamma_root_series(x - SF_X0_F32_M1) - 1.0 / x;
  }
  if (x < 6.0) {
    var y = x;
    var acc: f32 = 0.0;
    for (var i = 0; i < 4; i++) {
      if (y >= 2.0) {
        y = y - 1.0; // exact
        acc = acc + 1.0 / y;
      }
    }
    return sf_digamma_root_series(y - SF_X0_F32) + acc;
  }
  let r = 1.0 / x;
  let r2 = r * r;
  let s = r2 * (0.083333333333333333 + r2 * (-0.0083333333333333333 + r2 * (0.0039682539682539683
        + r2 * (-0.0041666666666666667 + r2 * 0.0075757575757575758))));
  return sf_log(x) - (0.5 * r + s);
}

fn digamma_f32(x: f32) -> f32 {
  if (is_nan_f32(x)) {
    return x;
  }
  if (x == 0.0) {
    // ψ(0⁺) = −inf, ψ(0⁻) = +inf (PyTorch, SciPy): the sign opposite to the zero's.
    return select(-f32_from_bits(0x7f800000u), f32_from_bits(0x7f800000u), (bitcast<u32>(x) >> 31u) == 1u);
  }
  if (x > 0.0) {
    if (is_inf_f32(x)) {
      return x;
    }
    return sf_digamma_pos(x);
  }
  if (is_inf_f32(x)) {
    return sf_nan();
  }
  let r = x - round(x);
  if (r == 0.0) {
    return sf_nan(); // pole: +inf from one side, −inf from the other
  }
  return sf_digamma_pos(1.0 - x) - SF_PI * sf_cospi_reduced(r) / sf_sinpi_reduced(r);
}

// ---------------------------------------------------------------- trigamma

fn sf_trigamma_pos(x: f32) -> f32 {
  var z = x;
  var acc: f32 = 0.0;
  for (var i = 0; i < 6; i++) {
    if (z < 6.0) {
      acc = acc + 1.0 / (z * z);
      z = z + 1.0;
    }
  }
  let r = 1.0 / z;
  let r2 = r * r;
  let tail = r + r2 * (0.5 + r * (0.16666666666666667 + r2 * (-0.033333333333333333
           + r2 * (0.023809523809523810 + r2 * (-0.033333333333333333 + r2 * 0.075757575757575758)))));
  return acc + tail;
}

fn trigamma_f32(x: f32) -> f32 {
  if (is_nan_f32(x)) {
    return x;
  }
  if (x > 0.0) {
    if (is_inf_f32(x)) {
      return 0.0;
    }
    return sf_trigamma_pos(x);
  }
  if (is_inf_f32(x)) {
    return sf_nan();
  }
  let r = x - round(x);
  if (r == 0.0) {
    return sf_inf(); // pole, +inf from both sides
  }
  let s = sf_sinpi_reduced(r);
  return SF_PI2 / (s * s) - sf_trigamma_pos(1.0 - x);
}

// ---------------------------------------------------------------- erf / erfc

// erf(x) for |x| < 0.75: x · Σ_{n=0..9} (2/√π)(−1)ⁿ x²ⁿ / (n!(2n+1)).
fn sf_erf_small(x: f32) -> f32 {
  let z = x * x;
  return x * (1.1283791670955126 + z * (-0.37612638903183752 + z * (0.11283791670955126
       + z * (-0.026866170645131252 + z * (0.0052239776254421878 + z * (-8.5483270234508528e-4
       + z * (1.2055332981789664e-4 + z * (-1.4925650358406251e-5 + z * (1.6462114365889247e-6
       + z * -1.6365844691234924e-7)))))))));
}

// erfc(x) for x >= 0.75.
fn sf_erfc_pos(x: f32) -> f32 {
  if (x >= 10.1) {
    return 0.0; // erfc(10.1) < 1e-45
  }
  var g: f32;
  if (x < 2.0) {
    let t = (x - 1.375) * 1.6; // [0.75, 2] -> [-1, 1]
    g = 0.3432958898621252 + t * (-0.11519716947007318 + t * (0.03510239023538928
      + t * (-0.009888503672482132 + t * (0.002606960056845484 + t * (-6.490194334890899e-4
      + t * (1.5357019249303598e-4 + t * (-3.453734336035885e-05 + t * (7.500526445275632e-06
      + t * (-1.7570026203700613e-06 + t * 3.524154695482809e-07)))))))));
  } else if (x < 4.0) {
    let t = x - 3.0; // [2, 4] -> [-1, 1]
    g = 0.17900115118138984 + t * (-0.05437226082750878 + t * (0.015884371343806488
      + t * (-0.004479414652149812 + t * (0.0012230353824385517 + t * (-3.2421661405079963e-4
      + t * (8.357456549973844e-05 + t * (-2.0783956922104226e-05 + t * (5.100322759685683e-06
      + t * (-1.4332136559814742e-06 + t * 3.3415433415545443e-07)))))))));
  } else {
    var f = x;
    for (var n = 8; n >= 1; n--) {
      f = x + (0.5 * f32(n)) / f;
    }
    g = SF_INV_SQRT_PI / f;
  }
  return sf_exp(-(x * x)) * g;
}

fn erf_f32(x: f32) -> f32 {
  if (is_nan_f32(x)) {
    return x;
  }
  let ax = abs(x);
  if (ax < 0.75) {
    return sf_erf_small(x);
  }
  var v: f32 = 1.0;
  if (ax < 4.0) {
    v = 1.0 - sf_erfc_pos(ax);
  }
  return select(v, -v, x < 0.0);
}

fn erfc_f32(x: f32) -> f32 {
  if (is_nan_f32(x)) {
    return x;
  }
  if (x >= 0.75) {
    return sf_erfc_pos(x);
  }
  if (x > -0.75) {
    return 1.0 - sf_erf_small(x);
  }
  return 2.0 - sf_erfc_pos(-x);
}
