import { ArgumentError } from '../../engine/index.js';
import type { Optimizer } from './optimizer.js';

/**
 * Learning-rate schedules (torch.optim.lr_scheduler): construct after the optimiser (this sets
 * the epoch-0 rate), call `step()` once per epoch after `optimizer.step()`.
 */
export abstract class LRScheduler {
  /** Number of `step()` calls so far. */
  lastEpoch = 0;
  readonly baseLrs: number[];

  constructor(readonly optimizer: Optimizer<{ lr: number }>) {
    this.baseLrs = optimizer.paramGroups.map((g) => {
      const rec = g as { lr: number; initialLr?: number };
      rec.initialLr ??= g.lr;
      // Epoch 0 runs at the base rate for every schedule here (subclass fields are not set yet).
      g.lr = rec.initialLr;
      return rec.initialLr;
    });
  }

  /** The rate of each group at epoch `epoch`. */
  protected abstract lrAt(base: number, epoch: number): number;

  private apply(): void {
    this.optimizer.paramGroups.forEach((g, i) => (g.lr = this.lrAt(this.baseLrs[i], this.lastEpoch)));
  }

  step(): void {
    this.lastEpoch++;
    this.apply();
  }

  /** The rates set by the last step. */
  getLastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  stateDict(): { lastEpoch: number; baseLrs: number[] } {
    return { lastEpoch: this.lastEpoch, baseLrs: [...this.baseLrs] };
  }

  loadStateDict(sd: { lastEpoch: number }): void {
    this.lastEpoch = sd.lastEpoch;
    this.apply();
  }
}

/** lr = base·γ^⌊epoch / stepSize⌋ (default γ = 0.1). */
export class StepLR extends LRScheduler {
  constructor(optimizer: Optimizer<{ lr: number }>, readonly stepSize: number, readonly gamma = 0.1) {
    if (!Number.isInteger(stepSize) || stepSize < 1) throw new ArgumentError(`StepLR: stepSize must be a positive integer, got ${stepSize}`);
    super(optimizer);
  }
  protected lrAt(base: number, epoch: number): number {
    return base * Math.pow(this.gamma, Math.floor(epoch / this.stepSize));
  }
}

/** lr = ηmin + (base − ηmin)·(1 + cos(π·epoch/tMax))/2 (the closed form of PyTorch's schedule). */
export class CosineAnnealingLR extends LRScheduler {
  constructor(optimizer: Optimizer<{ lr: number }>, readonly tMax: number, readonly etaMin = 0) {
    if (!(tMax > 0)) throw new ArgumentError(`CosineAnnealingLR: tMax must be > 0, got ${tMax}`);
    super(optimizer);
  }
  protected lrAt(base: number, epoch: number): number {
    return this.etaMin + ((base - this.etaMin) * (1 + Math.cos((Math.PI * epoch) / this.tMax))) / 2;
  }
}
