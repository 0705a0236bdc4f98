/**
 * Small dense float64 linear algebra on the host (plain JS, row-major Float64Array n×n), used by
 * Bayesian linear regression and the Laplace approximation for matrices of up to a few thousand
 * rows: Cholesky factorisation, triangular solves, the inverse and log-determinant of a
 * symmetric positive-definite matrix. These run on the CPU in double precision whatever the
 * tensor backend is (the matrices are small; float32 would lose the conditioning we need).
 */
import { DubitoError } from '../../engine/index.js';

/** A matrix that had to be symmetric positive definite is not (a singular design, no prior precision). */
export class SingularMatrixError extends DubitoError {}

/**
 * Lower Cholesky factor L (A = L Lᵀ) of a symmetric positive-definite n×n matrix (only the lower
 * triangle of A is read). Returns null when a pivot is not positive, i.e. when A is singular or
 * indefinite to working precision (pivot ≤ n·ε·max diag).
 */
export function cholesky(a: ArrayLike<number>, n: number): Float64Array | null {
  const l = new Float64Array(n * n);
  let maxDiag = 0;
  for (let i = 0; i < n; i++) maxDiag = Math.max(maxDiag, Math.abs(a[i * n + i]));
  const tol = Math.max(n, 1) * 2.220446049250313e-16 * maxDiag;
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j];
    for (let k = 0; k < j; k++) d -= l[j * n + k] * l[j * n + k];
    if (!(d > tol)) return null;
    const ljj = Math.sqrt(d);
    l[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = s / ljj;
    }
  }
  return l;
}

/** cholesky(), or a SingularMatrixError whose message starts with `what`. */
export function choleskyOrThrow(a: ArrayLike<number>, n: number, what: string): Float64Array {
  const l = cholesky(a, n);
  if (!l) throw new SingularMatrixError(`${what}: the ${n}×${n} matrix is not positive definite (singular or ill-conditioned)`);
  return l;
}

/** Solves L y = b (L lower triangular n×n), returns y. */
export function forwardSubstitute(l: Float64Array, n: number, b: ArrayLike<number>): Float64Array {
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= l[i * n + k] * y[k];
    y[i] = s / l[i * n + i];
  }
  return y;
}

/** Solves Lᵀ x = y (L lower triangular n×n), returns x. */
export function backSubstitute(l: Float64Array, n: number, y: ArrayLike<number>): Float64Array {
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < n; k++) s -= l[k * n + i] * x[k];
    x[i] = s / l[i * n + i];
  }
  return x;
}

/** Solves A x = b given the Cholesky factor L of A. */
export function choleskySolve(l: Float64Array, n: number, b: ArrayLike<number>): Float64Array {
  return backSubstitute(l, n, forwardSubstitute(l, n, b));
}

/** A⁻¹ from the Cholesky factor L of A (symmetric result): A⁻¹ = L⁻ᵀ L⁻¹. */
export function choleskyInverse(l: Float64Array, n: number): Float64Array {
  // M = L⁻¹ (lower triangular), column by column.
  const m = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    m[j * n + j] = 1 / l[j * n + j];
    for (let i = j + 1; i < n; i++) {
      let s = 0;
      for (let k = j; k < i; k++) s -= l[i * n + k] * m[k * n + j];
      m[i * n + j] = s / l[i * n + i];
    }
  }
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < n; k++) s += m[k * n + i] * m[k * n + j];
      inv[i * n + j] = s;
      inv[j * n + i] = s;
    }
  }
  return inv;
}

/** log det A = 2 Σ log L_ii from the Cholesky factor L of A. */
export function choleskyLogDet(l: Float64Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.log(l[i * n + i]);
  return 2 * s;
}
