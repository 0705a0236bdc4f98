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
  /**
   * How the op runs in chunks of its leading (batch-like) dim when an operand or the output is
   * larger than one storage binding may be (`maxStorageBufferBindingSize`, 128 MiB on many
   * adapters): the WebGPU backend then runs `webgpu` once per chunk of rows, binding sub-ranges
   * of the big buffers. Return null when this call cannot be split (the backend then throws an
   * AllocationError naming the op, the shape, the limit and the batch that fits).
   */
  splitRows?(inputs: readonly SplitOperand[], attrs: A, out: OutInfo): RowSplit<A> | null;
}

/** An operand as {@link OpDef.splitRows} sees it. */
export interface SplitOperand {
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/** The answer of {@link OpDef.splitRows}. */
export interface RowSplit<A> {
  /** Per input: split along dim 0 together with the chunk (true), or bound whole (false). */
  readonly inputs: readonly boolean[];
  /**
   * `'rows'` (default): dim 0 of the output is the chunked dim (row r of the split inputs makes
   * row r of the output). `'sum'`: every chunk yields a whole output and the result is their sum
   * (a reduction over the split dim, e.g. a weight gradient); float32 outputs only.
   */
  readonly combine?: 'rows' | 'sum';
  /** The attrs for the chunk of rows [start, start + count), when they depend on the rows. */
  attrs?(start: number, count: number): A;
}

/**
 * `splitRows` of ops whose output rows follow their inputs' rows one to one (elementwise with
 * broadcasting, pooling, conv forward over the batch): inputs whose dim 0 equals the output's
 * (and whose rank equals it) are chunked with the output, the others are bound whole.
 */
export function splitMatchingRows(inputs: readonly SplitOperand[], _attrs: unknown, out: OutInfo): RowSplit<never> | null {
  if (out.shape.length === 0 || out.shape[0] < 2) return null;
  return { inputs: inputs.map((t) => t.shape.length === out.shape.length && t.shape[0] === out.shape[0]) };
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
