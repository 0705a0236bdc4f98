import type { DType } from '../dtype.js';

/** WGSL storage type of a dtype on WebGPU (bool is one u32 per element). */
export function wgslStorageType(dtype: DType): 'f32' | 'i32' | 'u32' {
  if (dtype === 'int32') return 'i32';
  if (dtype === 'bool') return 'u32';
  return 'f32';
}

/** The `alias` prelude that specialises an elementwise kernel file to concrete types. */
export function typePrelude(types: Record<string, string>): string {
  return Object.entries(types)
    .map(([k, v]) => `alias ${k} = ${v};`)
    .join('\n') + '\n';
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

export const MAX_KERNEL_RANK = 8;
