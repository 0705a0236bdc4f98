/**
 * Uncertainty of the evaluation itself: percentile-bootstrap confidence intervals over test
 * samples and mean ± standard deviation over training seeds (docs/methods.md, "Intervals").
 *
 * Resampling (fixed and documented, so every interval is reproducible): resample b (b = 0..B−1)
 * draws n indices i_j = ⌊u_j · n⌋ (clamped to n − 1) from the library's Philox stream
 * `randomUniform(B·n, seed, stream)` in order (resample b uses the values b·n … b·n + n − 1).
 * For OOD metrics the in-distribution and the OOD scores are resampled SEPARATELY (stratified,
 * the in-distribution indices from Philox stream (seed, 0), the OOD ones from (seed, 1)), so every resample keeps both class sizes. The interval is the
 * percentile interval [q_{(1−level)/2}, q_{(1+level)/2}] of the B statistics (NumPy 'linear'
 * quantiles), default B = 1000, level 0.95, seed 0.
 */
import { ArgumentError, randomUniform } from '../engine/index.js';
import { type OodReport, oodMetrics } from './metrics.js';
import { percentile } from './linalg-host.js';

export interface BootstrapOptions {
  /** Number of resamples B (default 1000). */
  resamples?: number;
  /** Confidence level (default 0.95). */
  level?: number;
  /** Philox seed of the resampling stream (default 0). */
  seed?: number;
}

/** A point estimate with its percentile-bootstrap interval. */
export interface Interval {
  value: number;
  lo: number;
  hi: number;
}

function checkOpts(what: string, o: BootstrapOptions): { B: number; level: number; seed: number } {
  const B = o.resamples ?? 1000;
  const level = o.level ?? 0.95;
  const seed = o.seed ?? 0;
  if (!Number.isInteger(B) || B < 1) throw new ArgumentError(`${what}: resamples must be a positive integer, got ${o.resamples}`);
  if (!(level > 0 && level < 1)) throw new ArgumentError(`${what}: level must be in (0, 1), got ${o.level}`);
  if (!Number.isInteger(seed) || seed < 0) throw new ArgumentError(`${what}: seed must be a non-negative integer, got ${o.seed}`);
  return { B, level, seed };
}

/**
 * The B resamples of n indices (see the module comment): an Int32Array [B·n], resample b at
 * [b·n, (b+1)·n), from the Philox stream (seed, stream).
 */
export function bootstrapIndices(n: number, resamples: number, seed = 0, stream = 0): Int32Array {
  if (!Number.isInteger(n) || n < 1) throw new ArgumentError(`bootstrapIndices: n must be a positive integer, got ${n}`);
  const u = randomUniform(n * resamples, seed, stream);
  const idx = new Int32Array(u.length);
  for (let i = 0; i < u.length; i++) idx[i] = Math.min(n - 1, Math.floor(u[i] * n));
  return idx;
}

/** Percentile interval of `stats` at `level` around the point estimate `value`. */
export function percentileInterval(value: number, stats: ArrayLike<number>, level = 0.95): Interval {
  const a = (1 - level) / 2;
  return { value, lo: percentile(stats, 100 * a), hi: percentile(stats, 100 * (1 - a)) };
}

/**
 * Bootstrap interval of any statistic of n samples: `statistic(indices)` is evaluated on the full
 * sample (indices 0..n−1: the point estimate) and on each resample.
 */
export function bootstrapInterval(n: number, statistic: (indices: Int32Array) => number, opts: BootstrapOptions = {}): Interval {
  const { B, level, seed } = checkOpts('bootstrapInterval', opts);
  const idx = bootstrapIndices(n, B, seed, 0);
  const stats = new Float64Array(B);
  for (let b = 0; b < B; b++) stats[b] = statistic(idx.subarray(b * n, (b + 1) * n));
  return percentileInterval(statistic(Int32Array.from({ length: n }, (_, i) => i)), stats, level);
}

/** {@link OodReport} with an interval per metric. */
export type OodIntervals = { [K in keyof OodReport]: Interval };

/**
 * Stratified bootstrap of the OOD metrics (AUROC, AUPR-In, AUPR-Out, FPR95 as `oodMetrics`): the
 * in-distribution scores are resampled from Philox stream (seed, 0), the OOD scores from
 * (seed, 1), and the metrics recomputed per resample.
 */
export function bootstrapOodMetrics(inScores: ArrayLike<number>, outScores: ArrayLike<number>, opts: BootstrapOptions = {}): OodIntervals {
  const { B, level, seed } = checkOpts('bootstrapOodMetrics', opts);
  const nIn = inScores.length;
  const nOut = outScores.length;
  if (nIn === 0 || nOut === 0) throw new ArgumentError(`bootstrapOodMetrics: both score sets must be non-empty (got ${nIn} in-distribution, ${nOut} OOD)`);
  const point = oodMetrics(inScores, outScores);
  const iIn = bootstrapIndices(nIn, B, seed, 0);
  const iOut = bootstrapIndices(nOut, B, seed, 1);
  const keys = ['auroc', 'auprIn', 'auprOut', 'fpr95'] as const;
  const stats = Object.fromEntries(keys.map((k) => [k, new Float64Array(B)])) as Record<(typeof keys)[number], Float64Array>;
  const a = new Float64Array(nIn);
  const o = new Float64Array(nOut);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < nIn; i++) a[i] = inScores[iIn[b * nIn + i]];
    for (let i = 0; i < nOut; i++) o[i] = outScores[iOut[b * nOut + i]];
    const m = oodMetrics(a, o);
    for (const k of keys) stats[k][b] = m[k];
  }
  return Object.fromEntries(keys.map((k) => [k, percentileInterval(point[k], stats[k], level)])) as OodIntervals;
}

/** Mean and sample standard deviation (n − 1 in the denominator; 0 for a single value). */
export function meanStd(values: ArrayLike<number>): { mean: number; std: number; n: number } {
  const n = values.length;
  if (n === 0) throw new ArgumentError('meanStd: no values');
  let m = 0;
  for (let i = 0; i < n; i++) m += values[i] / n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (values[i] - m) ** 2;
  return { mean: m, std: n > 1 ? Math.sqrt(v / (n - 1)) : 0, n };
}

/**
 * The seed-averaged OOD metrics with a stratified bootstrap interval over TEST SAMPLES: `runs[s]`
 * are the scores of training seed s on the same in-distribution and OOD inputs (equal lengths
 * across runs). Each resample draws one set of indices (as {@link bootstrapOodMetrics}) and
 * applies it to every run, so the interval is that of the mean over seeds; `perRun` holds each
 * run's point metrics (for mean ± std over seeds).
 */
export function bootstrapOodMetricsMean(
  runs: readonly { inScores: ArrayLike<number>; outScores: ArrayLike<number> }[], opts: BootstrapOptions = {},
): { mean: OodIntervals; perRun: OodReport[] } {
  const { B, level, seed } = checkOpts('bootstrapOodMetricsMean', opts);
  if (runs.length === 0) throw new ArgumentError('bootstrapOodMetricsMean: no runs');
  const nIn = runs[0].inScores.length;
  const nOut = runs[0].outScores.length;
  if (nIn === 0 || nOut === 0) throw new ArgumentError(`bootstrapOodMetricsMean: both score sets must be non-empty (got ${nIn} in-distribution, ${nOut} OOD)`);
  runs.forEach((r, i) => {
    if (r.inScores.length !== nIn || r.outScores.length !== nOut) {
      throw new ArgumentError(`bootstrapOodMetricsMean: run ${i} has ${r.inScores.length}/${r.outScores.length} scores, run 0 has ${nIn}/${nOut}`);
    }
  });
  const keys = ['auroc', 'auprIn', 'auprOut', 'fpr95'] as const;
  const perRun = runs.map((r) => oodMetrics(r.inScores, r.outScores));
  const point = Object.fromEntries(keys.map((k) => [k, perRun.reduce((a, m) => a + m[k], 0) / runs.length])) as unknown as OodReport;
  const iIn = bootstrapIndices(nIn, B, seed, 0);
  const iOut = bootstrapIndices(nOut, B, seed, 1);
  const stats = Object.fromEntries(keys.map((k) => [k, new Float64Array(B)])) as Record<(typeof keys)[number], Float64Array>;
  const a = new Float64Array(nIn);
  const o = new Float64Array(nOut);
  for (let b = 0; b < B; b++) {
    for (const r of runs) {
      for (let i = 0; i < nIn; i++) a[i] = r.inScores[iIn[b * nIn + i]];
      for (let i = 0; i < nOut; i++) o[i] = r.outScores[iOut[b * nOut + i]];
      const m = oodMetrics(a, o);
      for (const k of keys) stats[k][b] += m[k] / runs.length;
    }
  }
  return { mean: Object.fromEntries(keys.map((k) => [k, percentileInterval(point[k], stats[k], level)])) as OodIntervals, perRun };
}
