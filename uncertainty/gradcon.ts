/**
 * GradCON — gradient constraint for anomaly detection (Kwon, Prabhushankar, Temel & AlRegib,
 * "Backpropagated Gradient Representations for Anomaly Detection", ECCV 2020), following the
 * authors' code (olivesgatech/gradcon-anomaly).
 *
 * Model: a convolutional autoencoder for 28×28 inputs ({@link GradConCAE}). Encoder `down`: four
 * Conv2d(k4, s2, p2) 1→32→32→64→64, each followed by ReLU (28→15→8→5→3). Decoder `up`:
 * ConvTranspose2d 64→64 (k4, s2, p2) → 4×4, 64→32 (k4, s2, p1) → 8×8, 32→32 (k4, s2, p2) → 14×14,
 * 32→1 (k4, s2, p1) → 28×28, ReLU between and a sigmoid at the end.
 *
 * Training ({@link GradConTrainer}): with W_i the L = 4 decoder weights, MSE = mean (x̂ − x)²,
 *   J = MSE + β·L_g,   L_g = −(1/L) Σ_i cos(vec ∂MSE/∂W_i, vec ḡ_i),   β = 0.03,
 * where ∂MSE/∂W_i is taken with a recorded graph (so ∂J/∂θ differentiates through it: double
 * backward through the transposed convolutions), and ḡ_i is the running mean (sum / count) of
 * W_i's gradient of the TOTAL loss J over all past steps, updated after each backward. On the
 * first step there is no history and L_g = 0. ḡ is module state (buffers `refGrad.sum0..3`,
 * `refGrad.count`), so it travels with `stateDict()` / safetensors.
 *
 * cos(a, b) = a·b / √max(‖a‖²‖b‖², ε²) with ε = 1e-8 (0 when either vector is 0), as PyTorch.
 *
 * Anomaly score ({@link gradconScores}, {@link GradConDetector}), per sample as the official code
 * computes it with batch size 1 (gradient of that sample's MSE only, no graph):
 *   score = MSE − γ·(1/L) Σ_i cos(∂MSE/∂W_i, ḡ_i),   γ = 0.12,
 * the negation of the official "normality" (−MSE + γ·mean cos), so HIGHER = MORE ANOMALOUS.
 * A batch is scored at once: one backward pass gives each sample's output-gradient δ_b at every
 * decoder layer; the per-sample weight gradient of a transposed convolution y = convT(h, W) is
 *   ∂MSE_b/∂W = conv2dBackwardWeight(δ_b, h_b)   (convT is the input-gradient of conv2d with W),
 * and folding the batch into the channel dimension with groups = B computes all B of them in
 * one grouped weight-gradient op (no loop over samples).
 */
import {
  ArgumentError, type Tensor,
  add, cast, composite, conv2dBackwardWeight, detach, div, fmtShape, gradients, gt, maximum, mean, mul, neg, noGrad, reshape, sqrt, square, sub, sum, tidy, where, withGrad, zeros,
} from '../engine/index.js';
import { NotFittedError } from './errors.js';
import { Module, buffer } from '../nn/module.js';
import { Sequential } from '../nn/layers/container.js';
import { Conv2d, ConvTranspose2d } from '../nn/layers/conv.js';
import { ReLU, Sigmoid } from '../nn/layers/activation.js';
import { assignInPlace } from '../nn/assign.js';
import { hostValuesOf } from '../nn/labels.js';
import type { Optimizer } from '../nn/optim/optimizer.js';
import type { Detector } from './detector.js';

/** ε of the cosine similarity (PyTorch's default for cosine_similarity). */
export const GRADCON_COS_EPS = 1e-8;

export interface GradConCAEOptions {
  /** Input channels (default 1). */
  inChannels?: number;
  /** Encoder widths [c1, c2, c3, c4] (default [32, 32, 64, 64], the paper's). Small values give a tiny CAE for tests. */
  channels?: readonly [number, number, number, number];
  /** float dtype of the parameters (default float32). */
  dtype?: 'float32' | 'float64';
}

/**
 * The running mean ḡ_i = sum_i / count of past decoder-weight gradients (the official code's
 * AverageMeter), as buffers so it is saved and loaded with the model.
 */
export class GradientMeter extends Module<[], void> {
  /** count as known on the host: a number, or null after loading state that lives on a device. */
  hostCount: number | null = 0;
  count: Tensor;
  constructor(shapes: readonly (readonly number[])[], dtype: 'float32' | 'float64' = 'float32') {
    super();
    shapes.forEach((s, i) => this.registerBuffer(`sum${i}`, zeros(s, { dtype })));
    this.count = buffer(zeros([], { dtype }));
  }

  get size(): number {
    return this.namedBuffers().length - 1;
  }

  /** The accumulated sum of gradient i. */
  sumOf(i: number): Tensor {
    return (this as unknown as Record<string, Tensor>)[`sum${i}`]!;
  }

  /** ḡ_i = sum_i / max(count, 1) (0 before the first update). */
  mean(i: number): Tensor {
    return composite(() => div(this.sumOf(i), maximum(this.count, 1)));
  }

  /** sum_i += g_i for every i, count += 1 (in place, no graph). */
  update(grads: readonly Tensor[]): void {
    if (grads.length !== this.size) throw new ArgumentError(`GradientMeter.update: expected ${this.size} gradients, got ${grads.length}`);
    noGrad(() => {
      grads.forEach((g, i) => {
        const s = this.sumOf(i);
        if (g.shape.join(',') !== s.shape.join(',')) throw new ArgumentError(`GradientMeter.update: gradient ${i} ${fmtShape(g.shape)} does not match ${fmtShape(s.shape)}`);
        assignInPlace(s, add(s, cast(g, s.dtype)), 'GradientMeter.update');
      });
      assignInPlace(this.count, add(this.count, 1), 'GradientMeter.update');
    });
    if (this.hostCount !== null) this.hostCount += 1;
  }

  /** Reads `count` back (after loading state on a device) and returns it. */
  async syncCount(): Promise<number> {
    this.hostCount = (await this.count.data())[0]!;
    return this.hostCount;
  }

  forward(): void {
    throw new ArgumentError('GradientMeter has no forward; use mean(i) / update(grads)');
  }
}

/**
 * The GradCON convolutional autoencoder (see the module comment): `down` (encoder), `up`
 * (decoder), `refGrad` (the running mean ḡ of the decoder weights' training gradients).
 * Parameter names match the official PyTorch model (`down.0.weight`, …, `up.6.bias`).
 */
export class GradConCAE extends Module<[Tensor], Tensor> {
  readonly down: Sequential;
  readonly up: Sequential;
  readonly refGrad: GradientMeter;

  constructor(opts: GradConCAEOptions = {}) {
    super();
    const cin = opts.inChannels ?? 1;
    const [c1, c2, c3, c4] = opts.channels ?? [32, 32, 64, 64];
    const dtype = opts.dtype ?? 'float32';
    const p = { dtype };
    this.down = new Sequential(
      new Conv2d(cin, c1, 4, { stride: 2, padding: 2, ...p }), new ReLU(),
      new Conv2d(c1, c2, 4, { stride: 2, padding: 2, ...p }), new ReLU(),
      new Conv2d(c2, c3, 4, { stride: 2, padding: 2, ...p }), new ReLU(),
      new Conv2d(c3, c4, 4, { stride: 2, padding: 2, ...p }), new ReLU(),
    );
    this.up = new Sequential(
      new ConvTranspose2d(c4, c4, 4, { stride: 2, padding: 2, ...p }), new ReLU(),
      new ConvTranspose2d(c4, c2, 4, { stride: 2, padding: 1, ...p }), new ReLU(),
      new ConvTranspose2d(c2, c2, 4, { stride: 2, padding: 2, ...p }), new ReLU(),
      new ConvTranspose2d(c2, cin, 4, { stride: 2, padding: 1, ...p }), new Sigmoid(),
    );
    this.refGrad = new GradientMeter(decoderWeights(this).map((w) => w.shape), dtype);
  }

  forward(x: Tensor): Tensor {
    return this.up.forward(this.down.forward(x));
  }

  override loadStateDict(...args: Parameters<Module['loadStateDict']>): ReturnType<Module['loadStateDict']> {
    const r = super.loadStateDict(...args);
    const host = hostValuesOf(this.refGrad.count, 'GradConCAE.loadStateDict');
    this.refGrad.hostCount = host ? host.data[0]! : null;
    return r;
  }
}

/** Anything shaped like a GradCON autoencoder: an encoder, a Sequential decoder and the ḡ meter. */
export interface GradConModel {
  down: Module;
  up: Sequential;
  refGrad: GradientMeter;
  forward(x: Tensor): Tensor;
}

/** The decoder's ConvTranspose2d weights W_1..W_L, checked. */
export function decoderWeights(model: { up: Sequential }): Tensor[] {
  const layers = model.up instanceof Sequential ? model.up.children() : [];
  const ws = layers.filter((m): m is ConvTranspose2d => m instanceof ConvTranspose2d).map((m) => m.weight);
  if (ws.length === 0) throw new ArgumentError('GradCON: the decoder `up` has no ConvTranspose2d weights (GradCON constrains the gradients of the decoder\'s transposed-convolution weights)');
  return ws;
}

/**
 * cos(a, b) = a·b / √max(‖a‖²‖b‖², ε²) over all elements → scalar (PyTorch's cosine_similarity).
 * Clamping before the square root keeps the gradient finite (0) when a or b is the zero vector
 * (e.g. a decoder layer whose ReLUs are all inactive).
 */
function cosine(a: Tensor, b: Tensor): Tensor {
  const dot = sum(mul(a, b));
  return div(dot, sqrt(maximum(mul(sum(square(a)), sum(square(b))), GRADCON_COS_EPS ** 2)));
}

export interface GradConLossParts {
  /** J = MSE + β·L_g (scalar, with graph). */
  loss: Tensor;
  mse: Tensor;
  /** L_g = −(1/L) Σ cos(∂MSE/∂W_i, ḡ_i), 0 when ḡ has no history yet. */
  gradLoss: Tensor;
}

/**
 * The GradCON training objective for a batch x [B, C, 28, 28] (see the module comment), with a
 * recorded graph so that `loss.backward()` differentiates through ∂MSE/∂W_i. β default 0.03.
 */
export function gradconLoss(model: GradConModel, x: Tensor, opts: { beta?: number } = {}): GradConLossParts {
  const beta = opts.beta ?? 0.03;
  if (!(beta >= 0)) throw new ArgumentError(`gradconLoss: beta must be ≥ 0, got ${beta}`);
  const ws = decoderWeights(model);
  if (ws.length !== model.refGrad.size) throw new ArgumentError(`gradconLoss: the decoder has ${ws.length} ConvTranspose2d weights but refGrad tracks ${model.refGrad.size}`);
  // Recorded even under noGrad (e.g. a validation pass): L_g needs ∂MSE/∂W_i.
  return withGrad(() => {
    const recon = model.forward(x);
    if (recon.shape.join(',') !== x.shape.join(',')) throw new ArgumentError(`gradconLoss: the reconstruction ${fmtShape(recon.shape)} does not match the input ${fmtShape(x.shape)}`);
    const mse = mean(square(sub(recon, x)));
    const gs = gradients(mse, ws, undefined, true, 'gradconLoss');
    let cosSum: Tensor | null = null;
    gs.forEach((g, i) => {
      const c = cosine(g, model.refGrad.mean(i));
      cosSum = cosSum ? add(cosSum, c) : c;
    });
    // No history on the first step: L_g = 0 (ḡ = 0 makes every cosine 0 as well).
    const gradLoss = where(gt(model.refGrad.count, 0), neg(div(cosSum!, ws.length)), 0);
    return { loss: add(mse, mul(gradLoss, beta)), mse, gradLoss };
  });
}

export interface GradConStepResult {
  loss: Tensor;
  mse: Tensor;
  gradLoss: Tensor;
}

/**
 * One GradCON training step as in the official code: zeroGrad → J = MSE + β·L_g → J.backward()
 * → ḡ_i ← running mean including W_i.grad (the gradient of J) → optimizer.step(). Returns the
 * detached scalars (yours to dispose, or left to an enclosing tidy).
 */
export function gradconStep(model: GradConModel, optimizer: Optimizer<{ lr: number }>, x: Tensor, opts: { beta?: number } = {}): GradConStepResult {
  return tidy(() => {
    optimizer.zeroGrad();
    const parts = gradconLoss(model, x, opts);
    parts.loss.backward();
    const ws = decoderWeights(model);
    model.refGrad.update(ws.map((w) => {
      if (!w.grad) throw new ArgumentError('gradconStep: a decoder weight received no gradient');
      return w.grad;
    }));
    optimizer.step();
    return { loss: detach(parts.loss), mse: detach(parts.mse), gradLoss: detach(parts.gradLoss) };
  });
}

function requireTrained(what: string, model: GradConModel): void {
  const c = model.refGrad.hostCount;
  if (c === null) throw new NotFittedError(`${what}: the reference gradients were loaded on a device; call \`await model.refGrad.syncCount()\` once before scoring`);
  if (c === 0) throw new NotFittedError(`${what}: the model has no reference gradients yet (count = 0); train it with gradconStep before scoring`);
}

/** Elementwise decoder layers the batched score supports. */
function decoderPlan(what: string, up: Sequential): Module[] {
  const layers = up.children();
  for (const [i, m] of layers.entries()) {
    if (m instanceof ConvTranspose2d) {
      if (m.groups !== 1 || m.dilation[0] !== 1 || m.dilation[1] !== 1) throw new ArgumentError(`${what}: decoder layer ${i} (ConvTranspose2d) must have groups 1 and dilation 1 for the per-sample gradients, got groups ${m.groups}, dilation [${m.dilation}]`);
    } else if (!(m instanceof ReLU) && !(m instanceof Sigmoid)) {
      throw new ArgumentError(`${what}: decoder layer ${i} is a ${m.constructor.name}; the per-sample score supports ConvTranspose2d, ReLU and Sigmoid layers`);
    }
  }
  return layers;
}

export interface GradConScores {
  /** [B] score = MSE − γ·mean_i cos (higher = more anomalous). */
  score: Tensor;
  /** [B] per-sample reconstruction MSE. */
  mse: Tensor;
  /** [B] per-sample (1/L) Σ_i cos(∂MSE_b/∂W_i, ḡ_i). */
  cos: Tensor;
}

/**
 * Per-sample GradCON scores for a batch x [B, C, H, W], batched (see the module comment):
 * score_b = MSE_b − γ·(1/L) Σ_i cos(∂MSE_b/∂W_i, ḡ_i), γ default 0.12. No graph is kept.
 */
export function gradconScores(model: GradConModel, x: Tensor, opts: { gamma?: number } = {}): GradConScores {
  const what = 'gradconScores';
  const gamma = opts.gamma ?? 0.12;
  if (!Number.isFinite(gamma)) throw new ArgumentError(`${what}: gamma must be finite, got ${gamma}`);
  const nw = decoderWeights(model).length;
  if (nw !== model.refGrad.size) throw new ArgumentError(`${what}: the decoder has ${nw} ConvTranspose2d weights but refGrad tracks ${model.refGrad.size}`);
  requireTrained(what, model);
  const layers = decoderPlan(what, model.up);
  if (x.rank !== 4) throw new ArgumentError(`${what}: expected images [B, C, H, W], got ${fmtShape(x.shape)}`);
  const B = x.shape[0];
  return tidy(() => {
    const z = noGrad(() => model.down.forward(x));
    // Forward through the decoder with a graph (through its own weights), keeping each
    // transposed conv's input h_i and pre-activation output a_i.
    const { hs, as, convs, perSample } = withGrad(() => {
      const hs: Tensor[] = [];
      const as: Tensor[] = [];
      const convs: ConvTranspose2d[] = [];
      let h: Tensor = z;
      for (const m of layers) {
        if (m instanceof ConvTranspose2d) {
          hs.push(h);
          h = m.forward(h);
          as.push(h);
          convs.push(m);
        } else h = (m as ReLU | Sigmoid).forward(h);
      }
      if (h.shape.join(',') !== x.shape.join(',')) throw new ArgumentError(`${what}: the reconstruction ${fmtShape(h.shape)} does not match the input ${fmtShape(x.shape)}`);
      return { hs, as, convs, perSample: mean(reshape(square(sub(h, x)), [B, -1]), 1) };
    });
    // δ_i = ∂(Σ_b MSE_b)/∂a_i: row b of δ_i is sample b's own output-gradient.
    const deltas = gradients(sum(perSample), as, undefined, false, what);
    return noGrad(() => {
      let cosSum: Tensor | null = null;
      convs.forEach((m, i) => {
        const d = deltas[i]!;
        const hin = detach(hs[i]!);
        const [, Cout, Ho, Wo] = d.shape;
        const [, Cin, Hi, Wi] = hin.shape;
        const [kH, kW] = m.kernelSize;
        // groups = B: sample b's δ (channels b·Cout…) against its own input h (channels b·Cin…)
        // gives ∂MSE_b/∂W as rows b·Cin… of a [B·Cin, Cout, kH, kW] weight gradient.
        const gw = conv2dBackwardWeight(reshape(d, [1, B * Cout, Ho, Wo]), reshape(hin, [1, B * Cin, Hi, Wi]), [B * Cin, Cout, kH, kW], { stride: m.stride, padding: m.padding, groups: B });
        const g = reshape(gw, [B, -1]);
        const ref = reshape(model.refGrad.mean(i), [1, -1]);
        const dot = sum(mul(g, ref), 1);
        const c = div(dot, sqrt(maximum(mul(sum(square(g), 1), sum(square(ref))), GRADCON_COS_EPS ** 2)));
        cosSum = cosSum ? add(cosSum, c) : c;
      });
      const cos = div(cosSum!, convs.length);
      const mse = detach(perSample);
      return { score: sub(mse, mul(cos, gamma)), mse, cos };
    });
  });
}

/**
 * GradCON as a {@link Detector}: score = MSE − γ·(1/L) Σ_i cos(∂MSE/∂W_i, ḡ_i) per sample
 * (higher = more anomalous). Throws NotFittedError before the model has been trained.
 */
export class GradConDetector implements Detector {
  readonly name: string;
  constructor(readonly model: GradConModel, private readonly opts: { gamma?: number; name?: string } = {}) {
    decoderWeights(model);
    this.name = opts.name ?? 'GradCON';
  }

  score(x: Tensor): Tensor {
    const r = gradconScores(this.model, x, { gamma: this.opts.gamma });
    r.mse.dispose();
    r.cos.dispose();
    return r.score;
  }
}

/** The plain reconstruction-error detector of an autoencoder: score = per-sample MSE (higher = more anomalous). */
export class ReconstructionErrorDetector implements Detector {
  readonly name: string;
  constructor(readonly model: { forward(x: Tensor): Tensor }, name = 'reconstruction MSE') {
    this.name = name;
  }

  score(x: Tensor): Tensor {
    return composite(() => {
      const r = noGrad(() => this.model.forward(x));
      return mean(reshape(square(sub(r, x)), [x.shape[0], -1]), 1);
    });
  }
}
