import {
  ArgumentError, ShapeError, type Tensor, add, composite, concat, fmtShape, full, mean, mul, noGrad, ones, rsqrt, sub, tidy, variance, zeros,
} from '../../engine/index.js';
import { assignInPlace } from '../assign.js';
import type { ParamInitOptions } from '../init.js';
import { Module, buffer, parameter } from '../module.js';
import type { StackContext, StackedStep } from '../stacking.js';

export interface BatchNormOptions extends ParamInitOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Running statistics update: r ← (1 − momentum)·r + momentum·batch (default 0.1). */
  momentum?: number;
  /** Learnable per-channel scale (weight, init 1) and shift (bias, init 0) (default true). */
  affine?: boolean;
  /** Keep running mean/var and use them in eval mode (default true). */
  trackRunningStats?: boolean;
}

/**
 * Batch normalisation over all dims except the channel dim 1 (torch.nn.BatchNorm*d). Training:
 * normalises with the batch mean and biased variance, and updates the running mean and the
 * running **unbiased** variance (n/(n−1) correction, as PyTorch) with `momentum`; eval: uses the
 * running statistics. Buffers: runningMean [C] (0), runningVar [C] (1), numBatchesTracked (int32 scalar).
 */
abstract class BatchNormNd extends Module<[Tensor], Tensor> {
  weight: Tensor | null;
  bias: Tensor | null;
  runningMean: Tensor | null;
  runningVar: Tensor | null;
  numBatchesTracked: Tensor | null;
  readonly eps: number;
  readonly momentum: number;

  protected abstract readonly ranks: readonly number[];

  constructor(readonly numFeatures: number, opts: BatchNormOptions = {}) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures < 1) throw new ArgumentError(`${new.target.name}: numFeatures must be a positive integer, got ${numFeatures}`);
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    if (!(this.momentum >= 0 && this.momentum <= 1)) throw new ArgumentError(`${new.target.name}: momentum must be in [0, 1], got ${this.momentum}`);
    const c = { backend: opts.backend, dtype: opts.dtype ?? 'float32' } as const;
    const affine = opts.affine ?? true;
    this.weight = affine ? parameter(ones([numFeatures], c)) : null;
    this.bias = affine ? parameter(zeros([numFeatures], c)) : null;
    const track = opts.trackRunningStats ?? true;
    this.runningMean = track ? buffer(zeros([numFeatures], c)) : null;
    this.runningVar = track ? buffer(ones([numFeatures], c)) : null;
    this.numBatchesTracked = track ? buffer(full([], 0, { backend: opts.backend, dtype: 'int32' })) : null;
  }

  forward(x: Tensor): Tensor {
    const name = this.constructor.name;
    if (!this.ranks.includes(x.rank) || x.shape[1] !== this.numFeatures) {
      throw new ShapeError(`${name}(${this.numFeatures}): expected input of rank ${this.ranks.join(' or ')} with ${this.numFeatures} channels in dim 1, got ${fmtShape(x.shape)}`);
    }
    const C = this.numFeatures;
    const axes = x.shape.map((_, i) => i).filter((i) => i !== 1);
    const bshape = x.shape.map((d, i) => (i === 1 ? C : 1));
    const useBatch = this.training || !this.runningMean;
    const n = x.size / C;
    if (this.training && n <= 1) throw new ArgumentError(`${name}: expected more than 1 value per channel when training, got input ${fmtShape(x.shape)}`);
    return composite(() => {
      let mu: Tensor;
      let v: Tensor;
      if (useBatch) {
        mu = mean(x, axes, true);
        v = variance(x, axes, true, 0);
        if (this.training && this.runningMean && this.runningVar && this.numBatchesTracked) {
          const rm = this.runningMean;
          const rv = this.runningVar;
          const nbt = this.numBatchesTracked;
          const m = this.momentum;
          tidy(() => noGrad(() => {
            assignInPlace(rm, add(mul(rm, 1 - m), mul(mu.reshape([C]), m)), `${name} runningMean`);
            assignInPlace(rv, add(mul(rv, 1 - m), mul(v.reshape([C]), (m * n) / (n - 1))), `${name} runningVar`);
            assignInPlace(nbt, add(nbt, 1), `${name} numBatchesTracked`);
          }));
        }
      } else {
        mu = this.runningMean!.reshape(bshape);
        v = this.runningVar!.reshape(bshape);
      }
      let y = mul(sub(x, mu), rsqrt(add(v, this.eps)));
      if (this.weight && this.bias) y = add(mul(y, this.weight.reshape(bshape)), this.bias.reshape(bshape));
      return y;
    });
  }

  /**
   * DeepEnsemble stacking (eval mode): BatchNorm with running statistics is the per-channel affine
   * map y = x·s + t, s = γ/√(var + eps), t = β − mean·s; the members' s and t are concatenated
   * and applied to [B, M·C, ...] ('channels') or [M, B, C] ('members') activations.
   */
  stackMembers(layers: readonly Module[], ctx: StackContext): StackedStep {
    const bns = layers as readonly BatchNormNd[];
    if (bns.some((bn) => !bn.runningMean || !bn.runningVar)) throw new ArgumentError('DeepEnsemble: BatchNorm without running statistics');
    const M = ctx.members;
    const scales = bns.map((bn) => (bn.weight ? bn.weight : bn.runningVar!.mul(0).add(1)).div(bn.runningVar!.add(bn.eps).sqrt()));
    const shifts = bns.map((bn, i) => (bn.bias ? bn.bias : bn.runningMean!.mul(0)).sub(bn.runningMean!.mul(scales[i])));
    const scale = ctx.keep(concat(scales, 0));
    const shift = ctx.keep(concat(shifts, 0));
    const C = this.numFeatures;
    return ({ h, layout }) => {
      if (layout === 'input') throw new ArgumentError('DeepEnsemble: BatchNorm as the first layer is not supported');
      if (layout === 'channels') return { h: h.mul(scale.reshape([1, M * C, 1, 1])).add(shift.reshape([1, M * C, 1, 1])), layout };
      return { h: h.mul(scale.reshape([M, 1, C])).add(shift.reshape([M, 1, C])), layout };
    };
  }

  override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}, affine=${this.weight !== null}`;
  }
}

/** BatchNorm over [N, C] or [N, C, L] inputs. */
export class BatchNorm1d extends BatchNormNd {
  protected readonly ranks = [2, 3];
}

/** BatchNorm over [N, C, H, W] inputs. */
export class BatchNorm2d extends BatchNormNd {
  protected readonly ranks = [4];
}
