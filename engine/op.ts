import type { Backend, OutInfo } from './backend.js';
import type { DType, TypedArray } from './dtype.js';
import type { Tensor } from './tensor.js';
import type { WebGPUBackend } from './webgpu/webgpu-backend.js';

/** An input as the CPU reference kernel sees it: a contiguous host array. */
export interface CpuArg {
  data: TypedArray;
  shape: readonly number[];
  dtype: DType;
}

/** An input or output as a WebGPU kernel sees it. */
export interface GpuArg {
  buffer: GPUBuffer;
  shape: readonly number[];
  dtype: DType;
}

/**
 * One op, declared once: shape/dtype inference, the CPU reference kernel, the WebGPU kernel and
 * the backward rule. Backward rules are written with the library's own (differentiable) ops, so
 * gradients of gradients work.
 */
export interface OpDef<A = Record<string, never>> {
  readonly name: string;
  /** Validates inputs (throwing typed errors) and returns the output's shape and dtype. */
  infer(inputs: readonly Tensor[], attrs: A): OutInfo;
  /** CPU reference: returns the output as a host array of `out.dtype` with `size(out.shape)` elements. */
  cpu(inputs: readonly CpuArg[], attrs: A, out: OutInfo): TypedArray;
  /** WebGPU: encodes dispatches that write every element of `out.buffer`. Not called when the output is empty. */
  webgpu(gpu: WebGPUBackend, inputs: readonly GpuArg[], attrs: A, out: GpuArg): void;
  /**
   * Gradients w.r.t. each input given `dy` (the gradient w.r.t. the output); `null` for inputs
   * that are not differentiable. Omit for non-differentiable ops.
   */
  grad?(dy: Tensor, inputs: readonly Tensor[], out: Tensor, attrs: A): (Tensor | null)[];
  /** Ops that only reinterpret the shape share the input's storage (no kernel runs). */
  readonly view?: boolean;
  /** For ops with no tensor inputs: the backend is passed in the attrs under this key. */
}

const registry = new Map<string, OpDef<any>>();

/** Declares an op. Names are unique; the registry lets tests enumerate every op. */
export function defineOp<A>(def: OpDef<A>): OpDef<A> {
  if (registry.has(def.name)) throw new Error(`op '${def.name}' defined twice`);
  registry.set(def.name, def);
  return def;
}

export function registeredOps(): ReadonlyMap<string, OpDef<any>> {
  return registry;
}

export type { Backend };
