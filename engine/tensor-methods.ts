/**
 * The op methods of {@link Tensor} (`x.add(y)`, `x.sum()`, `x.reshape(...)`, `loss.backward()`, ...).
 *
 * They are attached here, on the ops side, so that `engine/tensor.ts` does not import the op
 * families (which all import `tensor.ts` for `runOp`): the import graph has no cycle through the
 * Tensor class. The `declare module` block merges the method signatures into the class's type;
 * `engine/index.ts` imports this module once, before any user code can create a tensor. Each
 * method is the function of the same name with `this` as its first argument.
 */
import type { DType } from './dtype.js';
import * as ops from './ops/index.js';
import { Tensor } from './tensor.js';

declare module './tensor.js' {
  interface Tensor {
    // ---- autodiff ----
    /** Backpropagates from this scalar, accumulating `.grad` on every leaf that requires grad. */
    backward(dy?: Tensor, opts?: { createGraph?: boolean }): void;
    /** A tensor sharing this one's storage with no autodiff history. */
    detach(): Tensor;

    // ---- elementwise ----
    add(b: Tensor | number): Tensor;
    sub(b: Tensor | number): Tensor;
    mul(b: Tensor | number): Tensor;
    div(b: Tensor | number): Tensor;
    pow(b: Tensor | number): Tensor;
    maximum(b: Tensor | number): Tensor;
    minimum(b: Tensor | number): Tensor;
    eq(b: Tensor | number): Tensor;
    ne(b: Tensor | number): Tensor;
    lt(b: Tensor | number): Tensor;
    le(b: Tensor | number): Tensor;
    gt(b: Tensor | number): Tensor;
    ge(b: Tensor | number): Tensor;
    neg(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    log1p(): Tensor;
    sqrt(): Tensor;
    rsqrt(): Tensor;
    square(): Tensor;
    abs(): Tensor;
    sign(): Tensor;
    relu(): Tensor;
    leakyRelu(alpha?: number): Tensor;
    gelu(): Tensor;
    sigmoid(): Tensor;
    tanh(): Tensor;
    softplus(): Tensor;
    lgamma(): Tensor;
    digamma(): Tensor;
    cast(dtype: DType): Tensor;

    // ---- reductions ----
    sum(axes?: number | number[], keepDims?: boolean): Tensor;
    mean(axes?: number | number[], keepDims?: boolean): Tensor;
    max(axes?: number | number[], keepDims?: boolean): Tensor;
    min(axes?: number | number[], keepDims?: boolean): Tensor;
    argmax(axis?: number, keepDims?: boolean): Tensor;
    argmin(axis?: number, keepDims?: boolean): Tensor;
    logsumexp(axes?: number | number[], keepDims?: boolean): Tensor;
    variance(axes?: number | number[], keepDims?: boolean, correction?: number): Tensor;
    softmax(axis?: number): Tensor;
    logSoftmax(axis?: number): Tensor;

    // ---- linear algebra ----
    matmul(b: Tensor, opts?: { transposeA?: boolean; transposeB?: boolean }): Tensor;

    // ---- shape ----
    reshape(shape: readonly number[]): Tensor;
    flatten(startAxis?: number, endAxis?: number): Tensor;
    transpose(axis0?: number, axis1?: number): Tensor;
    permute(perm: readonly number[]): Tensor;
    squeeze(axes?: number | number[]): Tensor;
    unsqueeze(axis: number): Tensor;
    broadcastTo(shape: readonly number[]): Tensor;
    slice(begin: readonly number[], size?: readonly number[]): Tensor;
    indexSelect(axis: number, indices: Tensor): Tensor;
  }
}

type Methods = { [K in keyof Tensor]?: Tensor[K] } & ThisType<Tensor>;

const methods: Methods = {
  backward(dy?: Tensor, opts?: { createGraph?: boolean }): void { ops.backwardFrom(this, dy, opts); },
  detach(): Tensor { return ops.detach(this); },

  add(b: Tensor | number): Tensor { return ops.add(this, b); },
  sub(b: Tensor | number): Tensor { return ops.sub(this, b); },
  mul(b: Tensor | number): Tensor { return ops.mul(this, b); },
  div(b: Tensor | number): Tensor { return ops.div(this, b); },
  pow(b: Tensor | number): Tensor { return ops.pow(this, b); },
  maximum(b: Tensor | number): Tensor { return ops.maximum(this, b); },
  minimum(b: Tensor | number): Tensor { return ops.minimum(this, b); },
  eq(b: Tensor | number): Tensor { return ops.eq(this, b); },
  ne(b: Tensor | number): Tensor { return ops.ne(this, b); },
  lt(b: Tensor | number): Tensor { return ops.lt(this, b); },
  le(b: Tensor | number): Tensor { return ops.le(this, b); },
  gt(b: Tensor | number): Tensor { return ops.gt(this, b); },
  ge(b: Tensor | number): Tensor { return ops.ge(this, b); },
  neg(): Tensor { return ops.neg(this); },
  exp(): Tensor { return ops.exp(this); },
  log(): Tensor { return ops.log(this); },
  log1p(): Tensor { return ops.log1p(this); },
  sqrt(): Tensor { return ops.sqrt(this); },
  rsqrt(): Tensor { return ops.rsqrt(this); },
  square(): Tensor { return ops.square(this); },
  abs(): Tensor { return ops.abs(this); },
  sign(): Tensor { return ops.sign(this); },
  relu(): Tensor { return ops.relu(this); },
  leakyRelu(alpha = 0.01): Tensor { return ops.leakyRelu(this, alpha); },
  gelu(): Tensor { return ops.gelu(this); },
  sigmoid(): Tensor { return ops.sigmoid(this); },
  tanh(): Tensor { return ops.tanh(this); },
  softplus(): Tensor { return ops.softplus(this); },
  lgamma(): Tensor { return ops.lgamma(this); },
  digamma(): Tensor { return ops.digamma(this); },
  cast(dtype: DType): Tensor { return ops.cast(this, dtype); },

  sum(axes?: number | number[], keepDims = false): Tensor { return ops.sum(this, axes, keepDims); },
  mean(axes?: number | number[], keepDims = false): Tensor { return ops.mean(this, axes, keepDims); },
  max(axes?: number | number[], keepDims = false): Tensor { return ops.max(this, axes, keepDims); },
  min(axes?: number | number[], keepDims = false): Tensor { return ops.min(this, axes, keepDims); },
  argmax(axis = -1, keepDims = false): Tensor { return ops.argmax(this, axis, keepDims); },
  argmin(axis = -1, keepDims = false): Tensor { return ops.argmin(this, axis, keepDims); },
  logsumexp(axes?: number | number[], keepDims = false): Tensor { return ops.logsumexp(this, axes, keepDims); },
  variance(axes?: number | number[], keepDims = false, correction = 0): Tensor { return ops.variance(this, axes, keepDims, correction); },
  softmax(axis = -1): Tensor { return ops.softmax(this, axis); },
  logSoftmax(axis = -1): Tensor { return ops.logSoftmax(this, axis); },

  matmul(b: Tensor, opts?: { transposeA?: boolean; transposeB?: boolean }): Tensor { return ops.matmul(this, b, opts); },

  reshape(shape: readonly number[]): Tensor { return ops.reshape(this, shape); },
  flatten(startAxis = 0, endAxis = -1): Tensor { return ops.flatten(this, startAxis, endAxis); },
  transpose(axis0 = -2, axis1 = -1): Tensor { return ops.transpose(this, axis0, axis1); },
  permute(perm: readonly number[]): Tensor { return ops.permute(this, perm); },
  squeeze(axes?: number | number[]): Tensor { return ops.squeeze(this, axes); },
  unsqueeze(axis: number): Tensor { return ops.unsqueeze(this, axis); },
  broadcastTo(shape: readonly number[]): Tensor { return ops.broadcastTo(this, shape); },
  slice(begin: readonly number[], size?: readonly number[]): Tensor { return ops.slice(this, begin, size); },
  indexSelect(axis: number, indices: Tensor): Tensor { return ops.indexSelect(this, axis, indices); },
};

// Attached like class methods: non-enumerable, writable, configurable.
for (const [name, fn] of Object.entries(methods)) {
  Object.defineProperty(Tensor.prototype, name, { value: fn, writable: true, configurable: true, enumerable: false });
}
