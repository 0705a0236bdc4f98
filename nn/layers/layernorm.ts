import { ArgumentError, ShapeError, type Tensor, add, composite, fmtShape, mean, mul, ones, rsqrt, sub, variance, zeros } from '../../engine/index.js';
import type { ParamInitOptions } from '../init.js';
import { Module, parameter } from '../module.js';

function normShape(op: string, s: number | readonly number[]): number[] {
  const shape = typeof s === 'number' ? [s] : [...s];
  if (shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new ArgumentError(`${op}: normalizedShape must be a positive integer or a non-empty list of them, got ${JSON.stringify(s)}`);
  }
  return shape;
}

function checkEps(op: string, eps: number): number {
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new ArgumentError(`${op}: eps must be a finite number >= 0, got ${eps}`);
  return eps;
}

/**
 * Layer normalisation (torch.nn.functional.layer_norm) over the last `normalizedShape.length`
 * dims: y = (x − E[x]) / √(Var[x] + eps) · weight + bias, with the biased variance (divide by the
 * number of normalised elements, as PyTorch). `weight` and `bias` (optional) have shape
 * `normalizedShape`. Composed of library ops, so it runs on every backend and is differentiable
 * to any order.
 */
export function layerNorm(x: Tensor, normalizedShape: number | readonly number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  const op = 'layerNorm';
  const ns = normShape(op, normalizedShape);
  checkEps(op, eps);
  const k = ns.length;
  const tail = x.shape.slice(x.rank - k);
  if (x.rank < k || tail.some((d, i) => d !== ns[i])) {
    throw new ShapeError(`${op}: input ${fmtShape(x.shape)} must end with normalizedShape ${fmtShape(ns)}`);
  }
  for (const [name, p] of [['weight', weight], ['bias', bias]] as const) {
    if (p && (p.rank !== k || p.shape.some((d, i) => d !== ns[i]))) throw new ShapeError(`${op}: ${name} ${fmtShape(p.shape)} must have normalizedShape ${fmtShape(ns)}`);
  }
  const axes = ns.map((_, i) => x.rank - k + i);
  return composite(() => {
    let y = mul(sub(x, mean(x, axes, true)), rsqrt(add(variance(x, axes, true, 0), eps)));
    if (weight) y = mul(y, weight);
    if (bias) y = add(y, bias);
    return y;
  });
}

export interface LayerNormOptions extends ParamInitOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Learn a per-element weight (init 1) and bias (init 0) of shape normalizedShape (default true). */
  elementwiseAffine?: boolean;
  /** With elementwiseAffine: also learn the bias (default true; PyTorch ≥ 2.1's `bias` flag). */
  bias?: boolean;
}

/**
 * torch.nn.LayerNorm(normalizedShape): normalises over the trailing dims given by
 * `normalizedShape` (e.g. [D] for [N, L, D] activations). Parameters (stateDict keys as PyTorch):
 * `weight` (ones) and `bias` (zeros), both of shape normalizedShape, unless elementwiseAffine is
 * false. Same in training and eval mode (no running statistics).
 */
export class LayerNorm extends Module<[Tensor], Tensor> {
  weight: Tensor | null;
  bias: Tensor | null;
  readonly normalizedShape: number[];
  readonly eps: number;

  constructor(normalizedShape: number | readonly number[], opts: LayerNormOptions = {}) {
    super();
    this.normalizedShape = normShape('LayerNorm', normalizedShape);
    this.eps = checkEps('LayerNorm', opts.eps ?? 1e-5);
    const c = { backend: opts.backend, dtype: opts.dtype ?? 'float32' } as const;
    const affine = opts.elementwiseAffine ?? true;
    this.weight = affine ? parameter(ones(this.normalizedShape, c)) : null;
    this.bias = affine && (opts.bias ?? true) ? parameter(zeros(this.normalizedShape, c)) : null;
  }

  forward(x: Tensor): Tensor {
    try {
      return layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
    } catch (e) {
      if (e instanceof ShapeError) e.message = e.message.replace(/^layerNorm:/, `LayerNorm(${fmtShape(this.normalizedShape)}):`);
      throw e;
    }
  }

  override extraRepr(): string {
    return `${fmtShape(this.normalizedShape)}, eps=${this.eps}, elementwiseAffine=${this.weight !== null}`;
  }
}
