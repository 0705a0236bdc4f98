/**
 * Generative guards (docs/methods.md, "Generative guards"): rules that refuse to classify an
 * input a generative model of the training data finds implausible.
 *
 * - {@link VaeLossDetector}: score = the per-sample VAE loss (negative ELBO, z = μ) — higher = less
 *   like the training data.
 * - {@link DeltaZDetector}: the robustness of the classifier's decision in the latent space of a
 *   WGAN with an inverter (Zhao, Dua & Singh 2018): δz(x) = min ‖z̃ − I(x)‖ such that
 *   f(G(z̃)) ≠ f(x), found by a batched stochastic search over growing radii; score = −δz
 *   (a SMALL δz — a decision that flips close to the input's latent code — is unreliable).
 * - {@link conditionalClassifier}: a classifier plus a calibrated guard: the prediction, or a
 *   thrown `NotReliableClassification` carrying the prediction and the score.
 */
import {
  ArgumentError, ShapeError, type Tensor, add, argmax, blocksFor, div, fmtShape, full, le, minimum, mul, ne, neg, noGrad, normal,
  sqrt, square, sum, tidy, uniform, where, min as reduceMin,
} from '../engine/index.js';
import { type VAE, vaeLoss } from '../nn/index.js';
import { type Detector, type DetectorInput, type ModelLike, type ScoredBatch, asModelFn, isDetector, scoreAll } from './detector.js';
import { NotFittedError, NotReliableClassification } from './errors.js';
import { type DetectorGuard, type GuardResult, calibrateThreshold, rejectionRate } from './guard.js';

function checkBatch(what: string, x: Tensor, rowShape?: readonly number[]): void {
  const ok = x.rank >= 2 && (!rowShape || (x.rank === rowShape.length + 1 && rowShape.every((d, i) => x.shape[i + 1] === d)));
  if (!ok) throw new ShapeError(`${what}: expected a batch [B, ${rowShape ? rowShape.join(', ') : '...'}], got ${fmtShape(x.shape)}`);
}

function predictionOf(out: Tensor): Tensor {
  return out.dtype === 'int32' && out.rank === 1 ? out : argmax(out, -1);
}

// ---------------------------------------------------------------------------------------------
// VAE loss

/**
 * The VAE-loss guard's score: per-sample negative ELBO, Σ_d BCE(x̂_d, x_d) + KL(q(z|x) ‖ N(0, I)),
 * decoding the posterior mean z = μ (deterministic). Higher = less like the training data.
 * With a `classifier`, `predict` returns its argmax together with the score.
 */
export class VaeLossDetector implements Detector {
  readonly name: string;
  private readonly classifier: ((x: Tensor) => Tensor) | null;

  constructor(readonly vae: VAE, opts: { classifier?: ModelLike; name?: string } = {}) {
    if (!vae || typeof vae.encode !== 'function') throw new ArgumentError('VaeLossDetector: the first argument must be a VAE');
    this.name = opts.name ?? 'VAE loss';
    this.classifier = opts.classifier ? asModelFn(opts.classifier) : null;
  }

  score(x: Tensor): Tensor {
    if (x.rank < 2 || x.size !== x.shape[0] * this.vae.inputDim) {
      throw new ShapeError(`VaeLossDetector.score: expected a batch [B, ...] with ${this.vae.inputDim} features per row, got ${fmtShape(x.shape)}`);
    }
    return tidy(() => noGrad(() => vaeLoss(this.vae.forward(x, { sample: false }), x, { reduction: 'none' })));
  }

  predict(x: Tensor): ScoredBatch {
    if (!this.classifier) throw new ArgumentError(`${this.name}: predict needs options.classifier`);
    const c = this.classifier;
    return tidy(() => noGrad(() => ({ prediction: predictionOf(c(x)), score: this.score(x) })));
  }
}

// ---------------------------------------------------------------------------------------------
// δz: WGAN + inverter

export interface DeltaZOptions {
  /** Candidates per input and radius step (default 16). */
  candidates?: number;
  /** Width Δr of each radius shell (default 0.25). */
  radiusStep?: number;
  /** Number of shells (default 16): radii up to steps·Δr are searched. */
  steps?: number;
  /** Philox seed of the candidate draws (default 0): the search is reproducible. */
  seed?: number;
}

/**
 * The latent-space robustness of a classifier (Zhao, Dua & Singh 2018, their iterative stochastic
 * search): with z = I(x) and y = argmax f(x), for shells t = 0, 1, ..., T − 1 draw K candidates
 * z̃ = z + ρ·u/‖u‖, u ~ N(0, I_d), ρ ~ U(t·Δr, (t + 1)·Δr), and keep the smallest ρ among candidates
 * with argmax f(G(z̃)) ≠ y. δz(x) is the smallest ρ over the first shell that contains a flip
 * (= the running minimum over all shells, as the shells grow), +∞ when no shell up to T·Δr does.
 *
 * Batched: every shell is ONE forward of G and f over [B·K] candidates (no loop over inputs);
 * the loop runs over the T shells. Draws use the Philox stream (seed, offset by shell), so the
 * result depends only on (x, seed, options) — the same rows give the same δz in any batch of
 * the same size.
 */
export class DeltaZDetector implements Detector {
  readonly name: string;
  readonly candidates: number;
  readonly radiusStep: number;
  readonly steps: number;
  readonly seed: number;
  private readonly G: (z: Tensor) => Tensor;
  private readonly I: (x: Tensor) => Tensor;
  private readonly f: (x: Tensor) => Tensor;

  constructor(generator: ModelLike, inverter: ModelLike, classifier: ModelLike, opts: DeltaZOptions & { name?: string } = {}) {
    this.G = asModelFn(generator);
    this.I = asModelFn(inverter);
    this.f = asModelFn(classifier);
    this.candidates = opts.candidates ?? 16;
    this.radiusStep = opts.radiusStep ?? 0.25;
    this.steps = opts.steps ?? 16;
    this.seed = opts.seed ?? 0;
    this.name = opts.name ?? 'WGAN inverter δz';
    for (const [k, v] of [['candidates', this.candidates], ['steps', this.steps]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new ArgumentError(`DeltaZDetector: ${k} must be a positive integer, got ${v}`);
    }
    if (!(this.radiusStep > 0 && Number.isFinite(this.radiusStep))) throw new ArgumentError(`DeltaZDetector: radiusStep must be > 0, got ${this.radiusStep}`);
    if (!Number.isSafeInteger(this.seed) || this.seed < 0) throw new ArgumentError(`DeltaZDetector: seed must be a non-negative integer, got ${this.seed}`);
  }

  /** δz [B] (≥ 0, +∞ where no flip was found within steps·Δr) and the prediction f(x) [B]. */
  deltaZWithPrediction(x: Tensor): { deltaZ: Tensor; prediction: Tensor } {
    checkBatch('DeltaZDetector.deltaZ', x);
    const B = x.shape[0];
    const K = this.candidates;
    return tidy(() => noGrad(() => {
      const y = predictionOf(this.f(x));
      if (y.rank !== 1 || y.shape[0] !== B) throw new ShapeError(`DeltaZDetector: the classifier must give [${B}, K] logits or [${B}] predictions, got ${fmtShape(y.shape)}`);
      const z = this.I(x);
      if (z.rank !== 2 || z.shape[0] !== B) throw new ShapeError(`DeltaZDetector: the inverter must map ${fmtShape(x.shape)} to latents [${B}, d], got ${fmtShape(z.shape)}`);
      const d = z.shape[1];
      const zRows = z.reshape([B, 1, d]);
      const yRows = y.reshape([B, 1]);
      const stride = blocksFor(B * K * d) + blocksFor(B * K);
      const opts = { backend: x.backend, seed: this.seed };
      let best = full([B], Infinity, { backend: x.backend });
      for (let t = 0; t < this.steps; t++) {
        const next = tidy(() => {
          const u = normal([B, K, d], { ...opts, offset: t * stride });
          const dir = div(u, sqrt(sum(square(u), -1, true)));
          const rho = uniform([B, K, 1], { ...opts, offset: t * stride + blocksFor(B * K * d), low: t * this.radiusStep, high: (t + 1) * this.radiusStep });
          const zc = add(zRows, mul(dir, rho)).reshape([B * K, d]);
          const pred = predictionOf(this.f(this.G(zc))).reshape([B, K]);
          const dist = where(ne(pred, yRows), rho.reshape([B, K]), Infinity);
          return minimum(best, reduceMin(dist, 1));
        });
        best.dispose();
        best = next;
      }
      return { deltaZ: best, prediction: y };
    }));
  }

  /** δz [B] (see the class comment). */
  deltaZ(x: Tensor): Tensor {
    const { deltaZ, prediction } = this.deltaZWithPrediction(x);
    prediction.dispose();
    return deltaZ;
  }

  /** −δz [B]: higher = the decision flips closer to the input = less reliable. */
  score(x: Tensor): Tensor {
    return tidy(() => neg(this.deltaZ(x)));
  }

  predict(x: Tensor): ScoredBatch {
    return tidy(() => {
      const { deltaZ, prediction } = this.deltaZWithPrediction(x);
      return { prediction, score: neg(deltaZ) };
    });
  }
}

// ---------------------------------------------------------------------------------------------
// the conditional classifier

/** The batched, non-throwing result of {@link ConditionalClassifier.classifyBatch}. */
export interface ConditionalBatch {
  prediction: Int32Array;
  /** Higher = less reliable (the detector's score). */
  score: Float64Array;
  /** score ≤ threshold (false for NaN). */
  reliable: boolean[];
}

/**
 * A classifier that answers only when its guard accepts the input (the notes' "conditional
 * classifier"): ACCEPT when score ≤ τ, else `NotReliableClassification` (carrying the prediction,
 * the score and τ). τ comes from a calibrated {@link DetectorGuard}, or from {@link calibrate}
 * on held-out in-distribution data; before that, every call throws `NotFittedError`.
 */
export class ConditionalClassifier {
  private tau: number | null;
  private fprRealised: number | null = null;
  private readonly f: (x: Tensor) => Tensor;

  constructor(classifier: ModelLike, readonly detector: Detector, threshold?: number) {
    this.f = asModelFn(classifier);
    if (!isDetector(detector)) throw new ArgumentError('conditionalClassifier: the guard must be a DetectorGuard or a Detector');
    if (threshold !== undefined && (typeof threshold !== 'number' || Number.isNaN(threshold))) {
      throw new ArgumentError(`conditionalClassifier: threshold must be a number, got ${threshold}`);
    }
    this.tau = threshold ?? null;
  }

  /** τ (throws NotFittedError before calibration). */
  get threshold(): number {
    if (this.tau === null) throw new NotFittedError(`conditionalClassifier(${this.detector.name}): not calibrated; call calibrate(heldOut, { fpr }) or pass a calibrated guard`);
    return this.tau;
  }

  /** The realised held-out FPR of the last {@link calibrate} (null when τ was given). */
  get realisedFpr(): number | null {
    return this.fprRealised;
  }

  /** Places τ on held-out in-distribution inputs so that at most a fraction `fpr` is rejected. */
  async calibrate(heldOut: DetectorInput, opts: { fpr: number; batchSize?: number }): Promise<this> {
    if (!opts || !(opts.fpr >= 0 && opts.fpr < 1)) throw new ArgumentError(`conditionalClassifier.calibrate: fpr must be in [0, 1), got ${opts?.fpr}`);
    const s = await scoreAll(this.detector, heldOut, opts.batchSize ?? 256);
    this.tau = calibrateThreshold(s, opts.fpr);
    this.fprRealised = rejectionRate(s, this.tau);
    return this;
  }

  /** Tensors for a batch [B, ...]: predictions int32 [B], scores [B], reliable bool [B]. Nothing read back. */
  apply(x: Tensor): { prediction: Tensor; score: Tensor; reliable: Tensor } {
    const tau = this.threshold;
    checkBatch('conditionalClassifier.apply', x);
    return tidy(() => noGrad(() => {
      const prediction = predictionOf(this.f(x));
      const score = this.detector.score(x);
      const B = x.shape[0];
      if (prediction.rank !== 1 || prediction.shape[0] !== B) throw new ShapeError(`conditionalClassifier.apply: the classifier must give [${B}, K] logits or [${B}] predictions, got ${fmtShape(prediction.shape)}`);
      if (score.rank !== 1 || score.shape[0] !== B) throw new ShapeError(`conditionalClassifier.apply: the score must be [${B}], got ${fmtShape(score.shape)}`);
      return { prediction, score, reliable: le(score, tau) };
    }));
  }

  /** The batched, non-throwing form: one prediction, score and verdict per row. */
  async classifyBatch(x: Tensor): Promise<ConditionalBatch> {
    const r = this.apply(x);
    try {
      const [p, s, ok] = await Promise.all([r.prediction.data(), r.score.data(), r.reliable.data()]);
      const tau = this.tau!;
      return { prediction: Int32Array.from(p), score: Float64Array.from(s), reliable: Array.from(s, (v, i) => ok[i] !== 0 && v <= tau) };
    } finally {
      r.prediction.dispose();
      r.score.dispose();
      r.reliable.dispose();
    }
  }

  /** Per-row tagged results (rejected rows carry their NotReliableClassification). */
  async tryClassify(x: Tensor): Promise<GuardResult<number>[]> {
    const b = await this.classifyBatch(x);
    return b.reliable.map((ok, i) => (ok
      ? { ok: true as const, prediction: b.prediction[i], score: b.score[i] }
      : { ok: false as const, error: new NotReliableClassification(b.prediction[i], b.score[i], this.tau!) }));
  }

  /**
   * ONE input, as a batch [1, ...]: its predicted class, or throws NotReliableClassification
   * (with the prediction, the score and τ). Use {@link classifyBatch} for many rows.
   */
  async classify(x: Tensor): Promise<number> {
    this.threshold;
    if (x.rank < 2 || x.shape[0] !== 1) throw new ShapeError(`conditionalClassifier.classify: expected one input as a batch [1, ...], got ${fmtShape(x.shape)}; use classifyBatch for [B, ...]`);
    const [r] = await this.tryClassify(x);
    if (!r.ok) throw r.error;
    return r.prediction;
  }
}

/**
 * `conditionalClassifier(classifier, guard)`: `classify(x)` returns f's prediction or throws
 * `NotReliableClassification`; `classifyBatch(x)` is the batched non-throwing form. `guard` is a
 * calibrated `DetectorGuard` (from `guard(detector, { fpr, heldOut })`, its τ reused) or a bare
 * `Detector` (then call `calibrate(heldOut, { fpr })` first; until then → NotFittedError).
 */
export function conditionalClassifier(classifier: ModelLike, g: DetectorGuard | Detector): ConditionalClassifier {
  if (g && typeof g === 'object' && 'detector' in g && 'threshold' in g && isDetector((g as DetectorGuard).detector)) {
    const dg = g as DetectorGuard;
    return new ConditionalClassifier(classifier, dg.detector, dg.threshold);
  }
  if (!isDetector(g)) throw new ArgumentError('conditionalClassifier: the guard must be a DetectorGuard or a Detector');
  return new ConditionalClassifier(classifier, g);
}
