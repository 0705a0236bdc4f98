/**
 * `npm run eval`: every experiment of the library, by group, with one machine-readable
 * `results.json` (flat, stable keys) in the report folder.
 *
 * Groups (`--only a,b` runs some of them; the default is `ood,explain,gradients`):
 *   ood        examples/eval-ood.ts (run as a child process with the same options): LeNet-5 and a
 *              stacked 5-member ensemble, MNIST vs Fashion-MNIST for every detector, calibration,
 *              the guard. Keys `ood.<id>.{auroc,auprIn,auprOut,fpr95}`, `guard.<id>.*`,
 *              `calibration.<model>.*`.
 *   explain    examples/eval-explain.ts: VOICE IoU / SNR (correct vs incorrect vs Fashion-MNIST),
 *              deletion / insertion AUCs, batched-vs-loop timing, the gallery. Keys `explain.*`.
 *   gradients  examples/eval-gradients.ts: gradient-norm, stage-2, GradNorm and introspective
 *              OOD, attacks, failure prediction, Gaussian-noise shift. Keys `ood.*`, `attacks.*`,
 *              `failure.*`, `shift.*`.
 *   report     examples/eval-report.ts: riskReport on the same protocol (cached eval LeNet-5):
 *              index.html / index.md / results.json in <out>/report/. Keys `report.*`.
 *   gradcon    examples/eval-gradcon.ts (opt-in: long): one-class GradCON vs plain CAE AUROC.
 *              Keys `gradcon.<dataset>`, `cae.<dataset>` ({ perClass[10], mean }).
 *
 * Every group trains or loads its models from the cache (.cache/dubito/eval/), so a rerun is
 * quick. `results.json` is merged with the one already in the report folder, so `--only` updates
 * just that group's keys. Options: those of eval-ood.ts (--epochs, --members, --mc-samples,
 * --retrain, --out, --backend), plus
 *   --only G[,G]      groups to run
 *   --json PATH       also write the merged results to PATH
 *   --gradcon-epochs N, --gradcon-classes 0,1,...   (gradcon group)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { init, loadFashionMnist, shutdown } from '../node.js';
import { baseRecipe, obtainModel } from './eval-models.js';
import { explainTable, runExplainEval } from './eval-explain.js';
import { evalFailure, evalGradientOod } from './eval-gradients.js';
import { evalGradcon } from './eval-gradcon.js';
import { loadDemoData } from './mnist-training.js';
import { runReportEval } from './eval-report.js';

const GROUPS = ['ood', 'explain', 'gradients', 'gradcon', 'report'] as const;
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

type Value = number | (number | null)[] | null;
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

if (run.has('explain') || run.has('gradients') || run.has('gradcon') || run.has('report')) {
  const backend = await init({ backend: BACKEND });
  const log = (m: string) => console.log(`  ${m}`);
  if (run.has('explain') || run.has('gradients') || run.has('report')) {
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
      const ctx = { model: single.model, backend, train, test, fashion: fashion.splits.test, log: console.log };
      Object.assign(results, await evalGradientOod(ctx), await evalFailure(ctx));
      times.gradients = (performance.now() - t0) / 1000;
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
  shutdown();
}

for (const [g, s] of Object.entries(times)) results[`time.group.${g}Seconds`] = s;
save();
console.log(`\nresults.json: ${resultsFile} (${Object.keys(results).length} keys; groups run: ${[...run].join(', ')})`);
for (const [g, s] of Object.entries(times)) console.log(`  ${g.padEnd(10)} ${s.toFixed(1)} s`);
