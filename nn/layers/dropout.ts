import { ArgumentError, type Tensor, dropout } from '../../engine/index.js';
import { Module } from '../module.js';
import { type StackContext, type StackedStep, identityStep } from '../stacking.js';

/** A fixed Philox stream for dropout masks: key `seed`, starting block `offset`, starting row `rowStart`. */
export interface DropoutStream {
  seed: number;
  offset?: number;
  rowStart?: number;
}

/**
 * Inverted dropout (torch.nn.Dropout): in training, zeroes each element with probability p and
 * scales the rest by 1/(1−p); the identity in eval mode — unless `stochasticAtInference` is set
 * (Monte-Carlo dropout), see {@link enableMCDropout}. Every forward draws a fresh Philox stream
 * from the global generator (`manualSeed` makes masks reproducible and identical on both backends).
 */
export class Dropout extends Module<[Tensor], Tensor> {
  /** Keep dropping at inference (MC dropout). */
  stochasticAtInference = false;
  #maskStream: DropoutStream | null = null;
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p < 1)) throw new ArgumentError(`Dropout: p must be in [0, 1), got ${p}`);
  }

  /** Whether the next forward will drop (training, or MC dropout enabled). */
  get active(): boolean {
    return this.p > 0 && (this.training || this.stochasticAtInference);
  }

  /**
   * Fixes the Philox stream the masks of the next forwards are drawn from (instead of the global
   * generator), or clears it with `null`. With a fixed stream the mask is a pure function of
   * (seed, offset, row index): `rowStart = r` gives row 0 of the input the mask of row r of the
   * stream, as if r rows had come before (see the `dropout` op). Batched MC dropout sets one
   * stream per layer so that results do not depend on batching or chunking; anyone running
   * stochastic passes by hand can do the same. Returns `this`.
   */
  setMaskStream(stream: DropoutStream | null): this {
    if (stream !== null) {
      const { seed, offset = 0, rowStart = 0 } = stream;
      if (!Number.isSafeInteger(seed) || seed < 0) throw new ArgumentError(`Dropout.setMaskStream: seed must be a non-negative safe integer, got ${seed}`);
      if (!Number.isSafeInteger(offset) || offset < 0) throw new ArgumentError(`Dropout.setMaskStream: offset must be a non-negative safe integer, got ${offset}`);
      if (!Number.isSafeInteger(rowStart) || rowStart < 0) throw new ArgumentError(`Dropout.setMaskStream: rowStart must be a non-negative safe integer, got ${rowStart}`);
      stream = { ...stream };
    }
    this.#maskStream = stream;
    return this;
  }

  /** The fixed mask stream set by {@link setMaskStream}, or null (masks from the global generator). */
  get maskStream(): DropoutStream | null {
    return this.#maskStream;
  }

  /** @deprecated Use {@link setMaskStream} / {@link maskStream}; kept so existing code keeps working. */
  get stream(): DropoutStream | null {
    return this.#maskStream;
  }

  set stream(s: DropoutStream | null) {
    this.setMaskStream(s);
  }

  forward(x: Tensor): Tensor {
    if (!this.active) return x;
    const s = this.#maskStream;
    return s ? dropout(x, this.p, s) : dropout(x, this.p);
  }

  /**
   * DeepEnsemble stacking. Inference: eval-mode dropout is the identity, so stacked activations
   * pass through unchanged. Stacked training (`ctx.training`, layer in training mode): ONE
   * dropout over the members' rows [M·B, ...] of a 'members' activation [M, B, ...], so member m
   * gets rows m·B … m·B + B − 1 of one stream — exactly the masks it would get alone with the
   * stream started at those rows. Members with fixed mask streams must share seed and offset and
   * have consecutive row blocks (rowStart_m = rowStart_0 + m·B), which is what
   * {@link DeepEnsemble} trainers set; without fixed streams the rows come from the global
   * generator. On 'channels' activations [B, M·C, ...] every element still gets its own draw,
   * but fixed streams are refused there (their rows would not match a member trained alone).
   */
  stackMembers(layers: readonly Module[], ctx: StackContext): StackedStep {
    if (!ctx.training || !(this.p > 0 && this.training)) return identityStep;
    const drops = layers as readonly Dropout[];
    const M = ctx.members;
    return ({ h, layout }) => {
      const streams = drops.map((d) => d.maskStream);
      const fixed = streams[0] !== null;
      if (streams.some((s) => (s !== null) !== fixed)) throw new ArgumentError('DeepEnsemble: either every member Dropout has a fixed mask stream or none has');
      if (layout !== 'members') {
        if (fixed) throw new ArgumentError(`DeepEnsemble: Dropout with fixed mask streams needs 'members' activations [M, B, ...] (after a Linear), got '${layout}'`);
        return { h: dropout(h, this.p), layout };
      }
      const B = h.shape[1];
      const rows = h.reshape([M * B, ...h.shape.slice(2)]);
      if (!fixed) return { h: dropout(rows, this.p).reshape(h.shape), layout };
      const s0 = streams[0]!;
      const ok = streams.every((s, m) => s!.seed === s0.seed && (s!.offset ?? 0) === (s0.offset ?? 0) && (s!.rowStart ?? 0) === (s0.rowStart ?? 0) + m * B);
      if (!ok) throw new ArgumentError('DeepEnsemble: member Dropout mask streams must share seed and offset and start at consecutive row blocks (rowStart_m = rowStart_0 + m·B)');
      return { h: dropout(rows, this.p, s0).reshape(h.shape), layout };
    };
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
