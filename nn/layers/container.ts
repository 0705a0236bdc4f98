import { ArgumentError, IndexError, type Tensor, flatten } from '../../engine/index.js';
import { Module } from '../module.js';

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

  forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this.children()) y = m.forward(y);
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
  override extraRepr(): string {
    return `startDim=${this.startDim}, endDim=${this.endDim}`;
  }
}
