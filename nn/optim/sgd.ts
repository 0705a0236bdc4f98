import { ArgumentError, type SGDOptions, type Tensor, fusedSgd } from '../../engine/index.js';
import { type ParamGroup, type ParamState, type ParamsArg, Optimizer } from './optimizer.js';

export type { SGDOptions };

/**
 * Stochastic gradient descent with momentum (torch.optim.SGD, same update order):
 * g ← ∇ + wd·p; b ← g on the first step, then b ← μ·b + (1−dampening)·g;
 * g ← g + μ·b (Nesterov) or g ← b; p ← p − lr·g. Each parameter is updated by one fused
 * kernel (engine op `sgdStep`).
 */
export class SGD extends Optimizer<SGDOptions> {
  constructor(params: ParamsArg<SGDOptions>, opts: Partial<SGDOptions> & { lr: number }) {
    super(params, { lr: opts.lr, momentum: opts.momentum ?? 0, dampening: opts.dampening ?? 0, weightDecay: opts.weightDecay ?? 0, nesterov: opts.nesterov ?? false, maximize: opts.maximize ?? false });
  }

  protected override validate(g: ParamGroup<SGDOptions>): void {
    super.validate(g);
    if (!(g.momentum >= 0)) throw new ArgumentError(`SGD: momentum must be ≥ 0, got ${g.momentum}`);
    if (!(g.weightDecay >= 0)) throw new ArgumentError(`SGD: weightDecay must be ≥ 0, got ${g.weightDecay}`);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) throw new ArgumentError('SGD: Nesterov momentum requires momentum > 0 and dampening 0');
  }

  protected update(p: Tensor, grad: Tensor, g: ParamGroup<SGDOptions>, s: ParamState): Tensor {
    const prev = g.momentum !== 0 ? ((s.momentumBuffer as Tensor | undefined) ?? null) : null;
    const r = fusedSgd(p, grad, prev, g);
    if (r.momentumBuffer) this.setState(s, 'momentumBuffer', r.momentumBuffer);
    return r.param;
  }
}
