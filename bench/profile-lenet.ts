// Profiles one LeNet-5 training step (batch 64, crossEntropy, Adam) on dubito's WebGPU backend:
// dispatches and wall time per phase (forward / backward / optimiser, each followed by sync),
// then the un-synced step eager ("encode": JS time until the step returns) and replayed.
// Usage: node scripts/run-ts.mjs bench/profile-lenet.ts [steps]
import { performance } from 'node:perf_hooks';
import * as D from '../node.js';
import type { WebGPUBackend } from '../node.js';
import { randHost, rng } from './workloads.js';

async function main() {
  const steps = Number(process.argv[2] ?? 20);
  const be = (await D.init({ backend: 'webgpu' })) as WebGPUBackend;
  if (process.env.MAXQ) (be as unknown as { maxQueued: number }).maxQueued = Number(process.env.MAXQ);
  D.manualSeed(1);
  const model = new D.LeNet5({ dropout: 0 });
  const opt = new D.Adam(model.parameters(), { lr: 1e-3 });
  const xh = randHost([64, 1, 28, 28], 5, 0, 1);
  const r = rng(6);
  const yh = Int32Array.from({ length: 64 }, () => Math.floor(r() * 10));
  const x = D.keep(D.tensor(xh.data, [64, 1, 28, 28], { backend: be }));
  const y = D.keep(D.tensor(yh, [64], { dtype: 'int32', backend: be }));
  const ph = { fwd: [] as number[], bwd: [] as number[], opt: [] as number[], total: [] as number[], step: [] as number[], encode: [] as number[] };
  const dc = { fwd: 0, bwd: 0, opt: 0 };
  for (let s = 0; s < steps; s++) {
    await be.sync();
    const t0 = performance.now();
    let c0 = be.dispatchCount;
    const lf = D.tidy(() => D.noGrad(() => D.crossEntropy(model.forward(x), y)));
    await be.sync();
    const t1 = performance.now();
    lf.dispose();
    dc.fwd = be.dispatchCount - c0; c0 = be.dispatchCount;
    await be.sync();
    const t1b = performance.now();
    const l = D.tidy(() => {
      opt.zeroGrad();
      const loss = D.crossEntropy(model.forward(x), y);
      loss.backward();
      return loss.detach();
    });
    await be.sync();
    const t2 = performance.now();
    dc.bwd = be.dispatchCount - c0 - dc.fwd; c0 = be.dispatchCount;
    opt.step();
    await be.sync();
    const t3 = performance.now();
    dc.opt = be.dispatchCount - c0;
    await l.data();
    l.dispose();
    const t4 = performance.now();
    ph.fwd.push(t1 - t0); ph.bwd.push(t2 - t1b - (t1 - t0)); ph.opt.push(t3 - t2); ph.total.push(t4 - t1b);
  }
  // Un-synced steps, as the bench does (call → loss data resolved).
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    const l = D.tidy(() => {
      opt.zeroGrad();
      const loss = D.crossEntropy(model.forward(x), y);
      loss.backward();
      opt.step();
      return loss.detach();
    });
    ph.encode.push(performance.now() - t0);
    await l.data();
    l.dispose();
    ph.step.push(performance.now() - t0);
  }
  // The same step compiled (Optimizer.compile): call 1 eager, call 2 recorded, then replays.
  const compiled = opt.compile((a, b) => D.crossEntropy(model.forward(a), b), { model });
  for (let s = 0; s < 2; s++) {
    const l = compiled.step(x, y);
    await l.data();
    l.dispose();
  }
  const rp = { encode: [] as number[], step: [] as number[] };
  let replayDispatches = 0;
  for (let s = 0; s < steps; s++) {
    const c0 = be.dispatchCount;
    const t0 = performance.now();
    const l = compiled.step(x, y);
    rp.encode.push(performance.now() - t0);
    replayDispatches = be.dispatchCount - c0;
    await l.data();
    l.dispose();
    rp.step.push(performance.now() - t0);
  }
  const recordedDispatches = compiled.dispatches;
  compiled.dispose();
  const med = (a: number[]) => { const s = [...a].slice(2).sort((p, q) => p - q); return s[Math.floor(s.length / 2)]; };
  const mn = (a: number[]) => Math.min(...a.slice(2));
  console.log(`dispatches: fwd ${dc.fwd}, bwd ${dc.bwd}, opt ${dc.opt}; submits so far ${be.submitCount}`);
  for (const [k, v] of Object.entries(ph)) console.log(`${k.padEnd(6)} median ${med(v).toFixed(1)} ms, min ${mn(v).toFixed(1)} ms`);
  console.log(`replayed (Optimizer.compile): ${replayDispatches} dispatches per step (recorded ${recordedDispatches})`);
  for (const [k, v] of Object.entries(rp)) console.log(`replay ${k.padEnd(6)} median ${med(v).toFixed(1)} ms, min ${mn(v).toFixed(1)} ms`);
  console.log(`live tensors ${D.memory().liveTensors}`);
  D.shutdown();
}
main().catch((e) => { console.error(e); process.exit(1); });
