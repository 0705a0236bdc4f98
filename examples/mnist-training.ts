/**
 * Shared pieces of the MNIST demo and eval: seeded data loading, shift augmentation, a LeNet
 * training loop with a cosine LR schedule, and batched evaluation.
 */
import {
  type Backend, type Tensor, Adam, CosineAnnealingLR, DeepEnsemble, LeNet5, crossEntropy, keep, loadFashionMnist, loadMnist, noGrad,
  randomBits, seededPermutation, softmax, tensor, tidy, type ImageSet,
} from '../node.js';
import { progress } from '../cli/progress.js';

export const MNIST_SPLIT = { train: 8000, val: 1000, test: 1000 };

export async function loadDemoData(seed = 0) {
  const mnist = await loadMnist({ split: MNIST_SPLIT, seed, log: (m) => console.log(`  ${m}`) });
  return mnist;
}

export async function loadFashion(count: number, seed = 0): Promise<ImageSet> {
  const f = await loadFashionMnist({ limit: count, seed, log: (m) => console.log(`  ${m}`) });
  return f.splits.all;
}

/** Seeded Fisher–Yates permutation from Philox bits (the library's `seededPermutation`). */
export const permutation = seededPermutation;

export interface Augment {
  /** Largest shift in pixels (uniform in ±maxShift). */
  maxShift: number;
  /** Largest rotation in degrees (uniform in ±maxRotate). */
  maxRotate?: number;
  /** Largest relative scale change (scale uniform in 1 ± maxScale). */
  maxScale?: number;
}

/**
 * Gathers a batch into [B,1,28,28] with a random affine augmentation per image (rotation about
 * the centre, scaling, shift; bilinear sampling, zero fill). Randomness: Philox (seed, offset).
 */
export function gatherBatch(set: ImageSet, idx: ArrayLike<number>, aug: Augment | number, seed: number, offset: number): { x: Float32Array; y: Int32Array } {
  const a: Augment = typeof aug === 'number' ? { maxShift: aug } : aug;
  const B = idx.length;
  const x = new Float32Array(B * 784);
  const y = new Int32Array(B);
  const identity = a.maxShift === 0 && !a.maxRotate && !a.maxScale;
  const r = identity ? null : randomBits(4 * B, seed, offset);
  const u = (k: number) => (r ? (r[k] >>> 8) / 16777216 : 0.5) * 2 - 1; // uniform in [-1, 1)
  for (let b = 0; b < B; b++) {
    const src = idx[b] * 784;
    y[b] = set.labels[idx[b]];
    if (identity) {
      x.set(set.images.subarray(src, src + 784), b * 784);
      continue;
    }
    const th = (u(4 * b) * (a.maxRotate ?? 0) * Math.PI) / 180;
    const sc = 1 + u(4 * b + 1) * (a.maxScale ?? 0);
    const tx = u(4 * b + 2) * a.maxShift;
    const ty = u(4 * b + 3) * a.maxShift;
    // Output pixel (i, j) samples the source at the inverse transform of its centre offset.
    const c = Math.cos(th) / sc;
    const s = Math.sin(th) / sc;
    for (let i = 0; i < 28; i++) {
      for (let j = 0; j < 28; j++) {
        const dx = j - 13.5 - tx;
        const dy = i - 13.5 - ty;
        const sx = c * dx + s * dy + 13.5;
        const sy = -s * dx + c * dy + 13.5;
        const x0 = Math.floor(sx);
        const y0 = Math.floor(sy);
        const fx = sx - x0;
        const fy = sy - y0;
        let v = 0;
        for (let q = 0; q < 4; q++) {
          const xx = x0 + (q & 1);
          const yy = y0 + (q >> 1);
          if (xx < 0 || xx >= 28 || yy < 0 || yy >= 28) continue;
          const w = ((q & 1) ? fx : 1 - fx) * ((q >> 1) ? fy : 1 - fy);
          v += w * set.images[src + yy * 28 + xx];
        }
        x[b * 784 + i * 28 + j] = v;
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
  /** Random affine augmentation (default: shifts only, `maxShift` px). */
  augment?: Augment;
  /** Shorthand for `augment: { maxShift }`. */
  maxShift?: number;
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
  for (let e = 0; e < o.epochs; e++) {
    const bar = o.log ? progress(`epoch ${e + 1}/${o.epochs}`, steps) : null;
    model.train();
    const t0 = performance.now();
    const perm = permutation(train.count, o.seed, e * 1_000_000);
    const losses: Tensor[] = [];
    const tTrain = performance.now();
    for (let s = 0; s < steps; s++) {
      const idx = perm.subarray(s * o.batchSize, (s + 1) * o.batchSize);
      const { x, y } = gatherBatch(train, idx, o.augment ?? { maxShift: o.maxShift ?? 0 }, o.seed + 1, e * 1_000_000 + s * o.batchSize);
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
        const l = await loss.data();
        bar?.tick({ loss: l[0].toFixed(4) }, 0);
      }
      bar?.tick();
    }
    const lossVals = await Promise.all(losses.map((l) => l.item()));
    losses.forEach((l) => l.dispose());
    trainMs += performance.now() - tTrain;
    sched.step();
    const meanLoss = lossVals.reduce((a, b) => a + b, 0) / lossVals.length;
    const valAcc = val ? (await evaluateAccuracy(model, val, 500, o.backend)).accuracy : null;
    const seconds = (performance.now() - t0) / 1000;
    history.push({ epoch: e + 1, loss: meanLoss, valAcc, seconds });
    bar?.done(null);
    o.log?.(`  epoch ${String(e + 1).padStart(2)}/${o.epochs}  loss ${meanLoss.toFixed(4)}${valAcc !== null ? `  val acc ${(valAcc * 100).toFixed(2)}%` : ''}  (${seconds.toFixed(1)} s)`);
  }
  // Wall time of the training steps (GPU work included: losses are read back), per step.
  return { history, msPerStep: trainMs / (steps * o.epochs) };
}

/**
 * Trains M LeNet-5s with {@link trainLeNet}'s recipe (Adam + cosine schedule, augmentation), all
 * in ONE stacked step per batch (`DeepEnsemble.trainer`): member m shuffles and augments with its
 * own seed `seeds[m]` exactly as `trainLeNet` would, and gets its own dropout rows (drawn from the
 * global generator). Writes the trained weights back into `models`. Returns per-member
 * histories and the mean wall time per stacked step.
 */
export async function trainLeNetEnsemble(models: LeNet5[], train: ImageSet, val: ImageSet | null, o: Omit<TrainOptions, 'seed'> & { seeds: number[] }) {
  const M = models.length;
  if (o.seeds.length !== M) throw new Error(`trainLeNetEnsemble: ${M} models but ${o.seeds.length} seeds`);
  for (const m of models) m.train();
  const ens = new DeepEnsemble(models);
  const trainer = ens.trainer({ optimizer: (p) => new Adam(p, { lr: o.lr }) });
  const sched = new CosineAnnealingLR(trainer.optimizer, o.epochs);
  const B = o.batchSize;
  const steps = Math.floor(train.count / B);
  let trainMs = 0;
  const histories = models.map(() => [] as { epoch: number; loss: number; valAcc: number | null; seconds: number }[]);
  const xs = new Float32Array(M * B * 784);
  const ys = new Int32Array(M * B);
  for (let e = 0; e < o.epochs; e++) {
    const t0 = performance.now();
    const perms = o.seeds.map((seed) => permutation(train.count, seed, e * 1_000_000));
    const losses: Tensor[] = [];
    const bar = o.log ? progress(`epoch ${e + 1}/${o.epochs} (${M} members stacked)`, steps) : null;
    for (let s = 0; s < steps; s++) {
      for (let m = 0; m < M; m++) {
        const idx = perms[m].subarray(s * B, (s + 1) * B);
        const { x, y } = gatherBatch(train, idx, o.augment ?? { maxShift: o.maxShift ?? 0 }, o.seeds[m] + 1, e * 1_000_000 + s * B);
        xs.set(x, m * B * 784);
        ys.set(y, m * B);
      }
      const loss = tidy(() => trainer.step(tensor(xs, [M, B, 1, 28, 28], { backend: o.backend }), tensor(ys, [M, B], { dtype: 'int32', backend: o.backend })));
      losses.push(keep(loss));
      if (s % 25 === 24 || s === steps - 1) {
        await loss.data();
      }
      bar?.tick();
    }
    const lossVals = await Promise.all(losses.map((l) => l.data()));
    losses.forEach((l) => l.dispose());
    trainMs += performance.now() - t0;
    sched.step();
    trainer.writeBack();
    for (let m = 0; m < M; m++) {
      const meanLoss = lossVals.reduce((a, l) => a + l[m], 0) / lossVals.length;
      const valAcc = val ? (await evaluateAccuracy(models[m], val, 500, o.backend)).accuracy : null;
      models[m].train();
      histories[m].push({ epoch: e + 1, loss: meanLoss, valAcc, seconds: (performance.now() - t0) / 1000 });
    }
    bar?.done(null);
    o.log?.(`  epoch ${String(e + 1).padStart(2)}/${o.epochs}  loss ${histories.map((h) => h[e].loss.toFixed(4)).join(' / ')}${val ? `  val acc ${histories.map((h) => ((h[e].valAcc ?? 0) * 100).toFixed(2)).join(' / ')}%` : ''}  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
  trainer.dispose();
  return { histories, msPerStep: trainMs / (steps * o.epochs) };
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
