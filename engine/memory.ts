import { runtime } from './runtime.js';
import { Tensor } from './tensor.js';

function collect(value: unknown, into: Set<Tensor>, seen: Set<unknown>): void {
  if (value instanceof Tensor) {
    into.add(value);
    return;
  }
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (Array.isArray(value)) for (const v of value) collect(v, into, seen);
  else if (value instanceof Map) for (const v of value.values()) collect(v, into, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collect(v, into, seen);
}

function closeScope(scope: Set<Tensor>, result: unknown): void {
  const keepSet = new Set<Tensor>();
  collect(result, keepSet, new Set());
  const idx = runtime.scopes.lastIndexOf(scope);
  if (idx >= 0) runtime.scopes.splice(idx, 1);
  for (const t of scope) {
    if (!keepSet.has(t) && !t.kept) t.dispose();
  }
  const parent = runtime.scopes[runtime.scopes.length - 1];
  if (parent) for (const t of keepSet) if (scope.has(t) && !t.isDisposed) parent.add(t);
}

/**
 * Runs `fn` and disposes every tensor created inside it except those it returns (found in
 * arrays, Maps and plain objects of the result) and those marked with `keep()`.
 * Works with async functions too: the scope closes when the promise settles. Async scopes must
 * not run concurrently with each other (nest them, or await one before starting the next).
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  runtime.scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    closeScope(scope, undefined);
    throw e;
  }
  if (result instanceof Promise) {
    return result.then(
      (v) => {
        closeScope(scope, v);
        return v;
      },
      (e) => {
        closeScope(scope, undefined);
        throw e;
      },
    ) as T;
  }
  closeScope(scope, result);
  return result;
}

/** Exempts tensors from the enclosing `tidy` scopes (they must then be disposed by hand). */
export function keep<T extends Tensor>(t: T): T {
  t.kept = true;
  for (const scope of runtime.scopes) scope.delete(t);
  return t;
}

/** Disposes every tensor found in `value` (tensor, array, Map or plain object). */
export function dispose(value: unknown): void {
  const set = new Set<Tensor>();
  collect(value, set, new Set());
  for (const t of set) t.dispose();
}

export interface MemoryReport {
  backend: string;
  /** Tensors created and not yet disposed (views count separately). */
  liveTensors: number;
  /** Device bytes owned by live tensors. */
  bytesInUse: number;
  /** Device bytes kept in the pool for reuse, owned by no tensor. */
  bytesPooled: number;
}

/** Live tensors, bytes in use and bytes pooled, reported separately. */
export function memory(): MemoryReport {
  const be = runtime.backend;
  const info = be ? be.memoryInfo() : { bytesInUse: 0, bytesPooled: 0 };
  return { backend: be ? be.name : 'none', liveTensors: runtime.liveTensors, ...info };
}
