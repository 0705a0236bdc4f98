/**
 * The demo page's "train in this tab" recipe, kept apart from the page so that the Playwright test
 * (test/demo-web.test.ts) can run the very same function in Node and compare loss curves: a
 * LeNet-5 (dropout 0.3) initialised after `manualSeed(seed)`, Adam (lr 2·10⁻³), batches of 50 from
 * a `DataLoader` shuffled by its own Philox stream (`dataSeed`, so the order does not depend on
 * other random draws on the page), trained by the library's `fit` with a per-step `onBatch` hook
 * for the live progress bar and loss curve. Pixel bytes are scaled to [0, 1].
 */
import { Adam, DataLoader, LeNet5, fit, manualSeed } from '../index.js';

/** The recipe's settings. */
export const TRAIN_IN_TAB = { epochs: 2, batchSize: 50, lr: 2e-3, dropout: 0.3, seed: 0, dataSeed: 1 } as const;

export interface TrainInTabOptions {
  epochs?: number;
  /** After every step: 0-based global step, total steps, that step's batch loss. */
  onStep?: (step: number, steps: number, loss: number) => void | Promise<void>;
}

/** Trains a fresh LeNet-5 on the images (bytes, [count·784]) and labels; returns it in eval mode with the per-step losses. */
export async function trainDemoLeNet(set: { images: Uint8Array; labels: Int32Array; count: number }, opts: TrainInTabOptions = {}): Promise<{ model: LeNet5; losses: number[] }> {
  const epochs = opts.epochs ?? TRAIN_IN_TAB.epochs;
  manualSeed(TRAIN_IN_TAB.seed);
  const model = new LeNet5({ dropout: TRAIN_IN_TAB.dropout });
  const optimizer = new Adam(model.parameters(), { lr: TRAIN_IN_TAB.lr });
  const pixels = Float32Array.from(set.images.subarray(0, set.count * 784), (v) => v / 255);
  const loader = new DataLoader([
    { data: pixels, shape: [set.count, 1, 28, 28], dtype: 'float32' },
    { data: set.labels.subarray(0, set.count), shape: [set.count], dtype: 'int32' },
  ], { batchSize: TRAIN_IN_TAB.batchSize, shuffle: true, dropLast: true, seed: TRAIN_IN_TAB.dataSeed });
  const losses: number[] = [];
  const steps = epochs * loader.length;
  try {
    await fit(model, loader, {
      epochs, optimizer, progress: false,
      onBatch: async ({ loss }) => {
        losses.push(loss);
        await opts.onStep?.(losses.length - 1, steps, loss);
      },
    });
  } finally {
    optimizer.dispose();
  }
  model.eval();
  return { model, losses };
}
