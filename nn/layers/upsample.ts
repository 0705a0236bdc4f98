import { type InterpolateMode, type Tensor, interpolate } from '../../engine/index.js';
import { Module } from '../module.js';

export interface UpsampleOptions {
  size?: number | readonly number[];
  scaleFactor?: number | readonly number[];
  /** Default 'nearest' (as torch.nn.Upsample). */
  mode?: InterpolateMode;
  alignCorners?: boolean;
  recomputeScaleFactor?: boolean;
}

/**
 * torch.nn.Upsample: `interpolate` as a layer (no parameters). Give exactly one of size and
 * scaleFactor; inputs are [N, C, L] / [N, C, H, W] / [N, C, D, H, W] as for `interpolate`.
 */
export class Upsample extends Module<[Tensor], Tensor> {
  constructor(readonly options: UpsampleOptions) {
    super();
  }

  forward(x: Tensor): Tensor {
    return interpolate(x, this.options);
  }

  override extraRepr(): string {
    const o = this.options;
    return [o.size !== undefined ? `size=${JSON.stringify(o.size)}` : `scaleFactor=${JSON.stringify(o.scaleFactor)}`, `mode='${o.mode ?? 'nearest'}'`].join(', ');
  }
}
