import { DubitoError, fmtShape } from '../errors.js';
import { keep } from '../memory.js';
import type { Tensor } from '../tensor.js';
import { composite } from './autograd.js';
import { reshape } from './shape-ops.js';

/**
 * Runs an NCHW op on an unbatched [C, H, W] input as PyTorch does: the input is viewed as
 * [1, C, H, W], `f` runs on it and the leading batch dim of the result is dropped again (views,
 * no copies; gradients flow through both reshapes). Errors raised by `f` keep their type and
 * get a note naming the unbatched shape the user passed.
 */
export function unbatched(x: Tensor, f: (xb: Tensor) => Tensor): Tensor {
  return composite(() => {
    const xb = reshape(x, [1, ...x.shape]);
    // If f throws, composite disposes xb (and whatever f created) before rethrowing.
    const y = withNote(x, () => f(xb));
    return reshape(y, y.shape.slice(1));
  });
}

/**
 * {@link unbatched} for ops returning `{ values, indices }` where `values` records `indices` in its
 * graph (maxPool2dWithIndices): each result view owns the batched tensor it was cut from, so
 * disposing the two results frees everything, as for the batched op.
 */
export function unbatchedWithIndices(x: Tensor, f: (xb: Tensor) => { values: Tensor; indices: Tensor }): { values: Tensor; indices: Tensor } {
  const xb = keep(reshape(x, [1, ...x.shape]));
  let r: { values: Tensor; indices: Tensor };
  try {
    r = withNote(x, () => f(xb));
  } catch (e) {
    xb.dispose();
    throw e;
  }
  keep(r.values);
  keep(r.indices);
  const values = reshape(r.values, r.values.shape.slice(1));
  const indices = reshape(r.indices, r.indices.shape.slice(1));
  (values.owned ??= []).push(xb, r.values);
  (indices.owned ??= []).push(r.indices);
  return { values, indices };
}

function withNote<T>(x: Tensor, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof DubitoError) e.message = `${e.message} (unbatched input ${fmtShape(x.shape)} viewed as ${fmtShape([1, ...x.shape])})`;
    throw e;
  }
}
