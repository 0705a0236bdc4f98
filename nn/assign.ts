import {
  type Backend, BackendMismatchError, DTypeError, fmtShape, ShapeError, type Tensor,
} from '../engine/index.js';

/**
 * In-place update (see `Tensor.assign`): `dst` takes over `src`'s storage and `src` is disposed.
 * Shapes and dtypes must match.
 */
export function assignInPlace(dst: Tensor, src: Tensor, what = 'assign'): void {
  if (dst === src) return;
  if (dst.shape.length !== src.shape.length || dst.shape.some((d, i) => d !== src.shape[i])) {
    throw new ShapeError(`${what}: cannot assign a ${fmtShape(src.shape)} tensor into ${fmtShape(dst.shape)}`);
  }
  if (dst.dtype !== src.dtype) throw new DTypeError(`${what}: cannot assign ${src.dtype} into ${dst.dtype} ${fmtShape(dst.shape)}`);
  dst.storageFor(what);
  src.storageFor(what);
  dst.assign(src, what);
}

/** Throws a BackendMismatchError unless `dst` and `src` live on the same backend. */
export function sameBackendOrThrow(dst: Tensor, src: Tensor, what: string): void {
  const be1: Backend = dst.storageFor(what).backend;
  const be2: Backend = src.storageFor(what).backend;
  if (be1 !== be2) {
    throw new BackendMismatchError(`${what}: the value lives on ${be2.name} but the target lives on ${be1.name}; move it first with \`await t.to(backend)\``);
  }
}
