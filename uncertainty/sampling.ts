import {
  ArgumentError, broadcastTo, concat, DeviceError, fmtShape, nextStream, noGrad, randomBits, ShapeError, softmax, type Tensor, tidy, unsqueeze,
} from '../engine/index.js';
import type { Module } from '../nn/module.js';
import { Dropout } from '../nn/layers/dropout.js';
import { modalPrediction, mutualInformation, perClassVariance, predictiveEntropy, predictiveMean, variationRatio } from './scores.js';

/** Summary statistics over T sampled predictive distributions (MC dropout or ensemble members). */
export interface SampledPrediction {
  /** Softmax outputs of every sample, [T, B, K]. */
  probs: Tensor;
  /** Predictive mean p̄ = (1/T) Σ_t p_t, [B, K]. */
  mean: Tensor;
  /** argmax of the predictive mean, int32 [B]. */
  prediction: Tensor;
  /** Variation ratio 1 − f_{c*}/T (c* = modal argmax), [B]. Higher = more uncertain. */
  variationRatio: Tensor;
  /** Predictive entropy H[p̄] in nats, [B]. Higher = more uncertain. */
  predictiveEntropy: Tensor;
  /** Mutual information (BALD) H[p̄] − (1/T) Σ_t H[p_t], [B]. Higher = more epistemic uncertainty. */
  mutualInformation: Tensor;
  /** Per-class variance of p_t over samples, [B, K]. */
  perClassVariance: Tensor;
}

/** Builds the summary from sampled probabilities [T, B, K] (takes ownership of `probs`). */
export function summarizeSamples(probs: Tensor): SampledPrediction {
  if (probs.rank !== 3) throw new ShapeError(`summarizeSamples: expected probabilities [T, B, K], got ${fmtShape(probs.shape)}`);
  return noGrad(() => {
    const mean = predictiveMean(probs);
    return {
      probs,
      mean,
      prediction: mean.argmax(-1),
      variationRatio: variationRatio(probs),
      predictiveEntropy: predictiveEntropy(probs),
      mutualInformation: mutualInformation(probs),
      perClassVariance: perClassVariance(probs),
    };
  });
}

export interface McDropoutOptions {
  /** Number of stochastic passes T. */
  samples: number;
  /**
   * Base seed (an integer < 2^32). Dropout layer ℓ uses Philox key `seed + ℓ·2^32`; results are
   * then reproducible and independent of chunking. Default: drawn from the global generator.
   */
  seed?: number;
  /**
   * Largest number of rows (T_chunk · B) one forward may take; T is split into chunks above it.
   * Default 4096. A chunk that would exceed the adapter's buffer limits is halved automatically.
   */
  maxRowsPerPass?: number;
}

function activeDropouts(model: Module): Dropout[] {
  return model.modules().filter((m): m is Dropout => m instanceof Dropout && m.active);
}

/**
 * MC dropout (Gal & Ghahramani 2016) as ONE batched forward: the input [B, ...] is repeated T
 * times into a (T·B)-row batch, every Dropout layer draws an independent row-aligned mask per
 * row (see `dropout`), and the logits are reshaped to [T, B, K]. When T·B exceeds
 * `maxRowsPerPass` the T passes are split into chunks; the masks of a chunk starting at pass t₀
 * start at row t₀·B of each layer's stream, so chunking never changes the result, and pass t
 * equals a separate forward of B rows with `rowStart = t·B`.
 *
 * The model's dropout layers must be active at inference: call `enableMCDropout(model)` (and
 * `model.eval()` so BatchNorm uses running statistics). Returns softmax samples and
 * {@link SampledPrediction} scores (all higher = more uncertain).
 */
export function mcDropout(model: Module, x: Tensor, opts: McDropoutOptions): SampledPrediction {
  const logits = mcDropoutLogits(model, x, opts);
  const probs = noGrad(() => softmax(logits, -1));
  logits.dispose();
  return summarizeSamples(probs);
}

function runChunks(model: Module, x: Tensor, drops: Dropout[], seed: number, T: number, tChunk: number): Tensor {
  const B = x.shape[0];
  return noGrad(() =>
    tidy(() => {
      const chunks: Tensor[] = [];
      for (let t0 = 0; t0 < T; t0 += tChunk) {
        const tc = Math.min(tChunk, T - t0);
        drops.forEach((d, l) => d.setMaskStream({ seed: seed + l * 2 ** 32, rowStart: t0 * B }));
        const xt = broadcastTo(unsqueeze(x, 0), [tc, ...x.shape]).reshape([tc * B, ...x.shape.slice(1)]);
        const out = model.forward(xt) as Tensor;
        chunks.push(out.reshape([tc, B, ...out.shape.slice(1)]));
      }
      return chunks.length === 1 ? chunks[0] : concat(chunks, 0);
    }),
  );
}

/** The raw logits of the T stochastic passes, [T, B, K] (see {@link mcDropout}). */
export function mcDropoutLogits(model: Module, x: Tensor, opts: McDropoutOptions): Tensor {
  const T = opts.samples;
  if (!Number.isInteger(T) || T < 1) throw new ArgumentError(`mcDropout: samples must be a positive integer, got ${T}`);
  if (x.rank < 1) throw new ShapeError(`mcDropout: expected a batch [B, ...], got ${fmtShape(x.shape)}`);
  const drops = activeDropouts(model);
  if (drops.length === 0) {
    throw new ArgumentError('mcDropout: the model has no dropout layer active at inference; call enableMCDropout(model) first');
  }
  const seed = opts.seed ?? randomBits(1, 0x5eed, nextStream(1).offset)[0];
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new ArgumentError(`mcDropout: seed must be an integer in [0, 2^32), got ${seed}`);
  const B = x.shape[0];
  const maxRows = opts.maxRowsPerPass ?? 4096;
  let tChunk = Math.max(1, Math.min(T, Math.floor(maxRows / Math.max(B, 1))));
  const saved = drops.map((d) => d.maskStream);
  try {
    // A chunk whose activations exceed the adapter's buffer limit fails at allocation (before any
    // dispatch): halve the chunk and start again. Results do not depend on the chunking.
    for (;;) {
      try {
        return runChunks(model, x, drops, seed, T, tChunk);
      } catch (e) {
        if (!(e instanceof DeviceError) || !/exceeds this adapter's limit/.test(e.message) || tChunk === 1) throw e;
        tChunk = Math.ceil(tChunk / 2);
      }
    }
  } finally {
    drops.forEach((d, l) => d.setMaskStream(saved[l]));
  }
}
