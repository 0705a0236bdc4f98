import { ArgumentError, ShapeError, type Tensor, concat, conv2d, conv2dBiasAct, convTranspose2d, fmtShape } from '../../engine/index.js';
import { type ParamInitOptions, fanInAndFanOut, kaimingUniform, uniformInit } from '../init.js';
import { Module, parameter } from '../module.js';
import { type StackContext, type StackedStep, stackedParamOf } from '../stacking.js';
import type { FusableLayer, FusedActivation } from './container.js';

export type Pair = number | [number, number];

export interface Conv2dLayerOptions extends ParamInitOptions {
  stride?: Pair;
  /** Zero padding per side, or 'valid' (0) / 'same' (stride 1 only; odd totals put the extra row/col at the bottom/right, as PyTorch). */
  padding?: Pair | 'valid' | 'same';
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

export interface ConvTranspose2dLayerOptions extends ParamInitOptions {
  stride?: Pair;
  padding?: Pair;
  outputPadding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);


function checkChannels(layer: string, inC: number, outC: number, groups: number): void {
  for (const [k, v] of [['inChannels', inC], ['outChannels', outC], ['groups', groups]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new ArgumentError(`${layer}: ${k} must be a positive integer, got ${v}`);
  }
  if (inC % groups || outC % groups) throw new ArgumentError(`${layer}: inChannels ${inC} and outChannels ${outC} must be divisible by groups ${groups}`);
}

/**
 * 2-D convolution (torch.nn.Conv2d) on [N, C, H, W] (or unbatched [C, H, W]): weight [out, in/groups, kh, kw], bias [out].
 * PyTorch init: weight ~ kaiming_uniform(a = √5), bias ~ U(±1/√fan_in), fan_in = in/groups·kh·kw.
 */
export class Conv2d extends Module<[Tensor], Tensor> implements FusableLayer {
  weight: Tensor;
  bias: Tensor | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number] | 'same';
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Pair, opts: Conv2dLayerOptions = {}) {
    super();
    this.groups = opts.groups ?? 1;
    checkChannels('Conv2d', inChannels, outChannels, this.groups);
    this.kernelSize = pair(kernelSize);
    this.stride = pair(opts.stride ?? 1);
    this.dilation = pair(opts.dilation ?? 1);
    const p = opts.padding ?? 0;
    if (p === 'valid') this.padding = [0, 0];
    else if (p === 'same') {
      if (this.stride[0] !== 1 || this.stride[1] !== 1) throw new ArgumentError(`Conv2d: padding 'same' needs stride 1, got [${this.stride}]`);
      this.padding = 'same';
    } else this.padding = pair(p);
    const shape = [outChannels, inChannels / this.groups, ...this.kernelSize];
    this.weight = parameter(kaimingUniform(shape, { ...opts, a: Math.sqrt(5) }));
    const [fanIn] = fanInAndFanOut(shape);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    this.bias = opts.bias ?? true ? parameter(uniformInit([outChannels], -bound, bound, opts)) : null;
  }

  forward(x: Tensor): Tensor {
    if ((x.rank !== 4 && x.rank !== 3) || x.shape[x.rank - 3] !== this.inChannels) {
      throw new ShapeError(`Conv2d(${this.inChannels}→${this.outChannels}): expected input [N, ${this.inChannels}, H, W] (or unbatched [${this.inChannels}, H, W]), got ${fmtShape(x.shape)}`);
    }
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
  }

  /**
   * Sequential's fusion ({@link FusableLayer}): `activation(forward(x))` as one kernel (bias and
   * ReLU in the convolution epilogue), or null when there is no fused form (no bias, or an input
   * other than a batched [N, inChannels, H, W]).
   */
  fusedForward(x: Tensor, activation: FusedActivation): Tensor | null {
    if (!this.bias || x.rank !== 4 || x.shape[1] !== this.inChannels) return null;
    return conv2dBiasAct(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups }, activation);
  }

  /**
   * DeepEnsemble stacking: ONE grouped convolution with the members' weights concatenated along
   * the output channels. On the shared input the groups are the layer's own (every member reads
   * the same input: output [B, M·out, H, W] without copying the input M times); on stacked
   * activations [B, M·in, H, W] the groups are M·groups, so member m only sees its own channels.
   */
  stackMembers(layers: readonly Module[], ctx: StackContext): StackedStep {
    const M = ctx.members;
    // [M, out, in/groups, kh, kw] viewed as [M·out, ...]: the members' weights along the output channels.
    const w = ctx.keep(stackedParamOf(ctx, layers, 'weight').reshape([M * this.outChannels, ...this.weight.shape.slice(1)]));
    const b = this.bias ? ctx.keep(stackedParamOf(ctx, layers, 'bias').reshape([M * this.outChannels])) : null;
    const opts = { stride: this.stride, padding: this.padding, dilation: this.dilation };
    const groups = this.groups;
    return ({ h, layout }) => {
      if (layout === 'members') {
        // Per-member images [M, B, C, H, W] (stacked training, each member its own batch):
        // members side by side in the channel dim.
        if (h.rank !== 5) throw new ShapeError('DeepEnsemble: Conv2d after a flattening layer is not supported');
        const [, B, C, H, W] = h.shape;
        h = h.permute([1, 0, 2, 3, 4]).reshape([B, M * C, H, W]);
        layout = 'channels';
      }
      return { h: conv2d(h, w, b, { ...opts, groups: layout === 'input' ? groups : groups * M }), layout: 'channels' };
    };
  }

  override extraRepr(): string {
    return `${this.inChannels}, ${this.outChannels}, kernelSize=[${this.kernelSize}], stride=[${this.stride}], padding=${this.padding === 'same' ? "'same'" : `[${this.padding}]`}` +
      (this.groups !== 1 ? `, groups=${this.groups}` : '') + (this.bias ? '' : ', bias=false');
  }
}

/**
 * Transposed 2-D convolution (torch.nn.ConvTranspose2d): weight [in, out/groups, kh, kw], bias
 * [out]. PyTorch init (same rule as Conv2d, applied to this layout, so fan_in = out/groups·kh·kw).
 */
export class ConvTranspose2d extends Module<[Tensor], Tensor> {
  weight: Tensor;
  bias: Tensor | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly outputPadding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Pair, opts: ConvTranspose2dLayerOptions = {}) {
    super();
    this.groups = opts.groups ?? 1;
    checkChannels('ConvTranspose2d', inChannels, outChannels, this.groups);
    this.kernelSize = pair(kernelSize);
    this.stride = pair(opts.stride ?? 1);
    this.padding = pair(opts.padding ?? 0);
    this.outputPadding = pair(opts.outputPadding ?? 0);
    this.dilation = pair(opts.dilation ?? 1);
    const shape = [inChannels, outChannels / this.groups, ...this.kernelSize];
    this.weight = parameter(kaimingUniform(shape, { ...opts, a: Math.sqrt(5) }));
    const [fanIn] = fanInAndFanOut(shape);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    this.bias = opts.bias ?? true ? parameter(uniformInit([outChannels], -bound, bound, opts)) : null;
  }

  forward(x: Tensor): Tensor {
    if ((x.rank !== 4 && x.rank !== 3) || x.shape[x.rank - 3] !== this.inChannels) {
      throw new ShapeError(`ConvTranspose2d(${this.inChannels}→${this.outChannels}): expected input [N, ${this.inChannels}, H, W] (or unbatched [${this.inChannels}, H, W]), got ${fmtShape(x.shape)}`);
    }
    return convTranspose2d(x, this.weight, this.bias, {
      stride: this.stride, padding: this.padding, outputPadding: this.outputPadding, dilation: this.dilation, groups: this.groups,
    });
  }

  override extraRepr(): string {
    return `${this.inChannels}, ${this.outChannels}, kernelSize=[${this.kernelSize}], stride=[${this.stride}], padding=[${this.padding}]`;
  }
}
