/**
 * Dirichlet output heads and their training losses: prior networks (Malinin & Gales 2018, 2019),
 * evidential networks (Sensoy, Kaplan & Kandemir 2018), and the outlier-exposure loss for an
 * ordinary softmax classifier (Hendrycks, Mazeika & Dietterich 2019).
 *
 * A Dirichlet network maps x to concentrations α ∈ (0, ∞)^K over the K-class simplex;
 * α₀ = Σ_k α_k is the precision (total evidence) and p = α/α₀ the expected class probabilities.
 * The uncertainty measures of such an output (vacuity, α₀, mutual information, expected entropy,
 * differential entropy) are in `scores.ts`; `dirichletDetector` (detectors.ts) wraps them.
 *
 * Every loss here is built from library ops (lgamma, digamma, softplus, ...), so it is
 * differentiable with respect to α (and the logits behind it) to first order; second order would
 * need tetragamma, which the engine does not have.
 *
 * Input checks: α must be a float tensor [B, K] with positive entries and class targets int32 [B]
 * in [0, K). Where the values are known on the host (the CPU backend, DataLoader labels), a bad
 * value throws (ArgumentError for α, IndexError for a target) naming the loss, the position and
 * the value. On WebGPU that check would cost a readback per step, so the affected rows get a NaN
 * loss instead (never a silently wrong one).
 */
import {
  ArgumentError, DTypeError, ShapeError, type Tensor,
  add, arange, cast, composite, digamma, div, eq, exp, fmtShape, gt, le, lgamma, log, logSoftmax, maximum, mean, lt, min, minimum, mul, neg, noGrad, relu, reshape, softplus, square, sub, sum, tidy, unsqueeze, where,
} from '../engine/index.js';
import { checkIndicesOnHost, hostValuesOf } from '../nn/labels.js';
import { type ModelLike, asModelFn } from './detector.js';

export type DirichletReduction = 'mean' | 'sum' | 'none';

function reduce(op: string, x: Tensor, reduction: DirichletReduction | undefined): Tensor {
  switch (reduction ?? 'mean') {
    case 'mean': return mean(x);
    case 'sum': return sum(x);
    case 'none': return x;
    default: throw new ArgumentError(`${op}: reduction must be 'mean', 'sum' or 'none', got '${String(reduction)}'`);
  }
}

// ------------------------------------------------------------------------------------ heads

/**
 * Default clamp of the log-concentrations z before α = exp(z), for float32: z ∈ [−10, 10], i.e.
 * α ∈ [4.5e−5, 2.2e4]. exp overflows float32 above z ≈ 88.7, but the losses fail long before:
 * lnΓ(α₀) and ψ(α_k) lose their relative precision for α₀ ≳ 1e6 in float32, and ψ'(α) ≈ 1/α²
 * (the loss gradient through ψ) exceeds 1e9 below α ≈ 3e−5. The upper end leaves ample room for
 * the usual target precision 1 + 100 (z ≈ 4.6); the lower end keeps gradients finite. Outside
 * the clamp the gradient with respect to z is 0 (as for torch.clamp).
 */
export const LOG_ALPHA_CLAMP: readonly [number, number] = Object.freeze([-10, 10]) as readonly [number, number];

/**
 * Prior-network head (Malinin & Gales 2018): α = exp(clamp(z, lo, hi)) from logits z [B, K].
 * `clamp` defaults to {@link LOG_ALPHA_CLAMP}; pass `null` for no clamp (float64 work).
 */
export function priorNetworkAlpha(logits: Tensor, opts: { clamp?: readonly [number, number] | null } = {}): Tensor {
  floatRank2('priorNetworkAlpha', logits, 'logits');
  const c = opts.clamp === undefined ? LOG_ALPHA_CLAMP : opts.clamp;
  if (c !== null && !(c[0] < c[1])) throw new ArgumentError(`priorNetworkAlpha: clamp must be [lo, hi] with lo < hi, got [${c.join(', ')}]`);
  return composite(() => exp(c === null ? logits : minimum(maximum(logits, c[0]), c[1])));
}

/** Evidence activation of an evidential network (Sensoy et al. 2018 use relu, softplus or exp). */
export type EvidenceActivation = 'softplus' | 'relu' | 'exp';

/**
 * Evidential head (Sensoy et al. 2018): evidence e = act(z) ≥ 0 and α = e + 1 (so α ≥ 1: no
 * evidence gives the flat Dirichlet). 'exp' clamps z to {@link LOG_ALPHA_CLAMP} first.
 */
export function evidentialAlpha(logits: Tensor, activation: EvidenceActivation = 'softplus'): Tensor {
  floatRank2('evidentialAlpha', logits, 'logits');
  return composite(() => {
    switch (activation) {
      case 'softplus': return add(softplus(logits), 1);
      case 'relu': return add(relu(logits), 1);
      case 'exp': return add(exp(minimum(maximum(logits, LOG_ALPHA_CLAMP[0]), LOG_ALPHA_CLAMP[1])), 1);
      default: throw new ArgumentError(`evidentialAlpha: activation must be 'softplus', 'relu' or 'exp', got '${String(activation)}'`);
    }
  });
}

// ------------------------------------------------------------------------------------ checks

function floatRank2(op: string, t: Tensor, name: string): void {
  if (t.dtype !== 'float32' && t.dtype !== 'float64') throw new DTypeError(`${op}: ${name} must be float32 or float64, got ${t.dtype} ${fmtShape(t.shape)}`);
  if (t.rank !== 2 || t.shape[1] < 1) throw new ShapeError(`${op}: ${name} must be [B, K] with K ≥ 1 classes, got ${fmtShape(t.shape)}`);
}

/**
 * Checks α [B, K] (float, entries > 0). Returns a bool [B] tensor flagging rows with a
 * non-positive (or NaN) entry when the values could not be checked on the host, else null.
 */
function checkAlpha(op: string, alpha: Tensor, name = 'alpha'): Tensor | null {
  floatRank2(op, alpha, name);
  const rowMin = tidy(() => noGrad(() => min(alpha, -1)));
  const host = hostValuesOf(rowMin, op);
  if (!host) {
    // Device values: flag the rows (not(x > 0) also catches NaN).
    const bad = lt(cast(gt(rowMin, 0), 'int32'), 1);
    rowMin.dispose();
    return bad;
  }
  try {
    for (let b = 0; b < alpha.shape[0]; b++) {
      const v = host.data[b]!;
      if (!(v > 0)) {
        throw new ArgumentError(`${op}: ${name} ${fmtShape(alpha.shape)} must have positive entries (Dirichlet concentrations), but row ${b} has minimum ${v}`);
      }
    }
  } finally {
    rowMin.dispose();
  }
  return null;
}

/**
 * Validates Dirichlet concentrations α [B, K] for `op` (used by `dirichletDetector`): float32 or
 * float64, rank 2, every entry > 0. Where the values are on the host (the CPU backend) a
 * non-positive or NaN entry throws an ArgumentError naming `op`, the row and its minimum; on
 * WebGPU (no readback) it returns a bool [B] mask of the offending rows, whose results the caller
 * sets to NaN. Returns null when nothing is left to flag.
 */
export function checkConcentrations(op: string, alpha: Tensor): Tensor | null {
  return checkAlpha(op, alpha);
}

/** Float one-hot [B, K] of int32 targets [B]; flags out-of-range targets on the device (see module doc). */
function oneHotTargets(op: string, target: Tensor, B: number, K: number, dtype: Tensor['dtype']): { y: Tensor; bad: Tensor | null } {
  if (target.dtype !== 'int32') throw new DTypeError(`${op}: class targets must be int32 [B], got ${target.dtype} ${fmtShape(target.shape)}`);
  if (target.rank !== 1 || target.shape[0] !== B) throw new ShapeError(`${op}: target ${fmtShape(target.shape)} must be [B] = [${B}]`);
  const checked = checkIndicesOnHost(op, 'class index', target, K, `K = ${K} classes`);
  const classes = reshape(arange(0, K, 1, { dtype: 'int32', backend: target.backend }), [1, K]);
  const y = cast(eq(unsqueeze(target, 1), classes), dtype);
  const bad = checked ? null : le(sum(y, -1), 0);
  return { y, bad };
}

/** ood: bool/float/int [B] (nonzero = OOD row); checked for shape. Returns a float [B, 1] mask. */
function oodMask(op: string, ood: Tensor, B: number, dtype: Tensor['dtype']): Tensor {
  if (ood.rank !== 1 || ood.shape[0] !== B) throw new ShapeError(`${op}: ood ${fmtShape(ood.shape)} must be a [B] = [${B}] mask (nonzero = out-of-distribution row)`);
  return reshape(cast(ood.dtype === 'bool' ? ood : gt(ood, 0), dtype), [B, 1]);
}

const poisonRows = (perRow: Tensor, ...bads: (Tensor | null)[]): Tensor => {
  let out = perRow;
  for (const b of bads) if (b) out = where(b, NaN, out);
  return out;
};

// ------------------------------------------------------------------------------------ KL

/**
 * KL(Dir(α) ‖ Dir(β)) per row, α and β [B, K] (β may broadcast, e.g. [1, K]):
 *   lnΓ(α₀) − Σ_k lnΓ(α_k) − lnΓ(β₀) + Σ_k lnΓ(β_k) + Σ_k (α_k − β_k)(ψ(α_k) − ψ(α₀)).
 * ≥ 0, = 0 iff α = β. → [B]. Differentiable in both arguments.
 */
export function dirichletKl(alpha: Tensor, beta: Tensor): Tensor {
  return composite(() => {
    const badA = checkAlpha('dirichletKl', alpha, 'alpha');
    const badB = checkAlpha('dirichletKl', beta, 'beta');
    if (beta.shape[1] !== alpha.shape[1] || (beta.shape[0] !== alpha.shape[0] && beta.shape[0] !== 1)) {
      throw new ShapeError(`dirichletKl: beta ${fmtShape(beta.shape)} must be [B, K] or [1, K] for alpha ${fmtShape(alpha.shape)}`);
    }
    const kl = klRows(alpha, beta);
    return poisonRows(kl, badA, badB && badB.shape[0] === alpha.shape[0] ? badB : null);
  });
}

/** The KL formula without checks (inputs already validated). */
function klRows(alpha: Tensor, beta: Tensor): Tensor {
  const a0 = sum(alpha, -1, true);
  const b0 = sum(beta, -1, true);
  const logNorm = sub(lgamma(reshape(a0, [a0.shape[0]])), sum(lgamma(alpha), -1));
  const logNormB = sub(lgamma(reshape(b0, [b0.shape[0]])), sum(lgamma(beta), -1));
  const cross = sum(mul(sub(alpha, beta), sub(digamma(alpha), digamma(a0))), -1);
  return add(sub(logNorm, logNormB), cross);
}

export interface PriorNetworkLossOptions {
  /**
   * Target precision c of in-distribution rows: β_k = 1 + c·[k = y] (default 100, Malinin &
   * Gales 2018). OOD rows get the flat target β = 1.
   */
  targetConcentration?: number;
  /**
   * 'forward' (default; Malinin & Gales 2018): KL(Dir(β) ‖ Dir(α)), target first.
   * 'reverse' (Malinin & Gales 2019): KL(Dir(α) ‖ Dir(β)), model first; it is not mode-averaging
   * for mixed/ambiguous targets and trains more stably for large K.
   */
  divergence?: 'forward' | 'reverse';
  /**
   * Which rows are out-of-distribution training samples ([B] bool, or numeric with nonzero =
   * OOD): they get the flat target β = 1 and their class target is ignored (may be any value in
   * [0, K)). Omit when the batch is all in-distribution.
   */
  ood?: Tensor;
  /** Weight of the OOD rows' KL (default 1). */
  oodWeight?: number;
  reduction?: DirichletReduction;
}

/**
 * Target concentrations β [B, K]: 1 + c·onehot(y) for in-distribution rows, 1 for OOD rows
 * (`ood` a [B] mask). Targets are checked as in {@link priorNetworkLoss}.
 */
export function dirichletTarget(target: Tensor, numClasses: number, opts: { targetConcentration?: number; ood?: Tensor; dtype?: 'float32' | 'float64' } = {}): Tensor {
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new ArgumentError(`dirichletTarget: numClasses must be a positive integer, got ${numClasses}`);
  const c = opts.targetConcentration ?? 100;
  if (!(c > 0)) throw new ArgumentError(`dirichletTarget: targetConcentration must be > 0, got ${c}`);
  const dtype = opts.dtype ?? 'float32';
  return composite(() => {
    const B = target.rank === 1 ? target.shape[0] : -1;
    const { y, bad } = oneHotTargets('dirichletTarget', target, B, numClasses, dtype);
    const idY = opts.ood ? mul(y, sub(1, oodMask('dirichletTarget', opts.ood, B, dtype))) : y;
    const beta = add(mul(idY, c), 1);
    return bad ? where(unsqueeze(bad, 1), NaN, beta) : beta;
  });
}

/**
 * Prior-network loss (Malinin & Gales 2018; reverse variant 2019): per row the KL divergence
 * between the model's Dir(α) and the target Dir(β), β_k = 1 + c·[k = y] in distribution and
 * β = 1 for OOD rows (`opts.ood`), see {@link PriorNetworkLossOptions.divergence} for the
 * direction. α [B, K] from {@link priorNetworkAlpha}; target int32 [B].
 * 'mean' (default) averages over the B rows (OOD rows weighted by `oodWeight`).
 */
export function priorNetworkLoss(alpha: Tensor, target: Tensor, opts: PriorNetworkLossOptions = {}): Tensor {
  const op = 'priorNetworkLoss';
  const div_ = opts.divergence ?? 'forward';
  if (div_ !== 'forward' && div_ !== 'reverse') throw new ArgumentError(`${op}: divergence must be 'forward' or 'reverse', got '${String(div_)}'`);
  const c = opts.targetConcentration ?? 100;
  if (!(c > 0)) throw new ArgumentError(`${op}: targetConcentration must be > 0, got ${c}`);
  return composite(() => {
    const bad = checkAlpha(op, alpha);
    const [B, K] = alpha.shape;
    const { y, bad: badT } = oneHotTargets(op, target, B, K, alpha.dtype);
    const oodF = opts.ood ? oodMask(op, opts.ood, B, alpha.dtype) : null;
    const beta = add(mul(oodF ? mul(y, sub(1, oodF)) : y, c), 1);
    let kl = div_ === 'forward' ? klRows(beta, alpha) : klRows(alpha, beta);
    if (oodF && opts.oodWeight !== undefined && opts.oodWeight !== 1) {
      if (!(opts.oodWeight >= 0)) throw new ArgumentError(`${op}: oodWeight must be ≥ 0, got ${opts.oodWeight}`);
      kl = mul(kl, add(1, mul(reshape(oodF, [B]), opts.oodWeight - 1)));
    }
    return reduce(op, poisonRows(kl, bad, badT), opts.reduction);
  });
}

// ------------------------------------------------------------------------------------ evidential

/** The data term of the evidential loss (Sensoy et al. 2018, eqs. 3–5). */
export type EvidentialLossKind = 'ce' | 'log' | 'mse';

export interface EvidentialLossOptions {
  /**
   * 'ce' (default): expected cross-entropy Σ_k y_k (ψ(α₀) − ψ(α_k)) (eq. 4);
   * 'log': type-II maximum likelihood Σ_k y_k (ln α₀ − ln α_k) (eq. 3);
   * 'mse': expected squared error Σ_k (y_k − p_k)² + p_k(1 − p_k)/(α₀ + 1), p = α/α₀ (eq. 5).
   */
  kind?: EvidentialLossKind;
  /**
   * Weight λ_t of the regulariser KL(Dir(α̃) ‖ Dir(1)) on the misleading evidence
   * α̃ = y + (1 − y)⊙α. Sensoy et al. anneal it as λ_t = min(1, t/10) over epochs t; pass
   * {@link evidentialAnnealing}(epoch) or your own schedule. Default 0 (no regulariser).
   */
  klWeight?: number;
  reduction?: DirichletReduction;
}

/**
 * The annealing coefficient λ_t = min(1, t / annealSteps) of Sensoy et al. 2018 (t = epoch, or
 * step; annealSteps = 10 in the paper's code).
 */
export function evidentialAnnealing(t: number, annealSteps = 10): number {
  if (!(annealSteps > 0)) throw new ArgumentError(`evidentialAnnealing: annealSteps must be > 0, got ${annealSteps}`);
  if (!(t >= 0)) throw new ArgumentError(`evidentialAnnealing: t must be ≥ 0, got ${t}`);
  return Math.min(1, t / annealSteps);
}

/**
 * Evidential deep-learning loss (Sensoy, Kaplan & Kandemir 2018) per row:
 *   data term (see {@link EvidentialLossOptions.kind}) + λ_t · KL(Dir(α̃) ‖ Dir(1)),
 * α̃ = y + (1 − y)⊙α (the evidence for wrong classes kept, the true class's removed), and
 *   KL(Dir(α̃) ‖ Dir(1)) = lnΓ(α̃₀) − lnΓ(K) − Σ_k lnΓ(α̃_k) + Σ_k (α̃_k − 1)(ψ(α̃_k) − ψ(α̃₀)).
 * α [B, K] from {@link evidentialAlpha}; target int32 [B].
 */
export function evidentialLoss(alpha: Tensor, target: Tensor, opts: EvidentialLossOptions = {}): Tensor {
  const op = 'evidentialLoss';
  const kind = opts.kind ?? 'ce';
  if (kind !== 'ce' && kind !== 'log' && kind !== 'mse') throw new ArgumentError(`${op}: kind must be 'ce', 'log' or 'mse', got '${String(kind)}'`);
  const lam = opts.klWeight ?? 0;
  if (!(lam >= 0)) throw new ArgumentError(`${op}: klWeight must be ≥ 0, got ${lam}`);
  return composite(() => {
    const bad = checkAlpha(op, alpha);
    const [B, K] = alpha.shape;
    const { y, bad: badT } = oneHotTargets(op, target, B, K, alpha.dtype);
    const a0 = sum(alpha, -1, true);
    let data: Tensor;
    if (kind === 'ce') data = sum(mul(y, sub(digamma(a0), digamma(alpha))), -1);
    else if (kind === 'log') data = sum(mul(y, sub(log(a0), log(alpha))), -1);
    else {
      const p = div(alpha, a0);
      data = sum(add(square(sub(y, p)), div(mul(p, sub(1, p)), add(a0, 1))), -1);
    }
    let loss = data;
    if (lam > 0) {
      const aT = add(y, mul(sub(1, y), alpha));
      loss = add(loss, mul(klToFlat(aT), lam));
    }
    return reduce(op, poisonRows(loss, bad, badT), opts.reduction);
  });
}

/** KL(Dir(α) ‖ Dir(1,…,1)) per row = lnΓ(α₀) − lnΓ(K) − Σ lnΓ(α_k) + Σ (α_k − 1)(ψ(α_k) − ψ(α₀)). */
function klToFlat(alpha: Tensor): Tensor {
  const K = alpha.shape[1];
  const a0 = sum(alpha, -1, true);
  let lnGammaK = 0;
  for (let k = 2; k < K; k++) lnGammaK += Math.log(k);
  const t1 = sub(sub(lgamma(reshape(a0, [alpha.shape[0]])), sum(lgamma(alpha), -1)), lnGammaK);
  return add(t1, sum(mul(sub(alpha, 1), sub(digamma(alpha), digamma(a0))), -1));
}

// ------------------------------------------------------------------------------------ outlier exposure

export interface OutlierExposureOptions {
  /** λ, the weight of the outlier term (default 0.5, Hendrycks et al. 2019). */
  lambda?: number;
}

/**
 * Outlier-exposure loss (Hendrycks, Mazeika & Dietterich 2019) for a softmax classifier:
 *   mean_i CE(f(x_i), y_i) + λ · mean_j CE(f(x'_j), uniform),
 * CE(z, uniform) = −(1/K) Σ_k log softmax(z)_k = logsumexp(z) − mean_k z_k. `logitsIn` [N, K]
 * with int32 targets [N] (checked as in crossEntropy); `logitsOut` [M, K] are the training
 * outliers' logits (must not be the OOD test set). Returns the scalar loss.
 */
export function outlierExposureLoss(logitsIn: Tensor, target: Tensor, logitsOut: Tensor, opts: OutlierExposureOptions = {}): Tensor {
  const op = 'outlierExposureLoss';
  const lam = opts.lambda ?? 0.5;
  if (!(lam >= 0)) throw new ArgumentError(`${op}: lambda must be ≥ 0, got ${lam}`);
  floatRank2(op, logitsIn, 'logitsIn');
  floatRank2(op, logitsOut, 'logitsOut');
  if (logitsOut.shape[1] !== logitsIn.shape[1]) {
    throw new ShapeError(`${op}: logitsOut ${fmtShape(logitsOut.shape)} must have the K = ${logitsIn.shape[1]} classes of logitsIn ${fmtShape(logitsIn.shape)}`);
  }
  return composite(() => {
    const [B, K] = logitsIn.shape;
    const { y, bad } = oneHotTargets(op, target, B, K, logitsIn.dtype);
    const ceInRows = poisonRows(neg(sum(mul(logSoftmax(logitsIn, -1), y), -1)), bad);
    const ceOut = neg(mean(logSoftmax(logitsOut, -1), -1));
    return add(mean(ceInRows), mul(mean(ceOut), lam));
  });
}

// ------------------------------------------------------------------------------------ wrapper

export interface PriorNetworkOptions {
  /** 'exp' (default, prior network) or an evidential activation (α = act(z) + 1). */
  head?: 'exp' | EvidenceActivation;
  /** Clamp of z for the 'exp' head (default {@link LOG_ALPHA_CLAMP}). */
  clamp?: readonly [number, number] | null;
}

/**
 * A classifier body (logits [B, K]) turned into a Dirichlet network: `alpha(x)` gives the
 * concentrations, `forward` too (so it can be passed to `dirichletDetector(net, { concentration:
 * 'alpha' })` or used in a training loop with {@link priorNetworkLoss} / {@link evidentialLoss}).
 */
export class PriorNetwork {
  private readonly fn: (x: Tensor) => Tensor;
  readonly head: 'exp' | EvidenceActivation;
  constructor(readonly body: ModelLike, private readonly opts: PriorNetworkOptions = {}) {
    this.fn = asModelFn(body);
    this.head = opts.head ?? 'exp';
    if (!['exp', 'softplus', 'relu'].includes(this.head)) throw new ArgumentError(`PriorNetwork: head must be 'exp', 'softplus' or 'relu', got '${String(this.head)}'`);
  }

  /** α [B, K] for inputs x. */
  alpha(x: Tensor): Tensor {
    return composite(() => {
      const z = this.fn(x);
      return this.head === 'exp' ? priorNetworkAlpha(z, { clamp: this.opts.clamp }) : evidentialAlpha(z, this.head as EvidenceActivation);
    });
  }

  forward(x: Tensor): Tensor {
    return this.alpha(x);
  }
}
