import { ShapeError, type Tensor, fmtShape, linear, matmul } from '../../engine/index.js';
import { type ParamInitOptions, kaimingUniform, uniformInit } from '../init.js';
import { Module, parameter } from '../module.js';

export interface LinearOptions extends ParamInitOptions {
  /** Learn an additive bias (default true). */
  bias?: boolean;
}

/**
 * y = x·Wᵀ + b (torch.nn.Linear): weight [out, in], bias [out]. Initialised as PyTorch does:
 * weight ~ kaiming_uniform(a = √5) = U(−1/√in, 1/√in), bias ~ U(−1/√in, 1/√in) (weight drawn
 * first). x may have any number of leading dims.
 */
export class Linear extends Module<[Tensor], Tensor> {
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

  override extraRepr(): string {
    return `inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${this.bias !== null}`;
  }
}
