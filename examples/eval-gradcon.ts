/**
 * GradCON one-class anomaly detection (Kwon et al., ECCV 2020) on MNIST and Fashion-MNIST:
 * for each class c, a CAE is trained on class c's training images only and scores the whole
 * test split; AUROC with the other classes as anomalies (higher score = more anomalous), for
 * (a) the reconstruction MSE of a plain CAE (same architecture, trained with the MSE alone) and
 * (b) GradCON's score MSE − 0.12·mean_i cos(∂MSE/∂W_i, ḡ_i) of a CAE trained with J = MSE + 0.03·L_g.
 *
 * Data: the `mnist` package has 10,000 digits, so MNIST uses a stratified, seeded split
 * { train: 8000, test: 2000 } (≈ 800 training images per class, 2,000 test images). Fashion-MNIST
 * uses the same sizes drawn from its 70,000 images. Adam lr 1e-3, batch 64, `epochs` epochs (the
 * official run trains up to 1000 and keeps the best validation checkpoint: not done here).
 * Models are cached under .cache/dubito/eval/gradcon/ (safetensors, ḡ included), named by the
 * recipe.
 *
 *   node scripts/run-ts.mjs examples/eval-gradcon.ts [--dataset mnist|fashion|both] [--classes 0,1,...]
 *        [--epochs N] [--backend auto|webgpu|cpu] [--retrain]
 *
 * `evalGradcon(opts)` is the same as a function, returning `results` keyed
 * `gradcon.<dataset>.{perClass, mean}` and `cae.<dataset>.{perClass, mean}` (perClass: 10 entries,
 * null for classes not run; mean over the classes run).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  Adam, type Backend, GradConCAE, GradConDetector, type ImageSet, ReconstructionErrorDetector, type Tensor, gradconStep, init, loadFashionMnist, loadMnist,
  loadSafetensors, mean, oodMetrics, safetensorsToTensors, saveSafetensors, scoreAll, shutdown, square, sub, tensor, tidy, manualSeed,
} from '../node.js';
import { permutation } from './mnist-training.js';

export type GradconDataset = 'mnist' | 'fashion';

export interface EvalGradconOptions {
  datasets?: GradconDataset[];
  classes?: number[];
  epochs?: number;
  backend: Backend;
  retrain?: boolean;
  log?: (line: string) => void;
  seed?: number;
}

export interface GradconClassResult {
  dataset: GradconDataset;
  cls: number;
  aurocGradcon: number;
  aurocCae: number;
  trainSeconds: { gradcon: number; cae: number };
  cached: { gradcon: boolean; cae: boolean };
  trainImages: number;
}

export interface EvalGradconResult {
  results: Record<string, { perClass: (number | null)[]; mean: number | null }>;
  classes: GradconClassResult[];
  epochs: number;
}

const SPLIT = { train: 8000, test: 2000 };
const BATCH = 64;

function cacheDir(): string {
  return resolve(process.env.DUBITO_CACHE_DIR ?? join(process.cwd(), '.cache', 'dubito'), 'eval', 'gradcon');
}

function subset(set: ImageSet, cls: number): Float32Array {
  const idx: number[] = [];
  for (let i = 0; i < set.count; i++) if (set.labels[i] === cls) idx.push(i);
  const out = new Float32Array(idx.length * 784);
  idx.forEach((j, k) => out.set(set.images.subarray(j * 784, (j + 1) * 784), k * 784));
  return out;
}

async function trainOrLoad(kind: 'gradcon' | 'cae', ds: GradconDataset, cls: number, train: Float32Array, o: EvalGradconOptions): Promise<{ model: GradConCAE; seconds: number; cached: boolean }> {
  const epochs = o.epochs ?? 5;
  const seed = o.seed ?? 0;
  const path = join(cacheDir(), `${kind}-${ds}-c${cls}-e${epochs}-b${BATCH}-s${seed}-n${train.length / 784}.safetensors`);
  manualSeed(seed + cls);
  const model = new GradConCAE();
  await model.to(o.backend);
  if (!o.retrain && existsSync(path)) {
    const t = safetensorsToTensors(await loadSafetensors(path), o.backend);
    model.loadStateDict(t);
    for (const v of Object.values(t)) v.dispose();
    await model.refGrad.syncCount();
    return { model, seconds: 0, cached: true };
  }
  const n = train.length / 784;
  const opt = new Adam(model.parameters(), { lr: 1e-3 });
  const t0 = performance.now();
  for (let e = 0; e < epochs; e++) {
    const perm = permutation(n, seed + cls, e * 1_000_003);
    const losses: Tensor[] = [];
    for (let s = 0; s * BATCH < n; s++) {
      const idx = perm.subarray(s * BATCH, Math.min(n, (s + 1) * BATCH));
      const xb = new Float32Array(idx.length * 784);
      idx.forEach((j, k) => xb.set(train.subarray(j * 784, (j + 1) * 784), k * 784));
      const x = tensor(xb, [idx.length, 1, 28, 28], { backend: o.backend });
      if (kind === 'gradcon') {
        const r = gradconStep(model, opt, x);
        r.mse.dispose(); r.gradLoss.dispose();
        losses.push(r.loss);
      } else {
        losses.push(tidy(() => {
          opt.zeroGrad();
          const l = mean(square(sub(model.forward(x), x)));
          l.backward();
          opt.step();
          // Plain CAE: MSE only (its refGrad buffers stay at count 0).
          return l.detach();
        }));
      }
      x.dispose();
      if (s % 4 === 3) await losses[losses.length - 1]!.data();
    }
    let sum = 0;
    for (const l of losses) { sum += (await l.data())[0]!; l.dispose(); }
    o.log?.(`    ${kind} ${ds} class ${cls} epoch ${e + 1}/${epochs}: loss ${(sum / losses.length).toFixed(5)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  const seconds = (performance.now() - t0) / 1000;
  mkdirSync(cacheDir(), { recursive: true });
  await saveSafetensors(path, model.stateDict(), { recipe: JSON.stringify({ kind, ds, cls, epochs, batch: BATCH, seed, lr: 1e-3 }) });
  return { model, seconds, cached: false };
}

export async function evalGradcon(o: EvalGradconOptions): Promise<EvalGradconResult> {
  const log = o.log ?? (() => {});
  const datasets = o.datasets ?? ['mnist', 'fashion'];
  const classes = o.classes ?? [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const results: EvalGradconResult['results'] = {};
  const out: GradconClassResult[] = [];
  for (const ds of datasets) {
    const data = ds === 'mnist' ? await loadMnist({ split: SPLIT, seed: o.seed ?? 0 }) : await loadFashionMnist({ split: SPLIT, seed: o.seed ?? 0 });
    const test = data.splits.test;
    const xTest = tensor(test.images, [test.count, 1, 28, 28], { backend: o.backend });
    const perG: (number | null)[] = new Array(10).fill(null);
    const perC: (number | null)[] = new Array(10).fill(null);
    for (const cls of classes) {
      const train = subset(data.splits.train, cls);
      const g = await trainOrLoad('gradcon', ds, cls, train, o);
      const c = await trainOrLoad('cae', ds, cls, train, o);
      const sG = await scoreAll(new GradConDetector(g.model), xTest, 250);
      const sC = await scoreAll(new ReconstructionErrorDetector(c.model), xTest, 250);
      const split = (s: Float64Array) => {
        const inn: number[] = [];
        const outl: number[] = [];
        for (let i = 0; i < test.count; i++) (test.labels[i] === cls ? inn : outl).push(s[i]!);
        return oodMetrics(inn, outl).auroc;
      };
      const r: GradconClassResult = {
        dataset: ds, cls, aurocGradcon: split(sG), aurocCae: split(sC), trainSeconds: { gradcon: g.seconds, cae: c.seconds }, cached: { gradcon: g.cached, cae: c.cached }, trainImages: train.length / 784,
      };
      perG[cls] = r.aurocGradcon;
      perC[cls] = r.aurocCae;
      out.push(r);
      log(`  ${ds} class ${cls}: AUROC GradCON ${r.aurocGradcon.toFixed(4)}, plain CAE ${r.aurocCae.toFixed(4)} (train ${g.cached ? 'cached' : `${g.seconds.toFixed(0)} s`} / ${c.cached ? 'cached' : `${c.seconds.toFixed(0)} s`}, ${r.trainImages} images)`);
      g.model.dispose();
      c.model.dispose();
    }
    xTest.dispose();
    const avg = (v: (number | null)[]) => { const k = v.filter((x): x is number => x !== null); return k.length ? k.reduce((a, b) => a + b, 0) / k.length : null; };
    results[`gradcon.${ds}`] = { perClass: perG, mean: avg(perG) };
    results[`cae.${ds}`] = { perClass: perC, mean: avg(perC) };
  }
  return { results, classes: out, epochs: o.epochs ?? 5 };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1] && !process.argv[i + 1]!.startsWith('--')) return process.argv[i + 1];
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  return eq ? eq.slice(name.length + 3) : undefined;
}

const isMain = process.argv[1]?.endsWith('eval-gradcon.ts') || process.argv[1]?.includes('eval-gradcon');
if (isMain) {
  const backend = await init({ backend: (arg('backend') ?? 'auto') as 'auto' });
  const dsArg = arg('dataset') ?? 'both';
  const datasets: GradconDataset[] = dsArg === 'both' ? ['mnist', 'fashion'] : [dsArg as GradconDataset];
  const classes = arg('classes')?.split(',').map(Number);
  const epochs = Number(arg('epochs') ?? 5);
  const t0 = performance.now();
  console.log(`GradCON one-class eval on ${backend.name}: ${datasets.join(', ')}, classes ${classes?.join(',') ?? 'all'}, ${epochs} epochs`);
  const r = await evalGradcon({ datasets, classes, epochs, backend, retrain: process.argv.includes('--retrain'), log: (l) => console.log(l) });
  console.log(JSON.stringify(r.results, null, 1));
  const outDir = cacheDir();
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `results-${datasets.join('-')}-e${epochs}.json`);
  writeFileSync(file, JSON.stringify({ ...r, seconds: (performance.now() - t0) / 1000, backend: backend.name }, null, 1));
  console.log(`wrote ${file} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  shutdown();
}
