/**
 * Element types. `float32`, `int32` and `bool` run on every backend; `float64` exists only on
 * the CPU reference backend, where it is used for finite-difference gradient checks.
 * `bool` is stored as one byte on the CPU and as one u32 per element on WebGPU.
 */
export type DType = 'float32' | 'int32' | 'bool' | 'float64';

export type TypedArray = Float32Array | Float64Array | Int32Array | Uint8Array;

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

/** Converts any numeric array to the host array type of `dtype` (a copy). */
export function toHost(values: ArrayLike<number>, dtype: DType): TypedArray {
  const out = allocHost(dtype, values.length);
  if (dtype === 'bool') for (let i = 0; i < values.length; i++) out[i] = values[i] ? 1 : 0;
  else if (dtype === 'int32') for (let i = 0; i < values.length; i++) out[i] = Math.trunc(values[i]);
  else out.set(values as ArrayLike<number>);
  return out;
}

/** The dtype of the result of a binary arithmetic op (float wins; both int stays int). */
export function promote(a: DType, b: DType): DType {
  if (a === b) return a === 'bool' ? 'int32' : a;
  if (a === 'float64' || b === 'float64') return 'float64';
  if (a === 'float32' || b === 'float32') return 'float32';
  return 'int32';
}
