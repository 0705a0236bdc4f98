/**
 * WebGPU fallbacks for index patterns whose collapsed rank exceeds the kernels' uniform limit
 * (MAX_RANK): permutes, broadcasts, slices, pads and concats of rank 9+ that do not collapse,
 * elementwise binary ops and `where` over such broadcasts, and reductions with more than MAX_RANK
 * kept or reduced dims. One primitive does the work: a strided copy that reads its geometry from
 * a storage buffer (any rank, one dispatch). Binary ops and `where` first materialise their
 * broadcast operands contiguously with it; reductions first permute the input to
 * [kept..., reduced...] order, after which both groups collapse to one dim each.
 */
import stridedCopyBigWgsl from '../../kernels/strided-copy-big.wgsl';
import type { DType } from '../dtype.js';
import type { GpuArg } from '../op.js';
import { broadcastStrides, sizeOf } from '../shape.js';
import { type WebGPUBackend, grid1D } from '../webgpu/webgpu-backend.js';
import { kernelFamily } from '../webgpu/kernel-source.js';
import { collapseDims, wgslStorageType } from './elementwise-util.js';

const STRIDED_COPY_BIG = kernelFamily({ name: 'strided_copy_big', source: stridedCopyBigWgsl, preludes: ['elementwise'] });

/**
 * out[outOffset + Σ c_d·outStrides[d]] (or out[i] without `outStrides`) = x[offset + Σ c_d·strides[d]]
 * over `shape` (already collapsed), for any rank, in one dispatch.
 */
export function stridedCopyAnyRank(
  gpu: WebGPUBackend, x: GPUBuffer, dtype: DType, out: GPUBuffer, shape: readonly number[], strides: readonly number[], offset: number,
  region?: { strides: readonly number[]; offset: number },
): void {
  const n = sizeOf(shape);
  if (n === 0) return;
  const r = shape.length;
  const geom = new Uint32Array(Math.max(1, r * (region ? 3 : 2)));
  geom.set(shape, 0);
  geom.set(strides, r);
  if (region) geom.set(region.strides, 2 * r);
  const gbuf = gpu.allocBuffer(geom.byteLength, 'stridedCopy');
  gpu.device.queue.writeBuffer(gbuf, 0, geom.buffer, geom.byteOffset, geom.byteLength);
  gpu.dispatch({
    kernel: STRIDED_COPY_BIG.variant({ types: { T: wgslStorageType(dtype) } }),
    constants: region ? { OUT_STRIDED: true } : undefined,
    bindings: { x, out, geom: gbuf, params: { n, rank: r, offset, out_offset: region ? region.offset : 0 } },
    workgroups: grid1D(n),
  });
  gpu.freeBuffer(gbuf);
}

/**
 * Materialises `arg` broadcast to `outShape` in a scratch buffer (free it with
 * `gpu.freeBuffer` after the dispatch that reads it).
 */
export function broadcastToScratch(gpu: WebGPUBackend, op: string, arg: GpuArg, outShape: readonly number[]): GPUBuffer {
  const n = sizeOf(outShape);
  const buf = gpu.allocBuffer(Math.max(4, n * 4), op);
  const c = collapseDims(outShape, [broadcastStrides(arg.shape, outShape)]);
  stridedCopyAnyRank(gpu, arg.buffer, arg.dtype, buf, c.shape, c.strides[0], 0);
  return buf;
}
