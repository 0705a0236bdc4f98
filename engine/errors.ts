/**
 * Typed errors. Every error dubito throws on bad input is a {@link DubitoError}; messages name
 * the op, the input shapes and what was expected.
 */
export class DubitoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Shapes that cannot work together (broadcasting, matmul inner dims, reshape sizes, ...). */
export class ShapeError extends DubitoError {}

/** A dtype the op does not accept (e.g. `lgamma` of an int32 tensor, float64 on WebGPU). */
export class DTypeError extends DubitoError {}

/** An axis or index outside its valid range. */
export class IndexError extends DubitoError {}

/** Any other invalid argument (negative sizes, non-finite scalars where finite is promised, ...). */
export class ArgumentError extends DubitoError {}

/** A tensor was used after `dispose()` (directly, or by a `tidy` scope that ended). */
export class DisposedTensorError extends DubitoError {}

/** No adapter, a lost device, a failed device request or an uncaptured WebGPU error. */
export class DeviceError extends DubitoError {}

/** A WGSL kernel failed to compile; the message names the kernel and the offending line. */
export class KernelCompileError extends DubitoError {
  constructor(
    readonly kernel: string,
    readonly line: number | undefined,
    readonly detail: string,
  ) {
    super(`kernel '${kernel}' failed to compile${line !== undefined ? ` at line ${line}` : ''}: ${detail}`);
  }
}

/** Tensors living on two different backends were combined. */
export class BackendMismatchError extends DubitoError {}

/** Formats a shape for messages: `[2,3]`. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}
