/**
 * ConfidNet (Corbière, Thome, Bar-Hen, Cord & Pérez, "Addressing failure prediction by learning
 * model confidence", NeurIPS 2019).
 *
 * A confidence head on the FROZEN classifier's penultimate features f(x): five Linear layers
 * D → h → h → h → h → 1 with ReLU between them (the `uncertainty1..5` branch of the LeNet
 * variant, h = 400 by default) and a sigmoid at the output, ĉ(x) = sigmoid(head(f(x))). It is
 * trained to regress the true-class probability
 *
 *   TCP(x, y) = softmax(z(x))_y ,     loss = mean_b (ĉ_b − TCP_b)²   ({@link confidNetLoss}),
 *
 * on the training set (the paper's choice; pass a held-out split as `fit`'s data to train on that
 * instead — the classifier then never saw the points whose TCP the head learns). Only the head is
 * trained; the classifier's features and logits are computed without gradient.
 * As a {@link Detector}: score = −ĉ (higher = more likely a failure / more uncertain).
 */
import {
  ArgumentError,
  ShapeError,
  Tensor,
  argmax,
  composite,
  concat,
  fmtShape,
  fromHost,
  gather,
  keep,
  manualSeed,
  mean,
  noGrad,
  sigmoid,
  softmax,
  square,
  tidy,
} from '../engine/index.js';
import { NotFittedError } from './errors.js';
import { Linear } from '../nn/layers/linear.js';
import { ReLU } from '../nn/layers/activation.js';
import { Sequential } from '../nn/layers/container.js';
import { Adam } from '../nn/optim/adam.js';
import { type Detector, type DetectorInput, type ModelLike, type ScoredBatch, asModelFn, forEachBatch } from './detector.js';

/**
 * ConfidNet's loss: mean_b (ĉ_b − softmax(z_b)_{y_b})² for confidences ĉ [B] (after the sigmoid),
 * logits z [B, K] and int32 labels y [B]. The TCP target carries no gradient.
 */
export function confidNetLoss(confidence: Tensor, logits: Tensor, labels: Tensor): Tensor {
  if (logits.rank !== 2) throw new ShapeError(`confidNetLoss: expected logits [B, K], got ${fmtShape(logits.shape)}`);
  const B = logits.shape[0];
  if (confidence.rank !== 1 || confidence.shape[0] !== B) throw new ShapeError(`confidNetLoss: expected confidences [${B}], got ${fmtShape(confidence.shape)}`);
  if (labels.rank !== 1 || labels.shape[0] !== B || labels.dtype !== 'int32') throw new ShapeError(`confidNetLoss: expected int32 labels [${B}], got ${labels.dtype} ${fmtShape(labels.shape)}`);
  return composite(() => {
    const tcp = noGrad(() => gather(softmax(logits, 1), labels.reshape([B, 1]), 1).reshape([B]));
    return mean(square(confidence.sub(tcp)));
  });
}

export interface ConfidNetOptions {
  /** The frozen classifier's penultimate features, x → [B, D] (e.g. `(x) => lenet.penultimate(x)`). */
  features: ModelLike;
  /** The frozen classifier's logits, x → [B, K]. */
  logits: ModelLike;
  /** Hidden width of the head (default 400). */
  hidden?: number;
  name?: string;
}

export interface ConfidNetFitOptions {
  /** Training inputs (the classifier's training set, or a held-out split). */
  x: DetectorInput;
  /** Their class labels [N]. */
  labels: Tensor | ArrayLike<number>;
  epochs?: number;
  /** Adam learning rate (default 1e-4). */
  lr?: number;
  batchSize?: number;
  seed?: number;
}

/** The ConfidNet head and its detector; see the module comment. */
export class ConfidNet implements Detector {
  readonly name: string;
  readonly head: Sequential;
  private readonly featureFn: (x: Tensor) => Tensor;
  private readonly logitFn: (x: Tensor) => Tensor;
  private fitted = false;
  /** Mean training loss of the last epoch. */
  lastLoss = NaN;

  constructor(private readonly opts: ConfidNetOptions, inFeatures: number) {
    if (!Number.isInteger(inFeatures) || inFeatures < 1) throw new ArgumentError(`ConfidNet: inFeatures must be a positive integer, got ${inFeatures}`);
    const h = opts.hidden ?? 400;
    if (!Number.isInteger(h) || h < 1) throw new ArgumentError(`ConfidNet: hidden must be a positive integer, got ${h}`);
    this.name = opts.name ?? 'ConfidNet';
    this.featureFn = asModelFn(opts.features);
    this.logitFn = asModelFn(opts.logits);
    this.head = new Sequential(
      new Linear(inFeatures, h), new ReLU(), new Linear(h, h), new ReLU(), new Linear(h, h), new ReLU(), new Linear(h, h), new ReLU(), new Linear(h, 1),
    );
  }

  /** ĉ = sigmoid(head(f)) for penultimate features f [B, D] → [B]. */
  confidenceFromFeatures(f: Tensor): Tensor {
    return composite(() => sigmoid(this.head.forward(f)).reshape([f.shape[0]]));
  }

  /** ĉ(x) ∈ (0, 1), [B]: the predicted true-class probability. */
  confidence(x: Tensor): Tensor {
    return composite(() => this.confidenceFromFeatures(noGrad(() => this.featureFn(x))));
  }

  /** Trains the head (Adam on {@link confidNetLoss}); the classifier stays frozen. */
  async fit(data: ConfidNetFitOptions): Promise<this> {
    const bs = data.batchSize ?? 128;
    const feats: Tensor[] = [];
    const tcps: Tensor[] = [];
    const y = data.labels instanceof Tensor ? await data.labels.data() : data.labels;
    let row = 0;
    try {
      await forEachBatch(`${this.name}: fit`, data.x, bs, (x) => tidy(() => noGrad(() => {
        const B = x.shape[0];
        if (row + B > y.length) throw new ShapeError(`${this.name}: fit: ${y.length} labels for more input rows`);
        const lab = fromHost(Array.from({ length: B }, (_, i) => y[row + i]), [B, 1], 'int32', x.backend);
        tcps.push(keep(gather(softmax(this.logitFn(x), 1), lab, 1).reshape([B])));
        row += B;
        return this.featureFn(x);
      })), (f) => { feats.push(f.detach()); });
      if (row !== y.length) throw new ShapeError(`${this.name}: fit: ${y.length} labels for ${row} input rows`);
      const F = concat(feats, 0);
      const T = concat(tcps, 0);
      try {
        await this.train(F, T, data);
      } finally {
        F.dispose();
        T.dispose();
      }
    } finally {
      for (const t of [...feats, ...tcps]) t.dispose();
    }
    this.head.eval();
    this.fitted = true;
    return this;
  }

  private async train(F: Tensor, T: Tensor, data: ConfidNetFitOptions): Promise<void> {
    const N = F.shape[0];
    const be = F.backend;
    manualSeed(data.seed ?? 0);
    await this.head.to(be);
    const opt = new Adam(this.head.parameters(), { lr: data.lr ?? 1e-4 });
    const bs = Math.min(data.batchSize ?? 128, N);
    let s = ((data.seed ?? 0) ^ 0x85ebca6b) >>> 0;
    const rand = () => {
      let t = (s = (s + 0x6d2b79f5) >>> 0);
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const order = Int32Array.from({ length: N }, (_, i) => i);
    const epochs = data.epochs ?? 10;
    for (let e = 0; e < epochs; e++) {
      for (let i = N - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); const t = order[i]; order[i] = order[j]; order[j] = t; }
      const losses: Tensor[] = [];
      for (let st = 0; st < N; st += bs) {
        const idx = order.subarray(st, Math.min(N, st + bs));
        losses.push(tidy(() => {
          const ix = fromHost(idx, [idx.length], 'int32', be);
          opt.zeroGrad();
          const c = this.confidenceFromFeatures(F.indexSelect(0, ix));
          const loss = mean(square(c.sub(T.indexSelect(0, ix))));
          loss.backward();
          opt.step();
          return keep(loss.detach());
        }));
      }
      if (e === epochs - 1) {
        let tot = 0;
        for (const l of losses) tot += (await l.data())[0];
        this.lastLoss = tot / losses.length;
      }
      for (const l of losses) l.dispose();
    }
    opt.zeroGrad();
  }

  /** score = −ĉ(x), [B]: higher = more likely a misclassification. */
  score(x: Tensor): Tensor {
    if (!this.fitted) throw new NotFittedError(`${this.name}: not fitted; call fit({ x, labels }) first`);
    return composite(() => this.confidence(x).neg());
  }

  predict(x: Tensor): ScoredBatch {
    if (!this.fitted) throw new NotFittedError(`${this.name}: not fitted; call fit({ x, labels }) first`);
    return tidy(() => noGrad(() => {
      const z = this.logitFn(x);
      return { prediction: argmax(z, 1), score: this.confidenceFromFeatures(this.featureFn(x)).neg() };
    }));
  }
}
