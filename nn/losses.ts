/**
 * Loss functions after `torch.nn.functional`: differentiable (built from library ops), numerically
 * stable, with `reduction` 'mean' (default) | 'sum' | 'none'. Each result is one tensor whose
 * intermediates it owns (`composite`), so nothing leaks outside `tidy`.
 */
import {
  ArgumentError, DTypeError, ShapeError, type Tensor,
  abs, add, arange, cast, composite, div, eq, exp, fmtShape, gt, log, logSoftmax, maximum, mean, mul, neg, reshape, softplus, square, sub, sum, where,
} from '../engine/index.js';

export type Reduction = 'mean' | 'sum' | 'none';

function reduce(op: string, x: Tensor, reduction: Reduction): Tensor {
  switch (reduction) {
    case 'mean': return mean(x);
    case 'sum': return sum(x);
    case 'none': return x;
    default: throw new ArgumentError(`${op}: reduction must be 'mean', 'sum' or 'none', got '${reduction as string}'`);
  }
}

function sameShape(op: string, a: Tensor, b: Tensor, an: string, bn: string): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new ShapeError(`${op}: ${an} ${fmtShape(a.shape)} and ${bn} ${fmtShape(b.shape)} must have the same shape`);
  }
}

function floatInput(op: string, t: Tensor, name: string): void {
  if (t.dtype !== 'float32' && t.dtype !== 'float64') throw new DTypeError(`${op}: ${name} must be float, got ${t.dtype} ${fmtShape(t.shape)}`);
}

// ------------------------------------------------------------------------ classification
export interface NllLossOptions {
  /** Per-class weights [C]; 'mean' then divides by Σ weight[target] (PyTorch's weighted mean). */
  weight?: Tensor;
  /** Targets equal to this contribute nothing (and are not counted by 'mean'); default −100. */
  ignoreIndex?: number;
  reduction?: Reduction;
}

/** Checks [N, C] scores against [N] int32 targets and returns the float one-hot mask [N, C]. */
function targetMask(op: string, scores: Tensor, target: Tensor): Tensor {
  if (scores.rank !== 2) throw new ShapeError(`${op}: expected input [N, C], got ${fmtShape(scores.shape)}`);
  if (target.dtype !== 'int32') throw new DTypeError(`${op}: class targets must be int32 (or float probabilities [N, C] for crossEntropy), got ${target.dtype} ${fmtShape(target.shape)}`);
  if (target.rank !== 1 || target.shape[0] !== scores.shape[0]) {
    throw new ShapeError(`${op}: target ${fmtShape(target.shape)} must be [N] = [${scores.shape[0]}] for input ${fmtShape(scores.shape)}`);
  }
  const C = scores.shape[1];
  const classes = arange(0, C, 1, { dtype: 'int32', backend: scores.backend });
  // Out-of-range targets (e.g. ignoreIndex) give an all-zero row.
  return cast(eq(reshape(target, [-1, 1]), reshape(classes, [1, C])), scores.dtype);
}

function checkWeight(op: string, w: Tensor | undefined, C: number): void {
  if (w && (w.rank !== 1 || w.shape[0] !== C)) throw new ShapeError(`${op}: weight ${fmtShape(w.shape)} must be [C] = [${C}]`);
}

/** Σ_i loss_i / Σ_i w[t_i] (PyTorch's weighted mean), from per-sample losses and the one-hot mask. */
function weightedReduce(perSample: Tensor, mask: Tensor, weight: Tensor | undefined, reduction: Reduction, op: string): Tensor {
  if (reduction === 'none' || reduction === 'sum') return reduce(op, perSample, reduction);
  if (reduction !== 'mean') return reduce(op, perSample, reduction);
  const denom = weight ? sum(mul(mask, reshape(weight, [1, -1]))) : sum(mask);
  return div(sum(perSample), denom);
}

/**
 * Negative log-likelihood from log-probabilities [N, C] and int32 class targets [N]:
 * loss_i = −weight[t_i]·logp[i, t_i]; 'mean' = Σ loss_i / Σ weight[t_i] over non-ignored i.
 */
export function nllLoss(logProbs: Tensor, target: Tensor, opts: NllLossOptions = {}): Tensor {
  return composite(() => {
    floatInput('nllLoss', logProbs, 'input');
    const mask = targetMask('nllLoss', logProbs, target);
    checkWeight('nllLoss', opts.weight, logProbs.shape[1]);
    const wm = opts.weight ? mul(mask, reshape(opts.weight, [1, -1])) : mask;
    const perSample = neg(sum(mul(logProbs, wm), 1));
    return weightedReduce(perSample, mask, opts.weight, opts.reduction ?? 'mean', 'nllLoss');
  });
}

export interface CrossEntropyOptions extends NllLossOptions {
  /**
   * ε in [0, 1]: the target becomes (1−ε)·onehot + ε/C (PyTorch's semantics, including how the
   * smoothing term is weighted and normalised when class weights are given).
   */
  labelSmoothing?: number;
}

/**
 * Cross-entropy from logits [N, C] (log-softmax + NLL, stable for large logits). `target` is
 * either int32 class indices [N] (with optional class `weight`, `ignoreIndex` and
 * `labelSmoothing`, as torch.nn.functional.cross_entropy), or float class probabilities [N, C]
 * (soft labels: loss_i = −Σ_c w_c·p_ic·logsoftmax_ic, 'mean' divides by N).
 */
export function crossEntropy(logits: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  return composite(() => {
    floatInput('crossEntropy', logits, 'logits');
    if (logits.rank !== 2) throw new ShapeError(`crossEntropy: expected logits [N, C], got ${fmtShape(logits.shape)}`);
    const C = logits.shape[1];
    checkWeight('crossEntropy', opts.weight, C);
    const eps = opts.labelSmoothing ?? 0;
    if (!(eps >= 0 && eps <= 1)) throw new ArgumentError(`crossEntropy: labelSmoothing must be in [0, 1], got ${eps}`);
    const reduction = opts.reduction ?? 'mean';
    const logp = logSoftmax(logits, 1);
    const w = opts.weight ? reshape(opts.weight, [1, C]) : null;
    if (target.dtype !== 'int32') {
      floatInput('crossEntropy', target, 'probability target');
      sameShape('crossEntropy', logits, target, 'logits', 'probability target');
      let t = target;
      if (eps > 0) t = add(mul(t, 1 - eps), eps / C);
      const perSample = neg(sum(mul(mul(logp, t), w ?? 1), 1));
      return reduce('crossEntropy', perSample, reduction);
    }
    const mask = targetMask('crossEntropy', logits, target);
    const nll = neg(sum(mul(logp, w ? mul(mask, w) : mask), 1));
    const nllRed = weightedReduce(nll, mask, opts.weight, reduction, 'crossEntropy');
    if (eps === 0) return nllRed;
    // Smoothing term: −Σ_c w_c·logp_ic, zero for ignored rows (those have an all-zero mask).
    const valid = sum(mask, 1);
    const smooth = mul(neg(sum(w ? mul(logp, w) : logp, 1)), valid);
    const smoothRed = reduction === 'mean' ? div(sum(smooth), w ? sum(mul(mask, w)) : sum(mask)) : reduce('crossEntropy', smooth, reduction);
    return add(mul(nllRed, 1 - eps), mul(smoothRed, eps / C));
  });
}

export interface BceOptions {
  /** Rescales each element's loss (broadcast to the input). */
  weight?: Tensor;
  reduction?: Reduction;
}

/** log(x) clamped to ≥ −100 as PyTorch's BCE, with finite gradients where x = 0. */
function clampedLog(x: Tensor): Tensor {
  const pos = gt(x, 0);
  return where(pos, maximum(log(where(pos, x, 1)), -100), -100);
}

/**
 * Binary cross-entropy of probabilities p ∈ [0, 1] against targets y (same shape):
 * −w·(y·log p + (1−y)·log(1−p)), each log clamped to ≥ −100 as PyTorch, so p = 0 or 1 stays finite.
 * Prefer {@link bceWithLogits} for numerical stability.
 */
export function binaryCrossEntropy(p: Tensor, y: Tensor, opts: BceOptions = {}): Tensor {
  return composite(() => {
    floatInput('binaryCrossEntropy', p, 'input');
    floatInput('binaryCrossEntropy', y, 'target');
    sameShape('binaryCrossEntropy', p, y, 'input', 'target');
    let l = neg(add(mul(y, clampedLog(p)), mul(sub(1, y), clampedLog(sub(1, p)))));
    if (opts.weight) l = mul(l, opts.weight);
    return reduce('binaryCrossEntropy', l, opts.reduction ?? 'mean');
  });
}

export interface BceWithLogitsOptions extends BceOptions {
  /** Weight of positive examples (broadcast over the last dim, as PyTorch's pos_weight). */
  posWeight?: Tensor;
}

/**
 * Binary cross-entropy on logits x, in the stable form (1−y)·x + (1 + (pw−1)·y)·softplus(−x)
 * (= −[pw·y·log σ(x) + (1−y)·log(1−σ(x))], finite for any |x|).
 */
export function bceWithLogits(x: Tensor, y: Tensor, opts: BceWithLogitsOptions = {}): Tensor {
  return composite(() => {
    floatInput('bceWithLogits', x, 'input');
    floatInput('bceWithLogits', y, 'target');
    sameShape('bceWithLogits', x, y, 'input', 'target');
    const sp = softplus(neg(x));
    const logWeight = opts.posWeight ? add(mul(sub(opts.posWeight, 1), y), 1) : null;
    let l = add(mul(sub(1, y), x), logWeight ? mul(logWeight, sp) : sp);
    if (opts.weight) l = mul(l, opts.weight);
    return reduce('bceWithLogits', l, opts.reduction ?? 'mean');
  });
}

// ------------------------------------------------------------------------ regression
/** (x − y)². */
export function mseLoss(x: Tensor, y: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  return composite(() => {
    floatInput('mseLoss', x, 'input');
    sameShape('mseLoss', x, y, 'input', 'target');
    return reduce('mseLoss', square(sub(x, y)), opts.reduction ?? 'mean');
  });
}

/** |x − y|. */
export function l1Loss(x: Tensor, y: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  return composite(() => {
    floatInput('l1Loss', x, 'input');
    sameShape('l1Loss', x, y, 'input', 'target');
    return reduce('l1Loss', abs(sub(x, y)), opts.reduction ?? 'mean');
  });
}

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/**
 * Heteroscedastic Gaussian negative log-likelihood with a predicted log-variance:
 * ½·logVar + (y − μ)²/(2·exp(logVar)) per element (computed as ½(y−μ)²·exp(−logVar), stable for
 * any logVar). The constant ½·log(2π) is omitted (it changes no gradient); pass `full: true` to
 * add it. Note PyTorch's GaussianNLLLoss takes the variance, not its log.
 */
export function gaussianNllLoss(mu: Tensor, logVar: Tensor, target: Tensor, opts: { reduction?: Reduction; full?: boolean } = {}): Tensor {
  return composite(() => {
    floatInput('gaussianNllLoss', mu, 'mean');
    floatInput('gaussianNllLoss', logVar, 'logVar');
    sameShape('gaussianNllLoss', mu, target, 'mean', 'target');
    sameShape('gaussianNllLoss', mu, logVar, 'mean', 'logVar');
    let l = mul(add(logVar, mul(square(sub(target, mu)), exp(neg(logVar)))), 0.5);
    if (opts.full) l = add(l, HALF_LOG_2PI);
    return reduce('gaussianNllLoss', l, opts.reduction ?? 'mean');
  });
}

/** Sums the last (latent) axis, then applies `reduction` over the remaining (batch) axes. */
function latentReduce(op: string, perDim: Tensor, reduction: Reduction): Tensor {
  const perSample = sum(perDim, -1);
  return reduce(op, perSample, reduction);
}

/**
 * KL(N(μ, diag exp(logVar)) ‖ N(0, I)) = −½ Σ_j (1 + logVar_j − μ_j² − exp(logVar_j)) (the VAE
 * term), summed over the last axis (latent dims); `reduction` then acts over the batch:
 * 'mean' (default) averages per-sample KLs, 'sum' adds them, 'none' returns them.
 */
export function klDivDiagonalGaussians(mu: Tensor, logVar: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  return composite(() => {
    floatInput('klDivDiagonalGaussians', mu, 'mu');
    sameShape('klDivDiagonalGaussians', mu, logVar, 'mu', 'logVar');
    if (mu.rank < 1) throw new ShapeError(`klDivDiagonalGaussians: expected [..., D], got ${fmtShape(mu.shape)}`);
    const perDim = mul(sub(add(logVar, 1), add(square(mu), exp(logVar))), -0.5);
    return latentReduce('klDivDiagonalGaussians', perDim, opts.reduction ?? 'mean');
  });
}

/**
 * KL(N(μ₁, diag e^{logVar₁}) ‖ N(μ₂, diag e^{logVar₂})) =
 * ½ Σ_j (logVar₂ − logVar₁ + (e^{logVar₁} + (μ₁−μ₂)²)·e^{−logVar₂} − 1), summed over the last
 * axis; `reduction` over the batch as {@link klDivDiagonalGaussians}.
 */
export function klDivBetweenDiagonalGaussians(
  mu1: Tensor, logVar1: Tensor, mu2: Tensor, logVar2: Tensor, opts: { reduction?: Reduction } = {},
): Tensor {
  return composite(() => {
    const op = 'klDivBetweenDiagonalGaussians';
    floatInput(op, mu1, 'mu1');
    sameShape(op, mu1, logVar1, 'mu1', 'logVar1');
    sameShape(op, mu1, mu2, 'mu1', 'mu2');
    sameShape(op, mu1, logVar2, 'mu1', 'logVar2');
    if (mu1.rank < 1) throw new ShapeError(`${op}: expected [..., D], got ${fmtShape(mu1.shape)}`);
    const ratio = mul(add(exp(logVar1), square(sub(mu1, mu2))), exp(neg(logVar2)));
    const perDim = mul(sub(add(sub(logVar2, logVar1), ratio), 1), 0.5);
    return latentReduce(op, perDim, opts.reduction ?? 'mean');
  });
}
