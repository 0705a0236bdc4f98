import { ShapeError, type Tensor, adaptiveAvgPool2d, avgPool2d, fmtShape, maxPool2d } from '../../engine/index.js';
import { Module } from '../module.js';
import { type StackedStep, elementwiseStep } from '../stacking.js';
import type { Pair } from './conv.js';
const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

/** [N, C, H, W], or unbatched [C, H, W] as PyTorch. */
function check4d(layer: string, x: Tensor): void {
  if (x.rank !== 4 && x.rank !== 3) throw new ShapeError(`${layer}: expected input [N, C, H, W] or unbatched [C, H, W], got ${fmtShape(x.shape)}`);
}

/** 2-D max pooling (torch.nn.MaxPool2d, with ceilMode); stride defaults to the kernel size. */
export class MaxPool2d extends Module<[Tensor], Tensor> {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly ceilMode: boolean;
  constructor(kernelSize: Pair, opts: { stride?: Pair; padding?: Pair; dilation?: Pair; ceilMode?: boolean } = {}) {
    super();
    this.kernelSize = pair(kernelSize);
    this.stride = pair(opts.stride ?? kernelSize);
    this.padding = pair(opts.padding ?? 0);
    this.dilation = pair(opts.dilation ?? 1);
    this.ceilMode = opts.ceilMode ?? false;
  }
  forward(x: Tensor): Tensor {
    check4d('MaxPool2d', x);
    return maxPool2d(x, { kernelSize: this.kernelSize, stride: this.stride, padding: this.padding, dilation: this.dilation, ceilMode: this.ceilMode });
  }
  override extraRepr(): string {
    return `kernelSize=[${this.kernelSize}], stride=[${this.stride}], padding=[${this.padding}]`;
  }
  /** DeepEnsemble stacking: pools each channel on its own, so it runs unchanged on [B, M·C, H, W]. */
  stackMembers(): StackedStep { return elementwiseStep((h) => this.forward(h)); }
}

/** 2-D average pooling (torch.nn.AvgPool2d; countIncludePad default true as PyTorch; ceilMode). */
export class AvgPool2d extends Module<[Tensor], Tensor> {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly countIncludePad: boolean;
  readonly ceilMode: boolean;
  readonly divisorOverride: number | undefined;
  constructor(kernelSize: Pair, opts: { stride?: Pair; padding?: Pair; countIncludePad?: boolean; ceilMode?: boolean; divisorOverride?: number } = {}) {
    super();
    this.kernelSize = pair(kernelSize);
    this.stride = pair(opts.stride ?? kernelSize);
    this.padding = pair(opts.padding ?? 0);
    this.countIncludePad = opts.countIncludePad ?? true;
    this.ceilMode = opts.ceilMode ?? false;
    this.divisorOverride = opts.divisorOverride;
  }
  forward(x: Tensor): Tensor {
    check4d('AvgPool2d', x);
    return avgPool2d(x, {
      kernelSize: this.kernelSize, stride: this.stride, padding: this.padding, countIncludePad: this.countIncludePad, ceilMode: this.ceilMode, divisorOverride: this.divisorOverride,
    });
  }
  override extraRepr(): string {
    return `kernelSize=[${this.kernelSize}], stride=[${this.stride}], padding=[${this.padding}]`;
  }
  /** DeepEnsemble stacking: pools each channel on its own, so it runs unchanged on [B, M·C, H, W]. */
  stackMembers(): StackedStep { return elementwiseStep((h) => this.forward(h)); }
}

/** Adaptive average pooling to a fixed [h, w] output (torch.nn.AdaptiveAvgPool2d). */
export class AdaptiveAvgPool2d extends Module<[Tensor], Tensor> {
  readonly outputSize: [number, number];
  constructor(outputSize: Pair) {
    super();
    this.outputSize = pair(outputSize);
  }
  forward(x: Tensor): Tensor {
    check4d('AdaptiveAvgPool2d', x);
    return adaptiveAvgPool2d(x, this.outputSize);
  }
  override extraRepr(): string {
    return `outputSize=[${this.outputSize}]`;
  }
  /** DeepEnsemble stacking: pools each channel on its own, so it runs unchanged on [B, M·C, H, W]. */
  stackMembers(): StackedStep { return elementwiseStep((h) => this.forward(h)); }
}
