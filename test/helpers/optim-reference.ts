// Op-by-op reference updates of the optimisers, written with the library's elementwise ops
// (`add`, `mul`, `div`, `sqrt`, ... with scalar operands), i.e. the updates the fused
// `adamStep` / `sgdStep` ops replace. test/optim-fused.test.ts checks that the fused ops give
// the same values (bit for bit on the CPU). Same classes as the real optimisers (defaults,
// validation, state keys); only `update` differs.
import { type Tensor, Adam, AdamW, SGD, add, detach, div, maximum, mul, sqrt, square, sub } from '../../node.js';
import type { AdamOptions, ParamGroup, ParamState, SGDOptions } from '../../node.js';

type Setter = (s: ParamState, k: string, v: Tensor) => void;

/** m ← β₁m + (1−β₁)d; v ← β₂v + (1−β₂)d²; returns p − (lr/bc₁)·m/(√v̂/√bc₂ + eps). */
function adamStep(set: Setter, p: Tensor, d: Tensor, g: ParamGroup<AdamOptions>, s: ParamState): Tensor {
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

export class OpByOpAdam extends Adam {
  protected override update(p: Tensor, grad: Tensor, g: ParamGroup<AdamOptions>, s: ParamState): Tensor {
    let d = g.maximize ? mul(grad, -1) : grad;
    if (g.weightDecay !== 0) d = add(d, mul(p, g.weightDecay));
    return adamStep((st, k, v) => this.setState(st, k, v), p, d, g, s);
  }
}

export class OpByOpAdamW extends AdamW {
  protected override update(p: Tensor, grad: Tensor, g: ParamGroup<AdamOptions>, s: ParamState): Tensor {
    const d = g.maximize ? mul(grad, -1) : grad;
    const decayed = g.weightDecay !== 0 ? mul(p, 1 - g.lr * g.weightDecay) : p;
    return adamStep((st, k, v) => this.setState(st, k, v), decayed, d, g, s);
  }
}

export class OpByOpSGD extends SGD {
  protected override update(p: Tensor, grad: Tensor, g: ParamGroup<SGDOptions>, s: ParamState): Tensor {
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
