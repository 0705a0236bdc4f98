import { ArgumentError, IndexError, type Tensor, flatten } from '../../engine/index.js';
import { ReLU } from './activation.js';
import { Module, forwardImplementation } from '../module.js';
import type { StackContext, StackedStep } from '../stacking.js';

/** The activations a layer can fuse into its epilogue. */
export type FusedActivation = 'relu';

/**
 * A layer that {@link Sequential} may fuse with the activation after it: `fusedForward(x, act)`
 * returns `act(forward(x))` computed as one kernel, or null when it has no fused form for `x` (then
 * `forward` and the activation run separately). Linear and Conv2d implement it.
 *
 * The fused form stands in for `forward`, so it is used only when the class that provides the
 * layer's `forward` also provides its `fusedForward`: a subclass that overrides `forward` and
 * inherits `fusedForward` is never fused (its own forward runs), and neither is an instance whose
 * `forward` was replaced. The same rule applies to the activation: only a ReLU whose `forward` is
 * `ReLU.prototype.forward` is fused.
 */
export interface FusableLayer {
  fusedForward(x: Tensor, activation: FusedActivation): Tensor | null;
}

/** The prototype on `m`'s chain that defines `key` (own properties of `m` are skipped). */
function definingPrototype(m: object, key: string): object | null {
  for (let p: object | null = Object.getPrototypeOf(m); p; p = Object.getPrototypeOf(p)) {
    if (Object.prototype.hasOwnProperty.call(p, key)) return p;
  }
  return null;
}

/**
 * Whether `m.forward` runs the `forward` of the class that defines `m[key]` (the hook wrapper
 * aside): false for a subclass that overrides `forward` but inherits `key`, and for an instance
 * whose `forward` was replaced.
 */
function forwardComesWith(m: Module, key: string): boolean {
  const impl = forwardImplementation(m);
  const p = definingPrototype(m, key) as { forward?: unknown } | null;
  return impl !== null && p !== null && Object.prototype.hasOwnProperty.call(p, 'forward') && p.forward === impl;
}

/** `next(m(x))` as one fused kernel, or null when `m` and `next` do not fuse (see FusableLayer). */
function fused(m: Module, next: Module, x: Tensor): Tensor | null {
  if (!(next instanceof ReLU) || forwardImplementation(next) !== ReLU.prototype.forward || m.hasHooks() || next.hasHooks()) return null;
  const f = (m as Partial<FusableLayer>).fusedForward;
  if (typeof f !== 'function' || !forwardComesWith(m, 'fusedForward')) return null;
  return f.call(m, x, 'relu');
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
   * Runs the layers in order. A layer that declares itself fusable ({@link FusableLayer}: Linear,
   * Conv2d) followed by a ReLU runs as one fused kernel (bias and ReLU in the matmul/conv
   * epilogue) unless either module has hooks, in which case both run separately so the hooks see
   * the pre-activation output. A subclass that overrides `forward` is never fused unless it also
   * provides its own `fusedForward`.
   */
  forward(x: Tensor): Tensor {
    let y = x;
    const kids = this.children();
    for (let i = 0; i < kids.length; i++) {
      const m = kids[i];
      const next = kids[i + 1];
      const f = next ? fused(m, next, y) : null;
      if (f) {
        y = f;
        i++;
        continue;
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
