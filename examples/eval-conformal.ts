/**
 * Split conformal prediction sets for the eval LeNet-5 on MNIST-test: the 1,000 test images are
 * split at random into a calibration half and an evaluation half, `splits` times (seeded); for
 * each score (LAC, APS, RAPS; APS and RAPS randomised and not) and α ∈ {0.01, 0.05, 0.1} the
 * classifier is calibrated on one half and its sets are measured on the other. Reported: the mean
 * over splits of the empirical coverage, the mean set size, the size-stratified coverage (the
 * worst coverage over the non-empty set sizes, per split) and the fraction of empty sets.
 *
 *   node scripts/run-ts.mjs examples/eval-conformal.ts [--splits N] [--backend auto|webgpu|cpu]
 *
 * `evalConformal(opts)` returns `results` keyed `conformal.<score>.<alpha>.{coverage,size,ssc,empty}`
 * (plus `conformal.accuracy`, `conformal.splits`, `conformal.calibration`) and a Markdown table.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  type Backend, type ClassScoreOptions, type ImageSet, type LeNet5, conformalClassScores, conformalQuantile, cpuBackend, init, le, report, setMetrics, shutdown, tensor,
} from '../node.js';
import { baseRecipe, obtainModel } from './eval-models.js';
import { loadDemoData, permutation, predictProbs } from './mnist-training.js';

export const CONFORMAL_ALPHAS = [0.01, 0.05, 0.1] as const;

/** The scores of the table: name (the results key) → options. RAPS: λ = 0.05, k_reg = 1 (K = 10 and a ~99% accurate model: most sets hold 1–2 classes). */
export const CONFORMAL_SCORES: Record<string, ClassScoreOptions> = {
  lac: { score: 'lac' },
  aps: { score: 'aps', randomized: true },
  raps: { score: 'raps', randomized: true, lambda: 0.05, kReg: 1 },
  apsNonRandom: { score: 'aps', randomized: false },
  rapsNonRandom: { score: 'raps', randomized: false, lambda: 0.05, kReg: 1 },
};

export interface EvalConformalOptions {
  model: LeNet5;
  test: ImageSet;
  backend: Backend;
  splits?: number;
  seed?: number;
  outDir?: string;
}

export async function evalConformal(o: EvalConformalOptions): Promise<{ results: Record<string, number>; table: string }> {
  const R = o.splits ?? 100;
  const seed = o.seed ?? 0;
  o.model.eval();
  const probs = await predictProbs((x) => o.model.forward(x), o.test, 500, o.backend);
  const N = o.test.count;
  const K = 10;
  let correct = 0;
  for (let i = 0; i < N; i++) {
    let best = 0;
    for (let c = 1; c < K; c++) if (probs[i * K + c] > probs[i * K + best]) best = c;
    if (best === o.test.labels[i]) correct++;
  }
  const nCal = Math.floor(N / 2);
  const nTest = N - nCal;
  // The set computations are small ([500, 10, 10]); the CPU reference runs them.
  const cpu = cpuBackend();
  const sums: Record<string, { coverage: number; size: number; ssc: number; empty: number }> = {};
  for (let r = 0; r < R; r++) {
    const perm = permutation(N, 31337 + seed, r * N);
    const pick = (from: number, n: number) => {
      const p = new Float32Array(n * K);
      const y = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const j = perm[from + i];
        p.set(probs.subarray(j * K, (j + 1) * K), i * K);
        y[i] = o.test.labels[j];
      }
      return { p: tensor(p, [n, K], { backend: cpu }), y };
    };
    const cal = pick(0, nCal);
    const ev = pick(nCal, nTest);
    for (const [name, opts] of Object.entries(CONFORMAL_SCORES)) {
      // The scores do not depend on α: score both halves once, then one q̂ per α
      // (SplitConformalClassifier.calibrate + predictSets do the same for one α).
      const calScores = await conformalClassScores(cal.p, { ...opts, seed: 2 * r }).data();
      const trueScores = Float64Array.from(cal.y, (y, i) => calScores[i * K + y]);
      const testScores = conformalClassScores(ev.p, { ...opts, seed: 2 * r + 1 });
      for (const alpha of CONFORMAL_ALPHAS) {
        const sets = le(testScores, conformalQuantile(trueScores, alpha));
        const m = await setMetrics(sets, ev.y);
        sets.dispose();
        const key = `${name}.${alpha}`;
        sums[key] ??= { coverage: 0, size: 0, ssc: 0, empty: 0 };
        sums[key].coverage += m.coverage / R;
        sums[key].size += m.meanSize / R;
        sums[key].ssc += m.minStratifiedCoverage / R;
        sums[key].empty += m.emptyFraction / R;
      }
      testScores.dispose();
    }
    cal.p.dispose();
    ev.p.dispose();
  }
  const results: Record<string, number> = { 'conformal.accuracy': correct / N, 'conformal.splits': R, 'conformal.calibration': nCal };
  const rows: report.Cell[][] = [];
  for (const [key, v] of Object.entries(sums)) {
    results[`conformal.${key}.coverage`] = v.coverage;
    results[`conformal.${key}.size`] = v.size;
    results[`conformal.${key}.ssc`] = v.ssc;
    results[`conformal.${key}.empty`] = v.empty;
    const dot = key.indexOf('.');
    rows.push([key.slice(0, dot), key.slice(dot + 1), report.pct(1 - Number(key.slice(dot + 1)), 0), report.pct(v.coverage, 2), v.size.toFixed(3), report.pct(v.ssc, 1), report.pct(v.empty, 1)]);
  }
  const table = report.markdownTable(['score', 'α', 'target', 'coverage', 'mean size', 'size-stratified cov.', 'empty sets'], rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r']);
  if (o.outDir) {
    mkdirSync(o.outDir, { recursive: true });
    writeFileSync(join(o.outDir, 'conformal.md'), `# Split conformal prediction, LeNet-5 on MNIST-test\n\nTest accuracy ${report.pct(correct / N)}; ${R} random splits into ${nCal} calibration / ${nTest} evaluation images; means over the splits.\n\n${table}\n`);
  }
  return { results, table };
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

if (process.argv[1] && /eval-conformal/.test(process.argv[1])) {
  const backend = await init({ backend: arg('backend', 'auto') as 'auto' | 'webgpu' | 'cpu' });
  const { splits } = await loadDemoData(0);
  const single = await obtainModel(baseRecipe(Number(arg('epochs', '12')), 0), splits.train, splits.val, backend, { retrain: false, log: console.log });
  const t0 = performance.now();
  const r = await evalConformal({ model: single.model, test: splits.test, backend, splits: Number(arg('splits', '100')), outDir: resolve(join('.cache', 'dubito', 'reports', 'eval-latest', 'conformal')) });
  console.log(r.table);
  console.log(`test accuracy ${(r.results['conformal.accuracy'] * 100).toFixed(2)}%; ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  shutdown();
}
