import type { Backend } from './backend.js';
import { DeviceError } from './errors.js';
import type { Tensor } from './tensor.js';

/**
 * Process-wide engine state: the default backend, `tidy` scopes, the gradient-recording switch
 * and the live-tensor counter. Kept in one object so that tools (tests, `memory()`) can see it.
 */
export const runtime = {
  backend: null as Backend | null,
  backends: new Map<string, Backend>(),
  /** Stack of open tidy scopes; each collects the tensors created while it is on top. */
  scopes: [] as Set<Tensor>[],
  /** When > 0, ops do not record the autodiff graph. */
  noGradDepth: 0,
  liveTensors: 0,
  debug: false,
};

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
