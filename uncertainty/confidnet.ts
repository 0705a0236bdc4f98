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
 *
 * Option `base: 'mcp'` (our variant, not in the paper): ĉ(x) = sigmoid(logit(MCP(x)) + head(f(x)))
 * with logit(MCP) = z_max − log Σ_{k ≠ argmax} exp z_k ({@link mcpLogit}, the log-odds of the
 * maximum softmax probability computed without rounding it to 1) and the head's last layer
 * initialised at zero, so the untrained head returns MCP exactly and training only learns a
 * correction to it. Meant for small held-out splits with few errors, where a head learned from
 * scratch does not even reach MCP's ranking.
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
  max,
  mean,
  oneHot,
  logsumexp,
  zeros,
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

/**
 * logit(MCP) [B] for logits z [B, K] (K ≥ 2): log(p_max / (1 − p_max)) = z_max − logsumexp of the
 * other K − 1 logits, finite even where p_max rounds to 1.
 */
export function mcpLogit(logits: Tensor): Tensor {
  if (logits.rank !== 2 || logits.shape[1] < 2) throw new ShapeError(`mcpLogit: expected logits [B, K] with K ≥ 2, got ${fmtShape(logits.shape)}`);
  const [B, K] = logits.shape;
  return composite(() => {
    const others = logits.sub(oneHot(argmax(logits, 1), K, logits.dtype === 'float64' ? 'float64' : 'float32').mul(1e30));
    return max(logits, 1).sub(logsumexp(others, 1)).reshape([B]);
  });
}

export interface ConfidNetOptions {
  /** The frozen classifier's penultimate features, x → [B, D] (e.g. `(x) => lenet.penultimate(x)`). */
  features: ModelLike;
  /** The frozen classifier's logits, x → [B, K]. */
  logits: ModelLike;
  /** Hidden width of the head (default 400). */
  hidden?: number;
  /**
   * 'none' (default, the paper): ĉ = sigmoid(head(f)). 'mcp': ĉ = sigmoid(logit(MCP) + head(f)),
   * the head's last layer starting at zero (see the module comment).
   */
  base?: 'none' | 'mcp';
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
  readonly base: 'none' | 'mcp';
  /** Mean training loss of the last epoch. */
  lastLoss = NaN;

  constructor(private readonly opts: ConfidNetOptions, inFeatures: number) {
    if (!Number.isInteger(inFeatures) || inFeatures < 1) throw new ArgumentError(`ConfidNet: inFeatures must be a positive integer, got ${inFeatures}`);
    const h = opts.hidden ?? 400;
    if (!Number.isInteger(h) || h < 1) throw new ArgumentError(`ConfidNet: hidden must be a positive integer, got ${h}`);
    this.name = opts.name ?? 'ConfidNet';
    this.featureFn = asModelFn(opts.features);
    this.logitFn = asModelFn(opts.logits);
    this.base = opts.base ?? 'none';
    if (this.base !== 'none' && this.base !== 'mcp') throw new ArgumentError(`ConfidNet: base must be 'none' or 'mcp', got '${String(this.base)}'`);
    this.head = new Sequential(
      new Linear(inFeatures, h), new ReLU(), new Linear(h, h), new ReLU(), new Linear(h, h), new ReLU(), new Linear(h, h), new ReLU(), new Linear(h, 1),
    );
    if (this.base === 'mcp') this.head.loadStateDict({ '8.weight': zeros([1, h]), '8.bias': zeros([1]) }, { strict: false });
  }

  /**
   * ĉ = sigmoid(head(f) [+ baseLogit]) for penultimate features f [B, D] → [B]; `baseLogit` [B]
   * (logit(MCP), see {@link mcpLogit}) is required with `base: 'mcp'` and refused otherwise.
   */
  confidenceFromFeatures(f: Tensor, baseLogit?: Tensor): Tensor {
    if ((this.base === 'mcp') !== (baseLogit !== undefined)) {
      throw new ArgumentError(`${this.name}: confidenceFromFeatures: ${this.base === 'mcp' ? "base 'mcp' needs the logit(MCP) [B] of the rows" : "a base logit is only used with base 'mcp'"}`);
    }
    return composite(() => {
      const h = this.head.forward(f).reshape([f.shape[0]]);
      return sigmoid(baseLogit ? h.add(baseLogit) : h);
    });
  }

  /** ĉ(x) ∈ (0, 1), [B]: the predicted true-class probability. */
  confidence(x: Tensor): Tensor {
    return composite(() => {
      const f = noGrad(() => this.featureFn(x));
      return this.confidenceFromFeatures(f, this.base === 'mcp' ? noGrad(() => mcpLogit(this.logitFn(x))) : undefined);
    });
  }

  /** Trains the head (Adam on {@link confidNetLoss}); the classifier stays frozen. */
  async fit(data: ConfidNetFitOptions): Promise<this> {
    const bs = data.batchSize ?? 128;
    const feats: Tensor[] = [];
    const tcps: Tensor[] = [];
    const bases: Tensor[] = [];
    const y = data.labels instanceof Tensor ? await data.labels.data() : data.labels;
    let row = 0;
    try {
      await forEachBatch(`${this.name}: fit`, data.x, bs, (x) => tidy(() => noGrad(() => {
        const B = x.shape[0];
        if (row + B > y.length) throw new ShapeError(`${this.name}: fit: ${y.length} labels for more input rows`);
        const lab = fromHost(Array.from({ length: B }, (_, i) => y[row + i]), [B, 1], 'int32', x.backend);
        const z = this.logitFn(x);
        tcps.push(keep(gather(softmax(z, 1), lab, 1).reshape([B])));
        if (this.base === 'mcp') bases.push(keep(mcpLogit(z)));
        row += B;
        return this.featureFn(x);
      })), (f) => { feats.push(f.detach()); });
      if (row !== y.length) throw new ShapeError(`${this.name}: fit: ${y.length} labels for ${row} input rows`);
      const F = concat(feats, 0);
      const T = concat(tcps, 0);
      const M = bases.length ? concat(bases, 0) : null;
      try {
        await this.train(F, T, M, data);
      } finally {
        F.dispose();
        T.dispose();
        M?.dispose();
      }
    } finally {
      for (const t of [...feats, ...tcps, ...bases]) t.dispose();
    }
    this.head.eval();
    this.fitted = true;
    return this;
  }

  private async train(F: Tensor, T: Tensor, M: Tensor | null, data: ConfidNetFitOptions): Promise<void> {
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
          const c = this.confidenceFromFeatures(F.indexSelect(0, ix), M ? M.indexSelect(0, ix) : undefined);
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
      } else if (losses.length) {
        // One readback per epoch bounds the work queued on the device: without it thousands of
        // steps are submitted ahead of a slow adapter, and Dawn on lavapipe was seen to crash
        // (segfault) at ~1,900 queued steps (the gradients eval's stage-2 fit on 4,000 rows).
        await losses[losses.length - 1].data();
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
      return { prediction: argmax(z, 1), score: this.confidenceFromFeatures(this.featureFn(x), this.base === 'mcp' ? mcpLogit(z) : undefined).neg() };
    }));
  }
}
