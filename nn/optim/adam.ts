import { type AdamOptions, ArgumentError, type Tensor, fusedAdam } from '../../engine/index.js';
import { type ParamGroup, type ParamState, type ParamsArg, Optimizer } from './optimizer.js';

export type { AdamOptions };

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

/**
 * One Adam step of `p` through the engine's fused `adamStep` op (one kernel: new parameter and
 * moments); state keys expAvg, expAvgSq (and maxExpAvgSq with AMSGrad), step counted in `s.step`.
 */
function adamUpdate(set: (s: ParamState, k: string, v: Tensor) => void, p: Tensor, grad: Tensor, g: ParamGroup<AdamOptions>, s: ParamState, decoupled: boolean): Tensor {
  const step = ((s.step as number | undefined) ?? 0) + 1;
  s.step = step;
  const m0 = (s.expAvg as Tensor | undefined) ?? null;
  const v0 = (s.expAvgSq as Tensor | undefined) ?? null;
  const vmax0 = g.amsgrad ? ((s.maxExpAvgSq as Tensor | undefined) ?? null) : null;
  // The step count is passed as a getter so that a replayed step (Optimizer.compile) re-reads it.
  const r = fusedAdam(p, grad, m0, v0, vmax0, g, () => s.step as number, decoupled);
  set(s, 'expAvg', r.expAvg);
  set(s, 'expAvgSq', r.expAvgSq);
  if (r.maxExpAvgSq) set(s, 'maxExpAvgSq', r.maxExpAvgSq);
  return r.param;
}

/**
 * Adam (torch.optim.Adam, same arithmetic): g ← ∇ + wd·p (L2, coupled); m ← β₁m + (1−β₁)g;
 * v ← β₂v + (1−β₂)g²; p ← p − (lr/(1−β₁ᵗ))·m / (√v/√(1−β₂ᵗ) + eps). Optional AMSGrad.
 * Each parameter is updated by one fused kernel (engine op `adamStep`).
 */
export class Adam extends Optimizer<AdamOptions> {
  constructor(params: ParamsArg<AdamOptions>, opts: Partial<AdamOptions> = {}) {
    super(params, adamDefaults(opts, 0));
  }
  protected override validate(g: ParamGroup<AdamOptions>): void {
    super.validate(g);
    validateAdam('Adam', g);
  }
  protected update(p: Tensor, grad: Tensor, g: ParamGroup<AdamOptions>, s: ParamState): Tensor {
    return adamUpdate((st, k, v) => this.setState(st, k, v), p, grad, g, s, false);
  }
}

/**
 * AdamW (torch.optim.AdamW): decoupled weight decay p ← p·(1 − lr·wd) before the Adam update
 * (which then uses the raw gradient). Default weightDecay 1e-2 as PyTorch.
 */
export class AdamW extends Optimizer<AdamOptions> {
  constructor(params: ParamsArg<AdamOptions>, opts: Partial<AdamOptions> = {}) {
    super(params, adamDefaults(opts, 1e-2));
  }
  protected override validate(g: ParamGroup<AdamOptions>): void {
    super.validate(g);
    validateAdam('AdamW', g);
  }
  protected update(p: Tensor, grad: Tensor, g: ParamGroup<AdamOptions>, s: ParamState): Tensor {
    return adamUpdate((st, k, v) => this.setState(st, k, v), p, grad, g, s, true);
  }
}
