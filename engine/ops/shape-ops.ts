import stridedCopyWgsl from '../../kernels/strided-copy.wgsl';
import { allocHost } from '../dtype.js';
import { ArgumentError, IndexError, ShapeError, fmtShape } from '../errors.js';
import { type CpuArg, type GpuArg, defineOp } from '../op.js';
import { broadcastShapes, broadcastStrides, normAxes, normAxis, resolveReshape, shapesEqual, sizeOf, stridesOf } from '../shape.js';
import { type Tensor, runOp } from '../tensor.js';
import { type KernelSource, type WebGPUBackend, grid1D } from '../webgpu/webgpu-backend.js';
import { uniforms } from '../webgpu/uniforms.js';
import { sumTo } from './binary.js';
import { MAX_KERNEL_RANK, collapseDims, forEachStrided, typePrelude, wgslStorageType } from './elementwise-util.js';

// ---- strided copy: the shared kernel behind permute, broadcastTo and slice ----
const copyKernels = new Map<string, KernelSource>();
function copyKernel(t: string): KernelSource {
  let k = copyKernels.get(t);
  if (!k) copyKernels.set(t, (k = { name: `strided_copy_${t}`, code: typePrelude({ T: t }) + stridedCopyWgsl }));
  return k;
}

/** CPU: out[i] = x[offset + Σ c_d·strides[d]] over `shape`. */
export function stridedCopyCpu(x: CpuArg, dtype: CpuArg['dtype'], shape: readonly number[], strides: readonly number[], offset: number) {
  const r = allocHost(dtype, sizeOf(shape));
  const c = collapseDims(shape, [strides]);
  forEachStrided(c.shape, c.strides, (o, idx) => {
    r[o] = x.data[offset + idx[0]];
  });
  return r;
}

/** WebGPU: the same strided gather into `out`. */
export function stridedCopyGpu(gpu: WebGPUBackend, op: string, x: GpuArg, out: GpuArg, shape: readonly number[], strides: readonly number[], offset: number): void {
  const n = sizeOf(shape);
  const c = collapseDims(shape, [strides]);
  if (c.shape.length > MAX_KERNEL_RANK) throw new ShapeError(`${op}: a copy pattern over ${fmtShape(shape)} needs rank ${c.shape.length} > ${MAX_KERNEL_RANK} on WebGPU`);
  gpu.dispatch({
    kernel: copyKernel(wgslStorageType(x.dtype)),
    bindings: {
      x: x.buffer,
      out: out.buffer,
      params: uniforms().u32(n).u32(c.shape.length).u32(offset).u32(0).u32Array(c.shape, 8).u32Array(c.strides[0], 8).bytes(),
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
