import { ArgumentError, type Tensor, add, detach, fusedSgd, mul, sub } from '../../engine/index.js';
import { type ParamGroup, type ParamState, type ParamsArg, Optimizer } from './optimizer.js';
import type { FusedOption } from './adam.js';

export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

/**
 * Stochastic gradient descent with momentum (torch.optim.SGD, same update order):
 * g ← ∇ + wd·p; b ← g on the first step, then b ← μ·b + (1−dampening)·g;
 * g ← g + μ·b (Nesterov) or g ← b; p ← p − lr·g.
 */
export class SGD extends Optimizer<SGDOptions> {
  /** One fused kernel per parameter (see {@link FusedOption}). */
  fused: boolean;
  constructor(params: ParamsArg<SGDOptions>, opts: Partial<SGDOptions> & { lr: number } & FusedOption) {
    super(params, { lr: opts.lr, momentum: opts.momentum ?? 0, dampening: opts.dampening ?? 0, weightDecay: opts.weightDecay ?? 0, nesterov: opts.nesterov ?? false, maximize: opts.maximize ?? false });
    this.fused = opts.fused ?? true;
  }

  protected override validate(g: ParamGroup<SGDOptions>): void {
    super.validate(g);
    if (!(g.momentum >= 0)) throw new ArgumentError(`SGD: momentum must be ≥ 0, got ${g.momentum}`);
    if (!(g.weightDecay >= 0)) throw new ArgumentError(`SGD: weightDecay must be ≥ 0, got ${g.weightDecay}`);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) throw new ArgumentError('SGD: Nesterov momentum requires momentum > 0 and dampening 0');
  }

  protected update(p: Tensor, grad: Tensor, g: ParamGroup<SGDOptions>, s: ParamState): Tensor {
    if (this.fused) {
      const prev = g.momentum !== 0 ? ((s.momentumBuffer as Tensor | undefined) ?? null) : null;
      const r = fusedSgd(p, grad, prev, g);
      if (r.momentumBuffer) this.setState(s, 'momentumBuffer', r.momentumBuffer);
      return r.param;
    }
    let d = g.maximize ? mul(grad, -1) : grad;
    if (g.weightDecay !== 0) d = add(d, mul(p, g.weightDecay));
    if (g.momentum !== 0) {
      const prev = s.momentumBuffer as Tensor | undefined;
      // Storages are immutable, so a view of the gradient is a safe "clone" for the first buffer.
      const buf = prev ? add(mul(prev, g.momentum), mul(d, 1 - g.dampening)) : detach(d);
      this.setState(s, 'momentumBuffer', buf);
      d = g.nesterov ? add(d, mul(buf, g.momentum)) : buf;
    }
    return sub(p, mul(d, g.lr));
  }
}
