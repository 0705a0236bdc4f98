/**
 * The Detector protocol: one small shape shared by every uncertainty / OOD method.
 *
 *   detector.score(x)  →  Tensor [B], HIGHER = MORE UNCERTAIN / MORE LIKELY OOD
 *   detector.fit(data) →  Promise<this>   (only for methods that learn from in-distribution data)
 *
 * `score` is synchronous and returns a tensor on `x`'s backend: every engine op — including the
 * input-gradient step of ODIN — is recorded eagerly, and only reading values back to the host is
 * asynchronous. So a score composes inside `tidy`, and many batches can be queued before one
 * readback. `fit` is asynchronous because it reads data back (e.g. features for a covariance).
 * A detector that needs `fit` throws `NotFittedError` from `score` until it has been fitted.
 *
 * Generic consumers: {@link evaluateDetectors} (the AUROC / AUPR / FPR95 table) and
 * `guard(detector, { fpr, heldOut })` (a calibrated rejection rule). The adapters for the
 * existing methods live in `detectors.ts`.
 */
import { ArgumentError, fmtShape, noGrad, ShapeError, slice, Tensor, tidy } from '../engine/index.js';

/** A classifier (or any network): a function, or a module whose `forward` maps [B, ...] to [B, ...]. */
export type ModelLike = ((x: Tensor) => Tensor) | { forward(x: Tensor): Tensor };

/** Turns a {@link ModelLike} into a plain function. */
export function asModelFn(model: ModelLike): (x: Tensor) => Tensor {
  if (typeof model === 'function') return model;
  if (model && typeof model.forward === 'function') return (x) => model.forward(x);
  throw new ArgumentError('detector: the model must be a function (x: Tensor) => Tensor or have a forward(x) method');
}

/**
 * Data passed to a detector: a tensor [N, ...] (scored in batches of `batchSize` rows by the
 * helpers that take it), or an iterable of batches — tensors, or arrays whose FIRST tensor is the
 * input (what a `DataLoader` yields). Ownership: tensors you pass (the tensor itself, or the
 * tensors of an ARRAY of batches) stay yours and are never disposed; batches produced by any
 * other iterable (a DataLoader, a generator) are disposed after use, as `fit` does with a
 * DataLoader's batches. A DataLoader can be iterated again (one epoch per pass); a one-shot
 * generator only once.
 */
export type DetectorInput = Tensor | Iterable<Tensor | readonly Tensor[]>;

/** In-distribution data for {@link Detector.fit}. */
export interface FitData {
  /** In-distribution inputs, in the space `score` takes. */
  x: DetectorInput;
  /** Class labels [N] (integer class indices), for class-conditional detectors. */
  labels?: Tensor | ArrayLike<number>;
  /** Number of classes (default: the largest label + 1). */
  numClasses?: number;
  /** Rows per batch when `x` is one tensor (default 256). */
  batchSize?: number;
}

/** A class prediction with its score, both from one pass of the wrapped model. */
export interface ScoredBatch {
  /** int32 [B]: the wrapped model's predicted class. */
  prediction: Tensor;
  /** [B]: the detector's score, higher = more uncertain / more OOD. */
  score: Tensor;
}

/**
 * An uncertainty / OOD detector. `score(x)` returns a tensor [B] (one value per row of `x`),
 * HIGHER = MORE UNCERTAIN / MORE LIKELY OOD — the convention of every score in this library. The
 * result is the caller's to dispose (or to leave to an enclosing `tidy`); the detector frees its
 * own intermediates.
 */
export interface Detector {
  /** A short human-readable name (used as the row label by `evaluateDetectors`). */
  readonly name: string;
  /**
   * Learns from in-distribution data (only detectors that need it implement this). Resolves to
   * the detector itself. Until it has run, `score` throws `NotFittedError`.
   */
  fit?(data: FitData): Promise<this>;
  /** Scores a batch [B, ...] → [B]; higher = more uncertain / more OOD. */
  score(x: Tensor): Tensor;
  /**
   * Optional: the wrapped classifier's class prediction together with the score, from one pass
   * (detectors over a classifier implement it; `guard` uses it).
   */
  predict?(x: Tensor): ScoredBatch;
}

/** Whether `d` looks like a {@link Detector} (has a `score` method and a string `name`). */
export function isDetector(d: unknown): d is Detector {
  return typeof d === 'object' && d !== null && typeof (d as Detector).score === 'function' && typeof (d as Detector).name === 'string';
}

/**
 * Runs `fn` on every batch of `input` (see {@link DetectorInput}) and calls `sink` with each
 * result; batches sliced from a tensor, batches from an iterable and the results are disposed.
 */
export async function forEachBatch<R>(
  what: string, input: DetectorInput, batchSize: number, fn: (x: Tensor) => Tensor, sink: (r: Tensor, x: Tensor) => Promise<R> | R,
): Promise<number> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new ArgumentError(`${what}: batchSize must be a positive integer, got ${batchSize}`);
  let rows = 0;
  const run = async (x: Tensor) => {
    const r = fn(x);
    try {
      await sink(r, x);
    } finally {
      r.dispose();
    }
    rows += x.shape[0];
  };
  if (input instanceof Tensor) {
    if (input.rank < 1) throw new ShapeError(`${what}: expected a batch [N, ...], got ${fmtShape(input.shape)}`);
    const n = input.shape[0];
    for (let s = 0; s < n; s += batchSize) {
      const x: Tensor = n <= batchSize ? input : slice(input, [s, ...input.shape.slice(1).map(() => 0)], [Math.min(batchSize, n - s), ...input.shape.slice(1).map(() => -1)]);
      try {
        await run(x);
      } finally {
        if (x !== input) x.dispose();
      }
    }
    return rows;
  }
  if (input === null || typeof input !== 'object' || typeof (input as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    throw new ArgumentError(`${what}: expected a Tensor [N, ...] or an iterable of batches`);
  }
  const owned = !Array.isArray(input);
  for (const batch of input) {
    const x = batch instanceof Tensor ? batch : batch[0];
    try {
      if (!(x instanceof Tensor)) throw new ArgumentError(`${what}: a batch is neither a Tensor nor an array starting with one`);
      if (x.rank < 1) throw new ShapeError(`${what}: expected batches [B, ...], got ${fmtShape(x.shape)}`);
      await run(x);
    } finally {
      if (owned) {
        if (batch instanceof Tensor) batch.dispose();
        else for (const t of batch) if (t instanceof Tensor) t.dispose();
      }
    }
  }
  return rows;
}

/**
 * Scores every row of `input` with `detector` and reads the scores back as float64, batch by
 * batch. Checks that each batch's score has shape [B].
 */
export async function scoreAll(detector: Detector, input: DetectorInput, batchSize = 256): Promise<Float64Array> {
  const parts: ArrayLike<number>[] = [];
  let total = 0;
  await forEachBatch(`${detector.name}: score`, input, batchSize, (x) => tidy(() => noGrad(() => detector.score(x))), async (s, x) => {
    if (s.rank !== 1 || s.shape[0] !== x.shape[0]) {
      throw new ShapeError(`${detector.name}: score must return one value per row, [${x.shape[0]}], got ${fmtShape(s.shape)} for input ${fmtShape(x.shape)}`);
    }
    parts.push(await s.data());
    total += s.shape[0];
  });
  const out = new Float64Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
