import fillWgsl from '../../kernels/fill.wgsl';
import type { DType } from '../dtype.js';
import { MAX_RANK } from '../webgpu/kernel-constants.js';
import { kernelFamily } from '../webgpu/kernel-source.js';

/** kernels/fill.wgsl: writes one 32-bit pattern everywhere (`fill`, `pad`'s background). */
export const FILL_KERNEL = kernelFamily({ name: 'fill', source: fillWgsl, preludes: ['elementwise'] }).variant();

/** The 32-bit pattern that `value` has in a WebGPU buffer of `dtype` (bool: one u32 0/1). */
export function fillBits(value: number, dtype: DType): number {
  if (dtype === 'int32') return value | 0;
  if (dtype === 'bool') return value ? 1 : 0;
  return new Uint32Array(new Float32Array([value]).buffer)[0];
}

/** WGSL storage type of a dtype on WebGPU (bool is one u32 per element). */
export function wgslStorageType(dtype: DType): 'f32' | 'i32' | 'u32' {
  if (dtype === 'int32') return 'i32';
  if (dtype === 'bool') return 'u32';
  return 'f32';
}

/**
 * Merges adjacent dims that every operand walks contiguously (stride[i] == stride[i+1]*shape[i+1]
 * for all operands), and drops size-1 dims. Returns the reduced shape and per-operand strides;
 * broadcasting patterns stay exact. Keeps rank small so kernels do few index divisions.
 */
export function collapseDims(shape: readonly number[], strides: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, k) => outStrides[k][last] === s[d] * shape[d])) {
      outShape[last] *= shape[d];
      strides.forEach((s, k) => (outStrides[k][last] = s[d]));
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, k) => outStrides[k].push(s[d]));
    }
  }
  return { shape: outShape, strides: outStrides };
}

/** CPU helper: calls `f(outIndex, idx[0], idx[1], ...)` for every output element, walking strides. */
export function forEachStrided(shape: readonly number[], strides: readonly (readonly number[])[], f: (o: number, idx: number[]) => void): void {
  const rank = shape.length;
  const n = shape.reduce((a, b) => a * b, 1);
  const k = strides.length;
  const idx = new Array<number>(k).fill(0);
  const counter = new Array<number>(rank).fill(0);
  for (let o = 0; o < n; o++) {
    f(o, idx);
    for (let d = rank - 1; d >= 0; d--) {
      counter[d]++;
      for (let j = 0; j < k; j++) idx[j] += strides[j][d];
      if (counter[d] < shape[d]) break;
      for (let j = 0; j < k; j++) idx[j] -= strides[j][d] * shape[d];
      counter[d] = 0;
    }
  }
}

/** Largest rank of a collapsed shape a kernel accepts (the shared table's MAX_RANK). */
export const MAX_KERNEL_RANK = MAX_RANK;
