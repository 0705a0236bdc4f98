import type { Backend, MemoryInfo, OutInfo, Storage } from '../backend.js';
import { type DType, type TypedArray, allocHost } from '../dtype.js';
import { AllocationError, BufferLimitError, DTypeError, DeviceError, IndexError, KernelCompileError, fmtShape } from '../errors.js';
import type { GpuArg, MultiOpDef, OpDef, RowSplit } from '../op.js';
import type { Tensor } from '../tensor.js';
import { BufferPool } from './buffer-pool.js';
import { getGpu } from './gpu-provider.js';
import { MAX_WORKGROUPS_PER_DIM, WG_1D } from './kernel-constants.js';
import { type Kernel, type KernelSource, type UniformValues, asKernel, packUniforms } from './kernel-source.js';

export type { KernelSource } from './kernel-source.js';

export interface DispatchSpec {
  /** A composed kernel (`KernelFamily.variant()`), or any `{ name, code }` (interned by its text). */
  kernel: Kernel | KernelSource;
  entry?: string;
  /** Pipeline-overridable constants (`override` in WGSL); part of the pipeline cache key. */
  constants?: Record<string, number | boolean>;
  /**
   * Resources by WGSL variable name: storage buffers, and uniform structs as plain objects of
   * their fields by name (packed with the reflected layout, see `packUniforms`). A uniform may
   * also be given as a function returning its values ("live" uniform): it is called once per
   * dispatch, and again before every replay of a recording (engine/capture.ts), whose uniform
   * buffer is rewritten when the packed bytes changed — for scalars that change between
   * otherwise identical steps (an optimiser's learning rate and bias corrections).
   */
  bindings: Record<string, GPUBuffer | UniformValues | (() => UniformValues)>;
  workgroups: readonly [number, number, number];
}

/**
 * What a device-side index check reports when its kernel flags an index: the IndexError message
 * for the bad value at the position the kernel gives (name the op the user called, the index,
 * where it is and the valid range, as the CPU backend's message does).
 */
export interface IndexCheck {
  message: (value: number, position: number) => string;
}

/** Bytes of the device-side error flag: [check id, bad index, position, unused]. */
const ERR_FLAG_BYTES = 16;

type RecordedCommand =
  | { kind: 'dispatch'; pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; wg: [number, number, number] }
  | { kind: 'copy'; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; bytes: number };

/** What `WebGPUBackend.beginRecording` … `endRecording` captured (see engine/capture.ts). */
export interface Recording {
  commands: RecordedCommand[];
  /** Storage buffers released while recording: kept out of the pool until `releaseRecording`. */
  pinned: GPUBuffer[];
  /** Uniform buffers of the recorded dispatches. */
  uniforms: GPUBuffer[];
  /**
   * Uniform buffers re-packed per replay: those holding a Philox stream (fields offset_lo /
   * offset_hi, advanced per replay) and the live ones (`live`: re-evaluated per replay), with
   * the values and bytes last written.
   */
  patched: { kernel: Kernel; name: string; values: UniformValues; live: (() => UniformValues) | null; bytes: Uint32Array; buffer: GPUBuffer }[];
  /** Storages from before the recording that recorded ops read (one reference each). */
  held: GpuStorage[];
  /** Storages created while recording. */
  created: Set<GpuStorage>;
}

interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  bindingNames: { name: string; binding: number; uniform: boolean }[];
}

export class GpuStorage implements Storage {
  refs = 1;
  constructor(
    readonly backend: WebGPUBackend,
    readonly buffer: GPUBuffer,
    readonly bytes: number,
  ) {}
}

export interface WebGPUBackendOptions {
  powerPreference?: GPUPowerPreference;
  /** Use an existing device (e.g. shared with a renderer). */
  device?: GPUDevice;
  /** Submit automatically after this many dispatches (default 64). */
  maxDispatchesPerSubmit?: number;
}

/**
 * The WebGPU backend. Dispatches are encoded into one compute pass of one command encoder and
 * submitted when a result is read or `maxDispatchesPerSubmit` dispatches are queued. Storage
 * comes from a size-bucketed pool; pipelines are cached by kernel (interned by source text),
 * entry and constants; bind group layouts are derived from the WGSL by reflection.
 */
export class WebGPUBackend implements Backend {
  readonly name = 'webgpu' as const;
  readonly limits: GPUSupportedLimits;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private queued = 0;
  private readonly maxQueued: number;
  private readonly storagePool: BufferPool;
  private readonly uniformPool: BufferPool;
  private readonly stagingPool: BufferPool;
  private readonly pipelines = new Map<string, CachedPipeline>();
  private readonly pendingChecks: Promise<void>[] = [];
  private errors: Error[] = [];
  private lostReason: string | null = null;
  private destroyed = false;
  /** Number of dispatches encoded so far (for tests and profiling). */
  dispatchCount = 0;
  /**
   * The largest storage binding an op may use, in bytes: the adapter's
   * maxStorageBufferBindingSize unless lowered (never raised) with `setBindingLimits`. Ops whose
   * operands are larger run in chunks of rows (see `executeInRows`).
   */
  get maxBindingBytes(): number {
    return Math.min(this.bindingLimitOverride ?? Infinity, this.limits.maxStorageBufferBindingSize);
  }
  /** The alignment of chunk offsets: minStorageBufferOffsetAlignment, or stricter via `setBindingLimits`. */
  get bindingOffsetAlignment(): number {
    return Math.max(this.alignmentOverride ?? 0, this.limits.minStorageBufferOffsetAlignment);
  }
  private bindingLimitOverride: number | null = null;
  private alignmentOverride: number | null = null;

  /**
   * Lowers the binding limit (and/or raises the offset alignment) this backend plans with, so
   * that the chunked paths can be exercised on small tensors (tests) or memory per dispatch kept
   * small. `null` restores the adapter's value. Bytes must be a multiple of 4; alignment a power of 2.
   */
  setBindingLimits(opts: { maxBindingBytes?: number | null; offsetAlignment?: number | null }): void {
    if (opts.maxBindingBytes !== undefined) this.bindingLimitOverride = opts.maxBindingBytes;
    if (opts.offsetAlignment !== undefined) this.alignmentOverride = opts.offsetAlignment;
  }
  /** Names of the ops this backend has executed (for the op-coverage check in the tests). */
  readonly opsRun = new Set<string>();
  submitCount = 0;

  private constructor(
    readonly device: GPUDevice,
    readonly adapterInfo: { vendor: string; architecture: string; device: string; description: string },
    opts: WebGPUBackendOptions,
  ) {
    this.limits = device.limits;
    this.maxQueued = opts.maxDispatchesPerSubmit ?? 64;
    const U = GPUBufferUsage;
    this.storagePool = new BufferPool(device, U.STORAGE | U.COPY_SRC | U.COPY_DST);
    this.uniformPool = new BufferPool(device, U.UNIFORM | U.COPY_DST);
    this.stagingPool = new BufferPool(device, U.MAP_READ | U.COPY_DST);
    device.lost.then((info) => {
      if (!this.destroyed) this.lostReason = info.message || String(info.reason);
    });
    const onError = (ev: Event) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      this.errors.push(new DeviceError(`WebGPU error: ${err.message}`));
    };
    if (typeof device.addEventListener === 'function') device.addEventListener('uncapturederror', onError);
    else (device as { onuncapturederror: unknown }).onuncapturederror = onError;
  }

  /** Requests an adapter and device. Returns null when no (working) adapter exists. */
  static async create(opts: WebGPUBackendOptions = {}): Promise<WebGPUBackend | null> {
    if (opts.device) return new WebGPUBackend(opts.device, { vendor: '', architecture: '', device: '', description: 'user device' }, opts);
    const gpu = await getGpu();
    if (!gpu) return null;
    const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference });
    if (!adapter) return null;
    const want = ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY'] as const;
    const requiredLimits: Record<string, number> = {};
    for (const k of want) requiredLimits[k] = adapter.limits[k];
    // Alignment limits are "lower is better": ask for the adapter's (16 on lavapipe, vs the
    // default 256) so chunked ops (executeInRows) can bind sub-ranges at finer offsets.
    requiredLimits.minStorageBufferOffsetAlignment = adapter.limits.minStorageBufferOffsetAlignment;
    const features: GPUFeatureName[] = [];
    for (const f of ['timestamp-query', 'shader-f16'] as GPUFeatureName[]) if (adapter.features.has(f)) features.push(f);
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice({ requiredLimits, requiredFeatures: features });
    } catch (e) {
      throw new DeviceError(`WebGPU: requestDevice failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    const info = adapter.info ?? { vendor: '', architecture: '', device: '', description: '' };
    return new WebGPUBackend(device, { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description }, opts);
  }

  private checkAlive(what: string): void {
    if (this.destroyed) throw new DeviceError(`${what}: the WebGPU backend was destroyed`);
    if (this.lostReason !== null) throw new DeviceError(`${what}: the WebGPU device was lost (${this.lostReason})`);
  }

  checkDType(op: string, dtype: DType): void {
    if (dtype === 'float64') throw new DTypeError(`${op}: float64 is not supported on WebGPU (use float32, or the cpu backend for float64)`);
  }

  // ---- memory ----
  /** A storage buffer of at least `bytes` from the pool (contents undefined). */
  allocBuffer(bytes: number, what = 'alloc'): GPUBuffer {
    this.checkAlive(what);
    // Buffers may be as large as maxBufferSize; ops bind sub-ranges of at most
    // maxStorageBufferBindingSize (see executeInRows).
    this.checkBufferBytes(what, null, bytes);
    return this.storagePool.acquire(bytes);
  }

  // ---- allocation limit (one typed error for every buffer this backend allocates) ----
  /**
   * The largest buffer this adapter can allocate, in bytes (`maxBufferSize`). Ops bind at most
   * `maxStorageBufferBindingSize` of it at a time and split larger work into row chunks
   * (`executeInRows`).
   */
  get maxBufferBytes(): number {
    return this.limits.maxBufferSize;
  }

  /**
   * Throws a {@link BufferLimitError} (a DeviceError naming the op, the shape, the bytes and the
   * limit) before an op allocates an output the adapter cannot hold. Every tensor element is 4
   * bytes on WebGPU (bool included). Called by `runOp` for every output; `allocBuffer` applies
   * the same limit to scratch buffers. Shapes of more than 2^31 − 1 elements are left to the
   * callers' own element-count errors (e.g. `arange`'s ArgumentError); `allocBuffer` still
   * refuses their buffer with this error.
   */
  checkAllocation(op: string, shape: readonly number[], _dtype: DType): void {
    let n = 1;
    for (const d of shape) n *= d;
    if (n > 2147483647) return;
    this.checkBufferBytes(op, shape, n * 4);
  }

  private checkBufferBytes(op: string, shape: readonly number[] | null, bytes: number): void {
    const max = this.maxBufferBytes;
    if (bytes > max) throw new BufferLimitError(op, shape, bytes, max);
  }

  /** Returns a buffer obtained from `allocBuffer` (e.g. a kernel's scratch space). */
  freeBuffer(buf: GPUBuffer): void {
    if (this.recording) this.recording.pinned.push(buf);
    else this.storagePool.release(buf, this.encoder !== null);
  }

  upload(data: TypedArray, dtype: DType): Storage {
    this.checkDType('upload', dtype);
    const src = dtype === 'bool' ? Uint32Array.from(data) : data;
    const bytes = src.byteLength;
    const buf = this.allocBuffer(bytes, 'upload');
    if (bytes > 0) this.device.queue.writeBuffer(buf, 0, src.buffer, src.byteOffset, bytes);
    return this.noteCreated(new GpuStorage(this, buf, bytes));
  }

  execute(op: OpDef<any>, inputs: readonly Tensor[], attrs: any, out: OutInfo): Storage {
    if (this.recording) this.holdExternal(inputs);
    let n = 1;
    for (const d of out.shape) n *= d;
    const bytes = n * 4;
    const args: GpuArg[] = inputs.map((t) => ({ buffer: (t.storageFor(op.name) as GpuStorage).buffer, shape: t.shape, dtype: t.dtype }));
    const limit = this.maxBindingBytes;
    const tooBig = n > 0 && (bytes > limit || args.some((a) => a.buffer.size > limit));
    const buf = this.allocBuffer(bytes, op.name);
    this.opsRun.add(op.name);
    try {
      if (tooBig) this.executeInRows(op, args, attrs, { buffer: buf, shape: out.shape, dtype: out.dtype });
      else if (n > 0) op.webgpu(this, args, attrs, { buffer: buf, shape: out.shape, dtype: out.dtype });
    } catch (e) {
      this.freeBuffer(buf);
      throw e;
    }
    return this.noteCreated(new GpuStorage(this, buf, bytes));
  }

  executeMulti(op: MultiOpDef<any>, inputs: readonly Tensor[], attrs: any, outs: readonly OutInfo[]): Storage[] {
    if (this.recording) this.holdExternal(inputs);
    const res = outs.map((o) => {
      let n = 1;
      for (const d of o.shape) n *= d;
      return { n, buf: this.allocBuffer(n * 4, op.name), o };
    });
    this.opsRun.add(op.name);
    if (res.some((r) => r.n > 0)) {
      const args: GpuArg[] = inputs.map((t) => ({ buffer: (t.storageFor(op.name) as GpuStorage).buffer, shape: t.shape, dtype: t.dtype }));
      op.webgpu(this, args, attrs, res.map((r) => ({ buffer: r.buf, shape: r.o.shape, dtype: r.o.dtype })));
    }
    return res.map((r) => this.noteCreated(new GpuStorage(this, r.buf, r.n * 4)));
  }

  release(storage: Storage): void {
    if (this.destroyed) return;
    if (this.recording) this.recording.pinned.push((storage as GpuStorage).buffer);
    else this.storagePool.release((storage as GpuStorage).buffer, this.encoder !== null);
  }

  memoryInfo(): MemoryInfo {
    return {
      bytesInUse: this.storagePool.bytesInUse,
      bytesPooled: this.storagePool.bytesPooled + this.uniformPool.bytesPooled + this.stagingPool.bytesPooled,
      peakBytesInUse: this.storagePool.peakBytesInUse,
    };
  }

  /** Starts a new peak-memory measurement (`memoryInfo().peakBytesInUse`) at the bytes in use now. */
  resetPeakMemory(): void {
    this.storagePool.resetPeak();
  }

  // ---- ops over more than one binding's worth of data ----
  /**
   * While `executeInRows` runs one chunk: the sub-range of each big buffer that the chunk's
   * operands occupy. `dispatch` binds these ranges instead of the whole buffers (and
   * `copyBuffer` offsets into them), so the op's own `webgpu` runs unchanged on chunk shapes.
   */
  private rowRanges: Map<GPUBuffer, { offset: number; size: number }> | null = null;
  /** Number of ops run in chunks of rows so far (for tests and profiling). */
  rowSplits = 0;

  /** A storage binding of `buf`: the chunk's range while splitting, else the whole buffer (checked against the limit). */
  private storageBinding(kernel: string, name: string, buf: GPUBuffer): GPUBufferBinding {
    const r = this.rowRanges?.get(buf);
    if (r) return { buffer: buf, offset: r.offset, size: r.size };
    const limit = this.limits.maxStorageBufferBindingSize;
    if (buf.size > limit) {
      throw new DeviceError(`${kernel}: binding '${name}' is a buffer of ${buf.size} bytes, more than this adapter's maxStorageBufferBindingSize of ${limit} bytes (this op does not split its work into chunks)`);
    }
    return { buffer: buf };
  }

  /**
   * Runs `op` in chunks of rows of its leading dim when an operand or the output exceeds
   * `maxStorageBufferBindingSize` (the buffers themselves may be up to `maxBufferSize`): the op's
   * `splitRows` says which inputs are chunked with the output and how the chunks combine
   * ('rows': each chunk writes its rows of the output; 'sum': the chunks' outputs are summed).
   * Chunk row counts keep every sub-range offset a multiple of minStorageBufferOffsetAlignment.
   * Throws an AllocationError (op, shape, limit, the batch that fits) when the op cannot split.
   */
  private executeInRows(op: OpDef<any>, args: readonly GpuArg[], attrs: any, out: GpuArg): void {
    const limit = this.maxBindingBytes;
    const split: RowSplit<any> | null = op.splitRows ? op.splitRows(args, attrs, { shape: [...out.shape], dtype: out.dtype }) : null;
    const sum = split?.combine === 'sum';
    const refuse = (detail: string): never => {
      const big = [...args.map((a) => ({ shape: a.shape, bytes: a.buffer.size })), { shape: out.shape, bytes: 4 * sizeOfShape(out.shape) }].reduce((p, q) => (q.bytes > p.bytes ? q : p));
      const rows = big.shape.length > 0 ? big.shape[0] : 1;
      const fit = rows > 0 ? Math.floor(limit / (big.bytes / rows)) : 0;
      throw new AllocationError(op.name, big.shape, big.bytes, limit,
        `in one storage binding (maxStorageBufferBindingSize of this adapter): ${detail}; ` +
          (fit >= 1 ? `a leading dim (batch) of at most ${fit} fits` : 'even one row of the leading dim is too large'));
    };
    if (!split) refuse(`${op.name} cannot run in chunks of its leading dim here`);
    if (sum && out.dtype !== 'float32') refuse(`${op.name} sums chunks only for float32 outputs`);
    const chunked = args.map((a, i) => split!.inputs[i] === true);
    const R = sum ? (args.find((_, i) => chunked[i])?.shape[0] ?? 0) : out.shape[0];
    // Every chunked operand: bytes per row of the leading dim.
    const parts: { buffer: GPUBuffer; rowBytes: number; rest: readonly number[] }[] = [];
    for (let i = 0; i < args.length; i++) {
      if (!chunked[i]) continue;
      const a = args[i];
      if (a.shape.length === 0 || a.shape[0] !== R) refuse(`input ${i} ${fmtShape(a.shape)} does not have ${R} rows`);
      parts.push({ buffer: a.buffer, rowBytes: 4 * sizeOfShape(a.shape.slice(1)), rest: a.shape.slice(1) });
    }
    if (!sum) parts.push({ buffer: out.buffer, rowBytes: 4 * sizeOfShape(out.shape.slice(1)), rest: out.shape.slice(1) });
    for (let i = 0; i < args.length; i++) {
      if (chunked[i]) continue;
      if (args[i].buffer.size > limit) refuse(`input ${i} ${fmtShape(args[i].shape)} is bound whole`);
      if (parts.some((p) => p.buffer === args[i].buffer)) refuse(`input ${i} shares its buffer with a chunked operand`);
    }
    if (sum && 4 * sizeOfShape(out.shape) > limit) refuse('the summed output is bound whole');
    // Rows per chunk: the most that fit, rounded down to keep offsets aligned.
    const align = this.bindingOffsetAlignment;
    let step = 1;
    let maxRowBytes = 0;
    for (const p of parts) {
      step = lcm(step, align / gcd(align, p.rowBytes || align));
      maxRowBytes = Math.max(maxRowBytes, p.rowBytes);
    }
    const rows = Math.floor(Math.floor(limit / Math.max(1, maxRowBytes)) / step) * step;
    if (rows < 1 || R < 2) refuse(`${R} row(s) of the leading dim cannot be split further`);
    const nChunks = Math.ceil(R / rows);
    this.rowSplits++;
    const outBytes = 4 * sizeOfShape(out.shape);
    const partials = sum ? this.allocBuffer(nChunks * outBytes, op.name) : null;
    try {
      for (let c = 0; c < nChunks; c++) {
        const start = c * rows;
        const count = Math.min(rows, R - start);
        const ranges = new Map<GPUBuffer, { offset: number; size: number }>();
        for (const p of parts) {
          const r = { offset: start * p.rowBytes, size: Math.max(4, count * p.rowBytes) };
          const prev = ranges.get(p.buffer);
          if (prev && (prev.offset !== r.offset || prev.size !== r.size)) refuse('two chunked operands share a buffer with different row sizes');
          ranges.set(p.buffer, r);
        }
        const chunkArgs = args.map((a, i) => (chunked[i] ? { buffer: a.buffer, shape: [count, ...a.shape.slice(1)], dtype: a.dtype } : a));
        const chunkAttrs = split!.attrs ? split!.attrs(start, count) : attrs;
        const part = sum ? this.allocBuffer(outBytes, op.name) : null;
        const chunkOut = part ? { buffer: part, shape: out.shape, dtype: out.dtype } : { buffer: out.buffer, shape: [count, ...out.shape.slice(1)], dtype: out.dtype };
        this.rowRanges = ranges;
        try {
          op.webgpu(this, chunkArgs, chunkAttrs, chunkOut);
        } finally {
          this.rowRanges = null;
        }
        if (part && partials) {
          this.copyBuffer(part, 0, partials, c * outBytes, outBytes);
          this.freeBuffer(part);
        }
      }
      if (partials) {
        const n = outBytes / 4;
        this.dispatch({ kernel: SUM_PARTIALS, bindings: { parts: partials, out: out.buffer, params: { n, k: nChunks } }, workgroups: grid1D(n, 64) });
      }
    } finally {
      if (partials) this.freeBuffer(partials);
    }
  }

  // ---- capture / replay (engine/capture.ts) ----
  private recording: Recording | null = null;

  /**
   * Starts recording every dispatch and copy (with its pipeline and bind group) until
   * `endRecording`. While recording, no buffer goes back to the pool (the bind groups keep
   * pointing at them), and storages made before the recording that an op reads are held.
   */
  beginRecording(): void {
    if (this.recording) throw new DeviceError('capture: a recording is already in progress on this backend');
    this.recording = { commands: [], pinned: [], uniforms: [], patched: [], held: [], created: new Set() };
  }

  /** Ends the recording and returns it (replay with `replayRecording`, free with `releaseRecording`). */
  endRecording(): Recording {
    const r = this.recording;
    if (!r) throw new DeviceError('capture: no recording in progress');
    this.recording = null;
    return r;
  }

  /** Storage created now (by execute/upload) belongs to the recording being made. */
  private noteCreated(s: GpuStorage): GpuStorage {
    this.recording?.created.add(s);
    return s;
  }

  private holdExternal(inputs: readonly Tensor[]): void {
    const r = this.recording!;
    for (const t of inputs) {
      const s = t.storageFor('capture') as GpuStorage;
      if (!r.created.has(s) && !r.held.includes(s)) {
        s.refs++;
        r.held.push(s);
      }
    }
  }

  private recordDispatch(p: CachedPipeline, bindGroup: GPUBindGroup, wg: [number, number, number], uniforms: { kernel: Kernel; name: string; values: UniformValues; live: (() => UniformValues) | null; bytes: Uint32Array; buffer: GPUBuffer }[]): void {
    const r = this.recording!;
    r.commands.push({ kind: 'dispatch', pipeline: p.pipeline, bindGroup, wg });
    for (const u of uniforms) {
      r.uniforms.push(u.buffer);
      // Philox streams (uniform fields offset_lo/offset_hi) are re-packed with an advanced offset
      // per replay; live uniforms are re-evaluated.
      if (u.live || (typeof u.values.offset_lo === 'number' && typeof u.values.offset_hi === 'number')) r.patched.push({ ...u, values: { ...u.values } });
    }
  }

  /**
   * Encodes a recording again: the same pipelines and bind groups (so the same buffers), with
   * every Philox stream's block offset advanced by `philoxShift` from its recorded value and
   * every live uniform re-evaluated (its buffer rewritten when its bytes changed).
   */
  replayRecording(r: Recording, philoxShift: number): void {
    this.checkAlive('replay');
    let flushed = false;
    for (const u of r.patched) {
      let values = u.live ? u.live() : u.values;
      if (typeof values.offset_lo === 'number' && typeof values.offset_hi === 'number' && philoxShift !== 0) {
        const off = (values.offset_lo as number) + (values.offset_hi as number) * 2 ** 32 + (u.live ? 0 : philoxShift);
        values = { ...values, offset_lo: off % 2 ** 32, offset_hi: Math.floor(off / 2 ** 32) };
      }
      const bytes = packUniforms(u.kernel, u.name, values);
      if (bytes.length === u.bytes.length && bytes.every((w, i) => w === u.bytes[i])) continue;
      // Uniform writes are queue operations: submit what is encoded first so they land after it.
      if (!flushed) {
        this.flush();
        flushed = true;
      }
      this.device.queue.writeBuffer(u.buffer, 0, bytes.buffer, bytes.byteOffset, bytes.byteLength);
      u.bytes = bytes;
    }
    for (const c of r.commands) {
      if (c.kind === 'copy') {
        if (!this.encoder) this.encoder = this.device.createCommandEncoder();
        if (this.pass) {
          this.pass.end();
          this.pass = null;
        }
        this.encoder.copyBufferToBuffer(c.src, c.srcOffset, c.dst, c.dstOffset, c.bytes);
        continue;
      }
      if (!this.encoder) this.encoder = this.device.createCommandEncoder();
      if (!this.pass) this.pass = this.encoder.beginComputePass();
      this.pass.setPipeline(c.pipeline);
      this.pass.setBindGroup(0, c.bindGroup);
      this.pass.dispatchWorkgroups(c.wg[0], c.wg[1], c.wg[2]);
      this.dispatchCount++;
      if (++this.queued >= this.maxQueued) this.flush();
    }
  }

  /** Returns a recording's buffers to the pools and drops the storages it held. */
  releaseRecording(r: Recording): void {
    if (this.destroyed) return;
    const pending = this.encoder !== null;
    for (const b of r.pinned) this.storagePool.release(b, pending);
    for (const b of r.uniforms) this.uniformPool.release(b, pending);
    for (const s of r.held) if (--s.refs === 0) this.release(s);
    r.pinned = [];
    r.uniforms = [];
    r.held = [];
    r.commands = [];
  }

  // ---- pipelines ----
  private pipelineFor(kernel: Kernel, entry: string, constants: Record<string, number | boolean> | undefined): CachedPipeline {
    const key = constants ? `${kernel.id}|${entry}|${JSON.stringify(constants)}` : `${kernel.id}|${entry}`;
    let p = this.pipelines.get(key);
    if (p) return p;
    const r = kernel.reflect();
    const fn = r.entry.compute.find((f) => f.name === entry);
    if (!fn) throw new KernelCompileError(kernel.name, undefined, `no @compute entry point named '${entry}'`);
    const entries: GPUBindGroupLayoutEntry[] = [];
    const bindingNames: { name: string; binding: number; uniform: boolean }[] = [];
    for (const res of fn.resources) {
      if (res.group !== 0) throw new KernelCompileError(kernel.name, undefined, `binding '${res.name}' must be in @group(0)`);
      let type: GPUBufferBindingType;
      if (res.resourceType === 0) type = 'uniform';
      else if (res.resourceType === 1) type = res.access === 'read_write' || res.access === 'write' ? 'storage' : 'read-only-storage';
      else throw new KernelCompileError(kernel.name, undefined, `binding '${res.name}' has an unsupported resource type`);
      entries.push({ binding: res.binding, visibility: GPUShaderStage.COMPUTE, buffer: { type } });
      bindingNames.push({ name: res.name, binding: res.binding, uniform: type === 'uniform' });
    }
    const layout = this.device.createBindGroupLayout({ entries });
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code: kernel.code, label: kernel.name });
    const pipeline = this.device.createComputePipeline({
      label: `${kernel.name}|${entry}`,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: entry, constants: constants ? numericConstants(constants) : undefined },
    });
    this.pendingChecks.push(
      this.device.popErrorScope().then(async (err) => {
        if (!err) return;
        this.errors.push(await compileError(kernel.name, module, err.message));
      }),
    );
    p = { pipeline, layout, bindingNames };
    this.pipelines.set(key, p);
    return p;
  }

  /**
   * Compiles a kernel now and throws a KernelCompileError (kernel name, line, message) if the
   * WGSL is invalid. Useful to warm the pipeline cache before timing.
   */
  async compileKernel(source: Kernel | KernelSource, entry = 'main', constants?: Record<string, number | boolean>): Promise<void> {
    this.checkAlive('compileKernel');
    const kernel = asKernel(source);
    const module = this.device.createShaderModule({ code: kernel.code, label: kernel.name });
    const info = await module.getCompilationInfo();
    const bad = info.messages.find((m) => m.type === 'error');
    if (bad) throw new KernelCompileError(kernel.name, bad.lineNum || undefined, bad.message);
    this.pipelineFor(kernel, entry, constants);
    await this.checkErrors();
  }

  /** Encodes one compute dispatch. Buffers are bound by their WGSL variable names. */
  dispatch(spec: DispatchSpec): void {
    this.checkAlive(spec.kernel.name);
    const [x, y, z] = spec.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxDim = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxDim || y > maxDim || z > maxDim) {
      throw new DeviceError(`${spec.kernel.name}: dispatch of [${x},${y},${z}] workgroups exceeds maxComputeWorkgroupsPerDimension ${maxDim}`);
    }
    const kernel = asKernel(spec.kernel);
    const p = this.pipelineFor(kernel, spec.entry ?? 'main', spec.constants);
    const entries: GPUBindGroupEntry[] = [];
    const uniforms: { kernel: Kernel; name: string; values: UniformValues; live: (() => UniformValues) | null; bytes: Uint32Array; buffer: GPUBuffer }[] = [];
    for (const { name, binding, uniform } of p.bindingNames) {
      const b = spec.bindings[name];
      if (b === undefined) throw new KernelCompileError(kernel.name, undefined, `no ${uniform ? 'uniform values' : 'buffer'} given for binding '${name}'`);
      if (uniform) {
        const live = typeof b === 'function' ? (b as () => UniformValues) : null;
        const values = live ? live() : (b as UniformValues);
        const bytes = packUniforms(kernel, name, values);
        const ub = this.uniformPool.acquire(bytes.byteLength);
        this.device.queue.writeBuffer(ub, 0, bytes.buffer, bytes.byteOffset, bytes.byteLength);
        uniforms.push({ kernel, name, values, live, bytes, buffer: ub });
        entries.push({ binding, resource: { buffer: ub } });
      } else entries.push({ binding, resource: this.storageBinding(kernel.name, name, b as GPUBuffer) });
    }
    const bindGroup = this.device.createBindGroup({ layout: p.layout, entries });
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    this.pass.setPipeline(p.pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(x, y, z);
    if (this.recording) this.recordDispatch(p, bindGroup, [x, y, z], uniforms);
    else for (const u of uniforms) this.uniformPool.release(u.buffer, true);
    this.dispatchCount++;
    if (++this.queued >= this.maxQueued) this.flush();
  }

  /** Copies `bytes` between buffers inside the current encoder (ends the open compute pass). */
  copyBuffer(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.checkAlive('copyBuffer');
    if (bytes === 0) return;
    const rs = this.rowRanges?.get(src);
    const rd = this.rowRanges?.get(dst);
    if (rs) srcOffset += rs.offset;
    if (rd) dstOffset += rd.offset;
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    this.encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.recording?.commands.push({ kind: 'copy', src, srcOffset, dst, dstOffset, bytes });
  }

  /** Submits everything encoded so far. */
  flush(): void {
    if (!this.encoder) return;
    if (this.pass) this.pass.end();
    this.device.queue.submit([this.encoder.finish()]);
    this.submitCount++;
    this.encoder = null;
    this.pass = null;
    this.queued = 0;
    this.storagePool.onSubmit();
    this.uniformPool.onSubmit();
  }

  private async checkErrors(): Promise<void> {
    if (this.pendingChecks.length) await Promise.all(this.pendingChecks.splice(0));
    if (this.errors.length) {
      const errs = this.errors;
      this.errors = [];
      // A failed kernel compile causes follow-on "invalid pipeline" errors: report the cause.
      throw errs.find((e) => e instanceof KernelCompileError) ?? errs[0];
    }
    this.checkAlive('read');
  }

  async read(storage: Storage, dtype: DType, size: number): Promise<TypedArray> {
    this.checkAlive('read');
    const src = (storage as GpuStorage).buffer;
    const bytes = size * 4;
    const out = allocHost(dtype, size);
    const checks = this.takeIndexChecks();
    if (bytes === 0 && !checks) {
      this.flush();
      await this.checkErrors();
      return out;
    }
    // The error flag (when some dispatch since the last read could set it) travels in the same
    // staging buffer as the data: no extra readback.
    const total = bytes + (checks ? ERR_FLAG_BYTES : 0);
    const staging = this.stagingPool.acquire(total);
    this.copyBuffer(src, 0, staging, 0, bytes);
    if (checks) this.copyErrorFlag(staging, bytes);
    this.flush();
    if (checks) this.resetErrorFlag();
    try {
      await staging.mapAsync(GPUMapMode.READ, 0, total);
    } catch (e) {
      await this.checkErrors();
      throw new DeviceError(`read: mapping the result failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    const mapped = staging.getMappedRange(0, total);
    if (dtype === 'bool') (out as Uint8Array).set(new Uint32Array(mapped, 0, size));
    else new Uint8Array(out.buffer, out.byteOffset, bytes).set(new Uint8Array(mapped, 0, bytes));
    const indexError = checks ? flagError(new Uint32Array(mapped, bytes, 4), checks) : null;
    staging.unmap();
    this.stagingPool.release(staging, false);
    await this.checkErrors();
    if (indexError) throw indexError;
    return out;
  }

  async sync(): Promise<void> {
    const checks = this.takeIndexChecks();
    if (checks) {
      const staging = this.stagingPool.acquire(ERR_FLAG_BYTES);
      this.copyErrorFlag(staging, 0);
      this.flush();
      this.resetErrorFlag();
      await staging.mapAsync(GPUMapMode.READ, 0, ERR_FLAG_BYTES);
      const indexError = flagError(new Uint32Array(staging.getMappedRange(0, ERR_FLAG_BYTES)), checks);
      staging.unmap();
      this.stagingPool.release(staging, false);
      await this.checkErrors();
      if (indexError) throw indexError;
      return;
    }
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.checkErrors();
  }

  // ---- device-side index checks: an error flag read with the next readback ----
  private errFlag: GPUBuffer | null = null;
  private indexChecks = new Map<number, IndexCheck>();
  private nextCheckId = 1;

  /**
   * Registers a device-side index check for one dispatch: returns the flag buffer to bind as
   * `err_flag` (the `index_check` prelude) and the id to pass to `flag_bad_index`. When the
   * kernel flags an index, the next `read` (data(), item(), toArray(), ...) or `sync` of this
   * backend throws an {@link IndexError} with `check.message(value, position)` (the message the
   * CPU backend throws at once) and a note that WebGPU raised it late. The first flagged dispatch in
   * submission order wins; when several indices of that dispatch are bad, which one is named may
   * vary (the CPU names the first). The flag is copied into the staging buffer of the read the user asked
   * for, so checking costs no extra readback.
   */
  indexCheck(check: IndexCheck): { flag: GPUBuffer; id: number } {
    if (!this.errFlag) {
      // Zero-initialised by WebGPU: no error.
      this.errFlag = this.device.createBuffer({ size: ERR_FLAG_BYTES, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label: 'dubito error flag' });
    }
    const id = this.nextCheckId++;
    this.indexChecks.set(id, check);
    return { flag: this.errFlag, id };
  }

  /** The checks registered since the last read (their ids restart at 1 for later dispatches). */
  private takeIndexChecks(): Map<number, IndexCheck> | null {
    if (this.indexChecks.size === 0) return null;
    const checks = this.indexChecks;
    this.indexChecks = new Map();
    this.nextCheckId = 1;
    return checks;
  }

  private copyErrorFlag(dst: GPUBuffer, offset: number): void {
    this.copyBuffer(this.errFlag!, 0, dst, offset, ERR_FLAG_BYTES);
  }

  /** Clears the flag after the submit that copied it (queue order: later dispatches see 0). */
  private resetErrorFlag(): void {
    this.device.queue.writeBuffer(this.errFlag!, 0, new Uint32Array(ERR_FLAG_BYTES / 4));
  }

  destroy(): void {
    if (this.destroyed) return;
    this.flush();
    this.destroyed = true;
    this.storagePool.clear();
    this.uniformPool.clear();
    this.stagingPool.clear();
    this.pipelines.clear();
    this.errFlag?.destroy();
    this.errFlag = null;
    this.device.destroy();
  }
}

/** The IndexError of a flag read back from the device, or null when no check fired. */
function flagError(words: Uint32Array, checks: Map<number, IndexCheck>): IndexError | null {
  const id = words[0];
  if (id === 0) return null;
  const check = checks.get(id);
  const value = words[1] | 0;
  if (!check) return new IndexError(`an index kernel flagged index ${value} at position ${words[2]} out of range (unknown check ${id})`);
  return new IndexError(`${check.message(value, words[2])} (detected on WebGPU, raised at the next read)`);
}

function sizeOfShape(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function lcm(a: number, b: number): number {
  return (a / gcd(a, b)) * b;
}

/** out[i] = Σ_j parts[j·n + i]: the sum of the per-chunk outputs of a 'sum'-split op (executeInRows). */
const SUM_PARTIALS: KernelSource = {
  name: 'sum_partials',
  code: /* wgsl */ `
struct Params { n: u32, k: u32 }
@group(0) @binding(0) var<storage, read> parts: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= params.n) { return; }
  var s = 0.0;
  for (var j = 0u; j < params.k; j++) { s += parts[j * params.n + i]; }
  out[i] = s;
}
`,
};

function numericConstants(c: Record<string, number | boolean>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(c)) out[k] = typeof v === 'boolean' ? (v ? 1 : 0) : v;
  return out;
}

async function compileError(name: string, module: GPUShaderModule, fallback: string): Promise<KernelCompileError> {
  try {
    const info = await module.getCompilationInfo();
    const bad = info.messages.find((m) => m.type === 'error');
    if (bad) return new KernelCompileError(name, bad.lineNum || undefined, bad.message);
  } catch {
    // fall through to the validation message
  }
  return new KernelCompileError(name, undefined, fallback);
}

/**
 * Workgroup counts for a 1-D kernel over `n` items (`grid_index` in the `grid` prelude), folded
 * into y when x would exceed 65535.
 */
export function grid1D(n: number, workgroupSize = WG_1D): [number, number, number] {
  const groups = Math.ceil(n / workgroupSize);
  if (groups <= MAX_WORKGROUPS_PER_DIM) return [groups, 1, 1];
  const y = Math.ceil(groups / MAX_WORKGROUPS_PER_DIM);
  return [Math.ceil(groups / y), y, 1];
}
