import {
  ArgumentError, ShapeError, type Tensor, concat, conv2d, fmtShape, keep, linear, matmul, noGrad, softmax, stack, tidy,
} from '../engine/index.js';
import { manualSeed } from '../engine/ops/random.js';
import { Module } from '../nn/module.js';
import { Linear } from '../nn/layers/linear.js';
import { Conv2d } from '../nn/layers/conv.js';
import { Flatten, Sequential } from '../nn/layers/container.js';
import { BatchNorm1d, BatchNorm2d } from '../nn/layers/batchnorm.js';
import { MaxPool2d, AvgPool2d, AdaptiveAvgPool2d } from '../nn/layers/pooling.js';
import { Dropout } from '../nn/layers/dropout.js';
import { GELU, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh, Identity } from '../nn/layers/activation.js';
import { type SampledPrediction, summarizeSamples } from './sampling.js';
import { regressionUncertainty, type RegressionUncertainty } from './scores.js';

/** Layers that act per channel / per element and therefore run unchanged on stacked activations. */
const PASS_THROUGH = [ReLU, GELU, Tanh, Sigmoid, Softplus, LeakyReLU, Identity, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d];

/** A model that lists its layers in execution order (e.g. LeNet5). */
interface HasSequentialLayers {
  sequentialLayers(): Module[];
}

function flattenLayers(m: Module): Module[] {
  if (m instanceof Sequential) return m.children().flatMap(flattenLayers);
  const s = m as Partial<HasSequentialLayers>;
  if (typeof s.sequentialLayers === 'function') return s.sequentialLayers().flatMap(flattenLayers);
  return [m];
}

type Step = (h: Tensor, layout: Layout) => { h: Tensor; layout: Layout };
/** 'input': the shared input; 'conv': [B, M·C, H, W] (members side by side in channels); 'flat': [M, B, F]. */
type Layout = 'input' | 'conv' | 'flat';

/**
 * A deep ensemble (Lakshminarayanan et al. 2017) of M members with the same architecture,
 * evaluated in ONE batched pass: member weights are stacked on a leading axis once, convolutions
 * run as a single grouped convolution (members side by side in the channel dim; the first conv
 * concatenates output channels so the shared input is not copied), linear layers as one batched
 * matmul [M, B, in] × [M, in, out], and pooling/activations unchanged on the stacked activations.
 * Supported members: `Sequential`s (nested allowed), or models with `sequentialLayers()`, of Conv2d, Linear, Flatten, BatchNorm1d/2d
 * (eval), Dropout (eval), ReLU/GELU/Tanh/Sigmoid/Softplus/LeakyReLU/Identity, MaxPool2d,
 * AvgPool2d, AdaptiveAvgPool2d. Call `refresh()` after changing member weights.
 */
export class DeepEnsemble {
  private steps: Step[] | null = null;
  private stacked: Tensor[] = [];

  constructor(readonly members: Module[]) {
    if (members.length < 1) throw new ArgumentError('DeepEnsemble: needs at least one member');
  }

  /**
   * Builds M members with `factory(i)`, seeding the global generator with `seed + i` first so
   * each member gets its own initialisation (train them with differently shuffled data too).
   */
  static create(factory: (i: number) => Module, count: number, seed = 0): DeepEnsemble {
    const members: Module[] = [];
    for (let i = 0; i < count; i++) {
      manualSeed(seed + i);
      members.push(factory(i));
    }
    return new DeepEnsemble(members);
  }

  get size(): number {
    return this.members.length;
  }

  eval(): this {
    for (const m of this.members) m.eval();
    this.refresh();
    return this;
  }

  /** Drops the stacked weights (rebuilt from the members on the next forward). */
  refresh(): void {
    for (const t of this.stacked) t.dispose();
    this.stacked = [];
    this.steps = null;
  }

  dispose(): void {
    this.refresh();
  }

  private keepStacked(t: Tensor): Tensor {
    this.stacked.push(keep(t));
    return t;
  }

  private build(): Step[] {
    const M = this.size;
    const layers = this.members.map(flattenLayers);
    const L = layers[0].length;
    for (const ls of layers) {
      if (ls.length !== L) throw new ArgumentError('DeepEnsemble: members must share one architecture (different layer counts)');
    }
    const steps: Step[] = [];
    noGrad(() => {
      for (let l = 0; l < L; l++) {
        const first = layers[0][l];
        const all = layers.map((ls) => ls[l]);
        if (!all.every((m) => m.constructor === first.constructor)) {
          throw new ArgumentError(`DeepEnsemble: layer ${l} differs between members`);
        }
        if (first instanceof Conv2d) {
          const convs = all as Conv2d[];
          if (first.padding === 'same' && first.stride.some((s) => s !== 1)) throw new ArgumentError('DeepEnsemble: unsupported conv');
          const w = this.keepStacked(concat(convs.map((c) => c.weight), 0));
          const b = first.bias ? this.keepStacked(concat(convs.map((c) => c.bias!), 0)) : null;
          const opts = { stride: first.stride, padding: first.padding, dilation: first.dilation };
          steps.push((h, layout) => {
            if (layout === 'flat') throw new ShapeError('DeepEnsemble: Conv2d after a flattening layer is not supported');
            const groups = layout === 'input' ? first.groups : first.groups * M;
            return { h: conv2d(h, w, b, { ...opts, groups }), layout: 'conv' };
          });
        } else if (first instanceof Linear) {
          const lins = all as Linear[];
          const wCat = this.keepStacked(concat(lins.map((m) => m.weight), 0)); // [M·out, in]
          const bCat = first.bias ? this.keepStacked(concat(lins.map((m) => m.bias!), 0)) : null;
          const wStack = this.keepStacked(stack(lins.map((m) => m.weight), 0)); // [M, out, in]
          const bStack = first.bias ? this.keepStacked(stack(lins.map((m) => m.bias!.reshape([1, -1])), 0)) : null; // [M, 1, out]
          const out = first.outFeatures;
          steps.push((h, layout) => {
            if (layout === 'conv') throw new ShapeError('DeepEnsemble: Linear on 4-D activations needs a Flatten first');
            if (layout === 'input') {
              if (h.rank !== 2) throw new ShapeError(`DeepEnsemble: Linear input must be [B, F], got ${fmtShape(h.shape)}`);
              const y = bCat ? linear(h, wCat, bCat) : matmul(h, wCat, { transposeB: true }); // [B, M·out]
              return { h: y.reshape([h.shape[0], M, out]).permute([1, 0, 2]), layout: 'flat' };
            }
            const y = matmul(h, wStack, { transposeB: true });
            return { h: bStack ? y.add(bStack) : y, layout: 'flat' };
          });
        } else if (first instanceof Flatten) {
          steps.push((h, layout) => {
            if (layout === 'flat') return { h, layout };
            if (layout === 'input') return { h: first.forward(h), layout };
            const B = h.shape[0];
            return { h: h.reshape([B, M, -1]).permute([1, 0, 2]), layout: 'flat' };
          });
        } else if (first instanceof BatchNorm2d || first instanceof BatchNorm1d) {
          const bns = all as (BatchNorm1d | BatchNorm2d)[];
          if (bns.some((bn) => !bn.runningMean || !bn.runningVar)) throw new ArgumentError('DeepEnsemble: BatchNorm without running statistics');
          // Eval-mode BatchNorm is a per-channel affine map: y = x·scale + shift.
          const scales = bns.map((bn) => (bn.weight ? bn.weight : bn.runningVar!.mul(0).add(1)).div(bn.runningVar!.add(bn.eps).sqrt()));
          const shifts = bns.map((bn, i) => (bn.bias ? bn.bias : bn.runningMean!.mul(0)).sub(bn.runningMean!.mul(scales[i])));
          const scale = this.keepStacked(concat(scales, 0));
          const shift = this.keepStacked(concat(shifts, 0));
          const C = first.numFeatures;
          steps.push((h, layout) => {
            if (layout === 'input') throw new ArgumentError('DeepEnsemble: BatchNorm as the first layer is not supported');
            if (layout === 'conv') {
              const s4 = scale.reshape([1, M * C, 1, 1]);
              return { h: h.mul(s4).add(shift.reshape([1, M * C, 1, 1])), layout };
            }
            return { h: h.mul(scale.reshape([M, 1, C])).add(shift.reshape([M, 1, C])), layout };
          });
        } else if (first instanceof Dropout) {
          steps.push((h, layout) => ({ h, layout }));
        } else if (PASS_THROUGH.some((k) => first instanceof k)) {
          steps.push((h, layout) => ({ h: first.forward(h) as Tensor, layout }));
        } else {
          throw new ArgumentError(`DeepEnsemble: layer ${l} (${first.constructor.name}) is not supported by the stacked forward`);
        }
      }
    });
    return steps;
  }

  /** All members' outputs in ONE batched pass: [M, B, ...]. */
  forward(x: Tensor): Tensor {
    this.steps ??= this.build();
    const steps = this.steps;
    const M = this.size;
    return noGrad(() =>
      tidy(() => {
        let h = x;
        let layout: Layout = 'input';
        for (const s of steps) ({ h, layout } = s(h, layout));
        if (layout === 'conv') {
          const [B, MC, ...spatial] = h.shape;
          const perm = [1, 0, ...Array.from({ length: spatial.length + 1 }, (_, i) => i + 2)];
          return h.reshape([B, M, MC / M, ...spatial]).permute(perm);
        }
        if (layout === 'input') return stack(new Array(M).fill(h), 0);
        return h;
      }),
    );
  }

  /** Reference: members run one by one (what `forward` must equal). */
  forwardLoop(x: Tensor): Tensor {
    return noGrad(() => tidy(() => stack(this.members.map((m) => m.forward(x) as Tensor), 0)));
  }

  /** Classification: softmax of every member and the MC-style summary (higher = more uncertain). */
  predict(x: Tensor): SampledPrediction {
    const logits = this.forward(x);
    const probs = noGrad(() => softmax(logits, -1));
    logits.dispose();
    return summarizeSamples(probs);
  }

  /**
   * Regression with Gaussian heads whose last dim holds (μ, log σ²): mean of means, aleatoric =
   * mean of variances, epistemic = variance of means.
   */
  predictRegression(x: Tensor): RegressionUncertainty {
    const out = this.forward(x);
    const r = noGrad(() => tidy(() => {
      const last = out.shape[out.rank - 1];
      if (last !== 2) throw new ShapeError(`DeepEnsemble.predictRegression: expected outputs [M, B, 2] = (mean, logVar), got ${fmtShape(out.shape)}`);
      const mu = out.slice([0, 0, 0], [-1, -1, 1]).squeeze(2);
      const v = out.slice([0, 0, 1], [-1, -1, 1]).squeeze(2).exp();
      return regressionUncertainty(mu, v);
    }));
    out.dispose();
    return r;
  }
}
