/**
 * Mahalanobis OOD detector (Lee et al. 2018, "A simple unified framework for detecting
 * out-of-distribution samples and adversarial attacks"), the feature-space part without input
 * preprocessing or layer ensembles:
 *
 *   fit:   μ_c = mean of the training features of class c;
 *          Σ = (1/N) Σ_i (f_i − μ_{y_i})(f_i − μ_{y_i})ᵀ   (one shared, "tied" covariance, MLE)
 *   score: s(f) = min_c (f − μ_c)ᵀ Σ⁻¹ (f − μ_c)           (higher = more OOD)
 *
 * (The paper's confidence is the negated minimum distance, −s; we return s, per the library's
 * higher = more OOD rule.) Σ⁻¹ is never formed: fit computes a Cholesky factor Σ + λI = L Lᵀ in
 * float64 and the whitening matrix W = L⁻¹, so (f − μ)ᵀ(Σ+λI)⁻¹(f − μ) = ‖W (f − μ)‖². The
 * jitter λ starts at 0; when a pivot is not clearly positive (≤ 1e-12 · mean diagonal, e.g. a
 * duplicated or constant feature makes Σ singular) the factorisation is retried with
 * λ = 1e-10 · mean diagonal, growing ×10 per retry. The λ used is reported (`jitter`).
 */
import { ArgumentError, NotFittedError, ShapeError, fmtShape } from '../engine/errors.js';
import type { Backend } from '../engine/backend.js';
import { Tensor, fromHost } from '../engine/tensor.js';
import { keep } from '../engine/memory.js';
import { composite, matmul, min, reshape, square, sub, sum } from '../engine/ops/index.js';

export interface MahalanobisOptions {
  /** Relative pivot threshold for accepting a Cholesky factor (default 1e-12 · mean diagonal). */
  pivotTol?: number;
  /** First non-zero jitter, relative to the mean diagonal (default 1e-10). */
  initialJitter?: number;
  /** Maximum number of jitter retries (default 12). */
  maxRetries?: number;
}

/** A feature matrix [N, D] as a tensor, or rows as arrays. */
export type FeatureInput = Tensor | readonly ArrayLike<number>[];

/**
 * Cholesky factor of a symmetric positive semi-definite d×d matrix `a` (row-major), adding
 * diagonal jitter until every pivot exceeds `pivotTol · mean(diag)`. Returns the lower factor L
 * (row-major, upper part zero) and the jitter λ used (absolute).
 */
export function choleskyWithJitter(a: Float64Array, d: number, opts: MahalanobisOptions = {}): { L: Float64Array; jitter: number } {
  let meanDiag = 0;
  for (let i = 0; i < d; i++) meanDiag += a[i * d + i];
  meanDiag = meanDiag / d;
  const scale = meanDiag > 0 && Number.isFinite(meanDiag) ? meanDiag : 1;
  const pivotTol = (opts.pivotTol ?? 1e-12) * scale;
  const maxRetries = opts.maxRetries ?? 12;
  let jitter = 0;
  for (let attempt = 0; attempt <= maxRetries; attempt++) {
    const L = tryCholesky(a, d, jitter, pivotTol);
    if (L) return { L, jitter };
    jitter = jitter === 0 ? (opts.initialJitter ?? 1e-10) * scale : jitter * 10;
  }
  throw new ArgumentError(`MahalanobisDetector: covariance is not positive definite even with diagonal jitter ${jitter / 10} (mean diagonal ${meanDiag}); check the features for NaN/Inf`);
}

function tryCholesky(a: Float64Array, d: number, jitter: number, pivotTol: number): Float64Array | null {
  const L = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    let s = a[j * d + j] + jitter;
    for (let k = 0; k < j; k++) s -= L[j * d + k] * L[j * d + k];
    if (!(s > pivotTol)) return null;
    const ljj = Math.sqrt(s);
    L[j * d + j] = ljj;
    for (let i = j + 1; i < d; i++) {
      let t = a[i * d + j];
      for (let k = 0; k < j; k++) t -= L[i * d + k] * L[j * d + k];
      L[i * d + j] = t / ljj;
    }
  }
  return L;
}

/** Inverse of a lower-triangular matrix (row-major), by forward substitution column by column. */
function invertLower(L: Float64Array, d: number): Float64Array {
  const W = new Float64Array(d * d);
  for (let c = 0; c < d; c++) {
    for (let i = c; i < d; i++) {
      let s = i === c ? 1 : 0;
      for (let k = c; k < i; k++) s -= L[i * d + k] * W[k * d + c];
      W[i * d + c] = s / L[i * d + i];
    }
  }
  return W;
}

function flatten(name: string, rows: readonly ArrayLike<number>[]): { data: Float64Array; n: number; d: number } {
  if (rows.length === 0) throw new ArgumentError(`${name}: no feature rows`);
  const d = rows[0].length;
  const data = new Float64Array(rows.length * d);
  for (let i = 0; i < rows.length; i++) {
    if (rows[i].length !== d) throw new ShapeError(`${name}: row ${i} has ${rows[i].length} features, row 0 has ${d}`);
    for (let j = 0; j < d; j++) data[i * d + j] = rows[i][j];
  }
  return { data, n: rows.length, d };
}

interface Fitted {
  d: number;
  c: number;
  /** Class means [C, D]. */
  means: Float64Array;
  /** Tied covariance [D, D] (without jitter). */
  cov: Float64Array;
  /** Whitening matrix W = L⁻¹ [D, D], lower triangular. */
  W: Float64Array;
  jitter: number;
}

/**
 * Mahalanobis OOD detector; see the module comment for the formulas.
 *
 * ```ts
 * const det = await new MahalanobisDetector().fit(trainFeatures, trainLabels, 10);
 * const s = det.score(testFeatures); // Tensor [B], higher = more OOD
 * ```
 */
export class MahalanobisDetector {
  private state: Fitted | null = null;
  private onDevice = new Map<Backend, { W: Tensor; means: Tensor }>();

  constructor(private readonly opts: MahalanobisOptions = {}) {}

  private get fitted(): Fitted {
    if (!this.state) throw new NotFittedError('MahalanobisDetector: call fit(features, labels, numClasses) first');
    return this.state;
  }

  /** Class means [C·D] (row-major), float64. */
  get classMeans(): Float64Array {
    return this.fitted.means;
  }

  /** The tied covariance [D·D] (row-major), float64, without jitter. */
  get covariance(): Float64Array {
    return this.fitted.cov;
  }

  /** The diagonal jitter λ added before the Cholesky factorisation (0 when none was needed). */
  get jitter(): number {
    return this.fitted.jitter;
  }

  get numFeatures(): number {
    return this.fitted.d;
  }

  /** Fits from a [N, D] tensor or rows, labels [N] (class indices) and the number of classes. */
  async fit(features: FeatureInput, labels: Tensor | ArrayLike<number>, numClasses: number): Promise<this> {
    let data: ArrayLike<number>;
    let d: number;
    if (features instanceof Tensor) {
      if (features.rank !== 2) throw new ShapeError(`MahalanobisDetector.fit: expected features [N, D], got ${fmtShape(features.shape)}`);
      d = features.shape[1];
      data = await features.data();
    } else {
      const f = flatten('MahalanobisDetector.fit', features);
      data = f.data;
      d = f.d;
    }
    const y = labels instanceof Tensor ? await labels.data() : labels;
    return this.fitHost(data, d, y, numClasses);
  }

  /** Fits from a flat row-major host array [N·D] with `dim` = D. Synchronous; float64 throughout. */
  fitHost(features: ArrayLike<number>, dim: number, labels: ArrayLike<number>, numClasses: number): this {
    const d = dim;
    if (!Number.isInteger(d) || d < 1) throw new ArgumentError(`MahalanobisDetector.fit: feature dimension must be a positive integer, got ${d}`);
    if (features.length % d !== 0) throw new ShapeError(`MahalanobisDetector.fit: ${features.length} values are not a whole number of rows of ${d} features`);
    const n = features.length / d;
    if (labels.length !== n) throw new ShapeError(`MahalanobisDetector.fit: ${n} feature rows but ${labels.length} labels`);
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new ArgumentError(`MahalanobisDetector.fit: numClasses must be a positive integer, got ${numClasses}`);
    const c = numClasses;
    const means = new Float64Array(c * d);
    const counts = new Float64Array(c);
    for (let i = 0; i < n; i++) {
      const y = labels[i];
      if (!Number.isInteger(y) || y < 0 || y >= c) throw new ArgumentError(`MahalanobisDetector.fit: labels[${i}] = ${y} is not a class index in [0, ${c})`);
      counts[y]++;
      for (let j = 0; j < d; j++) {
        const v = features[i * d + j];
        if (!Number.isFinite(v)) throw new ArgumentError(`MahalanobisDetector.fit: feature [${i}, ${j}] is ${v}`);
        means[y * d + j] += v;
      }
    }
    for (let k = 0; k < c; k++) {
      if (counts[k] === 0) throw new ArgumentError(`MahalanobisDetector.fit: class ${k} has no training samples; every class in [0, ${c}) needs at least one`);
      for (let j = 0; j < d; j++) means[k * d + j] /= counts[k];
    }
    const cov = new Float64Array(d * d);
    const diff = new Float64Array(d);
    for (let i = 0; i < n; i++) {
      const y = labels[i];
      for (let j = 0; j < d; j++) diff[j] = features[i * d + j] - means[y * d + j];
      for (let a = 0; a < d; a++) {
        const da = diff[a];
        if (da === 0) continue;
        for (let b = 0; b <= a; b++) cov[a * d + b] += da * diff[b];
      }
    }
    for (let a = 0; a < d; a++) {
      for (let b = 0; b <= a; b++) {
        cov[a * d + b] /= n;
        cov[b * d + a] = cov[a * d + b];
      }
    }
    const { L, jitter } = choleskyWithJitter(cov, d, this.opts);
    this.dispose();
    this.state = { d, c, means, cov, W: invertLower(L, d), jitter };
    return this;
  }

  /**
   * Scores a [B, D] feature tensor on its own backend: s = min_c ‖W (f − μ_c)‖² (float32 on
   * the device; the centring happens before whitening, so large common offsets do not cancel).
   * Higher = more OOD. Returns a Tensor [B]. With a (near-)singular covariance W has entries
   * of size 1/√λ, and float32 cancellation along the null directions costs accuracy (about
   * 1e-3 relative in the duplicated-feature test); use {@link scoreHost} for float64.
   */
  score(features: Tensor): Tensor {
    const st = this.fitted;
    if (features.rank !== 2 || features.shape[1] !== st.d) {
      throw new ShapeError(`MahalanobisDetector.score: expected features [B, ${st.d}], got ${fmtShape(features.shape)}`);
    }
    const be = features.backend;
    let dev = this.onDevice.get(be);
    if (!dev) {
      dev = {
        W: keep(fromHost(st.W, [st.d, st.d], 'float32', be)),
        means: keep(fromHost(st.means, [st.c, st.d], 'float32', be)),
      };
      this.onDevice.set(be, dev);
    }
    const { W, means } = dev;
    const b = features.shape[0];
    return composite(() => {
      const diff = sub(reshape(features, [b, 1, st.d]), means); // [B, C, D]
      const y = matmul(reshape(diff, [b * st.c, st.d]), W, { transposeB: true }); // rows W·(f − μ_c)
      return min(reshape(sum(square(y), -1), [b, st.c]), -1);
    });
  }

  /**
   * The float64 host reference of {@link score}: features as a flat row-major [B·D] array or
   * as rows. Returns Float64Array [B], higher = more OOD.
   */
  scoreHost(features: ArrayLike<number> | readonly ArrayLike<number>[]): Float64Array {
    const st = this.fitted;
    const d = st.d;
    const isRows = Array.isArray(features) && features.length > 0 && typeof features[0] !== 'number';
    const data = isRows ? flatten('MahalanobisDetector.scoreHost', features as readonly ArrayLike<number>[]).data : (features as ArrayLike<number>);
    if (data.length % d !== 0) throw new ShapeError(`MahalanobisDetector.scoreHost: ${data.length} values are not a whole number of rows of ${d} features`);
    const n = data.length / d;
    const out = new Float64Array(n);
    const diff = new Float64Array(d);
    for (let i = 0; i < n; i++) {
      let best = Infinity;
      for (let k = 0; k < st.c; k++) {
        for (let j = 0; j < d; j++) diff[j] = data[i * d + j] - st.means[k * d + j];
        let dist = 0;
        for (let r = 0; r < d; r++) {
          let s = 0;
          for (let j = 0; j <= r; j++) s += st.W[r * d + j] * diff[j];
          dist += s * s;
        }
        if (dist < best) best = dist;
      }
      out[i] = best;
    }
    return out;
  }

  /** Frees the device copies of the fitted parameters (the host state is kept). */
  dispose(): void {
    for (const { W, means } of this.onDevice.values()) {
      W.dispose();
      means.dispose();
    }
    this.onDevice.clear();
  }
}
