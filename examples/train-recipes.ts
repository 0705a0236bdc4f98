/**
 * The training loop of the eval's recipe comparison (examples/eval-recipes.ts): the loop of
 * `trainLeNet` (examples/mnist-training.ts: seeded permutation per epoch, Philox augmentation,
 * cross-entropy, cosine learning-rate decay per epoch) with the optimiser and the augmentation as
 * recipe choices, so that a plain SGD recipe and an augmented Adam recipe differ only in what
 * the recipe says. Kept in its own file: the checkpoint fingerprint hashes this file's text.
 */
import {
  Adam, type Backend, CosineAnnealingLR, type ImageSet, type LeNet5, SGD, type Tensor, crossEntropy, keep, tensor, tidy,
} from '../node.js';
import { type Augment, evaluateAccuracy, gatherBatch, permutation } from './mnist-training.js';

export interface RecipeTrainOptions {
  epochs: number;
  batchSize: number;
  optimizer: 'sgd' | 'adam';
  lr: number;
  /** SGD momentum (ignored by Adam). */
  momentum: number;
  /** L2 weight decay added to the gradient (SGD and Adam; PyTorch's coupled form); default 0. */
  weightDecay?: number;
  /** null = no augmentation. */
  augment: Augment | null;
  seed: number;
  backend: Backend;
  log?: (line: string) => void;
}

export async function trainRecipe(model: LeNet5, train: ImageSet, val: ImageSet | null, o: RecipeTrainOptions) {
  const opt = o.optimizer === 'sgd' ? new SGD(model.parameters(), { lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay ?? 0 })
    : new Adam(model.parameters(), { lr: o.lr, weightDecay: o.weightDecay ?? 0 });
  const sched = new CosineAnnealingLR(opt, o.epochs);
  const steps = Math.floor(train.count / o.batchSize);
  const history: { epoch: number; loss: number; valAcc: number | null; seconds: number }[] = [];
  for (let e = 0; e < o.epochs; e++) {
    model.train();
    const t0 = performance.now();
    const perm = permutation(train.count, o.seed, e * 1_000_000);
    const losses: Tensor[] = [];
    for (let s = 0; s < steps; s++) {
      const idx = perm.subarray(s * o.batchSize, (s + 1) * o.batchSize);
      const { x, y } = gatherBatch(train, idx, o.augment ?? 0, o.seed + 1, e * 1_000_000 + s * o.batchSize);
      const loss = tidy(() => {
        opt.zeroGrad();
        const xb = tensor(x, [idx.length, 1, 28, 28], { backend: o.backend });
        const yb = tensor(y, [idx.length], { dtype: 'int32', backend: o.backend });
        const l = crossEntropy(model.forward(xb), yb);
        l.backward();
        opt.step();
        return l.detach();
      });
      losses.push(keep(loss));
      if (s % 25 === 24) await loss.data(); // bounds the queue of submitted work
    }
    const lossVals = await Promise.all(losses.map((l) => l.item()));
    losses.forEach((l) => l.dispose());
    sched.step();
    const meanLoss = lossVals.reduce((a, b) => a + b, 0) / lossVals.length;
    const valAcc = val ? (await evaluateAccuracy(model, val, 500, o.backend)).accuracy : null;
    const seconds = (performance.now() - t0) / 1000;
    history.push({ epoch: e + 1, loss: meanLoss, valAcc, seconds });
    o.log?.(`  epoch ${String(e + 1).padStart(2)}/${o.epochs}  loss ${meanLoss.toFixed(4)}${valAcc !== null ? `  val acc ${(valAcc * 100).toFixed(2)}%` : ''}  (${seconds.toFixed(1)} s)`);
  }
  return { history };
}
