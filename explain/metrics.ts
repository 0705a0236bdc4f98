/**
 * Explanation evaluation by masking (Petsiuk et al., "RISE", BMVC 2018; the notes' "explanation
 * evaluation via masking"): remove (deletion) or add (insertion) pixels in the order of an
 * explanation map, most important first, and follow the model's probability of the target class.
 * A good explanation makes the deletion curve fall fast (low AUC) and the insertion curve rise
 * fast (high AUC), so methods are compared by a number rather than a picture.
 */
import {
  ArgumentError, ShapeError, type Tensor, add, cast, fmtShape, fromHost, lt, mul, noGrad, oneHot, reshape, slice, softmax,
  sub, sum, tidy,
} from '../engine/index.js';
import { Module } from '../nn/index.js';
import { type Targets, batchOf, checkLogits, classTensor, predicted, readTargets } from './common.js';

export interface MaskingCurveOptions {
  /** The class whose probability is followed (default: the prediction on the unmasked input). */
  target?: Targets;
  /** Number of steps n: the curve has n + 1 points at fractions 0, 1/n, …, 1 (default 20). */
  steps?: number;
  /**
   * The value of absent pixels: deletion replaces removed pixels by it, insertion starts from an
   * image filled with it (default 0, black for images in [0, 1]).
   */
  baseline?: number;
  /** What is followed: the softmax probability of the target (default) or its logit. */
  score?: 'probability' | 'logit';
}

export interface MaskingCurve {
  /** The fractions of pixels removed / inserted: k/n for k = 0 … n. */
  fractions: number[];
  /** The score of the target at each fraction: [B, n + 1]. */
  curve: Tensor;
  /** Area under each curve over fractions in [0, 1] (trapezoid rule): [B]. */
  auc: Tensor;
}

/**
 * Per map, the rank of every pixel in decreasing importance (0 = most important); ties keep the
 * pixel order. One sort of all B·HW keys (map, −value), not a loop over maps.
 */
function pixelRanks(values: ArrayLike<number>, B: number, P: number): Int32Array {
  const order = Int32Array.from({ length: B * P }, (_, i) => i);
  order.sort((a, b) => {
    const ma = Math.floor(a / P);
    const mb = Math.floor(b / P);
    if (ma !== mb) return ma - mb;
    const va = values[a];
    const vb = values[b];
    // NaN ranks last.
    if (va !== vb) return Number.isNaN(va) ? 1 : Number.isNaN(vb) ? -1 : vb - va;
    return a - b;
  });
  const ranks = new Int32Array(B * P);
  for (let pos = 0; pos < B * P; pos++) ranks[order[pos]] = pos % P;
  return ranks;
}

async function maskingCurve(op: string, kind: 'deletion' | 'insertion', model: Module, x: Tensor, maps: Tensor, opts: MaskingCurveOptions): Promise<MaskingCurve> {
  if (!(model instanceof Module)) throw new ArgumentError(`${op}: model must be a Module, got ${typeof model}`);
  const B = batchOf(op, x);
  if (x.rank !== 4) throw new ShapeError(`${op}: expected an image batch [B, C, H, W], got ${fmtShape(x.shape)}`);
  const [, C, H, W] = x.shape;
  if (maps.rank !== 3 || maps.shape[0] !== B || maps.shape[1] !== H || maps.shape[2] !== W) {
    throw new ShapeError(`${op}: maps must be [B, H, W] = [${B}, ${H}, ${W}] for the input ${fmtShape(x.shape)}, got ${fmtShape(maps.shape)}`);
  }
  const n = opts.steps ?? 20;
  if (!Number.isInteger(n) || n < 1) throw new ArgumentError(`${op}: steps must be a positive integer, got ${n}`);
  const baseline = opts.baseline ?? 0;
  if (!Number.isFinite(baseline)) throw new ArgumentError(`${op}: baseline must be a finite number, got ${baseline}`);
  const score = opts.score ?? 'probability';
  if (score !== 'probability' && score !== 'logit') throw new ArgumentError(`${op}: score must be 'probability' or 'logit', got '${String(score)}'`);
  let t: Int32Array | null = null;
  if (opts.target !== undefined) {
    const K = tidy(() => noGrad(() => checkLogits(op, model.forward(x), B).shape[1]));
    t = await readTargets(op, 'target', opts.target, B, K);
  }
  const P = H * W;
  const ranks = pixelRanks(await maps.data(), B, P);
  const fractions = Array.from({ length: n + 1 }, (_, k) => k / n);
  const counts = fractions.map((f) => Math.round(f * P));
  return tidy(() => noGrad(() => {
    const be = x.backend;
    const dt = x.dtype;
    const cls = t ? classTensor(t, x) : predicted(checkLogits(op, model.forward(x), B));
    const rankT = fromHost(ranks, [B, 1, P], dt, be);
    const countT = fromHost(Float64Array.from(counts), [1, n + 1, 1], dt, be);
    const mask = reshape(cast(lt(rankT, countT), dt), [B, n + 1, 1, H, W]); // 1 = removed (deletion) / inserted (insertion)
    const xs = reshape(x, [B, 1, C, H, W]);
    const keepX = kind === 'deletion' ? sub(1, mask) : mask;
    const xin = reshape(add(mul(xs, keepX), mul(sub(1, keepX), baseline)), [B * (n + 1), C, H, W]);
    const logits = checkLogits(op, model.forward(xin), B * (n + 1));
    const K = logits.shape[1];
    const s = score === 'probability' ? softmax(logits, -1) : logits;
    const hot = reshape(oneHot(cls, K, dt), [B, 1, K]);
    const curve = sum(mul(reshape(s, [B, n + 1, K]), hot), 2); // [B, n + 1]
    const ends = add(slice(curve, [0, 0], [B, 1]), slice(curve, [0, n], [B, 1]));
    const auc = mul(sub(sum(curve, 1), mul(reshape(ends, [B]), 0.5)), 1 / n);
    return { fractions, curve, auc };
  }));
}

/**
 * Deletion curve: the target's probability as the most important pixels of `maps` ([B, H, W],
 * higher = more important) are replaced by `baseline`, k/n of them at step k, for every input and
 * step in one batched forward of B·(n + 1) images. Lower AUC = better explanation.
 */
export function deletionCurve(model: Module, x: Tensor, maps: Tensor, opts: MaskingCurveOptions = {}): Promise<MaskingCurve> {
  return maskingCurve('deletionCurve', 'deletion', model, x, maps, opts);
}

/**
 * Insertion curve: starting from an image of `baseline`, the most important pixels of `maps`
 * are put back, k/n of them at step k (one batched forward of B·(n + 1) images). Higher AUC =
 * better explanation.
 */
export function insertionCurve(model: Module, x: Tensor, maps: Tensor, opts: MaskingCurveOptions = {}): Promise<MaskingCurve> {
  return maskingCurve('insertionCurve', 'insertion', model, x, maps, opts);
}
