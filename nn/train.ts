import { ArgumentError, type Tensor, add, argmax, cast, detach, eq, keep, mul, noGrad, sum, tidy } from '../engine/index.js';
import type { DataLoader } from './data/loader.js';
import { crossEntropy } from './losses.js';
import type { Module } from './module.js';
import { type Optimizer, clipGradNorm } from './optim/optimizer.js';
import type { LRScheduler } from './optim/lr-scheduler.js';

export type LossFn = (output: Tensor, target: Tensor) => Tensor;

export interface EpochInfo {
  /** 1-based. */
  epoch: number;
  epochs: number;
  /** Mean training loss over the epoch's samples. */
  loss: number;
  /** Training accuracy (class-index targets with [N, C] outputs only). */
  accuracy?: number;
  valLoss?: number;
  valAccuracy?: number;
  /** Learning rate of the first group during the epoch. */
  lr: number;
  seconds: number;
}

export interface BatchInfo {
  /** 1-based epoch and batch within it. */
  epoch: number;
  batch: number;
  /** Batches per epoch. */
  batches: number;
  /** Mean loss of this batch. */
  loss: number;
}

export interface FitOptions {
  epochs: number;
  optimizer: Optimizer<{ lr: number }>;
  /** Default: crossEntropy. */
  lossFn?: LossFn;
  /** Stepped once per epoch. */
  scheduler?: LRScheduler;
  /** Clip the global gradient norm to this value before each step. */
  clipGradNorm?: number;
  /** Evaluated after every epoch (valLoss / valAccuracy). */
  validation?: DataLoader;
  /** Called after every epoch; returning `false` stops training. */
  onEpoch?: (info: EpochInfo) => void | boolean | Promise<void | boolean>;
  /**
   * Called after every optimiser step with the batch's mean loss (read back from the device, so
   * it costs one readback per step: use it for live loss curves, not in tight loops); returning
   * `false` stops training after this step.
   */
  onBatch?: (info: BatchInfo) => void | boolean | Promise<void | boolean>;
  /** Print progress (default true): `\r` updates on a TTY, otherwise one line per epoch. */
  progress?: boolean;
}

interface Out {
  isTTY: boolean;
  write(s: string): void;
}

/** Browser-safe console detection (no Node imports): uses globalThis.process when present. */
function terminal(): Out {
  const proc = (globalThis as { process?: { stdout?: { isTTY?: boolean; write?: (s: string) => unknown } } }).process;
  const stdout = proc?.stdout;
  if (stdout?.isTTY && typeof stdout.write === 'function') return { isTTY: true, write: (s) => void stdout.write!(s) };
  return { isTTY: false, write: (s) => console.log(s.replace(/\n$/, '')) };
}

const now = (): number => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/** Number of correct predictions (int32 scalar), or null when it is not a classification batch. */
function correctCount(out: Tensor, y: Tensor): Tensor | null {
  if (y.dtype !== 'int32' || out.rank !== 2 || y.rank !== 1 || out.shape[0] !== y.shape[0]) return null;
  return sum(cast(eq(argmax(out, -1), y), 'int32'));
}

class Accumulator {
  loss: Tensor | null = null;
  correct: Tensor | null = null;
  n = 0;
  classification = true;
  add(loss: Tensor, correct: Tensor | null, n: number): void {
    noGrad(() => {
      const l = mul(loss, n);
      this.loss = swap(this.loss, this.loss ? add(this.loss, l) : detach(l));
      if (correct && this.classification) this.correct = swap(this.correct, this.correct ? add(this.correct, correct) : detach(correct));
      else this.classification = false;
    });
    this.n += n;
  }
  async read(): Promise<{ loss: number; accuracy?: number }> {
    const loss = this.loss ? (await this.loss.item()) / Math.max(this.n, 1) : NaN;
    const accuracy = this.classification && this.correct ? (await this.correct.item()) / Math.max(this.n, 1) : undefined;
    this.loss?.dispose();
    this.correct?.dispose();
    return { loss, accuracy };
  }
}

function swap(old: Tensor | null, next: Tensor): Tensor {
  keep(next);
  old?.dispose();
  return next;
}

/** An empty loader would give NaN mean losses: throw instead, saying why it is empty. */
function checkNotEmpty(op: string, loader: DataLoader): void {
  if (loader.length === 0) {
    throw new ArgumentError(
      `${op}: the loader yields no batches (${loader.size} samples, batchSize ${loader.batchSize}${loader.dropLast ? ', dropLast' : ''}); a mean loss over no batches is undefined`,
    );
  }
}

const fmt = (v: number | undefined, d = 4) => (v === undefined ? '' : v.toFixed(d));

/**
 * Trains `model` for `epochs` passes over `loader` (Keras-style `fit`): each batch runs
 * zeroGrad → forward → loss → backward → (clip) → step inside `tidy`; losses are accumulated on
 * the device and read once per epoch. Returns the per-epoch history.
 */
export async function fit(model: Module<[Tensor], Tensor>, loader: DataLoader, opts: FitOptions): Promise<EpochInfo[]> {
  if (!Number.isInteger(opts.epochs) || opts.epochs < 1) throw new ArgumentError(`fit: epochs must be a positive integer, got ${opts.epochs}`);
  checkNotEmpty('fit', loader);
  if (opts.validation) checkNotEmpty('fit (validation)', opts.validation);
  const lossFn = opts.lossFn ?? ((o: Tensor, y: Tensor) => crossEntropy(o, y));
  const term = opts.progress ?? true ? terminal() : null;
  const history: EpochInfo[] = [];
  const params = model.parameters();
  for (let e = 1; e <= opts.epochs; e++) {
    const t0 = now();
    const lr = opts.optimizer.paramGroups[0].lr;
    model.train();
    const acc = new Accumulator();
    let b = 0;
    let stop = false;
    const nb = loader.length;
    for (const batch of loader) {
      const [x, y] = batch;
      const batchLoss = tidy(() => {
        opts.optimizer.zeroGrad();
        const out = model.forward(x);
        const loss = lossFn(out, y);
        loss.backward();
        if (opts.clipGradNorm !== undefined) clipGradNorm(params, opts.clipGradNorm);
        opts.optimizer.step();
        acc.add(loss, noGrad(() => correctCount(out, y)), x.shape[0]);
        return opts.onBatch ? keep(detach(loss)) : null;
      });
      for (const t of batch) t.dispose();
      b++;
      if (term?.isTTY) term.write(`\repoch ${e}/${opts.epochs} [${b}/${nb}]`);
      if (batchLoss) {
        let value: number;
        try {
          value = await batchLoss.item();
        } finally {
          batchLoss.dispose();
        }
        if ((await opts.onBatch!({ epoch: e, batch: b, batches: nb, loss: value })) === false) {
          stop = true;
          break;
        }
      }
    }
    if (b === 0) throw new ArgumentError(`fit: the loader yielded no batches in epoch ${e} (losses would be NaN)`);
    opts.optimizer.zeroGrad();
    const { loss, accuracy } = await acc.read();
    const info: EpochInfo = { epoch: e, epochs: opts.epochs, loss, accuracy, lr, seconds: 0 };
    if (opts.validation) {
      const v = await evaluate(model, opts.validation, { lossFn });
      info.valLoss = v.loss;
      info.valAccuracy = v.accuracy;
    }
    opts.scheduler?.step();
    info.seconds = (now() - t0) / 1000;
    if (term) {
      const parts = [`epoch ${e}/${opts.epochs}`, `loss ${fmt(loss)}`];
      if (accuracy !== undefined) parts.push(`acc ${fmt(accuracy)}`);
      if (info.valLoss !== undefined) parts.push(`val_loss ${fmt(info.valLoss)}`);
      if (info.valAccuracy !== undefined) parts.push(`val_acc ${fmt(info.valAccuracy)}`);
      parts.push(`${info.seconds.toFixed(1)}s`);
      term.write(`${term.isTTY ? '\r\x1b[K' : ''}${parts.join('  ')}\n`);
    }
    history.push(info);
    if ((await opts.onEpoch?.(info)) === false || stop) break;
  }
  return history;
}

/**
 * Mean loss (and accuracy for class-index targets with [N, C] outputs) over `loader`, in eval
 * mode without recording gradients; the model's previous mode is restored.
 */
export async function evaluate(model: Module<[Tensor], Tensor>, loader: DataLoader, opts: { lossFn?: LossFn } = {}): Promise<{ loss: number; accuracy?: number; n: number }> {
  checkNotEmpty('evaluate', loader);
  const lossFn = opts.lossFn ?? ((o: Tensor, y: Tensor) => crossEntropy(o, y));
  const wasTraining = model.training;
  model.eval();
  const acc = new Accumulator();
  try {
    for (const batch of loader) {
      const [x, y] = batch;
      tidy(() => noGrad(() => {
        const out = model.forward(x);
        acc.add(lossFn(out, y), correctCount(out, y), x.shape[0]);
      }));
      for (const t of batch) t.dispose();
    }
  } finally {
    model.train(wasTraining);
  }
  const r = await acc.read();
  return { ...r, n: acc.n };
}
