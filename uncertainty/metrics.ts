/**
 * Evaluation metrics for uncertainty: pure functions on number arrays / typed arrays, computed
 * in float64, plus streaming accumulators. No tensors here: read results back with
 * `await t.data()` first.
 *
 * Conventions (docs/methods.md, "Metrics"):
 * - Binary ranking metrics take `(scores, labels, { positive })`: `positive` is the label value
 *   of the positive class (every other label value is negative), and a HIGHER score means "more
 *   likely positive". Ties are handled by averaging (AUROC) or by moving all tied samples across
 *   a threshold together (AP, ROC, FPR@TPR), so results never depend on input order.
 * - OOD helpers (`auprIn`, `auprOut`, `oodMetrics`) take scores oriented the library's way
 *   (higher = more OOD) and name the OOD label explicitly with `{ oodLabel }`.
 * - Calibration metrics take `(confidence, correct)`: confidence in [0, 1] of the predicted class,
 *   `correct` 1/true where the prediction was right. `confidenceAndCorrect` derives them from a
 *   probability matrix and labels.
 * - Bad input throws {@link MetricError} (`reason`: 'one-class', 'length', 'nan', 'empty', 'range').
 */
import { MetricError } from './errors.js';
import { classIndexLabels, rowLogsumexp } from './host.js';

/** A binary/class label: a number (class index, 0/1, −1/1, ...) or a boolean. */
export type MetricLabel = number | boolean;
/** Labels as any array-like of numbers or booleans. */
export type MetricLabels = ArrayLike<number> | readonly boolean[];
/** A probability (or logit) matrix: rows as arrays, or one flat row-major array plus `numClasses`. */
export type ProbMatrix = readonly ArrayLike<number>[] | ArrayLike<number>;

export interface PositiveOptions {
  /** The label value of the positive class; every other value is negative. */
  positive: MetricLabel;
}

// ---------------------------------------------------------------------------------------------
// validation helpers

function checkScores(name: string, what: string, xs: ArrayLike<number>, allowInf = true): void {
  for (let i = 0; i < xs.length; i++) {
    const v = xs[i];
    if (typeof v !== 'number' || Number.isNaN(v)) throw new MetricError(`${name}: ${what}[${i}] is ${v} (NaN or not a number); remove or impute NaN values first`, 'nan');
    if (!allowInf && !Number.isFinite(v)) throw new MetricError(`${name}: ${what}[${i}] is ${v}; expected a finite number`, 'range');
  }
}

function checkLengths(name: string, a: string, na: number, b: string, nb: number): void {
  if (na !== nb) throw new MetricError(`${name}: ${a} has ${na} entries but ${b} has ${nb}; they must have the same length`, 'length');
  if (na === 0) throw new MetricError(`${name}: empty input (0 samples)`, 'empty');
}

function labelValue(name: string, labels: MetricLabels, i: number): number {
  const v = labels[i] as number | boolean;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v !== 'number' || Number.isNaN(v)) throw new MetricError(`${name}: labels[${i}] is ${v} (NaN or not a number)`, 'nan');
  return v;
}

/** Validates a binary problem and returns positive flags (1/0). */
function binarize(name: string, scores: ArrayLike<number>, labels: MetricLabels, positive: MetricLabel): Uint8Array {
  checkLengths(name, 'scores', scores.length, 'labels', labels.length);
  checkScores(name, 'scores', scores);
  if (positive === undefined || positive === null) throw new MetricError(`${name}: options.positive (the positive class label) is required`, 'range');
  const pos = typeof positive === 'boolean' ? (positive ? 1 : 0) : positive;
  const y = new Uint8Array(scores.length);
  let np = 0;
  for (let i = 0; i < y.length; i++) {
    y[i] = labelValue(name, labels, i) === pos ? 1 : 0;
    np += y[i];
  }
  if (np === 0 || np === y.length) {
    throw new MetricError(
      `${name}: only one class is present (${np} samples with label ${String(positive)} = positive, ${y.length - np} negative); the metric needs both`,
      'one-class',
    );
  }
  return y;
}

function correctFlags(name: string, correct: MetricLabels): Uint8Array {
  const y = new Uint8Array(correct.length);
  for (let i = 0; i < y.length; i++) {
    const v = labelValue(name, correct, i);
    if (v !== 0 && v !== 1) throw new MetricError(`${name}: correct[${i}] is ${v}; expected 0/1 or a boolean`, 'range');
    y[i] = v;
  }
  return y;
}

function checkConfidence(name: string, conf: ArrayLike<number>): void {
  checkScores(name, 'confidence', conf);
  for (let i = 0; i < conf.length; i++) {
    if (conf[i] < 0 || conf[i] > 1) throw new MetricError(`${name}: confidence[${i}] = ${conf[i]} is outside [0, 1]`, 'range');
  }
}

/** Indices sorted by score descending (stable: ties keep input order). */
function orderDesc(scores: ArrayLike<number>): Int32Array {
  const idx = new Int32Array(scores.length);
  for (let i = 0; i < idx.length; i++) idx[i] = i;
  return idx.sort((a, b) => scores[b] - scores[a] || a - b);
}

// ---------------------------------------------------------------------------------------------
// ranking metrics

/**
 * Area under the ROC curve with ties counted ½:
 * AUROC = U / (n₊ n₋), U = #{(i,j): s_i > s_j} + ½ #{(i,j): s_i = s_j} over positive i,
 * negative j (the Mann-Whitney U statistic), computed from average ranks in O(n log n).
 * Higher scores are taken to indicate the positive class; AUROC(s, positive=a) =
 * AUROC(−s, positive=b) for a two-class problem.
 */
export function auroc(scores: ArrayLike<number>, labels: MetricLabels, opts: PositiveOptions): number {
  const y = binarize('auroc', scores, labels, opts.positive);
  const n = y.length;
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  idx.sort((a, b) => scores[a] - scores[b]);
  let rankSumPos = 0;
  let np = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const avgRank = (i + j + 2) / 2; // ranks are 1-based: i+1 .. j+1
    for (let k = i; k <= j; k++) {
      if (y[idx[k]]) {
        rankSumPos += avgRank;
        np++;
      }
    }
    i = j + 1;
  }
  const nn = n - np;
  const u = rankSumPos - (np * (np + 1)) / 2;
  return u / (np * nn);
}

/** One point per distinct threshold, from "nothing positive" to "everything positive". */
export interface RocCurve {
  /** False-positive rates, non-decreasing, from 0 to 1. */
  fpr: Float64Array;
  /** True-positive rates, non-decreasing, from 0 to 1. */
  tpr: Float64Array;
  /** Thresholds τ (predict positive when score ≥ τ), decreasing; thresholds[0] = +∞. */
  thresholds: Float64Array;
}

interface Steps {
  /** Cumulative positives / negatives when predicting positive for score ≥ thresholds[k]. */
  tp: Float64Array;
  fp: Float64Array;
  thresholds: Float64Array;
  np: number;
  nn: number;
}

/** Cumulative counts at each distinct score (descending); index 0 is the empty set at τ = +∞. */
function steps(scores: ArrayLike<number>, y: Uint8Array): Steps {
  const idx = orderDesc(scores);
  const tp: number[] = [0];
  const fp: number[] = [0];
  const th: number[] = [Infinity];
  let ctp = 0;
  let cfp = 0;
  for (let i = 0; i < idx.length; ) {
    const s = scores[idx[i]];
    while (i < idx.length && scores[idx[i]] === s) {
      if (y[idx[i]]) ctp++;
      else cfp++;
      i++;
    }
    tp.push(ctp);
    fp.push(cfp);
    th.push(s);
  }
  return { tp: Float64Array.from(tp), fp: Float64Array.from(fp), thresholds: Float64Array.from(th), np: ctp, nn: cfp };
}

/**
 * The ROC curve: predict positive when score ≥ τ, for τ = +∞ and every distinct score in
 * decreasing order (tied samples move together).
 */
export function rocCurve(scores: ArrayLike<number>, labels: MetricLabels, opts: PositiveOptions): RocCurve {
  const y = binarize('rocCurve', scores, labels, opts.positive);
  const st = steps(scores, y);
  return { fpr: st.fp.map((v) => v / st.nn), tpr: st.tp.map((v) => v / st.np), thresholds: st.thresholds };
}

/** One point per distinct threshold (descending); see {@link precisionRecallCurve}. */
export interface PrCurve {
  /** Precision of "positive iff score ≥ thresholds[k]", k ≥ 1 (nothing is predicted at τ = +∞). */
  precision: Float64Array;
  /** Recall, non-decreasing to 1. */
  recall: Float64Array;
  /** The thresholds τ_k, decreasing. */
  thresholds: Float64Array;
}

/**
 * The precision–recall curve behind {@link averagePrecision}: predict positive when score ≥ τ,
 * for every distinct score in decreasing order (tied samples enter together); precision =
 * TP/(TP+FP), recall = TP/n₊. AP = Σ_k (R_k − R_{k−1})·P_k over these points (R_0 = 0).
 * Higher scores indicate the positive class (failure prediction: error = positive with the
 * negated confidence, as `auprError` does).
 */
export function precisionRecallCurve(scores: ArrayLike<number>, labels: MetricLabels, opts: PositiveOptions): PrCurve {
  const y = binarize('precisionRecallCurve', scores, labels, opts.positive);
  const st = steps(scores, y);
  const n = st.tp.length - 1;
  const precision = new Float64Array(n);
  const recall = new Float64Array(n);
  for (let k = 1; k <= n; k++) {
    precision[k - 1] = st.tp[k] / (st.tp[k] + st.fp[k]);
    recall[k - 1] = st.tp[k] / st.np;
  }
  return { precision, recall, thresholds: st.thresholds.slice(1) };
}

/**
 * Average precision (area under the precision-recall curve, step-wise, not interpolated):
 * AP = Σ_k (R_k − R_{k−1}) · P_k over the distinct thresholds τ_k (descending), where
 * P_k, R_k are the precision and recall of "positive iff score ≥ τ_k". Tied samples enter
 * together. Same definition as scikit-learn's `average_precision_score`. Higher scores are
 * taken to indicate the positive class. The chance level is the positive fraction n₊/n.
 */
export function averagePrecision(scores: ArrayLike<number>, labels: MetricLabels, opts: PositiveOptions): number {
  const y = binarize('averagePrecision', scores, labels, opts.positive);
  return apFromFlags(scores, y);
}

function apFromFlags(scores: ArrayLike<number>, y: Uint8Array): number {
  const st = steps(scores, y);
  let ap = 0;
  for (let k = 1; k < st.tp.length; k++) {
    const dr = (st.tp[k] - st.tp[k - 1]) / st.np;
    if (dr > 0) ap += (dr * st.tp[k]) / (st.tp[k] + st.fp[k]);
  }
  return ap;
}

export interface FprAtTprOptions extends PositiveOptions {
  /** The target true-positive rate (default 0.95). */
  tpr?: number;
}

/**
 * FPR at a target TPR (default 0.95, "FPR@95TPR"). Predict positive when score ≥ τ; τ is the
 * LARGEST threshold (τ ranges over +∞ and the distinct scores) whose TPR is ≥ the target, and
 * the result is that threshold's FPR. Tied scores cross τ together, so with ties the realised
 * TPR can exceed the target. Edge cases: all scores equal → TPR jumps from 0 to 1 at once and
 * the result is 1; perfectly separated classes → 0. Higher scores indicate the positive class.
 *
 * OOD convention (ODIN / Mahalanobis papers): in-distribution is positive (95% of ID accepted)
 * and the score is "more in-distribution", i.e. call it with the ID label as `positive` and the
 * NEGATED library score (library scores are higher = more OOD) — `oodMetrics` does that.
 * Failure prediction (ConfidNet): `positive` = correct, score = confidence.
 */
export function fprAtTpr(scores: ArrayLike<number>, labels: MetricLabels, opts: FprAtTprOptions): number {
  return fprAtTprDetail(scores, labels, opts).fpr;
}

/** {@link fprAtTpr} with the chosen threshold and the TPR actually reached there. */
export function fprAtTprDetail(scores: ArrayLike<number>, labels: MetricLabels, opts: FprAtTprOptions): { fpr: number; tpr: number; threshold: number } {
  const target = opts.tpr ?? 0.95;
  if (!(target > 0 && target <= 1)) throw new MetricError(`fprAtTpr: target tpr must be in (0, 1], got ${target}`, 'range');
  const y = binarize('fprAtTpr', scores, labels, opts.positive);
  const st = steps(scores, y);
  for (let k = 0; k < st.tp.length; k++) {
    // Integer comparison avoids float trouble: tp/np ≥ target ⇔ tp ≥ target·np (with a hair of slack).
    if (st.tp[k] >= target * st.np - 1e-9 * st.np) return { fpr: st.fp[k] / st.nn, tpr: st.tp[k] / st.np, threshold: st.thresholds[k] };
  }
  return { fpr: 1, tpr: 1, threshold: st.thresholds[st.thresholds.length - 1] }; // unreachable: the last step has TPR 1
}

// ---------------------------------------------------------------------------------------------
// OOD helpers (library orientation: higher score = more OOD)

export interface OodOptions {
  /** The label value that marks OOD samples; every other value is in-distribution. */
  oodLabel: MetricLabel;
}

function negate(xs: ArrayLike<number>): Float64Array {
  const r = new Float64Array(xs.length);
  for (let i = 0; i < r.length; i++) r[i] = -xs[i];
  return r;
}

/**
 * AUPR-Out: average precision with OOD as the positive class and the OOD score as is
 * (scores higher = more OOD, the library convention).
 */
export function auprOut(scores: ArrayLike<number>, labels: MetricLabels, opts: OodOptions): number {
  const y = binarize('auprOut', scores, labels, opts.oodLabel);
  return apFromFlags(scores, y);
}

/**
 * AUPR-In: average precision with IN-distribution as the positive class and the NEGATED OOD
 * score (−score = "more in-distribution").
 */
export function auprIn(scores: ArrayLike<number>, labels: MetricLabels, opts: OodOptions): number {
  const isOod = binarize('auprIn', scores, labels, opts.oodLabel);
  const y = isOod.map((v) => 1 - v);
  return apFromFlags(negate(scores), y);
}

export interface OodReport {
  /** AUROC with OOD positive (= AUROC with ID positive on −score). */
  auroc: number;
  auprIn: number;
  auprOut: number;
  /** Fraction of OOD samples accepted when 95% of ID samples are accepted (ID positive, −score). */
  fpr95: number;
}

/**
 * The usual OOD table from two score lists (library orientation: higher = more OOD):
 * AUROC, AUPR-In, AUPR-Out and FPR@95TPR (ID positive, ID accepted when −score ≥ τ).
 */
export function oodMetrics(inScores: ArrayLike<number>, outScores: ArrayLike<number>): OodReport {
  const n1 = inScores.length;
  const scores = new Float64Array(n1 + outScores.length);
  const labels = new Uint8Array(scores.length);
  for (let i = 0; i < n1; i++) scores[i] = inScores[i];
  for (let i = 0; i < outScores.length; i++) {
    scores[n1 + i] = outScores[i];
    labels[n1 + i] = 1;
  }
  return {
    auroc: auroc(scores, labels, { positive: 1 }),
    auprIn: auprIn(scores, labels, { oodLabel: 1 }),
    auprOut: auprOut(scores, labels, { oodLabel: 1 }),
    fpr95: fprAtTpr(negate(scores), labels, { positive: 0, tpr: 0.95 }),
  };
}

// ---------------------------------------------------------------------------------------------
// failure prediction

/**
 * AUPR-Error (Corbière et al. 2019): average precision with ERRORS as the positive class and
 * −confidence as the score.
 */
export function auprError(confidence: ArrayLike<number>, correct: MetricLabels): number {
  correctFlags('auprError', correct);
  const y = binarize('auprError', confidence, correct, false);
  return apFromFlags(negate(confidence), y);
}

/** AUPR-Success: average precision with correct predictions positive and confidence as score. */
export function auprSuccess(confidence: ArrayLike<number>, correct: MetricLabels): number {
  correctFlags('auprSuccess', correct);
  const y = binarize('auprSuccess', confidence, correct, true);
  return apFromFlags(confidence, y);
}

export interface RiskCoverage {
  /** Coverage k/n for k = 1..n. */
  coverage: Float64Array;
  /** Selective risk (error rate) among the k most confident samples (tie-aware, see aurc). */
  risk: Float64Array;
}

/**
 * Risk-coverage curve: keep the k most confident samples (k = 1..n) and report the error rate
 * among them. Tied confidences cannot be ordered, so inside a tied group the error count is
 * the expectation under a random order (linear interpolation across the group); the curve
 * therefore does not depend on input order.
 */
export function riskCoverageCurve(confidence: ArrayLike<number>, correct: MetricLabels): RiskCoverage {
  checkLengths('riskCoverageCurve', 'confidence', confidence.length, 'correct', correct.length);
  checkScores('riskCoverageCurve', 'confidence', confidence);
  const ok = correctFlags('riskCoverageCurve', correct);
  const n = ok.length;
  const idx = orderDesc(confidence);
  const coverage = new Float64Array(n);
  const risk = new Float64Array(n);
  let errorsBefore = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    let groupErr = 0;
    while (j < n && confidence[idx[j]] === confidence[idx[i]]) {
      groupErr += 1 - ok[idx[j]];
      j++;
    }
    const size = j - i;
    for (let k = i; k < j; k++) {
      const taken = k - i + 1;
      coverage[k] = (k + 1) / n;
      risk[k] = (errorsBefore + (groupErr * taken) / size) / (k + 1);
    }
    errorsBefore += groupErr;
    i = j;
  }
  return { coverage, risk };
}

/**
 * AURC, area under the risk-coverage curve (Geifman et al. 2019): the mean of the selective
 * risk over the n coverages k/n, AURC = (1/n) Σ_{k=1..n} risk(k) (see riskCoverageCurve for
 * ties). Lower is better; the optimum for error rate e is e + (1−e)·ln(1−e).
 */
export function aurc(confidence: ArrayLike<number>, correct: MetricLabels): number {
  const { risk } = riskCoverageCurve(confidence, correct);
  let s = 0;
  for (let i = 0; i < risk.length; i++) s += risk[i];
  return s / risk.length;
}

// ---------------------------------------------------------------------------------------------
// multi-class helpers

interface Rows {
  data: Float64Array;
  n: number;
  k: number;
}

function toRows(name: string, m: ProbMatrix, numClasses?: number): Rows {
  const isRows = Array.isArray(m) && m.length > 0 && typeof m[0] !== 'number';
  if (isRows) {
    const rows = m as readonly ArrayLike<number>[];
    const k = rows[0].length;
    if (numClasses !== undefined && numClasses !== k) throw new MetricError(`${name}: rows have ${k} columns but numClasses = ${numClasses}`, 'length');
    const data = new Float64Array(rows.length * k);
    for (let i = 0; i < rows.length; i++) {
      if (rows[i].length !== k) throw new MetricError(`${name}: row ${i} has ${rows[i].length} columns, row 0 has ${k}`, 'length');
      for (let j = 0; j < k; j++) data[i * k + j] = rows[i][j];
    }
    checkScores(name, 'probabilities', data);
    return { data, n: rows.length, k };
  }
  const flat = m as ArrayLike<number>;
  if (numClasses === undefined || !(numClasses >= 1) || !Number.isInteger(numClasses)) {
    throw new MetricError(`${name}: a flat probability array needs options.numClasses (a positive integer), got ${numClasses}`, 'range');
  }
  if (flat.length % numClasses !== 0) throw new MetricError(`${name}: ${flat.length} values are not a whole number of rows of ${numClasses} classes`, 'length');
  const data = Float64Array.from(flat as ArrayLike<number>);
  checkScores(name, 'probabilities', data);
  return { data, n: flat.length / numClasses, k: numClasses };
}

function classLabels(name: string, labels: ArrayLike<number>, n: number, k: number): Int32Array {
  checkLengths(name, 'probability rows', n, 'labels', labels.length);
  return classIndexLabels(name, labels, k, (message, problem) => new MetricError(message, problem));
}

export interface ClassOptions {
  /** Number of classes K; required when `probs` is one flat row-major array. */
  numClasses?: number;
}

/**
 * From class probabilities [N, K] and labels: the prediction (argmax, first maximum on ties),
 * its confidence (MCP = max_k p_k) and whether it is correct.
 */
export function confidenceAndCorrect(probs: ProbMatrix, labels: ArrayLike<number>, opts: ClassOptions = {}): { confidence: Float64Array; correct: Uint8Array; prediction: Int32Array } {
  const { data, n, k } = toRows('confidenceAndCorrect', probs, opts.numClasses);
  const y = classLabels('confidenceAndCorrect', labels, n, k);
  const confidence = new Float64Array(n);
  const correct = new Uint8Array(n);
  const prediction = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (data[i * k + j] > data[i * k + best]) best = j;
    prediction[i] = best;
    confidence[i] = data[i * k + best];
    correct[i] = best === y[i] ? 1 : 0;
  }
  return { confidence, correct, prediction };
}

/** Accuracy of argmax predictions (first maximum on ties) from probabilities or logits [N, K]. */
export function accuracy(probs: ProbMatrix, labels: ArrayLike<number>, opts: ClassOptions = {}): number {
  const { correct } = confidenceAndCorrect(probs, labels, opts);
  let s = 0;
  for (let i = 0; i < correct.length; i++) s += correct[i];
  return s / correct.length;
}

export interface NllOptions extends ClassOptions {
  /** p_y is clamped to at least eps before the log (default 1e-12), so a zero gives ≈ 27.6, not ∞. */
  eps?: number;
}

/** Negative log-likelihood, mean over samples of −ln max(p_{i,y_i}, eps), from probabilities. */
export function nll(probs: ProbMatrix, labels: ArrayLike<number>, opts: NllOptions = {}): number {
  const { data, n, k } = toRows('nll', probs, opts.numClasses);
  const y = classLabels('nll', labels, n, k);
  const eps = opts.eps ?? 1e-12;
  let s = 0;
  for (let i = 0; i < n; i++) s -= Math.log(Math.max(data[i * k + y[i]], eps));
  return s / n;
}

/** NLL from logits, mean of logsumexp(z_i) − z_{i,y_i}, computed stably in float64. */
export function nllFromLogits(logits: ProbMatrix, labels: ArrayLike<number>, opts: ClassOptions = {}): number {
  const { data, n, k } = toRows('nllFromLogits', logits, opts.numClasses);
  const y = classLabels('nllFromLogits', labels, n, k);
  let s = 0;
  for (let i = 0; i < n; i++) s += rowLogsumexp(data, i * k, k) - data[i * k + y[i]];
  return s / n;
}

/**
 * Multi-class Brier score: mean over samples of Σ_k (p_k − y_k)² with y one-hot. Range [0, 2].
 */
export function brier(probs: ProbMatrix, labels: ArrayLike<number>, opts: ClassOptions = {}): number {
  const { data, n, k } = toRows('brier', probs, opts.numClasses);
  const y = classLabels('brier', labels, n, k);
  let s = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) {
      const d = data[i * k + j] - (j === y[i] ? 1 : 0);
      s += d * d;
    }
  }
  return s / n;
}

// ---------------------------------------------------------------------------------------------
// calibration

export interface BinOptions {
  /** Number of bins M (default 15). */
  bins?: number;
}

/**
 * Equal-width bin of a confidence c ∈ [0, 1]: bin m covers (m/M, (m+1)/M], except bin 0 which
 * is [0, 1/M]. Edges are compared as the doubles m/M (no c·M rounding surprises).
 */
export function binIndex(c: number, bins: number): number {
  let m = Math.ceil(c * bins) - 1;
  if (m < 0) m = 0;
  if (m > bins - 1) m = bins - 1;
  while (m > 0 && c <= m / bins) m--;
  while (m < bins - 1 && c > (m + 1) / bins) m++;
  return m;
}

function checkBins(name: string, bins: number): void {
  if (!Number.isInteger(bins) || bins < 1) throw new MetricError(`${name}: bins must be a positive integer, got ${bins}`, 'range');
}

export interface ReliabilityDiagram {
  /** Bin edges, M+1 values 0, 1/M, ..., 1 (equal-width) or quantile edges (adaptive). */
  edges: Float64Array;
  /** Mean confidence per bin (NaN for empty bins). */
  confidence: Float64Array;
  /** Accuracy per bin (NaN for empty bins). */
  accuracy: Float64Array;
  /** Samples per bin. */
  count: Float64Array;
  /** Σ_m |B_m|/n · |acc(B_m) − conf(B_m)|. */
  ece: number;
  /** max over non-empty bins of |acc(B_m) − conf(B_m)|. */
  mce: number;
}

function diagramFromSums(edges: Float64Array, confSum: Float64Array, accSum: Float64Array, count: Float64Array): ReliabilityDiagram {
  const m = count.length;
  const confidence = new Float64Array(m);
  const acc = new Float64Array(m);
  let total = 0;
  for (let b = 0; b < m; b++) total += count[b];
  let ece = 0;
  let mce = 0;
  for (let b = 0; b < m; b++) {
    if (count[b] === 0) {
      confidence[b] = NaN;
      acc[b] = NaN;
      continue;
    }
    confidence[b] = confSum[b] / count[b];
    acc[b] = accSum[b] / count[b];
    const gap = Math.abs(acc[b] - confidence[b]);
    ece += (count[b] / total) * gap;
    mce = Math.max(mce, gap);
  }
  return { edges, confidence, accuracy: acc, count, ece, mce };
}

function uniformEdges(bins: number): Float64Array {
  const e = new Float64Array(bins + 1);
  for (let b = 0; b <= bins; b++) e[b] = b / bins;
  return e;
}

/**
 * Reliability-diagram data with M equal-width bins (default 15; bins (lo, hi], the first one
 * [0, 1/M]): per-bin mean confidence, accuracy and count, plus ECE and MCE (Guo et al. 2017).
 */
export function reliabilityDiagram(confidence: ArrayLike<number>, correct: MetricLabels, opts: BinOptions = {}): ReliabilityDiagram {
  const bins = opts.bins ?? 15;
  checkBins('reliabilityDiagram', bins);
  checkLengths('reliabilityDiagram', 'confidence', confidence.length, 'correct', correct.length);
  checkConfidence('reliabilityDiagram', confidence);
  const ok = correctFlags('reliabilityDiagram', correct);
  const confSum = new Float64Array(bins);
  const accSum = new Float64Array(bins);
  const count = new Float64Array(bins);
  for (let i = 0; i < ok.length; i++) {
    const b = binIndex(confidence[i], bins);
    confSum[b] += confidence[i];
    accSum[b] += ok[i];
    count[b]++;
  }
  return diagramFromSums(uniformEdges(bins), confSum, accSum, count);
}

/**
 * Expected calibration error (Naeini et al. 2015; Guo et al. 2017):
 * ECE = Σ_m |B_m|/n · |acc(B_m) − conf(B_m)| over M equal-width confidence bins (default 15,
 * bins (lo, hi], the first including 0). Lower is better.
 */
export function ece(confidence: ArrayLike<number>, correct: MetricLabels, opts: BinOptions = {}): number {
  return reliabilityDiagram(confidence, correct, opts).ece;
}

/** Maximum calibration error: max over non-empty equal-width bins of |acc(B_m) − conf(B_m)|. */
export function mce(confidence: ArrayLike<number>, correct: MetricLabels, opts: BinOptions = {}): number {
  return reliabilityDiagram(confidence, correct, opts).mce;
}

/**
 * Adaptive (equal-mass) reliability data (Nixon et al. 2019): samples sorted by confidence
 * (ties ordered incorrect-first so the result depends only on the multiset of
 * (confidence, correct) pairs) and cut into M contiguous groups whose sizes differ by at most
 * one (group m holds sorted positions ⌊m·n/M⌋ .. ⌊(m+1)·n/M⌋−1). With n < M some groups are
 * empty and are skipped. Tied confidences may straddle two groups. `edges` hold each group's
 * smallest confidence and, last, the overall maximum.
 */
export function adaptiveReliabilityDiagram(confidence: ArrayLike<number>, correct: MetricLabels, opts: BinOptions = {}): ReliabilityDiagram {
  const bins = opts.bins ?? 15;
  checkBins('adaptiveEce', bins);
  checkLengths('adaptiveEce', 'confidence', confidence.length, 'correct', correct.length);
  checkConfidence('adaptiveEce', confidence);
  const ok = correctFlags('adaptiveEce', correct);
  const n = ok.length;
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  idx.sort((a, b) => confidence[a] - confidence[b] || ok[a] - ok[b]);
  const confSum = new Float64Array(bins);
  const accSum = new Float64Array(bins);
  const count = new Float64Array(bins);
  const edges = new Float64Array(bins + 1).fill(NaN);
  for (let m = 0; m < bins; m++) {
    const lo = Math.floor((m * n) / bins);
    const hi = Math.floor(((m + 1) * n) / bins);
    if (hi > lo) edges[m] = confidence[idx[lo]];
    for (let p = lo; p < hi; p++) {
      confSum[m] += confidence[idx[p]];
      accSum[m] += ok[idx[p]];
      count[m]++;
    }
  }
  edges[bins] = confidence[idx[n - 1]];
  return diagramFromSums(edges, confSum, accSum, count);
}

/** Adaptive (equal-mass) ECE; see {@link adaptiveReliabilityDiagram}. */
export function adaptiveEce(confidence: ArrayLike<number>, correct: MetricLabels, opts: BinOptions = {}): number {
  return adaptiveReliabilityDiagram(confidence, correct, opts).ece;
}

// ---------------------------------------------------------------------------------------------
// streaming accumulators

class GrowableF64 {
  buf = new Float64Array(1024);
  length = 0;
  push(values: ArrayLike<number>): void {
    if (this.length + values.length > this.buf.length) {
      let cap = this.buf.length;
      while (cap < this.length + values.length) cap *= 2;
      const next = new Float64Array(cap);
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
    }
    for (let i = 0; i < values.length; i++) this.buf[this.length + i] = values[i];
    this.length += values.length;
  }
  view(): Float64Array {
    return this.buf.subarray(0, this.length);
  }
}

/**
 * Collects (score, label) batches for ranking metrics over a whole evaluation set. Batches are
 * validated as they arrive (lengths, NaN); the metrics see exactly the concatenation, so they
 * equal the one-shot functions.
 *
 * ```ts
 * const acc = new BinaryScoreAccumulator({ positive: 1 });
 * for (const batch of loader) acc.update(await score(batch.x).data(), batch.isOod);
 * acc.auroc();
 * ```
 */
export class BinaryScoreAccumulator {
  readonly positive: MetricLabel;
  private s = new GrowableF64();
  private y = new GrowableF64();

  constructor(opts: PositiveOptions) {
    this.positive = opts.positive;
  }

  update(scores: ArrayLike<number>, labels: MetricLabels): this {
    if (scores.length !== labels.length) throw new MetricError(`BinaryScoreAccumulator.update: scores has ${scores.length} entries but labels has ${labels.length}`, 'length');
    checkScores('BinaryScoreAccumulator.update', 'scores', scores);
    const ly = new Float64Array(labels.length);
    for (let i = 0; i < ly.length; i++) ly[i] = labelValue('BinaryScoreAccumulator.update', labels, i);
    this.s.push(scores);
    this.y.push(ly);
    return this;
  }

  get count(): number {
    return this.s.length;
  }

  /** The collected scores (a view; valid until the next update). */
  get scores(): Float64Array {
    return this.s.view();
  }

  /** The collected labels as numbers (booleans become 1/0). */
  get labels(): Float64Array {
    return this.y.view();
  }

  private get pos(): number {
    return typeof this.positive === 'boolean' ? (this.positive ? 1 : 0) : this.positive;
  }

  auroc(): number {
    return auroc(this.scores, this.labels, { positive: this.pos });
  }

  averagePrecision(): number {
    return averagePrecision(this.scores, this.labels, { positive: this.pos });
  }

  fprAtTpr(tpr = 0.95): number {
    return fprAtTpr(this.scores, this.labels, { positive: this.pos, tpr });
  }

  reset(): void {
    this.s = new GrowableF64();
    this.y = new GrowableF64();
  }
}

/**
 * Streaming calibration statistics in O(M) memory: per-bin confidence sums, correct counts
 * and counts for equal-width bins (ECE, MCE, reliability diagram), plus running NLL, Brier and
 * accuracy when batches come as probability matrices (`updateProbs`). Results equal the
 * one-shot functions on the concatenated data (up to float64 summation order). Adaptive ECE
 * needs all samples sorted and is not streamed.
 */
export class CalibrationAccumulator {
  readonly bins: number;
  private confSum: Float64Array;
  private accSum: Float64Array;
  private cnt: Float64Array;
  private nllSum = 0;
  private brierSum = 0;
  private probRows = 0;

  constructor(bins = 15) {
    checkBins('CalibrationAccumulator', bins);
    this.bins = bins;
    this.confSum = new Float64Array(bins);
    this.accSum = new Float64Array(bins);
    this.cnt = new Float64Array(bins);
  }

  /** Adds a batch of (confidence of the prediction, correct) pairs. */
  update(confidence: ArrayLike<number>, correct: MetricLabels): this {
    checkLengths('CalibrationAccumulator.update', 'confidence', confidence.length, 'correct', correct.length);
    checkConfidence('CalibrationAccumulator.update', confidence);
    const ok = correctFlags('CalibrationAccumulator.update', correct);
    for (let i = 0; i < ok.length; i++) {
      const b = binIndex(confidence[i], this.bins);
      this.confSum[b] += confidence[i];
      this.accSum[b] += ok[i];
      this.cnt[b]++;
    }
    return this;
  }

  /** Adds a batch of class probabilities [n, K] with labels; also tracks NLL and Brier. */
  updateProbs(probs: ProbMatrix, labels: ArrayLike<number>, opts: NllOptions = {}): this {
    const rows = toRows('CalibrationAccumulator.updateProbs', probs, opts.numClasses);
    const { confidence, correct } = confidenceAndCorrect(rows.data, labels, { numClasses: rows.k });
    this.update(confidence, correct);
    this.nllSum += nll(rows.data, labels, { numClasses: rows.k, eps: opts.eps }) * rows.n;
    this.brierSum += brier(rows.data, labels, { numClasses: rows.k }) * rows.n;
    this.probRows += rows.n;
    return this;
  }

  get count(): number {
    let s = 0;
    for (let b = 0; b < this.bins; b++) s += this.cnt[b];
    return s;
  }

  private requireData(name: string): void {
    if (this.count === 0) throw new MetricError(`CalibrationAccumulator.${name}: no samples accumulated yet`, 'empty');
  }

  reliability(): ReliabilityDiagram {
    this.requireData('reliability');
    return diagramFromSums(uniformEdges(this.bins), this.confSum.slice(), this.accSum.slice(), this.cnt.slice());
  }

  ece(): number {
    return this.reliability().ece;
  }

  mce(): number {
    return this.reliability().mce;
  }

  accuracy(): number {
    this.requireData('accuracy');
    let s = 0;
    for (let b = 0; b < this.bins; b++) s += this.accSum[b];
    return s / this.count;
  }

  /** Mean NLL over the batches given to `updateProbs`. */
  nll(): number {
    if (this.probRows === 0) throw new MetricError('CalibrationAccumulator.nll: no probability batches (updateProbs) accumulated', 'empty');
    return this.nllSum / this.probRows;
  }

  /** Mean Brier score over the batches given to `updateProbs`. */
  brier(): number {
    if (this.probRows === 0) throw new MetricError('CalibrationAccumulator.brier: no probability batches (updateProbs) accumulated', 'empty');
    return this.brierSum / this.probRows;
  }

  reset(): void {
    this.confSum.fill(0);
    this.accSum.fill(0);
    this.cnt.fill(0);
    this.nllSum = 0;
    this.brierSum = 0;
    this.probRows = 0;
  }
}
