import { ArgumentError, type Tensor, dropout } from '../../engine/index.js';
import { Module } from '../module.js';

/**
 * Inverted dropout (torch.nn.Dropout): in training, zeroes each element with probability p and
 * scales the rest by 1/(1−p); the identity in eval mode — unless `stochasticAtInference` is set
 * (Monte-Carlo dropout), see {@link enableMCDropout}. Every forward draws a fresh Philox stream
 * from the global generator (`manualSeed` makes masks reproducible and identical on both backends).
 */
export class Dropout extends Module<[Tensor], Tensor> {
  /** Keep dropping at inference (MC dropout). */
  stochasticAtInference = false;
  /**
   * A fixed Philox stream for the next forwards instead of the global generator (set by
   * batched MC dropout so that results do not depend on batching or chunking).
   */
  stream: { seed: number; offset?: number; rowStart?: number } | null = null;

  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p < 1)) throw new ArgumentError(`Dropout: p must be in [0, 1), got ${p}`);
  }

  /** Whether the next forward will drop (training, or MC dropout enabled). */
  get active(): boolean {
    return this.p > 0 && (this.training || this.stochasticAtInference);
  }

  forward(x: Tensor): Tensor {
    if (!this.active) return x;
    return this.stream ? dropout(x, this.p, this.stream) : dropout(x, this.p);
  }

  override extraRepr(): string {
    return `p=${this.p}${this.stochasticAtInference ? ', stochasticAtInference' : ''}`;
  }
}

/**
 * Sets (or clears) `stochasticAtInference` on every Dropout in `model`, so dropout stays active
 * in eval mode (MC dropout) while BatchNorm etc. still use their inference behaviour. Returns the
 * number of Dropout modules changed.
 */
export function enableMCDropout(model: Module, enabled = true): number {
  let n = 0;
  for (const m of model.modules()) {
    if (m instanceof Dropout) {
      m.stochasticAtInference = enabled;
      n++;
    }
  }
  return n;
}
