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
 *
 * Relative Mahalanobis (option `relative: true`; Ren, Fort, Liu, Roy, Padhy & Lakshminarayanan
 * 2021, "A simple fix to Mahalanobis distance for improving near-OOD detection"): a background
 * Gaussian N(μ₀, Σ₀) is fitted to ALL training features (μ₀ the global mean, Σ₀ their MLE
 * covariance), and
 *   score: s(f) = min_c [ (f − μ_c)ᵀ Σ⁻¹ (f − μ_c) − (f − μ₀)ᵀ Σ₀⁻¹ (f − μ₀) ]
 *        = min_c MD_c(f) − MD₀(f)                             (higher = more OOD)
 * The background term removes what every class shares: a feature far from all classes only
 * along directions in which the whole training set varies a lot (or close to the global centre,
 * as Fashion-MNIST's small penultimate features of our LeNets are) is no longer mistaken for
 * in-distribution. The paper's RMD confidence is −s.
 */
import {
  ArgumentError, type Backend, composite, fmtShape, fromHost, keep, matmul, min, reshape, ShapeError, square, sub, sum, Tensor,
} from '../engine/index.js';
import { NotFittedError } from './errors.js';
import { type Detector, type FitData, type ModelLike, asModelFn, forEachBatch } from './detector.js';
import { classIndexLabels } from './host.js';

export interface MahalanobisOptions {
  /**
   * The feature extractor f(x) the detector works on (e.g. a network's penultimate layer), used
   * by `score` and by `fit(data: FitData)`. Default: the input rows ARE the features [B, D].
   */
  features?: ModelLike;
  /** Name shown by `evaluateDetectors` (default 'Mahalanobis'). */
  name?: string;
  /** Rows per feature batch in `fit(data)` when `data.x` is one tensor (default 256). */
  batchSize?: number;
  /** Relative pivot threshold for accepting a Cholesky factor (default 1e-12 · mean diagonal). */
  pivotTol?: number;
  /** First non-zero jitter, relative to the mean diagonal (default 1e-10). */
  initialJitter?: number;
  /** Maximum number of jitter retries (default 12). */
  maxRetries?: number;
  /** Relative Mahalanobis (Ren et al. 2021): subtract the distance to one background Gaussian of all training features (default false). */
  relative?: boolean;
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
 * Mahalanobis OOD detector; see the module comment for the formulas. A {@link Detector}: with a
 * `features` extractor it scores inputs x by s(f(x)); without one, the rows are the features.
 *
 * ```ts
 * const det = await new MahalanobisDetector().fit(trainFeatures, trainLabels, 10);
 * const s = det.score(testFeatures); // Tensor [B], higher = more OOD
 * // or over a network's features, through the Detector protocol:
 * const d2 = await new MahalanobisDetector({ features: (x) => net.penultimate(x) }).fit({ x: trainImages, labels: trainLabels });
 * ```
 */
export class MahalanobisDetector implements Detector {
  readonly name: string;
  private state: Fitted | null = null;
  /** Device copies of W and the means, one per (backend, dtype) used so far. */
  private onDevice: { backend: Backend; W: Tensor; means: Tensor }[] = [];
  private readonly featureFn: ((x: Tensor) => Tensor) | null;
  /** The background Gaussian of the relative variant (fitted with every row in one class). */
  private background: MahalanobisDetector | null = null;

  constructor(private readonly opts: MahalanobisOptions = {}) {
    this.name = opts.name ?? (opts.relative ? 'Mahalanobis (relative)' : 'Mahalanobis');
    this.featureFn = opts.features ? asModelFn(opts.features) : null;
  }

  private get fitted(): Fitted {
    if (!this.state) throw new NotFittedError(`MahalanobisDetector${this.opts.name ? ` '${this.opts.name}'` : ''}: not fitted; call fit({ x, labels }) (or fit(features, labels, numClasses)) first`);
    return this.state;
  }

  /** Whether `fit` has run. */
  get isFitted(): boolean {
    return this.state !== null;
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

  /**
   * Fits on in-distribution data (the {@link Detector} form): the features f(x) of `data.x` are
   * computed batch by batch and read back, then the float64 fit runs. `labels` are required;
   * `numClasses` defaults to the largest label + 1.
   */
  async fit(data: FitData): Promise<this>;
  /** Fits from a [N, D] FEATURE tensor or rows, labels [N] (class indices) and the number of classes. */
  async fit(features: FeatureInput, labels: Tensor | ArrayLike<number>, numClasses: number): Promise<this>;
  async fit(first: FeatureInput | FitData, labelsArg?: Tensor | ArrayLike<number>, numClassesArg?: number): Promise<this> {
    if (!(first instanceof Tensor) && !Array.isArray(first)) return this.fitData(first as FitData);
    const features = first as FeatureInput;
    const labels = labelsArg!;
    const numClasses = numClassesArg!;
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

  private async fitData(data: FitData): Promise<this> {
    if (data === null || typeof data !== 'object' || !('x' in data)) throw new ArgumentError('MahalanobisDetector.fit: expected fit({ x, labels, numClasses? }) or fit(features, labels, numClasses)');
    if (data.labels === undefined) throw new ArgumentError('MahalanobisDetector.fit: the class-conditional fit needs data.labels');
    const f = this.featureFn ?? ((x: Tensor) => x);
    const parts: ArrayLike<number>[] = [];
    let d = -1;
    let total = 0;
    await forEachBatch('MahalanobisDetector.fit', data.x, data.batchSize ?? this.opts.batchSize ?? 256, (x) => composite(() => f(x)), async (feats) => {
      if (feats.rank !== 2) throw new ShapeError(`MahalanobisDetector.fit: the features must be [B, D], got ${fmtShape(feats.shape)}`);
      if (d >= 0 && feats.shape[1] !== d) throw new ShapeError(`MahalanobisDetector.fit: feature batches disagree in D (${d} vs ${feats.shape[1]})`);
      d = feats.shape[1];
      parts.push(await feats.data());
      total += feats.size;
    });
    if (d < 0) throw new ArgumentError('MahalanobisDetector.fit: no data');
    const flat = new Float64Array(total);
    let o = 0;
    for (const p of parts) {
      flat.set(p, o);
      o += p.length;
    }
    const y = data.labels instanceof Tensor ? await data.labels.data() : data.labels;
    let k = data.numClasses;
    if (k === undefined) {
      k = 0;
      for (let i = 0; i < y.length; i++) k = Math.max(k, y[i] + 1);
    }
    return this.fitHost(flat, d, y, k);
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
    labels = classIndexLabels('MahalanobisDetector.fit', labels, c);
    const means = new Float64Array(c * d);
    const counts = new Float64Array(c);
    for (let i = 0; i < n; i++) {
      const y = labels[i];
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
    this.background = this.opts.relative
      ? new MahalanobisDetector({ ...this.opts, relative: false, features: undefined }).fitHost(features, d, new Int32Array(n), 1)
      : null;
    return this;
  }

  /**
   * Scores a batch on its own backend: s = min_c ‖W (f − μ_c)‖² with f = features(x) (or x itself
   * when no extractor is set), [B, D]. float32 on the device; a float64 feature tensor (CPU
   * backend) is scored in float64. The centring happens before whitening, so large common offsets
   * do not cancel. Higher = more OOD. Returns a Tensor [B]. With a (near-)singular covariance W
   * has entries of size 1/√λ, and float32 cancellation along the null directions costs accuracy
   * (about 1e-3 relative in the duplicated-feature test); use float64 features or
   * {@link scoreHost} there. Throws NotFittedError before `fit`.
   */
  score(x: Tensor): Tensor {
    const st = this.fitted;
    const f = this.featureFn;
    if (!f) return this.scoreFeatures(x, st);
    return composite(() => this.scoreFeatures(f(x), st));
  }

  private scoreFeatures(features: Tensor, st: Fitted): Tensor {
    if (features.rank !== 2 || features.shape[1] !== st.d) {
      throw new ShapeError(`MahalanobisDetector.score: expected features [B, ${st.d}], got ${fmtShape(features.shape)}`);
    }
    const be = features.backend;
    const dtype = features.dtype === 'float64' ? 'float64' : 'float32';
    let dev = this.onDevice.find((v) => v.backend === be && v.W.dtype === dtype);
    if (!dev) {
      dev = {
        backend: be,
        W: keep(fromHost(st.W, [st.d, st.d], dtype, be)),
        means: keep(fromHost(st.means, [st.c, st.d], dtype, be)),
      };
      this.onDevice.push(dev);
    }
    const { W, means } = dev;
    const b = features.shape[0];
    const bg = this.background;
    return composite(() => {
      const diff = sub(reshape(features, [b, 1, st.d]), means); // [B, C, D]
      const y = matmul(reshape(diff, [b * st.c, st.d]), W, { transposeB: true }); // rows W·(f − μ_c)
      const md = min(reshape(sum(square(y), -1), [b, st.c]), -1);
      return bg ? sub(md, bg.scoreFeatures(features, bg.fitted)) : md;
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
    if (this.background) {
      const bg = this.background.scoreHost(data);
      for (let i = 0; i < n; i++) out[i] -= bg[i];
    }
    return out;
  }

  /** Frees the device copies of the fitted parameters (the host state is kept). */
  dispose(): void {
    for (const { W, means } of this.onDevice) {
      W.dispose();
      means.dispose();
    }
    this.onDevice = [];
    this.background?.dispose();
  }
}
