/** Errors of the uncertainty toolkit. The base class {@link DubitoError} lives in the engine. */
import { DubitoError } from '../engine/index.js';

/**
 * Invalid input to an evaluation metric (uncertainty/metrics.ts): only one class present,
 * lengths that differ, NaN values, empty input, values outside their range. `reason` says which.
 */
export class MetricError extends DubitoError {
  constructor(
    message: string,
    readonly reason: 'one-class' | 'length' | 'nan' | 'empty' | 'range' = 'range',
  ) {
    super(message);
  }
}

/** A fitted object (TemperatureScaler, MahalanobisDetector, ...) was used before `fit()`. */
export class NotFittedError extends DubitoError {}

/**
 * A guarded classifier refused a prediction: its uncertainty/OOD `score` is above the calibrated
 * `threshold` (or is NaN). Carries the prediction it would have made.
 */
export class NotReliableClassification<P = unknown> extends DubitoError {
  constructor(
    readonly prediction: P,
    readonly score: number,
    readonly threshold: number,
  ) {
    super(`not a reliable classification: score ${score} exceeds the threshold ${threshold}`);
  }
}
