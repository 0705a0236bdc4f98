import {
  ArgumentError, type Backend, blocksFor, type DType, fmtShape, fromHost, nextStream, randomBits, ShapeError, type Tensor, type TypedArray,
} from '../../engine/index.js';
import { registerHostValues } from '../labels.js';
import type { Sampler } from './samplers.js';

/** One array of samples on the host: dim 0 indexes samples. */
export interface HostArray {
  data: TypedArray | ArrayLike<number>;
  shape: readonly number[];
  dtype: DType;
}

export interface DataLoaderOptions {
  /** Samples per batch (default 1, as PyTorch). */
  batchSize?: number;
  /** Reshuffle every epoch (default false). */
  shuffle?: boolean;
  /** Drop the last incomplete batch (default false). */
  dropLast?: boolean;
  /**
   * Shuffle seed: epoch e uses the Philox stream (seed, e·⌈n/4⌉), so the order is reproducible
   * regardless of other random draws. Without it, each epoch draws a stream from the global
   * generator (reproducible after `manualSeed`).
   */
  seed?: number;
  /** Where batches are created (default: the current backend at iteration time). */
  backend?: Backend;
  /**
   * Which indices each epoch visits, in order (nn/data/samplers.ts: `WeightedSampler`,
   * `ClassBalancedSampler`, or your own): batches are consecutive chunks of
   * `sampler.indices(epoch)`. Excludes `shuffle`. A sampler with a fixed `batchSize` sets the
   * loader's batch size.
   */
  sampler?: Sampler;
}

/**
 * Mini-batches over in-memory arrays (like `DataLoader(TensorDataset(x, y))`). Samples stay on
 * the host; each batch is gathered there and uploaded as one tensor per array, so the order is
 * identical on every backend. Iterating yields `Tensor[]` (one per array) created in the current
 * scope: dispose them, or consume each batch inside `tidy` (as `fit` does).
 *
 * int32 batches (class labels, token ids) remember their host values, so `crossEntropy`,
 * `nllLoss` and `Embedding` validate them on the host on every backend, without a readback, and
 * name the offending dataset sample (see nn/labels.ts).
 */
export class DataLoader implements Iterable<Tensor[]> {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  /** Number of samples per epoch (the dataset's, or the sampler's `length`). */
  readonly size: number;
  /** Epochs started so far (each iteration is one epoch). */
  epoch = 0;
  private readonly arrays: HostArray[];
  private readonly rowSizes: number[];

  constructor(arrays: HostArray[], private readonly opts: DataLoaderOptions = {}) {
    if (!arrays.length) throw new ArgumentError('DataLoader: expected at least one array');
    const sampler = opts.sampler;
    if (sampler && opts.shuffle) throw new ArgumentError('DataLoader: sampler and shuffle are mutually exclusive (the sampler decides the order)');
    if (sampler?.batchSize !== undefined && opts.batchSize !== undefined && opts.batchSize !== sampler.batchSize) {
      throw new ArgumentError(`DataLoader: batchSize ${opts.batchSize} differs from the sampler's fixed batch size ${sampler.batchSize}`);
    }
    this.batchSize = opts.batchSize ?? sampler?.batchSize ?? 1;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new ArgumentError(`DataLoader: batchSize must be a positive integer, got ${this.batchSize}`);
    this.shuffle = opts.shuffle ?? false;
    this.dropLast = opts.dropLast ?? false;
    if (opts.seed !== undefined && (!Number.isSafeInteger(opts.seed) || opts.seed < 0)) throw new ArgumentError(`DataLoader: seed must be a non-negative integer, got ${opts.seed}`);
    this.arrays = arrays;
    const n = arrays[0].shape[0];
    arrays.forEach((a, i) => {
      if (a.shape.length < 1 || a.shape[0] !== n) {
        throw new ShapeError(`DataLoader: every array needs the same number of samples in dim 0; array 0 is ${fmtShape(arrays[0].shape)}, array ${i} is ${fmtShape(a.shape)}`);
      }
      const size = a.shape.reduce((p, d) => p * d, 1);
      if (a.data.length !== size) throw new ShapeError(`DataLoader: array ${i} has ${a.data.length} values for shape ${fmtShape(a.shape)}`);
    });
    if (sampler && sampler.datasetSize !== n) throw new ArgumentError(`DataLoader: the sampler indexes ${sampler.datasetSize} samples but the arrays hold ${n}`);
    this.size = sampler ? sampler.length : n;
    this.rowSizes = arrays.map((a) => a.shape.slice(1).reduce((p, d) => p * d, 1));
  }

  /** Reads the tensors back once (async) and builds a loader over their values. */
  static async fromTensors(tensors: Tensor[], opts: DataLoaderOptions = {}): Promise<DataLoader> {
    const arrays: HostArray[] = [];
    for (const t of tensors) arrays.push({ data: await t.data(), shape: [...t.shape], dtype: t.dtype });
    return new DataLoader(arrays, opts);
  }

  /** Number of batches per epoch. */
  get length(): number {
    return this.dropLast ? Math.floor(this.size / this.batchSize) : Math.ceil(this.size / this.batchSize);
  }

  /** The sample order of the next epoch (identity without shuffle); advances nothing. */
  private order(epoch: number): Int32Array | null {
    if (this.opts.sampler) {
      const idx = this.opts.sampler.indices(epoch);
      if (idx.length !== this.size) throw new ArgumentError(`DataLoader: the sampler returned ${idx.length} indices for epoch ${epoch}, expected its length ${this.size}`);
      return idx;
    }
    if (!this.shuffle) return null;
    const n = this.size;
    const s = this.opts.seed !== undefined ? { seed: this.opts.seed, offset: epoch * blocksFor(n) } : nextStream(n);
    const keys = randomBits(n, s.seed, s.offset);
    const idx = Int32Array.from({ length: n }, (_, i) => i);
    idx.sort((a, b) => keys[a] - keys[b] || a - b);
    return idx;
  }

  private gather(a: HostArray, row: number, idx: Int32Array | null, start: number, count: number): ArrayLike<number> {
    if (!idx) {
      const d = a.data;
      if (ArrayBuffer.isView(d)) return (d as TypedArray).subarray(start * row, (start + count) * row);
      return Array.prototype.slice.call(d, start * row, (start + count) * row) as number[];
    }
    const out = new Float64Array(count * row);
    for (let k = 0; k < count; k++) {
      const src = idx[start + k] * row;
      for (let j = 0; j < row; j++) out[k * row + j] = a.data[src + j];
    }
    return out;
  }

  *[Symbol.iterator](): Iterator<Tensor[]> {
    const idx = this.order(this.epoch);
    this.epoch++;
    const nb = this.length;
    for (let b = 0; b < nb; b++) {
      const start = b * this.batchSize;
      const count = Math.min(this.batchSize, this.size - start);
      yield this.arrays.map((a, i) => {
        const values = this.gather(a, this.rowSizes[i], idx, start, count);
        const t = fromHost(values, [count, ...a.shape.slice(1)], a.dtype, this.opts.backend);
        // Integer arrays (class labels, token ids) keep their host values, so that crossEntropy /
        // nllLoss / Embedding can validate them on the host on every backend (no readback).
        if (a.dtype === 'int32') {
          const row = this.rowSizes[i];
          registerHostValues(t, values, (j) => `DataLoader array ${i}, sample ${idx ? idx[start + Math.floor(j / row)] : start + Math.floor(j / row)}`);
        }
        return t;
      });
    }
  }
}
