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
  /**
   * Declares that the op has no gradient (comparisons, argmax, random draws, integer-only
   * ops): `grad` is absent on purpose. Every op sets exactly one of `grad` and this flag
   * (test/op-registry.test.ts checks it).
   */
  readonly notDifferentiable?: true;
  /** Ops that only reinterpret the shape share the input's storage (no kernel runs). */
  readonly view?: boolean;
}

/**
 * An op with several outputs (e.g. a fused optimiser step: new parameter and new state). Same
 * contract as {@link OpDef}, with one `OutInfo` / host array / `GpuArg` per output. Multi-output
 * ops record no autodiff node, so they are declared `notDifferentiable`.
 */
export interface MultiOpDef<A = Record<string, never>> {
  readonly name: string;
  readonly outputs: 'many';
  /** Validates inputs and returns each output's shape and dtype (the count may depend on attrs). */
  infer(inputs: readonly Tensor[], attrs: A): OutInfo[];
  /** CPU reference: one host array per output. */
  cpu(inputs: readonly CpuArg[], attrs: A, outs: readonly OutInfo[]): TypedArray[];
  /** WebGPU: writes every element of every output. Not called when all outputs are empty. */
  webgpu(gpu: WebGPUBackend, inputs: readonly GpuArg[], attrs: A, outs: readonly GpuArg[]): void;
  readonly notDifferentiable: true;
}

/** Any registered op. */
export type AnyOpDef = OpDef<any> | MultiOpDef<any>;

const registry = new Map<string, AnyOpDef>();

function register<D extends AnyOpDef>(def: D): D {
  if (registry.has(def.name)) throw new Error(`op '${def.name}' defined twice`);
  registry.set(def.name, def);
  return def;
}

/** Declares an op. Names are unique; the registry lets tests enumerate every op. */
export function defineOp<A>(def: OpDef<A>): OpDef<A> {
  return register(def);
}

/** Declares an op with several outputs (run with `runOpMulti`). */
export function defineMultiOp<A>(def: Omit<MultiOpDef<A>, 'outputs' | 'notDifferentiable'>): MultiOpDef<A> {
  return register({ ...def, outputs: 'many', notDifferentiable: true });
}

export function registeredOps(): ReadonlyMap<string, AnyOpDef> {
  return registry;
}

export type { Backend };
