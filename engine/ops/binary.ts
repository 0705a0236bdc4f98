import binaryWgsl from '../../kernels/binary.wgsl';
import castWgsl from '../../kernels/cast.wgsl';
import whereWgsl from '../../kernels/where.wgsl';
import { type DType, allocHost, checkDTypeName, isFloat, promote } from '../dtype.js';
import { ArgumentError, DTypeError, ShapeError, fmtShape } from '../errors.js';
import { type GpuArg, type OpDef, defineOp, splitMatchingRows } from '../op.js';
import { broadcastShapes, broadcastStrides, shapesEqual, sizeOf } from '../shape.js';
import { powC99 } from '../special.js';
import { Tensor, runOp } from '../tensor.js';
import { type WebGPUBackend, grid1D } from '../webgpu/webgpu-backend.js';
import { broadcastToScratch } from './high-rank.js';
import { BINARY_OPS } from '../webgpu/kernel-constants.js';
import { kernelFamily } from '../webgpu/kernel-source.js';
import { scalarLike } from './creation.js';
import { MAX_KERNEL_RANK, collapseDims, forEachStrided, wgslStorageType } from './elementwise-util.js';
import { reshape } from './shape-ops.js';
import { log, neg } from './unary.js';
import { alias } from './autograd.js';
import { sum } from './reduce.js';

type Kind = 'arith' | 'float' | 'compare';

const BINARY = kernelFamily({ name: 'binary', source: binaryWgsl, preludes: ['elementwise', 'shape', 'ieee'], opCodes: BINARY_OPS });
const WHERE_KERNEL = kernelFamily({ name: 'where', source: whereWgsl, preludes: ['elementwise', 'shape'] });
const CAST_KERNEL = kernelFamily({ name: 'cast', source: castWgsl, preludes: ['elementwise', 'ieee'] });

function computeDType(kind: Kind, a: DType, b: DType): DType {
  const p = promote(a, b);
  return kind === 'float' && !isFloat(p) ? 'float32' : p;
}

/** Collapsed broadcast geometry; null when it still exceeds the kernels' MAX_RANK (see `fitBroadcast`). */
function packBroadcast(outShape: readonly number[], inShapes: readonly (readonly number[])[]) {
  const strides = inShapes.map((s) => broadcastStrides(s, outShape));
  const c = collapseDims(outShape, strides);
  return c.shape.length > MAX_KERNEL_RANK ? null : c;
}

/**
 * Operands for a broadcast whose collapsed rank exceeds MAX_RANK: each operand that is not already
 * the output's shape is materialised contiguously (any-rank strided copy), so the kernel reads
 * every input at the output index. Returns the buffers and the scratch buffers to free.
 */
function fitBroadcast(gpu: WebGPUBackend, op: string, args: readonly GpuArg[], outShape: readonly number[]): { buffers: GPUBuffer[]; scratch: GPUBuffer[] } {
  const scratch: GPUBuffer[] = [];
  const buffers = args.map((x) => {
    if (shapesEqual(x.shape, outShape)) return x.buffer;
    const b = broadcastToScratch(gpu, op, x, outShape);
    scratch.push(b);
    return b;
  });
  return { buffers, scratch };
}

function binary(name: keyof typeof BINARY_OPS, kind: Kind, f: (x: number, y: number) => number, grad?: OpDef<object>['grad']): OpDef<object> {
  const code = BINARY_OPS[name];
  return defineOp<object>({
    name,
    splitRows: splitMatchingRows,
    infer([a, b]) {
      const shape = broadcastShapes(name, a.shape, b.shape);
      const dtype = kind === 'compare' ? 'bool' : computeDType(kind, a.dtype, b.dtype);
      return { shape, dtype };
    },
    cpu([a, b], _attrs, out) {
      const r = allocHost(out.dtype, sizeOf(out.shape));
      const c = collapseDims(out.shape, [broadcastStrides(a.shape, out.shape), broadcastStrides(b.shape, out.shape)]);
      const ad = a.data;
      const bd = b.data;
      forEachStrided(c.shape, c.strides, (o, idx) => {
        r[o] = f(ad[idx[0]], bd[idx[1]]);
      });
      return r;
    },
    webgpu(gpu, [a, b], _attrs, out) {
      const n = sizeOf(out.shape);
      const cdt = kind === 'compare' ? promote(a.dtype, b.dtype) : out.dtype;
      const tc = cdt === 'float32' ? 'f32' : 'i32';
      const kernel = BINARY.variant({ types: { TA: wgslStorageType(a.dtype), TB: wgslStorageType(b.dtype), TC: tc, TO: wgslStorageType(out.dtype) } });
      const aFull = shapesEqual(a.shape, out.shape);
      const bFull = shapesEqual(b.shape, out.shape);
      const same = aFull && bFull;
      // One operand is a single element and the other has the output's shape: no index arithmetic.
      const scalar = same ? 0 : bFull && sizeOf(a.shape) === 1 ? 1 : aFull && sizeOf(b.shape) === 1 ? 2 : 0;
      const packed = same || scalar ? { shape: [n], strides: [[1], [1]] } : packBroadcast(out.shape, [a.shape, b.shape]);
      // Rank beyond MAX_RANK after collapsing: materialise the broadcast operands, then read all at i.
      const fit = packed ? null : fitBroadcast(gpu, name, [a, b], out.shape);
      const c = packed ?? { shape: [n], strides: [[1], [1]] };
      gpu.dispatch({
        kernel,
        constants: scalar ? { OP: code, BCAST: false, SCALAR: scalar } : { OP: code, BCAST: !same && !fit },
        bindings: {
          a: fit ? fit.buffers[0] : a.buffer,
          b: fit ? fit.buffers[1] : b.buffer,
          out: out.buffer,
          params: { n, rank: c.shape.length, shape: c.shape, a_strides: c.strides[0], b_strides: c.strides[1] },
        },
        workgroups: grid1D(n),
      });
      if (fit) for (const s of fit.scratch) gpu.freeBuffer(s);
    },
    ...(grad ? { grad } : { notDifferentiable: true as const }), // comparisons: piecewise-constant bool masks
  });
}

/** Sums a broadcast gradient back to `shape` (the inverse of broadcasting). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (shapesEqual(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const s = axes.length ? sum(g, axes, true) : g;
  return reshape(s, shape);
}

const gradIf = (t: Tensor, g: () => Tensor): Tensor | null => (isFloat(t.dtype) ? sumTo(g(), t.shape) : null);

const ADD = binary('add', 'arith', (x, y) => x + y, (dy, [a, b]) => [gradIf(a, () => dy), gradIf(b, () => dy)]);
const SUB = binary('sub', 'arith', (x, y) => x - y, (dy, [a, b]) => [gradIf(a, () => dy), gradIf(b, () => neg(dy))]);
const MUL = binary('mul', 'arith', (x, y) => x * y, (dy, [a, b]) => [gradIf(a, () => mul(dy, b)), gradIf(b, () => mul(dy, a))]);
const DIV = binary('div', 'float', (x, y) => x / y, (dy, [a, b]) => [
  gradIf(a, () => div(dy, b)),
  gradIf(b, () => neg(div(mul(dy, a), mul(b, b)))),
]);
const POW = binary('pow', 'float', powC99, (dy, [a, b], out) => [
  gradIf(a, () => mul(dy, mul(b, pow(a, sub(b, 1))))),
  // d/db a^b = a^b ln a, taken as 0 where a <= 0 (ln undefined) rather than NaN.
  gradIf(b, () => {
    const pos = gt(a, 0);
    return mul(dy, where(pos, mul(out, logSafe(a, pos)), 0));
  }),
]);
// Ties split the gradient evenly between the two inputs.
const MAXIMUM = binary('maximum', 'arith', (x, y) => Math.max(x, y), (dy, [a, b]) => {
  const wa = () => add(cast(gt(a, b), dy.dtype), mul(cast(eq(a, b), dy.dtype), 0.5));
  return [gradIf(a, () => mul(dy, wa())), gradIf(b, () => mul(dy, sub(1, wa())))];
});
const MINIMUM = binary('minimum', 'arith', (x, y) => Math.min(x, y), (dy, [a, b]) => {
  const wa = () => add(cast(lt(a, b), dy.dtype), mul(cast(eq(a, b), dy.dtype), 0.5));
  return [gradIf(a, () => mul(dy, wa())), gradIf(b, () => mul(dy, sub(1, wa())))];
});
const EQ = binary('eq', 'compare', (x, y) => +(x === y));
const NE = binary('ne', 'compare', (x, y) => +(x !== y));
const LT = binary('lt', 'compare', (x, y) => +(x < y));
const LE = binary('le', 'compare', (x, y) => +(x <= y));
const GT = binary('gt', 'compare', (x, y) => +(x > y));
const GE = binary('ge', 'compare', (x, y) => +(x >= y));
// dy where x > 0, else 0: the backward of relu (and of fused relu epilogues) in one dispatch
// instead of where(gt(x, 0), dy, 0) (a compare, a select and two scalar fills). x is not
// differentiated (the mask is piecewise constant), like the `gt` it replaces.
const RELU_GRAD = binary('reluGrad', 'arith', (x, y) => (x > 0 ? y : 0), (g, [x, dy]) => [null, gradIf(dy, () => reluGrad(x, g))]);

function logSafe(a: Tensor, pos: Tensor): Tensor {
  // log of a where a > 0, 1 elsewhere (so the masked-out branch stays finite).
  return log(where(pos, a, 1));
}

/** Converts a number operand to a 0-d tensor matching `like` (int stays int for integral numbers). */
function operand(v: Tensor | number, like: Tensor, op: string): Tensor {
  if (v instanceof Tensor) return v;
  if (typeof v !== 'number') throw new ArgumentError(`${op}: operand must be a Tensor or a number, got ${typeof v}`);
  const dtype: DType = isFloat(like.dtype) ? like.dtype : Number.isInteger(v) ? 'int32' : 'float32';
  return scalarLike(v, like, dtype);
}

/** Temporaries made for number operands die with the result (or at once if no graph keeps them). */
function adoptTemps(r: Tensor, temps: Tensor[]): Tensor {
  if (temps.length) {
    if (r.node) (r.owned ??= []).push(...temps);
    else for (const t of temps) t.dispose();
  }
  return r;
}

function run(op: OpDef<object>, a: Tensor | number, b: Tensor | number): Tensor {
  const like = a instanceof Tensor ? a : b;
  if (!(like instanceof Tensor)) throw new ArgumentError(`${op.name}: at least one operand must be a Tensor`);
  like.storageFor(op.name);
  const temps: Tensor[] = [];
  const conv = (v: Tensor | number) => {
    if (v instanceof Tensor) return v;
    const t = operand(v, like, op.name);
    temps.push(t);
    return t;
  };
  return adoptTemps(runOp(op, [conv(a), conv(b)], {}), temps);
}

/** a + b (broadcasting). */
export function add(a: Tensor | number, b: Tensor | number): Tensor { return run(ADD, a, b); }
/** a − b (broadcasting). */
export function sub(a: Tensor | number, b: Tensor | number): Tensor { return run(SUB, a, b); }
/** a · b (broadcasting). */
export function mul(a: Tensor | number, b: Tensor | number): Tensor { return run(MUL, a, b); }
/** a / b (true division: int inputs give float32). */
export function div(a: Tensor | number, b: Tensor | number): Tensor { return run(DIV, a, b); }
/**
 * a^b elementwise (float), with C99 / IEEE 754 pow semantics as PyTorch: negative bases with
 * integer exponents keep their sign, pow(1, y) = 1 and pow(x, 0) = 1 for every x, y (NaN
 * included), pow(−1, ±inf) = 1; other NaN inputs give NaN.
 */
export function pow(a: Tensor | number, b: Tensor | number): Tensor { return run(POW, a, b); }
/** Elementwise max (broadcasting); NaN in either input gives NaN (PyTorch `maximum`). */
export function maximum(a: Tensor | number, b: Tensor | number): Tensor { return run(MAXIMUM, a, b); }
/** Elementwise min (broadcasting); NaN in either input gives NaN (PyTorch `minimum`). */
export function minimum(a: Tensor | number, b: Tensor | number): Tensor { return run(MINIMUM, a, b); }
/**
 * `dy` where `x > 0`, else 0 (NaN in x gives 0): the gradient of relu at x (or at relu's
 * output, which is positive exactly where x is). Same values as `where(gt(x, 0), dy, 0)`.
 */
export function reluGrad(x: Tensor, dy: Tensor): Tensor { return run(RELU_GRAD, x, dy); }
/** Comparisons return bool masks. */
export function eq(a: Tensor | number, b: Tensor | number): Tensor { return run(EQ, a, b); }
export function ne(a: Tensor | number, b: Tensor | number): Tensor { return run(NE, a, b); }
export function lt(a: Tensor | number, b: Tensor | number): Tensor { return run(LT, a, b); }
export function le(a: Tensor | number, b: Tensor | number): Tensor { return run(LE, a, b); }
export function gt(a: Tensor | number, b: Tensor | number): Tensor { return run(GT, a, b); }
export function ge(a: Tensor | number, b: Tensor | number): Tensor { return run(GE, a, b); }

// ---- where ----
const WHERE = defineOp<object>({
  name: 'where',
  splitRows: splitMatchingRows,
  infer([c, a, b]) {
    if (c.dtype !== 'bool') throw new DTypeError(`where: condition must be bool, got ${c.dtype} ${fmtShape(c.shape)}`);
    if (a.dtype !== b.dtype) throw new DTypeError(`where: branches must share a dtype, got ${a.dtype} ${fmtShape(a.shape)} and ${b.dtype} ${fmtShape(b.shape)}`);
    return { shape: broadcastShapes('where', c.shape, a.shape, b.shape), dtype: a.dtype };
  },
  cpu([c, a, b], _at, out) {
    const r = allocHost(out.dtype, sizeOf(out.shape));
    const st = [c.shape, a.shape, b.shape].map((s) => broadcastStrides(s, out.shape));
    const k = collapseDims(out.shape, st);
    forEachStrided(k.shape, k.strides, (o, idx) => {
      r[o] = c.data[idx[0]] ? a.data[idx[1]] : b.data[idx[2]];
    });
    return r;
  },
  webgpu(gpu, [c, a, b], _at, out) {
    const n = sizeOf(out.shape);
    const packed = packBroadcast(out.shape, [c.shape, a.shape, b.shape]);
    // Rank beyond MAX_RANK after collapsing: materialise the broadcast operands (contiguous).
    const fit = packed ? null : fitBroadcast(gpu, 'where', [c, a, b], out.shape);
    const k = packed ?? { shape: [n], strides: [[1], [1], [1]] };
    gpu.dispatch({
      kernel: WHERE_KERNEL.variant({ types: { T: wgslStorageType(out.dtype) } }),
      bindings: {
        cond: fit ? fit.buffers[0] : c.buffer,
        a: fit ? fit.buffers[1] : a.buffer,
        b: fit ? fit.buffers[2] : b.buffer,
        out: out.buffer,
        params: { n, rank: k.shape.length, shape: k.shape, c_strides: k.strides[0], a_strides: k.strides[1], b_strides: k.strides[2] },
      },
      workgroups: grid1D(n),
    });
    if (fit) for (const s of fit.scratch) gpu.freeBuffer(s);
  },
  grad(dy, [c, a, b]) {
    return [null, gradIf(a, () => where(c, dy, 0)), gradIf(b, () => where(c, 0, dy))];
  },
});

/** Elementwise `cond ? a : b` with broadcasting; numbers are allowed for a or b. */
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  cond.storageFor('where');
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : cond;
  const dtype: DType = like === cond ? 'float32' : like.dtype;
  const temps: Tensor[] = [];
  const conv = (v: Tensor | number) => {
    if (v instanceof Tensor) return v;
    const t = scalarLike(v, cond, dtype);
    temps.push(t);
    return t;
  };
  return adoptTemps(runOp(WHERE, [cond, conv(a), conv(b)], {}), temps);
}

// ---- cast ----
interface CastAttrs {
  dtype: DType;
}
const CAST = defineOp<CastAttrs>({
  name: 'cast',
  splitRows: splitMatchingRows,
  infer: ([x], a) => ({ shape: [...x.shape], dtype: a.dtype }),
  cpu([x], a, out) {
    const n = x.data.length;
    const r = allocHost(out.dtype, n);
    if (a.dtype === 'bool') for (let i = 0; i < n; i++) r[i] = x.data[i] !== 0 ? 1 : 0;
    else if (a.dtype === 'int32') {
      // Truncate toward zero and saturate as WGSL does (its f32 → i32 upper bound is the largest
      // float32 below 2^31); NaN → 0.
      const hi = x.dtype === 'float32' ? 2147483520 : 2147483647;
      for (let i = 0; i < n; i++) {
        const v = x.data[i];
        r[i] = Number.isNaN(v) ? 0 : Math.min(Math.max(Math.trunc(v), -2147483648), hi);
      }
    }
    else r.set(x.data);
    return r;
  },
  webgpu(gpu, [x], a, out) {
    const n = sizeOf(out.shape);
    gpu.dispatch({
      kernel: CAST_KERNEL.variant({ types: { TA: wgslStorageType(x.dtype), TO: wgslStorageType(a.dtype) } }),
      constants: { TO_BOOL: a.dtype === 'bool' },
      bindings: { x: x.buffer, out: out.buffer, params: { n } },
      workgroups: grid1D(n),
    });
  },
  grad: (dy, [x], _o, a) => [isFloat(x.dtype) && isFloat(a.dtype) ? cast(dy, x.dtype) : null],
});

/**
 * Converts to another dtype (float → int truncates toward zero, saturating, NaN → 0; → bool is
 * `x != 0`, NaN → true). Always a new tensor: `cast(x, x.dtype)` is a view sharing x's storage
 * with its own lifetime (disposing it leaves x alive), like `reshape` views.
 */
export function cast(x: Tensor, dtype: DType): Tensor {
  checkDTypeName('cast', dtype);
  if (x.dtype === dtype) return alias(x);
  return runOp(CAST, [x], { dtype });
}
