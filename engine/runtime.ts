import type { Backend } from './backend.js';
import { DeviceError } from './errors.js';
import type { Tensor } from './tensor.js';

/**
 * One `tidy` (or internal composite) scope: the tensors created while it is current. Each tensor
 * belongs to at most one scope; when a scope closes, its tensors are disposed except the ones it
 * returns, which move to `parent`.
 */
export interface Scope {
  readonly tensors: Set<Tensor>;
  readonly parent: Scope | null;
  open: boolean;
}

/**
 * Carries the current scope across `await`s of one async task (Node: `AsyncLocalStorage`,
 * installed by the Node entry point). Without one (browsers), async scopes live on a global
 * stack and overlapping ones are detected and rejected (see `tidy`).
 */
export interface AsyncScopeContext {
  run<R>(scope: Scope, fn: () => R): R;
  get(): Scope | undefined;
}

export interface DebugOptions {
  /**
   * Warn (console.warn) when a tensor is garbage-collected without `dispose()`, naming the op
   * that created it, its shape and dtype. Records the creating op per tensor while on.
   */
  warnLeaks?: boolean;
}

/**
 * Process-wide engine state: the default backend, `tidy` scopes, the gradient-recording switch
 * and the live-tensor counter. Kept in one object so that tools (tests, `memory()`) can see it.
 */
export const runtime = {
  backend: null as Backend | null,
  backends: new Map<string, Backend>(),
  /** Scopes of synchronous code currently running (innermost last); always properly nested. */
  syncScopes: [] as Scope[],
  /** Async scopes when no AsyncScopeContext is installed (innermost last). */
  asyncScopes: [] as Scope[],
  asyncContext: null as AsyncScopeContext | null,
  /** When > 0, ops do not record the autodiff graph. */
  noGradDepth: 0,
  /** Live tensors on backends that are not destroyed. */
  liveTensors: 0,
  /** Live tensors per backend (so that `shutdown()` can stop counting a destroyed device's). */
  liveByBackend: new Map<Backend, number>(),
  /** Backends destroyed by `shutdown()`: their tensors can no longer be used. */
  destroyed: new WeakSet<Backend>(),
  debug: { warnLeaks: false } as Required<DebugOptions>,
  /** Called by `Tensor.assign` before an in-place update (set while engine/capture.ts records a step). */
  onAssign: null as ((t: Tensor) => void) | null,
};

/** Turns debug aids on or off (see {@link DebugOptions}); returns the previous settings. */
export function setDebug(opts: DebugOptions): Required<DebugOptions> {
  const prev = { ...runtime.debug };
  if (opts.warnLeaks !== undefined) runtime.debug.warnLeaks = opts.warnLeaks;
  return prev;
}

/** Installs (or removes, with null) the per-task scope carrier used by async `tidy`. */
export function setAsyncScopeContext(ctx: AsyncScopeContext | null): void {
  runtime.asyncContext = ctx;
}

/** The scope new tensors go to, or null outside every scope. */
export function currentScope(): Scope | null {
  const s = runtime.syncScopes;
  if (s.length) return s[s.length - 1];
  if (runtime.asyncContext) return runtime.asyncContext.get() ?? null;
  const a = runtime.asyncScopes;
  return a.length ? a[a.length - 1] : null;
}

export function currentBackend(): Backend {
  if (!runtime.backend) {
    throw new DeviceError('no backend is initialised: call `await init()` (or `await init({ backend: "cpu" })`) first');
  }
  return runtime.backend;
}

export function isRecording(): boolean {
  return runtime.noGradDepth === 0;
}

/** Runs `fn` without recording the autodiff graph (results have requiresGrad = false). */
export function noGrad<T>(fn: () => T): T {
  runtime.noGradDepth++;
  try {
    return fn();
  } finally {
    runtime.noGradDepth--;
  }
}

/** Runs `fn` with recording forced on (used for createGraph backward passes inside noGrad code). */
export function withGrad<T>(fn: () => T): T {
  const saved = runtime.noGradDepth;
  runtime.noGradDepth = 0;
  try {
    return fn();
  } finally {
    runtime.noGradDepth = saved;
  }
}
