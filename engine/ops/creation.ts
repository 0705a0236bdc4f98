import type { Backend } from '../backend.js';
import { type DType, allocHost, checkDTypeName, toInt32 } from '../dtype.js';
import { ArgumentError, ShapeError, fmtShape } from '../errors.js';
import { defineOp } from '../op.js';
import { currentBackend } from '../runtime.js';
import { checkShape, sizeOf } from '../shape.js';
import { type Tensor, fromHost, runOp } from '../tensor.js';
import { grid1D } from '../webgpu/webgpu-backend.js';
import { FILL_KERNEL, fillBits } from './elementwise-util.js';

interface FillAttrs {
  shape: number[];
  dtype: DType;
  value: number;
}

const FILL = defineOp<FillAttrs>({
  name: 'fill',
  notDifferentiable: true, // no tensor inputs
  infer: (_i, a) => ({ shape: [...a.shape], dtype: a.dtype }),
  cpu(_i, a, out) {
    const r = allocHost(out.dtype, sizeOf(out.shape));
    r.fill(a.dtype === 'bool' ? (a.value ? 1 : 0) : a.value);
    return r;
  },
  webgpu(gpu, _i, a, out) {
    const n = sizeOf(out.shape);
    gpu.dispatch({
      kernel: FILL_KERNEL,
      bindings: { out: out.buffer, params: { n, bits: fillBits(a.value, a.dtype) } },
      workgroups: grid1D(n),
    });
  },
});

export interface CreateOptions {
  dtype?: DType;
  backend?: Backend;
}

/** A tensor filled with `value`. */
export function full(shape: readonly number[], value: number, opts: CreateOptions = {}): Tensor {
  return fillAs('full', shape, value, opts);
}

/** `full` with error messages naming `op`. int32 values must be finite and in range (truncated toward zero). */
function fillAs(op: string, shape: readonly number[], value: number, opts: CreateOptions): Tensor {
  checkShape(op, shape);
  if (typeof value !== 'number') throw new ArgumentError(`${op}: value must be a number, got ${typeof value}`);
  const dtype = opts.dtype ?? 'float32';
  checkDTypeName(op, dtype);
  const v = dtype === 'int32' ? toInt32(op, value) : value;
  const be = opts.backend ?? currentBackend();
  be.checkAllocation?.(op, shape, dtype);
  return runOp(FILL, [], { shape: [...shape], dtype, value: v }, be);
}

export function zeros(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return fillAs('zeros', shape, 0, opts);
}

export function ones(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return fillAs('ones', shape, 1, opts);
}

/** A tensor of `like`'s shape, dtype and backend, filled with `value`. */
export function fullLike(like: Tensor, value: number, dtype?: DType): Tensor {
  return full(like.shape, value, { dtype: dtype ?? like.dtype, backend: like.storageFor('fullLike').backend });
}

export function zerosLike(like: Tensor, dtype?: DType): Tensor {
  return fullLike(like, 0, dtype);
}

export function onesLike(like: Tensor, dtype?: DType): Tensor {
  return fullLike(like, 1, dtype);
}

/** A 0-d tensor with `like`'s dtype (float for bool/int unless given) and backend. */
export function scalarLike(value: number, like: Tensor, dtype?: DType): Tensor {
  return full([], value, { dtype: dtype ?? like.dtype, backend: like.storageFor('scalarLike').backend });
}

/** A 0-d tensor. */
export function scalar(value: number, opts: CreateOptions = {}): Tensor {
  return full([], value, opts);
}

export type Nested = number | boolean | Nested[];

function inferShape(v: Nested): number[] {
  const shape: number[] = [];
  let cur: Nested = v;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0] as Nested;
    if (cur === undefined) break;
  }
  return shape;
}

/**
 * Flattens nested arrays whose shape is taken from the first element at each depth, checking
 * that every sub-array has that length and depth: ragged (`[[1,2],[3]]`) or mixed-depth
 * (`[1,[2]]`) input throws a ShapeError naming the first offending position.
 */
function flattenNested(op: string, values: Nested[]): { shape: number[]; flat: number[] } {
  const shape = inferShape(values);
  const flat: number[] = [];
  const path: number[] = [];
  const where = () => `[${path.join('][')}]`;
  const walk = (x: Nested, depth: number): void => {
    if (depth === shape.length) {
      if (Array.isArray(x)) {
        throw new ShapeError(`${op}: mixed nesting depth: element ${where()} is an array, but the first elements make it a number (inferred shape ${fmtShape(shape)})`);
      }
      if (typeof x !== 'number' && typeof x !== 'boolean') throw new ArgumentError(`${op}: values must be numbers, got ${typeof x} at ${where()}`);
      flat.push(Number(x));
      return;
    }
    if (!Array.isArray(x)) {
      throw new ShapeError(`${op}: mixed nesting depth: element ${where()} is ${typeof x === 'number' ? 'a number' : typeof x}, expected an array of length ${shape[depth]} (inferred shape ${fmtShape(shape)})`);
    }
    if (x.length !== shape[depth]) {
      throw new ShapeError(`${op}: ragged nested array: element ${path.length ? where() : '(outer)'} has length ${x.length}, expected ${shape[depth]} (inferred shape ${fmtShape(shape)})`);
    }
    for (let i = 0; i < x.length; i++) {
      path.push(i);
      walk(x[i], depth + 1);
      path.pop();
    }
  };
  walk(values, 0);
  return { shape, flat };
}

/**
 * Creates a tensor from nested arrays or a flat array/typed array with an explicit shape.
 * dtype defaults to float32 (int32 for Int32Array, bool for Uint8Array with dtype 'bool').
 * The shape may be left out: `tensor([0, 2, 1], { dtype: 'int32' })`.
 * Nested arrays must be rectangular (ShapeError otherwise). int32 values are truncated toward
 * zero (as PyTorch does); NaN, ±Infinity and values outside [-2^31, 2^31 - 1] throw.
 */
export function tensor(values: Nested | ArrayLike<number>, opts?: CreateOptions): Tensor;
export function tensor(values: Nested | ArrayLike<number>, shape?: readonly number[], opts?: CreateOptions): Tensor;
export function tensor(values: Nested | ArrayLike<number>, shapeOrOpts?: readonly number[] | CreateOptions, options: CreateOptions = {}): Tensor {
  const shapeGiven = shapeOrOpts === undefined || Array.isArray(shapeOrOpts) || ArrayBuffer.isView(shapeOrOpts);
  const shape = shapeGiven ? (shapeOrOpts as readonly number[] | undefined) : undefined;
  const opts = shapeGiven ? options : (shapeOrOpts as CreateOptions);
  let flat: ArrayLike<number>;
  let shp: readonly number[];
  if (typeof values === 'number' || typeof values === 'boolean') {
    flat = [Number(values)];
    shp = shape ?? [];
  } else if (Array.isArray(values)) {
    const { shape: inferred, flat: f } = flattenNested('tensor', values as Nested[]);
    flat = f;
    shp = shape ?? inferred;
  } else {
    flat = values as ArrayLike<number>;
    shp = shape ?? [flat.length];
  }
  const dtype = opts.dtype ?? (values instanceof Int32Array ? 'int32' : values instanceof Float64Array ? 'float64' : 'float32');
  return fromHost(flat, shp, dtype, opts.backend);
}

/** [start, start+step, ...) up to `stop` (exclusive). */
export function arange(start: number, stop?: number, step = 1, opts: CreateOptions = {}): Tensor {
  if (stop === undefined) {
    stop = start;
    start = 0;
  }
  if (step === 0 || !Number.isFinite(step)) throw new ArgumentError(`arange: step must be finite and non-zero, got ${step}`);
  if (!Number.isFinite(start) || !Number.isFinite(stop)) throw new ArgumentError(`arange: start and stop must be finite, got ${start} and ${stop}`);
  const dtype = opts.dtype ?? 'float32';
  checkDTypeName('arange', dtype);
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const be = opts.backend ?? currentBackend();
  be.checkAllocation?.('arange', [n], dtype);
  if (n > MAX_ELEMENTS) {
    throw new ArgumentError(`arange: [${start}, ${stop}) with step ${step} has ${n} elements, more than one tensor can hold (${MAX_ELEMENTS})`);
  }
  const v = dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = start + i * step;
  return fromHost(v, [n], dtype, be, 'arange');
}

/** The most elements one tensor may have (2^31 - 1: int32 indexing in kernels and JS typed arrays). */
export const MAX_ELEMENTS = 2147483647;
