import indexOpsWgsl from '../../kernels/index-ops.wgsl';
import stridedCopyWgsl from '../../kernels/strided-copy.wgsl';
import { allocHost, isFloat } from '../dtype.js';
import { ArgumentError, DTypeError, IndexError, ShapeError, fmtShape } from '../errors.js';
import { type CpuArg, type GpuArg, defineOp } from '../op.js';
import { broadcastShapes, broadcastStrides, normAxes, normAxis, resolveReshape, shapesEqual, sizeOf, stridesOf } from '../shape.js';
import { type Tensor, runOp } from '../tensor.js';
import { type DispatchSpec, type GpuStorage, type IndexCheck, WebGPUBackend, grid1D } from '../webgpu/webgpu-backend.js';
import type { CpuStorage } from '../cpu/cpu-backend.js';
import { kernelFamily } from '../webgpu/kernel-source.js';
import { add, sumTo } from './binary.js';
import { composite } from './autograd.js';
import { FILL_KERNEL, MAX_KERNEL_RANK, collapseDims, fillBits, forEachStrided, wgslStorageType } from './elementwise-util.js';
import { type PadOptions, padWithMode } from './padding.js';
import { stridedCopyAnyRank } from './high-rank.js';

// ---- strided copy: the shared kernel behind permute, broadcastTo and slice ----
const STRIDED_COPY = kernelFamily({ name: 'strided_copy', source: stridedCopyWgsl, preludes: ['elementwise', 'shape'] });

/** CPU: out[i] = x[offset + Σ c_d·strides[d]] over `shape`. */
export function stridedCopyCpu(x: CpuArg, dtype: CpuArg['dtype'], shape: readonly number[], strides: readonly number[], offset: number): CpuArg['data'] {
  const r = allocHost(dtype, sizeOf(shape));
  const c = collapseDims(shape, [strides]);
  forEachStrided(c.shape, c.strides, (o, idx) => {
    r[o] = x.data[offset + idx[0]];
  });
  return r;
}

/** A strided region of a larger output: element c of the copy lands at offset + Σ c_d·strides[d]. */
export interface OutRegion {
  strides: readonly number[];
  offset: number;
}

/** CPU: copies the contiguous `x` (of `shape`) into the region `dst` of `r` (concat, pad). */
function copyIntoCpu(x: CpuArg, r: CpuArg['data'], shape: readonly number[], dst: OutRegion): void {
  const c = collapseDims(shape, [stridesOf(shape), dst.strides]);
  const xd = x.data;
  forEachStrided(c.shape, c.strides, (_o, idx) => {
    r[dst.offset + idx[1]] = xd[idx[0]];
  });
}

/**
 * WebGPU: the same strided gather into `out` — contiguously, or (with `region`) into a strided
 * region of `out` (elements outside the region are left untouched).
 */
export function stridedCopyGpu(gpu: WebGPUBackend, op: string, x: GpuArg, out: GpuArg, shape: readonly number[], strides: readonly number[], offset: number, region?: OutRegion): void {
  const n = sizeOf(shape);
  if (n === 0) return;
  const c = collapseDims(shape, region ? [strides, region.strides] : [strides]);
  if (c.shape.length > MAX_KERNEL_RANK) {
    // Beyond the uniform's rank: the same copy with its geometry in a storage buffer.
    stridedCopyAnyRank(gpu, x.buffer, x.dtype, out.buffer, c.shape, c.strides[0], offset, region ? { strides: c.strides[1], offset: region.offset } : undefined);
    return;
  }
  gpu.dispatch({
    kernel: STRIDED_COPY.variant({ types: { T: wgslStorageType(x.dtype) } }),
    constants: region ? { OUT_STRIDED: true } : undefined,
    bindings: {
      x: x.buffer,
      out: out.buffer,
      params: { n, rank: c.shape.length, offset, out_offset: region ? region.offset : 0, shape: c.shape, strides: c.strides[0], out_strides: region ? c.strides[1] : [] },
    },
    workgroups: grid1D(n),
  });
}

// ---- reshape (a view: no kernel runs) ----
interface ReshapeAttrs {
  shape: number[];
}
const RESHAPE = defineOp<ReshapeAttrs>({
  name: 'reshape',
  view: true,
  infer: ([x], a) => ({ shape: resolveReshape('reshape', x.shape, a.shape), dtype: x.dtype }),
  cpu: ([x]) => x.data,
  webgpu() {},
  grad: (dy, [x]) => [reshape(dy, x.shape)],
});

/** Same data, new shape (one dim may be −1). Shares storage with the input. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  if (shapesEqual(x.shape, shape)) return x;
  return runOp(RESHAPE, [x], { shape: [...shape] });
}

/** Merges dims startAxis..endAxis into one. */
export function flatten(x: Tensor, startAxis = 0, endAxis = -1): Tensor {
  if (x.rank === 0) return reshape(x, [1]);
  const s = normAxis('flatten', startAxis, x.rank);
  const e = normAxis('flatten', endAxis, x.rank);
  if (e < s) throw new IndexError(`flatten: endAxis ${endAxis} comes before startAxis ${startAxis} for shape ${fmtShape(x.shape)}`);
  const mid = x.shape.slice(s, e + 1).reduce((p, d) => p * d, 1);
  return reshape(x, [...x.shape.slice(0, s), mid, ...x.shape.slice(e + 1)]);
}

/** Removes size-1 dims (all of them, or the given axes, which must have size 1). */
export function squeeze(x: Tensor, axes?: number | number[]): Tensor {
  const ax = axes === undefined ? x.shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0) : normAxes('squeeze', axes, x.rank);
  for (const a of ax) if (x.shape[a] !== 1) throw new ShapeError(`squeeze: axis ${a} of ${fmtShape(x.shape)} has size ${x.shape[a]}, expected 1`);
  return reshape(x, x.shape.filter((_, i) => !ax.includes(i)));
}

/** Inserts a size-1 dim at `axis` (−1 appends). */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis('unsqueeze', axis, x.rank + 1);
  const s = [...x.shape];
  s.splice(a, 0, 1);
  return reshape(x, s);
}

// ---- broadcastTo ----
interface ShapeAttrs {
  shape: number[];
}
const BROADCAST = defineOp<ShapeAttrs>({
  name: 'broadcastTo',
  splitRows: ([x], a) => {
    const chunk = x.shape.length === a.shape.length && x.shape[0] === a.shape[0];
    return { inputs: [chunk], attrs: (_s, count) => ({ ...a, shape: [count, ...a.shape.slice(1)] }) };
  },
  infer([x], a) {
    const s = broadcastShapes('broadcastTo', x.shape, a.shape);
    if (!shapesEqual(s, a.shape)) throw new ShapeError(`broadcastTo: cannot broadcast ${fmtShape(x.shape)} to ${fmtShape(a.shape)}`);
    return { shape: [...a.shape], dtype: x.dtype };
  },
  cpu: ([x], a, out) => stridedCopyCpu(x, out.dtype, a.shape, broadcastStrides(x.shape, a.shape), 0),
  webgpu: (gpu, [x], a, out) => stridedCopyGpu(gpu, 'broadcastTo', x, out, a.shape, broadcastStrides(x.shape, a.shape), 0),
  grad: (dy, [x]) => [sumTo(dy, x.shape)],
});

/** Materialises `x` broadcast to `shape`. */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  if (shapesEqual(x.shape, shape)) return x;
  return runOp(BROADCAST, [x], { shape: [...shape] });
}

// ---- permute / transpose ----
interface PermAttrs {
  perm: number[];
}
const PERMUTE = defineOp<PermAttrs>({
  name: 'permute',
  splitRows: (_x, a) => (a.perm[0] === 0 ? { inputs: [true] } : null),
  infer: ([x], a) => ({ shape: a.perm.map((p) => x.shape[p]), dtype: x.dtype }),
  cpu([x], a, out) {
    const st = stridesOf(x.shape);
    return stridedCopyCpu(x, out.dtype, out.shape, a.perm.map((p) => st[p]), 0);
  },
  webgpu(gpu, [x], a, out) {
    const st = stridesOf(x.shape);
    stridedCopyGpu(gpu, 'permute', x, out, out.shape, a.perm.map((p) => st[p]), 0);
  },
  grad(dy, _x, _o, a) {
    const inv = new Array<number>(a.perm.length);
    a.perm.forEach((p, i) => (inv[p] = i));
    return [permute(dy, inv)];
  },
});

/** Reorders dims: output dim i is input dim perm[i]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank) throw new ArgumentError(`permute: perm [${perm}] has ${perm.length} entries, expected ${x.rank} for shape ${fmtShape(x.shape)}`);
  const p = perm.map((a) => normAxis('permute', a, x.rank));
  if (new Set(p).size !== p.length) throw new ArgumentError(`permute: perm [${perm}] repeats an axis`);
  if (p.every((v, i) => v === i)) return x;
  return runOp(PERMUTE, [x], { perm: p });
}

/** Swaps two dims (default: the last two). */
export function transpose(x: Tensor, axis0 = -2, axis1 = -1): Tensor {
  if (x.rank < 2 && axis0 === -2 && axis1 === -1) return x;
  const a = normAxis('transpose', axis0, x.rank);
  const b = normAxis('transpose', axis1, x.rank);
  const perm = x.shape.map((_, i) => i);
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

// ---- slice ----
interface SliceAttrs {
  begin: number[];
  size: number[];
}
const SLICE = defineOp<SliceAttrs>({
  name: 'slice',
  splitRows: ([x], a) =>
    a.begin[0] === 0 && a.size[0] === x.shape[0] ? { inputs: [true], attrs: (_s, count) => ({ ...a, size: [count, ...a.size.slice(1)] }) } : null,
  infer: ([x], a) => ({ shape: [...a.size], dtype: x.dtype }),
  cpu([x], a, out) {
    const st = stridesOf(x.shape);
    return stridedCopyCpu(x, out.dtype, a.size, st, a.begin.reduce((p, b, d) => p + b * st[d], 0));
  },
  webgpu(gpu, [x], a, out) {
    const st = stridesOf(x.shape);
    stridedCopyGpu(gpu, 'slice', x, out, a.size, st, a.begin.reduce((p, b, d) => p + b * st[d], 0));
  },
  grad: (dy, [x], _o, a) => [isFloat(x.dtype) ? pad(dy, a.begin.map((b, d) => [b, x.shape[d] - b - a.size[d]] as [number, number])) : null],
});

/**
 * The block of `x` starting at `begin` with extent `size` (per dim; −1 = to the end). Negative
 * begins count from the end; `begin`/`size` may be shorter than the rank (the remaining dims are
 * taken whole). Out-of-range → IndexError.
 */
export function slice(x: Tensor, begin: readonly number[], size?: readonly number[]): Tensor {
  const r = x.rank;
  if (begin.length > r) throw new IndexError(`slice: begin [${begin}] has ${begin.length} entries for shape ${fmtShape(x.shape)} (rank ${r})`);
  if (size && size.length > r) throw new IndexError(`slice: size [${size}] has ${size.length} entries for shape ${fmtShape(x.shape)} (rank ${r})`);
  const b: number[] = [];
  const s: number[] = [];
  for (let d = 0; d < r; d++) {
    const n = x.shape[d];
    let bd = d < begin.length ? begin[d] : 0;
    if (!Number.isInteger(bd)) throw new ArgumentError(`slice: begin [${begin}] must hold integers`);
    if (bd < 0) bd += n;
    if (bd < 0 || bd > n) throw new IndexError(`slice: begin ${begin[d]} is out of range for dim ${d} of ${fmtShape(x.shape)} (expected ${-n} <= begin <= ${n})`);
    let sd = size && d < size.length ? size[d] : -1;
    if (!Number.isInteger(sd)) throw new ArgumentError(`slice: size [${size}] must hold integers`);
    if (sd === -1) sd = n - bd;
    if (sd < 0 || bd + sd > n) throw new IndexError(`slice: size ${size![d]} at begin ${bd} overruns dim ${d} of ${fmtShape(x.shape)} (expected 0 <= size <= ${n - bd}, or -1)`);
    b.push(bd);
    s.push(sd);
  }
  if (shapesEqual(s, x.shape)) return x;
  return runOp(SLICE, [x], { begin: b, size: s });
}

// ---- pad (constant) ----
interface PadAttrs {
  pads: [number, number][];
  value: number;
}
/** Where the input lands inside the padded output. */
function padRegion(outShape: readonly number[], pads: readonly [number, number][]): OutRegion {
  const st = stridesOf(outShape);
  return { strides: st, offset: pads.reduce((p, [b], d) => p + b * st[d], 0) };
}
const PAD = defineOp<PadAttrs>({
  name: 'pad',
  splitRows: (_x, a) => (a.pads[0][0] === 0 && a.pads[0][1] === 0 ? { inputs: [true] } : null),
  infer: ([x], a) => ({ shape: x.shape.map((n, d) => n + a.pads[d][0] + a.pads[d][1]), dtype: x.dtype }),
  cpu([x], a, out) {
    const r = allocHost(out.dtype, sizeOf(out.shape));
    r.fill(out.dtype === 'bool' ? (a.value ? 1 : 0) : out.dtype === 'int32' ? a.value | 0 : a.value);
    copyIntoCpu(x, r, x.shape, padRegion(out.shape, a.pads));
    return r;
  },
  webgpu(gpu, [x], a, out) {
    const n = sizeOf(out.shape);
    gpu.dispatch({
      kernel: FILL_KERNEL,
      bindings: { out: out.buffer, params: { n, bits: fillBits(a.value, out.dtype) } },
      workgroups: grid1D(n),
    });
    stridedCopyGpu(gpu, 'pad', x, out, x.shape, stridesOf(x.shape), 0, padRegion(out.shape, a.pads));
  },
  grad: (dy, [x], _o, a) => [isFloat(x.dtype) ? slice(dy, a.pads.map(([b]) => b), x.shape) : null],
});

/**
 * Padding: `pads[d] = [before, after]` elements around dim d (note: dims in order from the first,
 * unlike PyTorch's F.pad, which lists the last dim first). `pads` may be shorter than the rank
 * (the remaining trailing dims are not padded). The third argument is the constant fill value,
 * or `{ mode, value }` with mode 'constant' | 'reflect' | 'replicate' | 'circular' (PyTorch's
 * modes, for any dims; see `PadOptions`). Negative padding → ArgumentError (crop with `slice`).
 * Gradient: the matching slice of dy (constant), or the sum over every copy of an element.
 */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[], valueOrOptions: number | PadOptions = 0): Tensor {
  if (pads.length > x.rank) throw new ArgumentError(`pad: ${pads.length} [before, after] pairs for shape ${fmtShape(x.shape)} (rank ${x.rank})`);
  const opts = typeof valueOrOptions === 'object' && valueOrOptions !== null ? valueOrOptions : { value: valueOrOptions };
  const mode = opts.mode ?? 'constant';
  if (!['constant', 'reflect', 'replicate', 'circular'].includes(mode)) {
    throw new ArgumentError(`pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got ${JSON.stringify(mode)}`);
  }
  const value = opts.value ?? 0;
  if (typeof value !== 'number') throw new ArgumentError(`pad: value must be a number, got ${typeof value}`);
  if (mode !== 'constant' && value !== 0) throw new ArgumentError(`pad: a fill value (${value}) only applies to mode 'constant', got mode '${mode}'`);
  const p: [number, number][] = [];
  for (let d = 0; d < x.rank; d++) {
    const pr = d < pads.length ? pads[d] : [0, 0];
    if (!Array.isArray(pr) || pr.length !== 2) throw new ArgumentError(`pad: pads[${d}] must be a [before, after] pair`);
    const [b, e] = pr;
    if (!Number.isInteger(b) || !Number.isInteger(e) || b < 0 || e < 0) {
      throw new ArgumentError(`pad: pads[${d}] = [${b}, ${e}] for shape ${fmtShape(x.shape)}; expected non-negative integers (crop with slice instead)`);
    }
    p.push([b, e]);
  }
  if (p.every(([b, e]) => b === 0 && e === 0)) return x;
  if (mode !== 'constant') return padWithMode(x, p, mode);
  return runOp(PAD, [x], { pads: p, value });
}

// ---- concat / stack ----
interface AxisAttrs {
  axis: number;
}
const CONCAT = defineOp<AxisAttrs>({
  name: 'concat',
  splitRows: (xs, a) => (a.axis !== 0 ? { inputs: xs.map(() => true) } : null),
  infer(xs, a) {
    const shape = [...xs[0].shape];
    shape[a.axis] = xs.reduce((p, t) => p + t.shape[a.axis], 0);
    return { shape, dtype: xs[0].dtype };
  },
  cpu(xs, a, out) {
    const r = allocHost(out.dtype, sizeOf(out.shape));
    const st = stridesOf(out.shape);
    let off = 0;
    for (const x of xs) {
      copyIntoCpu(x, r, x.shape, { strides: st, offset: off * st[a.axis] });
      off += x.shape[a.axis];
    }
    return r;
  },
  webgpu(gpu, xs, a, out) {
    const st = stridesOf(out.shape);
    let off = 0;
    for (const x of xs) {
      stridedCopyGpu(gpu, 'concat', x, out, x.shape, stridesOf(x.shape), 0, { strides: st, offset: off * st[a.axis] });
      off += x.shape[a.axis];
    }
  },
  grad(dy, xs, _o, a) {
    let off = 0;
    return xs.map((x) => {
      const begin = x.shape.map((_, d) => (d === a.axis ? off : 0));
      off += x.shape[a.axis];
      return isFloat(x.dtype) ? slice(dy, begin, x.shape) : null;
    });
  },
});

/** Joins tensors along an existing axis (all other dims and the dtype must match). */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (!tensors || tensors.length === 0) throw new ArgumentError('concat: expected a non-empty array of tensors');
  const first = tensors[0];
  if (first.rank === 0) throw new ShapeError('concat: cannot concatenate 0-d tensors (use stack)');
  const ax = normAxis('concat', axis, first.rank);
  for (const t of tensors) {
    if (t.dtype !== first.dtype) throw new DTypeError(`concat: dtypes differ (${first.dtype} ${fmtShape(first.shape)} and ${t.dtype} ${fmtShape(t.shape)})`);
    if (t.rank !== first.rank || t.shape.some((n, d) => d !== ax && n !== first.shape[d])) {
      throw new ShapeError(`concat: shapes ${tensors.map((u) => fmtShape(u.shape)).join(', ')} must match in every dim except axis ${ax}`);
    }
  }
  if (tensors.length === 1) return first;
  return runOp(CONCAT, tensors, { axis: ax });
}

/** Joins same-shape tensors along a new axis (unsqueeze + concat). */
export function stack(tensors: readonly Tensor[], axis = 0): Tensor {
  if (!tensors || tensors.length === 0) throw new ArgumentError('stack: expected a non-empty array of tensors');
  const first = tensors[0];
  for (const t of tensors) {
    if (!shapesEqual(t.shape, first.shape)) throw new ShapeError(`stack: shapes ${tensors.map((u) => fmtShape(u.shape)).join(', ')} must all be equal`);
  }
  const ax = normAxis('stack', axis, first.rank + 1);
  return composite(() => concat(tensors.map((t) => unsqueeze(t, ax)), ax));
}

// ---- index ops: indexSelect / indexAdd, gather (takeAlongAxis) / scatterAdd, oneHot ----
const INDEX_OPS = kernelFamily({ name: 'index_ops', source: indexOpsWgsl, preludes: ['grid', 'shape', 'index_check'] });

interface IndexParams {
  n: number;
  rank?: number;
  axis?: number;
  dim?: number;
  kdim?: number;
  inner?: number;
  ignore?: number;
  s0?: readonly number[];
  s1?: readonly number[];
  s2?: readonly number[];
}
/**
 * One index kernel. With `check`, out-of-range indices the kernel meets set the backend's error
 * flag, and the next read raises the IndexError that `check` describes (the CPU's message).
 */
function indexDispatch(gpu: WebGPUBackend, entry: string, t: string, x: GPUBuffer | null, idx: GPUBuffer, out: GPUBuffer | null, p: IndexParams, check?: IndexCheck): void {
  const flag = check ? gpu.indexCheck(check) : null;
  const bindings: DispatchSpec['bindings'] = {
    idx,
    params: {
      n: p.n, rank: p.rank ?? 0, axis: p.axis ?? 0, dim: p.dim ?? 0, kdim: p.kdim ?? 0, inner: p.inner ?? 1,
      check: flag ? flag.id : 0, ignore: p.ignore ?? 0, s0: p.s0 ?? [], s1: p.s1 ?? [], s2: p.s2 ?? [],
    },
  };
  if (x) bindings.x = x;
  if (out) bindings.out = out;
  if (flag) bindings.err_flag = flag.flag;
  gpu.dispatch({ kernel: INDEX_OPS.variant({ types: { T: t } }), entry, bindings, workgroups: grid1D(p.n) });
}

/** The device-side form of `checkIndex`: the same message, raised at the next read. */
const deviceCheck = (op: string, size: number, where: (position: number) => string): IndexCheck => ({
  message: (v, pos) => indexMessage(op, v, size, where(pos)),
});

function checkIndexDType(op: string, indices: Tensor): void {
  if (indices.dtype !== 'int32') throw new DTypeError(`${op}: indices must be int32, got ${indices.dtype} ${fmtShape(indices.shape)}`);
}
const indexMessage = (op: string, v: number, n: number, where: string): string => `${op}: index ${v} at ${where} is out of range [0, ${n})`;
/** CPU: validates an index (WebGPU flags it on the device and raises the same error at the next read). */
function checkIndex(op: string, v: number, n: number, where: string): void {
  if (!(v >= 0 && v < n)) throw new IndexError(indexMessage(op, v, n, where));
}

interface IndexAttrs {
  axis: number;
  /** The op named in index errors (default the op's own name; e.g. 'embedding'). */
  label?: string;
}
/** [outer, dim, inner] view of a shape around `axis`. */
function around(shape: readonly number[], axis: number, span = 1) {
  return { outer: sizeOf(shape.slice(0, axis)), inner: sizeOf(shape.slice(axis + span)) };
}

const INDEX_SELECT = defineOp<IndexAttrs>({
  name: 'indexSelect',
  infer([x, idx], a) {
    return { shape: [...x.shape.slice(0, a.axis), ...idx.shape, ...x.shape.slice(a.axis + 1)], dtype: x.dtype };
  },
  cpu([x, idx], a, out) {
    const { outer, inner } = around(x.shape, a.axis);
    const dim = x.shape[a.axis];
    const K = idx.data.length;
    for (let k = 0; k < K; k++) checkIndex(a.label ?? 'indexSelect', idx.data[k], dim, selectWhere(k, idx.shape, x.shape, a.axis));
    const r = allocHost(out.dtype, sizeOf(out.shape));
    let o = 0;
    for (let p = 0; p < outer; p++) {
      for (let k = 0; k < K; k++) {
        const base = (p * dim + idx.data[k]) * inner;
        for (let i = 0; i < inner; i++) r[o++] = x.data[base + i];
      }
    }
    return r;
  },
  webgpu(gpu, [x, idx], a, out) {
    const { inner } = around(x.shape, a.axis);
    indexDispatch(gpu, 'select_fwd', wgslStorageType(x.dtype), x.buffer, idx.buffer, out.buffer, {
      n: sizeOf(out.shape), dim: x.shape[a.axis], kdim: sizeOf(idx.shape), inner,
    }, deviceCheck(a.label ?? 'indexSelect', x.shape[a.axis], (k) => selectWhere(k, idx.shape, x.shape, a.axis)));
  },
  grad: (dy, [x, idx], _o, a) => [isFloat(x.dtype) ? indexScatter(dy, a.axis, idx, x.shape[a.axis], a.label) : null, null],
});

interface IndexScatterAttrs {
  axis: number;
  dim: number;
  label?: string;
}
const selectWhere = (k: number, idx: readonly number[], x: readonly number[], axis: number): string => `position ${k} of indices ${fmtShape(idx)} (x ${fmtShape(x)}, axis ${axis})`;
const scatterWhere = (k: number, idx: readonly number[], axis: number, dim: number): string => `position ${k} of indices ${fmtShape(idx)} (axis ${axis} of size ${dim})`;
const INDEX_SCATTER = defineOp<IndexScatterAttrs>({
  name: 'indexScatterAdd',
  infer([src, idx], a) {
    const shape = [...src.shape.slice(0, a.axis), a.dim, ...src.shape.slice(a.axis + idx.rank)];
    return { shape, dtype: src.dtype };
  },
  cpu([src, idx], a, out) {
    const K = idx.data.length;
    const { outer, inner } = around(src.shape, a.axis, idx.shape.length);
    for (let k = 0; k < K; k++) checkIndex(a.label ?? 'indexAdd', idx.data[k], a.dim, scatterWhere(k, idx.shape, a.axis, a.dim));
    const r = allocHost(out.dtype, sizeOf(out.shape));
    for (let p = 0; p < outer; p++) {
      for (let k = 0; k < K; k++) {
        const dst = (p * a.dim + idx.data[k]) * inner;
        const s = (p * K + k) * inner;
        for (let i = 0; i < inner; i++) r[dst + i] += src.data[s + i];
      }
    }
    return r;
  },
  webgpu(gpu, [src, idx], a, out) {
    const { inner } = around(src.shape, a.axis, idx.shape.length);
    indexDispatch(gpu, 'select_bwd', wgslStorageType(src.dtype), src.buffer, idx.buffer, out.buffer, {
      n: sizeOf(out.shape), dim: a.dim, kdim: sizeOf(idx.shape), inner,
    }, deviceCheck(a.label ?? 'indexAdd', a.dim, (k) => scatterWhere(k, idx.shape, a.axis, a.dim)));
  },
  grad: (dy, [, idx], _o, a) => [runOp(INDEX_SELECT, [dy, idx], { axis: a.axis, label: a.label }), null],
});

/**
 * Picks slices of `x` along `axis`: out shape = x.shape[:axis] + indices.shape + x.shape[axis+1:].
 * `indices` is an int32 tensor of any shape with values in [0, x.shape[axis]).
 *
 * Out-of-range indices throw an IndexError naming the op, the bad index, its position and the
 * axis size: at once on the CPU backend; on WebGPU the kernel reads 0 for them (never out of
 * bounds) and sets a device-side error flag, and the error is raised at the next read of any
 * result of that backend (`data()`, `item()`, `toArray()`, `sync`), with no extra readback. Only
 * indices the kernel visits are checked: with an empty output nothing is read, so nothing is
 * flagged. `opts.op` names the op in that error (e.g. 'embedding'). Gradient: a deterministic
 * scatter-add (see `indexAdd`).
 */
export function indexSelect(x: Tensor, axis: number, indices: Tensor, opts: { op?: string } = {}): Tensor {
  const op = opts.op ?? 'indexSelect';
  checkIndexDType(op, indices);
  if (x.rank === 0) throw new ShapeError(`${op}: x must have rank >= 1, got a 0-d tensor`);
  const ax = normAxis(op, axis, x.rank);
  if (indices.size > 0 && x.shape[ax] === 0) throw new IndexError(`${op}: axis ${ax} of ${fmtShape(x.shape)} is empty; indices ${fmtShape(indices.shape)} cannot select from it`);
  return runOp(INDEX_SELECT, [x, indices], opts.op ? { axis: ax, label: opts.op } : { axis: ax });
}

/** Sums `src` (shape pre + indices.shape + post) into zeros of shape pre + [dim] + post. */
function indexScatter(src: Tensor, axis: number, indices: Tensor, dim: number, label?: string): Tensor {
  return runOp(INDEX_SCATTER, [src, indices], label ? { axis, dim, label } : { axis, dim });
}

/**
 * `x` plus `source` scatter-added along `axis` at `indices` (repeated indices accumulate):
 * out[..., indices[k], ...] += source[..., k, ...], with source.shape = x.shape[:axis] +
 * indices.shape + x.shape[axis+1:]. Deterministic on WebGPU (no atomics): each output element
 * loops over the whole index list, so the cost is O(|x| · |indices|). Differentiable in x and
 * source (the gradient w.r.t. source is indexSelect). Out-of-range indices: an IndexError, at once
 * on the CPU, at the next read on WebGPU (the kernel drops them and sets the device error flag;
 * see `indexSelect`).
 */
export function indexAdd(x: Tensor, axis: number, indices: Tensor, source: Tensor): Tensor {
  checkIndexDType('indexAdd', indices);
  if (x.rank === 0) throw new ShapeError('indexAdd: x must have rank >= 1, got a 0-d tensor');
  const ax = normAxis('indexAdd', axis, x.rank);
  const want = [...x.shape.slice(0, ax), ...indices.shape, ...x.shape.slice(ax + 1)];
  if (!shapesEqual(source.shape, want)) {
    throw new ShapeError(`indexAdd: source ${fmtShape(source.shape)} must have shape ${fmtShape(want)} (x ${fmtShape(x.shape)}, indices ${fmtShape(indices.shape)}, axis ${ax})`);
  }
  if (source.dtype !== x.dtype) throw new DTypeError(`indexAdd: source dtype ${source.dtype} differs from x dtype ${x.dtype}`);
  if (x.dtype === 'bool') throw new DTypeError(`indexAdd: bool tensors cannot be summed (x ${fmtShape(x.shape)})`);
  if (indices.size > 0 && x.shape[ax] === 0) throw new IndexError(`indexAdd: axis ${ax} of ${fmtShape(x.shape)} is empty; indices ${fmtShape(indices.shape)} cannot address it`);
  return composite(() => add(x, indexScatter(source, ax, indices, x.shape[ax])));
}

// gather (PyTorch semantics): out[c] = x[c with c[axis] := indices[c]], out.shape = indices.shape.
const gatherWhere = (o: number, idx: readonly number[], x: readonly number[], axis: number): string => `flat position ${o} of indices ${fmtShape(idx)} (x ${fmtShape(x)}, axis ${axis})`;
const scatterAddWhere = (o: number, idx: readonly number[], axis: number, dim: number): string => `flat position ${o} of indices ${fmtShape(idx)} (axis ${axis} of size ${dim})`;
const GATHER = defineOp<IndexAttrs>({
  name: 'gather',
  infer: ([x, idx]) => ({ shape: [...idx.shape], dtype: x.dtype }),
  cpu([x, idx], a, out) {
    const r = allocHost(out.dtype, sizeOf(out.shape));
    const xs = stridesOf(x.shape);
    const st = idx.shape.map((_, d) => (d === a.axis ? 0 : xs[d]));
    const dim = x.shape[a.axis];
    forEachStrided(idx.shape, [st], (o, off) => {
      const v = idx.data[o];
      checkIndex('gather', v, dim, gatherWhere(o, idx.shape, x.shape, a.axis));
      r[o] = x.data[off[0] + v * xs[a.axis]];
    });
    return r;
  },
  webgpu(gpu, [x, idx], a, out) {
    indexDispatch(gpu, 'gather_fwd', wgslStorageType(x.dtype), x.buffer, idx.buffer, out.buffer, {
      n: sizeOf(out.shape), rank: idx.shape.length, axis: a.axis, dim: x.shape[a.axis], s0: idx.shape, s1: stridesOf(x.shape),
    }, deviceCheck('gather', x.shape[a.axis], (o) => gatherWhere(o, idx.shape, x.shape, a.axis)));
  },
  grad: (dy, [x, idx], _o, a) => [isFloat(x.dtype) ? gatherScatter(dy, a.axis, idx, x.shape) : null, null],
});

interface GatherScatterAttrs {
  axis: number;
  shape: number[];
}
const GATHER_SCATTER = defineOp<GatherScatterAttrs>({
  name: 'gatherScatterAdd',
  infer: ([src], a) => ({ shape: [...a.shape], dtype: src.dtype }),
  cpu([src, idx], a, out) {
    const r = allocHost(out.dtype, sizeOf(out.shape));
    const os = stridesOf(a.shape);
    const st = idx.shape.map((_, d) => (d === a.axis ? 0 : os[d]));
    const dim = a.shape[a.axis];
    forEachStrided(idx.shape, [st], (o, off) => {
      const v = idx.data[o];
      checkIndex('scatterAdd', v, dim, scatterAddWhere(o, idx.shape, a.axis, dim));
      r[off[0] + v * os[a.axis]] += src.data[o];
    });
    return r;
  },
  webgpu(gpu, [src, idx], a, out) {
    indexDispatch(gpu, 'gather_bwd', wgslStorageType(src.dtype), src.buffer, idx.buffer, out.buffer, {
      n: sizeOf(out.shape), rank: a.shape.length, axis: a.axis, kdim: idx.shape[a.axis], s0: a.shape, s1: stridesOf(idx.shape), s2: idx.shape,
    }, deviceCheck('scatterAdd', a.shape[a.axis], (o) => scatterAddWhere(o, idx.shape, a.axis, a.shape[a.axis])));
  },
  grad: (dy, [, idx], _o, a) => [gather(dy, idx, a.axis), null],
});

function gatherScatter(src: Tensor, axis: number, indices: Tensor, shape: readonly number[]): Tensor {
  return runOp(GATHER_SCATTER, [src, indices], { axis, shape: [...shape] });
}

function checkGatherShapes(op: string, x: Tensor, indices: Tensor, axis: number): number {
  checkIndexDType(op, indices);
  if (x.rank === 0) throw new ShapeError(`${op}: x must have rank >= 1, got a 0-d tensor`);
  const ax = normAxis(op, axis, x.rank);
  if (indices.rank !== x.rank || indices.shape.some((n, d) => d !== ax && n > x.shape[d])) {
    throw new ShapeError(`${op}: indices ${fmtShape(indices.shape)} must have the rank of x ${fmtShape(x.shape)} and dims no larger than x's except along axis ${ax}`);
  }
  if (indices.size > 0 && x.shape[ax] === 0) throw new IndexError(`${op}: axis ${ax} of ${fmtShape(x.shape)} is empty; indices ${fmtShape(indices.shape)} cannot address it`);
  return ax;
}

/**
 * PyTorch `gather` / NumPy `take_along_axis`: out[c] = x[c with c[axis] := indices[c]], with
 * out.shape = indices.shape (same rank as x; dims other than `axis` no larger than x's).
 * E.g. `gather(logits, labels.unsqueeze(1), 1)` picks the true-class logits. Out-of-range
 * indices: an IndexError, at once on the CPU; on WebGPU they read 0 and the error is raised at the
 * next read (device error flag, see `indexSelect`). Gradient: `scatterAdd` into zeros.
 */
export function gather(x: Tensor, indices: Tensor, axis: number): Tensor {
  const ax = checkGatherShapes('gather', x, indices, axis);
  if (x.rank <= MAX_KERNEL_RANK) return runOp(GATHER, [x, indices], { axis: ax });
  const g = gatherGeometry('gather', x.shape, indices.shape, ax);
  return composite(() => reshape(runOp(GATHER, [reshape(x, g.x), reshape(indices, g.idx)], { axis: g.axis }), indices.shape));
}

/**
 * Merges neighbouring dims (other than `axis`) where indices span all of x, so that a gather /
 * scatter of rank > MAX_RANK fits the kernel: a dim d joins the previous one when
 * indices.shape[d] === x.shape[d] (the merged coordinate is then the same for both). Flat
 * positions in the indices are unchanged, so index errors name the same position.
 */
function gatherGeometry(op: string, xs: readonly number[], is: readonly number[], axis: number): { x: number[]; idx: number[]; axis: number } {
  const x: number[] = [];
  const idx: number[] = [];
  let ax = -1;
  for (let d = 0; d < xs.length; d++) {
    const last = x.length - 1;
    if (d !== axis && last >= 0 && last !== ax && is[d] === xs[d]) {
      x[last] *= xs[d];
      idx[last] *= is[d];
      continue;
    }
    if (d === axis) ax = x.length;
    x.push(xs[d]);
    idx.push(is[d]);
  }
  if (x.length > MAX_KERNEL_RANK) {
    throw new ShapeError(`${op}: x ${fmtShape(xs)} with indices ${fmtShape(is)} along axis ${axis} has rank ${x.length} after merging the dims indices span fully; at most ${MAX_KERNEL_RANK} is supported`);
  }
  return { x, idx, axis: ax };
}

/** Alias of {@link gather} (NumPy name). */
export function takeAlongAxis(x: Tensor, indices: Tensor, axis: number): Tensor {
  return gather(x, indices, axis);
}

/**
 * PyTorch `scatter_add`: out = x, then out[c with c[axis] := indices[c]] += src[c] for every c
 * in indices' shape (`src` has indices' shape). Deterministic on WebGPU (each element of x loops
 * over indices.shape[axis] candidates: O(|x| · indices.shape[axis])). Differentiable in x and src
 * (the gradient w.r.t. src is `gather`). Out-of-range indices: an IndexError, at once on the CPU;
 * on WebGPU they are dropped and the error is raised at the next read (see `indexSelect`).
 */
export function scatterAdd(x: Tensor, axis: number, indices: Tensor, src: Tensor): Tensor {
  const ax = checkGatherShapes('scatterAdd', x, indices, axis);
  if (!shapesEqual(src.shape, indices.shape)) throw new ShapeError(`scatterAdd: src ${fmtShape(src.shape)} must have the shape of indices ${fmtShape(indices.shape)}`);
  if (src.dtype !== x.dtype) throw new DTypeError(`scatterAdd: src dtype ${src.dtype} differs from x dtype ${x.dtype}`);
  if (x.dtype === 'bool') throw new DTypeError(`scatterAdd: bool tensors cannot be summed (x ${fmtShape(x.shape)})`);
  if (x.rank <= MAX_KERNEL_RANK) return composite(() => add(x, gatherScatter(src, ax, indices, x.shape)));
  const g = gatherGeometry('scatterAdd', x.shape, indices.shape, ax);
  return composite(() => add(x, reshape(gatherScatter(reshape(src, g.idx), g.axis, reshape(indices, g.idx), g.x), x.shape)));
}

// ---- oneHot ----
interface OneHotAttrs {
  depth: number;
  dtype: CpuArg['dtype'];
}
const ONE_HOT = defineOp<OneHotAttrs>({
  name: 'oneHot',
  notDifferentiable: true, // integer indices in, a constant mask out
  infer: ([idx], a) => ({ shape: [...idx.shape, a.depth], dtype: a.dtype }),
  cpu([idx], a, out) {
    const r = allocHost(out.dtype, sizeOf(out.shape));
    for (let m = 0; m < idx.data.length; m++) {
      const v = idx.data[m];
      if (v >= 0 && v < a.depth) r[m * a.depth + v] = 1;
    }
    return r;
  },
  webgpu(gpu, [idx], a, out) {
    indexDispatch(gpu, 'one_hot', wgslStorageType(out.dtype), null, idx.buffer, out.buffer, { n: sizeOf(out.shape), dim: a.depth });
  },
});

/**
 * One-hot encoding: out shape indices.shape + [depth], 1 at the index and 0 elsewhere. Indices
 * outside [0, depth) (e.g. −1 as an "ignore" label) give an all-zero row, identically on every
 * backend (TensorFlow semantics). Not differentiable (its input is an integer tensor).
 */
export function oneHot(indices: Tensor, depth: number, dtype: CpuArg['dtype'] = 'float32'): Tensor {
  checkIndexDType('oneHot', indices);
  if (!Number.isInteger(depth) || depth < 0) throw new ArgumentError(`oneHot: depth must be a non-negative integer, got ${depth}`);
  return runOp(ONE_HOT, [indices], { depth, dtype });
}

// ---- device-checked index validation (labels, embedding indices) ----
export interface ValidateIndicesOptions {
  /** A value that is allowed besides [0, size) (e.g. a loss's ignoreIndex). */
  allowed?: number;
  /** The error message for the first bad `value` at flat `position` (name the op the user called). */
  message: (value: number, position: number) => string;
}

/**
 * Checks that every value of the int32 tensor `indices` lies in [0, size) (or equals
 * `opts.allowed`), throwing an IndexError with `opts.message(value, position)` for the first bad
 * one. On the CPU backend it throws at once. On WebGPU one small kernel scans the indices on the
 * device and sets the backend's error flag; the IndexError is raised at the next read of that
 * backend (`data()`, `item()`, `sync`), with no extra readback. Returns nothing and records no
 * autodiff node. Used by crossEntropy / nllLoss for labels born on the device.
 */
export function validateIndices(indices: Tensor, size: number, opts: ValidateIndicesOptions): void {
  checkIndexDType('validateIndices', indices);
  if (indices.size === 0) return;
  const storage = indices.storageFor('validateIndices');
  const be = storage.backend;
  const allowed = opts.allowed;
  if (be instanceof WebGPUBackend) {
    if (allowed !== undefined && !(Number.isInteger(allowed) && allowed >= -(2 ** 31) && allowed < 2 ** 31)) {
      throw new ArgumentError(`validateIndices: allowed must be an int32 value, got ${allowed}`);
    }
    const buf = (storage as GpuStorage).buffer;
    // Without an allowed value, `ignore` is 0: a valid index anyway.
    indexDispatch(be, 'validate', 'f32', null, buf, null, { n: indices.size, dim: size, ignore: allowed ?? 0 }, { message: opts.message });
    return;
  }
  const data = (storage as CpuStorage).data;
  for (let i = 0; i < indices.size; i++) {
    const v = data[i];
    if (!(v >= 0 && v < size) && v !== allowed) throw new IndexError(opts.message(v, i));
  }
}
