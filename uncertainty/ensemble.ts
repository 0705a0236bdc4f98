import {
  ArgumentError, ShapeError, type Tensor, detach, div, fmtShape, keep, manualSeed, noGrad, softmax, stack, sum, tidy,
} from '../engine/index.js';
import { Module, parameter } from '../nn/module.js';
import { Sequential } from '../nn/layers/container.js';
import { assignInPlace } from '../nn/assign.js';
import { crossEntropy } from '../nn/losses.js';
import type { Optimizer } from '../nn/optim/optimizer.js';
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
    const ctx: StackContext = {
      members: M,
      keep: (t) => this.keepStacked(t),
      stackedParam: (ls, name) => this.keepStacked(stack(ls.map((m) => paramOf(m, name)), 0)),
    };
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

  /**
   * A trainer that trains all M members in ONE stacked forward/backward/optimiser step per batch
   * (see {@link EnsembleTrainer}). Members must be in training mode (`m.train()`).
   */
  trainer(opts: EnsembleTrainerOptions): EnsembleTrainer {
    return new EnsembleTrainer(this, opts);
  }

  /** The members' layers in execution order, [member][layer] (checked to share one architecture). */
  memberLayers(): Module[][] {
    const layers = this.members.map(flattenLayers);
    const L = layers[0].length;
    for (const ls of layers) {
      if (ls.length !== L) throw new ArgumentError('DeepEnsemble: members must share one architecture (different layer counts)');
    }
    for (let l = 0; l < L; l++) {
      if (!layers.every((ls) => ls[l].constructor === layers[0][l].constructor)) throw new ArgumentError(`DeepEnsemble: layer ${l} differs between members`);
    }
    return layers;
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

/** Parameter `name` of layer `m` (its own, not a child's), or a typed error. */
function paramOf(m: Module, name: string): Tensor {
  const p = m.namedParameters().find(([n]) => n === name);
  if (!p) throw new ArgumentError(`DeepEnsemble: ${m.constructor.name} has no parameter '${name}'`);
  return p[1];
}

export interface EnsembleTrainerOptions {
  /**
   * Builds the optimiser over the stacked parameters (each [M, ...shape], member m in row m),
   * e.g. `(p) => new Adam(p, { lr: 1e-3 })`. Elementwise optimisers (SGD, Adam, AdamW: one fused
   * kernel per stacked tensor) then update every member exactly as they would alone.
   */
  optimizer: (params: Tensor[]) => Optimizer<{ lr: number }>;
  /**
   * Per-sample loss of the stacked outputs [M·B, ...] against the targets [M·B, ...], with no
   * reduction (one value per sample, or per element); member m's loss is the mean over its B
   * samples. Default: `crossEntropy(output, target, { reduction: 'none' })`.
   */
  lossFn?: (output: Tensor, target: Tensor) => Tensor;
}

/**
 * Stacked training of a deep ensemble: ONE forward, backward and optimiser step per batch for
 * all M members (Lakshminarayanan et al. 2017 train members independently; here they are
 * independent too, just computed together). Every parameter of every member layer is stacked on
 * a leading member axis into one trainable tensor [M, ...]; layers run through their
 * `stackMembers` with `ctx.training` (convolutions as one grouped convolution, linears as one
 * batched matmul, dropout over the members' rows), the loss is Σ_m L_m with L_m the mean loss of
 * member m over its own batch — so ∂/∂θ_m of the sum is exactly member m's gradient — and one
 * optimiser step updates all members. Each member gets its own data (row m of the batch) and its
 * own dropout rows, so the result equals training the members one by one (bit for bit on the
 * CPU backend; test/ensemble-training.test.ts). Call {@link writeBack} to copy the trained
 * weights into the member modules.
 */
export class EnsembleTrainer {
  readonly optimizer: Optimizer<{ lr: number }>;
  private readonly layers: Module[][];
  /** Stacked parameters by (member-0 layer, name). */
  private readonly stacked = new Map<Module, Map<string, Tensor>>();
  private readonly lossFn: (output: Tensor, target: Tensor) => Tensor;
  private checked = false;
  private disposed = false;

  constructor(readonly ensemble: DeepEnsemble, opts: EnsembleTrainerOptions) {
    this.layers = ensemble.memberLayers();
    this.lossFn = opts.lossFn ?? ((o, t) => crossEntropy(o, t, { reduction: 'none' }));
    const all: Tensor[] = [];
    noGrad(() => {
      for (let l = 0; l < this.layers[0].length; l++) {
        const byName = new Map<string, Tensor>();
        for (const [name] of this.layers[0][l].namedParameters()) {
          const t = parameter(stack(this.layers.map((ls) => paramOf(ls[l], name)), 0));
          byName.set(name, t);
          all.push(t);
        }
        this.stacked.set(this.layers[0][l], byName);
      }
    });
    this.optimizer = opts.optimizer(all);
  }

  /** The stacked parameters [M, ...shape], in layer order. */
  parameters(): Tensor[] {
    return [...this.stacked.values()].flatMap((m) => [...m.values()]);
  }

  /**
   * One training step for all members: `x` [M, B, ...] holds member m's batch in row m, `target`
   * [M, B, ...] its targets. Returns the members' losses [M] (dispose it, or read it later: no
   * host sync happens here).
   */
  step(x: Tensor, target: Tensor): Tensor {
    if (this.disposed) throw new ArgumentError('EnsembleTrainer.step: the trainer was disposed');
    const M = this.ensemble.size;
    if (x.rank < 2 || x.shape[0] !== M) throw new ShapeError(`EnsembleTrainer.step: expected x [M = ${M}, B, ...] (member m's batch in row m), got ${fmtShape(x.shape)}`);
    const B = x.shape[1];
    if (target.rank < 2 || target.shape[0] !== M || target.shape[1] !== B) {
      throw new ShapeError(`EnsembleTrainer.step: expected targets [${M}, ${B}, ...] for x ${fmtShape(x.shape)}, got ${fmtShape(target.shape)}`);
    }
    return tidy(() => {
      this.optimizer.zeroGrad();
      const requested = new Set<Tensor>();
      const ctx: StackContext = {
        members: M,
        training: true,
        keep: (t) => t,
        stackedParam: (ls, name) => {
          const t = this.stacked.get(ls[0])?.get(name);
          if (!t) throw new ArgumentError(`EnsembleTrainer: ${ls[0].constructor.name} has no trainable parameter '${name}'`);
          requested.add(t);
          return t;
        },
      };
      let h = x;
      let layout: StackedLayout = 'members';
      for (let l = 0; l < this.layers[0].length; l++) {
        const all = this.layers.map((ls) => ls[l]);
        ({ h, layout } = stepFor(l, all, ctx)({ h, layout }));
        if (!this.checked) {
          for (const [name, t] of this.stacked.get(all[0])!) {
            if (!requested.has(t)) {
              throw new ArgumentError(`EnsembleTrainer: layer ${l} (${all[0].constructor.name}) does not read its parameter '${name}' through ctx.stackedParam in stackMembers, so it cannot be trained stacked`);
            }
          }
        }
      }
      this.checked = true;
      if (layout === 'channels') {
        const [Bh, MC, ...spatial] = h.shape;
        h = h.reshape([Bh, M, MC / M, ...spatial]).permute([1, 0, 2, ...spatial.map((_, i) => i + 3)]);
      } else if (layout === 'input') throw new ArgumentError('EnsembleTrainer: the model has no member-specific layer');
      const out = h.reshape([M * B, ...h.shape.slice(2)]);
      const perSample = this.lossFn(out, target.reshape([M * B, ...target.shape.slice(2)]));
      // L_m = mean over member m's samples; Σ_m L_m has ∂/∂θ_m = ∂L_m/∂θ_m.
      const rows = perSample.reshape([M, B, -1]);
      const losses = div(sum(rows, [1, 2]), rows.shape[1] * rows.shape[2]);
      sum(losses).backward();
      this.optimizer.step();
      this.optimizer.zeroGrad();
      return detach(losses);
    });
  }

  /** Copies the stacked parameters into the member modules (and refreshes the ensemble's stacked weights). */
  writeBack(): void {
    tidy(() =>
      noGrad(() => {
        for (let l = 0; l < this.layers[0].length; l++) {
          for (const [name, t] of this.stacked.get(this.layers[0][l])!) {
            this.layers.forEach((ls, m) => {
              const p = paramOf(ls[l], name);
              assignInPlace(p, t.slice([m, ...p.shape.map(() => 0)], [1, ...p.shape]).reshape(p.shape).add(0), 'EnsembleTrainer.writeBack');
            });
          }
        }
      }),
    );
    this.ensemble.refresh();
  }

  /** Frees the stacked parameters and the optimiser state (call writeBack first to keep the weights). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.optimizer.zeroGrad();
    this.optimizer.dispose();
    for (const t of this.parameters()) t.dispose();
  }
}
