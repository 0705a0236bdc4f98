/**
 * The shuffled mini-batch loop shared by the small heads trained on precomputed rows (the stage-2
 * classifier H, the ConfidNet head and its fine-tuning): per epoch, a Fisher–Yates shuffle of the
 * row indices from a seeded host generator ({@link mulberry32}, so the order is the same on every
 * backend and does not touch the Philox state), then one `step` per batch of `batchSize` rows
 * (the last batch may be smaller). `step(ix)` gets the batch's int32 row indices [b] on `backend`,
 * runs forward / backward / optimiser step and returns the scalar loss; it runs inside `tidy`.
 */
import { type Backend, Tensor, fromHost, keep, mulberry32, shuffleWith, tidy } from '../engine/index.js';
import type { Optimizer } from '../nn/optim/optimizer.js';

export interface MinibatchLoopOptions {
  /** Number of rows N. */
  rows: number;
  epochs: number;
  /** Rows per step (clamped to N by the caller's choice; the loop uses it as given). */
  batchSize: number;
  /** Seed of the host shuffling generator (already mixed by the caller, used as `mulberry32(seed)`). */
  shuffleSeed: number;
  backend: Backend;
  /** One optimiser step on rows `ix` [b] (int32); returns the scalar loss. */
  step: (ix: Tensor) => Tensor;
  /** Called after every epoch (0-based `epoch`), after that epoch's losses were read back or synced. */
  afterEpoch?: (epoch: number) => Promise<void> | void;
}

/** Runs the loop; resolves to the mean batch loss of the last epoch (NaN for zero epochs). */
export async function runMinibatchEpochs(o: MinibatchLoopOptions): Promise<number> {
  const { rows: N, epochs, batchSize: bs, backend: be } = o;
  const rand = mulberry32(o.shuffleSeed);
  const order = Int32Array.from({ length: N }, (_, i) => i);
  let lastLoss = NaN;
  for (let e = 0; e < epochs; e++) {
    shuffleWith(order, rand);
    const losses: Tensor[] = [];
    try {
      for (let st = 0; st < N; st += bs) {
        const idx = order.subarray(st, Math.min(N, st + bs));
        losses.push(tidy(() => keep(o.step(fromHost(idx, [idx.length], 'int32', be)).detach())));
      }
      if (e === epochs - 1) {
        let tot = 0;
        for (const l of losses) tot += (await l.data())[0];
        lastLoss = tot / losses.length;
      } else if (losses.length) {
        // One readback per epoch bounds the work queued on the device: without it thousands of
        // steps are submitted ahead of a slow adapter, and Dawn on lavapipe was seen to crash
        // (segfault) at ~1,900 queued steps (the gradients eval's stage-2 fit on 4,000 rows).
        await losses[losses.length - 1].data();
      }
    } finally {
      for (const l of losses) l.dispose();
    }
    if (o.afterEpoch) await o.afterEpoch(e);
  }
  return lastLoss;
}

/** Frees an optimiser's per-parameter state tensors (moments) and gradients once training is over. */
export function releaseOptimizer(opt: Optimizer<{ lr: number }>): void {
  opt.zeroGrad();
  for (const st of opt.state.values()) for (const v of Object.values(st)) if (v instanceof Tensor) v.dispose();
  opt.state.clear();
}
