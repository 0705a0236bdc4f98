import type { Backend } from '../backend.js';
import { type DType, allocHost } from '../dtype.js';
import { ArgumentError } from '../errors.js';
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
  checkShape('full', shape);
  if (typeof value !== 'number') throw new ArgumentError(`full: value must be a number, got ${typeof value}`);
  return runOp(FILL, [], { shape: [...shape], dtype: opts.dtype ?? 'float32', value }, opts.backend ?? currentBackend());
}

export function zeros(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return full(shape, 0, opts);
}

export function ones(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return full(shape, 1, opts);
}

/** A tensor of `like`'s shape, dtype and backend, filled with `value`. */
export function fullLike(like: Tensor, value: number, dtype?: DType): Tensor {
  return full(like.shape, value, { dtype: dtype ?? like.dtype, backend: like.backend });
}

export function zerosLike(like: Tensor, dtype?: DType): Tensor {
  return fullLike(like, 0, dtype);
}

export function onesLike(like: Tensor, dtype?: DType): Tensor {
  return fullLike(like, 1, dtype);
}

/** A 0-d tensor with `like`'s dtype (float for bool/int unless given) and backend. */
export function scalarLike(value: number, like: Tensor, dtype?: DType): Tensor {
  return full([], value, { dtype: dtype ?? like.dtype, backend: like.backend });
}

/** A 0-d tensor. */
export function scalar(value: number, opts: CreateOptions = {}): Tensor {
  return full([], value, opts);
}

type Nested = number | boolean | Nested[];

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
 * Creates a tensor from nested arrays or a flat array/typed array with an explicit shape.
 * dtype defaults to float32 (int32 for Int32Array, bool for Uint8Array with dtype 'bool').
 */
export function tensor(values: Nested | ArrayLike<number>, shape?: readonly number[], opts: CreateOptions = {}): Tensor {
  let flat: ArrayLike<number>;
  let shp: readonly number[];
  if (typeof values === 'number' || typeof values === 'boolean') {
    flat = [Number(values)];
    shp = shape ?? [];
  } else if (Array.isArray(values)) {
    const inferred = inferShape(values as Nested);
    const f = (values as Nested[]).flat(Infinity as 1) as unknown as number[];
    for (const v of f) {
      if (typeof v !== 'number' && typeof v !== 'boolean') throw new ArgumentError(`tensor: values must be numbers, got ${typeof v}`);
    }
    if (sizeOf(inferred) !== f.length) throw new ArgumentError(`tensor: ragged nested array (inferred shape [${inferred}] but ${f.length} values)`);
    flat = f.map(Number);
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
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const v = new Array<number>(n);
  for (let i = 0; i < n; i++) v[i] = start + i * step;
  return fromHost(v, [n], opts.dtype ?? 'float32', opts.backend);
}
