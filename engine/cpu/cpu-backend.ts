import type { Backend, MemoryInfo, OutInfo, Storage } from '../backend.js';
import { type DType, type TypedArray, allocHost } from '../dtype.js';
import { AllocationError } from '../errors.js';
import type { MultiOpDef, OpDef } from '../op.js';
import type { Tensor } from '../tensor.js';

export class CpuStorage implements Storage {
  refs = 1;
  constructor(
    readonly backend: CpuBackend,
    public data: TypedArray,
  ) {}
  get bytes(): number {
    return this.data.byteLength;
  }
}

/** The CPU backend's default per-tensor allocation cap: 2 GiB. */
export const DEFAULT_MAX_ALLOCATION_BYTES = 2 * 1024 ** 3;

/**
 * The CPU reference backend: plain TypeScript, the oracle for every WebGPU kernel. Computes in
 * JS doubles and stores float32 results rounded to float32; also supports float64 tensors so
 * that gradients can be checked against finite differences in double precision.
 */
export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  /** Describes the backend like WebGPUBackend's adapter info does (so `init()`'s result has it either way). */
  readonly adapterInfo = { vendor: 'dubito', architecture: 'cpu-reference', device: 'cpu', description: 'dubito CPU reference backend (TypeScript)' };
  private inUse = 0;
  /**
   * The largest single tensor this backend allocates, in bytes (default 2 GiB). A bigger one
   * throws an {@link AllocationError} naming the op, the shape and the bytes instead of taking
   * the machine's memory (or failing with a raw RangeError). Set it with
   * `init({ backend: 'cpu', cpuMaxAllocationBytes })` or by assigning this property.
   */
  maxAllocationBytes = DEFAULT_MAX_ALLOCATION_BYTES;

  checkAllocation(op: string, shape: readonly number[], dtype: DType): void {
    let n = 1;
    for (const d of shape) n *= d;
    const bytes = n * (dtype === 'float64' ? 8 : dtype === 'bool' ? 1 : 4);
    if (bytes > this.maxAllocationBytes) {
      throw new AllocationError(op, shape, bytes, this.maxAllocationBytes, `of ${dtype} on the CPU backend (raise cpuBackend().maxAllocationBytes if you really mean it)`);
    }
  }

  upload(data: TypedArray, _dtype: DType): Storage {
    this.inUse += data.byteLength;
    return new CpuStorage(this, data);
  }

  async read(storage: Storage, dtype: DType, size: number): Promise<TypedArray> {
    const src = (storage as CpuStorage).data;
    const out = allocHost(dtype, size);
    out.set(src.subarray(0, size));
    return out;
  }

  execute(op: OpDef<any>, inputs: readonly Tensor[], attrs: any, out: OutInfo): Storage {
    const args = inputs.map((t) => ({ data: (t.storageFor(op.name) as CpuStorage).data, shape: t.shape, dtype: t.dtype }));
    const data = op.cpu(args, attrs, out);
    this.inUse += data.byteLength;
    return new CpuStorage(this, data);
  }

  executeMulti(op: MultiOpDef<any>, inputs: readonly Tensor[], attrs: any, outs: readonly OutInfo[]): Storage[] {
    const args = inputs.map((t) => ({ data: (t.storageFor(op.name) as CpuStorage).data, shape: t.shape, dtype: t.dtype }));
    return op.cpu(args, attrs, outs).map((data) => {
      this.inUse += data.byteLength;
      return new CpuStorage(this, data);
    });
  }

  release(storage: Storage): void {
    this.inUse -= storage.bytes;
    (storage as CpuStorage).data = new Float32Array(0);
  }

  memoryInfo(): MemoryInfo {
    return { bytesInUse: this.inUse, bytesPooled: 0 };
  }

  async sync(): Promise<void> {}

  destroy(): void {}

  checkDType(_op: string, _dtype: DType): void {}
}
