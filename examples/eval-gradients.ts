/**
 * The "gradients at inference" evaluation group: gradient OOD detectors (sum of norms, the
 * stage-2 detector H, GradNorm, the introspective MSP), adversarial attacks, the failure-prediction
 * table (MCP, MC dropout, ConfidNet, the TCP oracle) and introspective learning under Gaussian
 * noise, blur, rotation and contrast (the MNIST-C-style shift table). Every function returns flat
 * `{ key: number }` records with the stable keys of `results.json`:
 *
 *   ood.<id>.{auroc,auprIn,auprOut,fpr95}              MNIST-test vs Fashion-MNIST-test
 *   attacks.<attack>.accuracy                          the classifier on attacked MNIST-test
 *   attacks.<attack>.<id>.auroc                        clean MNIST-test vs its attacked copy
 *   attacks.<attack>.<id>.aurocSuccessful              the same on the successful pairs only
 *       (clean image classified correctly, attacked copy misclassified; their count is
 *       attacks.<attack>.successfulPairs), as LID (Ma et al. 2018) and Mahalanobis (Lee et al.
 *       2018) select their adversarial test pairs
 *   failure.<id>.{auprError,auprSuccess,fpr95,aurc}    MNIST-test
 *   failure.<id>.auprErrorCi95{Lo,Hi}                  paired bootstrap 95% interval (1000 resamples)
 *   failure.<confidnet id>.auprErrorMinusMcpCi95{Lo,Hi}  interval of the AUPR-Error difference to MCP
 *   shift.<corruption>.<severity>.<model>.{accuracy,ece}  corruption ∈ clean (severity 0),
 *       gaussianNoise, gaussianBlur, rotation, contrast (severities 1..3, MNIST_C_SHIFTS);
 *       model ∈ lenet (the plain network), introspective (stage-2 H on introspective features)
 *
 * ConfidNet's head is trained on the validation split (held out from the classifier) when
 * `val` is given, so that its true-class-probability targets include real errors; with `val`
 * the official code's protocol runs too (heads on training rows + shifted copies, the epoch with
 * the best validation AUPR-Error kept, then phase 2 on a copy of the LeNet's encoder).
 *
 * The challenge data of H are Gaussian-noise images and FGSM / BIM / PGD / least-likely examples
 * of TRAINING images with ε drawn per batch from [0.05, 0.15] ({@link challengeSet}), never
 * Fashion-MNIST or the test images. Standalone (small sizes, the cached LeNet of `npm run eval`):
 *
 *   npx tsx examples/eval-gradients.ts [--n 300] [--n-train N] [--backend cpu|webgpu] [--epochs 12]
 *     [--part all|ood|failure|shift] [--challenge attacks|fgsm] [--no-introspective]
 *     [--stage2-hidden H] [--stage2-epochs E] [--confidnet-split valAugmented|val|train]
 *     [--confidnet-aug ROWS] [--no-confidnet-heads] [--no-confidnet-select] [--confidnet-sel-fit trainAugmented|train]
 *     [--confidnet-sel-rows ROWS] [--confidnet-sel-epochs E] [--confidnet-ft-epochs E] [--confidnet-ft-lr LR]
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
  bootstrapInterval,
  auprSuccess,
  bim,
  concat,
  contrastImages,
  ece,
  fgsm,
  fprAtTpr,
  gaussianBlur,
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
  rotateImagesBy,
  scoreAll,
  softmax,
  tensor,
  tidy,
} from '../node.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rng } from './toy-random.js';
import { type Augment, gatherBatch } from './mnist-training.js';

export interface GradientEvalContext {
  model: LeNet5;
  backend: Backend;
  train: ImageSet;
  test: ImageSet;
  /** Fashion-MNIST test images (OOD, never used for fitting). */
  fashion: ImageSet;
  /**
   * A split the classifier was NOT trained on (the eval's validation split). When given,
   * ConfidNet's head is trained on it (`confidnetSplit` 'val', the default then), so the TCP
   * targets include real errors; without it, on the first `nTrain` training rows.
   */
  val?: ImageSet;
  /**
   * Which rows train ConfidNet's head: 'valAugmented' (default when `val` is given: the
   * validation split plus {@link shiftedCopies} of the first `confidnetAugmentedRows` training
   * rows), 'val' (the validation split alone), 'train' (the first `nTrain` training rows; the
   * default without `val`).
   */
  confidnetSplit?: 'val' | 'valAugmented' | 'train';
  /** Training rows shifted for 'valAugmented' (default 4000). */
  confidnetAugmentedRows?: number;
  /**
   * The paper's protocol (needs `val`; default on): heads `confidnetSel` / `confidnetMcpSel`
   * trained on training rows and selected on `val` by AUPR-Error after every epoch, and
   * `confidnetFt`, phase 2 (a copy of the LeNet fine-tuned with the `confidnetSel` head). Set
   * `confidnetSelect: false` to skip them.
   */
  confidnetSelect?: boolean;
  /** Fit the `confidnetSplit` heads (confidnet, confidnetMcp and their 'Val' twins; default true). */
  confidnetHeads?: boolean;
  /** Rows of the selection protocol: 'train' (the first `confidnetSelRows` training rows) or 'trainAugmented' (those plus their {@link shiftedCopies}; default). */
  confidnetSelFit?: 'train' | 'trainAugmented';
  /** Training rows of the selection protocol (default 2000; with their shifted copies 4000 fit rows). */
  confidnetSelRows?: number;
  /** Overrides of {@link CONFIDNET_SEL_FIT} and {@link CONFIDNET_FT_FIT}. */
  confidnetSelEpochs?: number;
  confidnetFtEpochs?: number;
  confidnetFtLr?: number;
  /** Rows used from each set (default: all of test / fashion, 2000 of train). */
  nTrain?: number;
  nTest?: number;
  /** Rows per batch (default 128). */
  batchSize?: number;
  /** Attack radius in pixel units of [0, 1] images (default 0.1). */
  epsilon?: number;
  log?: (s: string) => void;
  /** H's challenge data (see {@link challengeSet}; default 'attacks'). */
  challenge?: 'fgsm' | 'attacks';
  /** ε range of the adversarial challenge data (default {@link CHALLENGE_EPSILON}). */
  challengeEpsilon?: readonly [number, number];
  /** The confounding-label activation of H's features (default {@link STAGE2_CONFOUNDING}). */
  confounding?: 'softmax' | 'sigmoid';
  /** Overrides of H's settings ({@link STAGE2_FIT}). */
  stage2?: { hidden?: number; epochs?: number; lr?: number };
  /** Fit and evaluate the introspective classifier and the shift table (default true). */
  introspective?: boolean;
  /** Training rows of the introspective H (default: the whole training split). */
  introspectiveRows?: number;
  /** Augmented copies of those rows added to H's training set (default {@link INTROSPECTIVE_FIT}'s 1). */
  introspectiveCopies?: number;
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
    // a full-range slice is the tensor itself: dispose only real slices
    if (xb !== x) xb.dispose();
    if (yb !== y) yb.dispose();
  }
  if (parts.length === 1) return parts[0];
  const out = concat(parts, 0);
  for (const p of parts) p.dispose();
  return out;
}

/** Predicted class per row (first maximum). */
async function predictionsOf(model: LeNet5, x: Tensor, bs: number): Promise<Int32Array> {
  const out = new Int32Array(x.shape[0]);
  for (let s = 0; s < x.shape[0]; s += bs) {
    const n = Math.min(bs, x.shape[0] - s);
    const pred = await tidy(() => noGrad(() => model.forward(x.slice([s], [n, 1, 28, 28])).argmax(1))).data();
    for (let i = 0; i < n; i++) out[s + i] = pred[i];
  }
  return out;
}

/** Fraction of rows whose prediction equals the label. */
function accuracyFrom(pred: Int32Array, labels: ArrayLike<number>): number {
  let ok = 0;
  for (let i = 0; i < pred.length; i++) ok += pred[i] === labels[i] ? 1 : 0;
  return ok / pred.length;
}

async function accuracyOf(model: LeNet5, x: Tensor, labels: ArrayLike<number>, bs: number): Promise<number> {
  return accuracyFrom(await predictionsOf(model, x, bs), labels);
}

/** H's training settings in the eval (hidden units, epochs, Adam learning rate, seed). */
export const STAGE2_FIT = { hidden: 128, epochs: 120, lr: 3e-3, seed: 0 };

/**
 * H's confounding-label activation: p = sigmoid(z) in Σ_k BCE(p_k, 1) = Σ_k softplus(−z_k), the
 * binary cross-entropy on each output unit as BCE is defined (∂L/∂z_k = σ(z_k) − 1 keeps the
 * logit magnitudes that softmax discards). Measured on the eval LeNet (1,000 test / 1,000
 * Fashion rows, 2,000 training rows, 'attacks' challenge, H 128 × 120 epochs): Fashion AUROC
 * 0.989 / FPR95 4.6% with sigmoid against 0.978 / 9.0% with softmax. The scalar baseline
 * `gradNormSum` keeps the softmax form of the library default.
 */
export const STAGE2_CONFOUNDING: 'softmax' | 'sigmoid' = 'sigmoid';

/** The range of the attack radius ε of H's adversarial challenge data (input units). */
export const CHALLENGE_EPSILON: readonly [number, number] = [0.05, 0.15];

/**
 * The challenge data of the stage-2 detector H, made from TRAINING images only (never the test
 * images, never Fashion-MNIST):
 *
 * - 'fgsm' (the earlier protocol): Gaussian noise for half the rows, FGSM at ε = 0.1 of the other
 *   half of the training rows;
 * - 'attacks' (default): Gaussian noise, one image per two training rows, plus one adversarial
 *   copy of EVERY training row: the rows are cut into batches and batch j is attacked by
 *   FGSM, BIM, PGD (random start, seed 1000 + j) and the iterative least-likely attack in turn
 *   (j mod 4), with its own radius ε_j ~ U[ε_lo, ε_hi] (default [0.05, 0.15], a seeded host
 *   draw) and 10 steps of ε_j/4 for the iterative ones. Labels of the attacks are the training
 *   labels. The test attacks (ε = 0.1) lie inside that range — the detector has seen the attack
 *   families, as in the supervised adversarial-detection protocol of Ma et al. 2018 (LID) and
 *   Lee et al. 2018 (Mahalanobis) that Lee & AlRegib compare against, but not the test images.
 */
export async function challengeSet(model: LeNet5, xTrain: Tensor, yTrain: Tensor, bs: number, protocol: 'fgsm' | 'attacks', backend: Backend, epsRange: readonly [number, number] = CHALLENGE_EPSILON): Promise<Tensor> {
  const n = xTrain.shape[0];
  if (protocol === 'fgsm') {
    const half = Math.floor(n / 2);
    const noise = noiseImages(half, 12345, backend);
    const xs = xTrain.slice([0], [half, 1, 28, 28]);
    const ys = yTrain.slice([0], [half]);
    const fg = await attackAll(xs, ys, bs, (xb, yb) => fgsm(model, xb, yb, { epsilon: 0.1 }));
    const out = concat([noise, fg], 0);
    for (const t of [noise, fg]) t.dispose();
    if (xs !== xTrain) xs.dispose();
    if (ys !== yTrain) ys.dispose();
    return out;
  }
  const rand = rng(0x2545f491); // a reproducible ε per batch on every backend
  let j = 0;
  const adv = await attackAll(xTrain, yTrain, bs, (xb, yb) => {
    const epsilon = epsRange[0] + (epsRange[1] - epsRange[0]) * rand();
    const it = { epsilon, stepSize: epsilon / 4, steps: 10 };
    const kind = j % 4;
    const seed = 1000 + j++;
    if (kind === 0) return fgsm(model, xb, yb, { epsilon });
    if (kind === 1) return bim(model, xb, yb, it);
    if (kind === 2) return pgd(model, xb, yb, { ...it, seed });
    return iterativeLeastLikely(model, xb, it);
  });
  const noise = noiseImages(Math.ceil(n / 2), 12345, backend);
  const out = concat([noise, adv], 0);
  noise.dispose();
  adv.dispose();
  return out;
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
  const protocol = ctx.challenge ?? 'attacks';
  const challenge = await challengeSet(model, xTrain, yTrain, bs, protocol, ctx.backend, ctx.challengeEpsilon ?? CHALLENGE_EPSILON);
  const stage2 = new GradientStage2Detector(model, { name: 'gradStage2', confounding: ctx.confounding ?? STAGE2_CONFOUNDING, stage2: { ...STAGE2_FIT, ...ctx.stage2 } });
  await stage2.fit({ x: xTrain, challenge, batchSize: bs });
  r['ood.gradStage2.challengeRows'] = challenge.shape[0];
  challenge.dispose();
  log(`  stage-2 H fitted on ${nTr} MNIST-train + ${r['ood.gradStage2.challengeRows']} challenge rows ('${protocol}', ${((performance.now() - t0) / 1000).toFixed(1)} s, final loss ${stage2.h.lastLoss.toFixed(4)})`);
  const withIntro = ctx.introspective ?? true;
  const intro = withIntro ? await fitIntrospective(ctx, model, bs) : null;
  const detectors: [string, Detector][] = [
    ['msp', mspDetector(model)],
    ['gradNormSum', gradientNormDetector(model)],
    ['gradStage2', stage2],
    ['gradNorm', gradNormDetector(model)],
    ...(intro ? [['introspectiveMsp', intro] as [string, Detector]] : []),
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
  const cleanPred = await predictionsOf(model, xTest, bs);
  r['attacks.clean.accuracy'] = accuracyFrom(cleanPred, testLabels);
  const attacks: [string, (xb: Tensor, yb: Tensor) => Promise<Tensor>][] = [
    ['fgsm', (xb, yb) => fgsm(model, xb, yb, { epsilon: eps })],
    ['bim', (xb, yb) => bim(model, xb, yb, { epsilon: eps, stepSize: eps / 4, steps: 10 })],
    ['pgd', (xb, yb) => pgd(model, xb, yb, { epsilon: eps, stepSize: eps / 4, steps: 10, seed: 1 })],
    ['iterLL', (xb) => iterativeLeastLikely(model, xb, { epsilon: eps, stepSize: eps / 4, steps: 10 })],
  ];
  for (const [name, fn] of attacks) {
    const adv = await attackAll(xTest, yTest, bs, fn);
    const advPred = await predictionsOf(model, adv, bs);
    r[`attacks.${name}.accuracy`] = accuracyFrom(advPred, testLabels);
    // The successful pairs: clean image correct, its attacked copy misclassified.
    const ok: number[] = [];
    for (let i = 0; i < nTe; i++) if (cleanPred[i] === testLabels[i] && advPred[i] !== testLabels[i]) ok.push(i);
    r[`attacks.${name}.successfulPairs`] = ok.length;
    for (const [id, d] of detectors) {
      const s = await scoreAll(d, adv, bs);
      const c = cleanScores.get(id)!;
      r[`attacks.${name}.${id}.auroc`] = oodMetrics(c, s).auroc;
      if (ok.length) r[`attacks.${name}.${id}.aurocSuccessful`] = oodMetrics(ok.map((i) => c[i]), ok.map((i) => s[i])).auroc;
    }
    adv.dispose();
    log(`  attacks.${name}: accuracy ${r[`attacks.${name}.accuracy`].toFixed(4)}; AUROC all / successful (${ok.length}) ${detectors.map(([id]) => `${id} ${r[`attacks.${name}.${id}.auroc`].toFixed(3)}/${(r[`attacks.${name}.${id}.aurocSuccessful`] ?? NaN).toFixed(3)}`).join(', ')}`);
  }
  // Introspective learning vs the plain LeNet under MNIST-C-style shifts (MNIST_C_SHIFTS).
  if (intro) Object.assign(r, await evalShift(ctx, model, intro, xTest, testLabels, bs));
  stage2.h.dispose();
  intro?.h.dispose();
  for (const t of [xTrain, yTrain, xTest, yTest, xF]) t.dispose();
  return r;
}

/**
 * The introspective H of the eval: the paper's one-pass features (`questions: 'allOnes'`, the
 * gradient (K·p − 1)[a, 1]ᵀ of the last layer's weights and bias against the all-ones label,
 * normalised; 10·85 = 850 features for LeNet-5), an MLP with 64 hidden units, Adam 1e-3, 5 epochs.
 * Its training rows are the whole training split plus one augmented copy of it, made with the
 * classifier's OWN training augmentation ({@link INTROSPECTIVE_AUGMENT}): H sees the same image
 * distribution as the network it reads, and none of the shift table's corruptions.
 */
export const INTROSPECTIVE_FIT = { questions: 'allOnes' as const, bias: true, augmentedCopies: 1, stage2: { hidden: 64, epochs: 5, lr: 1e-3, seed: 0 } };

/** The eval LeNet's training augmentation (rotation ±12°, scale ±10%, shift ±2 px), reused for H's copies. */
export const INTROSPECTIVE_AUGMENT: Augment = { maxShift: 2, maxRotate: 12, maxScale: 0.1 };

/**
 * Fits the introspective classifier H ({@link INTROSPECTIVE_FIT}) on the first
 * `introspectiveRows` training rows (default all) plus `introspectiveCopies` augmented copies
 * (copy c drawn with Philox seed 7000 + c).
 */
export async function fitIntrospective(ctx: GradientEvalContext, model: LeNet5, bs: number): Promise<IntrospectiveClassifier> {
  const t0 = performance.now();
  const rows = Math.min(ctx.introspectiveRows ?? ctx.train.count, ctx.train.count);
  const copies = ctx.introspectiveCopies ?? INTROSPECTIVE_FIT.augmentedCopies;
  const idx = Int32Array.from({ length: rows }, (_, i) => i);
  const xs = new Float32Array(rows * 784 * (1 + copies));
  const ys = new Int32Array(rows * (1 + copies));
  xs.set(ctx.train.images.subarray(0, rows * 784));
  ys.set(ctx.train.labels.subarray(0, rows));
  for (let c = 1; c <= copies; c++) {
    const g = gatherBatch(ctx.train, idx, INTROSPECTIVE_AUGMENT, 7000 + c, 0);
    xs.set(g.x, c * rows * 784);
    ys.set(g.y, c * rows);
  }
  const x = tensor(xs, [ys.length, 1, 28, 28], { backend: ctx.backend });
  const { questions, bias, stage2 } = INTROSPECTIVE_FIT;
  const intro = new IntrospectiveClassifier(model, { name: 'introspectiveMsp', questions, bias, stage2 });
  try {
    await intro.fit({ x, labels: ys, numClasses: 10, batchSize: bs });
  } finally {
    x.dispose();
  }
  ctx.log?.(`  introspective H fitted on ${rows} training rows + ${copies} augmented ${copies === 1 ? 'copy' : 'copies'} (${((performance.now() - t0) / 1000).toFixed(1)} s, final loss ${intro.h.lastLoss.toFixed(4)})`);
  return intro;
}

/**
 * The introspective part alone (`--part shift`): fits H, scores the LeNet's MSP and H's MSP on
 * MNIST-test vs Fashion-MNIST (`ood.msp.*`, `ood.introspectiveMsp.*`) and runs {@link evalShift}.
 */
export async function evalIntrospective(ctx: GradientEvalContext): Promise<Results> {
  const bs = ctx.batchSize ?? 128;
  const nTe = ctx.nTest ?? ctx.test.count;
  const model = ctx.model.eval();
  const r: Results = {};
  const intro = await fitIntrospective(ctx, model, bs);
  const xTest = images(ctx, ctx.test, nTe);
  const xF = images(ctx, ctx.fashion, nTe);
  try {
    for (const [id, d] of [['msp', mspDetector(model)], ['introspectiveMsp', intro]] as [string, Detector][]) {
      putOod(r, id, await scoreAll(d, xTest, bs), await scoreAll(d, xF, bs));
      ctx.log?.(`  ood.${id}: AUROC ${r[`ood.${id}.auroc`].toFixed(4)}  FPR95 ${r[`ood.${id}.fpr95`].toFixed(4)}`);
    }
    Object.assign(r, await evalShift(ctx, model, intro, xTest, ctx.test.labels.subarray(0, nTe), bs));
  } finally {
    intro.h.dispose();
    xTest.dispose();
    xF.dispose();
  }
  return r;
}

/**
 * The MNIST-C-style corruptions of the shift table (Mu & Gilmer 2019's MNIST-C and Hendrycks &
 * Dietterich 2019's ImageNet-C in spirit; our own parameters, every image corrupted alike, made
 * with the library's ops on the test tensor, seeded):
 *
 *   clean          severity 0: the test images as they are
 *   gaussianNoise  clip(x + 𝒩(0, σ²), 0, 1), σ = 0.1 / 0.2 / 0.3 (Philox seed 100 + severity)
 *   gaussianBlur   `gaussianBlur(x, σ)`, σ = 1 / 1.5 / 2 px (zero padding)
 *   rotation       `rotateImagesBy(x, θ)`, θ = 20° / 35° / 50° counter-clockwise, bilinear, zero
 *                  fill (the eval LeNet was trained with random rotations up to ±12°)
 *   contrast       `contrastImages(x, c)` = clip((x − m)·c + m, 0, 1), m the image mean,
 *                  c = 0.4 / 0.2 / 0.1
 */
export const MNIST_C_SHIFTS: { kind: string; severity: number; param: number; apply: (x: Tensor, backend: Backend) => Tensor }[] = [
  { kind: 'clean', severity: 0, param: 0, apply: (x) => x.add(0) },
  ...[0.1, 0.2, 0.3].map((sigma, i) => ({
    kind: 'gaussianNoise', severity: i + 1, param: sigma,
    apply: (x: Tensor, backend: Backend) => minimum(maximum(x.add(normal(x.shape, { std: sigma, seed: 101 + i, backend })), 0), 1),
  })),
  ...[1, 1.5, 2].map((sigma, i) => ({ kind: 'gaussianBlur', severity: i + 1, param: sigma, apply: (x: Tensor) => gaussianBlur(x, sigma) })),
  ...[20, 35, 50].map((deg, i) => ({ kind: 'rotation', severity: i + 1, param: deg, apply: (x: Tensor) => rotateImagesBy(x, deg) })),
  ...[0.4, 0.2, 0.1].map((c, i) => ({ kind: 'contrast', severity: i + 1, param: c, apply: (x: Tensor) => contrastImages(x, c) })),
];

/**
 * Accuracy and ECE (15 equal-width bins of the max softmax probability) of the plain LeNet
 * (`lenet`) and the introspective classifier H (`introspective`) on every corruption of
 * {@link MNIST_C_SHIFTS}: keys `shift.<kind>.<severity>.<model>.{accuracy,ece}`, plus
 * `shift.mean.<model>.{accuracy,ece}` over the 12 corrupted sets (clean excluded) and
 * `shift.introspectiveEceWins` / `shift.introspectiveAccuracyWithinHalfPp`: on how many of the 12
 * the introspective ECE is ≤ the plain one, and its accuracy ≥ the plain one − 0.5 pp.
 */
export async function evalShift(ctx: GradientEvalContext, model: LeNet5, intro: IntrospectiveClassifier, xTest: Tensor, labels: ArrayLike<number>, bs: number): Promise<Results> {
  const log = ctx.log ?? (() => {});
  const r: Results = {};
  const nTe = xTest.shape[0];
  const sums = { lenet: { accuracy: 0, ece: 0 }, introspective: { accuracy: 0, ece: 0 } };
  let eceWins = 0;
  let accOk = 0;
  for (const sh of MNIST_C_SHIFTS) {
    const xs = tidy(() => noGrad(() => sh.apply(xTest, ctx.backend)));
    const key = `shift.${sh.kind}.${sh.severity}`;
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
          correct[s + i] = k === labels[s + i] ? 1 : 0;
        }
      }
      r[`${key}.${mid}.accuracy`] = correct.reduce((a, b) => a + b, 0) / nTe;
      r[`${key}.${mid}.ece`] = ece(conf, correct);
      if (sh.kind !== 'clean') {
        sums[mid].accuracy += r[`${key}.${mid}.accuracy`] / (MNIST_C_SHIFTS.length - 1);
        sums[mid].ece += r[`${key}.${mid}.ece`] / (MNIST_C_SHIFTS.length - 1);
      }
    }
    xs.dispose();
    if (sh.kind !== 'clean') {
      if (r[`${key}.introspective.ece`] <= r[`${key}.lenet.ece`]) eceWins++;
      if (r[`${key}.introspective.accuracy`] >= r[`${key}.lenet.accuracy`] - 0.005) accOk++;
    }
    log(`  ${key} (${sh.param}): lenet acc ${r[`${key}.lenet.accuracy`].toFixed(4)} ECE ${r[`${key}.lenet.ece`].toFixed(4)}; introspective acc ${r[`${key}.introspective.accuracy`].toFixed(4)} ECE ${r[`${key}.introspective.ece`].toFixed(4)}`);
  }
  for (const mid of ['lenet', 'introspective'] as const) {
    r[`shift.mean.${mid}.accuracy`] = sums[mid].accuracy;
    r[`shift.mean.${mid}.ece`] = sums[mid].ece;
  }
  r['shift.introspectiveEceWins'] = eceWins;
  r['shift.introspectiveAccuracyWithinHalfPp'] = accOk;
  return r;
}

/** Markdown table of the shift keys (one row per corruption and severity). */
export function shiftTable(r: Results): string {
  const f = (v: number | undefined, d = 4) => (v === undefined ? '—' : v.toFixed(d));
  const rows = MNIST_C_SHIFTS.map((sh) => {
    const k = `shift.${sh.kind}.${sh.severity}`;
    return `| ${sh.kind} | ${sh.severity} (${sh.param}) | ${f(r[`${k}.lenet.accuracy`])} | ${f(r[`${k}.introspective.accuracy`])} | ${f(r[`${k}.lenet.ece`])} | ${f(r[`${k}.introspective.ece`])} |`;
  });
  return ['| corruption | severity (parameter) | accuracy LeNet | accuracy introspective | ECE LeNet | ECE introspective |', '|---|---|---|---|---|---|', ...rows,
    `| mean of the 12 corrupted | | ${f(r['shift.mean.lenet.accuracy'])} | ${f(r['shift.mean.introspective.accuracy'])} | ${f(r['shift.mean.lenet.ece'])} | ${f(r['shift.mean.introspective.ece'])} |`].join('\n');
}

/**
 * ConfidNet's extra training rows: a corrupted copy of each training image, so that the head
 * sees many misclassifications (the classifier fits its clean training images almost perfectly,
 * and the validation split holds ~1.4% errors). The rows are cut into batches; batch j gets,
 * in turn (j mod 4), a rotation by θ ~ U[−45°, 45°], a Gaussian blur with σ ~ U[0.5, 2] px,
 * additive Gaussian noise σ ~ U[0.1, 0.4] (clipped to [0, 1]) or a contrast factor
 * c ~ U[0.1, 0.6], one draw per batch from a seeded host generator. The test images are never
 * used; ConfidNet is evaluated on clean MNIST-test.
 */
export async function shiftedCopies(x: Tensor, bs: number, backend: Backend): Promise<Tensor> {
  const rand = rng(0x1b873593);
  let j = 0;
  const parts: Tensor[] = [];
  for (let s = 0; s < x.shape[0]; s += bs) {
    const n = Math.min(bs, x.shape[0] - s);
    const u = rand();
    const kind = j++ % 4;
    parts.push(tidy(() => noGrad(() => {
      const xb = x.slice([s], [n, 1, 28, 28]);
      if (kind === 0) return rotateImagesBy(xb, -45 + 90 * u);
      if (kind === 1) return gaussianBlur(xb, 0.5 + 1.5 * u);
      if (kind === 2) return minimum(maximum(xb.add(normal(xb.shape, { std: 0.1 + 0.3 * u, seed: 500 + j, backend })), 0), 1);
      return contrastImages(xb, 0.1 + 0.5 * u);
    })));
  }
  if (parts.length === 1) return parts[0];
  const out = concat(parts, 0);
  for (const p of parts) p.dispose();
  return out;
}

/** ConfidNet's training settings in the eval (Adam on the MSE to the true-class probability). */
export const CONFIDNET_FIT = { epochs: 20, lr: 1e-4 };

/**
 * The selection protocol's phase 1 (the official code: Adam 1e-4 on the MSE, one checkpoint per
 * epoch, the best validation AUPR-Error kept) and phase 2 (the fine-tuning of the encoder copy with
 * the head; a smaller rate, our choice: the official configs do not list their MNIST fine-tuning
 * settings).
 */
export const CONFIDNET_SEL_FIT = { epochs: 10, lr: 1e-4 };
export const CONFIDNET_FT_FIT = { epochs: 2, lr: 1e-5 };

/** Paired bootstrap resamples of the failure table (the same test-row indices for every method). */
export const FAILURE_BOOTSTRAP = { resamples: 1000, seed: 0 };

/**
 * Failure prediction on MNIST-test: MCP, MC-dropout entropy and variation ratio, ConfidNet (the
 * paper's head, `confidnet`, and our head on top of logit(MCP), `confidnetMcp`), the TCP oracle.
 * Both heads are trained on `ctx.val` (held out from the classifier) plus shifted copies of
 * training images ({@link shiftedCopies}) unless `confidnetSplit` says otherwise;
 * `failure.confidnet.{fitRows,fitOnHeldOut,fitErrorRate}` record the rows used. With the
 * default 'valAugmented' split, two more heads trained on the validation split alone are
 * reported as `confidnetVal` and `confidnetMcpVal` (the earlier protocol, for comparison).
 */
export async function evalFailure(ctx: GradientEvalContext): Promise<Results> {
  const log = ctx.log ?? (() => {});
  const bs = ctx.batchSize ?? 128;
  const nTr = ctx.nTrain ?? 2000;
  const nTe = ctx.nTest ?? ctx.test.count;
  const model = ctx.model.eval();
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
  const split = ctx.confidnetSplit ?? (ctx.val ? 'valAugmented' : 'train');
  if (split !== 'train' && !ctx.val) throw new Error(`evalFailure: confidnetSplit '${split}' needs ctx.val (a split the classifier was not trained on)`);
  // The fit sets: the chosen split, and (for 'valAugmented') the validation split alone too, so
  // the table shows what the shifted copies change. Suffix '' for the chosen one, 'Val' for the other.
  const fitSets: { suffix: string; split: 'val' | 'valAugmented' | 'train' }[] = ctx.confidnetHeads === false ? [] : [{ suffix: '', split }];
  if (split === 'valAugmented' && ctx.confidnetHeads !== false) fitSets.push({ suffix: 'Val', split: 'val' });
  const heads: [string, ConfidNet][] = [];
  const fitInfo: { rows: number; errors: number } = { rows: 0, errors: 0 };
  for (const fs of fitSets) {
    let xFit: Tensor;
    let fitLabels: Int32Array;
    if (fs.split === 'train') {
      const nFit = Math.min(nTr, ctx.train.count);
      xFit = images(ctx, ctx.train, nFit);
      fitLabels = ctx.train.labels.subarray(0, nFit);
    } else {
      const xVal = images(ctx, ctx.val!, ctx.val!.count);
      if (fs.split === 'val') {
        xFit = xVal;
        fitLabels = ctx.val!.labels;
      } else {
        const nAug = Math.min(ctx.confidnetAugmentedRows ?? 4000, ctx.train.count);
        const xTr = images(ctx, ctx.train, nAug);
        const aug = await shiftedCopies(xTr, bs, ctx.backend);
        xFit = concat([xVal, aug], 0);
        for (const t of [xVal, xTr, aug]) t.dispose();
        fitLabels = Int32Array.from([...ctx.val!.labels, ...ctx.train.labels.subarray(0, nAug)]);
      }
    }
    const nFit = xFit.shape[0];
    const fitErrors = 1 - (await accuracyOf(model, xFit, fitLabels, bs));
    if (fs.suffix === '') Object.assign(fitInfo, { rows: nFit, errors: fitErrors });
    // The paper's head, and our variant on top of logit(MCP) (head starting at zero: ĉ = MCP untrained).
    for (const [name, base] of [['confidnet', 'none'], ['confidnetMcp', 'mcp']] as const) {
      const t = performance.now();
      const cn = new ConfidNet({ name, base, features: (x) => model.penultimate(x), logits: (x) => model.forward(x) }, 84);
      await cn.fit({ x: xFit, labels: fitLabels, ...CONFIDNET_FIT, batchSize: bs });
      heads.push([name + fs.suffix, cn]);
      log(`  ${name + fs.suffix} (base ${base}) fitted on ${nFit} rows ('${fs.split}', ${(100 * fitErrors).toFixed(1)}% misclassified) (${((performance.now() - t) / 1000).toFixed(1)} s, final MSE ${cn.lastLoss.toExponential(3)})`);
    }
    xFit.dispose();
  }
  const neg = (a: Float64Array) => a.map((v) => -v);
  // The paper's protocol: heads trained on training rows, the epoch with the best AUPR-Error on
  // the validation split kept; then phase 2 on a copy of the LeNet. Scored on the test rows at once
  // (the phase-2 head continues from the selected phase-1 head).
  const selConfs: [string, Float64Array][] = [];
  const selInfo: Results = {};
  if (ctx.val && ctx.confidnetSelect !== false) {
    const selFit = ctx.confidnetSelFit ?? 'trainAugmented';
    const nSel = Math.min(ctx.confidnetSelRows ?? 2000, ctx.train.count);
    const xTr = images(ctx, ctx.train, nSel);
    let xFit = xTr;
    let fitLabels: Int32Array = ctx.train.labels.subarray(0, nSel);
    if (selFit === 'trainAugmented') {
      const aug = await shiftedCopies(xTr, bs, ctx.backend);
      xFit = concat([xTr, aug], 0);
      xTr.dispose();
      aug.dispose();
      fitLabels = Int32Array.from([...fitLabels, ...fitLabels]);
    }
    const xVal = images(ctx, ctx.val, ctx.val.count);
    const val = { x: xVal, labels: ctx.val.labels };
    const selErrors = 1 - (await accuracyOf(model, xFit, fitLabels, bs));
    Object.assign(selInfo, { 'failure.confidnetSel.fitRows': xFit.shape[0], 'failure.confidnetSel.fitErrorRate': selErrors, 'failure.confidnetSel.valErrors': ctx.val.count - Math.round(ctx.val.count * (await accuracyOf(model, xVal, ctx.val.labels, bs))) });
    {
      // MCP's AUPR-Error on the validation split: the reference for the selection criterion.
      const nV = ctx.val.count;
      const pv = new Float64Array(nV * 10);
      for (let s0 = 0; s0 < nV; s0 += bs) {
        const n = Math.min(bs, nV - s0);
        pv.set(await tidy(() => noGrad(() => softmax(model.forward(xVal.slice([s0], [n, 1, 28, 28])), 1))).data(), s0 * 10);
      }
      const mcpV = new Float64Array(nV);
      const okV = new Uint8Array(nV);
      for (let i = 0; i < nV; i++) {
        let k = 0;
        for (let j = 1; j < 10; j++) if (pv[i * 10 + j] > pv[i * 10 + k]) k = j;
        mcpV[i] = pv[i * 10 + k];
        okV[i] = k === ctx.val.labels[i] ? 1 : 0;
      }
      selInfo['failure.mcp.valAuprError'] = auprError(mcpV, okV);
      log(`  MCP on the validation split: AUPR-Error ${selInfo['failure.mcp.valAuprError'].toFixed(3)} (the selection criterion's reference)`);
    }
    const probsBefore = new Float64Array(probs);
    for (const [name, base] of [['confidnetSel', 'none'], ['confidnetMcpSel', 'mcp']] as const) {
      const t = performance.now();
      const cn = new ConfidNet({ name, base, features: (x) => model.penultimate(x), logits: (x) => model.forward(x) }, 84);
      await cn.fit({ x: xFit, labels: fitLabels, ...CONFIDNET_SEL_FIT, ...(ctx.confidnetSelEpochs ? { epochs: ctx.confidnetSelEpochs } : {}), batchSize: bs, val, selectBy: 'auprError' });
      selInfo[`failure.${name}.selectedEpoch`] = cn.selectedEpoch;
      selInfo[`failure.${name}.valAuprError`] = cn.valHistory[cn.selectedEpoch - 1];
      log(`  ${name} (base ${base}) fitted on ${xFit.shape[0]} rows ('${selFit}', ${(100 * selErrors).toFixed(1)}% misclassified), kept epoch ${cn.selectedEpoch} of ${cn.valHistory.length} by val AUPR-Error (${cn.valHistory.map((v) => v.toFixed(3)).join(' ')}) (${((performance.now() - t) / 1000).toFixed(1)} s)`);
      selConfs.push([name, neg(await scoreAll(cn, xTest, bs))]);
      if (base === 'none') {
        // Phase 2: a copy of the whole LeNet (only its conv trunk and the layers up to the
        // penultimate features are used and trained); the classifier itself is left as it is.
        const t2 = performance.now();
        const copy = new LeNet5();
        await copy.to(ctx.backend);
        copy.loadStateDict(model.stateDict());
        await cn.fineTune({
          x: xFit, labels: fitLabels, encoder: { module: copy, features: (x) => copy.penultimate(x) }, batchSize: bs, val, selectBy: 'auprError',
          ...CONFIDNET_FT_FIT, ...(ctx.confidnetFtEpochs ? { epochs: ctx.confidnetFtEpochs } : {}), ...(ctx.confidnetFtLr ? { lr: ctx.confidnetFtLr } : {}),
        });
        selInfo['failure.confidnetFt.selectedEpoch'] = cn.selectedEpoch;
        selInfo['failure.confidnetFt.valAuprError'] = cn.valHistory[cn.selectedEpoch - 1];
        log(`  confidnetFt (phase 2 from confidnetSel, encoder copy + head) kept epoch ${cn.selectedEpoch} of ${cn.valHistory.length} by val AUPR-Error (${cn.valHistory.map((v) => v.toFixed(3)).join(' ')}) (${((performance.now() - t2) / 1000).toFixed(1)} s)`);
        selConfs.push(['confidnetFt', neg(await scoreAll(cn, xTest, bs))]);
        copy.dispose();
        // The judged classifier must be untouched by the fine-tuning: same test probabilities.
        let same = 1;
        for (let s0 = 0; s0 < nTe; s0 += bs) {
          const n = Math.min(bs, nTe - s0);
          const p = await tidy(() => noGrad(() => softmax(model.forward(xTest.slice([s0], [n, 1, 28, 28])), 1))).data();
          for (let i = 0; i < p.length; i++) if (p[i] !== probsBefore[s0 * 10 + i]) same = 0;
        }
        selInfo['failure.confidnetFt.classifierUnchanged'] = same;
        if (!same) throw new Error('evalFailure: the classifier changed during ConfidNet fine-tuning');
      }
      for (const p of cn.head.parameters()) p.dispose();
    }
    xFit.dispose();
    xVal.dispose();
  }
  const confs: [string, Float64Array][] = [
    ['mcp', mcp],
    ['mcDropoutEntropy', neg(await scoreAll(mcDropoutDetector(model, { samples: 20, seed: 3, measure: 'predictiveEntropy' }), xTest, bs))],
    ['mcDropoutVariationRatio', neg(await scoreAll(mcDropoutDetector(model, { samples: 20, seed: 3, measure: 'variationRatio' }), xTest, bs))],
  ];
  for (const [id, cn] of heads) confs.push([id, neg(await scoreAll(cn, xTest, bs))]);
  confs.push(...selConfs);
  confs.push(['tcp', tcp]);
  model.eval();
  const r: Results = { 'failure.errors': nTe - correct.reduce((a, b) => a + b, 0), 'failure.confidnet.fitRows': fitInfo.rows, 'failure.confidnet.fitOnHeldOut': split === 'train' ? 0 : 1, 'failure.confidnet.fitErrorRate': fitInfo.errors, ...selInfo };
  // Paired percentile bootstrap over the test rows (the same resamples for every method):
  // AUPR-Error's 95% interval, and for the ConfidNet variants the interval of their difference to MCP.
  const resampled = (c: Float64Array, idx: Int32Array) => auprError(Float64Array.from(idx, (i) => c[i]), Uint8Array.from(idx, (i) => correct[i]));
  for (const [id, c] of confs) {
    r[`failure.${id}.auprError`] = auprError(c, correct);
    const ci = bootstrapInterval(nTe, (idx) => resampled(c, idx), FAILURE_BOOTSTRAP);
    r[`failure.${id}.auprErrorCi95Lo`] = ci.lo;
    r[`failure.${id}.auprErrorCi95Hi`] = ci.hi;
    if (id.startsWith('confidnet')) {
      const d = bootstrapInterval(nTe, (idx) => resampled(c, idx) - resampled(mcp, idx), FAILURE_BOOTSTRAP);
      r[`failure.${id}.auprErrorMinusMcpCi95Lo`] = d.lo;
      r[`failure.${id}.auprErrorMinusMcpCi95Hi`] = d.hi;
    }
    r[`failure.${id}.auprSuccess`] = auprSuccess(c, correct);
    r[`failure.${id}.fpr95`] = fprAtTpr(c, correct, { positive: 1, tpr: 0.95 });
    r[`failure.${id}.aurc`] = aurc(c, correct);
    log(`  failure.${id}: AUPR-Error ${r[`failure.${id}.auprError`].toFixed(4)} [${ci.lo.toFixed(3)}, ${ci.hi.toFixed(3)}]  AUPR-Success ${r[`failure.${id}.auprSuccess`].toFixed(4)}  FPR95 ${r[`failure.${id}.fpr95`].toFixed(4)}  AURC ${r[`failure.${id}.aurc`].toFixed(5)}`);
  }
  if (ctx.outDir) writeFailurePlots(ctx.outDir, confs, correct, log);
  for (const [, cn] of heads) for (const p of cn.head.parameters()) p.dispose();
  xTest.dispose();
  return r;
}

const FAILURE_COLORS: Record<string, string> = { mcp: '#1f77b4', mcDropoutEntropy: '#ff7f0e', mcDropoutVariationRatio: '#2ca02c', confidnet: '#d62728', confidnetMcp: '#9467bd', confidnetVal: '#e377c2', confidnetMcpVal: '#8c564b', confidnetSel: '#bcbd22', confidnetMcpSel: '#17becf', confidnetFt: '#000000', tcp: '#7f7f7f' };

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
  const nTrain = Number(arg('n-train', String(n)));
  const part = arg('part', 'all'); // all | ood | failure | shift (the introspective H alone)
  const cnSplit = arg('confidnet-split', 'valAugmented') as 'val' | 'valAugmented' | 'train';
  const cnAug = Number(arg('confidnet-aug', '4000'));
  const selEpochs = arg('confidnet-sel-epochs', '');
  const ftEpochs = arg('confidnet-ft-epochs', '');
  const ftLr = arg('confidnet-ft-lr', '');
  const hidden = arg('stage2-hidden', '');
  const epochs = arg('stage2-epochs', '');
  const mnist = await loadDemoData(0);
  const fashion = await loadFashionMnist({ split: { test: 2000, tune: 500 }, seed: 0 });
  const trained = await obtainModel(baseRecipe(Number(arg('epochs', '12')), 0), mnist.splits.train, mnist.splits.val, backend, { retrain: false, log: console.log });
  console.log(`LeNet ${trained.cached ? 'loaded from' : 'trained and saved to'} ${trained.path}; backend ${backend.name}; n = ${n}`);
  const ctx: GradientEvalContext = { model: trained.model, backend, train: mnist.splits.train, val: mnist.splits.val, test: mnist.splits.test, fashion: fashion.splits.test, nTrain, nTest: n, log: console.log,
    challenge: arg('challenge', 'attacks') as 'fgsm' | 'attacks', confounding: arg('confounding', STAGE2_CONFOUNDING) as 'softmax' | 'sigmoid', introspective: !argv.includes('--no-introspective'),
    confidnetSplit: cnSplit, confidnetAugmentedRows: cnAug,
    confidnetSelect: !argv.includes('--no-confidnet-select'), confidnetHeads: !argv.includes('--no-confidnet-heads'), confidnetSelFit: arg('confidnet-sel-fit', 'trainAugmented') as 'train' | 'trainAugmented', confidnetSelRows: Number(arg('confidnet-sel-rows', '2000')),
    ...(selEpochs ? { confidnetSelEpochs: Number(selEpochs) } : {}), ...(ftEpochs ? { confidnetFtEpochs: Number(ftEpochs) } : {}), ...(ftLr ? { confidnetFtLr: Number(ftLr) } : {}),
    stage2: { ...(hidden ? { hidden: Number(hidden) } : {}), ...(epochs ? { epochs: Number(epochs) } : {}) } };
  const t0 = performance.now();
  const results = part === 'shift' ? await evalIntrospective(ctx)
    : { ...(part !== 'failure' ? await evalGradientOod(ctx) : {}), ...(part !== 'ood' ? await evalFailure(ctx) : {}) };
  console.log(JSON.stringify(results, null, 1));
  console.log(shiftTable(results));
  console.log(`total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const out = arg('json', '');
  if (out) {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(out, JSON.stringify(results, null, 1));
  }
}
