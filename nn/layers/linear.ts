import { ShapeError, type Tensor, fmtShape, linear, matmul } from '../../engine/index.js';
import { type ParamInitOptions, kaimingUniform, uniformInit } from '../init.js';
import { Module, parameter } from '../module.js';
import { type StackContext, type StackedStep, stackedParamOf } from '../stacking.js';
import type { FusableLayer, FusedActivation } from './container.js';

export interface LinearOptions extends ParamInitOptions {
  /** Learn an additive bias (default true). */
  bias?: boolean;
}

/**
 * y = x·Wᵀ + b (torch.nn.Linear): weight [out, in], bias [out]. Initialised as PyTorch does:
 * weight ~ kaiming_uniform(a = √5) = U(−1/√in, 1/√in), bias ~ U(−1/√in, 1/√in) (weight drawn
 * first). x may have any number of leading dims.
 */
export class Linear extends Module<[Tensor], Tensor> implements FusableLayer {
  weight: Tensor;
  bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: LinearOptions = {}) {
    super();
    this.weight = parameter(kaimingUniform([outFeatures, inFeatures], { ...opts, a: Math.sqrt(5) }));
    const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0;
    this.bias = opts.bias ?? true ? parameter(uniformInit([outFeatures], -bound, bound, opts)) : null;
  }

  forward(x: Tensor): Tensor {
    if (x.rank < 1 || x.shape[x.rank - 1] !== this.inFeatures) {
      throw new ShapeError(`Linear(${this.inFeatures}→${this.outFeatures}): expected input [..., ${this.inFeatures}], got ${fmtShape(x.shape)}`);
    }
    if (this.bias) return linear(x, this.weight, this.bias);
    return matmul(x, this.weight, { transposeB: true });
  }

  /**
   * Sequential's fusion ({@link FusableLayer}): `activation(forward(x))` as one kernel (bias and
   * ReLU in the matmul epilogue), or null when there is no fused form (no bias, or an input that
   * `forward` would reject, so that it throws its own error).
   */
  fusedForward(x: Tensor, activation: FusedActivation): Tensor | null {
    if (!this.bias || x.rank < 1 || x.shape[x.rank - 1] !== this.inFeatures) return null;
    return linear(x, this.weight, this.bias, activation);
  }

  /**
   * DeepEnsemble stacking: on the shared input [B, in] one matmul with the members' weights
   * concatenated, [B, M·out], viewed as [M, B, out]; on stacked activations [M, B, in] one batched
   * matmul with the weights stacked as [M, out, in]. A 4-D ('channels') input needs a Flatten first.
   */
  stackMembers(layers: readonly Module[], ctx: StackContext): StackedStep {
    const M = ctx.members;
    const out = this.outFeatures;
    const wStack = ctx.keep(stackedParamOf(ctx, layers, 'weight')); // [M, out, in]
    const wCat = ctx.keep(wStack.reshape([M * out, this.inFeatures])); // [M·out, in]
    const bRows = this.bias ? stackedParamOf(ctx, layers, 'bias') : null; // [M, out]
    const bCat = bRows ? ctx.keep(bRows.reshape([M * out])) : null;
    const bStack = bRows ? ctx.keep(bRows.reshape([M, 1, out])) : null; // [M, 1, out]
    return ({ h, layout }) => {
      if (layout === 'channels') throw new ShapeError('DeepEnsemble: Linear on 4-D activations needs a Flatten first');
      if (layout === 'input') {
        if (h.rank !== 2) throw new ShapeError(`DeepEnsemble: Linear input must be [B, F], got ${fmtShape(h.shape)}`);
        const y = bCat ? linear(h, wCat, bCat) : matmul(h, wCat, { transposeB: true }); // [B, M·out]
        return { h: y.reshape([h.shape[0], M, out]).permute([1, 0, 2]), layout: 'members' };
      }
      const y = matmul(h, wStack, { transposeB: true });
      return { h: bStack ? y.add(bStack) : y, layout: 'members' };
    };
  }

  override extraRepr(): string {
    return `inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${this.bias !== null}`;
  }
}
