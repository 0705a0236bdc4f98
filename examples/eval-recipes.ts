/**
 * The recipe comparison of the `ood` eval group (issue 16): each training recipe (examples/eval-models.ts
 * RECIPES) × training seeds, every detector — the logit scores and the feature-space detectors of
 * uncertainty/feature-detectors.ts — on MNIST-test (in-distribution) vs seven OOD sets built from
 * shipped data with the library's own ops (examples/ood-sets.ts). Every number is reported as
 * mean ± std over seeds with a 95% stratified bootstrap interval over test samples (one resampling
 * stream, fixed seed, shared by all seeds: the interval of the seed mean). OOD = positive for
 * AUROC / AUPR-Out; FPR95 = OOD accepted at 95% TPR on MNIST.
 *
 * Validation data never includes OOD samples: the combination weights of the multi-layer
 * Mahalanobis detector, its input pre-processing ε and the feature-norm direction are chosen on
 * MNIST-val against FGSM-perturbed MNIST-val (Lee et al. 2018's adversarial validation).
 */
import {
  type Backend, type Detector, FeatureNormDetector, GmmDetector, type ImageSet, KnnDetector, type LeNet5, MahalanobisDetector,
  MultiLayerMahalanobisDetector, ReActEnergyDetector, type Tensor, VimDetector, bootstrapInterval, bootstrapOodMetricsMean, confidenceAndCorrect,
  ece, energyDetector, fgsm, fitTemperatureHost, flatten, keep, maxLogitDetector, meanStd, mspDetector, noGrad, oodMetrics, report, rocCurve,
  scoreAll, softmaxRows, tensor, tidy,
} from '../node.js';
import { type RecipeSpec, type TrainedModel, obtainRecipeModel } from './eval-models.js';
import { OOD_SET_INFO, type OodSetName, buildOodSets } from './ood-sets.js';

const { linePlot, markdownTable, panelGrid, statCell, fmt, pct, duration } = report;

type Value = number | (number | null)[] | null;

export interface RecipesContext {
  backend: Backend;
  train: ImageSet;
  val: ImageSet;
  test: ImageSet;
  /** Fashion-MNIST test images (OOD). */
  fashion: ImageSet;
  recipes: RecipeSpec[];
  seeds: number[];
  /** Subsets: `oodCount` rows per OOD set (default: all of Fashion, 1,000 for the derived sets). */
  oodCount?: number;
  /** Input pre-processing ε grid of the multi-layer Mahalanobis detector (default [0, 0.002]; each ε > 0 costs one backward per layer per image). */
  preEpsGrid?: number[];
  /** Bootstrap resamples (default 1000). */
  resamples?: number;
  retrain: boolean;
  log: (line: string) => void;
}

export interface RecipesOutput {
  results: Record<string, Value>;
  markdown: string;
  svgs: Record<string, string>;
  summary: string;
}

const BATCH = 250;
const ECE_BINS = 15;
const VAL_ROWS = 500;
const FGSM_EPS = 0.1;

/** Host logits [N·10] of a model on a set. */
async function logitsOf(model: LeNet5, x: Tensor): Promise<Float64Array> {
  const n = x.shape[0];
  const out = new Float64Array(n * 10);
  for (let s = 0; s < n; s += BATCH) {
    const nb = Math.min(BATCH, n - s);
    const z = tidy(() => noGrad(() => model.forward(x.slice([s, 0, 0, 0], [nb, -1, -1, -1]))));
    out.set(await z.data(), s * 10);
    z.dispose();
  }
  return out;
}

function images(set: ImageSet, backend: Backend, count = set.count): Tensor {
  return tensor(set.images.subarray(0, count * 784), [count, 1, 28, 28], { backend });
}

/** The four blocks of LeNet-5 as features: conv1 and conv2 maps (after pooling), fc1, fc2 (penultimate). */
function lenetLayers(model: LeNet5): (x: Tensor) => Tensor[] {
  const f = model.features.children();
  const c = model.classifier.children();
  return (x) => {
    const h1 = f[2].forward(f[1].forward(f[0].forward(x))) as Tensor;
    const h2 = f[5].forward(f[4].forward(f[3].forward(h1))) as Tensor;
    const a = c[1].forward(c[0].forward(flatten(h2, 1))) as Tensor;
    const b = c[3].forward(c[2].forward(a)) as Tensor;
    return [h1, h2, a, b];
  };
}

interface SeedRun {
  seed: number;
  trained: TrainedModel;
  accuracy: number;
  correct: Uint8Array;
  /** Temperature-scaled test probabilities [N·10] and the temperature. */
  probsT: Float64Array;
  temperature: number;
  probs: Float64Array;
  valProbs: Float64Array;
  eceT: number;
  /** detector name → { id: test scores, set → OOD scores }. */
  scores: Map<string, { id: Float64Array; ood: Record<OodSetName, Float64Array> }>;
  notes: string[];
}

const slug = (name: string) => name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');

/** Detector ids in results.json (stable, short). */
const DET_IDS: Record<string, string> = {};

async function runSeed(ctx: RecipesContext, spec: RecipeSpec, seed: number, X: { train: Tensor; val: Tensor; valAdv: Tensor; valSmall: Tensor; test: Tensor }, sets: Record<OodSetName, Tensor>): Promise<SeedRun> {
  const { log } = ctx;
  let tLast = performance.now();
  const lap = (what: string) => {
    const t = performance.now();
    log(`    ${what}: ${duration((t - tLast) / 1000)}`);
    tLast = t;
  };
  const trained = await obtainRecipeModel(spec, seed, ctx.train, ctx.val, ctx.backend, { retrain: ctx.retrain, log });
  log(`  ${spec.id} seed ${seed}: ${trained.cached ? 'loaded' : `trained in ${duration(trained.trainSeconds)}`} (${trained.path.split('/').pop()})`);
  const model = trained.model;
  model.eval();
  const testLogits = await logitsOf(model, X.test);
  const valLogits = await logitsOf(model, X.val);
  const probs = softmaxRows(testLogits, 10);
  const { correct } = confidenceAndCorrect(probs, ctx.test.labels, { numClasses: 10 });
  const accuracy = correct.reduce((a, b) => a + b, 0) / correct.length;
  const ts = fitTemperatureHost(valLogits, 10, ctx.val.labels);
  const probsT = softmaxRows(testLogits, 10, 1 / ts.temperature);
  const cT = confidenceAndCorrect(probsT, ctx.test.labels, { numClasses: 10 });
  const eceT = ece(cT.confidence, cT.correct, { bins: ECE_BINS });
  const notes: string[] = [];

  const pen = (x: Tensor) => model.penultimate(x);
  const head = model.classifier.children()[5] as unknown as { weight: Tensor; bias: Tensor; forward(x: Tensor): Tensor };
  const fit = { x: X.train, labels: ctx.train.labels, numClasses: 10, batchSize: BATCH };

  // Feature-norm direction on MNIST-val vs FGSM(MNIST-val): no OOD data.
  const normSmall = new FeatureNormDetector({ features: pen, direction: 'smallIsOod' });
  const dirAuroc = oodMetrics(await scoreAll(normSmall, X.valSmall, BATCH), await scoreAll(normSmall, X.valAdv, BATCH)).auroc;
  const norm = new FeatureNormDetector({ features: pen, direction: dirAuroc >= 0.5 ? 'smallIsOod' : 'largeIsOod', name: 'feature norm' });
  lap('logits, temperature, feature-norm direction');
  notes.push(`feature norm direction ${dirAuroc >= 0.5 ? '−‖f‖' : '+‖f‖'} (AUROC of −‖f‖ on val vs FGSM-val ${fmt(dirAuroc)})`);

  // Multi-layer Mahalanobis: ε picked by AUROC of the fitted combination on val vs FGSM-val.
  let best: { det: MultiLayerMahalanobisDetector; eps: number; auroc: number } | null = null;
  const base = await new MultiLayerMahalanobisDetector({ layers: lenetLayers(model), name: 'Mahalanobis multi-layer' }).fit(fit);
  for (const eps of ctx.preEpsGrid ?? [0, 0.002]) {
    const det = base.withEpsilon(eps);
    await det.fitCombination({ inDist: X.valSmall, outDist: X.valAdv, batchSize: BATCH });
    const a = oodMetrics(await scoreAll(det, X.valSmall, BATCH), await scoreAll(det, X.valAdv, BATCH)).auroc;
    lap(`multi-layer Mahalanobis ε = ${eps}: fit, combination, val AUROC ${fmt(a)}`);
    if (!best || a > best.auroc) {
      best?.det.dispose();
      best = { det, eps, auroc: a };
    } else det.dispose();
  }
  notes.push(`multi-layer Mahalanobis ε = ${best!.eps} (val vs FGSM-val AUROC ${fmt(best!.auroc)}; weights ${Array.from(best!.det.combination.weights, (w) => w.toFixed(2)).join(', ')})`);

  const detectors: Detector[] = [] as Detector[];
  for (const make of [
    () => mspDetector(model),
    () => maxLogitDetector(model),
    () => energyDetector(model, { temperature: 1, name: 'energy' }),
    async () => new ReActEnergyDetector({ features: pen, head, name: 'ReAct+energy' }).fit(fit),
    async () => new MahalanobisDetector({ features: pen, name: 'Mahalanobis (penultimate)' }).fit(fit),
    async () => new MahalanobisDetector({ features: pen, relative: true, name: 'relative Mahalanobis (penultimate)' }).fit(fit),
    () => best!.det,
    async () => new GmmDetector({ features: pen, name: 'GMM' }).fit(fit),
    async () => new KnnDetector({ features: pen, k: 10, name: 'kNN (k=10)' }).fit(fit),
    () => norm,
    async () => new VimDetector({ features: pen, weight: head.weight, bias: head.bias, name: 'ViM' }).fit(fit),
  ] as (() => Promise<Detector> | Detector)[]) {
    detectors.push(await make());
    lap(`fit ${detectors[detectors.length - 1].name}`);
  }
  const scores: SeedRun['scores'] = new Map();
  for (const d of detectors) {
    const id = await scoreAll(d, X.test, BATCH);
    const ood = {} as Record<OodSetName, Float64Array>;
    for (const s of Object.keys(sets) as OodSetName[]) ood[s] = await scoreAll(d, sets[s], BATCH);
    scores.set(d.name, { id, ood });
    lap(`scores of ${d.name} on MNIST-test + ${Object.keys(sets).length} OOD sets`);
    DET_IDS[d.name] ??= slug(d.name.replace('(penultimate)', '').replace('(k=10)', ''));
    (d as { dispose?: () => void }).dispose?.();
  }
  return { seed, trained, accuracy, correct, probs, probsT, temperature: ts.temperature, valProbs: softmaxRows(valLogits, 10), eceT, scores, notes };
}

/** Mean ± std over seeds and a bootstrap interval of the seed mean over test samples. */
function statOf(values: number[], ci: readonly [number, number]): { mean: number; std: number; ci95: [number, number]; n: number } {
  const m = meanStd(values);
  return { mean: m.mean, std: m.std, ci95: [ci[0], ci[1]], n: m.n };
}

export async function evalRecipes(ctx: RecipesContext): Promise<RecipesOutput> {
  const t0 = performance.now();
  const B = ctx.resamples ?? 1000;
  const be = ctx.backend;
  const X = {
    train: keep(images(ctx.train, be)),
    val: keep(images(ctx.val, be)),
    valSmall: keep(images(ctx.val, be, Math.min(VAL_ROWS, ctx.val.count))),
    test: keep(images(ctx.test, be)),
  };
  const sets = buildOodSets({ mnistTest: X.test, fashion: ctx.fashion, count: ctx.oodCount, backend: be });
  const setNames = Object.keys(sets) as OodSetName[];
  const results: Record<string, Value> = {};
  const md: string[] = [];
  const svgs: Record<string, string> = {};
  const summaryRows: report.Cell[][] = [];
  const summary: string[] = [];

  for (const spec of ctx.recipes) {
    const runs: SeedRun[] = [];
    for (const seed of ctx.seeds) {
      // FGSM-perturbed MNIST-val (the pseudo-OOD of the validation choices) depends on the model.
      const trained = await obtainRecipeModel(spec, seed, ctx.train, ctx.val, be, { retrain: ctx.retrain, log: ctx.log });
      const valAdv = keep(await fgsm(trained.model, X.valSmall, undefined, { epsilon: FGSM_EPS }));
      trained.model.dispose();
      runs.push(await runSeed(ctx, spec, seed, { ...X, valAdv }, sets));
      valAdv.dispose();
    }
    const P = `recipes.${spec.id}`;
    const nTest = ctx.test.count;
    // accuracy and temperature-scaled ECE: mean ± std over seeds, CI of the seed mean over test samples
    const accCi = bootstrapInterval(nTest, (ix) => runs.reduce((a, r) => a + ix.reduce((s, i) => s + r.correct[i], 0) / ix.length, 0) / runs.length, { resamples: B, seed: 1 });
    const eceOf = (probs: Float64Array, ix: Int32Array) => {
      const conf = new Float64Array(ix.length);
      const corr = new Uint8Array(ix.length);
      const c = confidenceAndCorrect(probs, ctx.test.labels, { numClasses: 10 });
      ix.forEach((i, j) => {
        conf[j] = c.confidence[i];
        corr[j] = c.correct[i];
      });
      return ece(conf, corr, { bins: ECE_BINS });
    };
    const eceCi = bootstrapInterval(nTest, (ix) => runs.reduce((a, r) => a + eceOf(r.probsT, ix), 0) / runs.length, { resamples: Math.min(B, 300), seed: 2 });
    const acc = statOf(runs.map((r) => r.accuracy), [accCi.lo, accCi.hi]);
    const eceS = statOf(runs.map((r) => r.eceT), [eceCi.lo, eceCi.hi]);
    for (const [k, s] of [['accuracy', acc], ['eceTemperatureScaled', eceS]] as const) {
      results[`${P}.${k}.mean`] = s.mean;
      results[`${P}.${k}.std`] = s.std;
      results[`${P}.${k}.ci95`] = s.ci95;
    }
    results[`${P}.seeds`] = ctx.seeds.length;
    // the seeds as a deep ensemble: mean probability, temperature-scaled on val (log of the mean as logits)
    let ens: { acc: number; ece: number; ci: [number, number]; T: number } | null = null;
    if (runs.length > 1) {
      const mean = (get: (r: SeedRun) => Float64Array) => {
        const out = new Float64Array(get(runs[0]).length);
        for (const r of runs) get(r).forEach((v, i) => (out[i] += v / runs.length));
        return out;
      };
      const logMean = (p: Float64Array) => p.map((v) => Math.log(Math.max(v, 1e-30)));
      const testP = mean((r) => r.probs);
      const ts = fitTemperatureHost(logMean(mean((r) => r.valProbs)), 10, ctx.val.labels);
      const pT = softmaxRows(logMean(testP), 10, 1 / ts.temperature);
      const c = confidenceAndCorrect(pT, ctx.test.labels, { numClasses: 10 });
      const ci = bootstrapInterval(nTest, (ix) => eceOf(pT, ix), { resamples: Math.min(B, 300), seed: 3 });
      ens = { acc: c.correct.reduce((a, b) => a + b, 0) / nTest, ece: ci.value, ci: [ci.lo, ci.hi], T: ts.temperature };
      results[`${P}.ensemble.accuracy`] = ens.acc;
      results[`${P}.ensemble.eceTemperatureScaled.value`] = ens.ece;
      results[`${P}.ensemble.eceTemperatureScaled.ci95`] = ens.ci;
      results[`${P}.ensemble.temperature`] = ens.T;
    }
    // OOD tables
    const detNames = [...runs[0].scores.keys()];
    type Cellset = Record<string, Record<OodSetName | 'mean', { auroc: ReturnType<typeof statOf>; fpr95: ReturnType<typeof statOf>; auprOut: ReturnType<typeof statOf>; auprIn: ReturnType<typeof statOf> }>>;
    const table: Cellset = {};
    for (const dn of detNames) {
      table[dn] = {} as Cellset[string];
      const id = DET_IDS[dn];
      const perSetMeans: Record<'auroc' | 'fpr95' | 'auprOut' | 'auprIn', number[][]> = { auroc: [], fpr95: [], auprOut: [], auprIn: [] };
      for (const s of setNames) {
        const r = bootstrapOodMetricsMean(runs.map((run) => ({ inScores: run.scores.get(dn)!.id, outScores: run.scores.get(dn)!.ood[s] })), { resamples: B, seed: 0 });
        const cell = {} as Cellset[string][OodSetName];
        for (const k of ['auroc', 'fpr95', 'auprOut', 'auprIn'] as const) {
          const st = statOf(r.perRun.map((m) => m[k]), [r.mean[k].lo, r.mean[k].hi]);
          cell[k] = st;
          perSetMeans[k].push(r.perRun.map((m) => m[k]));
          results[`${P}.ood.${s}.${id}.${k}.mean`] = st.mean;
          results[`${P}.ood.${s}.${id}.${k}.std`] = st.std;
          results[`${P}.ood.${s}.${id}.${k}.ci95`] = st.ci95;
        }
        table[dn][s] = cell;
      }
      // mean over sets (per seed, then over seeds); no interval for the mean column
      const meanCell = {} as Cellset[string]['mean'];
      for (const k of ['auroc', 'fpr95', 'auprOut', 'auprIn'] as const) {
        const perSeed = runs.map((_, j) => perSetMeans[k].reduce((a, v) => a + v[j], 0) / setNames.length);
        const m = meanStd(perSeed);
        meanCell[k] = { mean: m.mean, std: m.std, ci95: [NaN, NaN], n: m.n };
        results[`${P}.ood.mean.${id}.${k}.mean`] = m.mean;
        results[`${P}.ood.mean.${id}.${k}.std`] = m.std;
      }
      table[dn].mean = meanCell;
    }
    const bestFashion = detNames.reduce((a, b) => (table[b].fashion.auroc.mean > table[a].fashion.auroc.mean ? b : a));
    const bestMean = detNames.reduce((a, b) => (table[b].mean.auroc.mean > table[a].mean.auroc.mean ? b : a));
    summaryRows.push([spec.id, spec.label, statCell(acc, { percent: true }), statCell(eceS, { percent: true }), ens ? `${pct(ens.ece)} [${pct(ens.ci[0])}, ${pct(ens.ci[1])}]` : '— (1 seed)',
      `${bestFashion}: ${statCell(table[bestFashion].fashion.auroc, { ci: false })} / ${statCell(table[bestFashion].fashion.fpr95, { percent: true, ci: false })}`,
      `${bestMean}: ${fmt(table[bestMean].mean.auroc.mean)}`]);
    const goal = acc.mean >= 0.99 && table[bestFashion].fashion.auroc.mean >= 0.998 && table[bestFashion].fashion.fpr95.mean <= 0.01;
    summary.push(`${spec.id}: accuracy ${pct(acc.mean)}, best vs Fashion ${bestFashion} AUROC ${fmt(table[bestFashion].fashion.auroc.mean)} FPR95 ${pct(table[bestFashion].fashion.fpr95.mean)} → goal (acc ≥ 99.0%, AUROC ≥ 0.998, FPR95 ≤ 1%) ${goal ? 'MET' : 'missed'}`);
    results[`${P}.goalMet`] = goal ? 1 : 0;

    // markdown: one AUROC table and one FPR95 table, a column group per OOD set, plus the mean
    const n = runs.length;
    const head = (metric: string) => [`detector — ${metric} (OOD = positive; MNIST-test = negative)`, ...setNames.map((s) => OOD_SET_INFO[s].short), 'mean'];
    md.push(`### Recipe \`${spec.id}\`: ${spec.label}

Seeds ${ctx.seeds.join(', ')} (${n}); test accuracy ${statCell(acc, { percent: true })}; temperature-scaled ECE (${ECE_BINS} bins) ${statCell(eceS, { percent: true })}${ens ? `; the ${n} seeds as an ensemble: accuracy ${pct(ens.acc)}, temperature-scaled ECE ${pct(ens.ece)} [${pct(ens.ci[0])}, ${pct(ens.ci[1])}] (T = ${ens.T.toFixed(3)})` : ''}.
Cells: mean${n > 1 ? ' ± std over seeds' : ''} [95% bootstrap CI over test samples, ${B} stratified resamples]. Validation choices: ${runs.map((r) => `seed ${r.seed}: ${r.notes.join('; ')}`).join(' — ')}.

AUROC (OOD = positive):

${markdownTable(head('AUROC'), detNames.map((dn) => [dn + (dn === bestFashion ? ' *' : ''), ...setNames.map((s) => statCell(table[dn][s].auroc, { digits: 4 })), statCell(table[dn].mean.auroc, { ci: false })]))}
FPR95 (fraction of OOD accepted at 95% TPR on MNIST-test; OOD = positive for detection):

${markdownTable(head('FPR95'), detNames.map((dn) => [dn, ...setNames.map((s) => statCell(table[dn][s].fpr95, { percent: true, digits: 1 })), statCell(table[dn].mean.fpr95, { percent: true, digits: 1, ci: false })]))}
![ROC per OOD set, recipe ${spec.id}, seed ${runs[0].seed}](roc-${spec.id}.svg)
`);
    // ROC curves per OOD set (first seed)
    const r0 = runs[0];
    svgs[`roc-${spec.id}.svg`] = panelGrid(setNames.map((s) => linePlot({
      title: `${OOD_SET_INFO[s].short} (OOD = positive)`, xLabel: 'FPR (MNIST flagged)', yLabel: 'TPR (OOD flagged)', xDomain: [0, 1], yDomain: [0, 1], diagonal: true,
      legend: s === setNames[0] ? 'bottom-right' : 'none', width: 360, height: 300,
      series: detNames.map((dn) => {
        const sc = r0.scores.get(dn)!;
        const all = new Float64Array(sc.id.length + sc.ood[s].length);
        all.set(sc.id);
        all.set(sc.ood[s], sc.id.length);
        const labels = new Uint8Array(all.length).fill(1, sc.id.length);
        const c = rocCurve(all, labels, { positive: 1 });
        return { name: `${dn} (${fmt(table[dn][s].auroc.mean, 3)})`, x: c.fpr, y: c.tpr };
      }),
    })), { columns: 4, title: `ROC curves per OOD set — recipe ${spec.id}, seed ${r0.seed}` });
    for (const r of runs) r.trained.model.dispose();
  }
  const wall = (performance.now() - t0) / 1000;
  results['recipes.timeSeconds'] = wall;
  const setRows = setNames.map((s) => [OOD_SET_INFO[s].short, `${sets[s].shape[0]}`, OOD_SET_INFO[s].how]);
  const markdown = `## Recipes side by side (OOD = positive in every table)

${markdownTable(['recipe', 'training', 'test accuracy', 'ECE (temperature-scaled)', 'ensemble of the seeds: ECE (T-scaled) [CI]', 'best vs Fashion: AUROC / FPR95', 'best mean AUROC over sets'], summaryRows)}
${summary.map((s) => `- ${s}`).join('\n')}

With ${ctx.test.count} MNIST-test images, differences in AUROC smaller than the bootstrap intervals (often ±0.003 or wider) are noise; compare intervals, not third decimals.
\\* = the best detector vs Fashion-MNIST by mean AUROC (chosen on the test set: descriptive, not a selection).

OOD sets (seeded; built with the library's ops, nn/data/shifts.ts):

${markdownTable(['set', 'images', 'how'], setRows)}
${md.join('\n')}
Recipe comparison wall time: ${duration(wall)}.
`;
  for (const t of [...Object.values(X), ...Object.values(sets)]) t.dispose();
  return { results, markdown, svgs, summary: summary.join('\n') };
}
