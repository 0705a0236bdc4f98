/**
 * `npm run eval`: every experiment of the library, by group, with one machine-readable
 * `results.json` (flat, stable keys) in the report folder.
 *
 * Groups (`--only a,b` runs some of them; the default is `ood,explain,gradients`):
 *   ood        examples/eval-ood.ts (run as a child process with the same options): LeNet-5 and a
 *              stacked 5-member ensemble, MNIST vs Fashion-MNIST for every detector, calibration,
 *              the guard. Keys `ood.<id>.{auroc,auprIn,auprOut,fpr95}`, `guard.<id>.*`,
 *              `calibration.<model>.*`; then the recipe comparison (examples/eval-recipes.ts):
 *              `recipes.<recipe>.{accuracy, eceTemperatureScaled, ood.<set>.<detector>.<metric>}.{mean,std,ci95}`.
 *              `--quick` runs only the comparison (one seed, subsets).
 *   explain    examples/eval-explain.ts: VOICE IoU / SNR (correct vs incorrect vs Fashion-MNIST),
 *              deletion / insertion AUCs, batched-vs-loop timing, the gallery. Keys `explain.*`.
 *   gradients  examples/eval-gradients.ts: gradient-norm, stage-2, GradNorm and introspective
 *              OOD, attacks, failure prediction, MNIST-C-style shift table. Keys `ood.*`, `attacks.*`,
 *              `failure.*`, `shift.*`.
 *   report     examples/eval-report.ts: riskReport on the same protocol (cached eval LeNet-5):
 *              index.html / index.md / results.json in <out>/report/. Keys `report.*`.
 *   gradcon    examples/eval-gradcon.ts (opt-in: long): one-class GradCON vs plain CAE AUROC.
 *              Keys `gradcon.<dataset>`, `cae.<dataset>` ({ perClass[10], mean }).
 *   bayes      examples/eval-bayes.ts (opt-in): BLR observations, MAP vs Laplace logistic
 *              regression, two-moons maps (deterministic / MC dropout / VI / Laplace), last-layer
 *              Laplace on LeNet-5. Keys `bayes.*`, `laplace.{nll,ece,auroc,...}`, `laplace.map.*`.

 *   conformal  examples/eval-conformal.ts: split conformal sets (LAC, APS, RAPS) of the eval LeNet
 *              on MNIST-test at α ∈ {0.01, 0.05, 0.1}. Keys `conformal.<score>.<alpha>.{coverage,size,ssc}`.
 *   active     examples/eval-active.ts (opt-in: ~15 min): MNIST active learning, test accuracy per
 *              round for each acquisition. Keys `active.<acquisition>.{labels[], accuracy[]}`.
 *   bias       examples/eval-bias.ts (opt-in): biased MNIST (a 3% style subgroup, 10×-rarer
 *              digits), imbalance remedies and DB-VAE. Keys `bias.<experiment>.<method>.*`.
 *   dirichlet  examples/eval-dirichlet.ts (opt-in: trains 2 LeNets with outliers, ~10 min the first time):
 *              prior network and outlier-exposure LeNet (Fashion-MNIST 0–4 outliers) vs the plain LeNet
 *              (and the cached ensemble) on Fashion 5–9 / Gaussian / uniform noise, calibration of α/α₀.
 *              Keys `dirichlet.<model>.<score>.<oodset>.{auroc,fpr95}`, `dirichlet.<model>.{accuracy,ece,nll}`,
 *              `dirichlet.protocol`, `times.dirichlet`.
 *   guards     examples/eval-guards.ts (opt-in, long: 52 min the first time on the shared 2-core machine):
 *              the VAE-loss and WGAN-GP + inverter δz guards. Nested keys `vaeGuard.*`, `wganInverter.*`.
 *
 * Every group trains or loads its models from the cache (.cache/dubito/eval/), so a rerun is
 * quick. `results.json` is merged with the one already in the report folder, so `--only` updates
 * just that group's keys. Options: those of eval-ood.ts (--epochs, --members, --mc-samples,
 * --retrain, --out, --backend), plus
 *   --only G[,G]      groups to run
 *   --json PATH       also write the merged results to PATH
 *   --gradcon-epochs N, --gradcon-classes 0,1,...   (gradcon group)
 *   --active-rounds N, --active-pool P, --active-steps S, --active-samples T, --active-model lenet|gal,
 *   --active-acquisitions a,b, --active-seed S   (active group; keys active[.gal][.seed<S>].*)
 *   --bias-epochs N   (bias group, default 4)
 *   --dirichlet-ensemble   (dirichlet group: train the ensemble if it is not cached)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type Acquisition, init, loadFashionMnist, shutdown } from '../node.js';
import { baseRecipe, obtainModel } from './eval-models.js';
import { explainTable, runExplainEval } from './eval-explain.js';
import { evalFailure, evalGradientOod, shiftTable } from './eval-gradients.js';
import { evalGradcon } from './eval-gradcon.js';
import { evalBayes } from './eval-bayes.js';
import { evalBias } from './eval-bias.js';
import { evalGuards, guardsConfigFromArgv } from './eval-guards.js';
import { loadDemoData } from './mnist-training.js';
import { evalActive } from './eval-active.js';
import { evalConformal } from './eval-conformal.js';

import { runReportEval } from './eval-report.js';
import { evalDirichlet } from './eval-dirichlet.js';

const GROUPS = ['ood', 'explain', 'gradients', 'gradcon', 'bayes', 'conformal', 'active', 'bias', 'guards', 'report', 'dirichlet'] as const;
type Group = (typeof GROUPS)[number];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1] && !process.argv[i + 1].startsWith('--')) return process.argv[i + 1];
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  return eq ? eq.slice(name.length + 3) : fallback;
}

const only = arg('only', 'ood,explain,gradients').split(',').map((g) => g.trim()).filter(Boolean);
for (const g of only) {
  if (!(GROUPS as readonly string[]).includes(g)) {
    console.error(`eval: unknown group '${g}' in --only (groups: ${GROUPS.join(', ')})`);
    process.exit(2);
  }
}
const run = new Set(only as Group[]);
const OUT = resolve(arg('out', join(process.env.DUBITO_CACHE_DIR ?? join(process.cwd(), '.cache', 'dubito'), 'reports', 'eval-latest')));
const EPOCHS = Number(arg('epochs', '12'));
const BACKEND = arg('backend', 'auto') as 'auto' | 'webgpu' | 'cpu';
const RETRAIN = process.argv.includes('--retrain');
const resultsFile = join(OUT, 'results.json');
mkdirSync(OUT, { recursive: true });

type Value = number | string | (number | null)[] | null | { [key: string]: Value };
const results: Record<string, Value> = existsSync(resultsFile) ? JSON.parse(readFileSync(resultsFile, 'utf8')) : {};
const times: Record<string, number> = {};
function save(): void {
  writeFileSync(resultsFile, JSON.stringify(results, null, 2));
  const extra = arg('json', '');
  if (extra) {
    mkdirSync(dirname(resolve(extra)), { recursive: true });
    writeFileSync(resolve(extra), JSON.stringify(results, null, 2));
  }
}

if (run.has('ood')) {
  const t0 = performance.now();
  console.log('=== eval group: ood');
  const tmp = join(tmpdir(), `dubito-eval-ood-${process.pid}.json`);
  const passThrough = process.argv.slice(2).filter((a, i, all) => a !== '--only' && all[i - 1] !== '--only' && !a.startsWith('--only=')
    && a !== '--json' && all[i - 1] !== '--json' && !a.startsWith('--json='));
  const child = spawnSync(process.execPath, [join(process.cwd(), 'scripts', 'run-ts.mjs'), 'examples/eval-ood.ts', ...passThrough, '--results', tmp], { stdio: 'inherit' });
  if (child.status !== 0) {
    console.error(`eval: the ood group failed (exit ${child.status})`);
    process.exit(child.status ?? 1);
  }
  Object.assign(results, JSON.parse(readFileSync(tmp, 'utf8')));
  rmSync(tmp, { force: true });
  times.ood = (performance.now() - t0) / 1000;
  save();
}

if (run.has('explain') || run.has('gradients') || run.has('gradcon') || run.has('conformal') || run.has('active') || run.has('bias') || run.has('guards') || run.has('report') || run.has('dirichlet')) {
  const backend = await init({ backend: BACKEND });
  const log = (m: string) => console.log(`  ${m}`);
  if (run.has('explain') || run.has('gradients') || run.has('guards') || run.has('report')) {
    const mnist = await loadDemoData(0);
    const fashion = await loadFashionMnist({ split: { test: 2000, tune: 500 }, seed: 0, log });
    const { train, val, test } = mnist.splits;
    const single = await obtainModel(baseRecipe(EPOCHS, 0), train, val, backend, { retrain: RETRAIN, log: console.log });
    single.model.eval();
    if (run.has('explain')) {
      const t0 = performance.now();
      console.log('=== eval group: explain');
      const n = await runExplainEval({ model: single.model, mnistTest: test, fashionTest: fashion.splits.test, outDir: join(OUT, 'explain') });
      console.log(explainTable(n));
      Object.assign(results, n);
      times.explain = (performance.now() - t0) / 1000;
      save();
    }
    if (run.has('gradients')) {
      const t0 = performance.now();
      console.log('=== eval group: gradients');
      // Full size by default (all test / Fashion rows, 2000 training rows); --gradients-n N uses N
      // test and N Fashion rows, --gradients-n-train M the first M training rows (stage-2 H; the introspective H always uses the whole training split).
      const gn = arg('gradients-n', '');
      const gnt = arg('gradients-n-train', '');
      const ctx = {
        model: single.model, backend, train, val, test, fashion: fashion.splits.test, log: console.log, outDir: join(OUT, 'gradients'),
        ...(gn ? { nTest: Number(gn) } : {}), ...(gnt ? { nTrain: Number(gnt) } : {}),
      };
      const g = { ...(await evalGradientOod(ctx)), ...(await evalFailure(ctx)) };
      console.log(shiftTable(g));
      Object.assign(results, g);
      times.gradients = (performance.now() - t0) / 1000;
      save();
    }
    if (run.has('guards')) {
      const t0 = performance.now();
      console.log('=== eval group: guards');
      const r = await evalGuards({
        backend, train, val, test, fashion: fashion.splits.test, classifier: (x) => single.model.forward(x), outDir: join(OUT, 'guards'), retrain: RETRAIN, log: console.log, config: guardsConfigFromArgv(process.argv),
      });
      Object.assign(results, r.results);
      times.guards = (performance.now() - t0) / 1000;
      save();
    }
    if (run.has('report')) {
      const t0 = performance.now();
      console.log('=== eval group: report');
      const r = await runReportEval({ model: single.model, backend, val, test, fashion: fashion.splits.test, outDir: join(OUT, 'report'), mcSamples: Number(arg('mc-samples', '50')) });
      for (const [k, v] of Object.entries(r)) if (typeof v === 'number' || v === null) results[k] = v;
      times.report = (performance.now() - t0) / 1000;
      save();
    }
  }
  if (run.has('gradcon')) {
    const t0 = performance.now();
    console.log('=== eval group: gradcon');
    const classes = arg('gradcon-classes', '0,1,2,3,4,5,6,7,8,9').split(',').map(Number);
    const r = await evalGradcon({ backend, classes, epochs: Number(arg('gradcon-epochs', '6')), retrain: RETRAIN, log: console.log });
    for (const [k, v] of Object.entries(r.results)) {
      results[`${k}.perClass`] = v.perClass;
      results[`${k}.mean`] = v.mean;
    }
    results['gradcon.epochs'] = r.epochs;
    times.gradcon = (performance.now() - t0) / 1000;
    save();
  }
  if (run.has('conformal')) {
    const t0 = performance.now();
    console.log('=== eval group: conformal');
    const { splits } = await loadDemoData(0);
    const single = await obtainModel(baseRecipe(EPOCHS, 0), splits.train, splits.val, backend, { retrain: RETRAIN, log: console.log });
    const r = await evalConformal({ model: single.model, test: splits.test, backend, outDir: join(OUT, 'conformal') });
    console.log(r.table);
    single.model.dispose();
    Object.assign(results, r.results);
    times.conformal = (performance.now() - t0) / 1000;
    save();
  }
  if (run.has('active')) {
    const t0 = performance.now();
    console.log('=== eval group: active');
    const { splits } = await loadDemoData(0);
    const r = await evalActive({
      backend, train: splits.train, test: splits.test, outDir: join(OUT, 'active'), log: console.log,
      rounds: Number(arg('active-rounds', '20')), pool: Number(arg('active-pool', '2000')), steps: Number(arg('active-steps', '100')),
      samples: Number(arg('active-samples', '20')), model: arg('active-model', 'lenet') as 'lenet' | 'gal', seed: Number(arg('active-seed', '0')),
      ...(process.argv.includes('--active-acquisitions') ? { acquisitions: arg('active-acquisitions', '').split(',') as Acquisition[] } : {}),
    });
    console.log(r.table);
    Object.assign(results, r.results);
    times.active = (performance.now() - t0) / 1000;
    save();
  }
  if (run.has('bias')) {
    const t0 = performance.now();
    console.log('=== eval group: bias');
    const r = await evalBias({ backend, epochs: Number(arg('bias-epochs', '4')), retrain: RETRAIN, log: console.log });
    console.log(r.table);
    Object.assign(results, r.results);
    times.bias = (performance.now() - t0) / 1000;
    save();
  }
  if (run.has('dirichlet')) {
    const t0 = performance.now();
    console.log('=== eval group: dirichlet');
    const r = await evalDirichlet({ backend, epochs: EPOCHS, retrain: RETRAIN, trainEnsemble: process.argv.includes('--dirichlet-ensemble'), outDir: OUT, log: console.log });
    console.log(r.markdown);
    Object.assign(results, r.results);
    times.dirichlet = (performance.now() - t0) / 1000;
    results['times.dirichlet'] = times.dirichlet;
    save();
  }
  shutdown();
}

if (run.has('bayes')) {
  const t0 = performance.now();
  console.log('=== eval group: bayes');
  const backend = await init({ backend: BACKEND });
  Object.assign(results, await evalBayes({ outDir: join(OUT, 'bayes'), backend, epochs: EPOCHS, retrain: RETRAIN, log: console.log }));
  times.bayes = (performance.now() - t0) / 1000;
  save();
  shutdown();
}

for (const [g, s] of Object.entries(times)) results[`time.group.${g}Seconds`] = s;
save();
console.log(`\nresults.json: ${resultsFile} (${Object.keys(results).length} keys; groups run: ${[...run].join(', ')})`);
for (const [g, s] of Object.entries(times)) console.log(`  ${g.padEnd(10)} ${s.toFixed(1)} s`);
