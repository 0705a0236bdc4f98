/**
 * Detector adapters: every uncertainty / OOD method of the library behind the one
 * {@link Detector} protocol (`score(x)` → [B], HIGHER = MORE UNCERTAIN / MORE LIKELY OOD). Each
 * adapter wraps the score function of the same name — it computes exactly what that function
 * computes — so the functions stay the reference and the adapters add only the uniform shape.
 *
 * | adapter | score (higher = more OOD) | wraps |
 * |---|---|---|
 * | `mspDetector(model)` | −max_k softmax(z)_k (Hendrycks & Gimpel 2017) | `mspScore` |
 * | `maxLogitDetector(model)` | −max_k z_k (Hendrycks et al. 2022) | `maxLogitScore` |
 * | `entropyDetector(model)` | H[softmax(z)] | `entropyScore` |
 * | `energyDetector(model, { temperature })` | −T·logsumexp(z/T) (Liu et al. 2020) | `energyScore` |
 * | `odinDetector(model, { temperature, epsilon })` | −max softmax(z(x̃)/T) (Liang et al. 2018) | `odinScore` |
 * | `new MahalanobisDetector({ features })` | min_c (f−μ_c)ᵀΣ⁻¹(f−μ_c) (Lee et al. 2018) | itself (mahalanobis.ts) |
 * | `mcDropoutDetector(model, { measure, samples })` | H[p̄], BALD MI, variation ratio over T dropout passes (Gal & Ghahramani 2016) | `mcDropoutLogits` + `predictiveEntropy` / `mutualInformation` / `variationRatio` |
 * | `ensembleDetector(ensemble, { measure })` | the same three over M members, or the mean member energy (Lakshminarayanan et al. 2017) | `DeepEnsemble.forward` + the same, `meanEnergyScore` |
 * | `dirichletDetector(model, { measure })` | vacuity K/α₀, −α₀, Dirichlet MI, expected entropy, predictive entropy, differential entropy, −max_k α_k/α₀ (Sensoy et al. 2018; Malinin & Gales 2018) | `vacuity`, `dirichlet…` |
 *
 * `model` is anything that maps a batch to outputs: a function or a module with `forward`. For
 * the logit adapters it may be omitted, and the inputs are then the logits themselves. Scores
 * are computed with the library's own ops (`composite`: intermediates are freed, and the
 * result is differentiable where the method is); run them under `noGrad` (as `evaluateDetectors`
 * and `guard` do) when no gradient is wanted.
 */
import {
  argmax, ArgumentError, composite, exp, fmtShape, noGrad, ShapeError, softmax, type Tensor, tidy, where,
} from '../engine/index.js';
import { type Module } from '../nn/module.js';
import { Dropout } from '../nn/layers/dropout.js';
import { type Detector, type ModelLike, type ScoredBatch, asModelFn } from './detector.js';
import {
  dirichletDifferentialEntropy, dirichletExpectedEntropy, dirichletMaxProbabilityScore, dirichletMutualInformation, dirichletPrecisionScore, dirichletPredictiveEntropy,
  energyScore, entropyScore, maxLogitScore, meanEnergyScore, mspScore, mutualInformation, predictiveEntropy, predictiveMean, variationRatio, vacuity,
} from './scores.js';
import { type OdinOptions, odinScore } from './odin.js';
import { type McDropoutOptions, mcDropoutLogits } from './sampling.js';
import type { DeepEnsemble } from './ensemble.js';
import { checkConcentrations } from './dirichlet.js';

const identity = (x: Tensor): Tensor => x;

/** Options every adapter takes. */
export interface DetectorOptions {
  /** Overrides the default name (the row label in `evaluateDetectors`). */
  name?: string;
}

/**
 * A detector that applies a score rule to the output of a model: score(x) = rule(model(x)),
 * prediction = argmax of the output (or `predictFromOutput`). The building block of the logit
 * and Dirichlet adapters; also the way to wrap your own `Tensor → Tensor` score function.
 */
export class OutputDetector implements Detector {
  private readonly model: (x: Tensor) => Tensor;

  constructor(
    readonly name: string,
    private readonly rule: (output: Tensor) => Tensor,
    model?: ModelLike,
    private readonly predictFromOutput: (output: Tensor) => Tensor = (z) => argmax(z, -1),
  ) {
    this.model = model === undefined ? identity : asModelFn(model);
  }

  /** The score rule applied to an output you already have (e.g. cached logits). */
  scoreOutput(output: Tensor): Tensor {
    return this.rule(output);
  }

  score(x: Tensor): Tensor {
    return composite(() => this.rule(this.model(x)));
  }

  predict(x: Tensor): ScoredBatch {
    return tidy(() => noGrad(() => {
      const out = this.model(x);
      return { prediction: this.predictFromOutput(out), score: this.rule(out) };
    }));
  }
}

/**
 * MSP (Hendrycks & Gimpel 2017): score = −max_k softmax(z)_k ∈ [−1, −1/K], z = model(x).
 * Higher = more OOD. Wraps {@link mspScore}.
 */
export function mspDetector(model?: ModelLike, opts: DetectorOptions = {}): OutputDetector {
  return new OutputDetector(opts.name ?? 'MSP', mspScore, model);
}

/** Max-logit (Hendrycks et al. 2022): score = −max_k z_k. Higher = more OOD. Wraps {@link maxLogitScore}. */
export function maxLogitDetector(model?: ModelLike, opts: DetectorOptions = {}): OutputDetector {
  return new OutputDetector(opts.name ?? 'max-logit', maxLogitScore, model);
}

/** Softmax entropy: score = H[softmax(z)] = −Σ_k p_k ln p_k ∈ [0, ln K]. Higher = more uncertain. Wraps {@link entropyScore}. */
export function entropyDetector(model?: ModelLike, opts: DetectorOptions = {}): OutputDetector {
  return new OutputDetector(opts.name ?? 'entropy', entropyScore, model);
}

export interface EnergyDetectorOptions extends DetectorOptions {
  /** Temperature T > 0 (default 1). */
  temperature?: number;
}

/**
 * Energy (Liu et al. 2020): score = E(z; T) = −T·logsumexp(z/T), the free energy; higher = more
 * OOD (the paper's in-distribution score is −E). Wraps {@link energyScore}.
 */
export function energyDetector(model?: ModelLike, opts: EnergyDetectorOptions = {}): OutputDetector {
  const t = opts.temperature ?? 1;
  if (!(t > 0) || !Number.isFinite(t)) throw new ArgumentError(`energyDetector: temperature must be a finite positive number, got ${t}`);
  return new OutputDetector(opts.name ?? `energy (T=${t})`, (z) => energyScore(z, t), model);
}

export interface OdinDetectorOptions extends OdinOptions, DetectorOptions {}

/**
 * ODIN (Liang, Li & Srikant 2018): one input-gradient step x̃ = x − ε·sign(−∇ₓ log softmax_ŷ(z/T))
 * then score = −max_k softmax(z(x̃)/T)_k; higher = more OOD. Wraps {@link odinScore} (T and ε as
 * there: defaults 1000 and 0.0014; tune them on validation data). The model must be in eval
 * mode. The gradient step runs inside `score` (synchronously, like every engine op).
 */
export class OdinDetector implements Detector {
  readonly name: string;
  private readonly model: (x: Tensor) => Tensor;

  constructor(model: ModelLike, readonly options: OdinOptions = {}, name?: string) {
    this.model = asModelFn(model);
    const T = options.temperature ?? 1000;
    const eps = options.epsilon ?? 0.0014;
    this.name = name ?? `ODIN (T=${T}, ε=${eps})`;
  }

  score(x: Tensor): Tensor {
    return odinScore(this.model, x, this.options);
  }

  /** The prediction is the argmax of the UNPERTURBED logits (what the classifier answers). */
  predict(x: Tensor): ScoredBatch {
    const prediction = tidy(() => noGrad(() => argmax(this.model(x), -1)));
    return { prediction, score: this.score(x) };
  }
}

/** ODIN as a detector; see {@link OdinDetector}. */
export function odinDetector(model: ModelLike, opts: OdinDetectorOptions = {}): OdinDetector {
  const { name, ...odin } = opts;
  return new OdinDetector(model, odin, name);
}

/** The uncertainty measures over T stochastic passes or M ensemble members. */
export type SampledMeasure = 'predictiveEntropy' | 'mutualInformation' | 'variationRatio';

const SAMPLED: Record<SampledMeasure, { fn: (p: Tensor) => Tensor; label: string }> = {
  predictiveEntropy: { fn: predictiveEntropy, label: 'predictive entropy' },
  mutualInformation: { fn: mutualInformation, label: 'mutual information' },
  variationRatio: { fn: variationRatio, label: 'variation ratio' },
};

function sampledMeasure(what: string, m: string): { fn: (p: Tensor) => Tensor; label: string } {
  const r = (SAMPLED as Record<string, { fn: (p: Tensor) => Tensor; label: string } | undefined>)[m];
  if (!r) throw new ArgumentError(`${what}: unknown measure '${m}'; expected one of ${Object.keys(SAMPLED).join(', ')}`);
  return r;
}

export interface McDropoutDetectorOptions extends McDropoutOptions, DetectorOptions {
  /** Which uncertainty of the T passes is the score (default 'predictiveEntropy'). */
  measure?: SampledMeasure;
  /**
   * A deterministic trunk run ONCE before the stochastic part: score(x) = MC(model)(trunk(x)).
   * Use it when every dropout layer sits in a head (e.g. LeNet5: trunk = penultimate, model =
   * Sequential(dropout, last Linear)), so the trunk is not recomputed T times. Default: none.
   */
  trunk?: ModelLike;
}

/**
 * MC dropout (Gal & Ghahramani 2016): T stochastic passes (one batched forward, see `mcDropout`),
 * probabilities P [T, B, K] = softmax of the logits, and the score is one of
 * - 'predictiveEntropy': H[p̄] = −Σ_k p̄_k ln p̄_k (total uncertainty),
 * - 'mutualInformation': BALD, H[p̄] − (1/T) Σ_t H[p_t] (epistemic; Houlsby et al. 2011),
 * - 'variationRatio': 1 − f_{c*}/T (Freeman 1965),
 * all higher = more uncertain. The adapter switches the model's Dropout layers to
 * stochastic-at-inference for the duration of `score` and restores them, so the model can stay
 * in plain eval mode. With a fixed `seed`, every call uses the same stream (the score of a batch is
 * a deterministic function of the batch); without one, each call draws a fresh stream from the
 * global generator (`manualSeed` makes that reproducible).
 */
export class McDropoutDetector implements Detector {
  readonly name: string;
  private readonly measureFn: (p: Tensor) => Tensor;
  private readonly trunk: ((x: Tensor) => Tensor) | null;

  constructor(readonly model: Module, readonly options: McDropoutDetectorOptions) {
    const m = sampledMeasure('mcDropoutDetector', options.measure ?? 'predictiveEntropy');
    this.measureFn = m.fn;
    this.name = options.name ?? `MC ${m.label}`;
    this.trunk = options.trunk ? asModelFn(options.trunk) : null;
    if (!model.modules().some((d) => d instanceof Dropout && d.p > 0)) {
      throw new ArgumentError('mcDropoutDetector: the model has no Dropout layer with p > 0');
    }
  }

  /** Softmax probabilities of the T passes, [T, B, K]. */
  private probs(x: Tensor): Tensor {
    const drops = this.model.modules().filter((d): d is Dropout => d instanceof Dropout);
    const saved = drops.map((d) => d.stochasticAtInference);
    drops.forEach((d) => (d.stochasticAtInference = true));
    try {
      return composite(() => {
        const h = this.trunk ? this.trunk(x) : x;
        const { samples, seed, maxRowsPerPass } = this.options;
        return softmax(mcDropoutLogits(this.model, h, { samples, seed, maxRowsPerPass }), -1);
      });
    } finally {
      drops.forEach((d, i) => (d.stochasticAtInference = saved[i]));
    }
  }

  score(x: Tensor): Tensor {
    return composite(() => this.measureFn(this.probs(x)));
  }

  /** Prediction = argmax of the predictive mean p̄. */
  predict(x: Tensor): ScoredBatch {
    return tidy(() => noGrad(() => {
      const p = this.probs(x);
      return { prediction: argmax(predictiveMean(p), -1), score: this.measureFn(p) };
    }));
  }
}

/** MC dropout as a detector; see {@link McDropoutDetector}. */
export function mcDropoutDetector(model: Module, opts: McDropoutDetectorOptions): McDropoutDetector {
  return new McDropoutDetector(model, opts);
}

/** The ensemble measures: the three sampled ones, or the mean member energy. */
export type EnsembleMeasure = SampledMeasure | 'meanEnergy';

export interface EnsembleDetectorOptions extends DetectorOptions {
  /** Which uncertainty of the M members is the score (default 'predictiveEntropy'). */
  measure?: EnsembleMeasure;
  /** Temperature of 'meanEnergy' (default 1). */
  temperature?: number;
}

/**
 * Deep ensemble (Lakshminarayanan et al. 2017), all M members in one stacked pass
 * (`DeepEnsemble.forward`: logits [M, B, K]); the score is the predictive entropy, the mutual
 * information or the variation ratio of the members' softmax outputs (as for MC dropout), or
 * 'meanEnergy': (1/M) Σ_m −T·logsumexp(z_m/T) ({@link meanEnergyScore}). Higher = more OOD.
 */
export class EnsembleDetector implements Detector {
  readonly name: string;
  private readonly rule: (logits: Tensor) => Tensor;

  constructor(readonly ensemble: DeepEnsemble, opts: EnsembleDetectorOptions = {}) {
    const measure = opts.measure ?? 'predictiveEntropy';
    if (measure === 'meanEnergy') {
      const t = opts.temperature ?? 1;
      if (!(t > 0) || !Number.isFinite(t)) throw new ArgumentError(`ensembleDetector: temperature must be a finite positive number, got ${t}`);
      this.rule = (z) => meanEnergyScore(z, t);
      this.name = opts.name ?? (t === 1 ? 'ensemble mean energy' : `ensemble mean energy (T=${t})`);
    } else {
      const m = sampledMeasure('ensembleDetector', measure);
      this.rule = (z) => composite(() => m.fn(softmax(z, -1)));
      this.name = opts.name ?? `ensemble ${m.label}`;
    }
  }

  private logits(x: Tensor): Tensor {
    const z = this.ensemble.forward(x);
    if (z.rank !== 3) {
      z.dispose();
      throw new ShapeError(`ensembleDetector: the members must output logits [B, K] (stacked [M, B, K]), got ${fmtShape(z.shape)}`);
    }
    return z;
  }

  score(x: Tensor): Tensor {
    return composite(() => this.rule(this.logits(x)));
  }

  /** Prediction = argmax of the mean member probability. */
  predict(x: Tensor): ScoredBatch {
    return tidy(() => noGrad(() => {
      const z = this.logits(x);
      return { prediction: argmax(predictiveMean(softmax(z, -1)), -1), score: this.rule(z) };
    }));
  }
}

/** A deep ensemble as a detector; see {@link EnsembleDetector}. */
export function ensembleDetector(ensemble: DeepEnsemble, opts: EnsembleDetectorOptions = {}): EnsembleDetector {
  return new EnsembleDetector(ensemble, opts);
}

/** The Dirichlet uncertainty measures (all higher = more uncertain). */
export type DirichletMeasure = 'vacuity' | 'precision' | 'mutualInformation' | 'expectedEntropy' | 'predictiveEntropy' | 'differentialEntropy' | 'maxProbability';

const DIRICHLET: Record<DirichletMeasure, { fn: (a: Tensor) => Tensor; label: string }> = {
  vacuity: { fn: vacuity, label: 'vacuity' },
  precision: { fn: dirichletPrecisionScore, label: '−α₀' },
  mutualInformation: { fn: dirichletMutualInformation, label: 'mutual information' },
  expectedEntropy: { fn: dirichletExpectedEntropy, label: 'expected entropy' },
  predictiveEntropy: { fn: dirichletPredictiveEntropy, label: 'predictive entropy' },
  differentialEntropy: { fn: dirichletDifferentialEntropy, label: 'differential entropy' },
  maxProbability: { fn: dirichletMaxProbabilityScore, label: 'MSP of the mean' },
};

export interface DirichletDetectorOptions extends DetectorOptions {
  /** Which Dirichlet uncertainty is the score (default 'mutualInformation'). */
  measure?: DirichletMeasure;
  /**
   * How the model's output becomes the concentrations α [B, K] (α > 0): 'alpha' — the output IS
   * α (default); 'exp' — α = exp(z), the prior-network parameterisation (Malinin & Gales 2018);
   * or a function (e.g. evidential: `(z) => relu(z).add(1)`, Sensoy et al. 2018).
   */
  concentration?: 'alpha' | 'exp' | ((output: Tensor) => Tensor);
}

/**
 * A Dirichlet output (prior network, evidential network) as a detector: α = concentration(model(x)),
 * α₀ = Σ_k α_k, and the score is one of
 * - 'vacuity': K/α₀ (Sensoy et al. 2018) — {@link vacuity},
 * - 'precision': −α₀ — {@link dirichletPrecisionScore},
 * - 'mutualInformation': H[E p] − E[H[p]] (distributional uncertainty, Malinin & Gales 2018) — {@link dirichletMutualInformation},
 * - 'expectedEntropy': E[H[p]] = ψ(α₀+1) − Σ_k (α_k/α₀) ψ(α_k+1) — {@link dirichletExpectedEntropy},
 * - 'predictiveEntropy': H[α/α₀] — {@link dirichletPredictiveEntropy},
 * - 'differentialEntropy': H[Dir(α)] — {@link dirichletDifferentialEntropy},
 * - 'maxProbability': −max_k α_k/α₀, the MSP of the mean p = α/α₀ — {@link dirichletMaxProbabilityScore},
 * all higher = more uncertain. Prediction = argmax α.
 *
 * α must be positive: on the CPU backend a row with a non-positive (or NaN) concentration throws
 * an ArgumentError naming the detector and the row; on WebGPU, where checking would cost a
 * readback per batch, that row's score is NaN instead (never a silently wrong number).
 */
export function dirichletDetector(model?: ModelLike, opts: DirichletDetectorOptions = {}): OutputDetector {
  const measure = opts.measure ?? 'mutualInformation';
  const m = (DIRICHLET as Record<string, { fn: (a: Tensor) => Tensor; label: string } | undefined>)[measure];
  if (!m) throw new ArgumentError(`dirichletDetector: unknown measure '${measure}'; expected one of ${Object.keys(DIRICHLET).join(', ')}`);
  const c = opts.concentration ?? 'alpha';
  const toAlpha = c === 'alpha' ? identity : c === 'exp' ? (z: Tensor) => exp(z) : c;
  if (typeof toAlpha !== 'function') throw new ArgumentError(`dirichletDetector: concentration must be 'alpha', 'exp' or a function, got ${String(c)}`);
  const name = opts.name ?? `Dirichlet ${m.label}`;
  const rule = (out: Tensor) => composite(() => {
    const alpha = toAlpha(out);
    const bad = checkConcentrations(`dirichletDetector (${name})`, alpha);
    const s = m.fn(alpha);
    return bad ? where(bad, NaN, s) : s;
  });
  return new OutputDetector(name, rule, model);
}
