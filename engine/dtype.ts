import { ArgumentError, DTypeError } from './errors.js';

/**
 * Element types. `float32`, `int32` and `bool` run on every backend; `float64` exists only on
 * the CPU reference backend, where it is used for finite-difference gradient checks.
 * `bool` is stored as one byte on the CPU and as one u32 per element on WebGPU.
 */
export type DType = 'float32' | 'int32' | 'bool' | 'float64';

export type TypedArray = Float32Array | Float64Array | Int32Array | Uint8Array;

/** Every dtype dubito knows. */
export const DTYPES: readonly DType[] = ['float32', 'int32', 'bool', 'float64'];

/** Throws a DTypeError naming `op` and the supported dtypes unless `dtype` is one of {@link DTYPES}. */
export function checkDTypeName(op: string, dtype: unknown): asserts dtype is DType {
  if (!(DTYPES as readonly unknown[]).includes(dtype)) {
    throw new DTypeError(
      `${op}: unsupported dtype ${typeof dtype === 'string' ? `'${dtype}'` : String(dtype)}; supported: float32, int32, bool, float64 (float64 on the CPU backend only)`,
    );
  }
}

export const INT32_MIN = -2147483648;
export const INT32_MAX = 2147483647;

/**
 * The int32 value of a JS number for creation ops (`tensor`, `full`, `arange`, ...): truncated
 * toward zero like PyTorch's `torch.tensor(1.7, dtype=torch.int32)` → 1; NaN, ±Infinity and
 * values outside [-2^31, 2^31 - 1] throw an ArgumentError (they would otherwise wrap or become 0).
 */
export function toInt32(op: string, v: number, index?: number): number {
  const t = Math.trunc(v);
  if (!(t >= INT32_MIN && t <= INT32_MAX)) {
    const at = index === undefined ? '' : ` at flat index ${index}`;
    throw new ArgumentError(
      `${op}: value ${v}${at} cannot be stored as int32 (${Number.isFinite(v) ? 'outside [-2147483648, 2147483647]' : 'not finite'})`,
    );
  }
  return t;
}

export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64';
}

/** Allocates a zeroed host array for `n` elements of `dtype`. */
export function allocHost(dtype: DType, n: number): TypedArray {
  switch (dtype) {
    case 'float32': return new Float32Array(n);
    case 'float64': return new Float64Array(n);
    case 'int32': return new Int32Array(n);
    case 'bool': return new Uint8Array(n);
  }
}

/**
 * Converts any numeric array to the host array type of `dtype` (a copy). int32 values are
 * truncated toward zero; non-finite or out-of-range ones throw (see {@link toInt32}).
 */
export function toHost(values: ArrayLike<number>, dtype: DType, op = 'tensor'): TypedArray {
  const out = allocHost(dtype, values.length);
  if (dtype === 'bool') for (let i = 0; i < values.length; i++) out[i] = values[i] ? 1 : 0;
  else if (dtype === 'int32') {
    if (values instanceof Int32Array) out.set(values);
    else for (let i = 0; i < values.length; i++) out[i] = toInt32(op, values[i], i);
  } else out.set(values as ArrayLike<number>);
  return out;
}

/** The dtype of the result of a binary arithmetic op (float wins; both int stays int). */
export function promote(a: DType, b: DType): DType {
  if (a === b) return a === 'bool' ? 'int32' : a;
  if (a === 'float64' || b === 'float64') return 'float64';
  if (a === 'float32' || b === 'float32') return 'float32';
  return 'int32';
}
