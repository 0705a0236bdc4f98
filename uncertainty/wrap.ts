/**
 * A CAPSA-style wrapper (Lolla, Amini et al., "capsa: a unified framework for quantifying risk in
 * deep neural networks", 2022; `model = capsa.HistogramWrapper(model); preds, bias =
 * model.predict(x)`): `wrap(model, { bias, aleatoric, epistemic })` returns an object whose
 * `predict(x)` gives the prediction together with the requested risk estimates, in one call.
 *
 * No new maths: every estimate is an existing method of this library (docs/methods.md, "Bias and
 * class imbalance"); all are [B] tensors, HIGHER = MORE RISK (the library's sign rule):
 *
 * - `bias: 'histogram'`: the rarity −Σ_i log(Q̂_i(f_i(x)) + α) of the input's features f(x) under
 *   per-dimension histograms of the training features ({@link LatentHistogram}, fitted by
 *   `fit(data)`), i.e. log of the DB-VAE sampling weight up to a constant. CAPSA reports the
 *   histogram density itself (LOW = under-represented); this is its negative log, so a high value
 *   means the input lies where the training data is thin.
 * - `aleatoric: true`: the expected entropy E_t H[p_t] over the epistemic samples (MC dropout
 *   passes or ensemble members), the entropy H[p] of the single softmax when there is no
 *   sampling, or the Dirichlet expected entropy for `epistemic: 'dirichlet'`.
 * - `epistemic`: 'mcDropout' (T passes in one batch, `samples`, `seed`), 'ensemble' (a
 *   `DeepEnsemble`, one stacked pass) — both give the mutual information H[p̄] − E_t H[p_t] —
 *   or 'dirichlet' (the model outputs concentrations α, e.g. a `PriorNetwork`): the Dirichlet
 *   mutual information.
 *
 * Unknown options or values, and `fit`-less use of the histogram, are typed errors.
 */
import {
  ArgumentError, argmax, composite, fmtShape, noGrad, ShapeError, softmax, type Tensor, tidy,
} from '../engine/index.js';
import { Dropout, type Module } from '../nn/index.js';
import { checkAlpha, LatentHistogram, requireHistogram } from './bias.js';
import { asModelFn, type DetectorInput, forEachBatch, type ModelLike } from './detector.js';
import { DeepEnsemble } from './ensemble.js';
import { mcDropoutLogits } from './sampling.js';
import { dirichletExpectedEntropy, dirichletMean, dirichletMutualInformation, entropyScore, expectedEntropy, mutualInformation, predictiveMean } from './scores.js';

export type EpistemicMethod = 'mcDropout' | 'ensemble' | 'dirichlet';

export interface WrapOptions {
  /** 'histogram': feature-histogram rarity (needs `fit`). Default: none. */
  bias?: 'histogram' | false;
  /** Aleatoric (data) uncertainty. Default false. */
  aleatoric?: boolean;
  /** Epistemic (model) uncertainty method. Default: none. */
  epistemic?: EpistemicMethod | false;
  /** MC dropout passes T (default 20). */
  samples?: number;
  /** MC dropout seed (default: a fresh stream per call). */
  seed?: number;
  /** Histogram bins per feature dimension (default 10). */
  bins?: number;
  /** α of the rarity (default 0.01; must be > 0). */
  alpha?: number;
  /**
   * Features the histogram is built on, x → [B, F]. Default: the model's `encode` (DbVae's latent
   * means), else its `penultimate` (LeNet5), else its output.
   */
  features?: ModelLike;
}

const KNOWN: readonly (keyof WrapOptions)[] = ['bias', 'aleatoric', 'epistemic', 'samples', 'seed', 'bins', 'alpha', 'features'];

/** What `predict` returns: tensors the caller owns (dispose them, or call inside `tidy`). */
export interface WrappedPrediction {
  /** int32 [B]: argmax of the (mean) predictive distribution. */
  prediction: Tensor;
  /** [B, K]: the (mean) predictive distribution. */
  probs: Tensor;
  /** [B]: histogram rarity (when `bias: 'histogram'`). */
  bias?: Tensor;
  /** [B]: aleatoric uncertainty (when `aleatoric`). */
  aleatoric?: Tensor;
  /** [B]: epistemic uncertainty (when `epistemic`). */
  epistemic?: Tensor;
}

export type WrappableModel = ModelLike | DeepEnsemble;

/** The wrapper; build it with {@link wrap}. */
export class Wrapped {
  private histogram: LatentHistogram | null = null;
  private readonly featureFn: ((x: Tensor) => Tensor) | null;
  readonly options: Readonly<WrapOptions>;

  constructor(readonly model: WrappableModel, opts: WrapOptions = {}) {
    for (const k of Object.keys(opts)) {
      if (!(KNOWN as readonly string[]).includes(k)) throw new ArgumentError(`wrap: unknown option '${k}' (known: ${KNOWN.join(', ')})`);
    }
    if (opts.bias !== undefined && opts.bias !== false && opts.bias !== 'histogram') throw new ArgumentError(`wrap: bias must be 'histogram' or false, got '${String(opts.bias)}'`);
    if (opts.aleatoric !== undefined && typeof opts.aleatoric !== 'boolean') throw new ArgumentError(`wrap: aleatoric must be a boolean, got ${String(opts.aleatoric)}`);
    const ep = opts.epistemic;
    if (ep !== undefined && ep !== false && !['mcDropout', 'ensemble', 'dirichlet'].includes(ep)) {
      throw new ArgumentError(`wrap: epistemic must be 'mcDropout', 'ensemble', 'dirichlet' or false, got '${String(ep)}'`);
    }
    if (ep === 'ensemble' && !(model instanceof DeepEnsemble)) throw new ArgumentError("wrap: epistemic 'ensemble' needs a DeepEnsemble as the model");
    if (ep !== 'ensemble' && model instanceof DeepEnsemble) throw new ArgumentError("wrap: a DeepEnsemble model needs epistemic: 'ensemble'");
    if (ep === 'mcDropout') {
      const m = model as Module;
      if (typeof m.modules !== 'function' || !m.modules().some((d) => d instanceof Dropout && d.p > 0)) {
        throw new ArgumentError("wrap: epistemic 'mcDropout' needs a Module with a Dropout layer of p > 0");
      }
      const T = opts.samples ?? 20;
      if (!Number.isInteger(T) || T < 2) throw new ArgumentError(`wrap: samples must be an integer ≥ 2, got ${T}`);
    } else if (opts.samples !== undefined || opts.seed !== undefined) {
      throw new ArgumentError("wrap: samples and seed apply to epistemic 'mcDropout' only");
    }
    if (opts.bias === 'histogram') {
      checkAlpha('wrap', opts.alpha ?? 0.01);
      const bins = opts.bins ?? 10;
      if (!Number.isInteger(bins) || bins < 1) throw new ArgumentError(`wrap: bins must be a positive integer, got ${bins}`);
    } else if (opts.bins !== undefined || opts.alpha !== undefined || opts.features !== undefined) {
      throw new ArgumentError("wrap: bins, alpha and features apply to bias: 'histogram' only");
    }
    this.options = { ...opts };
    this.featureFn = opts.bias === 'histogram' ? this.defaultFeatures(opts.features) : null;
  }

  private defaultFeatures(f: ModelLike | undefined): (x: Tensor) => Tensor {
    if (f) return asModelFn(f);
    const m = this.model as { encode?: (x: Tensor) => Tensor; penultimate?: (x: Tensor) => Tensor };
    if (typeof m.encode === 'function') return (x) => m.encode!(x);
    if (typeof m.penultimate === 'function') return (x) => m.penultimate!(x);
    if (this.model instanceof DeepEnsemble) {
      const e = this.model;
      return (x) => composite(() => predictiveMean(softmax(e.forward(x), -1)));
    }
    return asModelFn(this.model as ModelLike);
  }

  /** Whether the histogram has been fitted (always true without `bias`). */
  get fitted(): boolean {
    return this.options.bias !== 'histogram' || this.histogram !== null;
  }

  /**
   * Fits the feature histograms on training inputs (a tensor [N, ...] or an iterable of batches;
   * only needed for `bias: 'histogram'`). Resolves to the wrapper.
   */
  async fit(data: { x: DetectorInput; batchSize?: number }): Promise<this> {
    if (!this.featureFn) return this;
    const parts: Float32Array[] = [];
    let dims = -1;
    // forEachBatch disposes each result: copy when the feature extractor returns its input as is
    const feats = (x: Tensor) => tidy(() => noGrad(() => {
      const f = this.featureFn!(x);
      return f === x ? f.mul(1) : f;
    }));
    await forEachBatch('wrap.fit', data.x, data.batchSize ?? 256, feats, async (f) => {
      if (f.rank !== 2) throw new ShapeError(`wrap.fit: features must be [B, F], got ${fmtShape(f.shape)}`);
      dims = f.shape[1];
      parts.push(Float32Array.from(await f.data()));
    });
    const all = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    this.histogram = LatentHistogram.fit(all, dims, { bins: this.options.bins ?? 10 });
    return this;
  }

  /** The [S, B, K] probabilities of the epistemic samples, or [B, K] (no sampling / Dirichlet mean). */
  private distribution(x: Tensor): { probs: Tensor; samples: Tensor | null; alpha: Tensor | null; logits?: Tensor } {
    const ep = this.options.epistemic;
    if (ep === 'ensemble') {
      const s = softmax((this.model as DeepEnsemble).forward(x), -1);
      return { probs: predictiveMean(s), samples: s, alpha: null };
    }
    if (ep === 'mcDropout') {
      const m = this.model as Module;
      const drops = m.modules().filter((d): d is Dropout => d instanceof Dropout);
      const saved = drops.map((d) => d.stochasticAtInference);
      drops.forEach((d) => (d.stochasticAtInference = true));
      try {
        const s = softmax(mcDropoutLogits(m, x, { samples: this.options.samples ?? 20, seed: this.options.seed }), -1);
        return { probs: predictiveMean(s), samples: s, alpha: null };
      } finally {
        drops.forEach((d, i) => (d.stochasticAtInference = saved[i]));
      }
    }
    const out = asModelFn(this.model as ModelLike)(x);
    if (out.rank !== 2) throw new ShapeError(`wrap.predict: the model must output [B, K], got ${fmtShape(out.shape)}`);
    if (ep === 'dirichlet') return { probs: dirichletMean(out), samples: null, alpha: out };
    return { probs: softmax(out, -1), samples: null, alpha: null, logits: out };
  }

  /** The prediction and the requested estimates for a batch [B, ...], from one pass (no gradients). */
  predict(x: Tensor): WrappedPrediction {
    const o = this.options;
    const hist = o.bias === 'histogram' ? requireHistogram('wrap.predict', this.histogram) : null;
    return tidy(() => noGrad(() => {
      const { probs, samples, alpha, logits } = this.distribution(x);
      const r: WrappedPrediction = { prediction: argmax(probs, -1), probs };
      if (o.aleatoric) r.aleatoric = alpha ? dirichletExpectedEntropy(alpha) : samples ? expectedEntropy(samples) : entropyScore(logits!);
      if (o.epistemic) r.epistemic = alpha ? dirichletMutualInformation(alpha) : mutualInformation(samples!);
      if (hist) r.bias = hist.rarityTensor(this.featureFn!(x), o.alpha ?? 0.01);
      return r;
    }));
  }
}

/**
 * Wraps a classifier (logits [B, K]; a Module for MC dropout, a `DeepEnsemble` for 'ensemble',
 * an α-producing model for 'dirichlet') so that `predict(x)` returns the prediction with the bias
 * / aleatoric / epistemic estimates asked for. See {@link Wrapped} and the module comment.
 */
export function wrap(model: WrappableModel, opts: WrapOptions = {}): Wrapped {
  return new Wrapped(model, opts);
}
