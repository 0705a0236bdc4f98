/**
 * The rejection guard: `if score > threshold: reject with NotReliableClassification`.
 * Any detector whose score is higher = more OOD/uncertain becomes a guard by calibrating the
 * threshold on held-out IN-distribution scores to a target false-positive rate (the fraction
 * of in-distribution inputs wrongly rejected). Two forms: `guard(detector, { fpr, heldOut })`
 * (a {@link DetectorGuard}: any `Detector`, a whole batch per call) and the per-input
 * {@link Guard} around a `predict` callback.
 *
 * Rule: ACCEPT when score ≤ threshold, REJECT when score > threshold or the score is NaN
 * (a NaN score never passes).
 */
import {
  argmax, ArgumentError, fmtShape, le, noGrad, ShapeError, type Tensor, tidy,
} from '../engine/index.js';
import { NotReliableClassification } from './errors.js';
import { type Detector, type DetectorInput, type ModelLike, asModelFn, isDetector, scoreAll } from './detector.js';

/**
 * The smallest threshold τ, taken among the held-out scores, such that at most a fraction
 * `targetFpr` of the held-out in-distribution scores are strictly above τ:
 *
 *   r = ⌊targetFpr · n⌋ (allowed rejections),  τ = s_(n−r)  (the (n−r)-th smallest score).
 *
 * Scores tied with τ are accepted (the rule rejects only score > τ), so on the calibration
 * set the realised FPR #{s > τ}/n is ≤ targetFpr exactly; ties at the top may make it
 * smaller. targetFpr = 0 gives τ = max(s) (nothing rejected). targetFpr must be in [0, 1).
 * On fresh in-distribution data the realised FPR is ≈ targetFpr (a quantile estimate: its
 * standard error is about √(targetFpr(1−targetFpr)/n)).
 */
export function calibrateThreshold(heldOutInScores: ArrayLike<number>, targetFpr: number): number {
  const n = heldOutInScores.length;
  if (n === 0) throw new ArgumentError('calibrateThreshold: no held-out scores');
  if (!(targetFpr >= 0 && targetFpr < 1)) throw new ArgumentError(`calibrateThreshold: targetFpr must be in [0, 1), got ${targetFpr}`);
  const s = Float64Array.from(heldOutInScores);
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(s[i])) throw new ArgumentError(`calibrateThreshold: held-out score ${i} is NaN`);
  }
  s.sort();
  // A hair of slack so that e.g. 0.29·100 = 28.999999999999996 still allows 29 rejections.
  const r = Math.min(n - 1, Math.floor(targetFpr * n + 1e-9));
  return s[n - 1 - r];
}

/** Fraction of `scores` a guard with `threshold` rejects (score > threshold or NaN). */
export function rejectionRate(scores: ArrayLike<number>, threshold: number): number {
  if (scores.length === 0) throw new ArgumentError('rejectionRate: no scores');
  let r = 0;
  for (let i = 0; i < scores.length; i++) if (!(scores[i] <= threshold)) r++;
  return r / scores.length;
}

/** What a guarded model returns for one input: its prediction and an OOD/uncertainty score. */
export interface ScoredPrediction<P> {
  prediction: P;
  /** Higher = more uncertain / more OOD (the library's convention). */
  score: number;
}

/** The tagged result of {@link Guard.tryClassify}. */
export type GuardResult<P> =
  | { ok: true; prediction: P; score: number }
  | { ok: false; error: NotReliableClassification<P> };

export interface GuardOptions<X, P> {
  predict: (x: X) => Promise<ScoredPrediction<P>> | ScoredPrediction<P>;
  threshold: number;
}

/**
 * A classifier that refuses to answer when its score exceeds `threshold`.
 * `classify(x)` returns the prediction or THROWS NotReliableClassification;
 * `tryClassify(x)` returns a tagged union instead; `check(prediction, score)` applies the rule
 * to a prediction you already have (e.g. one row of a batched forward pass).
 */
export class Guard<X, P> {
  readonly threshold: number;
  private readonly predict: GuardOptions<X, P>['predict'];

  constructor(opts: GuardOptions<X, P>) {
    if (typeof opts.threshold !== 'number' || Number.isNaN(opts.threshold)) throw new ArgumentError(`Guard: threshold must be a number, got ${opts.threshold}`);
    this.threshold = opts.threshold;
    this.predict = opts.predict;
  }

  /**
   * A guard whose threshold is calibrated on held-out in-distribution scores to `targetFpr`
   * (see {@link calibrateThreshold}).
   */
  static calibrated<X, P>(predict: GuardOptions<X, P>['predict'], heldOutInScores: ArrayLike<number>, targetFpr: number): Guard<X, P> {
    return new Guard({ predict, threshold: calibrateThreshold(heldOutInScores, targetFpr) });
  }

  /** Applies the rule to an existing prediction and score. */
  check(prediction: P, score: number): GuardResult<P> {
    if (score <= this.threshold) return { ok: true, prediction, score };
    return { ok: false, error: new NotReliableClassification(prediction, score, this.threshold) };
  }

  async tryClassify(x: X): Promise<GuardResult<P>> {
    const { prediction, score } = await this.predict(x);
    return this.check(prediction, score);
  }

  /** The prediction, or throws NotReliableClassification (carrying prediction, score, threshold). */
  async classify(x: X): Promise<P> {
    const r = await this.tryClassify(x);
    if (!r.ok) throw r.error;
    return r.prediction;
  }
}

// ---------------------------------------------------------------------------------------------
// the guard of a Detector: batched

export interface DetectorGuardOptions {
  /**
   * Target false-positive rate: the fraction of held-out IN-distribution inputs the guard may
   * reject, in [0, 1). The threshold is placed by {@link calibrateThreshold}.
   */
  fpr: number;
  /** Held-out in-distribution inputs (not the training set), scored with the detector. */
  heldOut?: DetectorInput;
  /** Or their scores, already computed (higher = more OOD). Exactly one of heldOut / heldOutScores. */
  heldOutScores?: ArrayLike<number>;
  /**
   * Where the class predictions come from: a classifier returning logits [B, K] (argmax taken)
   * or int32 predictions [B]. Default: the detector's own `predict` (one pass for both), if any.
   */
  classifier?: ModelLike;
  /** Rows per batch when `heldOut` is one tensor (default 256). */
  batchSize?: number;
}

/** What {@link DetectorGuard.apply} returns for a batch [B, ...]: three tensors, nothing read back. */
export interface GuardedBatch {
  /** int32 [B]: the classifier's predictions (null when the guard has no classifier). */
  prediction: Tensor | null;
  /** [B]: the detector's scores, higher = more OOD. */
  score: Tensor;
  /** bool [B]: true where the prediction may be trusted, score ≤ threshold (false for NaN). */
  reliable: Tensor;
}

/**
 * A rejection rule around any {@link Detector}, calibrated on held-out in-distribution data:
 * ACCEPT a row when score ≤ threshold, REJECT it (NotReliableClassification) when score >
 * threshold or the score is NaN. Batched: `apply(x)` scores a whole batch in one call and returns
 * tensors (predictions, scores, a reliable mask); `classify` / `tryClassify` read them back.
 *
 * Error policy: `classify(x)` resolves to the predictions of ALL rows only if every row is
 * reliable, otherwise it throws the NotReliableClassification of the FIRST rejected row
 * (carrying that row's prediction, score and the threshold); `tryClassify(x)` never throws for
 * rejected rows and returns one tagged result per row.
 */
export class DetectorGuard {
  /** The realised FPR on the held-out scores, #{s > τ}/n (≤ targetFpr, see calibrateThreshold). */
  readonly realisedFpr: number;
  /** Number of held-out scores the threshold was placed on. */
  readonly heldOutCount: number;
  private readonly classifier: ((x: Tensor) => Tensor) | null;

  constructor(
    readonly detector: Detector,
    readonly threshold: number,
    readonly targetFpr: number,
    heldOutScores: ArrayLike<number>,
    classifier?: ModelLike,
  ) {
    if (typeof threshold !== 'number' || Number.isNaN(threshold)) throw new ArgumentError(`guard: threshold must be a number, got ${threshold}`);
    this.realisedFpr = rejectionRate(heldOutScores, threshold);
    this.heldOutCount = heldOutScores.length;
    this.classifier = classifier ? asModelFn(classifier) : null;
  }

  /** Calibrates the threshold on held-out in-distribution data (see {@link guard}). */
  static async calibrate(detector: Detector, opts: DetectorGuardOptions): Promise<DetectorGuard> {
    if (!isDetector(detector)) throw new ArgumentError('guard: the first argument must be a Detector (a name and a score(x) method)');
    if (!opts || typeof opts !== 'object') throw new ArgumentError('guard: options { fpr, heldOut } are required');
    if ((opts.heldOut === undefined) === (opts.heldOutScores === undefined)) throw new ArgumentError('guard: give exactly one of options.heldOut (inputs) and options.heldOutScores');
    if (!(opts.fpr >= 0 && opts.fpr < 1)) throw new ArgumentError(`guard: fpr must be in [0, 1), got ${opts.fpr}`);
    const scores = opts.heldOutScores ?? (await scoreAll(detector, opts.heldOut!, opts.batchSize ?? 256));
    const tau = calibrateThreshold(scores, opts.fpr);
    return new DetectorGuard(detector, tau, opts.fpr, scores, opts.classifier);
  }

  /** Whether predictions are available (a classifier option or the detector's `predict`). */
  get hasClassifier(): boolean {
    return this.classifier !== null || typeof this.detector.predict === 'function';
  }

  /** Scores (and classifies) a batch [B, ...] at once; see {@link GuardedBatch}. Nothing is read back. */
  apply(x: Tensor): GuardedBatch {
    return tidy(() => noGrad(() => {
      let prediction: Tensor | null = null;
      let score: Tensor;
      if (this.classifier) {
        const out = this.classifier(x);
        prediction = out.dtype === 'int32' && out.rank === 1 ? out : argmax(out, -1);
        score = this.detector.score(x);
      } else if (this.detector.predict) {
        ({ prediction, score } = this.detector.predict(x));
      } else score = this.detector.score(x);
      if (score.rank !== 1 || score.shape[0] !== x.shape[0]) {
        throw new ShapeError(`guard(${this.detector.name}): the score must be [${x.shape[0]}] for input ${fmtShape(x.shape)}, got ${fmtShape(score.shape)}`);
      }
      if (prediction && (prediction.rank !== 1 || prediction.shape[0] !== x.shape[0])) {
        throw new ShapeError(`guard(${this.detector.name}): predictions must be [${x.shape[0]}], got ${fmtShape(prediction.shape)}`);
      }
      return { prediction, score, reliable: le(score, this.threshold) };
    }));
  }

  /** The batch read back: one tagged result per row (rejected rows carry their error). */
  async tryClassify(x: Tensor): Promise<GuardResult<number>[]> {
    if (!this.hasClassifier) throw new ArgumentError(`guard(${this.detector.name}): no predictions: the detector has no predict(); pass options.classifier`);
    const g = this.apply(x);
    try {
      const [p, s, ok] = await Promise.all([g.prediction!.data(), g.score.data(), g.reliable.data()]);
      return Array.from(s, (score, i) => {
        // The host check mirrors the device mask (score ≤ τ; NaN never passes).
        const reliable = ok[i] !== 0 && score <= this.threshold;
        return reliable ? { ok: true as const, prediction: p[i], score } : { ok: false as const, error: new NotReliableClassification(p[i], score, this.threshold) };
      });
    } finally {
      g.prediction?.dispose();
      g.score.dispose();
      g.reliable.dispose();
    }
  }

  /**
   * The predictions of every row [B] (int32), or throws the NotReliableClassification of the
   * first rejected row (see the class comment for the policy).
   */
  async classify(x: Tensor): Promise<Int32Array> {
    const rows = await this.tryClassify(x);
    const out = new Int32Array(rows.length);
    rows.forEach((r, i) => {
      if (!r.ok) throw r.error;
      out[i] = r.prediction;
    });
    return out;
  }
}

/** Shorthand for `new Guard(opts)` (the per-input, callback form). */
export function guard<X, P>(opts: GuardOptions<X, P>): Guard<X, P>;
/**
 * The guard of any {@link Detector}, batched: the threshold τ is placed on the held-out
 * IN-distribution scores so that at most a fraction `fpr` of them is rejected
 * ({@link calibrateThreshold}); the realised held-out FPR is reported as `realisedFpr`.
 *
 * ```ts
 * const g = await guard(energyDetector(net), { fpr: 0.05, heldOut: valImages });
 * const { prediction, reliable } = g.apply(testBatch); // tensors [B]
 * ```
 */
export function guard(detector: Detector, opts: DetectorGuardOptions): Promise<DetectorGuard>;
export function guard<X, P>(a: GuardOptions<X, P> | Detector, b?: DetectorGuardOptions): Guard<X, P> | Promise<DetectorGuard> {
  if (isDetector(a)) return DetectorGuard.calibrate(a, b as DetectorGuardOptions);
  return new Guard(a as GuardOptions<X, P>);
}
