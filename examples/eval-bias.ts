/**
 * The `bias` eval group: biased MNIST, class-imbalance remedies and DB-VAE debiasing.
 *
 * Two experiments, both built from the shipped MNIST digits with the library's own ops, seeded:
 * - `style`: a style subgroup (inverted digits 1 − x by default, or thick strokes: a 3×3 max-pool dilation)
 *   that is `styleFraction` (3%) of the training set but half of the test set. Group = style.
 * - `imbalance`: digits 5–9 are 10× rarer than digits 0–4 in training; the test set is balanced.
 *   Group = rare digit vs common digit.
 * Every method trains the same network (the classifier path of a DbVae with a 784→128 ReLU
 * encoder: 784→128→10 logits) for the same number of epochs with Adam (lr 2e-3, batch 64):
 *   plain            cross-entropy, shuffled
 *   weightedSampler  sample reweighting: WeightedSampler with inverse-frequency weights of the
 *                    group (style: the style label, known to this oracle; imbalance: the class)
 *   lossReweighting  cross-entropy weighted by inverse group frequency (imbalance: the class
 *                    weights of crossEntropy; style: per-sample weights of the style group)
 *   classBalanced    ClassBalancedSampler: equal counts of each group per batch
 *   dbvaeNoResample  the DB-VAE loss (CE + VAE term) without resampling: isolates the resampling
 *   dbvae_a<α>       DB-VAE with latent-histogram resampling at α (no group labels used)
 * Keys: `bias.<experiment>.<method>.{overall,worstGroup}` (accuracies in [0, 1]), plus
 * `bias.<experiment>.<method>.{worstGroupEce,worstGroupNll}` and the time.
 *
 * Standalone: `node scripts/run-ts.mjs examples/eval-bias.ts [--epochs N] [--backend cpu]`.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  type Backend, type ImageSet, type Tensor, Adam, Flatten, Linear, ReLU, Sequential, ClassBalancedSampler, DataLoader, DbVae, WeightedSampler, classBalancedWeights, classWeights, crossEntropy, fromHost,
  groupMetrics, init, loadMnist, loadSafetensors, manualSeed, maxPool2d, noGrad, safetensorsToTensors, sortKeyPermutation, saveSafetensors, shutdown, softmax, tidy, trainDbVae, report,
} from '../node.js';

export type BiasMethod = 'plain' | 'weightedSampler' | 'lossReweighting' | 'classBalanced' | 'dbvaeNoResample' | `dbvae_a${string}`;

export interface BiasEvalOptions {
  backend: Backend;
  epochs?: number;
  /** DB-VAE α values (default 0.1, 0.01, 0.001). */
  alphas?: number[];
  /** 'inverted' (1 − x, default) or 'thick' (3×3 max-pool dilation). */
  style?: 'thick' | 'inverted';
  retrain?: boolean;
  /** Only these methods / experiments (default all). */
  methods?: string[];
  experiments?: string[];
  log?: (line: string) => void;
}

interface Experiment {
  name: 'style' | 'imbalance';
  train: { x: Float32Array; y: Int32Array; g: Int32Array };
  test: { x: Float32Array; y: Int32Array; g: Int32Array };
  groupNames: Record<number, string>;
}

const SEED = 14;

/**
 * The network every method trains: a DbVae with a small fully connected encoder (784→128, ReLU)
 * and decoder (8→128→784). Fully connected rather than convolutional so that the 16 trainings of
 * the group fit in minutes on a 2-core machine.
 */
function makeModel(): DbVae {
  return new DbVae({ encoder: new Sequential(new Flatten(), new Linear(784, 128), new ReLU()), features: 128, latentDim: 8, numClasses: 10 });
}
const BATCH = 64;
const LR = 2e-3;

/** Seeded permutation (the library's sort-by-Philox-keys construction). */
const perm = sortKeyPermutation;

/** The style transform on the rows `rows` of images [n·784], with tensor ops; returns a copy. */
async function stylise(images: Float32Array, rows: Int32Array, style: 'thick' | 'inverted', backend: Backend): Promise<Float32Array> {
  const out = images.slice();
  if (rows.length === 0) return out;
  const sel = new Float32Array(rows.length * 784);
  rows.forEach((r, j) => sel.set(images.subarray(r * 784, (r + 1) * 784), j * 784));
  const t = tidy(() => {
    const x = fromHost(sel, [rows.length, 1, 28, 28], 'float32', backend);
    return style === 'thick' ? maxPool2d(x, { kernelSize: 3, stride: 1, padding: 1 }) : x.neg().add(1);
  });
  const v = await t.data();
  t.dispose();
  rows.forEach((r, j) => out.set(v.subarray(j * 784, (j + 1) * 784), r * 784));
  return out;
}

function subset(set: ImageSet, idx: ArrayLike<number>): { x: Float32Array; y: Int32Array } {
  const x = new Float32Array(idx.length * 784);
  const y = new Int32Array(idx.length);
  for (let j = 0; j < idx.length; j++) {
    x.set(set.images.subarray(idx[j] * 784, (idx[j] + 1) * 784), j * 784);
    y[j] = set.labels[idx[j]];
  }
  return { x, y };
}

export async function buildExperiments(backend: Backend, style: 'thick' | 'inverted', log: (s: string) => void): Promise<Experiment[]> {
  const mnist = await loadMnist({ split: { train: 8000, test: 1000 }, seed: SEED, log });
  const { train, test } = mnist.splits;
  // style: 4000 training images, 3% (120) stylised; test: 1000, half stylised
  const nTrain = 4000;
  const tr = subset(train, perm(train.count, SEED, 0).subarray(0, nTrain));
  const styledTrain = perm(nTrain, SEED, 10_000).subarray(0, Math.round(0.03 * nTrain));
  const gTrain = new Int32Array(nTrain);
  for (const r of styledTrain) gTrain[r] = 1;
  const styledTest = perm(test.count, SEED, 20_000).subarray(0, test.count / 2);
  const gTest = new Int32Array(test.count);
  for (const r of styledTest) gTest[r] = 1;
  const styleExp: Experiment = {
    name: 'style',
    train: { x: await stylise(tr.x, styledTrain, style, backend), y: tr.y, g: gTrain },
    test: { x: await stylise(test.images, styledTest, style, backend), y: test.labels, g: gTest },
    groupNames: { 0: 'plain', 1: style },
  };
  // imbalance: 400 per common digit (0-4), 40 per rare digit (5-9): 2,200 images
  const keep: number[] = [];
  const per = new Array(10).fill(0);
  for (const i of perm(train.count, SEED, 30_000)) {
    const c = train.labels[i];
    if (per[c] < (c < 5 ? 400 : 40)) {
      per[c]++;
      keep.push(i);
    }
  }
  const im = subset(train, keep);
  const imbExp: Experiment = {
    name: 'imbalance',
    train: { ...im, g: Int32Array.from(im.y, (c) => (c >= 5 ? 1 : 0)) },
    test: { x: test.images, y: test.labels, g: Int32Array.from(test.labels, (c) => (c >= 5 ? 1 : 0)) },
    groupNames: { 0: 'digits 0-4', 1: 'digits 5-9 (rare)' },
  };
  return [styleExp, imbExp];
}

/** Cross-entropy training of the DbVae classifier path with one of the remedies. */
async function trainClassifier(model: DbVae, exp: Experiment, method: BiasMethod, epochs: number, backend: Backend): Promise<void> {
  const { x, y, g } = exp.train;
  const n = y.length;
  const arrays = [
    { data: x, shape: [n, 1, 28, 28], dtype: 'float32' as const },
    { data: y, shape: [n], dtype: 'int32' as const },
  ];
  // the group whose imbalance is remedied: the class (imbalance) or the style label (style)
  const groupOf = exp.name === 'imbalance' ? y : g;
  let loader: DataLoader;
  let perSample: Float32Array | null = null;
  let classWeight: Tensor | null = null;
  if (method === 'weightedSampler') {
    loader = new DataLoader(arrays, { batchSize: BATCH, sampler: new WeightedSampler(classBalancedWeights(groupOf), { seed: SEED }), backend });
  } else if (method === 'classBalanced') {
    const K = new Set(groupOf).size;
    loader = new DataLoader(arrays, { sampler: new ClassBalancedSampler(groupOf, { perClass: Math.max(1, Math.round(BATCH / K)), seed: SEED }), backend });
  } else {
    if (method === 'lossReweighting') {
      if (exp.name === 'imbalance') {
        classWeight = fromHost(Float32Array.from(classWeights(y, 10)), [10], 'float32', backend);
      } else {
        const w = classBalancedWeights(g);
        perSample = Float32Array.from(w, (v) => v * n); // mean 1
      }
    }
    const withW = perSample ? [...arrays, { data: perSample, shape: [n], dtype: 'float32' as const }] : arrays;
    loader = new DataLoader(withW, { batchSize: BATCH, shuffle: true, seed: SEED, backend });
  }
  const opt = new Adam(model.parameters(), { lr: LR });
  model.train();
  for (let e = 0; e < epochs; e++) {
    for (const batch of loader) {
      tidy(() => {
        opt.zeroGrad();
        const logits = model.forward(batch[0]);
        let loss: Tensor;
        if (perSample) {
          const w = batch[2];
          loss = crossEntropy(logits, batch[1], { reduction: 'none' }).mul(w).sum().div(w.sum());
        } else {
          loss = crossEntropy(logits, batch[1], classWeight ? { weight: classWeight } : {});
        }
        loss.backward();
        opt.step();
      });
      for (const t of batch) t.dispose();
    }
  }
  opt.zeroGrad();
  opt.dispose();
  classWeight?.dispose();
  model.eval();
}

async function predictProbs(model: DbVae, x: Float32Array, backend: Backend): Promise<Float32Array> {
  const n = x.length / 784;
  const out = new Float32Array(n * 10);
  for (let s = 0; s < n; s += 500) {
    const c = Math.min(500, n - s);
    const p = tidy(() => noGrad(() => softmax(model.forward(fromHost(x.subarray(s * 784, (s + c) * 784), [c, 1, 28, 28], 'float32', backend)), -1)));
    out.set(await p.data(), s * 10);
    p.dispose();
  }
  return out;
}

function cacheDir(): string {
  return resolve(process.env.DUBITO_CACHE_DIR ?? join(process.cwd(), '.cache', 'dubito'), 'eval');
}

export interface BiasEvalResult {
  results: Record<string, number>;
  table: string;
  seconds: number;
}

export async function evalBias(opts: BiasEvalOptions): Promise<BiasEvalResult> {
  const t0 = performance.now();
  const log = opts.log ?? console.log;
  const epochs = opts.epochs ?? 4;
  const alphas = opts.alphas ?? [0.1, 0.01, 0.001];
  const style = opts.style ?? 'inverted';
  const backend = opts.backend;
  const exps = await buildExperiments(backend, style, (m) => log(`  ${m}`));
  const allMethods: BiasMethod[] = ['plain', 'weightedSampler', 'lossReweighting', 'classBalanced', 'dbvaeNoResample', ...alphas.map((a) => `dbvae_a${a}` as BiasMethod)];
  const methods = opts.methods ? allMethods.filter((m) => opts.methods!.includes(m)) : allMethods;
  const results: Record<string, number> = {};
  const rows: string[][] = [];
  mkdirSync(cacheDir(), { recursive: true });
  for (const exp of exps) {
    if (opts.experiments && !opts.experiments.includes(exp.name)) continue;
    log(`bias/${exp.name}: ${exp.train.y.length} training images (${exp.train.g.reduce((a, b) => a + b, 0)} in group 1 '${exp.groupNames[1]}'), ${exp.test.y.length} test images (${exp.test.g.reduce((a, b) => a + b, 0)} in group 1)`);
    for (const method of methods) {
      const tm = performance.now();
      const recipe = JSON.stringify({ v: 2, net: 'fc128', exp: exp.name, style: exp.name === 'style' ? style : undefined, method, epochs, batch: BATCH, lr: LR, seed: SEED });
      const path = join(cacheDir(), `bias-${createHash('sha256').update(recipe).digest('hex').slice(0, 16)}.safetensors`);
      manualSeed(SEED);
      const model = makeModel();
      let cached = false;
      let minorityShare: number | null = null;
      if (!opts.retrain && existsSync(path)) {
        const file = await loadSafetensors(path);
        if (file.metadata.recipe === recipe) {
          tidy(() => model.loadStateDict(safetensorsToTensors(file, backend)));
          cached = true;
          minorityShare = file.metadata.minorityShare ? Number(file.metadata.minorityShare) : null;
        }
      }
      if (!cached) {
        if (method.startsWith('dbvae')) {
          const alpha = method === 'dbvaeNoResample' ? null : Number(method.slice('dbvae_a'.length));
          await trainDbVae(model, { x: { data: exp.train.x, shape: [exp.train.y.length, 1, 28, 28] }, y: exp.train.y }, {
            epochs, alpha, batchSize: BATCH, lr: LR, seed: SEED, bins: 10,
            onEpoch: (e) => {
              if (e.weights) {
                let s = 0;
                for (let i = 0; i < e.weights.length; i++) if (exp.train.g[i] === 1) s += e.weights[i];
                minorityShare = s;
              }
              log(`    ${method} epoch ${e.epoch}: loss ${e.loss.toFixed(4)}${e.effectiveSamples ? `, ESS ${e.effectiveSamples.toFixed(0)}` : ''}${minorityShare !== null ? `, group-1 share of draws ${(100 * minorityShare).toFixed(1)}%` : ''} (${e.seconds.toFixed(1)} s)`);
            },
          });
        } else {
          await trainClassifier(model, exp, method, epochs, backend);
        }
        const sd = model.stateDict();
        await saveSafetensors(path, sd, { recipe, ...(minorityShare !== null ? { minorityShare: String(minorityShare) } : {}) });
        for (const t of Object.values(sd)) t.dispose();
      }
      const probs = await predictProbs(model, exp.test.x, backend);
      const gm = groupMetrics(probs, exp.test.y, exp.test.g, { numClasses: 10, groupNames: exp.groupNames });
      const key = `bias.${exp.name}.${method}`;
      results[`${key}.overall`] = gm.overall.accuracy;
      results[`${key}.worstGroup`] = gm.worstGroup.accuracy;
      results[`${key}.worstGroupEce`] = gm.worstGroup.ece;
      results[`${key}.worstGroupNll`] = gm.worstGroup.nll;
      if (minorityShare !== null) results[`${key}.group1DrawShare`] = minorityShare;
      const secs = (performance.now() - tm) / 1000;
      const pc = (v: number) => `${(100 * v).toFixed(2)}%`;
      rows.push([exp.name, method, pc(gm.overall.accuracy), pc(gm.groups[0].accuracy), pc(gm.groups[1].accuracy), pc(gm.worstGroup.accuracy), gm.worstGroup.ece.toFixed(4), minorityShare === null ? '' : pc(minorityShare), cached ? 'cached' : `${secs.toFixed(0)} s`]);
      log(`  ${exp.name}/${method}: overall ${(100 * gm.overall.accuracy).toFixed(2)}%, ${exp.groupNames[0]} ${(100 * gm.groups[0].accuracy).toFixed(2)}%, ${exp.groupNames[1]} ${(100 * gm.groups[1].accuracy).toFixed(2)}% (${cached ? 'cached' : `${secs.toFixed(1)} s`})`);
      model.dispose();
    }
  }
  const table = report.markdownTable(
    ['experiment', 'method', 'overall acc', 'group 0 acc', 'group 1 acc', 'worst-group acc', 'worst-group ECE', 'group-1 share of draws', 'time'],
    rows,
  );
  const seconds = (performance.now() - t0) / 1000;
  results['bias.epochs'] = epochs;
  return { results, table, seconds };
}

// standalone
if (process.argv[1] && /eval-bias\.(ts|js|mjs)$/.test(process.argv[1])) {
  const arg = (name: string, fallback: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
  };
  const backend = await init({ backend: arg('backend', 'auto') as 'auto' | 'webgpu' | 'cpu' });
  const r = await evalBias({ backend, epochs: Number(arg('epochs', '4')), style: arg('style', 'inverted') as 'thick' | 'inverted', retrain: process.argv.includes('--retrain'),
    methods: arg('methods', '') ? arg('methods', '').split(',') : undefined, experiments: arg('experiments', '') ? arg('experiments', '').split(',') : undefined,
    alphas: arg('alphas', '') ? arg('alphas', '').split(',').map(Number) : undefined });
  console.log(r.table);
  console.log(JSON.stringify(r.results, null, 2));
  console.log(`bias eval: ${r.seconds.toFixed(1)} s`);
  shutdown();
}
