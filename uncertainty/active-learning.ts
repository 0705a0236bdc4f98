/**
 * Pool-based active learning with Bayesian acquisition functions (Gal, Islam & Ghahramani 2017,
 * "Deep Bayesian active learning with image data"; BALD: Houlsby et al. 2011). A model is trained
 * on a small labelled set; every round the acquisition function scores each unlabelled pool input
 * from T stochastic predictions (MC dropout, one batched pass over the whole pool), the k
 * highest-scoring inputs are labelled (their labels revealed from the pool's oracle labels), the
 * model is retrained, and its test accuracy is recorded. See docs/methods.md, "Active learning".
 *
 * Acquisition scores, all HIGHER = MORE INFORMATIVE (= more uncertain), on probability samples
 * P [T, B, K] with predictive mean p̄ = (1/T) Σ_t p_t:
 * - `bald`: mutual information H[p̄] − (1/T) Σ_t H[p_t] (epistemic uncertainty);
 * - `variationRatio`: 1 − f_{c*}/T, f_{c*} the count of the modal argmax over the T passes;
 * - `maxEntropy`: the predictive entropy H[p̄];
 * - `margin`: −(p̄_(1) − p̄_(2)), minus the gap between the two largest mean probabilities
 *   (margin sampling, Scheffer et al. 2001, with the library's sign: higher = more uncertain);
 * - `random`: uniform without replacement (the baseline; needs no model pass).
 */
import {
  ArgumentError, composite, fmtShape, indexSelect, max, mean, noGrad, oneHot, ShapeError, sub, tensor, type Tensor, tidy,
} from '../engine/index.js';
import type { Module } from '../nn/module.js';
import { seededPermutation } from '../nn/data/permutation.js';
import { mcDropout } from './sampling.js';
import { mutualInformation, predictiveEntropy, variationRatio } from './scores.js';

export type Acquisition = 'bald' | 'variationRatio' | 'maxEntropy' | 'margin' | 'random';

export const ACQUISITIONS: readonly Acquisition[] = ['bald', 'variationRatio', 'maxEntropy', 'margin', 'random'];

function checkAcquisition(name: string, a: string): asserts a is Acquisition {
  if (!(ACQUISITIONS as readonly string[]).includes(a)) throw new ArgumentError(`${name}: unknown acquisition '${a}' (expected one of ${ACQUISITIONS.join(', ')})`);
}

/**
 * The acquisition score of every row from probability samples [T, B, K] → [B] (higher = acquire
 * first). `random` has no score from samples and is refused here (use {@link selectTopK} on
 * random numbers, as {@link runActiveLearning} does).
 */
export function acquisitionScores(probs: Tensor, acquisition: Exclude<Acquisition, 'random'>): Tensor {
  const name = 'acquisitionScores';
  checkAcquisition(name, acquisition);
  if (probs.rank !== 3 || probs.shape[2] === 0) throw new ShapeError(`${name}: expected probability samples [T, B, K], got ${fmtShape(probs.shape)}`);
  if ((acquisition as Acquisition) === 'random') throw new ArgumentError(`${name}: 'random' acquisition has no score; draw random indices instead`);
  return noGrad(() => composite(() => {
    switch (acquisition) {
      case 'bald': return mutualInformation(probs);
      case 'variationRatio': return variationRatio(probs);
      case 'maxEntropy': return predictiveEntropy(probs);
      case 'margin': {
        const pbar = mean(probs, 0); // [B, K]
        const top = max(pbar, -1);
        // the runner-up: the max after pushing the top class (first argmax) below 0
        const second = max(sub(pbar, oneHot(pbar.argmax(-1), probs.shape[2]).mul(2)), -1);
        return sub(second, top);
      }
    }
  }));
}

/**
 * Indices of the k largest scores (ties: the lower index first), as an Int32Array in decreasing
 * score order. NaN scores rank last. Throws `ArgumentError` when k exceeds the number of scores.
 */
export function selectTopK(scores: ArrayLike<number>, k: number): Int32Array {
  if (!Number.isInteger(k) || k < 0) throw new ArgumentError(`selectTopK: k must be an integer ≥ 0, got ${k}`);
  if (k > scores.length) throw new ArgumentError(`selectTopK: cannot acquire k = ${k} from a pool of ${scores.length}`);
  const idx = Int32Array.from({ length: scores.length }, (_, i) => i);
  const key = (i: number) => (Number.isNaN(scores[i]) ? -Infinity : scores[i]);
  idx.sort((a, b) => key(b) - key(a) || a - b);
  return idx.slice(0, k);
}

/**
 * A balanced start set: `perClass` pool indices of every class 0..K−1, drawn uniformly (seeded
 * Philox shuffle) from the oracle labels. Throws `ArgumentError` when a class has fewer.
 */
export function balancedInitialSet(labels: ArrayLike<number>, numClasses: number, perClass: number, seed: number): Int32Array {
  const name = 'balancedInitialSet';
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new ArgumentError(`${name}: numClasses must be a positive integer, got ${numClasses}`);
  if (!Number.isInteger(perClass) || perClass < 0) throw new ArgumentError(`${name}: perClass must be an integer ≥ 0, got ${perClass}`);
  const order = shuffle(labels.length, seed, 0);
  const taken = new Int32Array(numClasses);
  const out: number[] = [];
  for (const i of order) {
    const c = labels[i];
    if (!Number.isInteger(c) || c < 0 || c >= numClasses) throw new ArgumentError(`${name}: labels[${i}] = ${c} is not a class index in [0, ${numClasses})`);
    if (taken[c] < perClass) {
      taken[c]++;
      out.push(i);
    }
  }
  for (let c = 0; c < numClasses; c++) {
    if (taken[c] < perClass) throw new ArgumentError(`${name}: class ${c} has ${taken[c]} pool examples, fewer than perClass = ${perClass}`);
  }
  return Int32Array.from(out).sort();
}

const shuffle = seededPermutation;

export interface McDropoutScorerOptions {
  /** Stochastic passes T (Gal et al. 2017 use 20). */
  samples: number;
  /** Base seed of the dropout masks; round r uses seed + r. */
  seed?: number;
  /** Largest number of rows one forward takes (T is chunked above it; see `mcDropout`). */
  maxRowsPerPass?: number;
}

/** Scores the unlabelled pool rows (indices into the pool) with a model; resolves to one score per index. */
export type PoolScorer<M> = (model: M, unlabelled: Int32Array, acquisition: Exclude<Acquisition, 'random'>, round: number) => Promise<ArrayLike<number>>;

/**
 * A {@link PoolScorer} for a dropout model over a pool tensor [P, ...]: the unlabelled rows are
 * gathered once (`indexSelect`), MC dropout runs all T passes over them as one batched forward
 * (chunked only past `maxRowsPerPass`), and the acquisition score is read back. The model's
 * dropout must be active at inference (`enableMCDropout(model)` after `model.eval()`).
 */
export function mcDropoutScorer<M extends Module>(pool: Tensor, opts: McDropoutScorerOptions): PoolScorer<M> {
  if (pool.rank < 1) throw new ShapeError(`mcDropoutScorer: expected a pool [P, ...], got ${fmtShape(pool.shape)}`);
  return async (model, unlabelled, acquisition, round) => {
    const s = tidy(() => {
      const x = indexSelect(pool, 0, tensor(unlabelled, [unlabelled.length], { dtype: 'int32', backend: pool.backend }));
      const mc = mcDropout(model, x, { samples: opts.samples, seed: (opts.seed ?? 0) + round, maxRowsPerPass: opts.maxRowsPerPass });
      return acquisitionScores(mc.probs, acquisition);
    });
    const host = await s.data();
    s.dispose();
    return host;
  };
}

export interface ActiveLearningOptions<M> {
  /** The pool's oracle labels (revealed when an index is acquired), one per pool row. */
  poolLabels: ArrayLike<number>;
  numClasses: number;
  /** Start set: this many labels of every class (Gal et al. 2017: 2, i.e. 20 for MNIST). */
  initialPerClass: number;
  /** Inputs acquired per round. */
  k: number;
  /** Acquisition rounds (the model is trained rounds + 1 times). */
  rounds: number;
  acquisition: Acquisition;
  /** Seed of the start set and of random acquisition. */
  seed: number;
  /** Trains a model on the labelled pool indices (the labels are `poolLabels` at those indices). */
  train: (labelled: Int32Array, round: number) => Promise<M>;
  /** Test accuracy (or any metric) of a trained model. */
  evaluate: (model: M) => Promise<number>;
  /** Scores unlabelled pool indices (not called for `random`); e.g. {@link mcDropoutScorer}. */
  score?: PoolScorer<M>;
  /** Frees a model once it is no longer needed. */
  dispose?: (model: M) => void;
  log?: (line: string) => void;
}

export interface ActiveLearningResult {
  acquisition: Acquisition;
  /** Number of labels after each training (start set, then +k per round). */
  labels: number[];
  /** `evaluate` of the model trained on that many labels. */
  accuracy: number[];
  /** The pool indices acquired in each round. */
  acquired: Int32Array[];
  /** Wall time of the whole loop, seconds. */
  seconds: number;
  /** Wall time spent scoring the pool, seconds. */
  scoreSeconds: number;
}

/**
 * Runs the pool-based loop: balanced start set → train → evaluate → (score the unlabelled pool,
 * label its top k) × rounds. Throws `ArgumentError` before any training when the pool cannot
 * provide `rounds · k` acquisitions after the start set.
 */
export async function runActiveLearning<M>(o: ActiveLearningOptions<M>): Promise<ActiveLearningResult> {
  const name = 'runActiveLearning';
  checkAcquisition(name, o.acquisition);
  if (!Number.isInteger(o.k) || o.k < 1) throw new ArgumentError(`${name}: k must be a positive integer, got ${o.k}`);
  if (!Number.isInteger(o.rounds) || o.rounds < 0) throw new ArgumentError(`${name}: rounds must be an integer ≥ 0, got ${o.rounds}`);
  if (o.acquisition !== 'random' && !o.score) throw new ArgumentError(`${name}: acquisition '${o.acquisition}' needs a score function (e.g. mcDropoutScorer(pool, { samples }))`);
  const P = o.poolLabels.length;
  const start = balancedInitialSet(o.poolLabels, o.numClasses, o.initialPerClass, o.seed);
  const need = start.length + o.k * o.rounds;
  if (o.k > P - start.length || need > P) {
    throw new ArgumentError(`${name}: acquisition size k = ${o.k} over ${o.rounds} rounds needs ${o.k * o.rounds} unlabelled inputs, but the pool of ${P} has ${P - start.length} after the start set of ${start.length}`);
  }
  const t0 = performance.now();
  let scoreMs = 0;
  const isLabelled = new Uint8Array(P);
  for (const i of start) isLabelled[i] = 1;
  let labelled = start;
  const result: ActiveLearningResult = { acquisition: o.acquisition, labels: [], accuracy: [], acquired: [], seconds: 0, scoreSeconds: 0 };
  for (let r = 0; ; r++) {
    const model = await o.train(labelled, r);
    try {
      const acc = await o.evaluate(model);
      result.labels.push(labelled.length);
      result.accuracy.push(acc);
      o.log?.(`${o.acquisition} round ${r}: ${labelled.length} labels, accuracy ${(acc * 100).toFixed(2)}%`);
      if (r === o.rounds) break;
      const unlabelled = new Int32Array(P - labelled.length);
      for (let i = 0, j = 0; i < P; i++) if (!isLabelled[i]) unlabelled[j++] = i;
      let pick: Int32Array;
      if (o.acquisition === 'random') {
        pick = shuffle(unlabelled.length, o.seed, 1_000_000 * (r + 1)).slice(0, o.k);
      } else {
        const ts = performance.now();
        const s = await o.score!(model, unlabelled, o.acquisition, r);
        scoreMs += performance.now() - ts;
        if (s.length !== unlabelled.length) throw new ShapeError(`${name}: the score function returned ${s.length} scores for ${unlabelled.length} unlabelled inputs`);
        pick = selectTopK(s, o.k);
      }
      const acquired = Int32Array.from(pick, (j) => unlabelled[j]);
      for (const i of acquired) isLabelled[i] = 1;
      result.acquired.push(acquired);
      labelled = Int32Array.from([...labelled, ...acquired]);
    } finally {
      o.dispose?.(model);
    }
  }
  result.seconds = (performance.now() - t0) / 1000;
  result.scoreSeconds = scoreMs / 1000;
  return result;
}
