import type { Backend } from './backend.js';
import { CpuBackend } from './cpu/cpu-backend.js';
import { ArgumentError, DeviceError } from './errors.js';
import { runtime } from './runtime.js';
import { WebGPUBackend, type WebGPUBackendOptions } from './webgpu/webgpu-backend.js';

export type BackendChoice = 'auto' | 'webgpu' | 'cpu';

export interface InitOptions extends WebGPUBackendOptions {
  /**
   * 'webgpu' requires an adapter (throws DeviceError if none); 'cpu' uses the TypeScript
   * reference backend; 'auto' (default) tries WebGPU and falls back to CPU with a one-line notice.
   */
  backend?: BackendChoice;
  /** Suppress the fallback notice. */
  quiet?: boolean;
  /** The CPU backend's per-tensor allocation cap in bytes (default 2 GiB; see `CpuBackend.maxAllocationBytes`). */
  cpuMaxAllocationBytes?: number;
}

let cpuSingleton: CpuBackend | null = null;
/** The WebGPU backend being created: concurrent callers wait for the same one. */
let webgpuPending: Promise<WebGPUBackend> | null = null;

/** The CPU reference backend (always available). */
export function cpuBackend(): CpuBackend {
  cpuSingleton ??= new CpuBackend();
  runtime.backends.set('cpu', cpuSingleton);
  return cpuSingleton;
}

/** Creates (or returns the already created) WebGPU backend; throws DeviceError when there is no adapter. */
/**
 * Concurrent callers (e.g. two `init()` calls not awaited one after the other) share one device:
 * the second waits for the first one's creation instead of making another.
 */
export function webgpuBackend(opts: WebGPUBackendOptions = {}): Promise<WebGPUBackend> {
  const existing = runtime.backends.get('webgpu');
  if (existing) return Promise.resolve(existing as WebGPUBackend);
  if (webgpuPending) return webgpuPending;
  const pendingRef: { p: Promise<WebGPUBackend> | null } = { p: null };
  const pending: Promise<WebGPUBackend> = (async () => {
    const be = await WebGPUBackend.create(opts);
    if (!be) {
      throw new DeviceError(
        'WebGPU: no adapter found. In Node install a Vulkan driver (on headless Linux: Mesa lavapipe, `sudo bash .ci/install-system-deps.sh` in a checkout); in a browser enable WebGPU.',
      );
    }
    if (webgpuPending === pendingRef.p) runtime.backends.set('webgpu', be);
    return be;
  })();
  webgpuPending = pendingRef.p = pending;
  const clear = () => {
    if (webgpuPending === pending) webgpuPending = null;
  };
  pending.then(clear, clear);
  return pending;
}

/**
 * Initialises the default backend and makes it current. Returns it: a WebGPUBackend or the
 * CpuBackend (both have `name` and `adapterInfo`). Concurrent calls share one device per backend.
 */
export async function init(opts: InitOptions = {}): Promise<WebGPUBackend | CpuBackend> {
  const choice = opts.backend ?? 'auto';
  let be: WebGPUBackend | CpuBackend;
  if (opts.cpuMaxAllocationBytes !== undefined) {
    const cap = opts.cpuMaxAllocationBytes;
    if (!(cap > 0)) throw new ArgumentError(`init: cpuMaxAllocationBytes must be a positive number of bytes, got ${cap}`);
    cpuBackend().maxAllocationBytes = cap;
  }
  if (choice === 'cpu') be = cpuBackend();
  else if (choice === 'webgpu') be = await webgpuBackend(opts);
  else {
    try {
      be = await webgpuBackend(opts);
    } catch (e) {
      if (!opts.quiet) console.warn(`dubito: WebGPU unavailable (${e instanceof Error ? e.message.split('\n')[0] : e}); using the CPU reference backend`);
      be = cpuBackend();
    }
  }
  runtime.backend = be;
  return be;
}

/** Makes an already created backend the default for new tensors. */
export function setBackend(be: Backend): void {
  runtime.backend = be;
}

export function getBackend(): Backend | null {
  return runtime.backend;
}

/**
 * Destroys every backend's device and pooled memory so a Node process can exit (Dawn keeps the
 * process alive while a device exists). Tensors created on a destroyed device become unusable:
 * using one throws a DestroyedDeviceError, and `memory()` stops counting them. The CPU backend
 * holds no device: its tensors stay usable.
 */
export function shutdown(): void {
  webgpuPending = null;
  for (const be of runtime.backends.values()) {
    be.destroy();
    if (be.name === 'cpu') continue;
    runtime.destroyed.add(be);
    runtime.liveTensors -= runtime.liveByBackend.get(be) ?? 0;
    runtime.liveByBackend.delete(be);
  }
  runtime.backends.clear();
  runtime.backend = null;
}
