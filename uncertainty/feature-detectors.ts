/**
 * Feature-space OOD detectors, every one a {@link Detector} (score higher = more OOD). Fits run
 * once on the host in float64 (class statistics, covariances, eigenvectors, a logistic
 * regression); scores run on the device with the library's ops, batched over rows (no loop over
 * samples or classes). Formulas and sign conventions: docs/methods.md, "Feature-space detectors".
 *
 * | detector | score (higher = more OOD) | paper |
 * |---|---|---|
 * | `FeatureNormDetector` | −‖f(x)‖₂ (or +‖f(x)‖₂) | Yu et al. 2023 (feature norm) |
 * | `KnnDetector` | k-th smallest ‖z − z_i‖₂, z = f/‖f‖ | Sun et al. 2022 (deep k-NN) |
 * | `GmmDetector` | −log Σ_c π_c 𝒩(f; μ_c, Σ_c) | class-conditional Gaussian mixture (as OpenOOD's GMM baseline) |
 * | `ReActEnergyDetector` | −T·logsumexp(head(min(f, c))/T) | Sun, Guo & Li 2021 (ReAct) + Liu et al. 2020 (energy) |
 * | `VimDetector` | α‖(f − o)ᵀR‖ − logsumexp(z) | Wang et al. 2022 (ViM) |
 * | `MultiLayerMahalanobisDetector` | b + Σ_l w_l · ŝ_l(x̃_l) | Lee et al. 2018 (feature ensemble + input pre-processing) |
 */
import {
  ArgumentError, argmax, composite, concat, detach, fmtShape, fromHost, gradients, keep, logsumexp, matmul, max, maximum, mean, minimum,
  noGrad, oneHot, reshape, ShapeError, sign, sqrt, square, sub, sum, Tensor, tidy, withGrad, flatten,
} from '../engine/index.js';
import { type Detector, type DetectorInput, type FitData, type ModelLike, asModelFn, forEachBatch } from './detector.js';
import { NotFittedError } from './errors.js';
import { classIndexLabels } from './host.js';
import { choleskyWithJitter, MahalanobisDetector } from './mahalanobis.js';
import { choleskySolve, logisticRegression, percentile, symmetricEigen } from './linalg-host.js';

/** Options shared by the feature-space detectors. */
export interface FeatureDetectorOptions {
  /** The feature extractor f(x) → [B, D] (e.g. `(x) => net.penultimate(x)`). Default: the rows of x ARE the features. */
  features?: ModelLike;
  /** Row label in `evaluateDetectors`. */
  name?: string;
  /** Rows per batch in `fit` when `data.x` is one tensor (default 256). */
  batchSize?: number;
}

const identity = (x: Tensor): Tensor => x;

/** [B, C, H, W] → global average pool [B, C]; [B, D] as is; any other rank ≥ 2 flattened to [B, ·]. */
export function poolFeatures(t: Tensor): Tensor {
  if (t.rank === 4) return mean(t, [2, 3]);
  if (t.rank === 2) return t;
  if (t.rank < 2) throw new ShapeError(`poolFeatures: expected features [B, D] or maps [B, C, H, W], got ${fmtShape(t.shape)}`);
  return flatten(t, 1);
}

/** Collects f(x) [B, D] over `input` into a float64 host matrix. */
export async function collectFeatures(what: string, f: (x: Tensor) => Tensor, input: DetectorInput, batchSize = 256): Promise<{ data: Float64Array; n: number; d: number }> {
  const parts: ArrayLike<number>[] = [];
  let d = -1;
  let total = 0;
  // forEachBatch disposes the result: an identity extractor must not hand back the caller's batch.
  await forEachBatch(what, input, batchSize, (x) => tidy(() => noGrad(() => {
    const r = f(x);
    return r === x ? x.add(0) : r;
  })), async (feats) => {
    if (feats.rank !== 2) throw new ShapeError(`${what}: the features must be [B, D], got ${fmtShape(feats.shape)}`);
    if (d >= 0 && feats.shape[1] !== d) throw new ShapeError(`${what}: feature batches disagree in D (${d} vs ${feats.shape[1]})`);
    d = feats.shape[1];
    parts.push(await feats.data());
    total += feats.size;
  });
  if (d < 0) throw new ArgumentError(`${what}: no data`);
  const data = new Float64Array(total);
  let o = 0;
  for (const p of parts) {
    data.set(p, o);
    o += p.length;
  }
  return { data, n: total / d, d };
}

async function hostLabels(what: string, data: FitData, n: number): Promise<{ y: Int32Array; c: number }> {
  if (data.labels === undefined) throw new ArgumentError(`${what}: the class-conditional fit needs data.labels`);
  const raw = data.labels instanceof Tensor ? await data.labels.data() : data.labels;
  if (raw.length !== n) throw new ShapeError(`${what}: ${n} feature rows but ${raw.length} labels`);
  let c = data.numClasses;
  if (c === undefined) {
    c = 0;
    for (let i = 0; i < raw.length; i++) c = Math.max(c, raw[i] + 1);
  }
  return { y: classIndexLabels(what, raw, c), c };
}

function checkFitData(what: string, data: FitData): void {
  if (data === null || typeof data !== 'object' || !('x' in data)) throw new ArgumentError(`${what}: expected fit({ x, labels?, numClasses?, batchSize? })`);
}

/** Device copies of host constants, one set per (backend, dtype). */
class DeviceCache {
  private entries: { key: unknown; dtype: string; tensors: Tensor[] }[] = [];
  get(like: Tensor, make: (dtype: 'float32' | 'float64') => Tensor[]): Tensor[] {
    const dtype = like.dtype === 'float64' ? 'float64' : 'float32';
    let e = this.entries.find((v) => v.key === like.backend && v.dtype === dtype);
    if (!e) {
      e = { key: like.backend, dtype, tensors: make(dtype).map((t) => keep(t)) };
      this.entries.push(e);
    }
    return e.tensors;
  }
  dispose(): void {
    for (const e of this.entries) for (const t of e.tensors) t.dispose();
    this.entries = [];
  }
}

function checkFeatures(what: string, f: Tensor, d: number): void {
  if (f.rank !== 2 || f.shape[1] !== d) throw new ShapeError(`${what}: expected features [B, ${d}], got ${fmtShape(f.shape)}`);
}

// ---------------------------------------------------------------------------------------------

export interface FeatureNormOptions extends FeatureDetectorOptions {
  /**
   * 'smallIsOod' (default): score = −‖f‖₂ — in-distribution inputs excite the trained features
   * more (Yu et al. 2023); 'largeIsOod': score = +‖f‖₂. Pick the direction on validation data
   * without OOD samples (e.g. noise), never on the OOD test set.
   */
  direction?: 'smallIsOod' | 'largeIsOod';
}

/**
 * Feature norm: score = −‖f(x)‖₂ (direction 'smallIsOod', default) or +‖f(x)‖₂ ('largeIsOod').
 * After Yu, Lee et al., "Block selection method for using feature norm in out-of-distribution
 * detection" (CVPR 2023), who score by the norm of a block's (pooled) activations. No fit.
 */
export class FeatureNormDetector implements Detector {
  readonly name: string;
  private readonly f: (x: Tensor) => Tensor;
  private readonly sgn: number;
  constructor(opts: FeatureNormOptions = {}) {
    const dir = opts.direction ?? 'smallIsOod';
    if (dir !== 'smallIsOod' && dir !== 'largeIsOod') throw new ArgumentError(`FeatureNormDetector: direction must be 'smallIsOod' or 'largeIsOod', got ${String(dir)}`);
    this.sgn = dir === 'smallIsOod' ? -1 : 1;
    this.name = opts.name ?? (dir === 'smallIsOod' ? 'feature norm (−‖f‖)' : 'feature norm (+‖f‖)');
    this.f = opts.features ? asModelFn(opts.features) : identity;
  }
  score(x: Tensor): Tensor {
    return composite(() => {
      const f = poolFeatures(this.f(x));
      return sqrt(sum(square(f), -1)).mul(this.sgn);
    });
  }
}

// ---------------------------------------------------------------------------------------------

export interface KnnOptions extends FeatureDetectorOptions {
  /** Which neighbour's distance is the score (default 10; Sun et al. use 50 with 50,000 CIFAR-10 images, α = 100%). */
  k?: number;
}

/**
 * Deep k-nearest-neighbour OOD detection (Sun, Ming, Zhu & Li, ICML 2022, "Out-of-distribution
 * detection with deep nearest neighbors"): features are L2-normalised, z = f/‖f‖₂ (a zero
 * feature vector stays zero), the training bank {z_i} is kept, and
 *   score(x) = ‖z(x) − z_(k)‖₂, the distance to the k-th nearest training feature,
 * higher = more OOD (the paper thresholds the negated distance). On the device:
 * ‖z − z_i‖² = ‖z‖² + ‖z_i‖² − 2 z·z_i from one matmul [B, N], and the k-th largest similarity by
 * k − 1 rounds of "remove the arg-max" (ties removed one at a time, so equal neighbours count
 * separately).
 */
export class KnnDetector implements Detector {
  readonly name: string;
  readonly k: number;
  private readonly f: (x: Tensor) => Tensor;
  private bank: { data: Float32Array; sqNorm: Float32Array; n: number; d: number } | null = null;
  private readonly dev = new DeviceCache();

  constructor(private readonly opts: KnnOptions = {}) {
    this.k = opts.k ?? 10;
    if (!Number.isInteger(this.k) || this.k < 1) throw new ArgumentError(`KnnDetector: k must be a positive integer, got ${opts.k}`);
    this.name = opts.name ?? `kNN (k=${this.k})`;
    this.f = opts.features ? asModelFn(opts.features) : identity;
  }

  get isFitted(): boolean {
    return this.bank !== null;
  }

  async fit(data: FitData): Promise<this> {
    checkFitData('KnnDetector.fit', data);
    const { data: feats, n, d } = await collectFeatures('KnnDetector.fit', (x) => poolFeatures(this.f(x)), data.x, data.batchSize ?? this.opts.batchSize);
    if (n < this.k) throw new ArgumentError(`KnnDetector.fit: k = ${this.k} needs at least ${this.k} training rows, got ${n}`);
    const bank = new Float32Array(n * d);
    const sqNorm = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += feats[i * d + j] ** 2;
      const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
      let q = 0;
      for (let j = 0; j < d; j++) {
        bank[i * d + j] = feats[i * d + j] * inv;
        q += bank[i * d + j] ** 2;
      }
      sqNorm[i] = q;
    }
    this.dev.dispose();
    this.bank = { data: bank, sqNorm, n, d };
    return this;
  }

  score(x: Tensor): Tensor {
    const b = this.bank;
    if (!b) throw new NotFittedError(`KnnDetector '${this.name}': not fitted; call fit({ x }) first`);
    return composite(() => {
      const f = poolFeatures(this.f(x));
      checkFeatures('KnnDetector.score', f, b.d);
      const [bank, bankSq] = this.dev.get(f, (dtype) => [fromHost(b.data, [b.n, b.d], dtype, f.backend), fromHost(b.sqNorm, [1, b.n], dtype, f.backend)]);
      const norm = sqrt(sum(square(f), -1, true));
      const z = f.div(maximum(norm, 1e-30)); // a zero row stays 0 (0 / 1e-30)
      const zSq = sum(square(z), -1, true); // [B, 1]
      let sim = matmul(z, bank, { transposeB: true }).mul(2).sub(bankSq); // 2 z·z_i − ‖z_i‖², largest = nearest
      for (let r = 1; r < this.k; r++) sim = sim.sub(oneHot(argmax(sim, -1), b.n).mul(1e4));
      const best = max(sim, -1, true); // [B, 1]
      return reshape(sqrt(maximum(zSq.sub(best), 0)), [f.shape[0]]);
    });
  }

  dispose(): void {
    this.dev.dispose();
  }
}

// ---------------------------------------------------------------------------------------------

export interface GmmOptions extends FeatureDetectorOptions {
  /** Ridge added to each class covariance, relative to its mean diagonal: Σ_c + r·(tr Σ_c / D)·I (default 1e-3). */
  regularization?: number;
}

/**
 * Class-conditional Gaussian mixture on features (the GMM baseline of OpenOOD's LeNet benchmark,
 * here one full-covariance component per class, i.e. a QDA density):
 *   fit:   π_c = N_c/N, μ_c = class mean, Σ_c = (1/N_c) Σ_{y_i=c} (f_i − μ_c)(f_i − μ_c)ᵀ + r·(tr Σ_c/D)·I
 *   score: s(f) = −log Σ_c π_c 𝒩(f; μ_c, Σ_c)   (the negative log-density; higher = more OOD)
 * with log 𝒩 = −½‖L_c⁻¹(f − μ_c)‖² − Σ_j log (L_c)_jj − (D/2) log 2π, L_c Lᵀ_c = Σ_c (float64
 * Cholesky on the host; the scores on the device in one batched matmul over classes).
 */
export class GmmDetector implements Detector {
  readonly name: string;
  private readonly f: (x: Tensor) => Tensor;
  private st: { d: number; c: number; means: Float64Array; W: Float64Array; logConst: Float64Array } | null = null;
  private readonly dev = new DeviceCache();

  constructor(private readonly opts: GmmOptions = {}) {
    this.name = opts.name ?? 'GMM (class-conditional)';
    this.f = opts.features ? asModelFn(opts.features) : identity;
    const r = opts.regularization ?? 1e-3;
    if (!(r >= 0) || !Number.isFinite(r)) throw new ArgumentError(`GmmDetector: regularization must be a finite number ≥ 0, got ${r}`);
  }

  get isFitted(): boolean {
    return this.st !== null;
  }

  /** Per-class constants log π_c − ½ log det Σ_c − (D/2) log 2π. */
  get logConstants(): Float64Array {
    if (!this.st) throw new NotFittedError(`GmmDetector '${this.name}': not fitted`);
    return this.st.logConst;
  }

  async fit(data: FitData): Promise<this> {
    checkFitData('GmmDetector.fit', data);
    const { data: feats, n, d } = await collectFeatures('GmmDetector.fit', (x) => poolFeatures(this.f(x)), data.x, data.batchSize ?? this.opts.batchSize);
    const { y, c } = await hostLabels('GmmDetector.fit', data, n);
    return this.fitHost(feats, d, y, c);
  }

  /** Fits from host features [N·D] (row-major), labels [N] and the number of classes. */
  fitHost(feats: ArrayLike<number>, d: number, labels: ArrayLike<number>, c: number): this {
    const n = feats.length / d;
    const y = classIndexLabels('GmmDetector.fit', labels, c);
    if (y.length !== n) throw new ShapeError(`GmmDetector.fit: ${n} feature rows but ${y.length} labels`);
    const r = this.opts.regularization ?? 1e-3;
    const counts = new Float64Array(c);
    const means = new Float64Array(c * d);
    for (let i = 0; i < n; i++) {
      counts[y[i]]++;
      for (let j = 0; j < d; j++) means[y[i] * d + j] += feats[i * d + j];
    }
    for (let k = 0; k < c; k++) {
      if (counts[k] === 0) throw new ArgumentError(`GmmDetector.fit: class ${k} has no training samples; every class in [0, ${c}) needs at least one`);
      for (let j = 0; j < d; j++) means[k * d + j] /= counts[k];
    }
    const covs = Array.from({ length: c }, () => new Float64Array(d * d));
    const diff = new Float64Array(d);
    for (let i = 0; i < n; i++) {
      const k = y[i];
      const cov = covs[k];
      for (let j = 0; j < d; j++) diff[j] = feats[i * d + j] - means[k * d + j];
      for (let a = 0; a < d; a++) for (let b = 0; b <= a; b++) cov[a * d + b] += diff[a] * diff[b];
    }
    const W = new Float64Array(c * d * d);
    const logConst = new Float64Array(c);
    for (let k = 0; k < c; k++) {
      const cov = covs[k];
      let tr = 0;
      for (let a = 0; a < d; a++) {
        for (let b = 0; b <= a; b++) {
          cov[a * d + b] /= counts[k];
          cov[b * d + a] = cov[a * d + b];
        }
        tr += cov[a * d + a];
      }
      const ridge = r * (tr > 0 ? tr / d : 1);
      for (let a = 0; a < d; a++) cov[a * d + a] += ridge;
      const { L } = choleskyWithJitter(cov, d);
      let logDet = 0;
      for (let a = 0; a < d; a++) logDet += 2 * Math.log(L[a * d + a]);
      // W_c = L_c⁻¹ (lower triangular), forward substitution per column.
      for (let col = 0; col < d; col++) {
        for (let i = col; i < d; i++) {
          let s = i === col ? 1 : 0;
          for (let m = col; m < i; m++) s -= L[i * d + m] * W[k * d * d + m * d + col];
          W[k * d * d + i * d + col] = s / L[i * d + i];
        }
      }
      logConst[k] = Math.log(counts[k] / n) - 0.5 * logDet - (d / 2) * Math.log(2 * Math.PI);
    }
    this.dev.dispose();
    this.st = { d, c, means, W, logConst };
    return this;
  }

  score(x: Tensor): Tensor {
    const st = this.st;
    if (!st) throw new NotFittedError(`GmmDetector '${this.name}': not fitted; call fit({ x, labels }) first`);
    return composite(() => {
      const f = poolFeatures(this.f(x));
      checkFeatures('GmmDetector.score', f, st.d);
      const b = f.shape[0];
      const [W, mu, lc] = this.dev.get(f, (dtype) => [
        fromHost(st.W, [st.c, st.d, st.d], dtype, f.backend), fromHost(st.means, [st.c, 1, st.d], dtype, f.backend), fromHost(st.logConst, [st.c, 1], dtype, f.backend),
      ]);
      const diff = sub(reshape(f, [1, b, st.d]), mu); // [C, B, D]
      const q = sum(square(matmul(diff, W, { transposeB: true })), -1); // [C, B]
      return logsumexp(q.mul(-0.5).add(lc), 0).neg();
    });
  }

  dispose(): void {
    this.dev.dispose();
  }
}

// ---------------------------------------------------------------------------------------------

export interface ReActOptions extends FeatureDetectorOptions {
  /** The head mapping (clipped) features to logits [B, K] (e.g. the last Linear). Required. */
  head: ModelLike;
  /** Percentile p of the training activations used as the clip c (default 90, the paper's choice). */
  percentile?: number;
  /** A fixed clip c instead of fitting it (then `fit` is not needed). */
  threshold?: number;
  /** Energy temperature T (default 1). */
  temperature?: number;
}

/**
 * ReAct + energy (Sun, Guo & Li, NeurIPS 2021, "ReAct: out-of-distribution detection with
 * rectified activations"): the penultimate activations are clipped at c, the p-th percentile
 * (default 90; {@link percentile}, linear interpolation) of all training activations (every unit
 * of every training row), and the energy of the resulting logits is the score:
 *   score(x) = −T · logsumexp(head(min(f(x), c)) / T),   higher = more OOD.
 */
export class ReActEnergyDetector implements Detector {
  readonly name: string;
  private readonly f: (x: Tensor) => Tensor;
  private readonly head: (x: Tensor) => Tensor;
  private clip: number | null;
  readonly temperature: number;
  readonly p: number;

  constructor(private readonly opts: ReActOptions) {
    if (!opts || opts.head === undefined) throw new ArgumentError('ReActEnergyDetector: options.head (features → logits) is required');
    this.f = opts.features ? asModelFn(opts.features) : identity;
    this.head = asModelFn(opts.head);
    this.p = opts.percentile ?? 90;
    if (!(this.p >= 0 && this.p <= 100)) throw new ArgumentError(`ReActEnergyDetector: percentile must be in [0, 100], got ${opts.percentile}`);
    this.temperature = opts.temperature ?? 1;
    if (!(this.temperature > 0) || !Number.isFinite(this.temperature)) throw new ArgumentError(`ReActEnergyDetector: temperature must be a finite positive number, got ${opts.temperature}`);
    this.clip = opts.threshold ?? null;
    if (this.clip !== null && !Number.isFinite(this.clip)) throw new ArgumentError(`ReActEnergyDetector: threshold must be finite, got ${this.clip}`);
    this.name = opts.name ?? `ReAct+energy (p=${this.p})`;
  }

  /** The clip c (after `fit`, or the given threshold). */
  get threshold(): number {
    if (this.clip === null) throw new NotFittedError(`ReActEnergyDetector '${this.name}': not fitted; call fit({ x }) or pass a threshold`);
    return this.clip;
  }

  async fit(data: FitData): Promise<this> {
    checkFitData('ReActEnergyDetector.fit', data);
    const { data: feats } = await collectFeatures('ReActEnergyDetector.fit', (x) => flatten(this.f(x), 1), data.x, data.batchSize ?? this.opts.batchSize);
    this.clip = percentile(feats, this.p);
    return this;
  }

  score(x: Tensor): Tensor {
    const c = this.threshold;
    const T = this.temperature;
    return composite(() => {
      const z = this.head(minimum(this.f(x), c));
      if (z.rank !== 2) throw new ShapeError(`ReActEnergyDetector.score: the head must return logits [B, K], got ${fmtShape(z.shape)}`);
      return logsumexp(z.div(T), -1).mul(-T);
    });
  }
}

// ---------------------------------------------------------------------------------------------

export interface VimOptions extends FeatureDetectorOptions {
  /** The last layer's weight W [K, D] (PyTorch Linear layout) and bias b [K]: logits z = W f + b. */
  weight: Tensor | ArrayLike<number>;
  bias: Tensor | ArrayLike<number>;
  /** Dimension of the principal subspace P (default: ⌈D/2⌉; must be < D). */
  principalDim?: number;
}

/**
 * ViM, "virtual-logit matching" (Wang, Li, Feng & Zhang, CVPR 2022):
 *   o = −(Wᵀ)⁺ b = −Wᵀ(WWᵀ)⁻¹ b   (the origin where every logit is zero),
 *   R = the eigenvectors of (1/N) Σ_i (f_i − o)(f_i − o)ᵀ beyond the `principalDim` largest,
 *   α = Σ_i max_k z_ik / Σ_i ‖(f_i − o)ᵀR‖   (over the training set),
 *   virtual logit ℓ₀(x) = α ‖(f − o)ᵀR‖,
 *   score(x) = ℓ₀ − logsumexp(z)   (higher = more OOD).
 * The paper's score is the softmax probability of the virtual logit, exp(ℓ₀)/(exp(ℓ₀) + Σ_k exp z_k)
 * = σ(ℓ₀ − logsumexp z); we return its logit ℓ₀ − logsumexp z, the same ranking without the
 * float32 saturation of σ near 1.
 */
export class VimDetector implements Detector {
  readonly name: string;
  private readonly f: (x: Tensor) => Tensor;
  private st: { d: number; k: number; r: number; origin: Float64Array; R: Float64Array; alpha: number; W: Float64Array; b: Float64Array } | null = null;
  private readonly dev = new DeviceCache();

  constructor(private readonly opts: VimOptions) {
    if (!opts || opts.weight === undefined || opts.bias === undefined) throw new ArgumentError('VimDetector: options.weight [K, D] and options.bias [K] are required');
    this.f = opts.features ? asModelFn(opts.features) : identity;
    this.name = opts.name ?? 'ViM';
  }

  get isFitted(): boolean {
    return this.st !== null;
  }

  /** α, the origin o and the residual basis R [D·(D − dim)] after fit. */
  get fitted(): { alpha: number; origin: Float64Array; residualBasis: Float64Array; principalDim: number } {
    if (!this.st) throw new NotFittedError(`VimDetector '${this.name}': not fitted`);
    return { alpha: this.st.alpha, origin: this.st.origin, residualBasis: this.st.R, principalDim: this.st.d - this.st.r };
  }

  async fit(data: FitData): Promise<this> {
    checkFitData('VimDetector.fit', data);
    const { data: feats, d } = await collectFeatures('VimDetector.fit', (x) => poolFeatures(this.f(x)), data.x, data.batchSize ?? this.opts.batchSize);
    const W = this.opts.weight instanceof Tensor ? await this.opts.weight.data() : this.opts.weight;
    const b = this.opts.bias instanceof Tensor ? await this.opts.bias.data() : this.opts.bias;
    return this.fitHost(feats, d, W, b);
  }

  /** Fits from host features [N·D], weight [K·D] and bias [K]. */
  fitHost(feats: ArrayLike<number>, d: number, weight: ArrayLike<number>, bias: ArrayLike<number>): this {
    const k = bias.length;
    if (weight.length !== k * d) throw new ShapeError(`VimDetector.fit: weight has ${weight.length} values, expected [K, D] = [${k}, ${d}] for bias [${k}] and features of dimension ${d}`);
    const dim = this.opts.principalDim ?? Math.ceil(d / 2);
    if (!Number.isInteger(dim) || dim < 1 || dim >= d) throw new ArgumentError(`VimDetector: principalDim must be an integer in [1, ${d - 1}] for ${d}-d features, got ${dim}`);
    const n = feats.length / d;
    // origin o = −Wᵀ (W Wᵀ)⁻¹ b
    const G = new Float64Array(k * k);
    for (let a = 0; a < k; a++) for (let c = 0; c < k; c++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += weight[a * d + j] * weight[c * d + j];
      G[a * k + c] = s;
    }
    const t = choleskySolve(G, bias, k);
    const origin = new Float64Array(d);
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let a = 0; a < k; a++) s += weight[a * d + j] * t[a];
      origin[j] = -s;
    }
    const C = new Float64Array(d * d);
    const v = new Float64Array(d);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < d; j++) v[j] = feats[i * d + j] - origin[j];
      for (let a = 0; a < d; a++) for (let c = 0; c <= a; c++) C[a * d + c] += v[a] * v[c];
    }
    for (let a = 0; a < d; a++) for (let c = 0; c <= a; c++) {
      C[a * d + c] /= n;
      C[c * d + a] = C[a * d + c];
    }
    const { vectors } = symmetricEigen(C, d);
    const r = d - dim;
    const R = new Float64Array(d * r);
    for (let i = 0; i < d; i++) for (let j = 0; j < r; j++) R[i * r + j] = vectors[i * d + dim + j];
    let sumMax = 0;
    let sumRes = 0;
    for (let i = 0; i < n; i++) {
      let m = -Infinity;
      for (let a = 0; a < k; a++) {
        let z = bias[a];
        for (let j = 0; j < d; j++) z += weight[a * d + j] * feats[i * d + j];
        m = Math.max(m, z);
      }
      sumMax += m;
      let q = 0;
      for (let j2 = 0; j2 < r; j2++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += (feats[i * d + j] - origin[j]) * R[j * r + j2];
        q += s * s;
      }
      sumRes += Math.sqrt(q);
    }
    if (!(sumRes > 0)) throw new ArgumentError('VimDetector.fit: the training features have no residual outside the principal subspace (lower principalDim)');
    this.dev.dispose();
    this.st = { d, k, r, origin, R, alpha: sumMax / sumRes, W: Float64Array.from(weight), b: Float64Array.from(bias) };
    return this;
  }

  score(x: Tensor): Tensor {
    const st = this.st;
    if (!st) throw new NotFittedError(`VimDetector '${this.name}': not fitted; call fit({ x }) first`);
    return composite(() => {
      const f = poolFeatures(this.f(x));
      checkFeatures('VimDetector.score', f, st.d);
      const [W, b, o, R] = this.dev.get(f, (dtype) => [
        fromHost(st.W, [st.k, st.d], dtype, f.backend), fromHost(st.b, [st.k], dtype, f.backend),
        fromHost(st.origin, [st.d], dtype, f.backend), fromHost(st.R, [st.d, st.r], dtype, f.backend),
      ]);
      const z = matmul(f, W, { transposeB: true }).add(b);
      const res = sqrt(sum(square(matmul(f.sub(o), R)), -1));
      return res.mul(st.alpha).sub(logsumexp(z, -1));
    });
  }

  dispose(): void {
    this.dev.dispose();
  }
}

// ---------------------------------------------------------------------------------------------

export interface MultiLayerMahalanobisOptions {
  /** x → the features of every block, e.g. `[conv1 maps, conv2 maps, penultimate]`; maps [B, C, H, W] are global-average-pooled. */
  layers: (x: Tensor) => Tensor[];
  /** Input pre-processing magnitude ε (default 0: none). */
  epsilon?: number;
  /** L2 penalty of the combining logistic regression (default 1e-3). */
  l2?: number;
  name?: string;
  batchSize?: number;
}

/** Validation data for the combination: in-distribution rows (label 0) and pseudo-OOD rows (label 1). */
export interface CombinationData {
  inDist: DetectorInput;
  /** NO real OOD data: adversarial (FGSM) or noise-perturbed versions of in-distribution validation inputs. */
  outDist: DetectorInput;
  batchSize?: number;
}

/**
 * Mahalanobis with feature ensemble and input pre-processing (Lee, Lee, Lee & Shin, NeurIPS 2018,
 * "A simple unified framework for detecting out-of-distribution samples and adversarial attacks"):
 * - fit: per layer l, class means μ_{l,c} and one tied covariance Σ_l of the (pooled) features
 *   (exactly {@link MahalanobisDetector}, one per layer).
 * - per-layer score with pre-processing: M_l(x) = min_c (f_l − μ_{l,c})ᵀ Σ_l⁻¹ (f_l − μ_{l,c});
 *   x̃_l = x − ε · sign(∇ₓ M_l(x)) (a step that brings x closer to its nearest class), s_l = M_l(x̃_l).
 * - combination: score = b + Σ_l w_l · (s_l − m_l)/σ_l, with (w, b) a logistic regression fitted by
 *   {@link fitCombination} on validation rows WITHOUT real OOD data (in-distribution label 0,
 *   adversarial / noisy versions label 1: the paper's "validation on adversarial samples" variant),
 *   m_l, σ_l the mean and standard deviation of s_l over those rows. Higher = more OOD (the paper's
 *   confidence is the negated distance). Before `fitCombination` the weights are w_l = 1/D_l on the
 *   raw distances (m = 0, σ = 1, b = 0): every layer counts by its distance per dimension.
 */
export class MultiLayerMahalanobisDetector implements Detector {
  readonly name: string;
  readonly epsilon: number;
  private perLayer: MahalanobisDetector[] = [];
  private dims: number[] = [];
  private comb: { w: Float64Array; b: number; m: Float64Array; s: Float64Array } | null = null;

  constructor(private readonly opts: MultiLayerMahalanobisOptions) {
    if (!opts || typeof opts.layers !== 'function') throw new ArgumentError('MultiLayerMahalanobisDetector: options.layers (x → Tensor[]) is required');
    this.epsilon = opts.epsilon ?? 0;
    if (!(this.epsilon >= 0) || !Number.isFinite(this.epsilon)) throw new ArgumentError(`MultiLayerMahalanobisDetector: epsilon must be a finite number ≥ 0, got ${opts.epsilon}`);
    this.name = opts.name ?? `Mahalanobis multi-layer (ε=${this.epsilon})`;
  }

  get isFitted(): boolean {
    return this.perLayer.length > 0;
  }

  /** The per-layer detectors (after fit). */
  get layerDetectors(): readonly MahalanobisDetector[] {
    return this.perLayer;
  }

  /** The combination { weights, bias, means, stds } in use. */
  get combination(): { weights: Float64Array; bias: number; means: Float64Array; stds: Float64Array } {
    const c = this.comb;
    if (!c) throw new NotFittedError(`MultiLayerMahalanobisDetector '${this.name}': not fitted`);
    return { weights: c.w, bias: c.b, means: c.m, stds: c.s };
  }

  private pooled(x: Tensor): Tensor[] {
    const ls = this.opts.layers(x);
    if (!Array.isArray(ls) || ls.length === 0) throw new ArgumentError('MultiLayerMahalanobisDetector: layers(x) must return a non-empty array of tensors');
    return ls.map(poolFeatures);
  }

  async fit(data: FitData): Promise<this> {
    checkFitData('MultiLayerMahalanobisDetector.fit', data);
    let dims: number[] = [];
    const { data: feats, n, d } = await collectFeatures('MultiLayerMahalanobisDetector.fit', (x) => {
      const p = this.pooled(x);
      dims = p.map((t) => t.shape[1]);
      return concat(p, 1);
    }, data.x, data.batchSize ?? this.opts.batchSize);
    const { y, c } = await hostLabels('MultiLayerMahalanobisDetector.fit', data, n);
    for (const det of this.perLayer) det.dispose();
    this.perLayer = [];
    let off = 0;
    for (const dl of dims) {
      const sub = new Float64Array(n * dl);
      for (let i = 0; i < n; i++) for (let j = 0; j < dl; j++) sub[i * dl + j] = feats[i * d + off + j];
      this.perLayer.push(new MahalanobisDetector().fitHost(sub, dl, y, c));
      off += dl;
    }
    this.dims = dims;
    this.comb = { w: Float64Array.from(dims, (v) => 1 / v), b: 0, m: new Float64Array(dims.length), s: new Float64Array(dims.length).fill(1) };
    return this;
  }

  /**
   * A detector with another pre-processing ε sharing this one's fitted layer statistics (no refit)
   * and starting from its current combination; fit its combination anew for the new ε.
   */
  withEpsilon(epsilon: number): MultiLayerMahalanobisDetector {
    const d = new MultiLayerMahalanobisDetector({ ...this.opts, epsilon, name: this.opts.name });
    d.perLayer = this.perLayer;
    d.dims = this.dims;
    d.comb = this.comb && { w: this.comb.w.slice(), b: this.comb.b, m: this.comb.m.slice(), s: this.comb.s.slice() };
    return d;
  }

  /** The per-layer (pre-processed) distances s_l, [B, L]. */
  layerScores(x: Tensor): Tensor {
    if (!this.isFitted) throw new NotFittedError(`MultiLayerMahalanobisDetector '${this.name}': not fitted; call fit({ x, labels }) first`);
    const eps = this.epsilon;
    return tidy(() => {
      const cols: Tensor[] = [];
      for (let l = 0; l < this.perLayer.length; l++) {
        const det = this.perLayer[l];
        let xt = x;
        if (eps > 0) {
          const xin = detach(x).requireGrad();
          const g = withGrad(() => gradients(sum(det.score(this.pooled(xin)[l])), [xin])[0]);
          xt = noGrad(() => x.sub(sign(g).mul(eps)));
        }
        cols.push(noGrad(() => reshape(det.score(this.pooled(xt)[l]), [x.shape[0], 1])));
      }
      return concat(cols, 1);
    });
  }

  score(x: Tensor): Tensor {
    const c = this.comb;
    if (!c) throw new NotFittedError(`MultiLayerMahalanobisDetector '${this.name}': not fitted; call fit({ x, labels }) first`);
    const L = this.dims.length;
    return tidy(() => {
      const s = this.layerScores(x);
      const be = s.backend;
      const w = fromHost(Float64Array.from(c.w, (v, l) => v / c.s[l]), [L, 1], s.dtype, be);
      const shift = c.b - c.w.reduce((a, v, l) => a + (v * c.m[l]) / c.s[l], 0);
      return reshape(matmul(s, w), [x.shape[0]]).add(shift);
    });
  }

  /**
   * Fits the combining logistic regression on per-layer scores of validation rows: `inDist` label 0,
   * `outDist` label 1 (pseudo-OOD made from in-distribution data, see {@link CombinationData}).
   * Scores are standardised by their mean / std over all these rows first.
   */
  async fitCombination(data: CombinationData): Promise<this> {
    if (!this.isFitted) throw new NotFittedError(`MultiLayerMahalanobisDetector '${this.name}': call fit({ x, labels }) before fitCombination`);
    const L = this.dims.length;
    const bs = data.batchSize ?? this.opts.batchSize ?? 256;
    const collect = async (input: DetectorInput) => {
      const parts: Float64Array[] = [];
      await forEachBatch(`${this.name}: fitCombination`, input, bs, (x) => this.layerScores(x), async (s) => {
        parts.push(Float64Array.from(await s.data()));
      });
      return parts;
    };
    const a = await collect(data.inDist);
    const b = await collect(data.outDist);
    const nA = a.reduce((t, p) => t + p.length / L, 0);
    const nB = b.reduce((t, p) => t + p.length / L, 0);
    if (nA === 0 || nB === 0) throw new ArgumentError(`${this.name}: fitCombination needs rows in both inDist and outDist`);
    const X = new Float64Array((nA + nB) * L);
    let o = 0;
    for (const p of [...a, ...b]) {
      X.set(p, o);
      o += p.length;
    }
    const y = new Float64Array(nA + nB).fill(1, nA);
    const m = new Float64Array(L);
    const s = new Float64Array(L);
    const n = nA + nB;
    for (let i = 0; i < n; i++) for (let l = 0; l < L; l++) m[l] += X[i * L + l] / n;
    for (let i = 0; i < n; i++) for (let l = 0; l < L; l++) s[l] += (X[i * L + l] - m[l]) ** 2 / n;
    for (let l = 0; l < L; l++) s[l] = Math.sqrt(s[l]) || 1;
    for (let i = 0; i < n; i++) for (let l = 0; l < L; l++) X[i * L + l] = (X[i * L + l] - m[l]) / s[l];
    const { weights, bias } = logisticRegression(X, y, L, { l2: this.opts.l2 ?? 1e-3 });
    this.comb = { w: weights, b: bias, m, s };
    return this;
  }

  dispose(): void {
    for (const d of this.perLayer) d.dispose();
  }
}
