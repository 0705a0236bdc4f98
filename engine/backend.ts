import type { DType, TypedArray } from './dtype.js';
import type { MultiOpDef, OpDef } from './op.js';
import type { Tensor } from './tensor.js';

/** Device memory that one or more tensors (views) share. Reference-counted. */
export interface Storage {
  readonly backend: Backend;
  /** Bytes requested for the data (before pool rounding). */
  readonly bytes: number;
  refs: number;
}

export interface MemoryInfo {
  /** Bytes held by live storages (after pool rounding on WebGPU). */
  bytesInUse: number;
  /** Bytes kept in the buffer pool for reuse (not owned by any tensor). */
  bytesPooled: number;
  /** WebGPU: the largest `bytesInUse` since the backend was created or `resetPeakMemory()` was called. */
  peakBytesInUse?: number;
}

/** What an op's output will be, decided by its `infer` before any kernel runs. */
export interface OutInfo {
  shape: number[];
  dtype: DType;
}

export interface Backend {
  readonly name: 'cpu' | 'webgpu';
  /** Creates storage holding `data` (whose array type already matches `dtype`). */
  upload(data: TypedArray, dtype: DType): Storage;
  /** Copies the storage back to the host (flushes pending work first). */
  read(storage: Storage, dtype: DType, size: number): Promise<TypedArray>;
  /** Runs one op and returns the new storage for its output. */
  execute(op: OpDef<any>, inputs: readonly Tensor[], attrs: any, out: OutInfo): Storage;
  /** Runs an op with several outputs; one new storage per output. */
  executeMulti(op: MultiOpDef<any>, inputs: readonly Tensor[], attrs: any, outs: readonly OutInfo[]): Storage[];
  /** Frees (or pools) a storage whose reference count reached zero. */
  release(storage: Storage): void;
  memoryInfo(): MemoryInfo;
  /** Waits until all submitted work has finished. */
  sync(): Promise<void>;
  /** Releases the device (WebGPU) and all pooled memory. */
  destroy(): void;
  /** Throws if the dtype cannot live on this backend. */
  checkDType(op: string, dtype: DType): void;
  /** Throws an AllocationError if a tensor of this shape and dtype may not be allocated (optional). */
  checkAllocation?(op: string, shape: readonly number[], dtype: DType): void;
}
