/**
 * Host-side float64 helpers shared by the metrics, temperature scaling, the Mahalanobis fit and
 * the examples: a row-wise log-sum-exp, a row-wise softmax and class-label validation. They run
 * on plain JS arrays in double precision (the reference / host path); the device versions are
 * the engine's `logsumexp` and `softmax` ops. Flat arrays are row-major [N, K].
 */
import { ArgumentError, ShapeError } from '../engine/index.js';

/**
 * ln Σ_{j<k} exp(β·z[offset + j]), computed stably as m + ln Σ_j exp(β·z_j − m) with
 * m = max_j β·z_j. β defaults to 1. Finite inputs give a finite result; a row holding ±∞ gives
 * NaN (callers that accept infinities must handle them first).
 */
export function rowLogsumexp(z: ArrayLike<number>, offset: number, k: number, beta = 1): number {
  let m = -Infinity;
  for (let j = 0; j < k; j++) m = Math.max(m, beta * z[offset + j]);
  let s = 0;
  for (let j = 0; j < k; j++) s += Math.exp(beta * z[offset + j] - m);
  return m + Math.log(s);
}

/**
 * Row-wise softmax(β·z) of a flat row-major [N, K] array, in float64: p_ij = exp(β z_ij − lse_i)
 * with lse_i = {@link rowLogsumexp}. A temperature T is β = 1/T. Returns a new Float64Array.
 */
export function softmaxRows(z: ArrayLike<number>, k: number, beta = 1): Float64Array {
  if (!Number.isInteger(k) || k < 1) throw new ArgumentError(`softmaxRows: the number of classes must be a positive integer, got ${k}`);
  if (z.length % k !== 0) throw new ShapeError(`softmaxRows: ${z.length} values are not a whole number of rows of ${k} classes`);
  const out = new Float64Array(z.length);
  for (let o = 0; o < z.length; o += k) {
    const lse = rowLogsumexp(z, o, k, beta);
    for (let j = 0; j < k; j++) out[o + j] = Math.exp(beta * z[o + j] - lse);
  }
  return out;
}

/** Why a label array was refused (the same reasons `MetricError` carries). */
export type LabelProblem = 'nan' | 'range';

/** Builds the caller's typed error for a refused label (default: ArgumentError). */
export type LabelErrorFactory = (message: string, problem: LabelProblem) => Error;

const argumentError: LabelErrorFactory = (message) => new ArgumentError(message);

/**
 * Validates class-index labels: every `labels[i]` must be an integer in [0, k). Returns them as an
 * Int32Array. `name` prefixes the messages (`${name}: labels[3] = 7 is not a class index in
 * [0, 5)`); `error` builds the thrown error (ArgumentError unless the caller has its own type).
 * Length checks against the data stay with the caller, whose message knows what the rows are.
 */
export function classIndexLabels(name: string, labels: ArrayLike<number>, k: number, error: LabelErrorFactory = argumentError): Int32Array {
  const r = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (Number.isNaN(v)) throw error(`${name}: labels[${i}] is NaN`, 'nan');
    if (!Number.isInteger(v) || v < 0 || v >= k) throw error(`${name}: labels[${i}] = ${v} is not a class index in [0, ${k})`, 'range');
    r[i] = v;
  }
  return r;
}
