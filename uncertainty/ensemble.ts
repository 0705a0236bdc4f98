import {
  ArgumentError, fmtShape, keep, manualSeed, noGrad, ShapeError, softmax, stack, type Tensor, tidy,
} from '../engine/index.js';
import { Module } from '../nn/module.js';
import { Sequential } from '../nn/layers/container.js';
import { type StackContext, type StackedLayout, type StackedStep, isStackable } from '../nn/stacking.js';
import { type SampledPrediction, summarizeSamples } from './sampling.js';
import { regressionUncertainty, type RegressionUncertainty } from './scores.js';

export type { Stackable, StackContext, StackedActivation, StackedLayout, StackedStep } from '../nn/stacking.js';
export { isStackable, elementwiseStep, identityStep } from '../nn/stacking.js';

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

/** The prototype (class) that defines `key` for `m`, searching from the most derived class. */
function definingClass(m: object, key: string): object | null {
  for (let p = Object.getPrototypeOf(m); p && p !== Module.prototype; p = Object.getPrototypeOf(p)) {
    if (Object.prototype.hasOwnProperty.call(p, key)) return p;
  }
  return null;
}

/**
 * The stacked step of layer `l` (the members' instances `all`): the layer's own
 * `stackMembers`. A subclass that overrides `forward` but inherits `stackMembers` is refused,
 * since the inherited stacking would silently bypass its forward.
 */
function stepFor(l: number, all: Module[], ctx: StackContext): StackedStep {
  const first = all[0];
  const name = first.constructor.name;
  if (!isStackable(first)) {
    throw new ArgumentError(`DeepEnsemble: layer ${l} (${name}) is not supported by the stacked forward: it does not implement stackMembers(layers, ctx) (see Stackable)`);
  }
  const fwd = definingClass(first, 'forward');
  const stk = definingClass(first, 'stackMembers');
  if (fwd && stk && fwd !== stk && Object.prototype.isPrototypeOf.call(stk, fwd)) {
    throw new ArgumentError(`DeepEnsemble: layer ${l} (${name}) overrides forward but inherits stackMembers from ${(stk as { constructor: { name: string } }).constructor.name}; implement stackMembers for ${name}`);
  }
  return first.stackMembers(all, ctx);
}

/**
 * A deep ensemble (Lakshminarayanan et al. 2017) of M members with the same architecture,
 * evaluated in ONE batched pass: member weights are stacked on a leading axis once, convolutions
 * run as a single grouped convolution (members side by side in the channel dim; the first conv
 * concatenates output channels so the shared input is not copied), linear layers as one batched
 * matmul [M, B, in] × [M, in, out], and pooling/activations unchanged on the stacked activations.
 * Members are `Sequential`s (nested allowed) or models with `sequentialLayers()`; every layer
 * must declare how it stacks by implementing `stackMembers(layers, ctx)` (the {@link Stackable}
 * contract in nn/stacking.ts). The library's Conv2d, Linear, Flatten, BatchNorm1d/2d (eval),
 * Dropout (eval), ReLU/GELU/Tanh/Sigmoid/Softplus/LeakyReLU/Identity, MaxPool2d, AvgPool2d and
 * AdaptiveAvgPool2d do; a user-defined layer joins by implementing it too. Call `refresh()`
 * after changing member weights.
 */
export class DeepEnsemble {
  private steps: StackedStep[] | null = null;
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

  /**
   * Keeps a stacked weight until `refresh()`. A tensor that is already kept (a member's own
   * parameter, which `concat` of ONE tensor returns as is) is used but never owned or disposed.
   */
  private keepStacked(t: Tensor): Tensor {
    if (t.kept) return t;
    this.stacked.push(keep(t));
    return t;
  }

  private build(): StackedStep[] {
    const M = this.size;
    const layers = this.members.map(flattenLayers);
    const L = layers[0].length;
    for (const ls of layers) {
      if (ls.length !== L) throw new ArgumentError('DeepEnsemble: members must share one architecture (different layer counts)');
    }
    const ctx: StackContext = { members: M, keep: (t) => this.keepStacked(t) };
    const steps: StackedStep[] = [];
    try {
      noGrad(() => {
        for (let l = 0; l < L; l++) {
          const first = layers[0][l];
          const all = layers.map((ls) => ls[l]);
          if (!all.every((m) => m.constructor === first.constructor)) {
            throw new ArgumentError(`DeepEnsemble: layer ${l} differs between members`);
          }
          // Stacked weights are built inside tidy: temporaries die, ctx.keep'd tensors survive.
          steps.push(tidy(() => stepFor(l, all, ctx)));
        }
      });
    } catch (e) {
      this.refresh(); // free the stacked weights of the layers before the one that failed
      throw e;
    }
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
        let layout: StackedLayout = 'input';
        for (const s of steps) ({ h, layout } = s({ h, layout }));
        if (layout === 'channels') {
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
