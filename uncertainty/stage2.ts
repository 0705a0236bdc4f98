/**
 * The "stage-2" classifier H of the two-stage gradient methods (Lee & AlRegib's gradient OOD
 * detector, Prabhushankar & AlRegib's introspective learning): a small MLP on feature vectors
 * computed from a frozen network. Features are standardised with the training mean and standard
 * deviation (stored with H), then Linear(D, hidden) → ReLU → Linear(hidden, C), trained with Adam
 * on cross-entropy in mini-batches, all with the library's own ops.
 */
import {
  ArgumentError,
  ShapeError,
  Tensor,
  fmtShape,
  fromHost,
  keep,
  manualSeed,
  mean,
  noGrad,
  sqrt,
  tidy,
  variance,
} from '../engine/index.js';
import { NotFittedError } from './errors.js';
import { Linear } from '../nn/layers/linear.js';
import { ReLU } from '../nn/layers/activation.js';
import { Sequential } from '../nn/layers/container.js';
import { Adam } from '../nn/optim/adam.js';
import { crossEntropy } from '../nn/losses.js';
import { releaseOptimizer, runMinibatchEpochs } from './minibatch.js';

export interface Stage2Options {
  /** Hidden units (default 64). */
  hidden?: number;
  /** Passes over the training features (default 30). */
  epochs?: number;
  /** Adam learning rate (default 1e-3). */
  lr?: number;
  /** Rows per step (default 128). */
  batchSize?: number;
  /** Seeds the initialisation and the shuffling (default 0). */
  seed?: number;
  /** Adam weight decay (L2, default 0). */
  weightDecay?: number;
}

/** A small MLP classifier on precomputed features (the stage-2 network H). */
export class Stage2Classifier {
  private net: Sequential | null = null;
  private mu: Tensor | null = null;
  private sd: Tensor | null = null;
  /** Mean training loss of the last epoch. */
  lastLoss = NaN;

  constructor(readonly opts: Stage2Options = {}) {
    for (const k of ['hidden', 'epochs', 'batchSize'] as const) {
      const v = opts[k];
      if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new ArgumentError(`Stage2Classifier: ${k} must be a positive integer, got ${v}`);
    }
    if (opts.lr !== undefined && !(opts.lr > 0)) throw new ArgumentError(`Stage2Classifier: lr must be > 0, got ${opts.lr}`);
  }

  get isFitted(): boolean {
    return this.net !== null;
  }

  /**
   * Trains H on features [N, D] with integer labels in [0, numClasses). Resolves to `this`.
   * The caller keeps ownership of `features` and `labels`.
   */
  async fit(features: Tensor, labels: Tensor | ArrayLike<number>, numClasses: number): Promise<this> {
    if (features.rank !== 2 || features.shape[0] < 2) throw new ShapeError(`Stage2Classifier.fit: expected features [N ≥ 2, D], got ${fmtShape(features.shape)}`);
    if (!Number.isInteger(numClasses) || numClasses < 2) throw new ArgumentError(`Stage2Classifier.fit: numClasses must be an integer ≥ 2, got ${numClasses}`);
    const [N, D] = features.shape;
    const y = labels instanceof Tensor ? await labels.data() : labels;
    if (y.length !== N) throw new ShapeError(`Stage2Classifier.fit: ${y.length} labels for ${N} feature rows`);
    for (let i = 0; i < N; i++) if (!Number.isInteger(y[i]) || y[i] < 0 || y[i] >= numClasses) throw new ArgumentError(`Stage2Classifier.fit: label ${y[i]} at row ${i} is not in [0, ${numClasses})`);
    this.dispose();
    const be = features.backend;
    const seed = this.opts.seed ?? 0;
    manualSeed(seed);
    const hidden = this.opts.hidden ?? 64;
    const net = new Sequential(new Linear(D, hidden), new ReLU(), new Linear(hidden, numClasses));
    await net.to(be);
    if (features.dtype !== 'float32') await net.to(features.dtype);
    // tidy: the intermediates of the standard deviation (variance, +1e-12, sqrt) are freed.
    this.mu = keep(tidy(() => noGrad(() => mean(features, 0, true))));
    this.sd = keep(tidy(() => noGrad(() => sqrt(variance(features, 0, true).add(1e-12)).add(1e-6))));
    const opt = new Adam(net.parameters(), { lr: this.opts.lr ?? 1e-3, weightDecay: this.opts.weightDecay ?? 0 });
    const bs = Math.min(this.opts.batchSize ?? 128, N);
    const epochs = this.opts.epochs ?? 30;
    const yAll = fromHost(Int32Array.from(y), [N], 'int32', be);
    try {
      // Host-side shuffling (mulberry32 from the seed): the order is reproducible on every backend.
      this.lastLoss = await runMinibatchEpochs({
        rows: N, epochs, batchSize: bs, shuffleSeed: (seed ^ 0x9e3779b9) >>> 0, backend: be,
        step: (ix) => {
          const xb = features.indexSelect(0, ix).sub(this.mu!).div(this.sd!);
          opt.zeroGrad();
          const loss = crossEntropy(net.forward(xb), yAll.indexSelect(0, ix));
          loss.backward();
          opt.step();
          return loss;
        },
      });
    } finally {
      releaseOptimizer(opt);
      yAll.dispose();
    }
    net.eval();
    for (const p of net.parameters()) p.requiresGrad = false;
    this.net = net;
    return this;
  }

  /** Logits [B, C] of H for features [B, D]. */
  logits(features: Tensor): Tensor {
    if (!this.net) throw new NotFittedError('Stage2Classifier: not fitted; call fit(features, labels, numClasses) first');
    const D = this.mu!.shape[1];
    if (features.rank !== 2 || features.shape[1] !== D) throw new ShapeError(`Stage2Classifier.logits: expected features [B, ${D}], got ${fmtShape(features.shape)}`);
    return tidy(() => this.net!.forward(features.sub(this.mu!).div(this.sd!)));
  }

  /** Frees H's weights and statistics. */
  dispose(): void {
    if (this.net) for (const p of this.net.parameters()) p.dispose();
    this.mu?.dispose();
    this.sd?.dispose();
    this.net = this.mu = this.sd = null;
  }
}
