/**
 * Variational ("Bayes by backprop") layers, Blundell et al. 2015, "Weight Uncertainty in Neural
 * Networks" (docs/methods.md, "Variational layers").
 *
 * Every weight has a factorised Gaussian posterior q(w) = N(μ, σ²) with σ = softplus(ρ) > 0 (ρ is
 * the trained parameter, so σ needs no constraint). A forward draws w by the reparameterisation
 * trick, w = μ + softplus(ρ) ⊙ ε with ε ~ N(0, I) from the engine's Philox generator, so the
 * sample is a differentiable function of (μ, ρ) and reproducible under `manualSeed` or a fixed
 * noise stream. The prior is p(w) = N(μ_p, σ_p²) per weight and its KL divergence is closed form:
 *
 *   KL(q ‖ p) = Σ_i [ ln(σ_p/σ_i) + (σ_i² + (μ_i − μ_p)²) / (2σ_p²) − ½ ].
 *
 * Training minimises the negative ELBO per data point, mean_batch NLL + KL/N (N = training-set
 * size), see {@link elboLoss}; {@link accumulatedKl} sums the KL of every variational layer.
 *
 * The T-sample predictive runs as ONE batched pass ({@link variationalPredictive}): the input is
 * repeated T times and every variational layer draws T weight samples at once — a batched matmul
 * with weights [T, out, in] for LinearVariational, one grouped convolution with T·groups groups for
 * Conv2dVariational — so row block t of the batch sees weight sample t in every layer.
 */
import {
  ArgumentError, DeviceError, ShapeError, type Tensor, blocksFor, broadcastTo, cast, concat, conv2d, fmtShape, full, matmul, nextStream, noGrad,
  normal, randomBits, softmax, softplus, tidy, unsqueeze,
} from '../../engine/index.js';
import { type ParamInitOptions, fanInAndFanOut, kaimingUniform, uniformInit } from '../init.js';
import { Module, parameter } from '../module.js';
import { type Pair } from './conv.js';

/** A fixed Philox stream for the weight noise ε: key `seed`, first block `offset`. */
export interface NoiseStream {
  seed: number;
  offset?: number;
}

export interface VariationalOptions extends ParamInitOptions {
  /** Learn a (variational) bias (default true). */
  bias?: boolean;
  /** Prior mean μ_p (default 0). */
  priorMu?: number;
  /** Prior standard deviation σ_p > 0 (default 1). */
  priorSigma?: number;
  /** Initial ρ of every weight (default −5, σ = softplus(−5) ≈ 0.0067). The means start as in Linear / Conv2d. */
  rhoInit?: number;
}

/** w = μ + softplus(ρ) ⊙ ε (the reparameterisation trick); differentiable in μ and ρ. */
export function reparameterise(mu: Tensor, rho: Tensor, eps: Tensor): Tensor {
  return mu.add(softplus(rho).mul(eps));
}

/**
 * KL(N(μ, softplus(ρ)²) ‖ N(μ_p, σ_p²)) summed over all elements (formula in the module
 * comment), a scalar tensor differentiable in μ and ρ.
 */
export function gaussianKl(mu: Tensor, rho: Tensor, priorMu = 0, priorSigma = 1): Tensor {
  if (!(priorSigma > 0) || !Number.isFinite(priorSigma)) throw new ArgumentError(`gaussianKl: priorSigma must be a positive finite number, got ${priorSigma}`);
  if (!Number.isFinite(priorMu)) throw new ArgumentError(`gaussianKl: priorMu must be finite, got ${priorMu}`);
  // No tidy here: the intermediates belong to the autograd graph of a training step.
  const sigma = softplus(rho);
  const d = priorMu === 0 ? mu : mu.sub(priorMu);
  const quad = sigma.square().add(d.square()).div(2 * priorSigma * priorSigma);
  return quad.sub(sigma.log()).add(Math.log(priorSigma) - 0.5).sum();
}

/** What the layers share: the prior, the noise source, the batched-sample count and `frozen`. */
abstract class VariationalBase extends Module<[Tensor], Tensor> {
  /** Use the posterior means instead of samples (a deterministic forward). */
  frozen = false;
  readonly priorMu: number;
  readonly priorSigma: number;
  #noise: NoiseStream | null = null;
  #samples = 1;

  constructor(name: string, opts: VariationalOptions) {
    super();
    this.priorMu = opts.priorMu ?? 0;
    this.priorSigma = opts.priorSigma ?? 1;
    if (!(this.priorSigma > 0) || !Number.isFinite(this.priorSigma)) throw new ArgumentError(`${name}: priorSigma must be a positive finite number, got ${this.priorSigma}`);
    if (!Number.isFinite(this.priorMu)) throw new ArgumentError(`${name}: priorMu must be finite, got ${this.priorMu}`);
  }

  /** The (μ, ρ) pairs of this layer's parameters. */
  protected abstract pairs(): [Tensor, Tensor][];

  /** KL(q ‖ p) of this layer's weights and bias, a scalar tensor. */
  kl(): Tensor {
    const parts = this.pairs().map(([m, r]) => gaussianKl(m, r, this.priorMu, this.priorSigma));
    return parts.reduce((a, b) => a.add(b));
  }

  /**
   * Fixes the Philox stream of ε (or clears it with null: ε from the global generator). With a
   * fixed stream, sample t of a batched pass (see {@link setSamplesPerPass}) uses the blocks from
   * `offset + t·blocksPerSample`, so a pass of T samples equals T single passes with those
   * offsets; each forward advances the stream past what it used. Returns `this`.
   */
  setNoiseStream(stream: NoiseStream | null): this {
    if (stream !== null) {
      const { seed, offset = 0 } = stream;
      if (!Number.isSafeInteger(seed) || seed < 0) throw new ArgumentError(`${this.constructor.name}.setNoiseStream: seed must be a non-negative safe integer, got ${seed}`);
      if (!Number.isSafeInteger(offset) || offset < 0) throw new ArgumentError(`${this.constructor.name}.setNoiseStream: offset must be a non-negative safe integer, got ${offset}`);
      stream = { seed, offset };
    }
    this.#noise = stream;
    return this;
  }

  get noiseStream(): NoiseStream | null {
    return this.#noise;
  }

  /**
   * Number T of weight samples per forward (default 1). With T > 1 the input's leading dim must
   * be T·B: row block t (rows t·B … t·B + B − 1) is computed with weight sample t.
   */
  setSamplesPerPass(t: number): this {
    if (!Number.isInteger(t) || t < 1) throw new ArgumentError(`${this.constructor.name}.setSamplesPerPass: must be a positive integer, got ${t}`);
    this.#samples = t;
    return this;
  }

  get samplesPerPass(): number {
    return this.#samples;
  }

  /** Philox blocks one weight sample of this layer uses (every parameter padded to whole blocks). */
  get blocksPerSample(): number {
    return this.pairs().reduce((a, [m]) => a + blocksFor(m.size), 0);
  }

  /**
   * T = samplesPerPass samples of every (μ, ρ) pair, each [T, ...shape] (the means, broadcast,
   * when frozen). ONE draw of ε [T, 4·blocksPerSample]: sample t of the layer is row t, and
   * parameter j takes its own whole blocks of that row, so with a fixed stream sample t uses the
   * blocks offset + t·blocksPerSample … whatever T is. A fixed stream then advances past them.
   */
  protected samples(): Tensor[] {
    const T = this.#samples;
    const pairs = this.pairs();
    if (this.frozen) return pairs.map(([mu]) => broadcastTo(unsqueeze(mu, 0), [T, ...mu.shape]));
    const per = this.blocksPerSample;
    const raw = this.#noise ? normal([T, 4 * per], { seed: this.#noise.seed, offset: this.#noise.offset ?? 0 }) : normal([T, 4 * per]);
    if (this.#noise) this.#noise = { seed: this.#noise.seed, offset: (this.#noise.offset ?? 0) + T * per };
    let col = 0;
    return pairs.map(([mu, rho]) => {
      const n = mu.size;
      let eps = raw.slice([0, col], [T, n]).reshape([T, ...mu.shape]);
      col += 4 * blocksFor(n);
      if (eps.dtype !== mu.dtype) eps = cast(eps, mu.dtype);
      return reparameterise(unsqueeze(mu, 0), unsqueeze(rho, 0), eps);
    });
  }

  protected leadingRows(x: Tensor): number {
    const T = this.#samples;
    if (x.shape[0] % T !== 0) throw new ShapeError(`${this.constructor.name}: ${T} samples per pass need a leading dim that is a multiple of ${T}, got ${fmtShape(x.shape)}`);
    return x.shape[0] / T;
  }

  override extraRepr(): string {
    return `priorMu=${this.priorMu}, priorSigma=${this.priorSigma}${this.frozen ? ', frozen' : ''}`;
  }
}

/**
 * Bayes-by-backprop linear layer: y = x·wᵀ + b with w ~ q(w) = N(μ_w, softplus(ρ_w)²) (and b likewise)
 * sampled at every forward. Parameters weightMu, weightRho [out, in], biasMu, biasRho [out].
 */
export class LinearVariational extends VariationalBase {
  weightMu: Tensor;
  weightRho: Tensor;
  biasMu: Tensor | null;
  biasRho: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: VariationalOptions = {}) {
    super('LinearVariational', opts);
    for (const [k, v] of [['inFeatures', inFeatures], ['outFeatures', outFeatures]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new ArgumentError(`LinearVariational: ${k} must be a positive integer, got ${v}`);
    }
    const rho = opts.rhoInit ?? -5;
    this.weightMu = parameter(kaimingUniform([outFeatures, inFeatures], { ...opts, a: Math.sqrt(5) }));
    this.weightRho = parameter(full([outFeatures, inFeatures], rho, { backend: opts.backend, dtype: opts.dtype }));
    const bound = 1 / Math.sqrt(inFeatures);
    const bias = opts.bias ?? true;
    this.biasMu = bias ? parameter(uniformInit([outFeatures], -bound, bound, opts)) : null;
    this.biasRho = bias ? parameter(full([outFeatures], rho, { backend: opts.backend, dtype: opts.dtype })) : null;
  }

  protected pairs(): [Tensor, Tensor][] {
    return this.biasMu && this.biasRho ? [[this.weightMu, this.weightRho], [this.biasMu, this.biasRho]] : [[this.weightMu, this.weightRho]];
  }

  forward(x: Tensor): Tensor {
    if (x.rank < 2 || x.shape[x.rank - 1] !== this.inFeatures) {
      throw new ShapeError(`LinearVariational(${this.inFeatures}→${this.outFeatures}): expected input [B, ..., ${this.inFeatures}], got ${fmtShape(x.shape)}`);
    }
    const T = this.samplesPerPass;
    const B = this.leadingRows(x);
    const [w, b] = this.samples(); // [T, out, in], [T, out]
    const xt = x.reshape([T, -1, this.inFeatures]);
    let y = matmul(xt, w, { transposeB: true }); // [T, R, out]
    if (b) y = y.add(b.reshape([T, 1, this.outFeatures]));
    return y.reshape([T * B, ...x.shape.slice(1, -1), this.outFeatures]);
  }

  override extraRepr(): string {
    return `inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${this.biasMu !== null}, ${super.extraRepr()}`;
  }
}

export interface Conv2dVariationalOptions extends VariationalOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}

const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

/**
 * Bayes-by-backprop 2-D convolution on [N, C, H, W]: weight ~ N(μ, softplus(ρ)²) per element,
 * shapes as Conv2d (weightMu/weightRho [out, in/groups, kh, kw], biasMu/biasRho [out]).
 */
export class Conv2dVariational extends VariationalBase {
  weightMu: Tensor;
  weightRho: Tensor;
  biasMu: Tensor | null;
  biasRho: Tensor | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Pair, opts: Conv2dVariationalOptions = {}) {
    super('Conv2dVariational', opts);
    this.groups = opts.groups ?? 1;
    for (const [k, v] of [['inChannels', inChannels], ['outChannels', outChannels], ['groups', this.groups]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new ArgumentError(`Conv2dVariational: ${k} must be a positive integer, got ${v}`);
    }
    if (inChannels % this.groups || outChannels % this.groups) throw new ArgumentError(`Conv2dVariational: inChannels ${inChannels} and outChannels ${outChannels} must be divisible by groups ${this.groups}`);
    this.kernelSize = pair(kernelSize);
    this.stride = pair(opts.stride ?? 1);
    this.padding = pair(opts.padding ?? 0);
    this.dilation = pair(opts.dilation ?? 1);
    const shape = [outChannels, inChannels / this.groups, ...this.kernelSize];
    const rho = opts.rhoInit ?? -5;
    this.weightMu = parameter(kaimingUniform(shape, { ...opts, a: Math.sqrt(5) }));
    this.weightRho = parameter(full(shape, rho, { backend: opts.backend, dtype: opts.dtype }));
    const [fanIn] = fanInAndFanOut(shape);
    const bound = 1 / Math.sqrt(fanIn);
    const bias = opts.bias ?? true;
    this.biasMu = bias ? parameter(uniformInit([outChannels], -bound, bound, opts)) : null;
    this.biasRho = bias ? parameter(full([outChannels], rho, { backend: opts.backend, dtype: opts.dtype })) : null;
  }

  protected pairs(): [Tensor, Tensor][] {
    return this.biasMu && this.biasRho ? [[this.weightMu, this.weightRho], [this.biasMu, this.biasRho]] : [[this.weightMu, this.weightRho]];
  }

  forward(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.inChannels) {
      throw new ShapeError(`Conv2dVariational(${this.inChannels}→${this.outChannels}): expected input [N, ${this.inChannels}, H, W], got ${fmtShape(x.shape)}`);
    }
    const T = this.samplesPerPass;
    const B = this.leadingRows(x);
    const [, C, H, W] = x.shape;
    const [ws, bs] = this.samples();
    const w = ws.reshape([T * this.outChannels, ...this.weightMu.shape.slice(1)]);
    const b = bs ? bs.reshape([T * this.outChannels]) : null;
    const opts = { stride: this.stride, padding: this.padding, dilation: this.dilation };
    if (T === 1) return conv2d(x, w, b, { ...opts, groups: this.groups });
    // Samples side by side in the channel dim: [T·B, C, H, W] → [B, T·C, H, W], one grouped conv.
    const xs = x.reshape([T, B, C, H, W]).permute([1, 0, 2, 3, 4]).reshape([B, T * C, H, W]);
    const y = conv2d(xs, w, b, { ...opts, groups: T * this.groups }); // [B, T·out, Ho, Wo]
    const [, , Ho, Wo] = y.shape;
    return y.reshape([B, T, this.outChannels, Ho, Wo]).permute([1, 0, 2, 3, 4]).reshape([T * B, this.outChannels, Ho, Wo]);
  }

  override extraRepr(): string {
    return `${this.inChannels}, ${this.outChannels}, kernelSize=[${this.kernelSize}], stride=[${this.stride}], padding=[${this.padding}]` +
      (this.groups !== 1 ? `, groups=${this.groups}` : '') + `, ${super.extraRepr()}`;
  }
}

/** Whether `m` is a variational layer (LinearVariational or Conv2dVariational). */
export function isVariational(m: unknown): m is LinearVariational | Conv2dVariational {
  return m instanceof LinearVariational || m instanceof Conv2dVariational;
}

function variationalLayers(model: Module): (LinearVariational | Conv2dVariational)[] {
  return model.modules().filter(isVariational);
}

/**
 * Σ over the model's variational layers of KL(q ‖ p) (torch-uncertainty / the notes'
 * `accumulated_kl_div`), a scalar tensor differentiable in every μ and ρ. Throws when the model has none.
 */
export function accumulatedKl(model: Module): Tensor {
  const layers = variationalLayers(model);
  if (layers.length === 0) throw new ArgumentError('accumulatedKl: the model has no LinearVariational / Conv2dVariational layer');
  return layers.map((l) => l.kl()).reduce((a, b) => a.add(b));
}

/**
 * The negative ELBO per training example: nll + klWeight · KL(q ‖ p) / N, with `nll` the mean
 * negative log-likelihood of the batch (a scalar, e.g. crossEntropy(...)) and N = `datasetSize`.
 * Minimising it over all batches of an epoch minimises −ELBO/N = E_q[−ln p(D | w)]/N + KL/N.
 */
export function elboLoss(nll: Tensor, model: Module, datasetSize: number, opts: { klWeight?: number } = {}): Tensor {
  if (!Number.isInteger(datasetSize) || datasetSize < 1) throw new ArgumentError(`elboLoss: datasetSize must be a positive integer, got ${datasetSize}`);
  if (nll.rank !== 0) throw new ShapeError(`elboLoss: nll must be a scalar (the batch mean), got ${fmtShape(nll.shape)}`);
  const w = opts.klWeight ?? 1;
  if (!(w >= 0) || !Number.isFinite(w)) throw new ArgumentError(`elboLoss: klWeight must be a finite number ≥ 0, got ${w}`);
  return nll.add(accumulatedKl(model).mul(w / datasetSize));
}

export interface VariationalPredictiveOptions {
  /** Number T of weight samples. */
  samples: number;
  /** Base seed (< 2^32): layer ℓ draws from Philox key seed + ℓ·2^32, so results are reproducible and chunk-independent. Default: from the global generator. */
  seed?: number;
  /** Largest number of rows T_chunk·B of one pass (default 4096); T is split above it. */
  maxRowsPerPass?: number;
}

/**
 * The logits of T weight samples, [T, B, ...out], as batched passes (one when T·B fits
 * `maxRowsPerPass`): the input is repeated T times and every variational layer draws T samples
 * (see the module comment). Sample t of layer ℓ uses the noise stream (seed + ℓ·2^32, t·⌈n/4⌉),
 * whatever the chunking. Runs under noGrad; the layers' noise streams and sample counts are restored.
 */
export function variationalLogits(model: Module, x: Tensor, opts: VariationalPredictiveOptions): Tensor {
  const T = opts.samples;
  if (!Number.isInteger(T) || T < 1) throw new ArgumentError(`variationalPredictive: samples must be a positive integer, got ${T}`);
  if (x.rank < 1) throw new ShapeError(`variationalPredictive: expected a batch [B, ...], got ${fmtShape(x.shape)}`);
  const layers = variationalLayers(model);
  if (layers.length === 0) throw new ArgumentError('variationalPredictive: the model has no LinearVariational / Conv2dVariational layer');
  const seed = opts.seed ?? randomBits(1, 0x5eed, nextStream(1).offset)[0];
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new ArgumentError(`variationalPredictive: seed must be an integer in [0, 2^32), got ${seed}`);
  const B = x.shape[0];
  let tChunk = Math.max(1, Math.min(T, Math.floor((opts.maxRowsPerPass ?? 4096) / Math.max(B, 1))));
  const saved = layers.map((l) => ({ noise: l.noiseStream, samples: l.samplesPerPass }));
  const blocksPerSample = layers.map((l) => l.blocksPerSample);
  try {
    for (;;) {
      try {
        return noGrad(() =>
          tidy(() => {
            const chunks: Tensor[] = [];
            for (let t0 = 0; t0 < T; t0 += tChunk) {
              const tc = Math.min(tChunk, T - t0);
              layers.forEach((l, i) => l.setSamplesPerPass(tc).setNoiseStream({ seed: seed + i * 2 ** 32, offset: t0 * blocksPerSample[i] }));
              const xt = broadcastTo(unsqueeze(x, 0), [tc, ...x.shape]).reshape([tc * B, ...x.shape.slice(1)]);
              const out = model.forward(xt) as Tensor;
              chunks.push(out.reshape([tc, B, ...out.shape.slice(1)]));
            }
            return chunks.length === 1 ? chunks[0] : concat(chunks, 0);
          }),
        );
      } catch (e) {
        if (!(e instanceof DeviceError) || !/exceeds this adapter's limit/.test(e.message) || tChunk === 1) throw e;
        tChunk = Math.ceil(tChunk / 2);
      }
    }
  } finally {
    layers.forEach((l, i) => l.setSamplesPerPass(saved[i].samples).setNoiseStream(saved[i].noise));
  }
}

/** Softmax of {@link variationalLogits}: probabilities [T, B, K]. Summarise with `summarizeSamples`. */
export function variationalProbs(model: Module, x: Tensor, opts: VariationalPredictiveOptions): Tensor {
  const logits = variationalLogits(model, x, opts);
  const p = noGrad(() => softmax(logits, -1));
  logits.dispose();
  return p;
}
