/**
 * Test helpers: the two backends every op test runs on. WebGPU tests run for real on lavapipe;
 * when no adapter exists they FAIL under CI (env CI set) and are skipped locally with a message.
 */
import { afterAll } from 'vitest';
import { type Backend, cpuBackend, webgpuBackend, shutdown } from '../../node.js';

let gpu: Backend | null | undefined;
let gpuError = '';

export async function getWebGPU(): Promise<Backend | null> {
  if (gpu !== undefined) return gpu;
  try {
    gpu = await webgpuBackend();
  } catch (e) {
    gpu = null;
    gpuError = e instanceof Error ? e.message : String(e);
  }
  return gpu;
}

/** Returns the WebGPU backend, or throws under CI / skips locally when none exists. */
export async function requireWebGPU(ctx: { skip: (note?: string) => void }): Promise<Backend> {
  const be = await getWebGPU();
  if (be) return be;
  if (process.env.CI) throw new Error(`WebGPU is required in CI but no adapter was found: ${gpuError}`);
  console.warn(`[dubito tests] SKIPPED WebGPU test: no adapter (${gpuError})`);
  ctx.skip();
  throw new Error('unreachable');
}

export const cpu = cpuBackend();

afterAll(() => {
  shutdown();
  gpu = undefined;
});
