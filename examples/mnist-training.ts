/**
 * Shared pieces of the MNIST demo and eval: seeded data loading, shift augmentation, a LeNet
 * training loop with a cosine LR schedule, and batched evaluation.
 */
import {
  type Backend, type Tensor, Adam, CosineAnnealingLR, LeNet5, crossEntropy, keep, loadFashionMnist, loadMnist, noGrad,
  softmax, tensor, tidy, type ImageSet,
} from '../node.js';
import { randomBits } from '../engine/random/philox.js';

export const MNIST_SPLIT = { train: 8000, val: 1000, test: 1000 };

export async function loadDemoData(seed = 0) {
  const mnist = await loadMnist({ split: MNIST_SPLIT, seed, log: (m) => console.log(`  ${m}`) });
  return mnist;
}

export async function loadFashion(count: number, seed = 0): Promise<ImageSet> {
  const f = await loadFashionMnist({ limit: count, seed, log: (m) => console.log(`  ${m}`) });
  return f.splits.all;
}

/** Seeded Fisher–Yates permutation from Philox bits. */
export function permutation(n: number, seed: number, offset: number): Int32Array {
  const bits = randomBits(n, seed, offset);
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = bits[i] % (i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** Gathers a batch into [B,1,28,28], shifting each image by up to ±maxShift pixels (zero fill). */
export function gatherBatch(set: ImageSet, idx: ArrayLike<number>, maxShift: number, seed: number, offset: number): { x: Float32Array; y: Int32Array } {
  const B = idx.length;
  const x = new Float32Array(B * 784);
  const y = new Int32Array(B);
  const r = maxShift > 0 ? randomBits(2 * B, seed, offset) : null;
  for (let b = 0; b < B; b++) {
    const src = idx[b] * 784;
    y[b] = set.labels[idx[b]];
    const dy = r ? (r[2 * b] % (2 * maxShift + 1)) - maxShift : 0;
    const dx = r ? (r[2 * b + 1] % (2 * maxShift + 1)) - maxShift : 0;
    for (let i = 0; i < 28; i++) {
      const si = i - dy;
      if (si < 0 || si >= 28) continue;
      for (let j = 0; j < 28; j++) {
        const sj = j - dx;
        if (sj < 0 || sj >= 28) continue;
        x[b * 784 + i * 28 + j] = set.images[src + si * 28 + sj];
      }
    }
  }
  return { x, y };
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  maxShift: number;
  backend: Backend;
  log?: (line: string) => void;
}

/** Trains a LeNet-5 with Adam + cosine schedule and shift augmentation. Returns per-epoch stats and the mean wall time per step. */
export async function trainLeNet(model: LeNet5, train: ImageSet, val: ImageSet | null, o: TrainOptions) {
  const opt = new Adam(model.parameters(), { lr: o.lr });
  const sched = new CosineAnnealingLR(opt, o.epochs);
  const steps = Math.floor(train.count / o.batchSize);
  let trainMs = 0;
  const history: { epoch: number; loss: number; valAcc: number | null; seconds: number }[] = [];
  const tty = typeof process !== 'undefined' && process.stdout.isTTY;
  for (let e = 0; e < o.epochs; e++) {
    model.train();
    const t0 = performance.now();
    const perm = permutation(train.count, o.seed, e * 1_000_000);
    const losses: Tensor[] = [];
    const tTrain = performance.now();
    for (let s = 0; s < steps; s++) {
      const idx = perm.subarray(s * o.batchSize, (s + 1) * o.batchSize);
      const { x, y } = gatherBatch(train, idx, o.maxShift, o.seed + 1, e * 1_000_000 + s * o.batchSize);
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
      if (s % 25 === 24 || s === steps - 1) {
        // Reading a loss back bounds the queue of submitted work and gives honest step times.
        await loss.data();
        if (tty) process.stdout.write(`\r  epoch ${e + 1}/${o.epochs}  step ${s + 1}/${steps}`);
      }
    }
    const lossVals = await Promise.all(losses.map((l) => l.item()));
    losses.forEach((l) => l.dispose());
    trainMs += performance.now() - tTrain;
    sched.step();
    const meanLoss = lossVals.reduce((a, b) => a + b, 0) / lossVals.length;
    const valAcc = val ? (await evaluateAccuracy(model, val, 500, o.backend)).accuracy : null;
    const seconds = (performance.now() - t0) / 1000;
    history.push({ epoch: e + 1, loss: meanLoss, valAcc, seconds });
    if (tty) process.stdout.write('\r');
    o.log?.(`  epoch ${String(e + 1).padStart(2)}/${o.epochs}  loss ${meanLoss.toFixed(4)}${valAcc !== null ? `  val acc ${(valAcc * 100).toFixed(2)}%` : ''}  (${seconds.toFixed(1)} s)`);
  }
  // Wall time of the training steps (GPU work included: losses are read back), per step.
  return { history, msPerStep: trainMs / (steps * o.epochs) };
}

/** Softmax probabilities for a whole set, in batches (eval mode unless the caller changed it). */
export async function predictProbs(model: (x: Tensor) => Tensor, set: ImageSet, batch: number, backend: Backend): Promise<Float32Array> {
  const out = new Float32Array(set.count * 10);
  for (let s = 0; s < set.count; s += batch) {
    const n = Math.min(batch, set.count - s);
    const p = noGrad(() => tidy(() => softmax(model(tensor(set.images.subarray(s * 784, (s + n) * 784), [n, 1, 28, 28], { backend })), -1)));
    out.set(await p.data(), s * 10);
    p.dispose();
  }
  return out;
}

export async function evaluateAccuracy(model: LeNet5, set: ImageSet, batch: number, backend: Backend) {
  model.eval();
  const probs = await predictProbs((x) => model.forward(x), set, batch, backend);
  let correct = 0;
  for (let i = 0; i < set.count; i++) {
    let best = 0;
    for (let k = 1; k < 10; k++) if (probs[i * 10 + k] > probs[i * 10 + best]) best = k;
    if (best === set.labels[i]) correct++;
  }
  return { accuracy: correct / set.count, probs };
}

/** Fraction of rows whose max probability exceeds each threshold. */
export function confidentFraction(probs: Float32Array, thresholds: number[]): number[] {
  const n = probs.length / 10;
  return thresholds.map((t) => {
    let c = 0;
    for (let i = 0; i < n; i++) {
      let m = 0;
      for (let k = 0; k < 10; k++) m = Math.max(m, probs[i * 10 + k]);
      if (m > t) c++;
    }
    return c / n;
  });
}
