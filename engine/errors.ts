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

/**
 * A tensor allocation larger than the backend allows (the CPU backend's `maxAllocationBytes`,
 * 2 GiB by default). Names the op, the shape, the dtype and the bytes requested.
 */
export class AllocationError extends DubitoError {
  constructor(
    readonly op: string,
    readonly shape: readonly number[],
    readonly bytes: number,
    readonly limit: number,
    detail = '',
  ) {
    super(
      `${op}: cannot allocate ${fmtShape(shape)} (${fmtBytes(bytes)}), more than the ${fmtBytes(limit)} allowed per tensor` +
        (detail ? ` ${detail}` : ''),
    );
  }
}

/**
 * A WebGPU buffer larger than the adapter allows (`maxStorageBufferBindingSize` / `maxBufferSize`):
 * names the op, the shape (when the buffer holds a tensor), the bytes and the limit. A
 * `DeviceError` (the limit belongs to the device), so code that retries smaller chunks on a
 * DeviceError keeps working; the message contains "exceeds this adapter's limit".
 */
export class BufferLimitError extends DeviceError {
  constructor(
    readonly op: string,
    readonly shape: readonly number[] | null,
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(
      `${op}: ${shape ? `a tensor ${fmtShape(shape)} needs` : 'a buffer of'} ${fmtBytes(bytes)}, which exceeds this adapter's limit of ` +
        `${fmtBytes(limit)} per buffer (maxStorageBufferBindingSize / maxBufferSize)`,
    );
  }
}

/** `tidy` scopes were used in a way that cannot be tracked safely (overlapping async scopes). */
export class ScopeError extends DubitoError {}

/**
 * A tensor whose device was destroyed by `shutdown()` was used (e.g. a module created before
 * `shutdown()` + `init()`): recreate it, or move it elsewhere with `to()` before shutting down.
 */
export class DestroyedDeviceError extends DeviceError {}

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

/**
 * A kernel's uniform values do not match its WGSL uniform struct (a field missing, unknown,
 * of the wrong kind, or an array too long); names the kernel and the field.
 */
export class UniformError extends DubitoError {}

/** Tensors living on two different backends were combined. */
export class BackendMismatchError extends DubitoError {}

/** Formats a shape for messages: `[2,3]`. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** Formats a byte count for messages: `4.00 GiB (4294967296 bytes)`. */
export function fmtBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${bytes} bytes` : `${v.toFixed(2)} ${units[u]} (${bytes} bytes)`;
}
