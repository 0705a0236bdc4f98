import { type Tensor, gelu, leakyRelu, logSoftmax, relu, sigmoid, softmax, softplus, tanh, ArgumentError } from '../../engine/index.js';
import { Module } from '../module.js';
import { type StackedStep, elementwiseStep } from '../stacking.js';

/** max(x, 0). */
export class ReLU extends Module<[Tensor], Tensor> {
  forward(x: Tensor): Tensor { return relu(x); }
  /** DeepEnsemble stacking: acts per element, so it runs unchanged on stacked activations. */
  stackMembers(): StackedStep { return elementwiseStep((h) => this.forward(h)); }
}

/** x·Φ(x) (exact, erf-based: PyTorch's default `approximate='none'`). */
export class GELU extends Module<[Tensor], Tensor> {
  forward(x: Tensor): Tensor { return gelu(x); }
  /** DeepEnsemble stacking: acts per element, so it runs unchanged on stacked activations. */
  stackMembers(): StackedStep { return elementwiseStep((h) => this.forward(h)); }
}

export class Tanh extends Module<[Tensor], Tensor> {
  forward(x: Tensor): Tensor { return tanh(x); }
  /** DeepEnsemble stacking: acts per element, so it runs unchanged on stacked activations. */
  stackMembers(): StackedStep { return elementwiseStep((h) => this.forward(h)); }
}

export class Sigmoid extends Module<[Tensor], Tensor> {
  forward(x: Tensor): Tensor { return sigmoid(x); }
  /** DeepEnsemble stacking: acts per element, so it runs unchanged on stacked activations. */
  stackMembers(): StackedStep { return elementwiseStep((h) => this.forward(h)); }
}

/** log(1 + exp(βx))/β (torch.nn.Softplus; the `threshold` linear region is not needed: the op is stable). */
export class Softplus extends Module<[Tensor], Tensor> {
  constructor(readonly beta = 1) {
    super();
    if (!(beta > 0) || !Number.isFinite(beta)) throw new ArgumentError(`Softplus: beta must be a positive finite number, got ${beta}`);
  }
  forward(x: Tensor): Tensor {
    return this.beta === 1 ? softplus(x) : softplus(x.mul(this.beta)).div(this.beta);
  }
  override extraRepr(): string { return `beta=${this.beta}`; }
  /** DeepEnsemble stacking: acts per element, so it runs unchanged on stacked activations. */
  stackMembers(): StackedStep { return elementwiseStep((h) => this.forward(h)); }
}

/** x for x > 0, negativeSlope·x otherwise (default slope 0.01 as PyTorch). */
export class LeakyReLU extends Module<[Tensor], Tensor> {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }
  forward(x: Tensor): Tensor { return leakyRelu(x, this.negativeSlope); }
  override extraRepr(): string { return `negativeSlope=${this.negativeSlope}`; }
  /** DeepEnsemble stacking: acts per element, so it runs unchanged on stacked activations. */
  stackMembers(): StackedStep { return elementwiseStep((h) => this.forward(h)); }
}

export class Softmax extends Module<[Tensor], Tensor> {
  constructor(readonly dim = -1) { super(); }
  forward(x: Tensor): Tensor { return softmax(x, this.dim); }
}

export class LogSoftmax extends Module<[Tensor], Tensor> {
  constructor(readonly dim = -1) { super(); }
  forward(x: Tensor): Tensor { return logSoftmax(x, this.dim); }
}

/** Returns its input. */
export class Identity extends Module<[Tensor], Tensor> {
  forward(x: Tensor): Tensor { return x; }
  /** DeepEnsemble stacking: acts per element, so it runs unchanged on stacked activations. */
  stackMembers(): StackedStep { return elementwiseStep((h) => this.forward(h)); }
}
