/**
 * Validation of integer class targets (crossEntropy / nllLoss labels, Embedding indices) without a
 * device readback per step.
 *
 * Where the values can be checked on the host, an out-of-range value throws an `IndexError` that
 * names the op, the first bad value, its position and the valid range:
 * - on the CPU backend the tensor's values are on the host already;
 * - tensors created by a {@link DataLoader} (which gathers each batch on the host) carry their host
 *   values with them (registered here, keyed by the tensor's storage, so reshaped views of a batch
 *   are recognised too; an in-place assignment replaces the storage and drops the record).
 *
 * Integer tensors that were computed on WebGPU (or uploaded some other way) have no host copy: a
 * host check would cost one readback per step. For those, {@link checkIndices} scans the values on
 * the device (`validateIndices`): a kernel sets the backend's error flag, and the IndexError is
 * raised at the next read of that backend (the flag travels with the data read).
 * {@link checkClassTargets} checks at once with an explicit (async) readback.
 */
import {
  CpuBackend, type CpuStorage, fmtShape, IndexError, type Storage, type Tensor, validateIndices,
} from '../engine/index.js';

interface HostRecord {
  data: ArrayLike<number>;
  /** Describes where flat position `i` came from (e.g. the DataLoader sample), for messages. */
  origin?: (i: number) => string;
}

const HOST_VALUES = new WeakMap<Storage, HostRecord>();

/**
 * Records that `t` holds exactly `data` (row-major), so that label checks on any backend can run on
 * the host. Used by the DataLoader; `origin(i)` may describe where flat position i came from.
 */
export function registerHostValues(t: Tensor, data: ArrayLike<number>, origin?: (i: number) => string): void {
  if (data.length !== t.size) return;
  HOST_VALUES.set(t.storageFor('registerHostValues'), { data, origin });
}

/** The host values of `t` if they are known without a readback (CPU backend or registered), else null. */
export function hostValuesOf(t: Tensor, op: string): HostRecord | null {
  const s = t.storageFor(op);
  if (s.backend instanceof CpuBackend) return { data: (s as CpuStorage).data, origin: HOST_VALUES.get(s)?.origin };
  return HOST_VALUES.get(s) ?? null;
}

function position(shape: readonly number[], flat: number): string {
  if (shape.length <= 1) return `${flat}`;
  const idx = new Array<number>(shape.length);
  let r = flat;
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = r % shape[d];
    r = Math.floor(r / shape[d]);
  }
  return `[${idx.join(', ')}] (flat ${flat})`;
}

/** First flat index i (< n) with data[i] outside [0, n) and not equal to `allowed`, or -1. */
function firstBad(data: ArrayLike<number>, size: number, n: number, allowed: number | undefined): number {
  for (let i = 0; i < size; i++) {
    const v = data[i];
    if (!(v >= 0 && v < n) && v !== allowed) return i;
  }
  return -1;
}

function badMessage(op: string, what: string, shape: readonly number[], value: number, i: number, n: number, context: string, allowed: number | undefined, origin = ''): string {
  const range = `expected 0 <= ${what} < ${n}${allowed !== undefined ? ` or the ignoreIndex ${allowed}` : ''}`;
  return `${op}: ${what} ${value} at position ${position(shape, i)}${origin} of ${fmtShape(shape)} is out of range for ${context}; ${range}`;
}

function badError(op: string, what: string, t: Tensor, rec: HostRecord, i: number, n: number, context: string, allowed: number | undefined): IndexError {
  return new IndexError(badMessage(op, what, t.shape, rec.data[i], i, n, context, allowed, rec.origin ? ` (${rec.origin(i)})` : ''));
}

/**
 * Throws an IndexError naming `op` if `t` (int32) holds a value outside [0, n) other than
 * `allowed`, when its values are known on the host. Returns true if the check ran, false if the
 * values live only on the device (nothing checked).
 */
export function checkIndicesOnHost(op: string, what: string, t: Tensor, n: number, context: string, allowed?: number): boolean {
  const rec = hostValuesOf(t, op);
  if (!rec) return false;
  const i = firstBad(rec.data, t.size, n, allowed);
  if (i >= 0) throw badError(op, what, t, rec, i, n, context, allowed);
  return true;
}

/**
 * Checks `t` (int32) against [0, n) (or `allowed`) wherever its values live: on the host at once
 * when they are known there (see {@link checkIndicesOnHost}), else on the device with
 * `validateIndices`: WebGPU then raises the same IndexError at its next read (data(), item(),
 * sync), with no readback of its own.
 */
export function checkIndices(op: string, what: string, t: Tensor, n: number, context: string, allowed?: number): void {
  if (checkIndicesOnHost(op, what, t, n, context, allowed)) return;
  const shape = [...t.shape];
  validateIndices(t, n, { allowed, message: (v, i) => badMessage(op, what, shape, v, i, n, context, allowed) });
}

/**
 * Checks int32 class targets against `numClasses` on any backend, reading them back once if they
 * live only on the device: throws an IndexError naming the first label outside [0, numClasses)
 * (other than `ignoreIndex`, default −100), its position and C. Use it once on labels computed on
 * WebGPU, where `crossEntropy` / `nllLoss` cannot check without a readback per step.
 */
export async function checkClassTargets(target: Tensor, numClasses: number, opts: { ignoreIndex?: number; op?: string } = {}): Promise<void> {
  const op = opts.op ?? 'checkClassTargets';
  const ignore = opts.ignoreIndex ?? -100;
  const rec = hostValuesOf(target, op) ?? { data: await target.data() };
  const i = firstBad(rec.data, target.size, numClasses, ignore);
  if (i >= 0) throw badError(op, 'class index', target, rec, i, numClasses, `C = ${numClasses} classes`, ignore);
}
