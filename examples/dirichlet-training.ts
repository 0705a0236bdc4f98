/**
 * Training with outliers for the `dirichlet` eval group (examples/eval-dirichlet.ts): a LeNet-5
 * trained as the eval's single LeNet is (`trainLeNet` in examples/mnist-training.ts: Adam, cosine
 * schedule, random affine augmentation, the same batches of in-distribution images in the same
 * order), except that every step also sees `outlierBatch` training outliers, concatenated after
 * the B in-distribution rows into one forward pass, and the loss is one of
 *
 * - 'prior': the prior-network loss (Malinin & Gales 2018), α = exp(clamp(z)) and, per row,
 *   KL(Dir(β) ‖ Dir(α)) ('forward') or KL(Dir(α) ‖ Dir(β)) ('reverse', Malinin & Gales 2019)
 *   with β = 1 + c·onehot(y) for the in-distribution rows and the flat β = 1 for the outlier
 *   rows; the mean over all B + B_out rows (`priorNetworkLoss`);
 * - 'oe': outlier exposure (Hendrycks, Mazeika & Dietterich 2019) for the ordinary softmax net,
 *   mean CE on the in-distribution rows + λ · mean CE-to-uniform on the outlier rows
 *   (`outlierExposureLoss`).
 *
 * The checkpoints of these models are keyed by a hash of this file's text (see eval-dirichlet.ts),
 * so an edit here retrains them and an edit of the report code does not.
 */
import {
  Adam, type Backend, CosineAnnealingLR, type ImageSet, type LeNet5, type Tensor, keep, outlierExposureLoss, priorNetworkAlpha, priorNetworkLoss,
  slice, tensor, tidy,
} from '../node.js';
import { progress } from '../cli/progress.js';
import { type Augment, evaluateAccuracy, gatherBatch, permutation } from './mnist-training.js';

export type OutlierLoss = { kind: 'prior'; targetConcentration: number; divergence: 'forward' | 'reverse' } | { kind: 'oe'; lambda: number };

export interface OutlierTrainOptions {
  epochs: number;
  /** In-distribution rows per step (the eval LeNet's 64). */
  batchSize: number;
  /** Outlier rows per step, appended to each batch. */
  outlierBatch: number;
  lr: number;
  /** Data order and augmentation of the in-distribution images exactly as `trainLeNet` with this seed. */
  seed: number;
  augment: Augment;
  loss: OutlierLoss;
  backend: Backend;
  log?: (line: string) => void;
}

export interface OutlierHistory { epoch: number; loss: number; valAcc: number | null; seconds: number }

/**
 * Trains `model` on `train` (in distribution) plus `outliers` with the loss of `o.loss`. The
 * outliers are reshuffled every epoch (Philox stream seed + 2) and cycled when one epoch needs
 * more of them than there are; they get the same augmentation as the digits (stream seed + 3).
 */
export async function trainWithOutliers(model: LeNet5, train: ImageSet, outliers: ImageSet, val: ImageSet | null, o: OutlierTrainOptions): Promise<{ history: OutlierHistory[] }> {
  if (outliers.count === 0) throw new Error('trainWithOutliers: the outlier set is empty');
  const opt = new Adam(model.parameters(), { lr: o.lr });
  const sched = new CosineAnnealingLR(opt, o.epochs);
  const B = o.batchSize;
  const Bo = o.outlierBatch;
  const steps = Math.floor(train.count / B);
  const history: OutlierHistory[] = [];
  const xs = new Float32Array((B + Bo) * 784);
  const ys = new Int32Array(B + Bo); // outlier rows: class 0, ignored by both losses
  const oodMask = new Float32Array(B + Bo).fill(1, B);
  for (let e = 0; e < o.epochs; e++) {
    const bar = o.log ? progress(`epoch ${e + 1}/${o.epochs}`, steps) : null;
    model.train();
    const t0 = performance.now();
    const perm = permutation(train.count, o.seed, e * 1_000_000);
    const permOut = permutation(outliers.count, o.seed + 2, e * 1_000_000);
    const losses: Tensor[] = [];
    for (let s = 0; s < steps; s++) {
      const idx = perm.subarray(s * B, (s + 1) * B);
      const inBatch = gatherBatch(train, idx, o.augment, o.seed + 1, e * 1_000_000 + s * B);
      const oIdx = Int32Array.from({ length: Bo }, (_, j) => permOut[(s * Bo + j) % outliers.count]);
      const outBatch = gatherBatch(outliers, oIdx, o.augment, o.seed + 3, e * 1_000_000 + s * Bo);
      xs.set(inBatch.x, 0);
      xs.set(outBatch.x, B * 784);
      ys.set(inBatch.y, 0);
      const loss = tidy(() => {
        opt.zeroGrad();
        const x = tensor(xs, [B + Bo, 1, 28, 28], { backend: o.backend });
        const z = model.forward(x);
        let l: Tensor;
        if (o.loss.kind === 'prior') {
          const y = tensor(ys, [B + Bo], { dtype: 'int32', backend: o.backend });
          const ood = tensor(oodMask, [B + Bo], { backend: o.backend });
          l = priorNetworkLoss(priorNetworkAlpha(z), y, { ood, targetConcentration: o.loss.targetConcentration, divergence: o.loss.divergence });
        } else {
          const y = tensor(inBatch.y, [B], { dtype: 'int32', backend: o.backend });
          l = outlierExposureLoss(slice(z, [0, 0], [B, z.shape[1]]), y, slice(z, [B, 0], [Bo, z.shape[1]]), { lambda: o.loss.lambda });
        }
        l.backward();
        opt.step();
        return l.detach();
      });
      losses.push(keep(loss));
      if (s % 25 === 24 || s === steps - 1) {
        const l = await loss.data(); // bounds the queue of submitted work
        bar?.tick({ loss: l[0].toFixed(4) }, 0);
      }
      bar?.tick();
    }
    const lossVals = await Promise.all(losses.map((l) => l.item()));
    losses.forEach((l) => l.dispose());
    sched.step();
    const meanLoss = lossVals.reduce((a, b) => a + b, 0) / lossVals.length;
    if (!Number.isFinite(meanLoss)) throw new Error(`trainWithOutliers: the ${o.loss.kind} loss became ${meanLoss} in epoch ${e + 1}`);
    // argmax of exp(z) is argmax z: the same accuracy code serves the prior network.
    const valAcc = val ? (await evaluateAccuracy(model, val, 500, o.backend)).accuracy : null;
    const seconds = (performance.now() - t0) / 1000;
    history.push({ epoch: e + 1, loss: meanLoss, valAcc, seconds });
    bar?.done(null);
    o.log?.(`  epoch ${String(e + 1).padStart(2)}/${o.epochs}  ${o.loss.kind} loss ${meanLoss.toFixed(4)}${valAcc !== null ? `  val acc ${(valAcc * 100).toFixed(2)}%` : ''}  (${seconds.toFixed(1)} s)`);
  }
  return { history };
}
