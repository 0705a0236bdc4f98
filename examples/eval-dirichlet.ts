/**
 * The `dirichlet` eval group: a prior network trained with outliers (Malinin & Gales 2018) next
 * to a softmax LeNet trained with outlier exposure (Hendrycks et al. 2019), the plain eval LeNet
 * and (when its checkpoints are cached) the eval's stacked ensemble, on one OOD protocol:
 *
 * - in distribution: MNIST, the eval's split (8,000 train / 1,000 val / 1,000 test, seed 0);
 * - training outliers: Fashion-MNIST classes 0–4 (T-shirt, trouser, pullover, dress, coat) of a
 *   seeded stratified Fashion-MNIST split { train: 8000, test: 4000 } (seed 0), train part:
 *   ≈ 4,000 images;
 * - test OOD: Fashion-MNIST classes 5–9 (sandal, shirt, sneaker, bag, ankle boot) of the test
 *   part (≈ 2,000 images; other classes and other images than the training outliers), 1,000
 *   Gaussian-noise images clip(𝒩(0.5, 0.25²), 0, 1) (Philox seed 101) and 1,000 uniform-noise
 *   images U[0, 1) (seed 102);
 * - every model: LeNet-5 (dropout 0.3) with the eval LeNet's recipe (Adam 2e-3, cosine, 12
 *   epochs, 125 steps of 64 MNIST images, random affine augmentation, seed 0); the two outlier
 *   models add 32 outliers to every step (2 : 1 in : out, one pass over the outliers per epoch).
 *   Prior nets: α = exp(clamp(z, −10, 10)), KL to β = 1 + 100·onehot(y) in distribution and
 *   β = 1 on the outliers, mean over the 96 rows: the forward KL(Dir(β) ‖ Dir(α)) of Malinin &
 *   Gales 2018 (`priorNet`, the issue's model) and, as a second model, the reverse
 *   KL(Dir(α) ‖ Dir(β)) of Malinin & Gales 2019 (`priorNetReverse`). OE net: CE + 0.5·CE-to-uniform.
 *
 * Scores, all through the Detector protocol (higher = more OOD; AUROC / FPR95 with OOD as the
 * positive class, `evaluateDetectors`): prior nets — vacuity K/α₀, −α₀, mutual information,
 * expected entropy, differential entropy, MSP of the mean α/α₀; OE and plain — MSP, energy;
 * ensemble — predictive entropy, mutual information, mean energy. Calibration on MNIST-test:
 * accuracy, ECE (15 bins) and NLL of α/α₀ (prior nets), of softmax(z) (OE, plain) and of the
 * members' mean softmax (ensemble).
 *
 *   node scripts/run-ts.mjs examples/eval-dirichlet.ts [--epochs N] [--backend auto|webgpu|cpu] [--retrain]
 *
 * `evalDirichlet(opts)` returns `results` with flat keys `dirichlet.<model>.<score>.<oodset>.{auroc,fpr95}`,
 * `dirichlet.<model>.{accuracy,ece,nll}` and the string `dirichlet.protocol`, plus a Markdown
 * report (written as dirichlet.md into `outDir`).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  type Backend, DeepEnsemble, type Detector, type ImageSet, LOG_ALPHA_CLAMP, type LeNet5, PriorNetwork, type Tensor, confidenceAndCorrect, dirichletDetector,
  dirichletMean, ece, energyDetector, ensembleDetector, evaluateDetectors, gaussianNoiseImages, init, loadFashionMnist, mspDetector, nll, noGrad, report,
  shutdown, softmax, tensor, tidy, uniformNoiseImages,
} from '../node.js';
import { MNIST_SPLIT, loadDemoData } from './mnist-training.js';
import {
  type TrainedModel, baseRecipe, checkpointDir, freshLeNet, loadCached, loadCheckpoint, obtainEnsemble, obtainModel, saveCheckpoint, stableJson, stackedMemberRecipe,
} from './eval-models.js';
import { type OutlierLoss, trainWithOutliers } from './dirichlet-training.js';

export const DIRICHLET_FASHION_SPLIT = { train: 8000, test: 4000 };
export const OUTLIER_CLASSES = [0, 1, 2, 3, 4];
export const TEST_OOD_CLASSES = [5, 6, 7, 8, 9];
const OUTLIER_BATCH = 32;
const TARGET_CONCENTRATION = 100;
const OE_LAMBDA = 0.5;
const NOISE_COUNT = 1000;
const ECE_BINS = 15;

export const DIRICHLET_PROTOCOL = 'in-distribution MNIST (eval split 8000/1000/1000, seed 0; test = the 1000 MNIST-test images); '
  + `training outliers Fashion-MNIST classes 0-4 of the train part of a stratified split {train: ${DIRICHLET_FASHION_SPLIT.train}, test: ${DIRICHLET_FASHION_SPLIT.test}} (seed 0); `
  + 'test OOD: Fashion-MNIST classes 5-9 of the test part, 1000 Gaussian-noise images clip(N(0.5, 0.25^2), 0, 1) (seed 101), 1000 uniform-noise images U[0,1) (seed 102); '
  + `LeNet-5 with the eval LeNet recipe (Adam 2e-3 cosine, 12 epochs x 125 steps of 64 MNIST images, affine augmentation, seed 0); outlier models add ${OUTLIER_BATCH} outliers per step (2:1); `
  + `prior nets alpha = exp(clamp(z, -10, 10)), forward KL(Dir(beta) || Dir(alpha)) (Malinin & Gales 2018) or reverse KL(Dir(alpha) || Dir(beta)) (2019) to beta = 1 + ${TARGET_CONCENTRATION}*onehot(y), beta = 1 on outliers, mean over the 96 rows; OE net CE + ${OE_LAMBDA}*CE-to-uniform; `
  + 'AUROC / FPR95 with OOD as the positive class; ECE with 15 equal-width bins.';

export type DirichletModelId = 'priorNet' | 'priorNetReverse' | 'oe' | 'plain' | 'ensemble';
export type OodSetId = 'fashion59' | 'gaussian' | 'uniform';
const OOD_LABEL: Record<OodSetId, string> = { fashion59: 'Fashion 5–9', gaussian: 'Gaussian noise', uniform: 'uniform noise' };
const MODEL_LABEL: Record<DirichletModelId, string> = { priorNet: 'prior network, forward KL', priorNetReverse: 'prior network, reverse KL', oe: 'outlier exposure', plain: 'plain LeNet', ensemble: 'ensemble (stacked)' };

export interface EvalDirichletOptions {
  backend: Backend;
  epochs?: number;
  /** Members of the eval's ensemble to reuse (default 5; loaded only if all are cached). */
  members?: number;
  /** Train the ensemble if it is not cached (default false: left out with a note). */
  trainEnsemble?: boolean;
  retrain?: boolean;
  outDir?: string;
  log?: (line: string) => void;
}

export interface EvalDirichletResult {
  results: Record<string, number | string>;
  markdown: string;
  /** One line per model: accuracy, ECE, NLL, cached or trained and how long. */
  notes: string[];
}

function classSubset(set: ImageSet, classes: readonly number[]): ImageSet {
  const keep: number[] = [];
  for (let i = 0; i < set.count; i++) if (classes.includes(set.labels[i])) keep.push(i);
  const images = new Float32Array(keep.length * 784);
  const labels = new Int32Array(keep.length);
  const indices = new Int32Array(keep.length);
  keep.forEach((j, k) => {
    images.set(set.images.subarray(j * 784, (j + 1) * 784), k * 784);
    labels[k] = set.labels[j];
    indices[k] = set.indices[j];
  });
  return { images, labels, count: keep.length, indices };
}

/** Hash of examples/dirichlet-training.ts (the training code), as eval-models.ts fingerprints mnist-training.ts. */
function trainingCodeHash(): string {
  const file = resolve('examples', 'dirichlet-training.ts');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : trainWithOutliers.toString();
  return createHash('sha256').update(`dirichlet\n${text}`).digest('hex').slice(0, 12);
}

async function obtainOutlierModel(
  id: 'priorNet' | 'priorNetReverse' | 'oe', epochs: number, train: ImageSet, outliers: ImageSet, val: ImageSet, o: EvalDirichletOptions,
): Promise<TrainedModel> {
  const log = o.log ?? (() => {});
  const base = baseRecipe(epochs, 0);
  const loss: OutlierLoss = id === 'oe' ? { kind: 'oe', lambda: OE_LAMBDA } : { kind: 'prior', targetConcentration: TARGET_CONCENTRATION, divergence: id === 'priorNet' ? 'forward' : 'reverse' };
  const key = {
    kind: 'dirichlet-v1', id, base, loss, head: id !== 'oe' ? { alpha: 'exp', clamp: [...LOG_ALPHA_CLAMP] } : 'softmax',
    outliers: { dataset: 'fashion-mnist', classes: OUTLIER_CLASSES, split: DIRICHLET_FASHION_SPLIT, splitSeed: 0, perStep: OUTLIER_BATCH, count: outliers.count },
    trainingCode: trainingCodeHash(),
  };
  const keyText = stableJson(key);
  const path = join(checkpointDir(), `lenet5-dirichlet-${id}-${createHash('sha256').update(keyText).digest('hex').slice(0, 16)}.safetensors`);
  if (!o.retrain) {
    const c = await loadCheckpoint(path, keyText, () => freshLeNet(base.initSeed, base.dropout), o.backend, log);
    if (c) return { ...c, recipe: base, path, cached: true };
  }
  log(`  training the ${MODEL_LABEL[id]} LeNet-5 (${epochs} epochs, ${base.batchSize} MNIST + ${OUTLIER_BATCH} outliers per step)…`);
  const model = freshLeNet(base.initSeed, base.dropout);
  const t0 = performance.now();
  const { history } = await trainWithOutliers(model, train, outliers, val, {
    epochs, batchSize: base.batchSize, outlierBatch: OUTLIER_BATCH, lr: base.lr, seed: base.dataSeed, augment: base.augment, loss, backend: o.backend, log,
  });
  const seconds = (performance.now() - t0) / 1000;
  model.eval();
  mkdirSync(checkpointDir(), { recursive: true });
  await saveCheckpoint(path, model, keyText, { seconds, history });
  return { model, recipe: base, path, cached: false, trainSeconds: seconds, history };
}

/** Class probabilities [N, 10] of a set, in batches of 250. */
async function probsOf(fn: (x: Tensor) => Tensor, set: ImageSet, backend: Backend): Promise<Float32Array> {
  const out = new Float32Array(set.count * 10);
  for (let s = 0; s < set.count; s += 250) {
    const n = Math.min(250, set.count - s);
    const p = tidy(() => noGrad(() => fn(tensor(set.images.subarray(s * 784, (s + n) * 784), [n, 1, 28, 28], { backend }))));
    out.set(await p.data(), s * 10);
    p.dispose();
  }
  return out;
}

function calibration(probs: Float32Array, labels: Int32Array): { accuracy: number; ece: number; nll: number } {
  const { confidence, correct } = confidenceAndCorrect(probs, labels, { numClasses: 10 });
  let ok = 0;
  for (let i = 0; i < correct.length; i++) ok += correct[i];
  return { accuracy: ok / correct.length, ece: ece(confidence, correct, { bins: ECE_BINS }), nll: nll(probs, labels, { numClasses: 10 }) };
}

export async function evalDirichlet(o: EvalDirichletOptions): Promise<EvalDirichletResult> {
  const log = o.log ?? (() => {});
  const epochs = o.epochs ?? 12;
  const { backend } = o;
  const t0 = performance.now();
  const mnist = await loadDemoData(0);
  const { train, val, test } = mnist.splits;
  const fashion = await loadFashionMnist({ split: DIRICHLET_FASHION_SPLIT, seed: 0, log: (m) => log(`  ${m}`) });
  const outliers = classSubset(fashion.splits.train, OUTLIER_CLASSES);
  const fashion59 = classSubset(fashion.splits.test, TEST_OOD_CLASSES);
  // The protocol's promise, checked: no training outlier is a test OOD image (disjoint classes,
  // and disjoint images: the two split parts never share an index).
  const outIdx = new Set(outliers.indices);
  if (fashion59.labels.some((c) => OUTLIER_CLASSES.includes(c)) || fashion59.indices.some((i) => outIdx.has(i))) {
    throw new Error('evalDirichlet: a training outlier is in the test OOD set');
  }
  log(`  MNIST ${MNIST_SPLIT.train}/${MNIST_SPLIT.val}/${MNIST_SPLIT.test}; training outliers: ${outliers.count} Fashion-MNIST images of classes 0–4; test OOD: ${fashion59.count} Fashion 5–9, ${NOISE_COUNT} Gaussian, ${NOISE_COUNT} uniform`);

  const notes: string[] = [];
  const describe = (id: DirichletModelId, m: { cached: boolean; trainSeconds: number }) => (m.cached ? `${MODEL_LABEL[id]}: cached` : `${MODEL_LABEL[id]}: trained in ${report.duration(m.trainSeconds)}`);
  const prior = await obtainOutlierModel('priorNet', epochs, train, outliers, val, o);
  notes.push(describe('priorNet', prior));
  const priorRev = await obtainOutlierModel('priorNetReverse', epochs, train, outliers, val, o);
  notes.push(describe('priorNetReverse', priorRev));
  const oe = await obtainOutlierModel('oe', epochs, train, outliers, val, o);
  notes.push(describe('oe', oe));
  const plain = await obtainModel(baseRecipe(epochs, 0), train, val, backend, { retrain: o.retrain ?? false, log });
  notes.push(describe('plain', plain));
  for (const m of [prior, priorRev, oe, plain]) m.model.eval();

  // The eval's ensemble (examples/eval-ood.ts: stacked members, seeds 1000·(i+1)), only if cached.
  const M = o.members ?? 5;
  const memberRecipes = Array.from({ length: M }, (_, i) => stackedMemberRecipe(epochs, 1000 * (i + 1)));
  let members: LeNet5[] | null = null;
  const cachedMembers = await Promise.all(memberRecipes.map((r) => loadCached(r, backend, log)));
  if (cachedMembers.every((c) => c !== null)) {
    members = cachedMembers.map((c) => c!.model);
    notes.push(`${MODEL_LABEL.ensemble}: ${M} cached members of the ood group`);
  } else {
    for (const c of cachedMembers) c?.model.dispose();
    if (o.trainEnsemble) {
      members = (await obtainEnsemble(memberRecipes, train, val, backend, { retrain: false, log })).map((m) => m.model);
      notes.push(`${MODEL_LABEL.ensemble}: ${M} members trained stacked`);
    } else {
      notes.push(`${MODEL_LABEL.ensemble}: left out (its ${M} checkpoints are not cached; \`npm run eval -- --only ood\` trains them, or pass --dirichlet-ensemble)`);
      log(`  ensemble left out: not all ${M} member checkpoints are cached`);
    }
  }
  const ensemble = members ? new DeepEnsemble(members).eval() : null;

  const priorNet = new PriorNetwork(prior.model); // α = exp(clamp(z)), the head it was trained with
  const priorNetRev = new PriorNetwork(priorRev.model);
  const dirichletScores = (net: PriorNetwork): Record<string, Detector> => ({
    vacuity: dirichletDetector(net, { measure: 'vacuity' }),
    precision: dirichletDetector(net, { measure: 'precision' }),
    mutualInformation: dirichletDetector(net, { measure: 'mutualInformation' }),
    expectedEntropy: dirichletDetector(net, { measure: 'expectedEntropy' }),
    differentialEntropy: dirichletDetector(net, { measure: 'differentialEntropy' }),
    msp: dirichletDetector(net, { measure: 'maxProbability' }),
  });
  const detectors: Record<DirichletModelId, Record<string, Detector>> = {
    priorNet: dirichletScores(priorNet),
    priorNetReverse: dirichletScores(priorNetRev),
    oe: { msp: mspDetector(oe.model), energy: energyDetector(oe.model) },
    plain: { msp: mspDetector(plain.model), energy: energyDetector(plain.model) },
    ensemble: ensemble
      ? {
        predictiveEntropy: ensembleDetector(ensemble, { measure: 'predictiveEntropy' }),
        mutualInformation: ensembleDetector(ensemble, { measure: 'mutualInformation' }),
        energy: ensembleDetector(ensemble, { measure: 'meanEnergy' }),
      }
      : {},
  };

  const results: Record<string, number | string> = { 'dirichlet.protocol': DIRICHLET_PROTOCOL };
  const xTest = tensor(test.images, [test.count, 1, 28, 28], { backend });
  const oodSets: Record<OodSetId, Tensor> = {
    fashion59: tensor(fashion59.images, [fashion59.count, 1, 28, 28], { backend }),
    gaussian: gaussianNoiseImages([NOISE_COUNT, 1, 28, 28], { seed: 101, backend }),
    uniform: uniformNoiseImages([NOISE_COUNT, 1, 28, 28], { seed: 102, backend }),
  };
  const oodRows: report.Cell[][] = [];
  for (const [id, dets] of Object.entries(detectors) as [DirichletModelId, Record<string, Detector>][]) {
    const names = Object.keys(dets);
    if (names.length === 0) continue;
    const perSet: Partial<Record<OodSetId, Awaited<ReturnType<typeof evaluateDetectors>>>> = {};
    for (const set of Object.keys(oodSets) as OodSetId[]) {
      perSet[set] = await evaluateDetectors(names.map((n) => dets[n]), { inDist: xTest, outDist: oodSets[set], batchSize: 250 });
    }
    for (const n of names) {
      const row: report.Cell[] = [MODEL_LABEL[id], n];
      for (const set of Object.keys(oodSets) as OodSetId[]) {
        const r = perSet[set]!.get(dets[n].name)!;
        results[`dirichlet.${id}.${n}.${set}.auroc`] = r.auroc;
        results[`dirichlet.${id}.${n}.${set}.fpr95`] = r.fpr95;
        row.push(report.fmt(r.auroc), report.pct(r.fpr95, 1));
      }
      oodRows.push(row);
    }
  }
  xTest.dispose();
  for (const t of Object.values(oodSets)) t.dispose();

  const probFns: [DirichletModelId, (x: Tensor) => Tensor][] = [
    ['priorNet', (x) => dirichletMean(priorNet.alpha(x))],
    ['priorNetReverse', (x) => dirichletMean(priorNetRev.alpha(x))],
    ['oe', (x) => softmax(oe.model.forward(x), -1)],
    ['plain', (x) => softmax(plain.model.forward(x), -1)],
  ];
  if (ensemble) probFns.push(['ensemble', (x) => ensemble.predict(x).mean]);
  const calRows: report.Cell[][] = [];
  for (const [id, fn] of probFns) {
    const c = calibration(await probsOf(fn, test, backend), test.labels);
    results[`dirichlet.${id}.accuracy`] = c.accuracy;
    results[`dirichlet.${id}.ece`] = c.ece;
    results[`dirichlet.${id}.nll`] = c.nll;
    calRows.push([MODEL_LABEL[id], id.startsWith('priorNet') ? 'α/α₀' : id === 'ensemble' ? 'mean softmax' : 'softmax', report.pct(c.accuracy), report.pct(c.ece), report.fmt(c.nll)]);
  }
  for (const id of ['priorNet', 'priorNetReverse'] as const) {
    const d = (results[`dirichlet.${id}.accuracy`] as number) - (results['dirichlet.plain.accuracy'] as number);
    notes.push(`${MODEL_LABEL[id]} vs plain LeNet accuracy: ${d >= 0 ? '+' : '−'}${(Math.abs(d) * 100).toFixed(2)} pp (target: within 0.5 pp)`);
  }

  const seconds = (performance.now() - t0) / 1000;
  const oodTable = report.markdownTable(
    ['model', 'score', ...(Object.keys(OOD_LABEL) as OodSetId[]).flatMap((s) => [`${OOD_LABEL[s]} AUROC`, 'FPR95'])], oodRows,
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
  const calTable = report.markdownTable(['model', 'probabilities', 'MNIST-test accuracy', 'ECE', 'NLL'], calRows, ['l', 'l', 'r', 'r', 'r']);
  const markdown = `## OOD detection (MNIST-test vs each OOD set; OOD = positive)\n\n${oodTable}\n\n## Calibration on MNIST-test\n\n${calTable}\n\n## Protocol\n\n${DIRICHLET_PROTOCOL}\n\n## Models\n\n${notes.map((n) => `- ${n}`).join('\n')}\n- group time: ${report.duration(seconds)}\n`;
  if (o.outDir) {
    mkdirSync(o.outDir, { recursive: true });
    writeFileSync(join(o.outDir, 'dirichlet.md'), `# dubito eval: Dirichlet prior networks\n\nGenerated ${new Date().toISOString()} on ${backend.name}.\n\n${markdown}`);
  }
  for (const m of [prior, priorRev, oe, plain]) m.model.dispose();
  ensemble?.dispose();
  members?.forEach((m) => m.dispose());
  return { results, markdown, notes };
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] && !process.argv[i + 1].startsWith('--') ? process.argv[i + 1] : fallback;
}

if (process.argv[1] && /eval-dirichlet/.test(process.argv[1])) {
  const backend = await init({ backend: arg('backend', 'auto') as 'auto' | 'webgpu' | 'cpu' });
  const r = await evalDirichlet({
    backend, epochs: Number(arg('epochs', '12')), retrain: process.argv.includes('--retrain'), trainEnsemble: process.argv.includes('--dirichlet-ensemble'),
    outDir: resolve(join('.cache', 'dubito', 'reports', 'eval-latest')), log: console.log,
  });
  console.log(r.markdown);
  shutdown();
}
