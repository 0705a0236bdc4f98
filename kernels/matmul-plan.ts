// Dispatch planning for kernels/matmul.wgsl (no Node imports: usable in the browser build).
//
// Kernel geometry: one workgroup (8x8 invocations) computes a 64x64 tile of one
// batch item's output; grid = [ceil(N/64), ceil(M/64), batch]. There is a single
// kernel file: it reads A and B as array<f32> with bounds-checked, zero-padded
// staging, so any M, N, K (including K = 0) and any TRANS_A/TRANS_B work; no
// divisibility-based selection is needed.

import matmulWgsl from './matmul.wgsl';
import { MAX_WORKGROUPS_PER_DIM } from '../engine/webgpu/kernel-constants.js';
import { kernelFamily, packUniforms } from '../engine/webgpu/kernel-source.js';

export { MAX_WORKGROUPS_PER_DIM };
export const MATMUL_TILE_M = 64;
export const MATMUL_TILE_N = 64;

/** kernels/matmul.wgsl as the engine dispatches it (composed by the kernel-source builder). */
export const MATMUL_KERNEL = kernelFamily({ name: 'matmul', source: matmulWgsl, preludes: ['matmul'] }).variant();

export interface MatmulPlan {
  /** Kernel file under kernels/. */
  file: 'matmul.wgsl';
  entryPoint: 'main';
  /** dispatchWorkgroups(x, y, z). All zeros means: dispatch nothing (M, N or batch is 0). */
  workgroups: [number, number, number];
  /**
   * Pipeline-overridable constants for createComputePipeline({ compute: { constants } }).
   * WebGPU takes numbers only: bool overrides are passed as 0/1.
   */
  constants: { TRANS_A: number; TRANS_B: number; HAS_BIAS: number; ACT: number };
  /** Size in bytes of the Params uniform (6 x u32, rounded up to 16 bytes). */
  paramsBytes: number;
}

export interface MatmulEpilogue {
  bias?: boolean;
  /** 0 = identity, 1 = relu */
  act?: 0 | 1;
}

function checkDim(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new Error(`planMatmul: ${name} must be a non-negative integer, got ${v}`);
}

export function planMatmul(
  M: number,
  N: number,
  K: number,
  batch: number,
  transA: boolean,
  transB: boolean,
  epilogue: MatmulEpilogue = {},
): MatmulPlan {
  checkDim('M', M);
  checkDim('N', N);
  checkDim('K', K);
  checkDim('batch', batch);
  const constants = {
    TRANS_A: transA ? 1 : 0,
    TRANS_B: transB ? 1 : 0,
    HAS_BIAS: epilogue.bias ? 1 : 0,
    ACT: epilogue.act ?? 0,
  };
  const base = { file: 'matmul.wgsl' as const, entryPoint: 'main' as const, constants, paramsBytes: 32 };
  if (M === 0 || N === 0 || batch === 0) return { ...base, workgroups: [0, 0, 0] };
  const wx = Math.ceil(N / MATMUL_TILE_N);
  const wy = Math.ceil(M / MATMUL_TILE_M);
  const wz = batch;
  for (const [name, v] of [['x (N/64)', wx], ['y (M/64)', wy], ['z (batch)', wz]] as const) {
    if (v > MAX_WORKGROUPS_PER_DIM) {
      throw new Error(`planMatmul: workgroup count ${name} = ${v} exceeds ${MAX_WORKGROUPS_PER_DIM}; split the call`);
    }
  }
  // Indices are u32 inside the kernel: every flat index must stay below 2^32.
  const maxElems = Math.max(batch * M * N, batch * M * K, batch * K * N);
  if (maxElems >= 2 ** 32) throw new Error('planMatmul: tensor too large for u32 indexing');
  return { ...base, workgroups: [wx, wy, wz] };
}

/** The Params uniform of matmul.wgsl, packed by field name from its reflected layout. */
export function matmulParams(M: number, N: number, K: number, batch: number, aBatchStride: number, bBatchStride: number): Uint32Array<ArrayBuffer> {
  return packUniforms(MATMUL_KERNEL, 'params', { M, N, K, batch, a_batch_stride: aBatchStride, b_batch_stride: bBatchStride }) as Uint32Array<ArrayBuffer>;
}
