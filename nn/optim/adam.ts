import { ArgumentError, type Tensor, add, detach, div, fusedAdam, maximum, mul, sqrt, square, sub } from '../../engine/index.js';
import { type ParamGroup, type ParamState, type ParamsArg, Optimizer } from './optimizer.js';

export interface AdamOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
}

function adamDefaults(opts: Partial<AdamOptions>, weightDecay: number): AdamOptions {
  return {
    lr: opts.lr ?? 1e-3,
    betas: opts.betas ?? [0.9, 0.999],
    eps: opts.eps ?? 1e-8,
    weightDecay: opts.weightDecay ?? weightDecay,
    amsgrad: opts.amsgrad ?? false,
    maximize: opts.maximize ?? false,
  };
}

function validateAdam(name: string, g: ParamGroup<AdamOptions>): void {
  const [b1, b2] = g.betas;
  if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1)) throw new ArgumentError(`${name}: betas must be in [0, 1), got [${g.betas}]`);
  if (!(g.eps >= 0)) throw new ArgumentError(`${name}: eps must be ≥ 0, got ${g.eps}`);
  if (!(g.weightDecay >= 0)) throw new ArgumentError(`${name}: weightDecay must be ≥ 0, got ${g.weightDecay}`);
}

/** The shared Adam moment update; returns the step direction m̂/(√v̂ + eps) scaled by lr. */
function adamStep(set: (s: ParamState, k: string, v: Tensor) => void, p: Tensor, d: Tensor, g: ParamGroup<AdamOptions>, s: ParamState): Tensor {
  const [b1, b2] = g.betas;
  const step = ((s.step as number | undefined) ?? 0) + 1;
  s.step = step;
  const m0 = s.expAvg as Tensor | undefined;
  const v0 = s.expAvgSq as Tensor | undefined;
  const m = m0 ? add(mul(m0, b1), mul(d, 1 - b1)) : mul(d, 1 - b1);
  const v = v0 ? add(mul(v0, b2), mul(square(d), 1 - b2)) : mul(square(d), 1 - b2);
  set(s, 'expAvg', m);
  set(s, 'expAvgSq', v);
  let vUse = v;
  if (g.amsgrad) {
    const vmax0 = s.maxExpAvgSq as Tensor | undefined;
    vUse = vmax0 ? maximum(vmax0, v) : detach(v);
    set(s, 'maxExpAvgSq', vUse);
  }
  const bc1 = 1 - Math.pow(b1, step);
  const bc2 = 1 - Math.pow(b2, step);
  const denom = add(div(sqrt(vUse), Math.sqrt(bc2)), g.eps);
  return sub(p, mul(div(m, denom), g.lr / bc1));
}

/** Options of the optimiser object itself (not per-group hyperparameters). */
export interface FusedOption {
  /**
   * Update each parameter with one fused kernel (new parameter and state in one dispatch) instead
   * of ~20 elementwise ops. Same arithmetic, operation for operation (see engine/ops/optim-kernels.ts).
   * Default true.
   */
  fused?: boolean;
}

/** The fused equivalent of {@link adamStep} (same state keys, same values). */
function adamStepFused(set: (s: ParamState, k: string, v: Tensor) => void, p: Tensor, grad: Tensor, g: ParamGroup<AdamOptions>, s: ParamState, decoupled: boolean): Tensor {
  const step = ((s.step as number | undefined) ?? 0) + 1;
  s.step = step;
  const r = fusedAdam(p, grad, (s.expAvg as Tensor | undefined) ?? null, (s.expAvgSq as Tensor | undefined) ?? null, g.amsgrad ? ((s.maxExpAvgSq as Tensor | undefined) ?? null) : null, {
    beta1: g.betas[0], beta2: g.betas[1], lr: g.lr, eps: g.eps, step, weightDecay: g.weightDecay, decoupled, amsgrad: g.amsgrad, maximize: g.maximize,
  });
  set(s, 'expAvg', r.expAvg);
  set(s, 'expAvgSq', r.expAvgSq);
  if (r.maxExpAvgSq) set(s, 'maxExpAvgSq', r.maxExpAvgSq);
  return r.param;
}

/**
 * Adam (torch.optim.Adam, same arithmetic): g ← ∇ + wd·p (L2, coupled); m ← β₁m + (1−β₁)g;
 * v ← β₂v + (1−β₂)g²; p ← p − (lr/(1−β₁ᵗ))·m / (√v/√(1−β₂ᵗ) + eps). Optional AMSGrad.
 */
export class Adam extends Optimizer<AdamOptions> {
  /** One fused kernel per parameter (see {@link FusedOption}). */
  fused: boolean;
  constructor(params: ParamsArg<AdamOptions>, opts: Partial<AdamOptions> & FusedOption = {}) {
    super(params, adamDefaults(opts, 0));
    this.fused = opts.fused ?? true;
  }
  protected override validate(g: ParamGroup<AdamOptions>): void {
    super.validate(g);
    validateAdam('Adam', g);
  }
  protected update(p: Tensor, grad: Tensor, g: ParamGroup<AdamOptions>, s: ParamState): Tensor {
    if (this.fused) return adamStepFused((st, k, v) => this.setState(st, k, v), p, grad, g, s, false);
    let d = g.maximize ? mul(grad, -1) : grad;
    if (g.weightDecay !== 0) d = add(d, mul(p, g.weightDecay));
    return adamStep((st, k, v) => this.setState(st, k, v), p, d, g, s);
  }
}

/**
 * AdamW (torch.optim.AdamW): decoupled weight decay p ← p·(1 − lr·wd) before the Adam update
 * (which then uses the raw gradient). Default weightDecay 1e-2 as PyTorch.
 */
export class AdamW extends Optimizer<AdamOptions> {
  /** One fused kernel per parameter (see {@link FusedOption}). */
  fused: boolean;
  constructor(params: ParamsArg<AdamOptions>, opts: Partial<AdamOptions> & FusedOption = {}) {
    super(params, adamDefaults(opts, 1e-2));
    this.fused = opts.fused ?? true;
  }
  protected override validate(g: ParamGroup<AdamOptions>): void {
    super.validate(g);
    validateAdam('AdamW', g);
  }
  protected update(p: Tensor, grad: Tensor, g: ParamGroup<AdamOptions>, s: ParamState): Tensor {
    if (this.fused) return adamStepFused((st, k, v) => this.setState(st, k, v), p, grad, g, s, true);
    const d = g.maximize ? mul(grad, -1) : grad;
    const decayed = g.weightDecay !== 0 ? mul(p, 1 - g.lr * g.weightDecay) : p;
    return adamStep((st, k, v) => this.setState(st, k, v), decayed, d, g, s);
  }
}
