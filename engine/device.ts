import type { Backend } from './backend.js';
import { CpuBackend } from './cpu/cpu-backend.js';
import { DeviceError } from './errors.js';
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
}

let cpuSingleton: CpuBackend | null = null;

/** The CPU reference backend (always available). */
export function cpuBackend(): CpuBackend {
  cpuSingleton ??= new CpuBackend();
  runtime.backends.set('cpu', cpuSingleton);
  return cpuSingleton;
}

/** Creates (or returns the already created) WebGPU backend; throws DeviceError when there is no adapter. */
export async function webgpuBackend(opts: WebGPUBackendOptions = {}): Promise<WebGPUBackend> {
  const existing = runtime.backends.get('webgpu');
  if (existing) return existing as WebGPUBackend;
  const be = await WebGPUBackend.create(opts);
  if (!be) {
    throw new DeviceError(
      'WebGPU: no adapter found. In Node install a Vulkan driver (on headless Linux: Mesa lavapipe, see the README); in a browser enable WebGPU.',
    );
  }
  runtime.backends.set('webgpu', be);
  return be;
}

/** Initialises the default backend and makes it current. Returns it. */
export async function init(opts: InitOptions = {}): Promise<Backend> {
  const choice = opts.backend ?? 'auto';
  let be: Backend;
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
 * process alive while a device exists). Tensors created before become unusable.
 */
export function shutdown(): void {
  for (const be of runtime.backends.values()) be.destroy();
  runtime.backends.clear();
  runtime.backend = null;
}
