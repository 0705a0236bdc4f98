/**
 * Latent-histogram debiasing: DB-VAE (Amini, Soleimany, Schwarting, Bhatia & Rus, "Uncovering
 * and Mitigating Algorithmic Bias through Learned Latent Structure", AIES 2019). See
 * docs/methods.md, "Bias and class imbalance".
 *
 * A classifier shares its encoder with a VAE branch. The VAE's latent means z(x) ∈ ℝ^d describe
 * each training input; per latent dimension i a histogram Q̂_i of the training latents estimates
 * how common a value is, and the training set is resampled with
 *
 *     W(x) ∝ Π_i 1 / (Q̂_i(z_i(x)) + α)
 *
 * so inputs whose latent values are rare (an under-represented style, say) are drawn more often.
 * α > 0 is the debiasing knob: α → ∞ gives uniform sampling (no debiasing), small α strong
 * debiasing. The histograms and weights are recomputed from the current encoder every epoch.
 *
 * Conventions here: Q̂_i(b) is the FRACTION of training latents in bin b of dimension i (equal
 * width bins over [min_i, max_i], bin b = [e_b, e_{b+1}), the last bin closed; values outside
 * the fitted range fall in the first / last bin), so Σ_b Q̂_i(b) = 1. The product is computed
 * as a sum of logs (no underflow for many dimensions) and the weights are normalised to sum 1.
 */
import {
  ArgumentError, composite, type DType, fmtShape, fromHost, ge, keep, mul, noGrad, normal, reshape, ShapeError, sum, type Tensor, tidy, add, exp,
} from '../engine/index.js';
import {
  Adam, bceWithLogits, Conv2d, crossEntropy, DataLoader, Flatten, klDivDiagonalGaussians, Linear, MaxPool2d, Module, type Optimizer, ReLU, Sequential, WeightedSampler,
} from '../nn/index.js';
import { NotFittedError } from './errors.js';

export interface HistogramOptions {
  /** Bins per latent dimension (default 10). */
  bins?: number;
}

function checkBins(op: string, bins: number): void {
  if (!Number.isInteger(bins) || bins < 1) throw new ArgumentError(`${op}: bins must be a positive integer, got ${bins}`);
}

/** α must be a positive finite number (α ≤ 0 would divide by a zero histogram mass). */
export function checkAlpha(op: string, alpha: number): void {
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) throw new ArgumentError(`${op}: alpha must be a finite number > 0 (the debiasing knob), got ${alpha}`);
}

/**
 * Per-dimension histograms Q̂_i of a set of latent vectors (rows of a [n, d] array), and the
 * lookups the debiasing needs: the mass Q̂_i(z_i) of any latent vector, the weights W and the
 * rarity score −Σ_i log(Q̂_i(z_i) + α).
 */
export class LatentHistogram {
  private constructor(
    /** Latent dimensions d. */
    readonly dims: number,
    readonly bins: number,
    /** Lower edge per dimension (min of the fitted values). */
    readonly lo: Float64Array,
    /** Bin width per dimension (0 when all fitted values were equal: one occupied bin). */
    readonly width: Float64Array,
    /** Q̂_i(b) at [i·bins + b]: the fraction of fitted rows in bin b of dimension i. */
    readonly mass: Float64Array,
  ) {}

  /** Builds the histograms from `z`, a row-major [n, dims] array. */
  static fit(z: ArrayLike<number>, dims: number, opts: HistogramOptions = {}): LatentHistogram {
    const op = 'LatentHistogram.fit';
    const bins = opts.bins ?? 10;
    checkBins(op, bins);
    if (!Number.isInteger(dims) || dims < 1) throw new ArgumentError(`${op}: dims must be a positive integer, got ${dims}`);
    if (z.length === 0 || z.length % dims !== 0) throw new ShapeError(`${op}: expected a non-empty [n, ${dims}] array, got ${z.length} values`);
    const n = z.length / dims;
    const lo = new Float64Array(dims).fill(Infinity);
    const hi = new Float64Array(dims).fill(-Infinity);
    for (let r = 0; r < n; r++) {
      for (let i = 0; i < dims; i++) {
        const v = z[r * dims + i];
        if (!Number.isFinite(v)) throw new ArgumentError(`${op}: latent value [${r}, ${i}] is ${v}; expected finite numbers`);
        if (v < lo[i]) lo[i] = v;
        if (v > hi[i]) hi[i] = v;
      }
    }
    const width = new Float64Array(dims);
    for (let i = 0; i < dims; i++) width[i] = (hi[i] - lo[i]) / bins;
    const h = new LatentHistogram(dims, bins, lo, width, new Float64Array(dims * bins));
    for (let r = 0; r < n; r++) for (let i = 0; i < dims; i++) h.mass[i * bins + h.bin(i, z[r * dims + i])] += 1 / n;
    return h;
  }

  /** Bin of value v in dimension i (clamped to the fitted range). */
  bin(i: number, v: number): number {
    const w = this.width[i];
    if (!(w > 0)) return 0;
    const b = Math.floor((v - this.lo[i]) / w);
    return b < 0 ? 0 : b >= this.bins ? this.bins - 1 : b;
  }

  private check(op: string, z: ArrayLike<number>): number {
    if (z.length % this.dims !== 0) throw new ShapeError(`${op}: expected a [n, ${this.dims}] array, got ${z.length} values`);
    return z.length / this.dims;
  }

  /** Q̂_i(z_i) for every row and dimension, row-major [n, d]. */
  density(z: ArrayLike<number>): Float64Array {
    const n = this.check('LatentHistogram.density', z);
    const out = new Float64Array(n * this.dims);
    for (let r = 0; r < n; r++) for (let i = 0; i < this.dims; i++) out[r * this.dims + i] = this.mass[i * this.bins + this.bin(i, z[r * this.dims + i])];
    return out;
  }

  /** Rarity −Σ_i log(Q̂_i(z_i) + α) per row [n] (= log W(x) up to the normalising constant). */
  rarity(z: ArrayLike<number>, alpha: number): Float64Array {
    checkAlpha('LatentHistogram.rarity', alpha);
    const q = this.density(z);
    const n = q.length / this.dims;
    const out = new Float64Array(n);
    for (let r = 0; r < n; r++) {
      let s = 0;
      for (let i = 0; i < this.dims; i++) s -= Math.log(q[r * this.dims + i] + alpha);
      out[r] = s;
    }
    return out;
  }

  /** Sampling weights W(x) = Π_i 1/(Q̂_i(z_i) + α), normalised to sum 1, per row [n]. */
  weights(z: ArrayLike<number>, alpha: number): Float64Array {
    const logW = this.rarity(z, alpha);
    let m = -Infinity;
    for (const v of logW) if (v > m) m = v;
    let s = 0;
    const w = new Float64Array(logW.length);
    for (let r = 0; r < w.length; r++) s += (w[r] = Math.exp(logW[r] - m));
    for (let r = 0; r < w.length; r++) w[r] /= s;
    return w;
  }

  /**
   * The rarity score on a tensor of latents [B, d], as tensor ops (one broadcast comparison with
   * the bin edges: Q̂_i(z_i) = Q̂_i(0) + Σ_{b≥1} [z_i ≥ e_{i,b}]·(Q̂_i(b) − Q̂_i(b−1))). Returns
   * [B], higher = rarer (more under-represented in the fitted data).
   */
  rarityTensor(z: Tensor, alpha: number): Tensor {
    checkAlpha('LatentHistogram.rarityTensor', alpha);
    if (z.rank !== 2 || z.shape[1] !== this.dims) throw new ShapeError(`LatentHistogram.rarityTensor: expected latents [B, ${this.dims}], got ${fmtShape(z.shape)}`);
    const d = this.dims;
    const B = this.bins;
    return composite(() => {
      const base = new Float32Array(d);
      const edges = new Float32Array(d * Math.max(B - 1, 1));
      const steps = new Float32Array(d * Math.max(B - 1, 1));
      for (let i = 0; i < d; i++) {
        base[i] = this.mass[i * B];
        for (let b = 1; b < B; b++) {
          // a degenerate dimension (width 0) keeps everything in bin 0: edges at +∞ never pass
          edges[i * (B - 1) + b - 1] = this.width[i] > 0 ? this.lo[i] + b * this.width[i] : Infinity;
          steps[i * (B - 1) + b - 1] = this.mass[i * B + b] - this.mass[i * B + b - 1];
        }
      }
      const dt = z.dtype as DType;
      const be = z.backend;
      let q = reshape(fromHost(base, [1, d], dt, be), [1, d]);
      if (B > 1) {
        const e = fromHost(edges, [1, d, B - 1], dt, be);
        const st = fromHost(steps, [1, d, B - 1], dt, be);
        const passed = ge(reshape(z, [z.shape[0], d, 1]), e).cast(dt);
        q = add(q, sum(mul(passed, st), -1));
      }
      return sum(add(q, alpha).log(), -1).neg();
    });
  }
}

/**
 * DB-VAE sampling weights of a latent set: fits {@link LatentHistogram} on `z` (row-major
 * [n, latentDim]) and returns W(x) ∝ Π_i 1/(Q̂_i(z_i(x)) + α), normalised to sum 1.
 */
export function latentHistogramWeights(z: ArrayLike<number>, latentDim: number, opts: HistogramOptions & { alpha: number }): Float64Array {
  checkAlpha('latentHistogramWeights', opts.alpha);
  return LatentHistogram.fit(z, latentDim, opts).weights(z, opts.alpha);
}

// ------------------------------------------------------------------------------------- model

export interface DbVaeOptions {
  /** Latent dimensions d (default 8). */
  latentDim?: number;
  numClasses?: number;
  /**
   * Shared encoder x → features [B, F] (default: for [B, 1, 28, 28] images, conv 8@5×5 → ReLU →
   * maxpool 2 → conv 16@5×5 → ReLU → maxpool 2 → flatten → 256→`hidden` → ReLU).
   */
  encoder?: Module<[Tensor], Tensor>;
  /** F, the encoder's feature width (default `hidden`). */
  features?: number;
  /** Default encoder/decoder hidden width (default 128). */
  hidden?: number;
  /** Decoder z → reconstruction LOGITS, flat [B, P] (default: d→hidden → ReLU → hidden→784). */
  decoder?: Module<[Tensor], Tensor>;
}

/** Everything one DB-VAE pass computes. */
export interface DbVaeOutput {
  /** Class logits [B, K]. */
  logits: Tensor;
  /** Latent mean and log-variance [B, d]. */
  mu: Tensor;
  logVar: Tensor;
  /** Reconstruction logits, flattened [B, P] (sigmoid gives the pixels). */
  recon: Tensor;
}

/**
 * The DB-VAE network: a shared encoder whose features feed a classifier head (K logits) and the
 * VAE's Gaussian posterior heads (μ, log σ²); a decoder reconstructs x from z = μ + σ·ε.
 * `forward(x)` is the classifier (logits), so the model is a drop-in classifier for metrics,
 * detectors and {@link wrap}; `encode` gives μ (the debiasing latents).
 */
export class DbVae extends Module<[Tensor], Tensor> {
  readonly encoder: Module<[Tensor], Tensor>;
  readonly classifier: Linear;
  readonly muHead: Linear;
  readonly logVarHead: Linear;
  readonly decoder: Module<[Tensor], Tensor>;
  readonly latentDim: number;
  readonly numClasses: number;

  constructor(opts: DbVaeOptions = {}) {
    super();
    const hidden = opts.hidden ?? 128;
    this.latentDim = opts.latentDim ?? 8;
    this.numClasses = opts.numClasses ?? 10;
    for (const [k, v] of [['latentDim', this.latentDim], ['numClasses', this.numClasses], ['hidden', hidden]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new ArgumentError(`DbVae: ${k} must be a positive integer, got ${v}`);
    }
    this.encoder = opts.encoder ?? new Sequential(
      new Conv2d(1, 8, 5), new ReLU(), new MaxPool2d(2), new Conv2d(8, 16, 5), new ReLU(), new MaxPool2d(2), new Flatten(), new Linear(256, hidden), new ReLU(),
    );
    const F = opts.features ?? hidden;
    this.classifier = new Linear(F, this.numClasses);
    this.muHead = new Linear(F, this.latentDim);
    this.logVarHead = new Linear(F, this.latentDim);
    this.decoder = opts.decoder ?? new Sequential(new Linear(this.latentDim, hidden), new ReLU(), new Linear(hidden, 784));
  }

  forward(x: Tensor): Tensor {
    return this.classifier.forward(this.encoder.forward(x));
  }

  /** Latent means μ(x) [B, d]. */
  encode(x: Tensor): Tensor {
    return this.muHead.forward(this.encoder.forward(x));
  }

  /**
   * The full pass. `eps` [B, d] is the reparameterisation noise (default: standard normal draws,
   * `seed` if given); z = μ + exp(½ log σ²)·ε.
   */
  forwardAll(x: Tensor, opts: { eps?: Tensor; seed?: number } = {}): DbVaeOutput {
    const h = this.encoder.forward(x);
    const mu = this.muHead.forward(h);
    const logVar = this.logVarHead.forward(h);
    const eps = opts.eps ?? normal(mu.shape, { seed: opts.seed, backend: mu.backend });
    if (eps.shape.length !== 2 || eps.shape[0] !== mu.shape[0] || eps.shape[1] !== mu.shape[1]) {
      throw new ShapeError(`DbVae.forwardAll: eps must be ${fmtShape(mu.shape)}, got ${fmtShape(eps.shape)}`);
    }
    const z = add(mu, mul(exp(mul(logVar, 0.5)), eps));
    return { logits: this.classifier.forward(h), mu, logVar, recon: this.decoder.forward(z) };
  }
}

export interface DbVaeLossOptions {
  /** λ, the weight of the VAE term (default 0.01; the summed BCE is ~10² nats per MNIST image). */
  vaeWeight?: number;
  /** β, the KL weight inside the VAE term (default 1). */
  klWeight?: number;
}

/**
 * DB-VAE loss, mean over the batch of
 *     CE(logits_b, y_b) + λ·( Σ_p BCE(recon_bp, x_bp) + β·KL(N(μ_b, σ_b²) ‖ N(0, I)) ),
 * with BCE on the reconstruction logits (targets x in [0, 1], flattened) and the closed-form KL.
 * (Amini et al. apply the VAE term only to the class whose bias is learned; for a multi-class
 * problem every sample's latent structure matters, so here it applies to all.)
 */
export function dbVaeLoss(out: DbVaeOutput, x: Tensor, y: Tensor, opts: DbVaeLossOptions = {}): Tensor {
  const lambda = opts.vaeWeight ?? 0.01;
  const beta = opts.klWeight ?? 1;
  if (!(lambda >= 0) || !(beta >= 0)) throw new ArgumentError(`dbVaeLoss: vaeWeight and klWeight must be ≥ 0, got ${lambda} and ${beta}`);
  return composite(() => {
    const B = x.shape[0];
    const target = reshape(x, [B, -1]);
    if (target.shape[1] !== out.recon.shape[1]) throw new ShapeError(`dbVaeLoss: reconstruction ${fmtShape(out.recon.shape)} does not match the input ${fmtShape(x.shape)} (${target.shape[1]} values per sample)`);
    const ce = crossEntropy(out.logits, y, { reduction: 'none' });
    const rec = sum(bceWithLogits(out.recon, target, { reduction: 'none' }), -1);
    const kl = klDivDiagonalGaussians(out.mu, out.logVar, { reduction: 'none' });
    return add(ce, mul(add(rec, mul(kl, beta)), lambda)).mean();
  });
}

// ---------------------------------------------------------------------------------- training

/** A training set on the host: x [n, ...] float32, y [n] int32 class labels. */
export interface HostDataset {
  x: { data: Float32Array | ArrayLike<number>; shape: readonly number[] };
  y: ArrayLike<number>;
}

export interface DbVaeTrainOptions extends DbVaeLossOptions, HistogramOptions {
  epochs: number;
  /** Debiasing knob α > 0; `null` trains the same network without resampling (the baseline). */
  alpha: number | null;
  batchSize?: number;
  /** Adam learning rate when no optimizer is given (default 1e-3). */
  lr?: number;
  optimizer?: Optimizer<{ lr: number }>;
  /** Seed of the sampler (per-epoch draws) and of the reparameterisation noise (default 0). */
  seed?: number;
  /**
   * Called after every epoch with its mean loss, seconds, the sampling weights used (normalised;
   * null without resampling) and their effective sample size 1/Σ W².
   */
  onEpoch?: (info: { epoch: number; loss: number; seconds: number; weights: Float64Array | null; effectiveSamples: number | null }) => void;
}

/** μ(x) for every training row, read back [n·d], in eval mode and batches of `batch`. */
async function latentsOf(model: DbVae, data: HostDataset, batch: number): Promise<Float32Array> {
  const n = data.x.shape[0];
  const row = data.x.shape.slice(1).reduce((a, b) => a * b, 1);
  const d = model.latentDim;
  const out = new Float32Array(n * d);
  const wasTraining = model.training;
  model.eval();
  const src = data.x.data;
  for (let s = 0; s < n; s += batch) {
    const c = Math.min(batch, n - s);
    const values = ArrayBuffer.isView(src) ? (src as Float32Array).subarray(s * row, (s + c) * row) : Array.prototype.slice.call(src, s * row, (s + c) * row);
    const mu = tidy(() => noGrad(() => model.encode(fromHost(values as ArrayLike<number>, [c, ...data.x.shape.slice(1)], 'float32'))));
    out.set(await mu.data(), s * d);
    mu.dispose();
  }
  if (wasTraining) model.train();
  return out;
}

/**
 * Trains a {@link DbVae} with {@link dbVaeLoss}. Each epoch (when `alpha` is a number) first
 * encodes the whole training set (μ), rebuilds the per-dimension histograms and sets the
 * sampler's weights W(x) ∝ Π_i 1/(Q̂_i(z_i(x)) + α); the epoch then draws n indices with
 * replacement by these weights (one seeded draw), in batches. Returns the per-epoch losses.
 */
export async function trainDbVae(model: DbVae, data: HostDataset, opts: DbVaeTrainOptions): Promise<{ loss: number[]; effectiveSamples: (number | null)[] }> {
  if (!Number.isInteger(opts.epochs) || opts.epochs < 1) throw new ArgumentError(`trainDbVae: epochs must be a positive integer, got ${opts.epochs}`);
  if (opts.alpha !== null) checkAlpha('trainDbVae', opts.alpha);
  const n = data.x.shape[0];
  if (data.y.length !== n) throw new ShapeError(`trainDbVae: ${n} inputs but ${data.y.length} labels`);
  const seed = opts.seed ?? 0;
  const batchSize = opts.batchSize ?? 64;
  const optimizer = opts.optimizer ?? new Adam(model.parameters(), { lr: opts.lr ?? 1e-3 });
  const sampler = new WeightedSampler(new Float64Array(n).fill(1), { seed });
  const arrays = [
    { data: data.x.data, shape: data.x.shape, dtype: 'float32' as const },
    { data: data.y, shape: [n], dtype: 'int32' as const },
  ];
  const loader = opts.alpha === null
    ? new DataLoader(arrays, { batchSize, shuffle: true, seed })
    : new DataLoader(arrays, { batchSize, sampler });
  const losses: number[] = [];
  const ess: (number | null)[] = [];
  let step = 0;
  for (let e = 0; e < opts.epochs; e++) {
    const t0 = performance.now();
    let effective: number | null = null;
    let weights: Float64Array | null = null;
    if (opts.alpha !== null) {
      const z = await latentsOf(model, data, 512);
      const w = latentHistogramWeights(z, model.latentDim, { bins: opts.bins, alpha: opts.alpha });
      sampler.setWeights(w);
      weights = w;
      let s2 = 0;
      for (const v of w) s2 += v * v;
      effective = 1 / s2; // Kish's effective sample size of the normalised weights
    }
    model.train();
    let total: Tensor | null = null;
    let count = 0;
    for (const [x, y] of loader) {
      const l = tidy(() => {
        optimizer.zeroGrad();
        const loss = dbVaeLoss(model.forwardAll(x, { seed: (seed + 1 + step) % 2 ** 32 }), x, y, opts);
        loss.backward();
        optimizer.step();
        return noGrad(() => mul(loss.detach(), x.shape[0]));
      });
      const prev: Tensor | null = total;
      const next: Tensor = prev ? keep(noGrad(() => add(prev, l))) : keep(l);
      if (total) {
        total.dispose();
        l.dispose();
      }
      total = next;
      count += x.shape[0];
      x.dispose();
      y.dispose();
      step++;
    }
    optimizer.zeroGrad();
    const mean = total ? (await total.item()) / count : NaN;
    total?.dispose();
    losses.push(mean);
    ess.push(effective);
    opts.onEpoch?.({ epoch: e + 1, loss: mean, seconds: (performance.now() - t0) / 1000, weights, effectiveSamples: effective });
  }
  model.eval();
  if (!opts.optimizer) optimizer.dispose(); // our own Adam: free its moment buffers
  return { loss: losses, effectiveSamples: ess };
}

/** Throws `NotFittedError` naming `op` when a histogram is missing. */
export function requireHistogram(op: string, h: LatentHistogram | null): LatentHistogram {
  if (!h) throw new NotFittedError(`${op}: the latent histogram is not fitted; call fit(data) first`);
  return h;
}
