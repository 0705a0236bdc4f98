import {
  ArgumentError, ShapeError, type Tensor, add, composite, exp, fmtShape, flatten, mul, normal, sum,
} from '../../engine/index.js';
import { Module } from '../module.js';
import { Linear } from '../layers/linear.js';
import { bceWithLogits, klDivDiagonalGaussians, type Reduction } from '../losses.js';

export interface VaeOptions {
  /** Input features per sample (default 784: a flattened 28×28 image). */
  inputDim?: number;
  /** Hidden width of the encoder and the decoder (default 400). */
  hidden?: number;
  /** Latent dimension (default 20). */
  latent?: number;
}

/** The three tensors of a VAE pass. */
export interface VaeOutput {
  /** [B, D] decoder logits (the Bernoulli means are sigmoid(logits)). */
  logits: Tensor;
  /** [B, latent] posterior means. */
  mu: Tensor;
  /** [B, latent] posterior log-variances. */
  logVar: Tensor;
}

/**
 * A plain fully connected variational autoencoder (Kingma & Welling 2014) for inputs in [0, 1]
 * (e.g. MNIST pixels): a two-layer encoder x → ReLU(W₁x + b₁) → (μ, log σ²) and a two-layer
 * decoder z → ReLU(W₃z + b₃) → logits of a Bernoulli per input feature. Images [B, 1, 28, 28]
 * are flattened. Parameter names: `fc1`, `fcMu`, `fcLogVar`, `fc3`, `fc4`.
 */
export class VAE extends Module<[Tensor], VaeOutput> {
  readonly inputDim: number;
  readonly latent: number;
  readonly fc1: Linear;
  readonly fcMu: Linear;
  readonly fcLogVar: Linear;
  readonly fc3: Linear;
  readonly fc4: Linear;

  constructor(opts: VaeOptions = {}) {
    super();
    const D = opts.inputDim ?? 784;
    const H = opts.hidden ?? 400;
    const L = opts.latent ?? 20;
    for (const [k, v] of [['inputDim', D], ['hidden', H], ['latent', L]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new ArgumentError(`VAE: ${k} must be a positive integer, got ${v}`);
    }
    this.inputDim = D;
    this.latent = L;
    this.fc1 = new Linear(D, H);
    this.fcMu = new Linear(H, L);
    this.fcLogVar = new Linear(H, L);
    this.fc3 = new Linear(L, H);
    this.fc4 = new Linear(H, D);
  }

  /** [B, ...] → [B, inputDim] (a typed ShapeError naming the VAE otherwise). */
  flattenInput(x: Tensor, what = 'VAE'): Tensor {
    if (x.rank < 1 || x.rank === 1 || x.size !== x.shape[0] * this.inputDim) {
      throw new ShapeError(`${what}: expected a batch [B, ...] with ${this.inputDim} features per row, got ${fmtShape(x.shape)}`);
    }
    return x.rank === 2 ? x : flatten(x, 1);
  }

  /** q(z | x) = N(μ, diag exp(logVar)). */
  encode(x: Tensor): { mu: Tensor; logVar: Tensor } {
    const h = this.fc1.forward(this.flattenInput(x, 'VAE.encode')).relu();
    return { mu: this.fcMu.forward(h), logVar: this.fcLogVar.forward(h) };
  }

  /** Decoder logits [B, inputDim] for latents z [B, latent]. */
  decodeLogits(z: Tensor): Tensor {
    if (z.rank !== 2 || z.shape[1] !== this.latent) throw new ShapeError(`VAE.decode: expected latents [B, ${this.latent}], got ${fmtShape(z.shape)}`);
    return this.fc4.forward(this.fc3.forward(z).relu());
  }

  /**
   * One pass. `sample: true` (training) draws z = μ + σ ⊙ ε with ε ~ N(0, I) from the global
   * Philox generator (the reparameterisation trick); `sample: false` decodes z = μ (deterministic,
   * what the VAE-loss guard scores).
   */
  forward(x: Tensor, opts: { sample?: boolean } = {}): VaeOutput {
    const { mu, logVar } = this.encode(x);
    const z = opts.sample ?? this.training
      ? add(mu, mul(exp(mul(logVar, 0.5)), normal(mu.shape, { backend: mu.backend })))
      : mu;
    return { logits: this.decodeLogits(z), mu, logVar };
  }
}

/**
 * The negative ELBO per sample, as in the VAE paper's Bernoulli decoder (docs/methods.md,
 * "Generative guards"):
 *
 *   L(x) = Σ_d BCE(sigmoid(logits_d), x_d) + KL(N(μ, σ²) ‖ N(0, I))
 *        = Σ_d [(1 − x_d)·logits_d + softplus(−logits_d)] − ½ Σ_j (1 + log σ_j² − μ_j² − σ_j²),
 *
 * both sums in nats over the features / latent dims of a row. `reduction`: 'none' → [B],
 * 'mean' (default) / 'sum' over the batch. Higher = worse reconstruction / less likely input.
 */
export function vaeLoss(out: VaeOutput, x: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  return composite(() => {
    const { logits, mu, logVar } = out;
    const B = logits.shape[0];
    if (logits.rank !== 2 || x.size !== logits.size || x.shape[0] !== B) {
      throw new ShapeError(`vaeLoss: the input ${fmtShape(x.shape)} does not match the reconstruction logits ${fmtShape(logits.shape)}`);
    }
    if (mu.rank !== 2 || mu.shape[0] !== B) throw new ShapeError(`vaeLoss: mu must be [${B}, latent], got ${fmtShape(mu.shape)}`);
    const target = x.rank === 2 ? x : x.reshape(logits.shape);
    const rec = sum(bceWithLogits(logits, target, { reduction: 'none' }), 1);
    const perSample = add(rec, klDivDiagonalGaussians(mu, logVar, { reduction: 'none' }));
    const r = opts.reduction ?? 'mean';
    if (r === 'none') return perSample;
    if (r === 'sum') return sum(perSample);
    if (r === 'mean') return perSample.mean();
    throw new ArgumentError(`vaeLoss: reduction must be 'mean', 'sum' or 'none', got ${String(r)}`);
  });
}
