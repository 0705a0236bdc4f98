// Per-dispatch GPU time of one LeNet-5 training step (timestamp queries; one compute pass per
// dispatch while profiling). Usage: node scripts/run-ts.mjs bench/profile-kernels.ts [reps]
// [--ensemble M] — with --ensemble, one stacked step of an M-member DeepEnsemble.trainer
// (grouped convolutions, batched matmuls) instead, to compare kernel by kernel with M x one step.
import * as D from '../node.js';
import type { DispatchSpec, WebGPUBackend } from '../node.js';
import { randHost, rng } from './workloads.js';

async function main() {
  const be = (await D.init({ backend: 'webgpu' })) as WebGPUBackend;
  if (!be.device.features.has('timestamp-query')) throw new Error('no timestamp-query');
  D.manualSeed(1);
  const ei = process.argv.indexOf('--ensemble');
  const M = ei > 0 ? Number(process.argv[ei + 1]) : 0;
  const lead = M > 0 ? [M, 64] : [64];
  const xh = randHost([...lead, 1, 28, 28], 5, 0, 1);
  const r = rng(6);
  const yh = Int32Array.from({ length: lead.reduce((a, b) => a * b, 1) }, () => Math.floor(r() * 10));
  const x = D.keep(D.tensor(xh.data, [...lead, 1, 28, 28], { backend: be }));
  const y = D.keep(D.tensor(yh, lead, { dtype: 'int32', backend: be }));
  let step: () => D.Tensor;
  if (M > 0) {
    const members = Array.from({ length: M }, () => new D.LeNet5({ dropout: 0 }).train());
    const trainer = new D.DeepEnsemble(members).trainer({ optimizer: (p) => new D.Adam(p, { lr: 1e-3 }) });
    step = () => D.tidy(() => trainer.step(x, y));
  } else {
    const model = new D.LeNet5({ dropout: 0 });
    const opt = new D.Adam(model.parameters(), { lr: 1e-3 });
    step = () => D.tidy(() => {
      opt.zeroGrad();
      const loss = D.crossEntropy(model.forward(x), y);
      loss.backward();
      opt.step();
      return loss.detach();
    });
  }
  for (let i = 0; i < 3; i++) { const l = step(); await l.data(); l.dispose(); }
  const dev = be.device;
  const N = 4096;
  const qs = dev.createQuerySet({ type: 'timestamp', count: N });
  const labels: string[] = [];
  // This profiler wraps each dispatch in its own timestamped compute pass, so it reaches into the
  // backend's open encoder/pass (private fields): a development tool, not an API.
  const internals = be as unknown as { encoder: GPUCommandEncoder | null; pass: GPUComputePassEncoder | null };
  const orig = be.dispatch.bind(be);
  be.dispatch = (spec: DispatchSpec) => {
    if (internals.pass) { internals.pass.end(); internals.pass = null; }
    if (!internals.encoder) internals.encoder = dev.createCommandEncoder();
    const i = labels.length;
    labels.push(`${spec.kernel.name}${spec.entry ? ':' + spec.entry : ''} ${JSON.stringify(spec.constants ?? {})} [${spec.workgroups}]`);
    const pass = internals.encoder.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
    internals.pass = pass;
    orig(spec);
    if (internals.pass === pass) { pass.end(); internals.pass = null; }
  };
  const reps = process.argv[2] && !process.argv[2].startsWith('--') ? Number(process.argv[2]) : 8;
  for (let k = 0; k < reps; k++) { const l = step(); await l.data(); l.dispose(); }
  be.dispatch = orig;
  await be.sync();
  const n = labels.length;
  const resolve = dev.createBuffer({ size: 16 * n, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const read = dev.createBuffer({ size: 16 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = dev.createCommandEncoder();
  enc.resolveQuerySet(qs, 0, 2 * n, resolve, 0);
  enc.copyBufferToBuffer(resolve, 0, read, 0, 16 * n);
  dev.queue.submit([enc.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const ts = new BigUint64Array(read.getMappedRange().slice(0));
  const per = n / reps;
  // Per dispatch position in the step: the fastest of the reps (other processes inflate the rest).
  const best: number[] = [];
  for (let i = 0; i < n; i++) {
    const us = Number(ts[2 * i + 1] - ts[2 * i]) / 1000;
    const k = i % per;
    best[k] = best[k] === undefined ? us : Math.min(best[k], us);
  }
  const agg = new Map<string, { us: number; count: number }>();
  let total = 0;
  best.forEach((us, k) => {
    total += us;
    const a = agg.get(labels[k]) ?? { us: 0, count: 0 };
    a.us += us;
    a.count++;
    agg.set(labels[k], a);
  });
  const rows = [...agg.entries()].sort((a, b) => b[1].us - a[1].us);
  console.log(`dispatches per step ${per}; GPU time per step (sum of per-dispatch minima over ${reps} steps) ${(total / 1000).toFixed(1)} ms`);
  for (const [k, v] of rows.slice(0, 30)) console.log(`${(v.us / 1000).toFixed(2).padStart(7)} ms  ×${String(v.count).padStart(3)}  ${k}`);
  D.shutdown();
}
main().catch((e) => { console.error(e); process.exit(1); });
