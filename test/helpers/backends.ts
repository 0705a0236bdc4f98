/**
 * Test helpers: the two backends every op test runs on. WebGPU tests run for real on lavapipe;
 * when no adapter exists they FAIL under CI (env CI set) and are skipped locally with a message.
 */
import { afterAll, expect } from 'vitest';
import { type Backend, WebGPUBackend, cpuBackend, webgpuBackend, shutdown } from '../../node.js';
import { runtime } from '../../engine/runtime.js';
import { recordRun, unmetClaims } from './op-coverage.js';

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
  // The op-coverage manifest's claims about this file (see ./op-coverage.ts).
  const testPath = expect.getState().testPath;
  const be = runtime.backends.get('webgpu');
  const ran = be instanceof WebGPUBackend ? be.opsRun : new Set<string>();
  shutdown();
  gpu = undefined;
  if (!testPath) return;
  recordRun(testPath, ran);
  if (process.env.CI) {
    const unmet = unmetClaims(testPath, ran);
    if (unmet.length) throw new Error(`test/op-coverage.json says ${testPath} runs ${unmet.join(', ')} on WebGPU, but it did not`);
  }
});
