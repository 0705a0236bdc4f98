import type { Backend, Storage } from './backend.js';
import { type DType, type TypedArray, allocHost, checkDTypeName, toHost } from './dtype.js';
import { BackendMismatchError, DTypeError, DestroyedDeviceError, DisposedTensorError, ShapeError, fmtShape } from './errors.js';
import type { MultiOpDef, OpDef } from './op.js';
import { type Scope, currentBackend, currentScope, isRecording, runtime } from './runtime.js';
import { checkShape, sizeOf } from './shape.js';

/** The autodiff record of how a tensor was computed. */
export interface GradNode {
  readonly op: OpDef<any>;
  readonly inputs: readonly Tensor[];
  readonly attrs: any;
}

interface Held {
  storage: Storage | null;
  /** Debug mode only (`setDebug({ warnLeaks: true })`): which op made the tensor, and its shape. */
  origin?: string;
}

/** The warning printed (debug mode) for a tensor garbage-collected without `dispose()`. */
export function leakWarning(origin: string | undefined): string {
  return `dubito: a tensor was garbage-collected without dispose() (${origin ?? 'created before setDebug({ warnLeaks: true })'}); its memory was released late. Dispose it, or create it inside tidy().`;
}

const finalizer = new FinalizationRegistry<Held>((held) => {
  if (held.storage) {
    if (runtime.debug.warnLeaks) console.warn(leakWarning(held.origin));
    const s = held.storage;
    held.storage = null;
    untrack(s);
  }
});

function countOn(be: Backend, delta: number): void {
  const m = runtime.liveByBackend;
  m.set(be, (m.get(be) ?? 0) + delta);
}

/** Stops counting a storage's tensor and releases the storage when its last view goes. */
function untrack(s: Storage): void {
  if (runtime.destroyed.has(s.backend)) return; // not counted since shutdown(); nothing to free
  runtime.liveTensors--;
  countOn(s.backend, -1);
  s.refs--;
  if (s.refs === 0) s.backend.release(s);
}

let nextId = 1;

/** The id the next tensor will get (ids increase: tensors made before a point have smaller ids). */
export function nextTensorId(): number {
  return nextId;
}

export type NestedArray = number | NestedArray[];

/**
 * An n-dimensional array on one backend (WebGPU or the CPU reference). Contiguous, row-major.
 * Memory is explicit: `dispose()` or a `tidy()` scope frees it; `data()` reads it back
 * asynchronously. Tensors that `requiresGrad` record how they were made so that `backward()`
 * and `grad()` can differentiate through them.
 */
export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly size: number;
  /** True for leaves the user wants gradients for, and for results computed from them. */
  requiresGrad = false;
  /** How this tensor was computed (null for leaves and for results computed without grad). */
  node: GradNode | null = null;
  /** Accumulated gradient, set by `backward()` on leaves that require grad. */
  grad: Tensor | null = null;
  /** Temporaries (scalar operands, composite intermediates) that live and die with this tensor. */
  owned: Tensor[] | null = null;
  /** Not disposed by the enclosing tidy scope. */
  kept = false;
  /** The tidy scope this tensor belongs to (null outside every scope, or when kept). */
  scope: Scope | null = null;
  private held: Held;

  constructor(storage: Storage, shape: readonly number[], dtype: DType) {
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = sizeOf(shape);
    this.held = { storage };
    runtime.liveTensors++;
    countOn(storage.backend, 1);
    finalizer.register(this, this.held, this.held);
    const scope = currentScope();
    if (scope) {
      scope.tensors.add(this);
      this.scope = scope;
    }
  }

  /** Debug mode: records which op created this tensor for the leak warning. */
  recordOrigin(op: string): void {
    this.held.origin = `made by '${op}': #${this.id} ${fmtShape(this.shape)} ${this.dtype}`;
  }

  get rank(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this.held.storage === null;
  }

  /** The storage, or a DisposedTensorError naming `op`. */
  storageFor(op: string): Storage {
    const s = this.held.storage;
    if (!s) throw new DisposedTensorError(`${op}: tensor #${this.id} ${fmtShape(this.shape)} ${this.dtype} was used after dispose()`);
    if (runtime.destroyed.has(s.backend)) {
      throw new DestroyedDeviceError(
        `${op}: tensor #${this.id} ${fmtShape(this.shape)} ${this.dtype} belongs to a ${s.backend.name} device destroyed by shutdown(); ` +
          'create it again after init() (or copy it to another backend with `await t.to(backend)` before shutting down)',
      );
    }
    return s;
  }

  get backend(): Backend {
    return this.storageFor('backend').backend;
  }

  /** Frees the tensor's memory (shared storage is freed when its last view goes). Idempotent. */
  dispose(): void {
    const s = this.held.storage;
    if (!s) return;
    this.held.storage = null;
    finalizer.unregister(this.held);
    untrack(s);
    if (this.owned) {
      for (const t of this.owned) t.dispose();
      this.owned = null;
    }
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
    if (this.scope) {
      this.scope.tensors.delete(this);
      this.scope = null;
    }
  }

  /**
   * In-place update without a write kernel: this tensor takes over `src`'s storage and `src` is
   * disposed (releasing this tensor's old storage). The Tensor object stays the same, so every
   * reference to it (module properties, optimiser state) sees the new values and the live-tensor
   * count does not change. Storages are never written after creation, so views made earlier keep
   * the old values. `src` must be a result the caller owns, with the same shape and dtype (it may live on another
   * backend: the tensor then moves there, as `Module.to` does).
   */
  assign(src: Tensor, what = 'assign'): this {
    if (src === this) return this;
    const dst = this.storageFor(what);
    const s = src.storageFor(what);
    if (this.shape.length !== src.shape.length || this.shape.some((d, i) => d !== src.shape[i])) {
      throw new ShapeError(`${what}: cannot assign a ${fmtShape(src.shape)} tensor into ${fmtShape(this.shape)}`);
    }
    if (this.dtype !== src.dtype) throw new DTypeError(`${what}: cannot assign ${src.dtype} into ${this.dtype} ${fmtShape(this.shape)}`);
    runtime.onAssign?.(this);
    this.held.storage = s;
    src.held.storage = dst;
    src.dispose();
    return this;
  }

  /** Reads the values back (a copy): Float32Array, Float64Array, Int32Array or Uint8Array (bool). */
  async data(): Promise<TypedArray> {
    const s = this.storageFor('data');
    return s.backend.read(s, this.dtype, this.size);
  }

  /** The values as nested JS arrays in the tensor's shape. */
  async toArray(): Promise<NestedArray> {
    const d = await this.data();
    const build = (dim: number, off: number): NestedArray => {
      if (dim === this.shape.length) return d[off];
      const n = this.shape[dim];
      let stride = 1;
      for (let i = dim + 1; i < this.shape.length; i++) stride *= this.shape[i];
      const out: NestedArray[] = [];
      for (let i = 0; i < n; i++) out.push(build(dim + 1, off + i * stride));
      return out;
    };
    return build(0, 0);
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new ShapeError(`item: expected a tensor with exactly one element, got shape ${fmtShape(this.shape)}`);
    return (await this.data())[0];
  }

  /** Copies the tensor to another backend (e.g. to inspect a WebGPU result on the CPU reference). */
  async to(backend: Backend): Promise<Tensor> {
    const d = await this.data();
    return fromHost(d, this.shape, this.dtype, backend);
  }

  toString(): string {
    return `Tensor#${this.id}(${fmtShape(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''}${this.isDisposed ? ', disposed' : ''})`;
  }

  // ---- autodiff ----
  /** Marks a leaf as requiring gradients (chainable). Only float tensors can (DTypeError otherwise). */
  requireGrad(flag = true): this {
    if (flag && this.dtype !== 'float32' && this.dtype !== 'float64') {
      throw new DTypeError(`requireGrad: a ${this.dtype} tensor ${fmtShape(this.shape)} is not differentiable (only float32/float64 tensors can require grad)`);
    }
    this.requiresGrad = flag;
    return this;
  }

  // The op methods (add, sum, matmul, reshape, backward, ...) are attached by
  // engine/tensor-methods.ts, which engine/index.ts imports: tensor.ts does not import the ops.
}

/**
 * Creates a tensor from host values on `backend` (default: the current backend). `op` names the
 * user-facing function in error messages. int32 values are truncated toward zero; NaN, ±Infinity
 * and values outside the int32 range throw an ArgumentError.
 */
export function fromHost(values: ArrayLike<number>, shape: readonly number[], dtype: DType, backend?: Backend, op = 'tensor'): Tensor {
  checkShape(op, shape);
  checkDTypeName(op, dtype);
  const n = sizeOf(shape);
  if (values.length !== n) {
    throw new ShapeError(`${op}: ${values.length} values do not fill shape ${fmtShape(shape)} (${n} elements)`);
  }
  const be = backend ?? currentBackend();
  if (runtime.destroyed.has(be)) throw new DestroyedDeviceError(`${op}: the ${be.name} backend was destroyed by shutdown(); call init() again`);
  be.checkDType(op, dtype);
  be.checkAllocation?.(op, shape, dtype);
  const host = toHost(values, dtype, op);
  const t = new Tensor(be.upload(host, dtype), shape, dtype);
  if (runtime.debug.warnLeaks) t.recordOrigin(op);
  return t;
}

/** The backend an op runs on: its inputs' (which must agree), else `backend`, else the current one. */
function opBackend(op: string, inputs: readonly Tensor[], backend?: Backend): Backend {
  let be = backend;
  for (const t of inputs) {
    const s = t.storageFor(op);
    if (!be) be = s.backend;
    else if (s.backend !== be) {
      throw new BackendMismatchError(`${op}: inputs live on different backends (${be.name} and ${s.backend.name}); move one with \`await t.to(backend)\``);
    }
  }
  be ??= currentBackend();
  if (runtime.destroyed.has(be)) throw new DestroyedDeviceError(`${op}: the ${be.name} backend was destroyed by shutdown(); call init() again`);
  return be;
}

/** Runs an op: infers the output, executes the backend kernel and records the autodiff node. */
export function runOp<A>(op: OpDef<A>, inputs: readonly Tensor[], attrs: A, backend?: Backend): Tensor {
  const be = opBackend(op.name, inputs, backend);
  const out = op.infer(inputs, attrs);
  checkDTypeName(op.name, out.dtype);
  be.checkDType(op.name, out.dtype);
  let storage: Storage;
  if (op.view) {
    storage = inputs[0].storageFor(op.name);
    storage.refs++;
  } else {
    be.checkAllocation?.(op.name, out.shape, out.dtype);
    storage = be.execute(op, inputs, attrs, out);
  }
  const t = new Tensor(storage, out.shape, out.dtype);
  if (runtime.debug.warnLeaks) t.recordOrigin(op.name);
  if (op.grad && isRecording() && inputs.some((x) => x.requiresGrad)) {
    t.requiresGrad = true;
    t.node = { op, inputs: [...inputs], attrs };
  }
  return t;
}

/** Runs an op with several outputs (not differentiable: no autodiff node is recorded). */
export function runOpMulti<A>(op: MultiOpDef<A>, inputs: readonly Tensor[], attrs: A, backend?: Backend): Tensor[] {
  const be = opBackend(op.name, inputs, backend);
  const outs = op.infer(inputs, attrs);
  for (const o of outs) {
    checkDTypeName(op.name, o.dtype);
    be.checkDType(op.name, o.dtype);
    be.checkAllocation?.(op.name, o.shape, o.dtype);
  }
  return be.executeMulti(op, inputs, attrs, outs).map((s, i) => new Tensor(s, outs[i].shape, outs[i].dtype));
}

export { allocHost };
