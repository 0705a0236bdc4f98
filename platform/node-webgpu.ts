/**
 * Node-only: provides WebGPU through the `webgpu` npm package (Dawn). Imported by the Node
 * entry point only, so the browser bundle never pulls in a native module.
 *
 * Dawn's `GPU` object must stay referenced while any device made from it is in use (dropping it
 * lets the garbage collector tear Dawn down under a live device), and a live reference keeps the
 * Node process from exiting: `shutdown()` drops it.
 */
import { create, globals } from 'webgpu';
import { setGpuProvider } from '../engine/webgpu/gpu-provider.js';

let gpu: GPU | undefined;

export function installNodeWebGPU(flags: string[] = []): void {
  const g = globalThis as Record<string, unknown>;
  for (const [k, v] of Object.entries(globals)) if (!(k in g)) g[k] = v;
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';
  setGpuProvider(() => {
    gpu ??= create(flags) as GPU;
    return gpu;
  });
}

/** Drops Dawn's GPU object (call after `shutdown()` destroyed the devices). */
export function releaseNodeWebGPU(): void {
  gpu = undefined;
}
