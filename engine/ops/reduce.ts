import reduceWgsl from '../../kernels/reduce.wgsl';
import { type DType, allocHost, isFloat } from '../dtype.js';
import { ShapeError, fmtShape } from '../errors.js';
import { type OpDef, defineOp } from '../op.js';
import { normAxes, normAxis, reducedShape, sizeOf, stridesOf } from '../shape.js';
import { type Tensor, runOp } from '../tensor.js';
import { REDUCE_OPS, WG_1D } from '../webgpu/kernel-constants.js';
import { kernelFamily } from '../webgpu/kernel-source.js';
import { add, cast, div, eq, gt, lt, mul, sub, where } from './binary.js';
import { MAX_KERNEL_RANK, collapseDims, wgslStorageType } from './elementwise-util.js';
import { stridedCopyAnyRank } from './high-rank.js';
import { broadcastTo, reshape } from './shape-ops.js';
import { abs, exp, log } from './unary.js';
import { composite, detach } from './autograd.js';

interface ReduceAttrs {
  axes: number[];
  keepDims: boolean;
}

const REDUCE = kernelFamily({ name: 'reduce', source: reduceWgsl, preludes: ['grid', 'shape', 'ieee'], opCodes: REDUCE_OPS });

/** Splits an input shape into collapsed kept and reduced (shape, strides). */
function splitAxes(shape: readonly number[], axes: readonly number[]) {
  const st = stridesOf(shape);
  const keptShape: number[] = [];
  const keptSt: number[] = [];
  const redShape: number[] = [];
  const redSt: number[] = [];
  for (let d = 0; d < shape.length; d++) {
    if (axes.includes(d)) {
      redShape.push(shape[d]);
      redSt.push(st[d]);
    } else {
      keptShape.push(shape[d]);
      keptSt.push(st[d]);
    }
  }
  const k = collapseDims(keptShape, [keptSt]);
  const r = collapseDims(redShape, [redSt]);
  return { kept: { shape: k.shape, strides: k.strides[0] }, red: { shape: r.shape, strides: r.strides[0] } };
}

const { sum: SUM, max: MAX, argmax: ARGMAX } = REDUCE_OPS;

function reduceOp(name: keyof typeof REDUCE_OPS, grad?: OpDef<ReduceAttrs>['grad']): OpDef<ReduceAttrs> {
  const code: number = REDUCE_OPS[name];
  const isArg = code >= ARGMAX;
  return defineOp<ReduceAttrs>({
    name,
    // Reductions that keep dim 0 chunk it; a float sum over dim 0 sums the chunks' partial sums.
    splitRows: ([x], a, out) => {
      if (x.shape.length === 0) return null;
      if (!a.axes.includes(0)) return { inputs: [true] };
      return code === SUM && out.dtype === 'float32' ? { inputs: [true], combine: 'sum' } : null;
    },
    infer([x], a) {
      if (code !== SUM) {
        for (const ax of a.axes) {
          if (x.shape[ax] === 0) throw new ShapeError(`${name}: cannot reduce over axis ${ax} of size 0 (input ${fmtShape(x.shape)})`);
        }
      }
      const dtype: DType = isArg ? 'int32' : code === SUM && !isFloat(x.dtype) ? 'int32' : x.dtype;
      return { shape: reducedShape(x.shape, a.axes, a.keepDims), dtype };
    },
    cpu([x], a, out) {
      const { kept, red } = splitAxes(x.shape, a.axes);
      const nOut = sizeOf(out.shape);
      const nRed = sizeOf(red.shape);
      const r = allocHost(out.dtype, nOut);
      const offsets = (shape: number[], strides: number[], count: number) => {
        const o = new Array<number>(count);
        for (let i = 0; i < count; i++) {
          let rem = i;
          let off = 0;
          for (let d = shape.length - 1; d >= 0; d--) {
            off += (rem % shape[d]) * strides[d];
            rem = Math.floor(rem / shape[d]);
          }
          o[i] = off;
        }
        return o;
      };
      const ko = offsets(kept.shape, kept.strides, nOut);
      const ro = offsets(red.shape, red.strides, nRed);
      for (let o = 0; o < nOut; o++) {
        const base = ko[o];
        if (code === SUM) {
          let s = 0;
          for (let k = 0; k < nRed; k++) s += x.data[base + ro[k]];
          r[o] = s;
        } else {
          let best = x.data[base + ro[0]];
          let bi = 0;
          for (let k = 1; k < nRed; k++) {
            const v = x.data[base + ro[k]];
            const better = code === MAX || code === ARGMAX ? v > best || (Number.isNaN(v) && !Number.isNaN(best)) : v < best || (Number.isNaN(v) && !Number.isNaN(best));
            if (better) {
              best = v;
              bi = k;
            }
          }
          r[o] = isArg ? bi : best;
        }
      }
      return r;
    },
    webgpu(gpu, [x], a, out) {
      let { kept, red } = splitAxes(x.shape, a.axes);
      const nOut = sizeOf(out.shape);
      const nRed = sizeOf(red.shape);
      let src = x.buffer;
      let scratch: GPUBuffer | null = null;
      if (kept.shape.length > MAX_KERNEL_RANK || red.shape.length > MAX_KERNEL_RANK) {
        // Beyond MAX_RANK: permute x to [kept..., reduced...] (any-rank strided copy); both groups
        // are then contiguous, one dim each, and the reduced order (argmax indices) is unchanged.
        scratch = gpu.allocBuffer(Math.max(4, nOut * nRed * 4), name);
        const c = collapseDims([...kept.shape, ...red.shape], [[...kept.strides, ...red.strides]]);
        stridedCopyAnyRank(gpu, x.buffer, x.dtype, scratch, c.shape, c.strides[0], 0);
        src = scratch;
        kept = { shape: [nOut], strides: [nRed] };
        red = { shape: [nRed], strides: [1] };
      }
      const tc = isFloat(x.dtype) ? 'f32' : 'i32';
      const wgMode = nRed >= 256 && nOut < 4096;
      const groups = wgMode ? nOut : Math.ceil(nOut / WG_1D);
      const gy = Math.ceil(groups / 65535);
      gpu.dispatch({
        kernel: REDUCE.variant({ types: { TA: wgslStorageType(x.dtype), TC: tc, TO: wgslStorageType(out.dtype) } }),
        constants: { OP: code, WG_MODE: wgMode },
        bindings: {
          x: src,
          out: out.buffer,
          params: {
            n_out: nOut, n_red: nRed, kept_rank: kept.shape.length, red_rank: red.shape.length,
            kept_shape: kept.shape, kept_strides: kept.strides, red_shape: red.shape, red_strides: red.strides,
          },
        },
        workgroups: [Math.ceil(groups / gy), gy, 1],
      });
      if (scratch) gpu.freeBuffer(scratch);
    },
    ...(grad ? { grad } : { notDifferentiable: true as const }), // argmax/argmin: integer results
  });
}

/** Re-inserts reduced axes as size-1 dims so a reduced tensor broadcasts against the input. */
function keepShape(t: Tensor, inShape: readonly number[], a: ReduceAttrs): Tensor {
  return a.keepDims ? t : reshape(t, reducedShape(inShape, a.axes, true));
}

const SUM_OP = reduceOp('sum', (dy, [x], _o, a) => [isFloat(x.dtype) ? broadcastTo(keepShape(dy, x.shape, a), x.shape) : null]);

// The gradient of max/min flows to every element equal to the extreme, split evenly on ties.
function extremeGrad(dy: Tensor, x: Tensor, out: Tensor, a: ReduceAttrs): Tensor {
  const mask = cast(eq(x, keepShape(detach(out), x.shape, a)), x.dtype);
  const count = sum(mask, a.axes, true);
  return mul(mask, div(keepShape(dy, x.shape, a), count));
}
const MAX_OP = reduceOp('max', (dy, [x], out, a) => [isFloat(x.dtype) ? extremeGrad(dy, x, out, a) : null]);
const MIN_OP = reduceOp('min', (dy, [x], out, a) => [isFloat(x.dtype) ? extremeGrad(dy, x, out, a) : null]);
const ARGMAX_OP = reduceOp('argmax');
const ARGMIN_OP = reduceOp('argmin');

type Axes = number | readonly number[] | undefined;

/** Σ over `axes` (all by default). int/bool inputs sum to int32. */
export function sum(x: Tensor, axes?: Axes, keepDims = false): Tensor {
  return runOp(SUM_OP, [x], { axes: normAxes('sum', axes, x.rank), keepDims });
}

/** Mean over `axes` (all by default). */
export function mean(x: Tensor, axes?: Axes, keepDims = false): Tensor {
  return composite(() => {
    const ax = normAxes('mean', axes, x.rank);
    const n = ax.reduce((p, d) => p * x.shape[d], 1);
    const s = sum(isFloat(x.dtype) ? x : cast(x, 'float32'), ax, keepDims);
    return div(s, n);
  });
}

/** Maximum over `axes` (NaN propagates). Gradient goes to the maxima, split evenly on ties. */
export function max(x: Tensor, axes?: Axes, keepDims = false): Tensor {
  return runOp(MAX_OP, [x], { axes: normAxes('max', axes, x.rank), keepDims });
}

/** Minimum over `axes` (NaN propagates). Gradient goes to the minima, split evenly on ties. */
export function min(x: Tensor, axes?: Axes, keepDims = false): Tensor {
  return runOp(MIN_OP, [x], { axes: normAxes('min', axes, x.rank), keepDims });
}

/** Index (int32) of the first maximum along `axis`; a NaN counts as the maximum (the first NaN's index, as PyTorch). */
export function argmax(x: Tensor, axis = -1, keepDims = false): Tensor {
  return runOp(ARGMAX_OP, [x], { axes: [normAxis('argmax', axis, x.rank)], keepDims });
}

/** Index (int32) of the first minimum along `axis`. */
export function argmin(x: Tensor, axis = -1, keepDims = false): Tensor {
  return runOp(ARGMIN_OP, [x], { axes: [normAxis('argmin', axis, x.rank)], keepDims });
}

/** The detached max over `axes` (keepDims), replaced by 0 where it is ±∞ or NaN so that
 * (−∞) − (−∞) never produces NaN. */
function rowShift(x: Tensor, axes: number[]): Tensor {
  const m = detach(max(x, axes, true));
  return where(lt(abs(m), Infinity), m, 0);
}

/** log Σ exp(x) over `axes`, computed as m + log Σ exp(x − m) with m = max (detached): finite for large |x|. */
export function logsumexp(x: Tensor, axes?: Axes, keepDims = false): Tensor {
  return composite(() => {
    const ax = normAxes('logsumexp', axes, x.rank);
    const mSafe = rowShift(x, ax);
    const s = log(sum(exp(sub(x, mSafe)), ax, true));
    const r = add(s, mSafe);
    return keepDims ? r : reshape(r, reducedShape(x.shape, ax, false));
  });
}

/** Variance over `axes` with Bessel-style `correction` (0 = population, 1 = sample). */
export function variance(x: Tensor, axes?: Axes, keepDims = false, correction = 0): Tensor {
  return composite(() => {
    const ax = normAxes('variance', axes, x.rank);
    const n = ax.reduce((p, d) => p * x.shape[d], 1);
    const mu = mean(x, ax, true);
    const d = sub(x, mu);
    const ss = sum(mul(d, d), ax, keepDims);
    return div(ss, Math.max(n - correction, 0));
  });
}

/**
 * softmax along `axis`: exp(x − logsumexp(x)); rows sum to 1 and stay finite for large logits.
 * A row holding +inf or NaN is all NaN (PyTorch); a row of all −inf is NaN too (0/0).
 */
export function softmax(x: Tensor, axis = -1): Tensor {
  x.storageFor('softmax');
  normAxis('softmax', axis, x.rank);
  return composite(() => exp(logSoftmax(x, axis)));
}

/**
 * log softmax along `axis`: (x − m) − log Σ exp(x − m) with m the (detached) row max — the
 * shift is subtracted before the log-sum is, so huge logits lose no precision. A row holding +inf
 * or NaN is all NaN, as PyTorch (+inf − +inf is NaN: there is no finite answer); an all −inf row
 * is NaN. (`logsumexp` differs on purpose, as PyTorch's: a +inf in the row gives +inf.)
 */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  x.storageFor('logSoftmax');
  const ax = normAxis('logSoftmax', axis, x.rank);
  return composite(() => {
    // The row max is kept when it is +inf (x − m is then NaN at the +inf and −inf elsewhere, and
    // the NaN reaches the whole row through the sum); −inf and NaN maxima shift by 0.
    const m = detach(max(x, [ax], true));
    const shifted = sub(x, where(gt(m, -Infinity), m, 0));
    return sub(shifted, log(sum(exp(shifted), ax, true)));
  });
}
