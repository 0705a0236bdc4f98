import { DubitoError, fmtShape } from '../errors.js';
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
    const y = withNote(x, () => f(reshape(x, [1, ...x.shape])));
    return reshape(y, y.shape.slice(1));
  });
}

function withNote<T>(x: Tensor, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof DubitoError) e.message = `${e.message} (unbatched input ${fmtShape(x.shape)} viewed as ${fmtShape([1, ...x.shape])})`;
    throw e;
  }
}
