import { describe, expect, it } from 'vitest';
import {
  ArgumentError, BayesianLinearRegression, ShapeError, SingularMatrixError, gaussianBasis, linearBasis, polynomialBasis,
} from '../node.js';
import { cholesky, choleskyInverse } from '../uncertainty/bayes/linalg.js';

describe('Bayesian linear regression: closed form', () => {
  it('3-point dataset, orthogonal design: hand values of Σ, μ and the predictive', () => {
    // x = [−1, 0, 1], φ = [1, x]: ΦᵀΦ = diag(3, 2); α = 1, β = 2 → A = diag(7, 5).
    // Φᵀy = [7, 3] for y = [1, 2, 4] → μ = βΣΦᵀy = [2, 1.2].
    const blr = new BayesianLinearRegression({ alpha: 1, beta: 2 }).fit([-1, 0, 1], [1, 2, 4]);
    const S = blr.posteriorCovariance;
    expect(Array.from(S)).toEqual([1 / 7, 0, 0, 1 / 5].map((v) => expect.closeTo(v, 14)));
    expect(Array.from(blr.posteriorMean)).toEqual([expect.closeTo(2, 14), expect.closeTo(1.2, 14)]);
    const p = blr.predict([2]);
    expect(p.mean[0]).toBeCloseTo(4.4, 13);
    // σ²(2) = 1/β + [1 2] Σ [1 2]ᵀ = 0.5 + 1/7 + 4/5.
    expect(p.variance[0]).toBeCloseTo(0.5 + 1 / 7 + 4 / 5, 13);
    expect(p.epistemic[0]).toBeCloseTo(1 / 7 + 4 / 5, 13);
  });

  it('3-point dataset, correlated design: hand values', () => {
    // x = [0, 1, 3]: ΦᵀΦ = [[3, 4], [4, 10]], α = β = 1 → A = [[4, 4], [4, 11]], det 28,
    // Σ = [[11, −4], [−4, 4]]/28; y = [1, 2, 4] → Φᵀy = [7, 14] → μ = [0.75, 1].
    const blr = new BayesianLinearRegression({ alpha: 1, beta: 1 }).fit([[0], [1], [3]], [1, 2, 4]);
    expect(Array.from(blr.posteriorCovariance)).toEqual([11, -4, -4, 4].map((v) => expect.closeTo(v / 28, 14)));
    expect(Array.from(blr.posteriorMean)).toEqual([expect.closeTo(0.75, 14), expect.closeTo(1, 14)]);
    // Evidence, PRML 3.86 by hand: M = 2, N = 3, E = ½‖y − Φμ‖² + ½‖μ‖², |A| = 28.
    const res = [1 - 0.75, 2 - 1.75, 4 - 3.75];
    const e = 0.5 * res.reduce((s, r) => s + r * r, 0) + 0.5 * (0.75 ** 2 + 1);
    expect(blr.logEvidence()).toBeCloseTo(-e - 0.5 * Math.log(28) - 1.5 * Math.log(2 * Math.PI), 12);
  });

  it('without a prior precision: the least-squares fit, and a typed error for a singular design', () => {
    const blr = new BayesianLinearRegression({ beta: 4 }).fit([0, 1, 2], [1, 3, 5]);
    expect(Array.from(blr.posteriorMean)).toEqual([expect.closeTo(1, 12), expect.closeTo(2, 12)]);
    // Σ = (βΦᵀΦ)⁻¹ with ΦᵀΦ = [[3, 3], [3, 5]] (det 6).
    expect(Array.from(blr.posteriorCovariance)).toEqual([5, -3, -3, 3].map((v) => expect.closeTo(v / 24, 12)));
    // Two identical inputs cannot determine slope and intercept.
    expect(() => new BayesianLinearRegression({ beta: 1 }).fit([1, 1], [0, 2])).toThrow(SingularMatrixError);
    expect(() => new BayesianLinearRegression({ beta: 1 }).fit([1, 1], [0, 2])).toThrow(/singular.*no prior precision/);
    // A prior makes the same data well-posed.
    expect(() => new BayesianLinearRegression({ alpha: 0.1, beta: 1 }).fit([1, 1], [0, 2])).not.toThrow();
  });

  it('bad input: α or β ≤ 0, basis of size 0, length mismatch', () => {
    expect(() => new BayesianLinearRegression({ alpha: 0, beta: 1 })).toThrow(ArgumentError);
    expect(() => new BayesianLinearRegression({ alpha: -1, beta: 1 })).toThrow(/alpha/);
    expect(() => new BayesianLinearRegression({ alpha: 1, beta: 0 })).toThrow(/beta.*positive/);
    expect(() => new BayesianLinearRegression({ alpha: 1, beta: Number.NaN })).toThrow(ArgumentError);
    expect(() => gaussianBasis([], 1)).toThrow(/size 0/);
    expect(() => polynomialBasis(0, { bias: false })).toThrow(/size 0/);
    expect(() => polynomialBasis(1.5)).toThrow(ArgumentError);
    expect(() => gaussianBasis([0, 1], 0)).toThrow(/width/);
    expect(() => new BayesianLinearRegression({ alpha: 1, beta: 1, basis: linearBasis({ bias: false }) }).fit([[], []], [1, 2])).toThrow(/size 0/);
    expect(() => new BayesianLinearRegression({ alpha: 1, beta: 1 }).fit([1, 2, 3], [1, 2])).toThrow(ShapeError);
    expect(() => new BayesianLinearRegression({ alpha: 1, beta: 1 }).predict([1])).toThrow(/fit/);
  });

  it('polynomial and Gaussian bases expand as documented', () => {
    const out = new Float64Array(4);
    polynomialBasis(3).expand([2], out);
    expect(Array.from(out)).toEqual([1, 2, 4, 8]);
    const g = gaussianBasis([[0, 0], [1, 1]], 0.5, { bias: true });
    expect(g.size(2)).toBe(3);
    const o2 = new Float64Array(3);
    g.expand([1, 0], o2);
    expect(Array.from(o2)).toEqual([1, expect.closeTo(Math.exp(-1 / 0.5), 14), expect.closeTo(Math.exp(-1 / 0.5), 14)]);
    expect(() => g.size(3)).toThrow(ShapeError);
  });

  it('evidence maximisation recovers the noise level and increases the evidence', () => {
    // y = 0.5 + 2x + noise with σ = 0.1 (a fixed pseudo-random sequence, no RNG dependence).
    const xs = Array.from({ length: 200 }, (_, i) => -1 + (2 * i) / 199);
    const noise = xs.map((_, i) => 0.1 * Math.sqrt(3) * (2 * ((i * 0.6180339887498949) % 1) - 1)); // uniform, var 0.01
    const ys = xs.map((x, i) => 0.5 + 2 * x + noise[i]);
    const blr = new BayesianLinearRegression({ alpha: 1, beta: 1, basis: polynomialBasis(3) });
    const before = blr.fit(xs, ys).logEvidence();
    const r = blr.fitEvidence(xs, ys);
    expect(r.logEvidence).toBeGreaterThan(before);
    expect(1 / Math.sqrt(blr.beta)).toBeGreaterThan(0.08);
    expect(1 / Math.sqrt(blr.beta)).toBeLessThan(0.12);
    expect(r.gamma).toBeGreaterThan(1.5); // at least intercept and slope are well determined
    expect(r.gamma).toBeLessThanOrEqual(4);
  });
});

describe('Bayesian linear regression: the three observations of the notes', () => {
  const grid = Array.from({ length: 401 }, (_, i) => -10 + i * 0.05);

  it('linear features: the predictive variance is minimal at the barycentre and grows away from the data', () => {
    const xs = [0.5, 1, 1.5, 2.5, 3, 4.5]; // barycentre 13/6
    const ys = xs.map((x) => 1 - 0.5 * x);
    const blr = new BayesianLinearRegression({ alpha: 1e-3, beta: 25 }).fit(xs, ys);
    const v = blr.predict(grid).variance;
    let imin = 0;
    for (let i = 1; i < v.length; i++) if (v[i] < v[imin]) imin = i;
    // The minimum of 1/β + φᵀΣφ for φ = [1, x] is at x = −Σ01/Σ11, the barycentre when α → 0.
    const S = blr.posteriorCovariance;
    const xStar = -S[1] / S[3];
    expect(xStar).toBeCloseTo(13 / 6, 3);
    expect(Math.abs(grid[imin] - xStar)).toBeLessThanOrEqual(0.025 + 1e-9);
    // Monotone growth on both sides of the minimum, quadratic in the distance.
    for (let i = imin + 1; i < v.length; i++) expect(v[i]).toBeGreaterThan(v[i - 1]);
    for (let i = imin - 1; i >= 0; i--) expect(v[i]).toBeGreaterThan(v[i + 1]);
    const far = blr.predict([xStar + 10, xStar + 20]).epistemic;
    expect(far[1] / far[0]).toBeGreaterThan(3.5); // ≈ 4 (quadratic)
  });

  it('two separated clusters: the variance grows less away from the data than with one cluster', () => {
    const one = [-0.3, -0.1, 0, 0.1, 0.3, 0.2];
    const two = [-4.3, -4.1, -4, 3.9, 4.1, 4.3]; // same count, same barycentre ≈ 0
    const fitOn = (xs: number[]) => new BayesianLinearRegression({ alpha: 1e-3, beta: 25 }).fit(xs, xs.map((x) => 2 * x));
    const probe = [8, 12, -8];
    const v1 = fitOn(one).predict(probe).epistemic;
    const v2 = fitOn(two).predict(probe).epistemic;
    for (let i = 0; i < probe.length; i++) expect(v2[i]).toBeLessThan(v1[i] / 10);
    // And at the middle between the clusters (no data there) it is still small: the slope is well known.
    expect(fitOn(two).predict([0]).epistemic[0]).toBeLessThan(fitOn(two).predict([8]).epistemic[0]);
  });

  it('Gaussian bases: far from the data the variance falls back to the noise 1/β', () => {
    const centres = Array.from({ length: 9 }, (_, i) => -2 + i * 0.5);
    const xs = Array.from({ length: 30 }, (_, i) => -2 + (4 * i) / 29);
    const beta = 25;
    const blr = new BayesianLinearRegression({ alpha: 1, beta, basis: gaussianBasis(centres, 0.5) }).fit(xs, xs.map(Math.sin));
    const p = blr.predict([0, 3, 5, 9, -9]);
    expect(p.variance[3]).toBeCloseTo(1 / beta, 10);
    expect(p.variance[4]).toBeCloseTo(1 / beta, 10);
    // Inside the data there is an epistemic part; it decays to nothing as φ(x) → 0.
    expect(p.epistemic[0]).toBeGreaterThan(1e-3);
    expect(p.epistemic[2]).toBeLessThan(p.epistemic[1]);
    expect(p.epistemic[2]).toBeLessThan(1e-6);
    // Unlike linear features, whose variance would keep growing:
    const lin = new BayesianLinearRegression({ alpha: 1, beta }).fit(xs, xs.map(Math.sin)).predict([9]);
    expect(lin.variance[0]).toBeGreaterThan(2 / beta);
  });
});

describe('host Cholesky helpers', () => {
  it('inverse of a 3×3 SPD matrix and refusal of a singular one', () => {
    const a = [4, 2, 0.4, 2, 5, 1, 0.4, 1, 3];
    const l = cholesky(a, 3)!;
    const inv = choleskyInverse(l, 3);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        let s = 0;
        for (let k = 0; k < 3; k++) s += a[i * 3 + k] * inv[k * 3 + j];
        expect(s).toBeCloseTo(i === j ? 1 : 0, 13);
      }
    }
    expect(cholesky([1, 2, 2, 4], 2)).toBeNull();
  });
});
