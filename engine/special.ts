/**
 * Special functions in float64: log-gamma, digamma, trigamma, erf / erfc and the exact
 * (erf-based) GELU with its derivative.
 *
 * Accuracy target: relative error around 1e-13 or better on (0, ∞) for lgamma / digamma /
 * trigamma and on the whole real line for erf / erfc (erfc: relative, including the far
 * tail). The matching f32 GPU versions live in `kernels/prelude/special.wgsl` and use the same
 * range splits with shorter series.
 *
 * Methods (no Lanczos, no Abramowitz–Stegun 7.1.26 style low-order fits):
 *
 * lgamma (log|Γ(x)|)
 *   - [1.5, 2.5]: Taylor series around 2,
 *       lgamma(2+e) = (1−γ)e + Σ_{k≥2} (−1)^k (ζ(k)−1)/k · e^k      (DLMF 5.7.3 + log(1+e)),
 *     terms fall off like (e/2)^k/k; the value is returned as e·(…), so it stays relatively
 *     accurate at the zero x = 2.
 *   - [0.5, 1.5): lgamma(1+e) = lgamma(2+e) − log1p(e), e = x−1 computed exactly; both
 *     parts are O(e), the difference is ≈ −γe (no catastrophic cancellation at the zero x = 1).
 *   - (0, 0.5): lgamma(x) = lgamma(1+x) − log(x) with the series above (no rounding of 1+x).
 *   - (2.5, 10): downward recurrence lgamma(x) = log((x−1)…(x−n)) + lgamma(x−n).
 *   - [10, ∞): Stirling series (x−½)ln x − x + ½ln 2π + Σ B_2k / (2k(2k−1) x^{2k−1}) (DLMF 5.11.1).
 *   - x < 0, non-integer: reflection log|Γ(x)| = log π − log|sin πx| − lgamma(1−x) (DLMF 5.5.3);
 *     accuracy is absolute-ish there (log|sin πx| is computed from the exactly reduced
 *     argument, but results near the real zeros of log|Γ| on the negative axis are only
 *     absolutely accurate).
 *   - x = 0, −1, −2, …: +Infinity (pole of Γ; same as C `lgamma`). −Infinity and NaN: NaN.
 *
 * digamma ψ(x)
 *   - [1, 2]: Taylor series around the positive root x0 = 1.46163214496836234…:
 *       ψ(x0+d) = Σ_{n≥1} (−1)^{n+1} ζ(n+1, x0) d^n      (DLMF 5.15.1 differentiated),
 *     with d = (x − x0_hi) − x0_lo computed exactly in double-double, so the result is
 *     relatively accurate right at the root. Convergence ratio |d|/x0 ≤ 0.37.
 *   - (0, 1): ψ(x) = ψ(x+1) − 1/x, where ψ(x+1) uses the same series with
 *     d = (x − (x0−1)_hi) − x0_lo (no rounding of x+1). ψ < −γ on (0, 1), so there is
 *     no cancellation.
 *   - (2, 10): ψ(x) = ψ(y) + Σ_{k=0}^{n−1} 1/(y+k), y = x−n ∈ [1, 2) (exact); ψ ≥ 0.42 here,
 *     cancellation is bounded by a factor ≈ 2.4.
 *   - [10, ∞): ψ(x) = ln x − 1/(2x) − Σ B_2k / (2k x^{2k})  (DLMF 5.11.2).
 *   - x < 0, non-integer: reflection ψ(x) = ψ(1−x) − π cot(πx) (DLMF 5.5.4); absolute
 *     accuracy near the negative roots. x = 0, −1, −2, … and −Infinity: NaN (the limit from
 *     the two sides differs). +Infinity: +Infinity.
 *
 * trigamma ψ'(x)
 *   - [10, ∞): ψ'(x) = 1/x + 1/(2x²) + Σ B_2k / x^{2k+1}  (DLMF 5.15.8).
 *   - (0, 10): upward recurrence ψ'(x) = ψ'(x+1) + 1/x² (all terms positive: no cancellation).
 *   - x < 0, non-integer: reflection ψ'(x) = π²/sin²(πx) − ψ'(1−x) (DLMF 5.15.6).
 *     x = 0, −1, −2, …: +Infinity (both one-sided limits are +∞). −Infinity: NaN.
 *
 * erf / erfc
 *   - |x| < 1.5: erf(x) = (2/√π) e^{−x²} Σ_{n≥0} 2^n x^{2n+1} / (1·3·5⋯(2n+1))  (DLMF 7.6.2),
 *     a series of positive terms (no cancellation), with e^{−x²} evaluated from an exact
 *     split of x² (x = h + l, h = fround(x): h² is exact in double).
 *   - x ≥ 1.5: erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …))))
 *     (Laplace continued fraction, DLMF 7.9.2), evaluated with the modified Lentz algorithm
 *     (≤ ~90 steps at x = 1.5, fewer for larger x); erf = 1 − erfc there.
 *   - erfc(x) for x < 1.5 is 1 − erf(x) (≥ 0.034, so at most a few ulp are lost).
 *
 * geluExact(x) = x·Φ(x) = ½x(1 + erf(x/√2)), evaluated as ½x·erfc(−x/√2) so that the
 * negative tail keeps relative accuracy; geluGrad(x) = Φ(x) + x·φ(x), φ(x) = e^{−x²/2}/√(2π).
 *
 * The series coefficients (ζ(k)−1, Hurwitz ζ(n+1, x0), x0) were computed with mpmath by
 * `scripts/gen-special-fixtures.py --coeffs`.
 */

const LOG_PI = 1.1447298858494002;
const HALF_LOG_2PI = 0.9189385332046728; // ½ ln(2π)
const TWO_OVER_SQRT_PI = 1.1283791670955126;
const ONE_OVER_SQRT_PI = 0.5641895835477563;
const ONE_OVER_SQRT_2PI = 0.3989422804014327;

/** Positive root of ψ, x0 = X0_HI + X0_LO (double-double). */
const X0_HI = 1.4616321449683622;
const X0_LO = 9.549995429965697e-17;
/** x0 − 1 = X0M1_HI + X0_LO; the subtraction X0_HI − 1 is exact. */
const X0M1_HI = X0_HI - 1;

/** c_k = (−1)^k (ζ(k) − 1)/k for k = 2..30:  lgamma(2+e) = (1−γ)e + Σ c_k e^k. */
const LGAMMA2_COEFFS = [
  3.2246703342411322e-1, -6.7352301053198095e-2, 2.0580808427784548e-2, -7.3855510286739853e-3,
  2.8905103307415233e-3, -1.192753911703261e-3, 5.0966952474304242e-4, -2.2315475845357938e-4,
  9.9457512781808534e-5, -4.4926236738133142e-5, 2.0507212775670692e-5, -9.4394882752683959e-6,
  4.3748667899074878e-6, -2.0392157538013662e-6, 9.5514121304074198e-7, -4.492469198764566e-7,
  2.1207184805554666e-7, -1.00432248239681e-7, 4.7698101693639806e-8, -2.2711094608943165e-8,
  1.0838659214896954e-8, -5.1834750419700467e-9, 2.4836745438024783e-9, -1.1921401405860912e-9,
  5.731367241678862e-10, -2.7595228851242331e-10, 1.3304764374244489e-10, -6.4229645638381e-11,
  3.1044247747322273e-11,
];
const ONE_MINUS_EULER = 4.2278433509846714e-1;

/** t_n = (−1)^{n+1} ζ(n+1, x0) for n = 1..42:  ψ(x0+d) = Σ t_n d^n. */
const DIGAMMA_X0_COEFFS = [
  9.6767224544762117e-1, -4.4276316898359211e-1, 2.5849976095565101e-1, -1.6394270544240653e-1,
  1.0782405069126237e-1, -7.2199561256454711e-2, 4.8804288164143107e-2, -3.3161126474847359e-2,
  2.2597648232218105e-2, -1.5424765904948959e-2, 1.0538791616612175e-2, -7.2045343863568682e-3,
  4.9267813957298534e-3, -3.3698016554393281e-3, 2.3051263267349278e-3, -1.5769367714301973e-3,
  1.0788252019162966e-3, -7.3807093899600513e-4, 5.0495326583460204e-4, -3.454680251063077e-4,
  2.3635601564027053e-4, -1.6170622091974803e-4, 1.1063372768747411e-4, -7.5691795821950659e-5,
  5.1785757952220809e-5, -3.5430070947659606e-5, 2.4240066118601318e-5, -1.6584242271854133e-5,
  1.134638458466385e-5, -7.7628176684620944e-6, 5.3110609208898634e-6, -3.6336507898010457e-6,
  2.4860227331295379e-6, -1.7008538854332607e-6, 1.1636675363548843e-6, -7.9614254312419704e-7,
  5.4469419306694453e-7, -3.726616128343823e-7, 2.5496265520215543e-7, -1.7443695117727745e-7,
  1.1934394829830243e-7, -8.1651151894884088e-8,
];

/** B_2k / (2k(2k−1)) for k = 1..9 (Stirling series of lgamma, in powers of 1/x²). */
const STIRLING_COEFFS = [
  1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156, -3617 / 122400, 43867 / 244188,
];
/** B_2k / (2k) for k = 1..8 (asymptotic series of digamma). */
const DIGAMMA_ASYMPTOTIC_COEFFS = [1 / 12, -1 / 120, 1 / 252, -1 / 240, 1 / 132, -691 / 32760, 1 / 12, -3617 / 8160];
/** B_2k for k = 1..10 (asymptotic series of trigamma). */
const TRIGAMMA_ASYMPTOTIC_COEFFS = [
  1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510, 43867 / 798, -174611 / 330,
];

function horner(coeffs: readonly number[], x: number): number {
  let s = 0;
  for (let i = coeffs.length - 1; i >= 0; i--) s = s * x + coeffs[i]!;
  return s;
}

/** sin(πx) with exact argument reduction (x − round(x) is exact in binary floating point). */
function sinpi(x: number): number {
  const n = Math.round(x);
  const s = Math.sin(Math.PI * (x - n));
  return n % 2 === 0 ? s : -s;
}

/** π·cot(πx), exact argument reduction (cot has period 1). */
function picotpi(x: number): number {
  const r = Math.PI * (x - Math.round(x));
  return (Math.PI * Math.cos(r)) / Math.sin(r);
}

/** lgamma(2+e) for |e| ≤ 0.5 (Taylor series around 2). */
function lgamma2p(e: number): number {
  return e * (ONE_MINUS_EULER + e * horner(LGAMMA2_COEFFS, e));
}

/** lgamma(1+e) for |e| ≤ 0.5. */
function lgamma1p(e: number): number {
  return lgamma2p(e) - Math.log1p(e);
}

function lgammaPositive(x: number): number {
  if (x < 0.5) return lgamma1p(x) - Math.log(x);
  if (x < 1.5) return lgamma1p(x - 1);
  if (x <= 2.5) return lgamma2p(x - 2);
  if (x < 10) {
    let y = x;
    let p = 1;
    while (y > 2.5) {
      y -= 1; // exact
      p *= y;
    }
    return Math.log(p) + lgamma2p(y - 2);
  }
  if (x === Infinity) return Infinity;
  // Stirling series; Σ B_2k / (2k(2k−1) x^{2k−1}) for k = 1..9 (remainder < 2e-19 at x = 10).
  const r = 1 / x;
  const r2 = r * r;
  const corr = r * horner(STIRLING_COEFFS, r2);
  return (x - 0.5) * Math.log(x) - x + HALF_LOG_2PI + corr;
}

/**
 * log|Γ(x)|. Relative error ≲ 1e-14 on (0, ∞) (also at the zeros x = 1, 2).
 * x ≤ 0: non-integers via the reflection formula; poles (0, −1, −2, …) give +Infinity;
 * NaN and −Infinity give NaN.
 */
export function lgamma(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x > 0) return lgammaPositive(x);
  if (x === -Infinity) return NaN;
  if (Number.isInteger(x)) return Infinity;
  return LOG_PI - Math.log(Math.abs(sinpi(x))) - lgammaPositive(1 - x);
}

/** ψ(x0 + d) where d is given as the exact difference (x − base_hi) − X0_LO. */
function digammaAroundRoot(d: number): number {
  return d * horner(DIGAMMA_X0_COEFFS, d);
}

function digammaPositive(x: number): number {
  if (x < 1) {
    // ψ(x) = ψ(x+1) − 1/x, with (x+1) − x0 = x − (x0−1) formed without rounding x+1.
    return digammaAroundRoot(x - X0M1_HI - X0_LO) - 1 / x;
  }
  if (x < 10) {
    let y = x;
    let acc = 0;
    while (y > 2) {
      y -= 1; // exact
      acc += 1 / y;
    }
    return digammaAroundRoot(y - X0_HI - X0_LO) + acc;
  }
  if (x === Infinity) return Infinity;
  // ln x − 1/(2x) − Σ_{k=1..8} B_2k/(2k x^{2k}) (remainder < 4e-18 relative at x = 10).
  const r = 1 / x;
  const r2 = r * r;
  const s = r2 * horner(DIGAMMA_ASYMPTOTIC_COEFFS, r2);
  return Math.log(x) - 0.5 * r - s;
}

/**
 * Digamma ψ(x) = d/dx lgamma(x). Relative error ≲ 1e-14 on (0, ∞), including the root
 * x0 ≈ 1.4616. x ≤ 0: non-integers via reflection; ±0 give ∓Infinity (the one-sided limits
 * ψ(0⁺) = −∞ and ψ(0⁻) = +∞, as PyTorch and SciPy); −1, −2, … and −Infinity give NaN.
 */
export function digamma(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === 0) return Object.is(x, -0) ? Infinity : -Infinity;
  if (x > 0) return digammaPositive(x);
  if (x === -Infinity || Number.isInteger(x)) return NaN;
  return digammaPositive(1 - x) - picotpi(x);
}

function trigammaPositive(x: number): number {
  if (x === Infinity) return 0;
  let acc = 0;
  let z = x;
  while (z < 10) {
    acc += 1 / (z * z);
    z += 1;
  }
  // 1/z + 1/(2z²) + Σ_{k=1..10} B_2k / z^{2k+1} (remainder < 1e-19 relative at z = 10).
  const r = 1 / z;
  const r2 = r * r;
  const tail = r + r2 * (0.5 + r * horner(TRIGAMMA_ASYMPTOTIC_COEFFS, r2));
  return acc + tail;
}

/**
 * Trigamma ψ'(x) (derivative of digamma). Relative error ≲ 1e-14 on (0, ∞).
 * x ≤ 0: non-integers via reflection; 0, −1, −2, … give +Infinity; −Infinity gives NaN.
 */
export function trigamma(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x > 0) return trigammaPositive(x);
  if (x === -Infinity) return NaN;
  if (Number.isInteger(x)) return Infinity;
  const s = Math.PI / sinpi(x);
  return s * s - trigammaPositive(1 - x);
}

/**
 * e^{−c·x²} for c ∈ {1, ½}, with x² split exactly: x = h + l, h = fround(x) (24 bits, so h²
 * is exact in double), x² = h² + l(x+h). Avoids the relative error |x²|·ε that rounding x²
 * would otherwise feed into the exponential. Requires |x| < 3.4e38 (callers use |x| ≤ 40).
 */
function expNegScaledSquare(x: number, c: 1 | 0.5): number {
  const h = Math.fround(x);
  const l = x - h;
  return Math.exp(-c * (h * h)) * Math.exp(-c * (l * (x + h)));
}

/** erf(x) for |x| < 1.5 via the positive-term series (2/√π) e^{−x²} Σ 2^n x^{2n+1}/(2n+1)!!. */
function erfSeries(x: number): number {
  const ax = Math.abs(x);
  const x2 = ax * ax;
  let term = ax;
  let sum = ax;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term <= 1e-17 * sum) break;
  }
  const v = TWO_OVER_SQRT_PI * expNegScaledSquare(ax, 1) * sum;
  return x < 0 ? -v : v;
}

/** erfc(x) for x ≥ 1.5 via the Laplace continued fraction (modified Lentz). */
function erfcContinuedFraction(x: number): number {
  if (x > 27.5) return 0; // erfc(27.5) < 2^-1074
  const tiny = 1e-300;
  // f = x + (1/2)/(x + (2/2)/(x + (3/2)/(x + …)))
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 1000; n++) {
    const a = n / 2;
    d = x + a * d;
    if (d === 0) d = tiny;
    c = x + a / c;
    if (c === 0) c = tiny;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return (ONE_OVER_SQRT_PI * expNegScaledSquare(x, 1)) / f;
}

/** Error function. Absolute error ≲ 2e-16, relative ≲ 1e-15. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 1.5) return erfSeries(x);
  const v = ax >= 6 ? 1 : 1 - erfcContinuedFraction(ax);
  return x < 0 ? -v : v;
}

/**
 * Complementary error function 1 − erf(x), relatively accurate in the right tail (relative
 * error ≲ 2e-14; the worst case is just below x = 1.5 where 1 − erf(x) is used).
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x >= 1.5) return erfcContinuedFraction(x);
  if (x > -1.5) return 1 - erfSeries(x);
  return x <= -6 ? 2 : 2 - erfcContinuedFraction(-x);
}

/**
 * Exact GELU: x·Φ(x) = ½x(1 + erf(x/√2)), computed as ½x·erfc(−x/√2). Relative error ≲ 1e-15
 * for moderate x; in the far negative tail the rounding of x/√2 adds ≈ x²·1e-16 (1e-13 at x = −37).
 */
export function geluExact(x: number): number {
  if (x < -40) return -0; // |x·Φ(x)| < 1e-350
  return 0.5 * x * erfc(-x * Math.SQRT1_2);
}

/**
 * d/dx geluExact(x) = Φ(x) + x·φ(x), φ(x) = e^{−x²/2}/√(2π). Relatively accurate except next to
 * its zero at x ≈ −0.7518 (absolute error there ≈ 1e-16).
 */
export function geluGrad(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const cdf = 0.5 * erfc(-x * Math.SQRT1_2);
  if (Math.abs(x) > 40) return cdf; // x·φ(x) < 1e-345
  return cdf + x * ONE_OVER_SQRT_2PI * expNegScaledSquare(x, 0.5);
}

/**
 * pow with the C99 / IEEE 754 special cases (as PyTorch, NumPy and C's pow): pow(1, y) = 1 for
 * every y including NaN, pow(x, ±0) = 1 for every x including NaN, and pow(−1, ±∞) = 1. JS's
 * Math.pow gives NaN for pow(1, NaN), pow(1, ±∞) and pow(−1, ±∞); everything else is Math.pow.
 */
export function powC99(b: number, e: number): number {
  if (b === 1 || e === 0) return 1;
  if (b === -1 && (e === Infinity || e === -Infinity)) return 1;
  return Math.pow(b, e);
}
