/**
 * The "gradients at inference" evaluation group: gradient OOD detectors (sum of norms, the
 * stage-2 detector H, GradNorm, the introspective MSP), adversarial attacks, the failure-prediction
 * table (MCP, MC dropout, ConfidNet, the TCP oracle) and introspective learning under Gaussian
 * noise. Every function returns flat `{ key: number }` records with the stable keys of
 * `results.json`:
 *
 *   ood.<id>.{auroc,auprIn,auprOut,fpr95}              MNIST-test vs Fashion-MNIST-test
 *   attacks.<attack>.accuracy                          the classifier on attacked MNIST-test
 *   attacks.<attack>.<id>.auroc                        clean MNIST-test vs its attacked copy
 *   failure.<id>.{auprError,auprSuccess,fpr95,aurc}    MNIST-test
 *   shift.gaussianNoise.<severity>.<model>.{accuracy,ece}
 *
 * The challenge data of H are Gaussian-noise images and FGSM examples of TRAINING images, never
 * Fashion-MNIST or the test images. Standalone (small sizes, the cached LeNet of `npm run eval`):
 *
 *   npx tsx examples/eval-gradients.ts [--n 300] [--backend cpu|webgpu] [--epochs 12]
 */
import {
  type Backend,
  ConfidNet,
  type Detector,
  GradientStage2Detector,
  type ImageSet,
  IntrospectiveClassifier,
  LeNet5,
  type Tensor,
  aurc,
  auprError,
  auprSuccess,
  bim,
  concat,
  ece,
  fgsm,
  fprAtTpr,
  gradNormDetector,
  gradientNormDetector,
  iterativeLeastLikely,
  maximum,
  mcDropoutDetector,
  minimum,
  mspDetector,
  noGrad,
  normal,
  oodMetrics,
  pgd,
  precisionRecallCurve,
  report,
  riskCoverageCurve,
  scoreAll,
  softmax,
  tensor,
  tidy,
} from '../node.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface GradientEvalContext {
  model: LeNet5;
  backend: Backend;
  train: ImageSet;
  test: ImageSet;
  /** Fashion-MNIST test images (OOD, never used for fitting). */
  fashion: ImageSet;
  /** Rows used from each set (default: all of test / fashion, 2000 of train). */
  nTrain?: number;
  nTest?: number;
  /** Rows per batch (default 128). */
  batchSize?: number;
  /** Attack radius in pixel units of [0, 1] images (default 0.1). */
  epsilon?: number;
  log?: (s: string) => void;
  /** Where evalFailure writes its risk–coverage and error precision–recall plots (SVG); none if absent. */
  outDir?: string;
}

type Results = Record<string, number>;

function images(ctx: GradientEvalContext, set: ImageSet, n: number): Tensor {
  const c = Math.min(n, set.count);
  return tensor(set.images.subarray(0, c * 784), [c, 1, 28, 28], { backend: ctx.backend });
}
const labelsOf = (ctx: GradientEvalContext, set: ImageSet, n: number): Tensor =>
  tensor(Array.from(set.labels.subarray(0, Math.min(n, set.count))), [Math.min(n, set.count)], { dtype: 'int32', backend: ctx.backend });

/** Gaussian-noise images with the mean and standard deviation of MNIST pixels, clipped to [0, 1]. */
function noiseImages(n: number, seed: number, backend: Backend): Tensor {
  return tidy(() => noGrad(() => minimum(maximum(normal([n, 1, 28, 28], { mean: 0.13, std: 0.31, seed, backend }), 0), 1)));
}

/** Applies an attack batch by batch, returns the attacked images (one tensor). */
async function attackAll(x: Tensor, y: Tensor, bs: number, fn: (xb: Tensor, yb: Tensor) => Promise<Tensor>): Promise<Tensor> {
  const parts: Tensor[] = [];
  for (let s = 0; s < x.shape[0]; s += bs) {
    const n = Math.min(bs, x.shape[0] - s);
    const xb = x.slice([s], [n, 1, 28, 28]);
    const yb = y.slice([s], [n]);
    parts.push(await fn(xb, yb));
    xb.dispose();
    yb.dispose();
  }
  if (parts.length === 1) return parts[0];
  const out = concat(parts, 0);
  for (const p of parts) p.dispose();
  return out;
}

async function accuracyOf(model: LeNet5, x: Tensor, labels: Int32Array, bs: number): Promise<number> {
  let ok = 0;
  for (let s = 0; s < x.shape[0]; s += bs) {
    const n = Math.min(bs, x.shape[0] - s);
    const pred = await tidy(() => noGrad(() => model.forward(x.slice([s], [n, 1, 28, 28])).argmax(1))).data();
    for (let i = 0; i < n; i++) ok += pred[i] === labels[s + i] ? 1 : 0;
  }
  return ok / x.shape[0];
}

function putOod(r: Results, id: string, inS: ArrayLike<number>, outS: ArrayLike<number>): void {
  const m = oodMetrics(inS, outS);
  r[`ood.${id}.auroc`] = m.auroc;
  r[`ood.${id}.auprIn`] = m.auprIn;
  r[`ood.${id}.auprOut`] = m.auprOut;
  r[`ood.${id}.fpr95`] = m.fpr95;
}

/**
 * Gradient OOD detectors on MNIST-test vs Fashion-MNIST, and each attack: the attacked accuracy
 * of the classifier and every detector's AUROC for clean vs attacked test images.
 */
export async function evalGradientOod(ctx: GradientEvalContext): Promise<Results> {
  const log = ctx.log ?? (() => {});
  const bs = ctx.batchSize ?? 128;
  const nTr = ctx.nTrain ?? 2000;
  const nTe = ctx.nTest ?? ctx.test.count;
  const eps = ctx.epsilon ?? 0.1;
  const model = ctx.model.eval();
  const r: Results = {};
  const xTrain = images(ctx, ctx.train, nTr);
  const yTrain = labelsOf(ctx, ctx.train, nTr);
  const xTest = images(ctx, ctx.test, nTe);
  const yTest = labelsOf(ctx, ctx.test, nTe);
  const xF = images(ctx, ctx.fashion, nTe);
  const t0 = performance.now();
  // Challenge data for H: Gaussian noise and FGSM examples of training images.
  const half = Math.floor(nTr / 2);
  const noise = noiseImages(half, 12345, ctx.backend);
  const fg = await attackAll(xTrain.slice([0], [half, 1, 28, 28]), yTrain.slice([0], [half]), bs, (xb, yb) => fgsm(model, xb, yb, { epsilon: eps }));
  const challenge = concat([noise, fg], 0);
  noise.dispose();
  fg.dispose();
  const stage2 = new GradientStage2Detector(model, { name: 'gradStage2', stage2: { epochs: 60, hidden: 32, lr: 3e-3, seed: 0 } });
  await stage2.fit({ x: xTrain, challenge, batchSize: bs });
  challenge.dispose();
  log(`  stage-2 H fitted on ${nTr} MNIST-train + ${2 * half} challenge rows (${((performance.now() - t0) / 1000).toFixed(1)} s, final loss ${stage2.h.lastLoss.toFixed(4)})`);
  const intro = new IntrospectiveClassifier(model, { name: 'introspectiveMsp', stage2: { epochs: 20, seed: 0 } });
  await intro.fit({ x: xTrain, labels: yTrain, numClasses: 10, batchSize: bs });
  const detectors: [string, Detector][] = [
    ['msp', mspDetector(model)],
    ['gradNormSum', gradientNormDetector(model)],
    ['gradStage2', stage2],
    ['gradNorm', gradNormDetector(model)],
    ['introspectiveMsp', intro],
  ];
  const cleanScores = new Map<string, Float64Array>();
  for (const [id, d] of detectors) {
    const t = performance.now();
    const sIn = await scoreAll(d, xTest, bs);
    const sOut = await scoreAll(d, xF, bs);
    cleanScores.set(id, sIn);
    putOod(r, id, sIn, sOut);
    log(`  ood.${id}: AUROC ${r[`ood.${id}.auroc`].toFixed(4)}  FPR95 ${r[`ood.${id}.fpr95`].toFixed(4)}  (${((performance.now() - t) / 1000).toFixed(1)} s)`);
  }
  // Attacks on the test images.
  const testLabels = ctx.test.labels.subarray(0, nTe);
  r['attacks.clean.accuracy'] = await accuracyOf(model, xTest, testLabels, bs);
  const attacks: [string, (xb: Tensor, yb: Tensor) => Promise<Tensor>][] = [
    ['fgsm', (xb, yb) => fgsm(model, xb, yb, { epsilon: eps })],
    ['bim', (xb, yb) => bim(model, xb, yb, { epsilon: eps, stepSize: eps / 4, steps: 10 })],
    ['pgd', (xb, yb) => pgd(model, xb, yb, { epsilon: eps, stepSize: eps / 4, steps: 10, seed: 1 })],
    ['iterLL', (xb) => iterativeLeastLikely(model, xb, { epsilon: eps, stepSize: eps / 4, steps: 10 })],
  ];
  for (const [name, fn] of attacks) {
    const adv = await attackAll(xTest, yTest, bs, fn);
    r[`attacks.${name}.accuracy`] = await accuracyOf(model, adv, testLabels, bs);
    for (const [id, d] of detectors) {
      const s = await scoreAll(d, adv, bs);
      r[`attacks.${name}.${id}.auroc`] = oodMetrics(cleanScores.get(id)!, s).auroc;
    }
    adv.dispose();
    log(`  attacks.${name}: accuracy ${r[`attacks.${name}.accuracy`].toFixed(4)}; AUROC ${detectors.map(([id]) => `${id} ${r[`attacks.${name}.${id}.auroc`].toFixed(3)}`).join(', ')}`);
  }
  // Introspective learning under Gaussian noise (MNIST-C-style, 3 severities, seeded).
  for (const [sev, sigma] of [[1, 0.1], [2, 0.2], [3, 0.3]] as const) {
    const xs = tidy(() => noGrad(() => minimum(maximum(xTest.add(normal(xTest.shape, { std: sigma, seed: 100 + sev, backend: ctx.backend })), 0), 1)));
    for (const [mid, probsOf] of [
      ['lenet', (x: Tensor) => softmax(model.forward(x), 1)],
      ['introspective', (x: Tensor) => softmax(intro.logits(x), 1)],
    ] as const) {
      const conf = new Float64Array(nTe);
      const correct = new Uint8Array(nTe);
      for (let s = 0; s < nTe; s += bs) {
        const n = Math.min(bs, nTe - s);
        const p = await tidy(() => noGrad(() => probsOf(xs.slice([s], [n, 1, 28, 28])))).data();
        for (let i = 0; i < n; i++) {
          let k = 0;
          for (let j = 1; j < 10; j++) if (p[i * 10 + j] > p[i * 10 + k]) k = j;
          conf[s + i] = p[i * 10 + k];
          correct[s + i] = k === testLabels[s + i] ? 1 : 0;
        }
      }
      r[`shift.gaussianNoise.${sev}.${mid}.accuracy`] = correct.reduce((a, b) => a + b, 0) / nTe;
      r[`shift.gaussianNoise.${sev}.${mid}.ece`] = ece(conf, correct);
    }
    xs.dispose();
    log(`  shift.gaussianNoise.${sev}: lenet acc ${r[`shift.gaussianNoise.${sev}.lenet.accuracy`].toFixed(4)} ECE ${r[`shift.gaussianNoise.${sev}.lenet.ece`].toFixed(4)}; introspective acc ${r[`shift.gaussianNoise.${sev}.introspective.accuracy`].toFixed(4)} ECE ${r[`shift.gaussianNoise.${sev}.introspective.ece`].toFixed(4)}`);
  }
  stage2.h.dispose();
  intro.h.dispose();
  for (const t of [xTrain, yTrain, xTest, yTest, xF]) t.dispose();
  return r;
}

/** Failure prediction on MNIST-test: MCP, MC-dropout entropy and variation ratio, ConfidNet, the TCP oracle. */
export async function evalFailure(ctx: GradientEvalContext): Promise<Results> {
  const log = ctx.log ?? (() => {});
  const bs = ctx.batchSize ?? 128;
  const nTr = ctx.nTrain ?? 2000;
  const nTe = ctx.nTest ?? ctx.test.count;
  const model = ctx.model.eval();
  const xTrain = images(ctx, ctx.train, nTr);
  const xTest = images(ctx, ctx.test, nTe);
  const labels = ctx.test.labels.subarray(0, nTe);
  const probs = new Float64Array(nTe * 10);
  for (let s = 0; s < nTe; s += bs) {
    const n = Math.min(bs, nTe - s);
    probs.set(await tidy(() => noGrad(() => softmax(model.forward(xTest.slice([s], [n, 1, 28, 28])), 1))).data(), s * 10);
  }
  const correct = new Uint8Array(nTe);
  const mcp = new Float64Array(nTe);
  const tcp = new Float64Array(nTe);
  for (let i = 0; i < nTe; i++) {
    let k = 0;
    for (let j = 1; j < 10; j++) if (probs[i * 10 + j] > probs[i * 10 + k]) k = j;
    correct[i] = k === labels[i] ? 1 : 0;
    mcp[i] = probs[i * 10 + k];
    tcp[i] = probs[i * 10 + labels[i]];
  }
  const t0 = performance.now();
  const cn = new ConfidNet({ name: 'confidnet', features: (x) => model.penultimate(x), logits: (x) => model.forward(x) }, 84);
  await cn.fit({ x: xTrain, labels: ctx.train.labels.subarray(0, Math.min(nTr, ctx.train.count)), epochs: 20, lr: 1e-4, batchSize: bs });
  log(`  ConfidNet fitted on ${nTr} MNIST-train rows (${((performance.now() - t0) / 1000).toFixed(1)} s, final MSE ${cn.lastLoss.toExponential(3)})`);
  const neg = (a: Float64Array) => a.map((v) => -v);
  const confs: [string, Float64Array][] = [
    ['mcp', mcp],
    ['mcDropoutEntropy', neg(await scoreAll(mcDropoutDetector(model, { samples: 20, seed: 3, measure: 'predictiveEntropy' }), xTest, bs))],
    ['mcDropoutVariationRatio', neg(await scoreAll(mcDropoutDetector(model, { samples: 20, seed: 3, measure: 'variationRatio' }), xTest, bs))],
    ['confidnet', neg(await scoreAll(cn, xTest, bs))],
    ['tcp', tcp],
  ];
  model.eval();
  const r: Results = { 'failure.errors': nTe - correct.reduce((a, b) => a + b, 0) };
  for (const [id, c] of confs) {
    r[`failure.${id}.auprError`] = auprError(c, correct);
    r[`failure.${id}.auprSuccess`] = auprSuccess(c, correct);
    r[`failure.${id}.fpr95`] = fprAtTpr(c, correct, { positive: 1, tpr: 0.95 });
    r[`failure.${id}.aurc`] = aurc(c, correct);
    log(`  failure.${id}: AUPR-Error ${r[`failure.${id}.auprError`].toFixed(4)}  AUPR-Success ${r[`failure.${id}.auprSuccess`].toFixed(4)}  FPR95 ${r[`failure.${id}.fpr95`].toFixed(4)}  AURC ${r[`failure.${id}.aurc`].toFixed(5)}`);
  }
  if (ctx.outDir) writeFailurePlots(ctx.outDir, confs, correct, log);
  for (const p of cn.head.parameters()) p.dispose();
  xTrain.dispose();
  xTest.dispose();
  return r;
}

const FAILURE_COLORS: Record<string, string> = { mcp: '#1f77b4', mcDropoutEntropy: '#ff7f0e', mcDropoutVariationRatio: '#2ca02c', confidnet: '#d62728', tcp: '#7f7f7f' };

/**
 * failure-risk-coverage.svg (selective risk vs coverage: keep the most confident fraction) and
 * failure-pr-error.svg (precision–recall of detecting ERRORS, error = positive on −confidence, the
 * curve under AUPR-Error), one line per confidence measure; the TCP oracle dashed.
 */
function writeFailurePlots(outDir: string, confs: [string, Float64Array][], correct: Uint8Array, log: (s: string) => void): void {
  mkdirSync(outDir, { recursive: true });
  const rc = confs.map(([id, c]) => {
    const curve = riskCoverageCurve(c, correct);
    return { name: `${id} (AURC ${aurc(c, correct).toFixed(4)})`, x: curve.coverage, y: curve.risk, color: FAILURE_COLORS[id], dash: id === 'tcp' ? '4 3' : undefined };
  });
  const errors = Uint8Array.from(correct, (v) => 1 - v);
  const pr = confs.map(([id, c]) => {
    const curve = precisionRecallCurve(c.map((v) => -v), errors, { positive: 1 });
    return { name: `${id} (AUPR-Error ${auprError(c, correct).toFixed(3)})`, x: curve.recall, y: curve.precision, color: FAILURE_COLORS[id], dash: id === 'tcp' ? '4 3' : undefined };
  });
  const n = correct.length;
  const nErr = errors.reduce((a, b) => a + b, 0);
  writeFileSync(join(outDir, 'failure-risk-coverage.svg'), report.linePlot({
    title: `Risk–coverage on ${n} MNIST-test images (${nErr} errors): lower is better`,
    xLabel: 'coverage (fraction kept, most confident first)', yLabel: 'selective risk (error rate)', series: rc, xDomain: [0, 1], legend: 'top-left',
  }));
  writeFileSync(join(outDir, 'failure-pr-error.svg'), report.linePlot({
    title: `Detecting errors (positive = misclassified, ${nErr} of ${n})`,
    xLabel: 'recall of errors', yLabel: 'precision', series: pr, xDomain: [0, 1], yDomain: [0, 1], legend: 'top-right',
  }));
  log(`  plots: ${join(outDir, 'failure-risk-coverage.svg')}, failure-pr-error.svg`);
}

// ---------------------------------------------------------------------------------------------
// standalone

const isMain = typeof process !== 'undefined' && process.argv[1] !== undefined && /eval-gradients\.m?[tj]s$/.test(process.argv[1]);
if (isMain) {
  const argv = process.argv.slice(2);
  const arg = (name: string, fallback: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] ? argv[i + 1] : fallback;
  };
  const { init, loadFashionMnist } = await import('../node.js');
  const { loadDemoData } = await import('./mnist-training.js');
  const { baseRecipe, obtainModel } = await import('./eval-models.js');
  const backend = await init({ backend: arg('backend', 'cpu') as 'cpu' | 'webgpu' });
  const n = Number(arg('n', '300'));
  const mnist = await loadDemoData(0);
  const fashion = await loadFashionMnist({ split: { test: 2000, tune: 500 }, seed: 0 });
  const trained = await obtainModel(baseRecipe(Number(arg('epochs', '12')), 0), mnist.splits.train, mnist.splits.val, backend, { retrain: false, log: console.log });
  console.log(`LeNet ${trained.cached ? 'loaded from' : 'trained and saved to'} ${trained.path}; backend ${backend.name}; n = ${n}`);
  const ctx: GradientEvalContext = { model: trained.model, backend, train: mnist.splits.train, test: mnist.splits.test, fashion: fashion.splits.test, nTrain: n, nTest: n, log: console.log };
  const t0 = performance.now();
  const results = { ...(await evalGradientOod(ctx)), ...(await evalFailure(ctx)) };
  console.log(JSON.stringify(results, null, 1));
  console.log(`total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const out = arg('json', '');
  if (out) {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(out, JSON.stringify(results, null, 1));
  }
}
