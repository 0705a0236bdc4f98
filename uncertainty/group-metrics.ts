/**
 * Per-group evaluation (docs/methods.md, "Bias and class imbalance"): accuracy, expected
 * calibration error and negative log-likelihood computed separately on every subgroup of a test
 * set (a style, a class, a demographic attribute), with the worst group and the gap between the
 * best and the worst group. Averages hide a model that fails on a rare subgroup; these numbers
 * expose it.
 *
 * Host-side (the inputs are read-back arrays), built on the library's own `accuracy`, `ece`
 * and `nll` from metrics.ts, so a group's numbers equal those functions on that group's rows.
 */
import { Tensor } from '../engine/index.js';
import { MetricError } from './errors.js';
import { accuracy, confidenceAndCorrect, ece, nll, type ProbMatrix } from './metrics.js';

export interface GroupMetricsOptions {
  /** Number of classes K; required when `probs` is one flat row-major array. */
  numClasses?: number;
  /** ECE bins (default 15, as {@link ece}). */
  bins?: number;
  /** Names for the group ids in the result (default: the id as a string). */
  groupNames?: Readonly<Record<number, string>>;
}

/** Accuracy, ECE and NLL of one set of rows. */
export interface MetricSet {
  /** Number of rows. */
  count: number;
  /** Fraction of argmax predictions equal to the label. */
  accuracy: number;
  /** Expected calibration error of the max-probability confidence (equal-width bins). */
  ece: number;
  /** Mean −ln p_y (p clamped to 1e-12, as {@link nll}). */
  nll: number;
}

export interface GroupMetric extends MetricSet {
  /** The group id (as in `groups`). */
  group: number;
  name: string;
}

export interface GroupMetricsReport {
  /** All rows together. */
  overall: MetricSet;
  /** One entry per group id, ascending. */
  groups: GroupMetric[];
  /** The group with the lowest accuracy (the first on ties). */
  worstGroup: GroupMetric;
  /** max_g accuracy_g − min_g accuracy_g (≥ 0). */
  accuracyGap: number;
  /** overall accuracy − worst-group accuracy (≥ 0). */
  worstGroupGap: number;
}

function flatten(probs: ProbMatrix, numClasses: number | undefined): { data: Float64Array | ArrayLike<number>; k: number; n: number } {
  const isRows = Array.isArray(probs) && probs.length > 0 && typeof probs[0] !== 'number';
  if (!isRows) {
    const flat = probs as ArrayLike<number>;
    if (numClasses === undefined || !Number.isInteger(numClasses) || numClasses < 1) {
      throw new MetricError(`groupMetrics: a flat probability array needs options.numClasses (a positive integer), got ${numClasses}`, 'range');
    }
    if (flat.length % numClasses !== 0) throw new MetricError(`groupMetrics: ${flat.length} values are not a whole number of rows of ${numClasses} classes`, 'length');
    return { data: flat, k: numClasses, n: flat.length / numClasses };
  }
  const rows = probs as readonly ArrayLike<number>[];
  const k = rows[0].length;
  const data = new Float64Array(rows.length * k);
  rows.forEach((r, i) => {
    if (r.length !== k) throw new MetricError(`groupMetrics: row ${i} has ${r.length} columns, row 0 has ${k}`, 'length');
    data.set(Array.from(r), i * k);
  });
  return { data, k, n: rows.length };
}

function metricSet(data: ArrayLike<number>, labels: ArrayLike<number>, k: number, bins: number): MetricSet {
  const { confidence, correct } = confidenceAndCorrect(data, labels, { numClasses: k });
  return { count: labels.length, accuracy: accuracy(data, labels, { numClasses: k }), ece: ece(confidence, correct, { bins }), nll: nll(data, labels, { numClasses: k }) };
}

/**
 * Accuracy, ECE and NLL overall and per group, the worst group (lowest accuracy) and the gaps.
 * `probs` are class probabilities [N, K] (rows, or flat with `numClasses`), `labels` the classes
 * [N] and `groups` an integer group id per row [N]. Throws `MetricError` when the lengths differ,
 * a group id is not an integer, or only ONE group is present (reason 'one-class': a per-group
 * breakdown of one group is the overall number, almost certainly a mistake in the group labels).
 */
export function groupMetrics(probs: ProbMatrix, labels: ArrayLike<number>, groups: ArrayLike<number>, opts: GroupMetricsOptions = {}): GroupMetricsReport {
  const { data, k, n } = flatten(probs, opts.numClasses);
  if (labels.length !== n) throw new MetricError(`groupMetrics: ${n} probability rows but ${labels.length} labels; they must have the same length`, 'length');
  if (groups.length !== n) throw new MetricError(`groupMetrics: ${n} probability rows but ${groups.length} group ids; they must have the same length`, 'length');
  if (n === 0) throw new MetricError('groupMetrics: empty input (0 samples)', 'empty');
  const bins = opts.bins ?? 15;
  const rowsOf = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const g = groups[i];
    if (!Number.isInteger(g)) throw new MetricError(`groupMetrics: group id ${i} is ${g}; expected an integer`, 'range');
    let list = rowsOf.get(g);
    if (!list) rowsOf.set(g, (list = []));
    list.push(i);
  }
  const ids = [...rowsOf.keys()].sort((a, b) => a - b);
  if (ids.length < 2) {
    throw new MetricError(`groupMetrics: all ${n} rows are in group ${ids[0]}; a per-group breakdown needs at least two groups`, 'one-class');
  }
  const overall = metricSet(data, labels, k, bins);
  const out: GroupMetric[] = ids.map((g) => {
    const rows = rowsOf.get(g)!;
    const sub = new Float64Array(rows.length * k);
    const y = new Float64Array(rows.length);
    rows.forEach((r, j) => {
      for (let c = 0; c < k; c++) sub[j * k + c] = data[r * k + c];
      y[j] = labels[r];
    });
    return { group: g, name: opts.groupNames?.[g] ?? String(g), ...metricSet(sub, y, k, bins) };
  });
  let worst = out[0];
  let best = out[0];
  for (const m of out) {
    if (m.accuracy < worst.accuracy) worst = m;
    if (m.accuracy > best.accuracy) best = m;
  }
  return { overall, groups: out, worstGroup: worst, accuracyGap: best.accuracy - worst.accuracy, worstGroupGap: overall.accuracy - worst.accuracy };
}

/**
 * {@link groupMetrics} on tensors: `probs` [N, K] (probabilities; pass `softmax(logits, -1)`),
 * `labels` and `groups` int tensors or arrays [N]. Reads them back once.
 */
export async function groupMetricsOf(probs: Tensor, labels: Tensor | ArrayLike<number>, groups: Tensor | ArrayLike<number>, opts: Omit<GroupMetricsOptions, 'numClasses'> = {}): Promise<GroupMetricsReport> {
  if (probs.rank !== 2) throw new MetricError(`groupMetricsOf: expected probabilities [N, K], got [${probs.shape.join(',')}]`, 'length');
  const read = async (t: Tensor | ArrayLike<number>): Promise<ArrayLike<number>> => (t instanceof Tensor ? await t.data() : t);
  return groupMetrics(await probs.data(), await read(labels), await read(groups), { ...opts, numClasses: probs.shape[1] });
}
