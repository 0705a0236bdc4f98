import { ScopeError } from './errors.js';
import { type Scope, currentScope, runtime } from './runtime.js';
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
  else {
    const proto = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) for (const v of Object.values(value)) collect(v, into, seen);
  }
}

/** A new scope whose parent is the current one, made current for synchronous code. */
export function openScope(): Scope {
  const scope: Scope = { tensors: new Set(), parent: currentScope(), open: true };
  runtime.syncScopes.push(scope);
  return scope;
}

/** Ends the synchronous part of `scope` (it stays open until `closeScope`). */
export function leaveScope(scope: Scope): void {
  const s = runtime.syncScopes;
  if (s[s.length - 1] === scope) s.pop();
  else {
    const i = s.lastIndexOf(scope);
    if (i >= 0) s.splice(i, 1);
  }
}

/** Moves `t` (if it is in `from`) to `from`'s parent scope, or out of every scope. */
export function handToParent(t: Tensor, from: Scope): void {
  if (t.scope !== from) return;
  from.tensors.delete(t);
  t.scope = null;
  const p = from.parent;
  if (p && p.open && !t.isDisposed) {
    p.tensors.add(t);
    t.scope = p;
  }
}

/** Disposes the scope's tensors except those in `result` (and kept ones), which go to the parent. */
export function closeScope(scope: Scope, result: unknown): void {
  scope.open = false;
  const keepSet = new Set<Tensor>();
  collect(result, keepSet, new Set());
  for (const t of keepSet) handToParent(t, scope);
  for (const t of scope.tensors) {
    t.scope = null;
    if (!t.kept) t.dispose();
  }
  scope.tensors.clear();
}

/**
 * Closes an async scope that overlapped with another one (no AsyncScopeContext): nothing is
 * disposed (its tensors may belong to another task); they go to the parent scope.
 */
function abandonScope(scope: Scope): void {
  scope.open = false;
  for (const t of [...scope.tensors]) handToParent(t, scope);
}

const overlapped = new WeakSet<Scope>();

function overlapError(): ScopeError {
  return new ScopeError(
    'tidy: two async tidy scopes overlapped (one task awaited inside its scope while another opened or closed one), ' +
      'so tensors could not be told apart; none were disposed by these scopes. Without per-task scope tracking ' +
      '(the Node entry point installs it; browsers have none) await one async tidy before starting the next, ' +
      'or use a synchronous tidy() per step inside each task.',
  );
}

/**
 * Runs `fn` and disposes every tensor created inside it except those it returns (found in
 * arrays, Maps and plain objects of the result) and those marked with `keep()`.
 *
 * Works with async functions too: the scope closes when the promise settles. Concurrency:
 * - In Node (the `dubito` Node entry point installs an `AsyncLocalStorage`-based scope carrier)
 *   each async task has its own scopes: interleaved tasks awaiting inside their own `tidy` never
 *   see, keep or dispose each other's tensors.
 * - Without a carrier (browsers, or after `setAsyncScopeContext(null)`), async scopes share one
 *   global stack, so an async `tidy` opened while another async scope is still open (overlapping
 *   tasks, or an async tidy nested in another) cannot be attributed: both scopes then dispose
 *   nothing and reject with a {@link ScopeError} when they settle. Await one async scope before
 *   starting the next, or use a synchronous `tidy` per step inside each task. (Tensors made by
 *   code outside any tidy while an async scope is suspended land in that scope; avoid this.)
 */
export function tidy<T>(fn: () => T): T {
  const ctx = runtime.asyncContext;
  const scope = openScope();
  let result: T;
  try {
    result = ctx ? ctx.run(scope, fn) : fn();
  } catch (e) {
    leaveScope(scope);
    closeScope(scope, undefined);
    throw e;
  }
  leaveScope(scope);
  if (!(result instanceof Promise)) {
    closeScope(scope, result);
    return result;
  }
  if (!ctx) {
    const a = runtime.asyncScopes;
    if (a.length) {
      // Without per-task tracking a nested async scope cannot be told from another task's.
      for (const s of a) overlapped.add(s);
      overlapped.add(scope);
    }
    a.push(scope);
  }
  const finish = (value: unknown): ScopeError | null => {
    if (ctx) {
      closeScope(scope, value);
      return null;
    }
    const a = runtime.asyncScopes;
    const i = a.lastIndexOf(scope);
    if (i >= 0) a.splice(i, 1);
    if (overlapped.has(scope)) {
      abandonScope(scope);
      return overlapError();
    }
    closeScope(scope, value);
    return null;
  };
  return result.then(
    (v) => {
      const err = finish(v);
      if (err) throw err;
      return v;
    },
    (e) => {
      finish(undefined);
      throw e;
    },
  ) as T;
}

/** Exempts tensors from the enclosing `tidy` scopes (they must then be disposed by hand). */
export function keep<T extends Tensor>(t: T): T {
  t.kept = true;
  if (t.scope) {
    t.scope.tensors.delete(t);
    t.scope = null;
  }
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
  /** Tensors created and not yet disposed (views count separately), on every backend that was not destroyed by `shutdown()`. */
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
