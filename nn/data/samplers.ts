/**
 * Samplers for {@link DataLoader}: which sample indices an epoch visits, and in what order (the
 * `sampler` option, as PyTorch's `DataLoader(sampler=...)`). Two remedies for class imbalance and
 * dataset bias live here:
 *
 * - {@link WeightedSampler}: each epoch draws `numSamples` indices i.i.d. with replacement,
 *   P(i) = w_i / Σ_j w_j (PyTorch's `WeightedRandomSampler`). Inverse-class-frequency weights
 *   (`classBalancedWeights`) give sample reweighting; DB-VAE's latent-histogram weights
 *   (uncertainty/bias.ts) are set anew every epoch with `setWeights`.
 * - {@link ClassBalancedSampler}: every batch holds exactly `perClass` samples of each class
 *   (rare classes are revisited, each class cycling through its own seeded permutations).
 *
 * Both are seeded and draw one epoch of indices in one go (one Philox stream of
 * `numSamples` uniforms, then a binary search of the cumulative weights per draw): host index
 * arithmetic only, no per-sample tensor work. Epoch e uses the stream (seed, e·⌈n/4⌉·k) for a
 * sampler-specific k, so the draws are reproducible and independent of any other random draw.
 */
import { ArgumentError, blocksFor, randomBits } from '../../engine/index.js';
import { sortKeyPermutation } from './permutation.js';

/** What {@link DataLoader} asks of a sampler. */
export interface Sampler {
  /** Indices visited per epoch (the loader's sample count). */
  readonly length: number;
  /** The sample indices of epoch `epoch` (0-based), each in [0, datasetSize). */
  indices(epoch: number): Int32Array;
  /**
   * Set by batch samplers whose batches have a fixed composition ({@link ClassBalancedSampler}):
   * the loader then uses this batch size (a different explicit `batchSize` is an error).
   */
  readonly batchSize?: number;
  /** Number of samples of the dataset it indexes (checked against the loader's arrays). */
  readonly datasetSize: number;
}

const U32 = 2 ** 32;

function checkSeed(op: string, seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0 || seed >= U32) throw new ArgumentError(`${op}: seed must be an integer in [0, 2^32), got ${seed}`);
}

/** Uniforms in (0, 1) from `n` Philox words of stream (seed, offset). */
function uniforms(n: number, seed: number, offset: number): Float64Array {
  const bits = randomBits(n, seed, offset);
  const u = new Float64Array(n);
  for (let i = 0; i < n; i++) u[i] = (bits[i] + 0.5) / U32;
  return u;
}

const permutation = sortKeyPermutation;

export interface WeightedSamplerOptions {
  /** Indices drawn per epoch (default: the number of weights). */
  numSamples?: number;
  /** Philox seed (default 0). */
  seed?: number;
}

/**
 * Draws `numSamples` indices per epoch with replacement, P(i) = w_i / Σ_j w_j. Weights must be
 * finite and non-negative with a positive sum (else `ArgumentError` naming the first bad one).
 */
export class WeightedSampler implements Sampler {
  readonly length: number;
  readonly datasetSize: number;
  private readonly seed: number;
  private cdf!: Float64Array;

  constructor(weights: ArrayLike<number>, opts: WeightedSamplerOptions = {}) {
    this.datasetSize = weights.length;
    this.length = opts.numSamples ?? weights.length;
    if (!Number.isInteger(this.length) || this.length < 1) throw new ArgumentError(`WeightedSampler: numSamples must be a positive integer, got ${opts.numSamples}`);
    this.seed = opts.seed ?? 0;
    checkSeed('WeightedSampler', this.seed);
    this.setWeights(weights);
  }

  /** Replaces the weights (same length); takes effect from the next epoch drawn. */
  setWeights(weights: ArrayLike<number>): void {
    const n = weights.length;
    if (n === 0) throw new ArgumentError('WeightedSampler: expected at least one weight, got none');
    if (n !== this.datasetSize) throw new ArgumentError(`WeightedSampler.setWeights: expected ${this.datasetSize} weights (one per sample), got ${n}`);
    const cdf = new Float64Array(n);
    let s = 0;
    for (let i = 0; i < n; i++) {
      const w = weights[i];
      if (!Number.isFinite(w) || w < 0) throw new ArgumentError(`WeightedSampler: weights must be finite and non-negative; weight ${i} is ${w}`);
      s += w;
      cdf[i] = s;
    }
    if (!(s > 0) || !Number.isFinite(s)) throw new ArgumentError(`WeightedSampler: the ${n} weights sum to ${s}; at least one must be positive (and the sum finite)`);
    for (let i = 0; i < n; i++) cdf[i] /= s;
    cdf[n - 1] = 1;
    this.cdf = cdf;
  }

  /** The normalised probabilities P(i) (a copy). */
  probabilities(): Float64Array {
    const p = new Float64Array(this.cdf.length);
    for (let i = 0; i < p.length; i++) p[i] = this.cdf[i] - (i > 0 ? this.cdf[i - 1] : 0);
    return p;
  }

  indices(epoch: number): Int32Array {
    const m = this.length;
    const u = uniforms(m, this.seed, epoch * blocksFor(m));
    const cdf = this.cdf;
    const out = new Int32Array(m);
    for (let k = 0; k < m; k++) {
      // first i with cdf[i] > u (zero-weight samples have cdf[i] = cdf[i-1] and are never hit)
      let lo = 0;
      let hi = cdf.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cdf[mid] > u[k]) hi = mid;
        else lo = mid + 1;
      }
      out[k] = lo;
    }
    return out;
  }
}

function checkLabels(op: string, labels: ArrayLike<number>): { classes: number[]; byClass: Map<number, number[]> } {
  if (labels.length === 0) throw new ArgumentError(`${op}: expected at least one label, got none`);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (!Number.isInteger(c) || c < 0) throw new ArgumentError(`${op}: labels must be non-negative integers; label ${i} is ${c}`);
    let list = byClass.get(c);
    if (!list) byClass.set(c, (list = []));
    list.push(i);
  }
  return { classes: [...byClass.keys()].sort((a, b) => a - b), byClass };
}

/**
 * Inverse-class-frequency sample weights w_i = 1 / (K · n_{y_i}) (so Σ_i w_i = 1 and every class
 * present carries total weight 1/K): with {@link WeightedSampler} each class is drawn equally
 * often in expectation. Also the class weights for a loss: `classWeights(labels, K)`.
 */
export function classBalancedWeights(labels: ArrayLike<number>): Float64Array {
  const { classes, byClass } = checkLabels('classBalancedWeights', labels);
  const w = new Float64Array(labels.length);
  for (const c of classes) {
    const list = byClass.get(c)!;
    for (const i of list) w[i] = 1 / (classes.length * list.length);
  }
  return w;
}

/**
 * Per-class loss weights for `crossEntropy(..., { weight })`: weight_c = n / (K · n_c) for the
 * classes present (PyTorch / scikit-learn's "balanced" rule; mean 1 over the classes present),
 * 0 for classes 0..numClasses−1 that do not occur.
 */
export function classWeights(labels: ArrayLike<number>, numClasses: number): Float64Array {
  const { classes, byClass } = checkLabels('classWeights', labels);
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new ArgumentError(`classWeights: numClasses must be a positive integer, got ${numClasses}`);
  const w = new Float64Array(numClasses);
  for (const c of classes) {
    if (c >= numClasses) throw new ArgumentError(`classWeights: label ${c} is outside [0, ${numClasses})`);
    w[c] = labels.length / (classes.length * byClass.get(c)!.length);
  }
  return w;
}

export interface ClassBalancedSamplerOptions {
  /** Samples of each class in every batch. */
  perClass: number;
  /** Batches per epoch (default ⌊n / (perClass·K)⌋, at least 1: about one pass over n samples). */
  numBatches?: number;
  /** Philox seed (default 0). */
  seed?: number;
}

/**
 * Class-balanced batch selection: every batch of `perClass·K` consecutive indices holds exactly
 * `perClass` samples of each of the K classes present in `labels` (class-major within the batch).
 * Each class walks through seeded permutations of its own samples, a fresh one whenever it runs
 * out, so rare classes are oversampled and frequent ones subsampled. The loader's batch size is
 * then `perClass·K` (`batchSize` on the sampler).
 */
export class ClassBalancedSampler implements Sampler {
  readonly batchSize: number;
  readonly numBatches: number;
  readonly length: number;
  readonly datasetSize: number;
  readonly classes: readonly number[];
  private readonly byClass: Int32Array[];
  private readonly seed: number;
  private readonly perClass: number;
  /** Philox blocks reserved per (epoch, class): every class's permutations fit in it. */
  private readonly stride: number;

  constructor(labels: ArrayLike<number>, opts: ClassBalancedSamplerOptions) {
    const { classes, byClass } = checkLabels('ClassBalancedSampler', labels);
    if (!Number.isInteger(opts.perClass) || opts.perClass < 1) throw new ArgumentError(`ClassBalancedSampler: perClass must be a positive integer, got ${opts.perClass}`);
    this.perClass = opts.perClass;
    this.classes = classes;
    this.byClass = classes.map((c) => Int32Array.from(byClass.get(c)!));
    this.batchSize = opts.perClass * classes.length;
    this.datasetSize = labels.length;
    this.numBatches = opts.numBatches ?? Math.max(1, Math.floor(labels.length / this.batchSize));
    if (!Number.isInteger(this.numBatches) || this.numBatches < 1) throw new ArgumentError(`ClassBalancedSampler: numBatches must be a positive integer, got ${opts.numBatches}`);
    this.length = this.numBatches * this.batchSize;
    const need = this.numBatches * this.perClass;
    this.stride = Math.max(...this.byClass.map((m) => Math.ceil(need / m.length) * blocksFor(m.length)));
    this.seed = opts.seed ?? 0;
    checkSeed('ClassBalancedSampler', this.seed);
  }

  indices(epoch: number): Int32Array {
    const K = this.classes.length;
    const need = this.numBatches * this.perClass;
    const out = new Int32Array(this.length);
    for (let c = 0; c < K; c++) {
      const members = this.byClass[c];
      const n = members.length;
      const perms = Math.ceil(need / n);
      // Stream per (epoch, class), `stride` blocks apart: no two permutations share Philox blocks.
      const base = (epoch * K + c) * this.stride;
      let k = 0;
      for (let p = 0; p < perms && k < need; p++) {
        const perm = permutation(n, this.seed, base + p * blocksFor(n));
        for (let j = 0; j < n && k < need; j++, k++) {
          const b = Math.floor(k / this.perClass);
          out[b * this.batchSize + c * this.perClass + (k % this.perClass)] = members[perm[j]];
        }
      }
    }
    return out;
  }
}
