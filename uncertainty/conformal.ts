/**
 * Split conformal prediction (Vovk et al. 2005; Papadopoulos et al. 2002; the tutorial of
 * Angelopoulos & Bates 2023): a nonconformity score s(x, y) — higher = the label y conforms
 * LESS to the model's prediction for x — is computed on n held-out calibration pairs, and
 * q̂ is its ⌈(n+1)(1−α)⌉-th smallest value. For a new x the prediction set is
 * C(x) = {y : s(x, y) ≤ q̂}. If the calibration pairs and the test pair are exchangeable,
 * P(y ∈ C(x)) ≥ 1 − α for ANY model and score; with continuous (tie-free) scores also
 * ≤ 1 − α + 1/(n+1). See docs/methods.md, "Conformal prediction".
 *
 * Classification scores, on softmax probabilities p [B, K] (all labels at once, one batched
 * [B, K, K] comparison, no loop over rows or classes):
 * - `lac` (also called THR; Sadinle, Lei & Wasserman 2019): s = 1 − p_y.
 * - `aps` (Romano, Sesia & Candès 2020): order the classes by decreasing p (ties: lower class
 *   index first); s = Σ_{k ranked before y} p_k + u·p_y, with u ~ U[0, 1) per input when
 *   randomised and u = 1 when not.
 * - `raps` (Angelopoulos, Bates, Malik & Jordan 2021): the APS score + λ·max(0, o(x, y) − k_reg),
 *   o(x, y) ∈ {1..K} the rank of y in that order.
 *
 * Regression intervals: `absolute` residual s = |y − ŷ| (interval ŷ ± q̂), and CQR (Romano,
 * Patterson & Candès 2019) for lower / upper quantile heads: s = max(q_lo − y, y − q_hi),
 * interval [q_lo − q̂, q_hi + q̂].
 *
 * Sets are bool tensors [B, K] (true = the class is in the set); they may be empty (LAC, or
 * non-randomised APS when the top class alone scores above q̂) — the guarantee does not need
 * non-empty sets, and an empty set is an honest "no label is plausible at this level".
 */
import {
  abs, add, ArgumentError, arange, argmax, type Backend, cast, composite, DTypeError, eq, fmtShape, gt, IndexError, le, maximum, mul, noGrad, oneHot, reshape, ShapeError,
  sub, sum, takeAlongAxis, tensor, Tensor, tidy, uniform, unsqueeze,
} from '../engine/index.js';
import { asModelFn, type Detector, type FitData, forEachBatch, type ModelLike, type ScoredBatch } from './detector.js';
import { NotFittedError } from './errors.js';

/** Nonconformity scores for classification. `thr` is another name of `lac`. */
export type ConformalScore = 'lac' | 'thr' | 'aps' | 'raps';

/**
 * The calibration set is too small for the requested α: ⌈(n+1)(1−α)⌉ > n, so no finite q̂
 * exists. `minimum` is the smallest n that works for this α (n ≥ (1−α)/α).
 */
export class CalibrationSizeError extends ArgumentError {
  constructor(
    message: string,
    readonly n: number,
    readonly alpha: number,
    readonly minimum: number,
  ) {
    super(message);
  }
}

function checkAlpha(name: string, alpha: number): void {
  if (typeof alpha !== 'number' || !(alpha > 0 && alpha < 1)) {
    throw new ArgumentError(`${name}: alpha must be a number in (0, 1) (the miscoverage level), got ${alpha}`);
  }
}

/** The rank k = ⌈(n+1)(1−α)⌉ of the conformal quantile (1-based), computed with a 1e-9 guard against float rounding (e.g. 10·0.9). */
function quantileRank(n: number, alpha: number): number {
  return Math.ceil((n + 1) * (1 - alpha) - 1e-9);
}

/** The smallest calibration size n with ⌈(n+1)(1−α)⌉ ≤ n. */
export function minCalibrationSize(alpha: number): number {
  checkAlpha('minCalibrationSize', alpha);
  let n = Math.max(1, Math.floor((1 - alpha) / alpha) - 1);
  while (quantileRank(n, alpha) > n) n++;
  return n;
}

/**
 * The split-conformal quantile q̂ = the ⌈(n+1)(1−α)⌉-th smallest of the n calibration scores
 * (the finite-sample correction of the plain (1−α) quantile). Throws `ArgumentError` for α
 * outside (0, 1) or NaN scores, and {@link CalibrationSizeError} when n is below
 * {@link minCalibrationSize}(α).
 */
export function conformalQuantile(scores: ArrayLike<number>, alpha: number): number {
  checkAlpha('conformalQuantile', alpha);
  const n = scores.length;
  const r = quantileRank(n, alpha);
  if (r > n) {
    const m = minCalibrationSize(alpha);
    throw new CalibrationSizeError(
      `conformalQuantile: ${n} calibration scores are too few for alpha = ${alpha}: ⌈(n+1)(1−α)⌉ = ${r} > n; need at least n = ${m}`, n, alpha, m);
  }
  const s = Float64Array.from(scores);
  for (let i = 0; i < n; i++) if (Number.isNaN(s[i])) throw new ArgumentError(`conformalQuantile: scores[${i}] is NaN`);
  s.sort();
  return s[r - 1];
}

export interface ClassScoreOptions {
  /** Which score (default 'aps'). */
  score?: ConformalScore;
  /** APS / RAPS: add u·p_y with u ~ U[0,1) (true, default) or the whole p_y (false). Ignored by LAC. */
  randomized?: boolean;
  /** RAPS penalty weight λ ≥ 0 (default 0.01). */
  lambda?: number;
  /** RAPS: ranks up to k_reg are not penalised (default 5). */
  kReg?: number;
}

function resolveOpts(name: string, o: ClassScoreOptions): Required<ClassScoreOptions> {
  const score = o.score ?? 'aps';
  if (!['lac', 'thr', 'aps', 'raps'].includes(score)) throw new ArgumentError(`${name}: unknown score '${String(score)}' (expected 'lac', 'thr', 'aps' or 'raps')`);
  const lambda = o.lambda ?? 0.01;
  const kReg = o.kReg ?? 5;
  if (!(lambda >= 0) || !Number.isFinite(lambda)) throw new ArgumentError(`${name}: lambda must be a finite number ≥ 0, got ${lambda}`);
  if (!Number.isInteger(kReg) || kReg < 0) throw new ArgumentError(`${name}: kReg must be an integer ≥ 0, got ${kReg}`);
  return { score: score === 'thr' ? 'lac' : score, randomized: o.randomized ?? true, lambda, kReg };
}

function checkProbs(name: string, probs: Tensor): void {
  if (probs.rank !== 2) throw new ShapeError(`${name}: expected probabilities [B, K], got ${fmtShape(probs.shape)}`);
  if (probs.shape[1] === 0) throw new ShapeError(`${name}: the class axis is empty in ${fmtShape(probs.shape)}`);
  if (probs.dtype !== 'float32' && probs.dtype !== 'float64') throw new DTypeError(`${name}: probabilities must be float, got ${probs.dtype} ${fmtShape(probs.shape)}`);
}

/** u as a [B] tensor on probs' backend: the caller's values, or Philox uniforms from `seed` (or the global stream). */
function resolveU(name: string, probs: Tensor, u: Tensor | ArrayLike<number> | undefined, seed: number | undefined): Tensor {
  const B = probs.shape[0];
  if (u === undefined) return uniform([B], { backend: probs.backend, ...(seed === undefined ? {} : { seed }) });
  const t = u instanceof Tensor ? u : tensor(Float32Array.from(u), [u.length], { backend: probs.backend });
  if (t.rank !== 1 || t.shape[0] !== B) throw new ShapeError(`${name}: u must have one value per row, [${B}], got ${fmtShape(t.shape)} for probabilities ${fmtShape(probs.shape)}`);
  return t.dtype === probs.dtype ? t : cast(t, probs.dtype);
}

/**
 * The nonconformity score of EVERY label, [B, K] (entry (b, y) = s(x_b, y); higher = y fits
 * worse), from probabilities [B, K]. `u` ([B] values in [0, 1), or drawn from `seed`) is the
 * randomisation of APS / RAPS; one u per row is shared by all of its labels (Romano et al.).
 * Ranks use a strict order: decreasing p, ties broken by the lower class index.
 */
export function conformalClassScores(probs: Tensor, opts: ClassScoreOptions & { u?: Tensor | ArrayLike<number>; seed?: number } = {}): Tensor {
  const name = 'conformalClassScores';
  checkProbs(name, probs);
  const o = resolveOpts(name, opts);
  return noGrad(() => composite(() => {
    if (o.score === 'lac') return sub(1, probs);
    const K = probs.shape[1];
    const pk = unsqueeze(probs, 2); // [B, K(k), 1]
    const py = unsqueeze(probs, 1); // [B, 1, K(y)]
    // before[b, k, y] = 1 when class k is ranked strictly before class y.
    const idx = arange(0, K, 1, { backend: probs.backend });
    const lowerIndex = cast(gt(reshape(idx, [1, K]), reshape(idx, [K, 1])), probs.dtype); // [k, y]: k < y
    const before = add(cast(gt(pk, py), probs.dtype), mul(cast(eq(pk, py), probs.dtype), lowerIndex));
    const mass = sum(mul(before, pk), 1); // [B, K]: Σ_{k before y} p_k
    const u = o.randomized ? unsqueeze(resolveU(name, probs, opts.u, opts.seed), 1) : 1;
    let s = add(mass, mul(probs, u));
    if (o.score === 'raps' && o.lambda > 0) {
      const rank = add(sum(before, 1), 1); // o(x, y), 1-based
      s = add(s, mul(maximum(sub(rank, o.kReg), 0), o.lambda));
    }
    return s;
  }));
}

function labelTensor(name: string, labels: Tensor | ArrayLike<number>, B: number, K: number, backend: Backend): Tensor {
  let t: Tensor;
  if (labels instanceof Tensor) {
    t = labels;
    if (t.dtype !== 'int32') throw new DTypeError(`${name}: labels must be int32 class indices, got ${t.dtype} ${fmtShape(t.shape)}`);
  } else {
    const a = labels;
    for (let i = 0; i < a.length; i++) {
      if (!Number.isInteger(a[i]) || a[i] < 0 || a[i] >= K) throw new IndexError(`${name}: labels[${i}] = ${a[i]} is not a class index in [0, ${K})`);
    }
    t = tensor(Int32Array.from(a), [a.length], { dtype: 'int32', backend });
  }
  if (t.rank !== 1 || t.shape[0] !== B) throw new ShapeError(`${name}: expected one label per row, [${B}], got ${fmtShape(t.shape)}`);
  return t;
}

/** s(x_b, y_b) for the true labels: [B, K] scores and int32 labels [B] → [B]. */
function trueLabelScores(scores: Tensor, labels: Tensor): Tensor {
  return reshape(takeAlongAxis(scores, reshape(labels, [labels.shape[0], 1]), 1), [labels.shape[0]]);
}

export interface ConformalClassifierOptions extends ClassScoreOptions {
  /** Miscoverage level α ∈ (0, 1): sets cover the true label with probability ≥ 1 − α. */
  alpha: number;
  /**
   * Allow empty sets (default true: the plain rule {y : s ≤ q̂}). With false the top class
   * (argmax p, first on ties) is always added; sets only grow, so coverage stays ≥ 1 − α.
   */
  allowEmpty?: boolean;
}

/**
 * Split conformal classification. `calibrate(probs, labels)` on held-out data fixes q̂;
 * `predictSets(probs)` returns bool sets [B, K]. Calibration and prediction draw their own
 * u (pass `u` or `seed` for reproducibility). Default score APS, randomised.
 */
export class SplitConformalClassifier {
  readonly alpha: number;
  readonly options: Required<ClassScoreOptions>;
  readonly allowEmpty: boolean;
  private q: number | null = null;
  private nCal = 0;

  constructor(opts: ConformalClassifierOptions) {
    checkAlpha('SplitConformalClassifier', opts.alpha);
    this.alpha = opts.alpha;
    this.options = resolveOpts('SplitConformalClassifier', opts);
    this.allowEmpty = opts.allowEmpty ?? true;
  }

  /** q̂ after `calibrate` (throws `ArgumentError` before). */
  get qhat(): number {
    if (this.q === null) throw new NotFittedError('SplitConformalClassifier: call calibrate(probs, labels) before using qhat or predictSets');
    return this.q;
  }

  /** Number of calibration points used. */
  get calibrationSize(): number {
    return this.nCal;
  }

  /**
   * Scores the true labels of the calibration set (probabilities [n, K], labels [n]) and sets
   * q̂ = the ⌈(n+1)(1−α)⌉-th smallest (see {@link conformalQuantile}); too small an n throws
   * {@link CalibrationSizeError} naming the minimum.
   */
  async calibrate(probs: Tensor, labels: Tensor | ArrayLike<number>, opts: { u?: Tensor | ArrayLike<number>; seed?: number } = {}): Promise<this> {
    const name = 'SplitConformalClassifier.calibrate';
    checkProbs(name, probs);
    const [n, K] = probs.shape;
    const m = minCalibrationSize(this.alpha);
    if (n < m) {
      throw new CalibrationSizeError(`${name}: ${n} calibration points are too few for alpha = ${this.alpha}; need at least n = ${m} (⌈(n+1)(1−α)⌉ ≤ n)`, n, this.alpha, m);
    }
    const s = tidy(() => trueLabelScores(conformalClassScores(probs, { ...this.options, ...opts }), labelTensor(name, labels, n, K, probs.backend)));
    const host = await s.data();
    s.dispose();
    this.q = conformalQuantile(host, this.alpha);
    this.nCal = n;
    return this;
  }

  /** Prediction sets {y : s(x, y) ≤ q̂} as bool [B, K]. */
  predictSets(probs: Tensor, opts: { u?: Tensor | ArrayLike<number>; seed?: number } = {}): Tensor {
    checkProbs('SplitConformalClassifier.predictSets', probs);
    const q = this.qhat;
    return tidy(() => {
      const sets = le(conformalClassScores(probs, { ...this.options, ...opts }), q);
      if (this.allowEmpty) return sets;
      return gt(add(cast(sets, 'float32'), oneHot(argmax(probs, -1), probs.shape[1])), 0);
    });
  }
}

/**
 * The conformal set size as an uncertainty score (a {@link Detector}): score(x) = |C(x)|, the
 * number of classes in the split-conformal set of softmax(model(x)) at the classifier's α —
 * higher = more uncertain (1 is a confident, calibrated answer; K is "anything goes"; 0 is an
 * empty set, a less-than-any-label-plausible input under LAC or non-randomised APS). `fit`
 * calibrates the classifier on held-out in-distribution data with labels. Randomised scores
 * draw u from the global generator per call (non-randomised ones are deterministic).
 */
export class ConformalSetSizeDetector implements Detector {
  readonly name: string;
  private readonly fn: (x: Tensor) => Tensor;

  constructor(model: ModelLike, readonly classifier: SplitConformalClassifier, opts: { name?: string } = {}) {
    this.fn = asModelFn(model);
    this.name = opts.name ?? `conformal set size (${classifier.options.score}, α = ${classifier.alpha})`;
  }

  async fit(data: FitData): Promise<this> {
    const name = 'ConformalSetSizeDetector.fit';
    if (data.labels === undefined) throw new ArgumentError(`${name}: calibration needs labels`);
    const chunks: Float32Array[] = [];
    let K = 0;
    const rows = await forEachBatch(name, data.x, data.batchSize ?? 256, (x) => noGrad(() => tidy(() => this.fn(x).softmax(-1))), async (p) => {
      K = p.shape[1];
      chunks.push(Float32Array.from(await p.data()));
    });
    const labels = data.labels instanceof Tensor ? await data.labels.data() : data.labels;
    if (labels.length !== rows) throw new ShapeError(`${name}: ${rows} calibration inputs but ${labels.length} labels`);
    const flat = new Float32Array(rows * K);
    let o = 0;
    for (const c of chunks) {
      flat.set(c, o);
      o += c.length;
    }
    const probs = tensor(flat, [rows, K]);
    try {
      await this.classifier.calibrate(probs, Array.from(labels));
    } finally {
      probs.dispose();
    }
    return this;
  }

  score(x: Tensor): Tensor {
    this.classifier.qhat; // throws NotFittedError before fit / calibrate
    return tidy(() => noGrad(() => this.sizes(this.fn(x).softmax(-1))));
  }

  predict(x: Tensor): ScoredBatch {
    this.classifier.qhat;
    return tidy(() => noGrad(() => {
      const probs = this.fn(x).softmax(-1);
      return { prediction: argmax(probs, -1), score: this.sizes(probs) };
    }));
  }

  private sizes(probs: Tensor): Tensor {
    return sum(cast(this.classifier.predictSets(probs), 'float32'), 1);
  }
}

/** One stratum of {@link setMetrics}' size-stratified coverage. */
export interface SizeStratum {
  size: number;
  count: number;
  coverage: number;
}

export interface SetMetrics {
  /** Fraction of rows whose set holds the true label. */
  coverage: number;
  /** Mean number of classes per set. */
  meanSize: number;
  /** Coverage per exact set size (only sizes that occur), ascending. */
  sizeStratified: SizeStratum[];
  /**
   * The worst coverage over the non-empty set sizes (Angelopoulos et al. 2021's size-stratified
   * coverage, with one stratum per exact size; empty sets cover nothing by definition and are
   * counted by `emptyFraction` instead). NaN when every set is empty.
   */
  minStratifiedCoverage: number;
  /** Fraction of empty sets. */
  emptyFraction: number;
}

/**
 * Empirical coverage, mean size and size-stratified coverage of prediction sets (bool [B, K])
 * against true labels [B].
 */
export async function setMetrics(sets: Tensor, labels: Tensor | ArrayLike<number>): Promise<SetMetrics> {
  const name = 'setMetrics';
  if (sets.rank !== 2 || sets.dtype !== 'bool') throw new ShapeError(`${name}: expected bool sets [B, K], got ${sets.dtype} ${fmtShape(sets.shape)}`);
  const [B, K] = sets.shape;
  if (B === 0) throw new ArgumentError(`${name}: no rows`);
  const [covT, sizeT] = tidy(() => {
    const f = cast(sets, 'float32');
    const y = labelTensor(name, labels, B, K, sets.backend);
    return [trueLabelScores(f, y), sum(f, 1)];
  });
  const [cov, size] = await Promise.all([covT.data(), sizeT.data()]);
  covT.dispose();
  sizeT.dispose();
  const count = new Float64Array(K + 1);
  const hit = new Float64Array(K + 1);
  let c = 0;
  let s = 0;
  for (let i = 0; i < B; i++) {
    count[size[i]]++;
    hit[size[i]] += cov[i];
    c += cov[i];
    s += size[i];
  }
  const sizeStratified: SizeStratum[] = [];
  for (let k = 0; k <= K; k++) if (count[k] > 0) sizeStratified.push({ size: k, count: count[k], coverage: hit[k] / count[k] });
  return {
    coverage: c / B,
    meanSize: s / B,
    sizeStratified,
    minStratifiedCoverage: sizeStratified.some((t) => t.size > 0) ? Math.min(...sizeStratified.filter((t) => t.size > 0).map((t) => t.coverage)) : NaN,
    emptyFraction: count[0] / B,
  };
}

// ---------------------------------------------------------------------------------------------
// regression

/** What a conformal regressor is calibrated on: a point prediction ŷ [B], or quantile heads [B, 2] (lower, upper) for CQR. */
export type ConformalRegressionMethod = 'absolute' | 'cqr';

function regressionScores(name: string, method: ConformalRegressionMethod, pred: Tensor, y: Tensor): Tensor {
  checkRegressionPred(name, method, pred);
  if (y.rank !== 1 || y.shape[0] !== pred.shape[0]) throw new ShapeError(`${name}: expected targets [${pred.shape[0]}], got ${fmtShape(y.shape)} for predictions ${fmtShape(pred.shape)}`);
  return composite(() => {
    if (method === 'absolute') return abs(sub(y, pred));
    const B = pred.shape[0];
    const lo = reshape(takeAlongAxis(pred, tensor(new Int32Array(B), [B, 1], { dtype: 'int32', backend: pred.backend }), 1), [B]);
    const hi = reshape(takeAlongAxis(pred, tensor(new Int32Array(B).fill(1), [B, 1], { dtype: 'int32', backend: pred.backend }), 1), [B]);
    return maximum(sub(lo, y), sub(y, hi));
  });
}

function checkRegressionPred(name: string, method: ConformalRegressionMethod, pred: Tensor): void {
  if (method === 'absolute' && pred.rank !== 1) throw new ShapeError(`${name}: method 'absolute' expects point predictions [B], got ${fmtShape(pred.shape)}`);
  if (method === 'cqr' && (pred.rank !== 2 || pred.shape[1] !== 2)) throw new ShapeError(`${name}: method 'cqr' expects quantile predictions [B, 2] (lower, upper), got ${fmtShape(pred.shape)}`);
}

/**
 * Split conformal regression: `absolute` (interval ŷ ± q̂ with s = |y − ŷ|) or `cqr`
 * (conformalised quantile regression, Romano et al. 2019: s = max(q_lo − y, y − q_hi), interval
 * [q_lo − q̂, q_hi + q̂]; q̂ may be negative, shrinking intervals that were too wide).
 */
export class ConformalRegressor {
  readonly alpha: number;
  readonly method: ConformalRegressionMethod;
  private q: number | null = null;

  constructor(opts: { alpha: number; method?: ConformalRegressionMethod }) {
    checkAlpha('ConformalRegressor', opts.alpha);
    const m = opts.method ?? 'absolute';
    if (m !== 'absolute' && m !== 'cqr') throw new ArgumentError(`ConformalRegressor: unknown method '${String(m)}' (expected 'absolute' or 'cqr')`);
    this.alpha = opts.alpha;
    this.method = m;
  }

  get qhat(): number {
    if (this.q === null) throw new NotFittedError('ConformalRegressor: call calibrate(pred, y) before using qhat or predictIntervals');
    return this.q;
  }

  /** Calibrates on held-out predictions (ŷ [n] or quantiles [n, 2]) and targets y [n]. */
  async calibrate(pred: Tensor, y: Tensor): Promise<this> {
    const name = 'ConformalRegressor.calibrate';
    checkRegressionPred(name, this.method, pred);
    const m = minCalibrationSize(this.alpha);
    if (pred.shape[0] < m) {
      throw new CalibrationSizeError(`${name}: ${pred.shape[0]} calibration points are too few for alpha = ${this.alpha}; need at least n = ${m} (⌈(n+1)(1−α)⌉ ≤ n)`, pred.shape[0], this.alpha, m);
    }
    const s = noGrad(() => regressionScores(name, this.method, pred, y));
    const host = await s.data();
    s.dispose();
    this.q = conformalQuantile(host, this.alpha);
    return this;
  }

  /** Intervals { lower, upper }, each [B]. */
  predictIntervals(pred: Tensor): { lower: Tensor; upper: Tensor } {
    const name = 'ConformalRegressor.predictIntervals';
    checkRegressionPred(name, this.method, pred);
    const q = this.qhat;
    return noGrad(() => tidy(() => {
      if (this.method === 'absolute') return { lower: sub(pred, q), upper: add(pred, q) };
      const B = pred.shape[0];
      const col = (c: number) => reshape(takeAlongAxis(pred, tensor(new Int32Array(B).fill(c), [B, 1], { dtype: 'int32', backend: pred.backend }), 1), [B]);
      return { lower: sub(col(0), q), upper: add(col(1), q) };
    }));
  }
}

/** Empirical coverage P(lower ≤ y ≤ upper) and mean width of intervals ([B] each). */
export async function intervalMetrics(lower: Tensor, upper: Tensor, y: Tensor): Promise<{ coverage: number; meanWidth: number }> {
  const name = 'intervalMetrics';
  for (const [k, t] of [['lower', lower], ['upper', upper], ['y', y]] as const) {
    if (t.rank !== 1 || t.shape[0] !== y.shape[0]) throw new ShapeError(`${name}: ${k} must be [${y.shape[0]}] like y, got ${fmtShape(t.shape)}`);
  }
  if (y.shape[0] === 0) throw new ArgumentError(`${name}: no rows`);
  const [c, w] = tidy(() => {
    const inside = mul(cast(le(lower, y), 'float32'), cast(le(y, upper), 'float32'));
    return [sum(inside), sum(sub(upper, lower))];
  });
  const [cv, wv] = await Promise.all([c.item(), w.item()]);
  c.dispose();
  w.dispose();
  return { coverage: cv / y.shape[0], meanWidth: wv / y.shape[0] };
}

