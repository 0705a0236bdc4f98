/**
 * Small float64 host linear algebra for the feature-space detectors (fits run on the host once;
 * scoring runs on the device): a symmetric eigendecomposition (cyclic Jacobi), a Cholesky solve,
 * a percentile with linear interpolation, and a regularised logistic regression (Newton / IRLS).
 * Matrices are row-major Float64Arrays.
 */
import { ArgumentError } from '../engine/index.js';
import { choleskyWithJitter } from './mahalanobis.js';

/**
 * Eigendecomposition of a symmetric d×d matrix by cyclic Jacobi rotations (converges
 * quadratically; exact to ~1e-14 relative for the d ≤ a few hundred used here). Returns the
 * eigenvalues in DESCENDING order and the eigenvectors as the COLUMNS of `vectors` (row-major
 * d×d: vectors[i*d + j] is component i of eigenvector j).
 */
export function symmetricEigen(a: ArrayLike<number>, d: number, opts: { maxSweeps?: number } = {}): { values: Float64Array; vectors: Float64Array } {
  if (a.length !== d * d) throw new ArgumentError(`symmetricEigen: expected ${d}×${d} = ${d * d} values, got ${a.length}`);
  const A = Float64Array.from(a);
  const V = new Float64Array(d * d);
  for (let i = 0; i < d; i++) V[i * d + i] = 1;
  const maxSweeps = opts.maxSweeps ?? 100;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    let diag = 0;
    for (let p = 0; p < d; p++) {
      diag += A[p * d + p] * A[p * d + p];
      for (let q = p + 1; q < d; q++) off += A[p * d + q] * A[p * d + q];
    }
    if (off <= 1e-30 * Math.max(diag, 1e-300)) break;
    for (let p = 0; p < d - 1; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = A[p * d + q];
        if (apq === 0) continue;
        const theta = (A[q * d + q] - A[p * d + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < d; k++) {
          const akp = A[k * d + p];
          const akq = A[k * d + q];
          A[k * d + p] = c * akp - s * akq;
          A[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          const apk = A[p * d + k];
          const aqk = A[q * d + k];
          A[p * d + k] = c * apk - s * aqk;
          A[q * d + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < d; k++) {
          const vkp = V[k * d + p];
          const vkq = V[k * d + q];
          V[k * d + p] = c * vkp - s * vkq;
          V[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: d }, (_, i) => i).sort((i, j) => A[j * d + j] - A[i * d + i]);
  const values = new Float64Array(d);
  const vectors = new Float64Array(d * d);
  order.forEach((src, dst) => {
    values[dst] = A[src * d + src];
    for (let k = 0; k < d; k++) vectors[k * d + dst] = V[k * d + src];
  });
  return { values, vectors };
}

/** Solves A x = b for a symmetric positive (semi-)definite A (Cholesky with jitter). */
export function choleskySolve(a: Float64Array, b: ArrayLike<number>, d: number): Float64Array {
  const { L } = choleskyWithJitter(a, d);
  const y = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= L[i * d + k] * y[k];
    y[i] = s / L[i * d + i];
  }
  const x = new Float64Array(d);
  for (let i = d - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < d; k++) s -= L[k * d + i] * x[k];
    x[i] = s / L[i * d + i];
  }
  return x;
}

/**
 * The p-th percentile (p ∈ [0, 100]) with linear interpolation between order statistics (NumPy's
 * default, 'linear'): sorted v, h = (n − 1)·p/100, result v[⌊h⌋] + (h − ⌊h⌋)(v[⌊h⌋+1] − v[⌊h⌋]).
 */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new ArgumentError(`percentile: p must be in [0, 100], got ${p}`);
  if (values.length === 0) throw new ArgumentError('percentile: no values');
  const v = Float64Array.from(values).sort();
  const h = ((v.length - 1) * p) / 100;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, v.length - 1);
  return v[lo] + (h - lo) * (v[hi] - v[lo]);
}

/**
 * L2-regularised logistic regression by Newton's method (IRLS): minimises
 *   −Σ_i [y_i log σ(w·x_i + b) + (1 − y_i) log(1 − σ(w·x_i + b))] + (λ/2)‖w‖²
 * (the intercept b is not penalised). x is row-major [n, d], y ∈ {0, 1}. Converges when the
 * Newton step is below 1e-10 (at most `maxIter` steps, default 100). Returns { weights, bias }.
 */
export function logisticRegression(x: ArrayLike<number>, y: ArrayLike<number>, d: number, opts: { l2?: number; maxIter?: number } = {}): { weights: Float64Array; bias: number } {
  const n = y.length;
  if (x.length !== n * d) throw new ArgumentError(`logisticRegression: ${x.length} values are not ${n} rows of ${d} features`);
  const lambda = opts.l2 ?? 1e-3;
  if (!(lambda >= 0)) throw new ArgumentError(`logisticRegression: l2 must be ≥ 0, got ${lambda}`);
  const p = d + 1;
  const theta = new Float64Array(p); // [w..., b]
  for (let it = 0; it < (opts.maxIter ?? 100); it++) {
    const g = new Float64Array(p);
    const H = new Float64Array(p * p);
    for (let i = 0; i < n; i++) {
      let z = theta[d];
      for (let j = 0; j < d; j++) z += theta[j] * x[i * d + j];
      const s = 1 / (1 + Math.exp(-z));
      const r = s - y[i];
      const wgt = s * (1 - s);
      for (let a = 0; a < p; a++) {
        const xa = a === d ? 1 : x[i * d + a];
        g[a] += r * xa;
        for (let b = 0; b <= a; b++) H[a * p + b] += wgt * xa * (b === d ? 1 : x[i * d + b]);
      }
    }
    for (let a = 0; a < p; a++) {
      if (a < d) {
        g[a] += lambda * theta[a];
        H[a * p + a] += lambda;
      }
      for (let b = 0; b < a; b++) H[b * p + a] = H[a * p + b];
    }
    const step = choleskySolve(H, g, p);
    let norm = 0;
    for (let a = 0; a < p; a++) {
      theta[a] -= step[a];
      norm += step[a] * step[a];
    }
    if (Math.sqrt(norm) < 1e-10) break;
  }
  return { weights: theta.slice(0, d), bias: theta[d] };
}
