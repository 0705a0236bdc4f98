/**
 * The guard from notes 001: `if score > threshold: reject with NotReliableClassification`.
 * Any detector whose score is higher = more OOD/uncertain becomes a guard by calibrating the
 * threshold on held-out IN-distribution scores to a target false-positive rate (the fraction
 * of in-distribution inputs wrongly rejected).
 *
 * Rule: ACCEPT when score ≤ threshold, REJECT when score > threshold or the score is NaN
 * (a NaN score never passes).
 */
import { ArgumentError, NotReliableClassification } from '../engine/errors.js';

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

/** Shorthand for `new Guard(opts)`. */
export function guard<X, P>(opts: GuardOptions<X, P>): Guard<X, P> {
  return new Guard(opts);
}
