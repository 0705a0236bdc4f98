import { ArgumentError, IndexError, type Tensor, conv2dBiasAct, flatten, linear } from '../../engine/index.js';
import { ReLU } from './activation.js';
import { Conv2d } from './conv.js';
import { Linear } from './linear.js';
import { Module } from '../module.js';
import type { StackContext, StackedStep } from '../stacking.js';

/** The Linear/Conv2d + ReLU fusions (null when `m` has no fused form for this input). */
function fusedWithRelu(m: Module, x: Tensor): Tensor | null {
  if (m instanceof Linear && m.bias && x.rank >= 1 && x.shape[x.rank - 1] === m.inFeatures) return linear(x, m.weight, m.bias, 'relu');
  if (m instanceof Conv2d && m.bias && x.rank === 4 && x.shape[1] === m.inChannels) {
    return conv2dBiasAct(x, m.weight, m.bias, { stride: m.stride, padding: m.padding, dilation: m.dilation, groups: m.groups }, 'relu');
  }
  return null;
}

/** Runs its children in order (torch.nn.Sequential); children are named '0', '1', ... */
export class Sequential extends Module<[Tensor], Tensor> {
  constructor(...layers: Module[]) {
    super();
    layers.forEach((m, i) => {
      if (!(m instanceof Module)) throw new ArgumentError(`Sequential: argument ${i} is not a Module`);
      this.registerModule(String(i), m);
    });
  }

  get length(): number {
    return this.children().length;
  }

  /** The i-th layer (negative counts from the end). */
  at(i: number): Module {
    const kids = this.children();
    const j = i < 0 ? kids.length + i : i;
    if (j < 0 || j >= kids.length) throw new IndexError(`Sequential: index ${i} out of range for ${kids.length} layers`);
    return kids[j];
  }

  /** Appends a layer. */
  append(m: Module): this {
    this.registerModule(String(this.length), m);
    return this;
  }

  /**
   * Runs the layers in order. A Linear or Conv2d followed by a ReLU runs as one fused kernel
   * (bias and ReLU in the matmul/conv epilogue) unless either module has hooks, in which case
   * both run separately so the hooks see the pre-activation output.
   */
  forward(x: Tensor): Tensor {
    let y = x;
    const kids = this.children();
    for (let i = 0; i < kids.length; i++) {
      const m = kids[i];
      const next = kids[i + 1];
      if (next instanceof ReLU && !m.hasHooks() && !next.hasHooks()) {
        const fused = fusedWithRelu(m, y);
        if (fused) {
          y = fused;
          i++;
          continue;
        }
      }
      y = m.forward(y);
    }
    return y;
  }

  [Symbol.iterator](): Iterator<Module> {
    return this.children()[Symbol.iterator]();
  }
}

/** Holds submodules in a list (torch.nn.ModuleList); has no forward of its own. */
export class ModuleList extends Module<never[], never> {
  constructor(modules: Module[] = []) {
    super();
    modules.forEach((m) => this.append(m));
  }
  get length(): number {
    return this.children().length;
  }
  at(i: number): Module {
    const kids = this.children();
    const j = i < 0 ? kids.length + i : i;
    if (j < 0 || j >= kids.length) throw new IndexError(`ModuleList: index ${i} out of range for ${kids.length} modules`);
    return kids[j];
  }
  append(m: Module): this {
    if (!(m instanceof Module)) throw new ArgumentError('ModuleList: append expects a Module');
    this.registerModule(String(this.length), m);
    return this;
  }
  forward(): never {
    throw new ArgumentError('ModuleList has no forward; call its modules');
  }
  [Symbol.iterator](): Iterator<Module> {
    return this.children()[Symbol.iterator]();
  }
}

/** Flattens dims startDim..endDim (default 1..−1, keeping the batch dim), as torch.nn.Flatten. */
export class Flatten extends Module<[Tensor], Tensor> {
  constructor(readonly startDim = 1, readonly endDim = -1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }

  /** DeepEnsemble stacking: [B, M·C, H, W] becomes [M, B, C·H·W] (each member's channels flattened). */
  stackMembers(_layers: readonly Module[], ctx: StackContext): StackedStep {
    const M = ctx.members;
    return ({ h, layout }) => {
      if (layout === 'members') return { h, layout };
      if (layout === 'input') return { h: this.forward(h), layout };
      return { h: h.reshape([h.shape[0], M, -1]).permute([1, 0, 2]), layout: 'members' };
    };
  }
  override extraRepr(): string {
    return `startDim=${this.startDim}, endDim=${this.endDim}`;
  }
}
