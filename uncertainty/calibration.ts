/**
 * Temperature scaling (Guo et al. 2017, "On calibration of modern neural networks"): one
 * T > 0 for all classes, fitted on held-out LOGITS by minimising the NLL of softmax(z/T).
 *
 * How it is solved. With β = 1/T the mean NLL
 *   L(β) = (1/N) Σ_i [ logsumexp(β z_i) − β z_{i,y_i} ]
 * is CONVEX in β (a log-sum-exp of linear functions), with
 *   L'(β)  = (1/N) Σ_i ( E_{p_i(β)}[z_i] − z_{i,y_i} ),
 *   L''(β) = (1/N) Σ_i Var_{p_i(β)}[z_i] ≥ 0,   p_i(β) = softmax(β z_i).
 * So instead of optimising log T directly (not convex), we bracket the root of L' and run
 * Newton steps on β with a bisection fallback whenever a step leaves the bracket (a
 * safeguarded Newton, globally convergent for a monotone L'). All sums are float64 on the
 * host; each iteration is one O(N·K) pass. The result is reported both as T and as log T.
 * If the minimiser lies outside the allowed range (e.g. perfectly separated data wants T → 0,
 * logits anti-correlated with the labels want T → ∞), T is clamped to the bound and
 * `atBound` is set.
 */
import { ArgumentError, composite, div, fmtShape, ShapeError, softmax, Tensor } from '../engine/index.js';
import { NotFittedError } from './errors.js';
import { classIndexLabels, rowLogsumexp } from './host.js';

/** Logits as a [N, K] tensor, or a flat row-major host array plus `numClasses`. */
export type LogitsInput = Tensor | ArrayLike<number>;
/** Integer class labels [N] as a host array or an int32/float tensor. */
export type LabelsInput = Tensor | ArrayLike<number>;

export interface FitTemperatureOptions {
  /** Number of classes K; required when logits are a flat host array. */
  numClasses?: number;
  /** Maximum solver iterations (default 100). */
  maxIter?: number;
  /** Stop when |L'(β)| · β ≤ tol, i.e. |dL/d log T| ≤ tol (default 1e-10). */
  tol?: number;
  /** Allowed range of T (default [1e-3, 1e3]). */
  bounds?: [number, number];
  /** Warn (console.warn, once per process) when the input looks like probabilities (default true). */
  warn?: boolean;
}

export interface TemperatureFit {
  temperature: number;
  logTemperature: number;
  /** Mean NLL at T = 1 and at the fitted T. */
  nllBefore: number;
  nllAfter: number;
  iterations: number;
  converged: boolean;
  /** The optimum lies at or beyond a bound of `bounds`; T was clamped there. */
  atBound: boolean;
  /**
   * Every row is non-negative and sums to 1 within 1e-4: the caller probably passed
   * probabilities instead of logits (a classic temperature-scaling bug that makes ECE worse).
   */
  inputLooksLikeProbabilities: boolean;
}

let warnedProbabilities = false;

/** True when every row of the [n, k] matrix is non-negative and sums to 1 within 1e-4. */
export function rowsLookLikeProbabilities(z: ArrayLike<number>, n: number, k: number): boolean {
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < k; j++) {
      const v = z[i * k + j];
      if (v < 0) return false;
      s += v;
    }
    if (Math.abs(s - 1) > 1e-4) return false;
  }
  return true;
}

interface HostProblem {
  z: Float64Array;
  y: Int32Array;
  n: number;
  k: number;
}

function hostProblem(z: ArrayLike<number>, k: number, labels: ArrayLike<number>): HostProblem {
  if (!Number.isInteger(k) || k < 1) throw new ArgumentError(`fitTemperature: numClasses must be a positive integer, got ${k}`);
  if (z.length % k !== 0) throw new ShapeError(`fitTemperature: ${z.length} logits are not a whole number of rows of ${k} classes`);
  const n = z.length / k;
  if (labels.length !== n) throw new ShapeError(`fitTemperature: ${n} logit rows but ${labels.length} labels`);
  if (n === 0) throw new ArgumentError('fitTemperature: no samples');
  const zz = Float64Array.from(z);
  for (let i = 0; i < zz.length; i++) {
    if (!Number.isFinite(zz[i])) throw new ArgumentError(`fitTemperature: logit ${i} (row ${Math.floor(i / k)}) is ${zz[i]}; expected finite logits`);
  }
  return { z: zz, y: classIndexLabels('fitTemperature', labels, k), n, k };
}

/** L(β), L'(β), L''(β) of the mean NLL of softmax(β z), in float64. */
function nllDerivatives(p: HostProblem, beta: number): { f: number; g: number; h: number } {
  const { z, y, n, k } = p;
  let f = 0;
  let g = 0;
  let h = 0;
  for (let i = 0; i < n; i++) {
    const o = i * k;
    // With p = softmax(β z_i): L_i = lse(β z_i) − β z_{i,y}, L_i' = E_p[z] − z_{i,y}, L_i'' = Var_p[z].
    const lse = rowLogsumexp(z, o, k, beta);
    let ez = 0;
    let ez2 = 0;
    for (let j = 0; j < k; j++) {
      const pz = Math.exp(beta * z[o + j] - lse) * z[o + j];
      ez += pz;
      ez2 += pz * z[o + j];
    }
    f += lse - beta * z[o + y[i]];
    g += ez - z[o + y[i]];
    h += Math.max(ez2 - ez * ez, 0);
  }
  return { f: f / n, g: g / n, h: h / n };
}

/**
 * {@link fitTemperature} on host arrays: `logits` flat row-major [N, K], labels [N] class
 * indices. Synchronous.
 */
export function fitTemperatureHost(logits: ArrayLike<number>, numClasses: number, labels: ArrayLike<number>, opts: FitTemperatureOptions = {}): TemperatureFit {
  const p = hostProblem(logits, numClasses, labels);
  const maxIter = opts.maxIter ?? 100;
  const tol = opts.tol ?? 1e-10;
  const [tMin, tMax] = opts.bounds ?? [1e-3, 1e3];
  if (!(tMin > 0 && tMax > tMin && Number.isFinite(tMax))) throw new ArgumentError(`fitTemperature: bounds must satisfy 0 < min < max < ∞, got [${tMin}, ${tMax}]`);
  const looksLikeProbs = rowsLookLikeProbabilities(p.z, p.n, p.k);
  if (looksLikeProbs && (opts.warn ?? true) && !warnedProbabilities) {
    warnedProbabilities = true;
    console.warn('dubito fitTemperature: every input row is non-negative and sums to 1 — these look like probabilities, not logits. Temperature scaling must be fitted on logits (pass the pre-softmax outputs, or log-probabilities).');
  }
  const bLo = 1 / tMax;
  const bHi = 1 / tMin;
  const nllBefore = nllDerivatives(p, 1).f;
  const finish = (beta: number, iterations: number, converged: boolean, atBound: boolean): TemperatureFit => ({
    temperature: 1 / beta,
    logTemperature: -Math.log(beta),
    nllBefore,
    nllAfter: nllDerivatives(p, beta).f,
    iterations,
    converged,
    atBound,
    inputLooksLikeProbabilities: looksLikeProbs,
  });
  // L' is non-decreasing in β. The optimum is clamped when L' has no sign change in [bLo, bHi].
  const atLo = nllDerivatives(p, bLo);
  if (atLo.g >= 0) return finish(bLo, 0, true, true);
  const atHi = nllDerivatives(p, bHi);
  if (atHi.g <= 0) return finish(bHi, 0, true, true);
  let lo = bLo;
  let hi = bHi;
  let beta = Math.min(Math.max(1, lo), hi); // start at T = 1
  for (let it = 1; it <= maxIter; it++) {
    const d = nllDerivatives(p, beta);
    if (Math.abs(d.g) * beta <= tol) return finish(beta, it, true, false);
    if (d.g < 0) lo = beta;
    else hi = beta;
    let next = d.h > 0 ? beta - d.g / d.h : NaN;
    if (!(next > lo && next < hi)) {
      // Bisection fallback, in log β (the bracket can span six decades).
      next = Math.sqrt(lo * hi);
    }
    if (Math.abs(next - beta) <= 1e-15 * beta || hi - lo <= 1e-15 * hi) return finish(next, it, true, false);
    beta = next;
  }
  return finish(beta, maxIter, false, false);
}

async function hostArray(t: Tensor | ArrayLike<number>): Promise<ArrayLike<number>> {
  if (t instanceof Tensor) return t.data();
  return t;
}

/**
 * Fits a temperature T (Guo et al. 2017) minimising the mean NLL of softmax(z/T) over
 * held-out `logits` [N, K] (a tensor, or a flat host array with `opts.numClasses`) and integer
 * `labels` [N]. See the module comment for the solver (safeguarded Newton on β = 1/T, where
 * the NLL is convex). Warns once and sets `inputLooksLikeProbabilities` when the rows look
 * like probabilities.
 */
export async function fitTemperature(logits: LogitsInput, labels: LabelsInput, opts: FitTemperatureOptions = {}): Promise<TemperatureFit> {
  let k = opts.numClasses;
  if (logits instanceof Tensor) {
    if (logits.rank !== 2) throw new ShapeError(`fitTemperature: expected logits [N, K], got shape ${fmtShape(logits.shape)}`);
    if (k !== undefined && k !== logits.shape[1]) throw new ShapeError(`fitTemperature: logits ${fmtShape(logits.shape)} but numClasses = ${k}`);
    k = logits.shape[1];
  } else if (k === undefined) {
    throw new ArgumentError('fitTemperature: host logits need opts.numClasses');
  }
  const z = await hostArray(logits);
  const y = await hostArray(labels);
  return fitTemperatureHost(z, k, y, opts);
}

/** Scaled logits z / T: a tensor for a tensor, a Float64Array for a host array. */
export function applyTemperature(logits: Tensor, temperature: number): Tensor;
export function applyTemperature(logits: ArrayLike<number>, temperature: number): Float64Array;
export function applyTemperature(logits: Tensor | ArrayLike<number>, temperature: number): Tensor | Float64Array {
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new ArgumentError(`applyTemperature: temperature must be finite and > 0, got ${temperature}`);
  if (logits instanceof Tensor) return div(logits, temperature);
  const r = new Float64Array(logits.length);
  for (let i = 0; i < r.length; i++) r[i] = logits[i] / temperature;
  return r;
}

/**
 * Temperature scaling as a fit/transform object.
 *
 * ```ts
 * const ts = await new TemperatureScaler().fit(valLogits, valLabels);
 * const p = ts.predictProba(testLogits); // softmax(z / T)
 * ```
 */
export class TemperatureScaler {
  private fitted: TemperatureFit | null = null;

  /** The fitted T (throws NotFittedError before `fit`). */
  get temperature(): number {
    return this.result.temperature;
  }

  /** The full fit report (throws NotFittedError before `fit`). */
  get result(): TemperatureFit {
    if (!this.fitted) throw new NotFittedError('TemperatureScaler: call fit(logits, labels) before using the scaler');
    return this.fitted;
  }

  async fit(logits: LogitsInput, labels: LabelsInput, opts: FitTemperatureOptions = {}): Promise<this> {
    this.fitted = await fitTemperature(logits, labels, opts);
    return this;
  }

  /** Scaled logits z / T. */
  transform(logits: Tensor): Tensor;
  transform(logits: ArrayLike<number>): Float64Array;
  transform(logits: Tensor | ArrayLike<number>): Tensor | Float64Array {
    return logits instanceof Tensor ? applyTemperature(logits, this.temperature) : applyTemperature(logits, this.temperature);
  }

  /** Calibrated probabilities softmax(z / T) along the last axis. */
  predictProba(logits: Tensor): Tensor {
    const t = this.temperature;
    return composite(() => softmax(div(logits, t), -1));
  }
}
