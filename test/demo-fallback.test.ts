// `npm run demo` on the CPU reference backend says so up front, with a measured time estimate
// and the command that installs lavapipe (issue 9). The demo itself is not run: the message path
// is exercised with --backend cpu --estimate-only.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { memory, setBackend } from '../node.js';
import { LAVAPIPE_COMMAND, cpuFallbackNotice, measureStepMs } from '../examples/cpu-fallback.js';
import { cpu } from './helpers/backends.js';

describe('demo on the CPU reference backend', () => {
  it('the notice names the fallback, extrapolates the measured step time and gives the lavapipe command', () => {
    const text = cpuFallbackNotice({ forced: false, msPerStep: 1000, epochs: 30, stepsPerEpoch: 125, evalImages: 33000, batchSize: 64 });
    expect(text).toMatch(/^No WebGPU adapter found: falling back to the CPU reference backend/);
    // 1 s × 125 steps × 30 epochs = 62.5 min of training; 33000 / 64 eval batches at 1/3 s ≈ 2.9 min.
    expect(text).toMatch(/Measured 1000 ms per training step \(batch 64\); 30 epochs × 125 steps will take about 65 min \(training 63 min, evaluation 3 min\)/);
    expect(text).toContain('sudo bash .ci/install-system-deps.sh');
    expect(LAVAPIPE_COMMAND).toBe('sudo bash .ci/install-system-deps.sh');
    expect(cpuFallbackNotice({ forced: true, msPerStep: 10, epochs: 1, stepsPerEpoch: 2, evalImages: 0, batchSize: 8 })).toMatch(/^Running on the CPU reference backend \(--backend cpu\)[\s\S]*about 0 s/);
  });

  it('measureStepMs times real LeNet-5 steps and frees everything', async () => {
    setBackend(cpu);
    const before = memory().liveTensors;
    const ms = await measureStepMs(4, cpu, 1);
    expect(ms).toBeGreaterThan(0);
    expect(Number.isFinite(ms)).toBe(true);
    expect(memory().liveTensors).toBe(before);
  });

  it('npm run demo -- --backend cpu --estimate-only prints the notice before loading any data and exits', () => {
    const r = spawnSync(process.execPath, ['scripts/run-ts.mjs', 'examples/demo.ts', '--backend', 'cpu', '--epochs', '30', '--estimate-only'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Running on the CPU reference backend \(--backend cpu\)/);
    expect(r.stdout).toMatch(/Measured \d+ ms per training step \(batch 64\); 30 epochs × 125 steps will take about \d+(\.\d)? (s|min|h)/);
    expect(r.stdout).toContain('install lavapipe (software Vulkan): sudo bash .ci/install-system-deps.sh');
    expect(r.stdout).not.toMatch(/Loading MNIST/);
  });
});
