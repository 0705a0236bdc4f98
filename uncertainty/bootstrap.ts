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

const OOD_KEYS = ['auroc', 'auprIn', 'auprOut', 'fpr95'] as const;

/**
 * The in-distribution and OOD scores of one run merged and sorted ONCE (descending, ties grouped),
 * so that the OOD metrics of any resample are a weighted walk over the groups in O(nIn + nOut)
 * instead of a fresh O(n log n) sort per resample (see {@link weightedOodMetrics}).
 */
interface SortedScores {
  /** Merged indices in descending score order: j < nIn is in-distribution sample j, else OOD sample j − nIn. */
  order: Int32Array;
  /** Group boundaries: group g holds order[start[g] .. start[g+1]); equal scores share one group. */
  start: Int32Array;
  nIn: number;
}

function sortScores(inScores: ArrayLike<number>, outScores: ArrayLike<number>): SortedScores {
  const nIn = inScores.length;
  const n = nIn + outScores.length;
  const s = new Float64Array(n);
  for (let i = 0; i < nIn; i++) s[i] = inScores[i];
  for (let i = 0; i < outScores.length; i++) s[nIn + i] = outScores[i];
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => s[b] - s[a] || a - b);
  const starts: number[] = [];
  for (let i = 0; i < n; i++) if (i === 0 || s[order[i]] !== s[order[i - 1]]) starts.push(i);
  starts.push(n);
  return { order, start: Int32Array.from(starts), nIn };
}

/**
 * The four OOD metrics of `oodMetrics` for a resample given as sample WEIGHTS (how often each
 * in-distribution / OOD sample was drawn), from scores sorted once. A sample drawn w times is w
 * tied copies of itself, so with the group sums W_in(g), W_out(g) (groups in descending score):
 *   AUROC    = Σ_g W_out(g)·(W_in below g + ½ W_in(g)) / (N_in N_out)      (ties ½, as `auroc`)
 *   AUPR-Out = Σ_g (W_out(g)/N_out) · TP_g/(TP_g + FP_g), TP/FP = cumulative OOD/in weight from the top
 *   AUPR-In  = the same with in-distribution positive, walking the groups from the bottom
 *   FPR95    = OOD fraction above the first threshold (from the bottom) keeping ≥ 95% of in-distribution weight
 * These are exactly the step-wise definitions `oodMetrics` evaluates on the resampled arrays.
 */
function weightedOodMetrics(ss: SortedScores, wIn: Float64Array, wOut: Float64Array): OodReport {
  const { order, start, nIn } = ss;
  const G = start.length - 1;
  const gIn = new Float64Array(G);
  const gOut = new Float64Array(G);
  let totIn = 0;
  let totOut = 0;
  for (let g = 0; g < G; g++) {
    let a = 0;
    let o = 0;
    for (let k = start[g]; k < start[g + 1]; k++) {
      const j = order[k];
      if (j < nIn) a += wIn[j];
      else o += wOut[j - nIn];
    }
    gIn[g] = a;
    gOut[g] = o;
    totIn += a;
    totOut += o;
  }
  // From the top: AUROC pairs and AUPR-Out.
  let inAbove = 0;
  let tp = 0;
  let u = 0;
  let auprOut = 0;
  for (let g = 0; g < G; g++) {
    const below = totIn - inAbove - gIn[g];
    u += gOut[g] * (below + 0.5 * gIn[g]);
    if (gOut[g] > 0) {
      tp += gOut[g];
      auprOut += (gOut[g] / totOut) * (tp / (tp + inAbove + gIn[g]));
    }
    inAbove += gIn[g];
  }
  // From the bottom (in-distribution positive, scores negated): AUPR-In and FPR95.
  let tpIn = 0;
  let fpOut = 0;
  let auprIn = 0;
  let fpr95 = NaN;
  for (let g = G - 1; g >= 0; g--) {
    tpIn += gIn[g];
    fpOut += gOut[g];
    if (gIn[g] > 0) auprIn += (gIn[g] / totIn) * (tpIn / (tpIn + fpOut));
    if (Number.isNaN(fpr95) && tpIn >= 0.95 * totIn - 1e-9 * totIn) fpr95 = fpOut / totOut;
  }
  return { auroc: u / (totIn * totOut), auprIn, auprOut, fpr95 };
}

/** Draw counts of resample b (indices idx[b·n .. (b+1)·n)) into w. */
function countDraws(idx: Int32Array, b: number, n: number, w: Float64Array): void {
  w.fill(0);
  for (let i = b * n, e = (b + 1) * n; i < e; i++) w[idx[i]] += 1;
}

/**
 * Stratified bootstrap of the OOD metrics (AUROC, AUPR-In, AUPR-Out, FPR95 as `oodMetrics`): the
 * in-distribution scores are resampled from Philox stream (seed, 0), the OOD scores from
 * (seed, 1), and the metrics recomputed per resample. The scores are sorted once; each resample
 * costs O(nIn + nOut) (draw counts as weights, see {@link weightedOodMetrics}), and its metrics
 * equal `oodMetrics` of the resampled arrays (to rounding: sums in another order).
 */
export function bootstrapOodMetrics(inScores: ArrayLike<number>, outScores: ArrayLike<number>, opts: BootstrapOptions = {}): OodIntervals {
  const { B, level, seed } = checkOpts('bootstrapOodMetrics', opts);
  const nIn = inScores.length;
  const nOut = outScores.length;
  if (nIn === 0 || nOut === 0) throw new ArgumentError(`bootstrapOodMetrics: both score sets must be non-empty (got ${nIn} in-distribution, ${nOut} OOD)`);
  const point = oodMetrics(inScores, outScores);
  const r = bootstrapOodMetricsMean([{ inScores, outScores }], { resamples: B, level, seed });
  return Object.fromEntries(OOD_KEYS.map((k) => [k, { ...r.mean[k], value: point[k] }])) as OodIntervals;
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
  const keys = OOD_KEYS;
  const perRun = runs.map((r) => oodMetrics(r.inScores, r.outScores));
  const point = Object.fromEntries(keys.map((k) => [k, perRun.reduce((a, m) => a + m[k], 0) / runs.length])) as unknown as OodReport;
  const iIn = bootstrapIndices(nIn, B, seed, 0);
  const iOut = bootstrapIndices(nOut, B, seed, 1);
  const stats = Object.fromEntries(keys.map((k) => [k, new Float64Array(B)])) as Record<(typeof keys)[number], Float64Array>;
  const sorted = runs.map((r) => sortScores(r.inScores, r.outScores));
  const wIn = new Float64Array(nIn);
  const wOut = new Float64Array(nOut);
  for (let b = 0; b < B; b++) {
    countDraws(iIn, b, nIn, wIn);
    countDraws(iOut, b, nOut, wOut);
    for (const ss of sorted) {
      const m = weightedOodMetrics(ss, wIn, wOut);
      for (const k of keys) stats[k][b] += m[k] / runs.length;
    }
  }
  return { mean: Object.fromEntries(keys.map((k) => [k, percentileInterval(point[k], stats[k], level)])) as OodIntervals, perRun };
}
