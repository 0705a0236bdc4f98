// Eager vs replayed: dispatches, JS time (call → the function returns, i.e. the encoding) and
// step time (call → data resolved) per call, for the LeNet-5 training step (b64, Adam,
// Optimizer.compile) and an MC dropout pass (T=50 × 100 inputs, recordReplay).
// The two sides are called alternately so that they see the same machine load.
// Usage: node scripts/run-ts.mjs bench/profile-replay.ts [lenetCalls=10] [mcCalls=3]
import { performance } from 'node:perf_hooks';
import * as D from '../node.js';
import type { Tensor, WebGPUBackend } from '../node.js';
import { randHost, rng } from './workloads.js';

const med = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];

interface Row { dispatches: number; js: number[]; total: number[] }

/** Calls `a` and `b` alternately (same machine load for both), `calls` timed calls each after 2 untimed ones. */
async function measurePair(be: WebGPUBackend, calls: number, a: () => Tensor[], b: () => Tensor[]): Promise<[Row, Row]> {
  const rows: [Row, Row] = [{ dispatches: 0, js: [], total: [] }, { dispatches: 0, js: [], total: [] }];
  for (let i = 0; i < calls + 2; i++) {
    for (const [k, f] of (i % 2 ? [[1, b], [0, a]] : [[0, a], [1, b]]) as [number, () => Tensor[]][]) {
      await be.sync();
      const c0 = be.dispatchCount;
      const t0 = performance.now();
      const outs = f();
      const t1 = performance.now();
      rows[k].dispatches = be.dispatchCount - c0;
      await Promise.all(outs.map((o) => o.data()));
      const t2 = performance.now();
      D.dispose(outs);
      if (i >= 2) {
        rows[k].js.push(t1 - t0);
        rows[k].total.push(t2 - t0);
      }
    }
  }
  return rows;
}

async function main() {
  const calls = Number(process.argv[2] ?? 10);
  const mcCalls = Number(process.argv[3] ?? 3);
  const be = (await D.init({ backend: 'webgpu' })) as WebGPUBackend;
  D.manualSeed(1);
  const xh = randHost([64, 1, 28, 28], 5, 0, 1);
  const r = rng(6);
  const x = D.keep(D.tensor(xh.data, [64, 1, 28, 28], { backend: be }));
  const y = D.keep(D.tensor(Int32Array.from({ length: 64 }, () => Math.floor(r() * 10)), [64], { dtype: 'int32', backend: be }));
  const rows: Record<string, Row> = {};

  // Two identical models: one stepped eagerly, one through its compiled step, alternately.
  const models = [new D.LeNet5({ dropout: 0 }), new D.LeNet5({ dropout: 0 })];
  const opts = models.map((m) => new D.Adam(m.parameters(), { lr: 1e-3 }));
  const lossFn = (m: D.LeNet5) => (a: Tensor, b: Tensor) => D.crossEntropy(m.forward(a), b);
  const step = opts[1].compile(lossFn(models[1]), { model: models[1] });
  [rows['LeNet step b64 eager'], rows['LeNet step b64 replayed']] = await measurePair(be, calls, () => [D.tidy(() => {
    opts[0].zeroGrad();
    const l = lossFn(models[0])(x, y);
    l.backward();
    opts[0].step();
    opts[0].zeroGrad();
    return l.detach();
  })], () => [step.step(x, y)]);
  step.dispose();
  opts.forEach((o) => o.dispose());
  models.forEach((m) => m.dispose());

  const mc = new D.LeNet5({ dropout: 0.5 });
  mc.eval();
  D.enableMCDropout(mc);
  const xm = D.keep(D.tensor(randHost([100, 1, 28, 28], 71, 0, 1).data, [100, 1, 28, 28], { backend: be }));
  const pass = (input: Tensor) => {
    const o = D.mcDropout(mc, input, { samples: 50, seed: 1234, maxRowsPerPass: 4096 });
    return [o.mean, o.perClassVariance];
  };
  const rec = D.recordReplay(pass, [xm]);
  [rows['MC dropout T=50 x 100 eager'], rows['MC dropout T=50 x 100 replayed']] = await measurePair(be, mcCalls, () => D.tidy(() => pass(xm)), () => rec.run(xm));
  rec.dispose();
  mc.dispose();
  for (const [k, v] of Object.entries(rows)) {
    console.log(`${k.padEnd(32)} ${String(v.dispatches).padStart(5)} dispatches, JS median ${med(v.js).toFixed(2)} ms, total median ${med(v.total).toFixed(1)} ms, min ${Math.min(...v.total).toFixed(1)} ms (${v.total.length} calls)`);
  }
  D.shutdown();
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
