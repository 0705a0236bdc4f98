/**
 * Loss functions after `torch.nn.functional`: differentiable (built from library ops), numerically
 * stable, with `reduction` 'mean' (default) | 'sum' | 'none'. Each result is one tensor whose
 * intermediates it owns (`composite`), so nothing leaks outside `tidy`.
 */
import {
  ArgumentError, DTypeError, ShapeError, type Tensor,
  abs, add, arange, cast, composite, detach, div, eq, exp, fmtShape, gt, log, logSoftmax, lt, maximum, mean, mul, ne, neg, reshape, scalarLike, softplus, square, sub, sum, unsqueeze, where,
} from '../engine/index.js';
import { checkIndices, hostValuesOf } from './labels.js';

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
  /**
   * Targets equal to this contribute nothing (and are not counted by 'mean'); default −100. As in
   * PyTorch it may also be a valid class index (that class is then ignored).
   */
  ignoreIndex?: number;
  reduction?: Reduction;
}

/** [1, C, 1, ..., 1] for a rank-`rank` tensor with classes in dim 1. */
const classShape = (C: number, rank: number): number[] => Array.from({ length: rank }, (_, d) => (d === 1 ? C : 1));

/** scores.shape without dim 1: the shape of the per-position losses and of int targets. */
const withoutClassDim = (shape: readonly number[]): number[] => shape.filter((_, d) => d !== 1);

interface ClassMask {
  /** Float one-hot of the targets over dim 1, shaped like the scores (all-zero where ignored). */
  mask: Tensor;
}

/**
 * Checks scores [N, C, d1, ...] against int32 class targets [N, d1, ...] and returns the one-hot
 * mask. Out-of-range targets (other than ignoreIndex) throw an IndexError when the target's values
 * are known on the host (CPU backend, or a DataLoader batch on any backend), else at the next read
 * of the WebGPU backend (a device-side check, no extra readback); see nn/labels.ts.
 */
function classMask(op: string, scores: Tensor, target: Tensor, ignoreIndex: number): ClassMask {
  if (scores.rank < 2) throw new ShapeError(`${op}: expected input [N, C] or [N, C, d1, ...] (or unbatched [C]), got ${fmtShape(scores.shape)}`);
  if (target.dtype !== 'int32') throw new DTypeError(`${op}: class targets must be int32 (or float probabilities [N, C] for crossEntropy), got ${target.dtype} ${fmtShape(target.shape)}`);
  const want = withoutClassDim(scores.shape);
  if (target.rank !== want.length || target.shape.some((d, i) => d !== want[i])) {
    const expected = scores.rank === 2 ? `[N] = [${scores.shape[0]}]` : `[N, d1, ...] = ${fmtShape(want)}`;
    throw new ShapeError(`${op}: target ${fmtShape(target.shape)} must be ${expected} for input ${fmtShape(scores.shape)}`);
  }
  if (!Number.isInteger(ignoreIndex)) throw new ArgumentError(`${op}: ignoreIndex must be an integer, got ${ignoreIndex}`);
  const C = scores.shape[1];
  checkIndices(op, 'class index', target, C, `input ${fmtShape(scores.shape)} with C = ${C} classes`, ignoreIndex);
  const classes = reshape(arange(0, C, 1, { dtype: 'int32', backend: scores.backend }), classShape(C, scores.rank));
  const t1 = unsqueeze(target, 1);
  const hit = cast(eq(t1, classes), scores.dtype);
  // An ignoreIndex inside [0, C) would otherwise pick its class.
  const mask = ignoreIndex >= 0 && ignoreIndex < C ? mul(hit, cast(ne(t1, ignoreIndex), scores.dtype)) : hit;
  return { mask };
}

function checkWeight(op: string, w: Tensor | undefined, C: number): void {
  if (w && (w.rank !== 1 || w.shape[0] !== C)) throw new ShapeError(`${op}: weight ${fmtShape(w.shape)} must be [C] = [${C}]`);
}

/** Σ_i loss_i / Σ_i w[t_i] (PyTorch's weighted mean), from per-position losses and the one-hot mask. */
function weightedReduce(perSample: Tensor, mask: Tensor, weight: Tensor | null, reduction: Reduction, op: string): Tensor {
  if (reduction !== 'mean') return reduce(op, perSample, reduction);
  const denom = weight ? sum(mul(mask, weight)) : sum(mask);
  return div(sum(perSample), denom);
}


/**
 * Runs a class loss on an unbatched input (scores [C], target []) as a batch of one, as PyTorch;
 * 'none' then returns a 0-d tensor.
 */
function unbatched(scores: Tensor, target: Tensor, reduction: Reduction | undefined, f: (s: Tensor, t: Tensor) => Tensor): Tensor | null {
  if (scores.rank !== 1) return null;
  const t = target.dtype === 'int32' ? reshape(target, target.rank === 0 ? [1] : target.shape) : unsqueeze(target, 0);
  const s = unsqueeze(scores, 0);
  // Called inside the losses' composite: if f throws, the two views are disposed with it.
  const out = f(s, t);
  return reduction === 'none' && out.rank === 1 ? reshape(out, []) : out;
}

/**
 * Negative log-likelihood from log-probabilities and int32 class targets (torch.nn.functional.nll_loss):
 * input [N, C] with target [N], or [N, C, d1, d2, ...] with target [N, d1, d2, ...] (e.g. per-pixel
 * segmentation), or unbatched [C] with a 0-d target. loss_i = −weight[t_i]·logp[i, t_i] per
 * position; 'mean' = Σ loss_i / Σ weight[t_i] over non-ignored positions, 'none' returns
 * [N, d1, ...].
 *
 * Targets must lie in [0, C) or equal `ignoreIndex`. Otherwise an IndexError names the first bad
 * label, its position and C, whenever the targets' values are known on the host: always on the
 * CPU backend, and for DataLoader batches on every backend (checked on the host, no readback). For
 * int32 targets computed on WebGPU a host check would cost a readback per step; instead a kernel
 * checks them on the device and the same IndexError is raised at the next read of the backend
 * (`data()`, `item()`, ...: on WebGPU the error is raised at the next read, not at the call).
 * `checkClassTargets` checks at once with an explicit readback.
 *
 * If every target is ignored, 'mean' is 0/0 = NaN, as in PyTorch.
 */
export function nllLoss(logProbs: Tensor, target: Tensor, opts: NllLossOptions = {}): Tensor {
  return composite(() => {
    floatInput('nllLoss', logProbs, 'input');
    const ub = unbatched(logProbs, target, opts.reduction, (s, t) => nllLoss(s, t, opts));
    if (ub) return ub;
    const C = logProbs.shape[1];
    if (logProbs.rank >= 2) checkWeight('nllLoss', opts.weight, C);
    const { mask } = classMask('nllLoss', logProbs, target, opts.ignoreIndex ?? -100);
    const w = opts.weight ? reshape(opts.weight, classShape(C, logProbs.rank)) : null;
    const wm = w ? mul(mask, w) : mask;
    const perSample = neg(sum(mul(logProbs, wm), 1));
    return weightedReduce(perSample, mask, w, opts.reduction ?? 'mean', 'nllLoss');
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
 * Cross-entropy from logits (log-softmax over dim 1 + NLL, stable for large logits), as
 * torch.nn.functional.cross_entropy. Shapes: logits [N, C] / [N, C, d1, ...] / unbatched [C].
 * `target` is either int32 class indices [N] / [N, d1, ...] / [] (with optional class `weight`,
 * `ignoreIndex` and `labelSmoothing`; validated as in {@link nllLoss}), or float class
 * probabilities shaped like the logits (soft labels: loss = −Σ_c w_c·p_c·logsoftmax_c per
 * position, 'mean' divides by the number of positions N·d1·…).
 *
 * If every target is ignored, 'mean' is 0/0 = NaN, as in PyTorch.
 */
export function crossEntropy(logits: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  return composite(() => {
    floatInput('crossEntropy', logits, 'logits');
    const ub = unbatched(logits, target, opts.reduction, (s, t) => crossEntropy(s, t, opts));
    if (ub) return ub;
    if (logits.rank < 2) throw new ShapeError(`crossEntropy: expected logits [N, C] or [N, C, d1, ...] (or unbatched [C]), got ${fmtShape(logits.shape)}`);
    const C = logits.shape[1];
    checkWeight('crossEntropy', opts.weight, C);
    const eps = opts.labelSmoothing ?? 0;
    if (!(eps >= 0 && eps <= 1)) throw new ArgumentError(`crossEntropy: labelSmoothing must be in [0, 1], got ${eps}`);
    const reduction = opts.reduction ?? 'mean';
    if (target.dtype !== 'int32') {
      floatInput('crossEntropy', target, 'probability target');
      sameShape('crossEntropy', logits, target, 'logits', 'probability target');
      const logp = logSoftmax(logits, 1);
      const w = opts.weight ? reshape(opts.weight, classShape(C, logits.rank)) : null;
      let t = target;
      if (eps > 0) t = add(mul(t, 1 - eps), eps / C);
      const perSample = neg(sum(mul(mul(logp, t), w ?? 1), 1));
      return reduce('crossEntropy', perSample, reduction);
    }
    // Validate (and possibly throw) before any tensor is created.
    const { mask } = classMask('crossEntropy', logits, target, opts.ignoreIndex ?? -100);
    const logp = logSoftmax(logits, 1);
    const w = opts.weight ? reshape(opts.weight, classShape(C, logits.rank)) : null;
    const nll = neg(sum(mul(logp, w ? mul(mask, w) : mask), 1));
    const nllRed = weightedReduce(nll, mask, w, reduction, 'crossEntropy');
    if (eps === 0) return nllRed;
    // Smoothing term: −Σ_c w_c·logp_c per position, zero for ignored positions (all-zero mask).
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
 * How a (log-)variance may be shaped against the mean, as PyTorch's GaussianNLLLoss: the mean's
 * shape (one variance per element), the mean's shape with the last dim 1 (one per row, e.g.
 * [N, 1] against [N, D]) or the mean's shape without its last dim ([N] against [N, D]). Returns
 * the variance reshaped so that it broadcasts against the mean.
 */
function varianceLike(op: string, v: Tensor, like: Tensor, name: string): Tensor {
  const s = like.shape;
  const same = v.rank === s.length && v.shape.every((d, i) => d === s[i]);
  if (same) return v;
  const lead = s.slice(0, -1);
  const leadMatches = (shape: readonly number[]) => shape.length === lead.length && shape.every((d, i) => d === lead[i]);
  if (s.length >= 1 && v.rank === s.length && v.shape[v.rank - 1] === 1 && leadMatches(v.shape.slice(0, -1))) return v;
  if (s.length >= 1 && leadMatches(v.shape)) return unsqueeze(v, -1);
  throw new ShapeError(`${op}: ${name} ${fmtShape(v.shape)} must have the shape of the mean ${fmtShape(s)}, or ${fmtShape([...lead, 1])} (one per row), or ${fmtShape(lead)}`);
}

/**
 * Heteroscedastic Gaussian negative log-likelihood with a predicted log-variance:
 * ½·logVar + (y − μ)²/(2·exp(logVar)) per element (computed as ½(y−μ)²·exp(−logVar), stable for
 * any logVar). The constant ½·log(2π) is omitted (it changes no gradient); pass `full: true` to
 * add it. `logVar` has μ's shape, or one value per row ([..., 1] or μ's shape without the last
 * dim, broadcast over the last dim as PyTorch); 'none' returns μ's shape. Note PyTorch's
 * GaussianNLLLoss takes the variance, not its log: see {@link gaussianNllLossVar}.
 */
export function gaussianNllLoss(mu: Tensor, logVar: Tensor, target: Tensor, opts: { reduction?: Reduction; full?: boolean } = {}): Tensor {
  return composite(() => {
    floatInput('gaussianNllLoss', mu, 'mean');
    floatInput('gaussianNllLoss', logVar, 'logVar');
    sameShape('gaussianNllLoss', mu, target, 'mean', 'target');
    const lv = varianceLike('gaussianNllLoss', logVar, mu, 'logVar');
    let l = mul(add(lv, mul(square(sub(target, mu)), exp(neg(lv)))), 0.5);
    if (opts.full) l = add(l, HALF_LOG_2PI);
    return reduce('gaussianNllLoss', l, opts.reduction ?? 'mean');
  });
}

export interface GaussianNllOptions {
  reduction?: Reduction;
  /** Add the constant ½·log(2π) (default false, as PyTorch). */
  full?: boolean;
  /** Variances are clamped to at least eps (default 1e-6) for stability; see below. */
  eps?: number;
}

/**
 * PyTorch's `F.gaussian_nll_loss(input, target, var)`: ½·(log v + (input − target)²/v) per
 * element with v = max(var, eps), plus ½·log(2π) with `full`. `variance` is a number, or a
 * tensor of the input's shape, or one variance per row: the input's shape with the last dim 1
 * (e.g. [N, 1] against [N, D]) or without the last dim ([N]). `target` has the input's shape or
 * broadcasts to it (size-1 dims). 'none' returns the input's shape.
 *
 * The clamp is applied as PyTorch does (an in-place clamp under no_grad): the value uses
 * max(var, eps) but the gradient passes straight through to `variance`, also where var < eps.
 * Negative variances are invalid: on the CPU backend they throw an ArgumentError (PyTorch raises
 * a ValueError); on WebGPU checking would cost a readback, so those elements get a NaN loss.
 */
export function gaussianNllLossVar(input: Tensor, target: Tensor, variance: Tensor | number, opts: GaussianNllOptions = {}): Tensor {
  const op = 'gaussianNllLossVar';
  return composite(() => {
    floatInput(op, input, 'input');
    floatInput(op, target, 'target');
    const eps = opts.eps ?? 1e-6;
    if (!(eps > 0) || !Number.isFinite(eps)) throw new ArgumentError(`${op}: eps must be a positive finite number, got ${eps}`);
    const bt = target.rank === input.rank && target.shape.every((d, i) => d === input.shape[i] || d === 1);
    if (!bt) throw new ShapeError(`${op}: target ${fmtShape(target.shape)} must have the input's shape ${fmtShape(input.shape)} (or size 1 in the dims to broadcast)`);
    let v: Tensor;
    if (typeof variance === 'number') {
      if (!(variance >= 0)) throw new ArgumentError(`${op}: var has a negative (or NaN) entry: ${variance}`);
      v = scalarLike(variance, input);
    } else {
      floatInput(op, variance, 'var');
      v = varianceLike(op, variance, input, 'var');
      const host = hostValuesOf(variance, op);
      if (host) {
        for (let i = 0; i < variance.size; i++) {
          if (!(host.data[i] >= 0)) throw new ArgumentError(`${op}: var has a negative (or NaN) entry ${host.data[i]} at flat position ${i} of ${fmtShape(variance.shape)}`);
        }
      }
    }
    // Straight-through clamp: the value is max(v, eps), the gradient that of the identity.
    const vc = add(v, detach(sub(maximum(v, eps), v)));
    let l = mul(add(log(vc), div(square(sub(input, target)), vc)), 0.5);
    if (typeof variance !== 'number') l = where(lt(v, 0), NaN, l);
    if (opts.full) l = add(l, HALF_LOG_2PI);
    return reduce(op, l, opts.reduction ?? 'mean');
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
