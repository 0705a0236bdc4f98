/**
 * Bayesian linear regression with fixed basis functions (Bishop, PRML §3.3), in closed form on
 * the host in float64 (docs/methods.md, "Bayesian linear regression").
 *
 * Model: y = wᵀφ(x) + ε, ε ~ N(0, 1/β), prior w ~ N(0, α⁻¹ I). With the design matrix
 * Φ [N, M] (row n = φ(x_n)ᵀ) the posterior is N(μ, Σ) with
 *
 *   Σ = (α I + β ΦᵀΦ)⁻¹,   μ = β Σ Φᵀ y,
 *
 * and the predictive distribution at x* is N(μᵀφ*, σ²(x*)) with
 *
 *   σ²(x*) = 1/β  +  φ*ᵀ Σ φ*        (aleatoric noise + epistemic part).
 *
 * Without a prior precision (`alpha` omitted) the posterior is the maximum-likelihood one,
 * Σ = (β ΦᵀΦ)⁻¹, which needs a full-rank design. Type-II maximum likelihood ("evidence
 * approximation") re-estimates α and β by MacKay's fixed point (PRML eqs. 3.91–3.95):
 * γ = M − α tr Σ, α ← γ / μᵀμ, 1/β ← ‖y − Φμ‖² / (N − γ).
 *
 * Inputs are host arrays: a list of rows (`number[][]`, D features each) or, for 1-D inputs, a
 * plain list of numbers. Every matrix here is M×M with M the basis size, so this is meant for
 * bases of up to a few thousand functions.
 */
import { ArgumentError, ShapeError } from '../../engine/index.js';
import { SingularMatrixError, cholesky, choleskyInverse, choleskyLogDet } from './linalg.js';

/** Inputs: rows of D features, or a list of scalars (D = 1). */
export type RegressionInputs = readonly (readonly number[])[] | ArrayLike<number>;

/** A fixed feature map φ: R^D → R^M. */
export interface Basis {
  /** A short description ('polynomial(3)', ...). */
  readonly name: string;
  /** M for inputs of dimension D; throws for a D the basis cannot take. */
  size(inputDim: number): number;
  /** Writes φ(x) (length {@link size}) into `out`. */
  expand(x: ArrayLike<number>, out: Float64Array): void;
}

export interface BiasOption {
  /** Prepend the constant feature 1 (default true for linear/polynomial, false for Gaussian). */
  bias?: boolean;
}

function checkSize(name: string, m: number): number {
  if (m < 1) throw new ArgumentError(`${name}: the basis has size 0 (no features): give a bias or at least one function`);
  return m;
}

/** φ(x) = [1, x_1, …, x_D] (or without the 1). */
export function linearBasis(opts: BiasOption = {}): Basis {
  const bias = opts.bias ?? true;
  return {
    name: `linear${bias ? '' : '(no bias)'}`,
    size: (d) => checkSize('linearBasis', d + (bias ? 1 : 0)),
    expand(x, out) {
      let o = 0;
      if (bias) out[o++] = 1;
      for (let j = 0; j < x.length; j++) out[o++] = x[j];
    },
  };
}

/** φ(x) = [1, x_j, x_j², …, x_j^degree for every input dim j] (no cross terms). */
export function polynomialBasis(degree: number, opts: BiasOption = {}): Basis {
  if (!Number.isInteger(degree) || degree < 0) throw new ArgumentError(`polynomialBasis: degree must be a non-negative integer, got ${degree}`);
  const bias = opts.bias ?? true;
  checkSize(`polynomialBasis(${degree})`, degree + (bias ? 1 : 0));
  return {
    name: `polynomial(${degree})`,
    size: (d) => checkSize(`polynomialBasis(${degree})`, d * degree + (bias ? 1 : 0)),
    expand(x, out) {
      let o = 0;
      if (bias) out[o++] = 1;
      for (let j = 0; j < x.length; j++) {
        let p = 1;
        for (let k = 1; k <= degree; k++) out[o++] = p *= x[j];
      }
    },
  };
}

/**
 * Gaussian radial basis functions φ_j(x) = exp(−‖x − c_j‖² / (2 s²)) with centres c_j and width s
 * (and an optional constant feature). Far from every centre all φ_j → 0, so without a bias the
 * predictive variance falls back to the noise 1/β there.
 */
export function gaussianBasis(centres: RegressionInputs, width: number, opts: BiasOption = {}): Basis {
  if (!(width > 0) || !Number.isFinite(width)) throw new ArgumentError(`gaussianBasis: width must be a positive finite number, got ${width}`);
  const c = toRows('gaussianBasis', centres, false);
  const bias = opts.bias ?? false;
  checkSize('gaussianBasis', c.rows + (bias ? 1 : 0));
  const inv = 1 / (2 * width * width);
  return {
    name: `gaussian(${c.rows}, s=${width})`,
    size: (d) => {
      if (c.rows > 0 && d !== c.cols) throw new ShapeError(`gaussianBasis: centres have ${c.cols} features, inputs have ${d}`);
      return checkSize('gaussianBasis', c.rows + (bias ? 1 : 0));
    },
    expand(x, out) {
      let o = 0;
      if (bias) out[o++] = 1;
      for (let j = 0; j < c.rows; j++) {
        let d2 = 0;
        for (let k = 0; k < c.cols; k++) {
          const t = x[k] - c.data[j * c.cols + k];
          d2 += t * t;
        }
        out[o++] = Math.exp(-d2 * inv);
      }
    },
  };
}

interface Rows {
  data: Float64Array;
  rows: number;
  cols: number;
}

function toRows(name: string, x: RegressionInputs, nonEmpty = true): Rows {
  const n = x.length;
  if (nonEmpty && n === 0) throw new ShapeError(`${name}: no inputs (0 rows)`);
  const first = n > 0 ? (x as ArrayLike<unknown>)[0] : 0;
  if (typeof first === 'number') {
    const data = Float64Array.from(x as ArrayLike<number>);
    if (data.some((v) => !Number.isFinite(v))) throw new ArgumentError(`${name}: inputs must be finite`);
    return { data, rows: n, cols: 1 };
  }
  const r = x as readonly (readonly number[])[];
  const cols = r[0].length;
  const data = new Float64Array(n * cols);
  for (let i = 0; i < n; i++) {
    if (r[i].length !== cols) throw new ShapeError(`${name}: row ${i} has ${r[i].length} features, row 0 has ${cols}`);
    for (let j = 0; j < cols; j++) {
      const v = r[i][j];
      if (!Number.isFinite(v)) throw new ArgumentError(`${name}: inputs must be finite (row ${i}, feature ${j} is ${v})`);
      data[i * cols + j] = v;
    }
  }
  return { data, rows: n, cols };
}

/** The design matrix Φ [N, M] of `x` under `basis` (row-major float64). */
export function designMatrix(basis: Basis, x: RegressionInputs): { phi: Float64Array; n: number; m: number; inputDim: number } {
  const r = toRows(`designMatrix(${basis.name})`, x);
  const m = basis.size(r.cols);
  const phi = new Float64Array(r.rows * m);
  const row = new Float64Array(m);
  for (let i = 0; i < r.rows; i++) {
    basis.expand(r.data.subarray(i * r.cols, (i + 1) * r.cols), row);
    phi.set(row, i * m);
  }
  return { phi, n: r.rows, m, inputDim: r.cols };
}

export interface BlrOptions {
  /** The feature map (default {@link linearBasis}). */
  basis?: Basis;
  /** Prior precision α > 0 of w ~ N(0, α⁻¹ I); omitted = no prior (maximum likelihood, needs a full-rank design). */
  alpha?: number;
  /** Noise precision β > 0 (1/σ² of the observation noise). */
  beta: number;
}

/** Predictive distribution at test inputs. */
export interface BlrPrediction {
  /** μᵀφ(x*). */
  mean: Float64Array;
  /** σ²(x*) = 1/β + φ*ᵀΣφ*. */
  variance: Float64Array;
  /** φ*ᵀΣφ* alone (the part due to not knowing w). */
  epistemic: Float64Array;
}

export interface EvidenceOptions {
  /** Fixed-point iterations at most (default 200). */
  maxIter?: number;
  /** Stop when α and β change by less than this relative amount (default 1e-8). */
  tol?: number;
}

function checkPrecision(what: string, v: number | undefined, optional: boolean): void {
  if (v === undefined && optional) return;
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) {
    throw new ArgumentError(`BayesianLinearRegression: ${what} must be a positive finite number, got ${v}`);
  }
}

/**
 * Closed-form Bayesian linear regression (formulas in the module comment). `fit` computes the
 * posterior; `predict` the predictive mean and variance; `logEvidence` the log marginal
 * likelihood ln p(y | α, β); `fitEvidence` tunes α and β by type-II maximum likelihood.
 */
export class BayesianLinearRegression {
  readonly basis: Basis;
  alpha: number | undefined;
  beta: number;
  #mean: Float64Array | null = null;
  #cov: Float64Array | null = null;
  #logDetA = 0;
  #m = 0;
  #inputDim = 0;
  #phi: Float64Array | null = null;
  #y: Float64Array | null = null;
  #n = 0;

  constructor(opts: BlrOptions) {
    checkPrecision('alpha (the prior precision)', opts.alpha, true);
    checkPrecision('beta (the noise precision)', opts.beta, false);
    this.basis = opts.basis ?? linearBasis();
    this.alpha = opts.alpha;
    this.beta = opts.beta;
  }

  /** Posterior mean μ [M] (after `fit`). */
  get posteriorMean(): Float64Array {
    return this.#fitted().mean;
  }

  /** Posterior covariance Σ [M, M] row-major (after `fit`). */
  get posteriorCovariance(): Float64Array {
    return this.#fitted().cov;
  }

  /** Number of basis functions M (after `fit`). */
  get size(): number {
    return this.#m;
  }

  #fitted(): { mean: Float64Array; cov: Float64Array } {
    if (!this.#mean || !this.#cov) throw new ArgumentError('BayesianLinearRegression: call fit(x, y) first');
    return { mean: this.#mean, cov: this.#cov };
  }

  /** Computes the posterior N(μ, Σ) for inputs `x` ([N, D] rows or N scalars) and targets `y` [N]. */
  fit(x: RegressionInputs, y: ArrayLike<number>): this {
    const d = designMatrix(this.basis, x);
    if (y.length !== d.n) throw new ShapeError(`BayesianLinearRegression.fit: ${d.n} inputs but ${y.length} targets`);
    const yy = Float64Array.from(y);
    if (yy.some((v) => !Number.isFinite(v))) throw new ArgumentError('BayesianLinearRegression.fit: targets must be finite');
    this.#phi = d.phi;
    this.#y = yy;
    this.#n = d.n;
    this.#m = d.m;
    this.#inputDim = d.inputDim;
    this.#solve();
    return this;
  }

  #solve(): void {
    const phi = this.#phi!;
    const y = this.#y!;
    const n = this.#n;
    const M = this.#m;
    const a = new Float64Array(M * M);
    const phiTy = new Float64Array(M);
    for (let r = 0; r < n; r++) {
      const o = r * M;
      for (let i = 0; i < M; i++) {
        const pi = phi[o + i];
        phiTy[i] += pi * y[r];
        for (let j = 0; j <= i; j++) a[i * M + j] += pi * phi[o + j];
      }
    }
    for (let i = 0; i < M; i++) {
      for (let j = 0; j <= i; j++) {
        a[i * M + j] *= this.beta;
        a[j * M + i] = a[i * M + j];
      }
      a[i * M + i] += this.alpha ?? 0;
    }
    const l = cholesky(a, M);
    if (!l) {
      throw new SingularMatrixError(
        `BayesianLinearRegression.fit: the design ΦᵀΦ (${M}×${M}, basis ${this.basis.name}, ${n} points) is singular` +
          (this.alpha === undefined ? ' and there is no prior precision: give alpha > 0 or more informative data' : ` even with alpha = ${this.alpha}`),
      );
    }
    this.#logDetA = choleskyLogDet(l, M);
    this.#cov = choleskyInverse(l, M);
    const mean = new Float64Array(M);
    for (let i = 0; i < M; i++) {
      let s = 0;
      for (let j = 0; j < M; j++) s += this.#cov[i * M + j] * phiTy[j];
      mean[i] = this.beta * s;
    }
    this.#mean = mean;
  }

  /** Predictive mean and variance at `x` (rows or scalars, same D as in `fit`). */
  predict(x: RegressionInputs): BlrPrediction {
    const { mean: mu, cov } = this.#fitted();
    const d = designMatrix(this.basis, x);
    if (d.inputDim !== this.#inputDim) throw new ShapeError(`BayesianLinearRegression.predict: fitted on ${this.#inputDim} features, got ${d.inputDim}`);
    const M = this.#m;
    const mean = new Float64Array(d.n);
    const epistemic = new Float64Array(d.n);
    for (let r = 0; r < d.n; r++) {
      const f = d.phi.subarray(r * M, (r + 1) * M);
      let mval = 0;
      let q = 0;
      for (let i = 0; i < M; i++) {
        mval += mu[i] * f[i];
        let s = 0;
        for (let j = 0; j < M; j++) s += cov[i * M + j] * f[j];
        q += f[i] * s;
      }
      mean[r] = mval;
      epistemic[r] = q;
    }
    const variance = epistemic.map((v) => v + 1 / this.beta);
    return { mean, variance, epistemic };
  }

  /**
   * ln p(y | α, β) = (M/2) ln α + (N/2) ln β − E(μ) − ½ ln|A| − (N/2) ln 2π with
   * E(μ) = (β/2)‖y − Φμ‖² + (α/2) μᵀμ and A = αI + βΦᵀΦ (PRML eq. 3.86). Needs α.
   */
  logEvidence(): number {
    const { mean } = this.#fitted();
    if (this.alpha === undefined) throw new ArgumentError('BayesianLinearRegression.logEvidence: the evidence needs a prior precision alpha > 0');
    const M = this.#m;
    const n = this.#n;
    const rss = this.#rss(mean);
    let mm = 0;
    for (let i = 0; i < M; i++) mm += mean[i] * mean[i];
    const e = (this.beta / 2) * rss + (this.alpha / 2) * mm;
    return (M / 2) * Math.log(this.alpha) + (n / 2) * Math.log(this.beta) - e - this.#logDetA / 2 - (n / 2) * Math.log(2 * Math.PI);
  }

  #rss(mean: Float64Array): number {
    const phi = this.#phi!;
    const y = this.#y!;
    const M = this.#m;
    let rss = 0;
    for (let r = 0; r < this.#n; r++) {
      let f = 0;
      for (let i = 0; i < M; i++) f += phi[r * M + i] * mean[i];
      rss += (y[r] - f) ** 2;
    }
    return rss;
  }

  /**
   * Type-II maximum likelihood: fits, then iterates γ = M − α tr Σ, α ← γ/μᵀμ,
   * β ← (N − γ)/‖y − Φμ‖² (refitting after each step) until both change by less than `tol`
   * (relative). Starts from the current α (1 when none was given). Returns the number of
   * iterations and the final log evidence.
   */
  fitEvidence(x: RegressionInputs, y: ArrayLike<number>, opts: EvidenceOptions = {}): { iterations: number; logEvidence: number; gamma: number } {
    const maxIter = opts.maxIter ?? 200;
    const tol = opts.tol ?? 1e-8;
    if (this.alpha === undefined) this.alpha = 1;
    this.fit(x, y);
    const M = this.#m;
    const n = this.#n;
    let gamma = 0;
    let it = 0;
    for (; it < maxIter; it++) {
      const cov = this.#cov!;
      const mean = this.#mean!;
      let tr = 0;
      let mm = 0;
      for (let i = 0; i < M; i++) {
        tr += cov[i * M + i];
        mm += mean[i] * mean[i];
      }
      gamma = M - this.alpha * tr;
      const rss = this.#rss(mean);
      const alpha = gamma / Math.max(mm, 1e-300);
      const beta = (n - gamma) / Math.max(rss, 1e-300);
      if (!(alpha > 0 && beta > 0 && Number.isFinite(alpha) && Number.isFinite(beta))) break;
      const done = Math.abs(alpha - this.alpha) <= tol * this.alpha && Math.abs(beta - this.beta) <= tol * this.beta;
      this.alpha = alpha;
      this.beta = beta;
      this.#solve();
      if (done) break;
    }
    return { iterations: it + 1, logEvidence: this.logEvidence(), gamma };
  }
}


