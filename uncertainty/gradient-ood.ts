/**
 * Gradient-based OOD detection: gradients of a loss against a label the network never saw,
 * taken at inference (no update), as evidence of how far an input is from what was learned.
 *
 * **Confounding-label features** (Lee & AlRegib 2020; Lee, Lehman, Prabhushankar & AlRegib,
 * "Probing the purview of neural networks via gradient analysis", IEEE Access 2023). Per sample,
 * the loss against the all-ones label,
 *
 *   L(x) = Σ_k BCE(p_k, 1) = −Σ_k log p_k ,
 *
 * with p = softmax(z) (default; then ∂L/∂z_k = K·p_k − 1) or p = sigmoid(z) (`confounding:
 * 'sigmoid'`, ∂L/∂z_k = σ(z_k) − 1). The features are the squared L2 norms of ∂L/∂θ_l for every
 * parameter tensor θ_l, a vector [B, L] from ONE batched backward ({@link perSampleGradNorms}).
 * Sign: with softmax, a confident prediction (p near one-hot) gives ‖∂L/∂z‖² ≈ K(K−1), a uniform
 * one gives 0, so confident in-distribution inputs get LARGER norms.
 *
 * Detectors (higher = more OOD):
 * - {@link gradientNormDetector}: the scalar baseline, score = −Σ_l ‖∂L/∂θ_l‖² (the negated
 *   in-distribution confidence; no affine shift).
 * - {@link GradientStage2Detector}: the paper's five steps — (1) a trained network f, (2) challenge
 *   data (by default Gaussian-noise images; pass adversarial examples too), (3) gradient features
 *   of in-distribution and challenge data, (4) an MLP H trained to tell them apart on
 *   log(norms), (5) score = H's logit of "challenge" minus its logit of "in-distribution".
 *   The gradients eval (examples/eval-gradients.ts, `challengeSet`) trains H with
 *   `confounding: 'sigmoid'` on noise plus FGSM / BIM / PGD / least-likely attacks of TRAINING
 *   images (ε drawn per batch from [0.05, 0.15]); docs/methods.md gives the protocol.
 * - {@link gradNormDetector}: GradNorm (Huang, Geng & Li 2021), score = −‖∂ KL(u ‖ softmax(z/T)) /
 *   ∂W_last‖₁ with u uniform (in-distribution inputs get larger norms, so the score negates it).
 */
import {
  ArgumentError,
  ShapeError,
  type Tensor,
  abs,
  composite,
  fmtShape,
  log,
  logSoftmax,
  logsumexp,
  matmul,
  mean,
  mul,
  normal,
  softplus,
  sum,
  tidy,
  variance,
  concat,
  slice,
  sqrt,
} from '../engine/index.js';
import { NotFittedError } from './errors.js';
import { Module } from '../nn/module.js';
import { Linear } from '../nn/layers/linear.js';
import { type PerSampleOptions, perSampleGradNorms, perSampleGradUnitNorms, withLayerGradients } from '../nn/per-sample-grads.js';
import { type Detector, type DetectorInput, type FitData, forEachBatch } from './detector.js';
import { type Stage2Options, Stage2Classifier } from './stage2.js';

export type ConfoundingActivation = 'softmax' | 'sigmoid';

/**
 * The confounding-label loss per sample, [B]: Σ_k BCE(p_k, 1) = −Σ_k log p_k for logits [B, K],
 * with p = softmax(z) (= K·logsumexp(z) − Σ_k z_k) or p = sigmoid(z) (= Σ_k softplus(−z_k)).
 */
export function confoundingLoss(logits: Tensor, activation: ConfoundingActivation = 'softmax'): Tensor {
  if (logits.rank !== 2) throw new ShapeError(`confoundingLoss: expected logits [B, K], got ${fmtShape(logits.shape)}`);
  if (activation !== 'softmax' && activation !== 'sigmoid') throw new ArgumentError(`confoundingLoss: activation must be 'softmax' or 'sigmoid', got '${activation as string}'`);
  return composite(() => {
    if (activation === 'sigmoid') return sum(softplus(logits.neg()), 1);
    const K = logits.shape[1];
    return logsumexp(logits, 1).mul(K).sub(sum(logits, 1));
  });
}

export interface GradientFeatureOptions extends PerSampleOptions {
  /** p = softmax(z) (default) or sigmoid(z) in the confounding loss. */
  confounding?: ConfoundingActivation;
  /**
   * 'tensor' (default, the paper's features): one squared norm per parameter tensor, [B, L].
   * 'unit' (a dubito extension): one squared norm per slice along each parameter's first axis —
   * per output unit of a Linear, per output channel of a Conv2d, per bias element
   * ({@link perSampleGradUnitNorms}), [B, U]; a parameter's unit norms sum to its tensor norm.
   */
  granularity?: 'tensor' | 'unit';
}

/**
 * Per-layer squared gradient norms of the confounding-label loss, [B, L] (columns = parameter
 * tensors, see `names`), from one batched forward and backward. Larger = more confident (see the
 * module comment). `model` must be a Module in eval mode if it has BatchNorm.
 */
export function gradientFeatures(model: Module, x: Tensor, opts: GradientFeatureOptions = {}): { names: string[]; norms: Tensor } {
  const act = opts.confounding ?? 'softmax';
  const g = opts.granularity ?? 'tensor';
  if (g !== 'tensor' && g !== 'unit') throw new ArgumentError(`gradientFeatures: granularity must be 'tensor' or 'unit', got '${g as string}'`);
  const loss = (out: Tensor) => confoundingLoss(out, act);
  if (g === 'unit') {
    const r = perSampleGradUnitNorms(model, loss, x, undefined, opts);
    const names = r.names.flatMap((n, i) => Array.from({ length: r.offsets[i + 1] - r.offsets[i] }, (_, j) => `${n}[${j}]`));
    return { names, norms: r.norms };
  }
  const r = perSampleGradNorms(model, loss, x, undefined, opts);
  return { names: r.names, norms: r.norms };
}

export interface GradientDetectorOptions extends GradientFeatureOptions {
  name?: string;
}

function checkModule(what: string, model: unknown): asserts model is Module {
  if (!(model instanceof Module)) throw new ArgumentError(`${what}: the model must be a Module (its Linear / Conv2d layers are hooked for per-sample gradients)`);
}

/**
 * The scalar gradient baseline (Lee & AlRegib): score = −Σ_l ‖∂L/∂θ_l‖², L the confounding-label
 * loss. Higher = more OOD (in-distribution inputs have larger norms).
 */
export function gradientNormDetector(model: Module, opts: GradientDetectorOptions = {}): Detector {
  checkModule('gradientNormDetector', model);
  return {
    name: opts.name ?? 'Gradient norm (sum)',
    score(x: Tensor): Tensor {
      return tidy(() => sum(gradientFeatures(model, x, opts).norms, 1).neg());
    },
  };
}

/** Data for {@link GradientStage2Detector.fit}: in-distribution inputs and optional challenge inputs. */
export interface GradientFitData extends FitData {
  /**
   * Challenge inputs (noisy, adversarial, ... — never the OOD set used for testing). Default:
   * Gaussian-noise images, one per in-distribution row, with each batch's mean and standard
   * deviation.
   */
  challenge?: DetectorInput;
}

export interface GradientStage2Options extends GradientDetectorOptions {
  /** The MLP H (hidden units, epochs, learning rate, ...). */
  stage2?: Stage2Options;
  /** Rows per batch for feature extraction (default 128). */
  batchSize?: number;
  /** Seed of the default Gaussian-noise challenge images (default 0). */
  noiseSeed?: number;
}

/** log(norm + 1e-12): the stage-2 input (norms span many orders of magnitude). */
const logFeatures = (n: Tensor) => log(n.add(1e-12));

/**
 * The stage-2 gradient detector H of Lee et al. (2023): an MLP on the log per-layer squared
 * gradient norms of the confounding-label loss, trained on in-distribution (class 0) vs
 * challenge (class 1) features. score(x) = logit_challenge − logit_in of H, higher = more OOD.
 * `score` before `fit` throws NotFittedError.
 */
export class GradientStage2Detector implements Detector {
  readonly name: string;
  readonly h: Stage2Classifier;

  constructor(private readonly model: Module, private readonly opts: GradientStage2Options = {}) {
    checkModule('GradientStage2Detector', model);
    this.name = opts.name ?? 'Gradient stage-2 H';
    this.h = new Stage2Classifier({ hidden: 32, epochs: 60, lr: 3e-3, ...opts.stage2 });
  }

  private features(x: Tensor): Tensor {
    return tidy(() => logFeatures(gradientFeatures(this.model, x, this.opts).norms));
  }

  async fit(data: GradientFitData): Promise<this> {
    const bs = data.batchSize ?? this.opts.batchSize ?? 128;
    const inF: Tensor[] = [];
    const chF: Tensor[] = [];
    try {
      let k = 0;
      await forEachBatch(`${this.name}: fit`, data.x, bs, (x) => this.features(x), async (f, x) => {
        inF.push(f.detach());
        if (!data.challenge) {
          const noise = tidy(() => {
            const m = mean(x);
            const sd = sqrt(variance(x));
            return normal(x.shape, { seed: (this.opts.noiseSeed ?? 0) + 7919 * k++, backend: x.backend }).mul(sd).add(m);
          });
          try { chF.push(this.features(noise)); } finally { noise.dispose(); }
        }
      });
      if (data.challenge) await forEachBatch(`${this.name}: fit (challenge)`, data.challenge, bs, (x) => this.features(x), (f) => { chF.push(f.detach()); });
      if (!chF.length) throw new ArgumentError(`${this.name}: fit: the challenge data is empty`);
      const feats = concat([...inF, ...chF], 0);
      const nIn = inF.reduce((s, t) => s + t.shape[0], 0);
      const nCh = chF.reduce((s, t) => s + t.shape[0], 0);
      const labels = new Int32Array(nIn + nCh).fill(1, nIn);
      try {
        await this.h.fit(feats, labels, 2);
      } finally {
        feats.dispose();
      }
    } finally {
      for (const t of [...inF, ...chF]) t.dispose();
    }
    return this;
  }

  score(x: Tensor): Tensor {
    if (!this.h.isFitted) throw new NotFittedError(`${this.name}: not fitted; call fit({ x: inDistribution, challenge? }) first`);
    const f = this.features(x);
    try {
      return tidy(() => {
        const z = this.h.logits(f);
        const B = x.shape[0];
        return slice(z, [0, 1], [B, 1]).sub(slice(z, [0, 0], [B, 1])).reshape([B]);
      });
    } finally {
      f.dispose();
    }
  }
}

export interface GradNormOptions {
  /** Softmax temperature T (default 1). */
  temperature?: number;
  /** Dotted name of the last layer (a Linear); default: the last Linear of the model. */
  layer?: string;
  name?: string;
}

/**
 * GradNorm (Huang, Geng & Li, NeurIPS 2021): S(x) = ‖∂ KL(u ‖ softmax(z/T)) / ∂W‖₁ for the last
 * Linear layer's weight W, u the uniform distribution. For one input row a and output-gradient
 * δ = (softmax(z/T) − u)/T, ∂/∂W = δ aᵀ and its L1 norm is ‖δ‖₁·‖a‖₁ (computed batched, no
 * [B, out, in]). In-distribution inputs get LARGER norms: score = −S(x), higher = more OOD.
 */
export function gradNormScore(model: Module, x: Tensor, opts: GradNormOptions = {}): Tensor {
  checkModule('gradNormScore', model);
  const T = opts.temperature ?? 1;
  if (!(T > 0)) throw new ArgumentError(`gradNormScore: temperature must be > 0, got ${T}`);
  let layer = opts.layer;
  if (layer === undefined) {
    const lins = model.namedModules().filter(([, m]) => m instanceof Linear);
    if (!lins.length) throw new ArgumentError('gradNormScore: the model has no Linear layer; pass { layer }');
    layer = lins[lins.length - 1][0];
  }
  const lossFn = (out: Tensor) => {
    if (out.rank !== 2) throw new ShapeError(`gradNormScore: expected logits [B, K], got ${fmtShape(out.shape)}`);
    const K = out.shape[1];
    // KL(u ‖ q) = −(1/K) Σ_k log q_k − log K, q = softmax(z/T).
    return sum(logSoftmax(out.div(T), 1), 1).mul(-1 / K).sub(Math.log(K));
  };
  return withLayerGradients(model, lossFn, x, undefined, { params: [`${layer}.weight`] }, ([l]) => tidy(() => {
    const B = x.shape[0];
    const lin = l.module as Linear;
    const A = l.input.reshape([B, -1, lin.inFeatures]);
    const D = l.outputGrad.reshape([B, -1, lin.outFeatures]);
    const s = A.shape[1] === 1
      ? mul(sum(abs(D), [1, 2]), sum(abs(A), [1, 2]))
      : sum(abs(matmul(D, A, { transposeA: true })), [1, 2]);
    return s.neg();
  }), 'gradNormScore');
}

/** {@link gradNormScore} as a Detector (higher = more OOD). */
export function gradNormDetector(model: Module, opts: GradNormOptions = {}): Detector {
  checkModule('gradNormDetector', model);
  return { name: opts.name ?? 'GradNorm', score: (x) => gradNormScore(model, x, opts) };
}
