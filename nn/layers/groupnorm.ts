import { ArgumentError, ShapeError, type Tensor, add, composite, fmtShape, mean, mul, ones, reshape, rsqrt, sub, variance, zeros } from '../../engine/index.js';
import type { ParamInitOptions } from '../init.js';
import { Module, parameter } from '../module.js';

/**
 * Group normalisation (Wu & He 2018; torch.nn.functional.group_norm): x [N, C, *] is split into
 * `numGroups` groups of C/numGroups consecutive channels, each normalised over its channels and
 * all spatial positions: y = (x − E[x]) / √(Var[x] + eps) (biased variance, per sample and group),
 * then scaled and shifted per channel by `weight` [C] and `bias` [C] (optional). Composed of
 * library ops (reshape to [N, G, −1], mean/variance, reshape back).
 */
export function groupNorm(x: Tensor, numGroups: number, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  const op = 'groupNorm';
  if (!Number.isInteger(numGroups) || numGroups < 1) throw new ArgumentError(`${op}: numGroups must be a positive integer, got ${numGroups}`);
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new ArgumentError(`${op}: eps must be a finite number >= 0, got ${eps}`);
  if (x.rank < 2) throw new ShapeError(`${op}: expected input [N, C, *], got ${fmtShape(x.shape)}`);
  const [N, C] = x.shape;
  if (C % numGroups !== 0) throw new ShapeError(`${op}: numGroups ${numGroups} must divide the ${C} channels of input ${fmtShape(x.shape)}`);
  for (const [name, p] of [['weight', weight], ['bias', bias]] as const) {
    if (p && (p.rank !== 1 || p.shape[0] !== C)) throw new ShapeError(`${op}: ${name} ${fmtShape(p.shape)} must be [C] = [${C}]`);
  }
  if (x.size === 0) throw new ShapeError(`${op}: input ${fmtShape(x.shape)} is empty`);
  const cshape = x.shape.map((d, i) => (i === 1 ? C : 1));
  return composite(() => {
    const g = reshape(x, [N, numGroups, -1]);
    const yg = mul(sub(g, mean(g, 2, true)), rsqrt(add(variance(g, 2, true, 0), eps)));
    let y = reshape(yg, x.shape);
    if (weight) y = mul(y, reshape(weight, cshape));
    if (bias) y = add(y, reshape(bias, cshape));
    return y;
  });
}

export interface GroupNormOptions extends ParamInitOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Learn a per-channel weight (init 1) and bias (init 0) (default true). */
  affine?: boolean;
}

/**
 * torch.nn.GroupNorm(numGroups, numChannels) on [N, C, *] inputs. Parameters (stateDict keys as
 * PyTorch): `weight` [C] (ones) and `bias` [C] (zeros) when affine. No running statistics: the
 * same computation in training and eval mode. numGroups = 1 normalises over (C, *) like a
 * LayerNorm with per-channel affine; numGroups = C is instance normalisation.
 */
export class GroupNorm extends Module<[Tensor], Tensor> {
  weight: Tensor | null;
  bias: Tensor | null;
  readonly eps: number;

  constructor(readonly numGroups: number, readonly numChannels: number, opts: GroupNormOptions = {}) {
    super();
    for (const [k, v] of [['numGroups', numGroups], ['numChannels', numChannels]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new ArgumentError(`GroupNorm: ${k} must be a positive integer, got ${v}`);
    }
    if (numChannels % numGroups !== 0) throw new ArgumentError(`GroupNorm: numChannels ${numChannels} must be divisible by numGroups ${numGroups}`);
    this.eps = opts.eps ?? 1e-5;
    if (!(this.eps >= 0) || !Number.isFinite(this.eps)) throw new ArgumentError(`GroupNorm: eps must be a finite number >= 0, got ${this.eps}`);
    const c = { backend: opts.backend, dtype: opts.dtype ?? 'float32' } as const;
    const affine = opts.affine ?? true;
    this.weight = affine ? parameter(ones([numChannels], c)) : null;
    this.bias = affine ? parameter(zeros([numChannels], c)) : null;
  }

  forward(x: Tensor): Tensor {
    if (x.rank < 2 || x.shape[1] !== this.numChannels) {
      throw new ShapeError(`GroupNorm(${this.numGroups}, ${this.numChannels}): expected input [N, ${this.numChannels}, *], got ${fmtShape(x.shape)}`);
    }
    return groupNorm(x, this.numGroups, this.weight, this.bias, this.eps);
  }

  override extraRepr(): string {
    return `${this.numGroups}, ${this.numChannels}, eps=${this.eps}, affine=${this.weight !== null}`;
  }
}
