/**
 * Detector-protocol adapters (uncertainty/detector.ts) for the Bayesian toolbox: a variational
 * (Bayes-by-backprop) network and a fitted Laplace approximation. Scores are higher = more
 * uncertain, as everywhere.
 */
import { ArgumentError, type Tensor, argmax, noGrad, tidy } from '../../engine/index.js';
import type { Module } from '../../nn/module.js';
import { type VariationalPredictiveOptions, variationalProbs } from '../../nn/layers/variational.js';
import type { Detector, ScoredBatch } from '../detector.js';
import { mutualInformation, predictiveEntropy, predictiveMean, variationRatio } from '../scores.js';
import type { Laplace, LaplacePredictOptions } from './laplace.js';

export type BayesSampledMeasure = 'predictiveEntropy' | 'mutualInformation' | 'variationRatio';

const MEASURES: Record<BayesSampledMeasure, (p: Tensor) => Tensor> = { predictiveEntropy, mutualInformation, variationRatio };

function measureOf(what: string, m: string): (p: Tensor) => Tensor {
  const f = (MEASURES as Record<string, ((p: Tensor) => Tensor) | undefined>)[m];
  if (!f) throw new ArgumentError(`${what}: unknown measure '${m}'; expected one of ${Object.keys(MEASURES).join(', ')}`);
  return f;
}

export interface VariationalDetectorOptions extends VariationalPredictiveOptions {
  /** Score of the T sampled softmax outputs (default 'predictiveEntropy'). */
  measure?: BayesSampledMeasure;
  name?: string;
}

/** A variational network's T-sample predictive (one batched pass) as a detector. */
export class VariationalDetector implements Detector {
  readonly name: string;
  readonly #fn: (p: Tensor) => Tensor;
  constructor(readonly model: Module, readonly options: VariationalDetectorOptions) {
    const m = options.measure ?? 'predictiveEntropy';
    this.#fn = measureOf('variationalDetector', m);
    this.name = options.name ?? `variational ${m}`;
  }

  score(x: Tensor): Tensor {
    return tidy(() => noGrad(() => this.#fn(variationalProbs(this.model, x, this.options))));
  }

  /** Prediction = argmax of the predictive mean. */
  predict(x: Tensor): ScoredBatch {
    return tidy(() => noGrad(() => {
      const p = variationalProbs(this.model, x, this.options);
      return { prediction: argmax(predictiveMean(p), -1), score: this.#fn(p) };
    }));
  }
}

export function variationalDetector(model: Module, opts: VariationalDetectorOptions): VariationalDetector {
  return new VariationalDetector(model, opts);
}

export interface LaplaceDetectorOptions extends LaplacePredictOptions {
  /**
   * 'predictiveEntropy' of the predictive probabilities (default; probit or MC), or, with
   * method 'mc', 'mutualInformation' / 'variationRatio' of the sampled probabilities.
   */
  measure?: BayesSampledMeasure;
  name?: string;
}

/** A fitted {@link Laplace} (classification or binary likelihood) as a detector. */
export class LaplaceDetector implements Detector {
  readonly name: string;
  readonly #measure: BayesSampledMeasure;
  constructor(readonly laplace: Laplace, readonly options: LaplaceDetectorOptions = {}) {
    if (laplace.likelihood === 'regression') throw new ArgumentError('laplaceDetector: needs a classification or binary Laplace');
    this.#measure = options.measure ?? 'predictiveEntropy';
    measureOf('laplaceDetector', this.#measure);
    if (this.#measure !== 'predictiveEntropy' && options.method !== 'mc') throw new ArgumentError(`laplaceDetector: measure '${this.#measure}' needs method 'mc'`);
    this.name = options.name ?? `Laplace ${this.#measure}`;
  }

  #run(x: Tensor): ScoredBatch {
    const p = this.laplace.predict(x, this.options);
    const probs = p.sampleProbs ?? p.probs.reshape([1, ...p.probs.shape]);
    return { prediction: argmax(p.probs, -1), score: measureOf('laplaceDetector', this.#measure)(probs) };
  }

  score(x: Tensor): Tensor {
    return tidy(() => noGrad(() => this.#run(x).score));
  }

  predict(x: Tensor): ScoredBatch {
    return tidy(() => noGrad(() => this.#run(x)));
  }
}

export function laplaceDetector(laplace: Laplace, opts: LaplaceDetectorOptions = {}): LaplaceDetector {
  return new LaplaceDetector(laplace, opts);
}
