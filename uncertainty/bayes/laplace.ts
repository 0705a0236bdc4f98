/**
 * The Laplace approximation of a trained network's weight posterior (MacKay 1992; Daxberger et
 * al. 2021 "Laplace Redux"; last-layer: Kristiadi, Hein & Hennig 2020). docs/methods.md,
 * "Laplace approximation".
 *
 * Around the trained (MAP) parameters θ* the log posterior is approximated to second order,
 * q(θ) = N(θ*, Σ) with Σ = (H + δ I)⁻¹, where δ is the prior precision (prior N(0, δ⁻¹ I)) and H
 * the curvature of the summed data NLL at θ*:
 *
 *   'ggn'      H = Σ_n J_nᵀ Λ_n J_n, J_n = ∂f(x_n)/∂θ [K, P] (the output Jacobian), Λ_n the
 *              Hessian of the NLL w.r.t. the outputs: p(1−p) for a binary logit,
 *              diag(p) − ppᵀ for softmax, 1/σ² for Gaussian regression. Positive semi-definite.
 *   'ef'       the empirical Fisher H = Σ_n g_n g_nᵀ with g_n = ∇_θ NLL_n (per-sample gradients).
 *   'hessian'  the exact Hessian of Σ_n NLL_n, row by row with Hessian-vector products (double
 *              backward); P backward passes, so for small nets only.
 *
 * The Jacobians come from ONE batched per-sample-gradient pass (nn/per-sample-grads.ts) on the
 * input repeated K times: row (k, b) of that batch has loss f_k(x_b), so its per-sample gradient
 * is row k of J_b. Structure 'full' keeps H as P×P; 'diag' only its diagonal. When the model is a
 * single Linear layer on [B, D] inputs (the last-layer case) J_b = I_K ⊗ φ̃_b with φ̃ = [φ, 1],
 * and the GGN and the predictive use that Kronecker structure directly instead:
 * H = Σ_b Λ_b ⊗ φ̃_b φ̃_bᵀ (one [K², B] × [B, D'²] matmul per chunk) and logits of sampled
 * weights W_s = W* + Δ_s as one batched matmul (the same numbers, K times fewer flops).
 *
 * Host side: H is accumulated, and (H + δI) factorised and inverted, on the host in float64
 * (Cholesky, uncertainty/bayes/linalg.ts); that is what bounds P (a few thousand at most).
 * Predictions use the linearised model (the GLM predictive of Immer et al. 2021) on the device:
 *
 *   f(x*) ~ N(f_θ*(x*), J* Σ J*ᵀ),
 *
 * either with the probit approximation, softmax_k(μ_k / √(1 + π/8 · C_kk)) (sigmoid for one
 * logit), or by Monte-Carlo over weights, θ_s − θ* = Δ_s ~ N(0, Σ), f_s = μ + J* Δ_s, all S
 * samples in one matmul. For a last-layer Laplace the logits are linear in the last-layer
 * weights, so this predictive is exact for the approximate posterior.
 *
 * The prior precision δ can be tuned by the Laplace marginal likelihood
 *   ln Z(δ) = −NLL(θ*) − ½ δ‖θ*‖² + (P/2) ln δ − ½ ln det(H + δ I)
 * (constants dropped) or by the NLL of the predictive on a validation set, both over a grid.
 */
import {
  ArgumentError, ShapeError, type Tensor, broadcastTo, concat, fmtShape, intTensor, matmul, noGrad, normal, sigmoid, softmax, tensor,
  tidy, unsqueeze, takeAlongAxis, gradients, withGrad, keep, indexSelect, ones,
} from '../../engine/index.js';
import type { Module } from '../../nn/module.js';
import { Linear } from '../../nn/layers/linear.js';
import { perSampleGrads } from '../../nn/per-sample-grads.js';
import { bceWithLogits, crossEntropy } from '../../nn/losses.js';
import { SingularMatrixError, cholesky, choleskyInverse, choleskyLogDet } from './linalg.js';

export type LaplaceLikelihood = 'binary' | 'classification' | 'regression';
export type LaplaceCurvature = 'ggn' | 'ef' | 'hessian';
export type LaplaceStructure = 'full' | 'diag';

export interface LaplaceOptions {
  /**
   * 'binary': the model outputs one logit [B, 1] (or [B]), targets are 0/1 floats;
   * 'classification': logits [B, K], int32 class targets; 'regression': [B, 1] (or [B]), float targets.
   */
  likelihood: LaplaceLikelihood;
  /** Curvature (default 'ggn'; see the module comment). */
  curvature?: LaplaceCurvature;
  /** 'full' P×P (default) or 'diag'. */
  structure?: LaplaceStructure;
  /** Prior precision δ > 0 (default 1). */
  priorPrecision?: number;
  /** Observation noise variance σ² of 'regression' (default 1). */
  noiseVariance?: number;
  /**
   * A fixed feature map applied to every input before the model (no gradient through it): for a
   * last-layer Laplace, the network without its last layer, with `model` the last Linear.
   */
  features?: (x: Tensor) => Tensor;
  /** Rows per batched pass (default 256). */
  batchSize?: number;
}

export interface LaplacePredictOptions {
  /** 'probit' (default) or 'mc' (Monte-Carlo over weights of the linearised model). */
  method?: 'probit' | 'mc';
  /** MC samples S (default 100). */
  samples?: number;
  /** Philox seed of the MC draws (default: the global generator). */
  seed?: number;
}

export interface LaplacePrediction {
  /** Predictive class probabilities [M, K] (binary: [M, 2] with column 1 the positive class); regression: the mean [M, 1]. */
  probs: Tensor;
  /** Mean of the linearised outputs f_θ*(x*), [M, K'] (K' = 1 for binary and regression). */
  fMean: Tensor;
  /** Their covariance J* Σ J*ᵀ, [M, K', K'] (regression: without the noise σ²). */
  fCov: Tensor;
  /** 'mc' only: the sampled probabilities [S, M, K] (summarise with `summarizeSamples`). */
  sampleProbs?: Tensor;
}

function checkPositive(what: string, v: number): void {
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new ArgumentError(`Laplace: ${what} must be a positive finite number, got ${v}`);
}

/** A Laplace approximation fitted around a model's current parameters (see the module comment). */
export class Laplace {
  readonly likelihood: LaplaceLikelihood;
  readonly curvature: LaplaceCurvature;
  readonly structure: LaplaceStructure;
  readonly noiseVariance: number;
  /** Number of parameters P. */
  readonly size: number;
  /** Number of training rows N the curvature was summed over. */
  readonly n: number;
  /** Σ_n NLL_n at θ* (for the marginal likelihood). */
  readonly nll: number;
  /** θ* flattened in `model.parameters()` order. */
  readonly mean: Float64Array;
  /** H (full: P×P row-major; diag: P), without the prior. */
  readonly curvatureMatrix: Float64Array;
  #delta: number;
  #cov: Float64Array | null = null; // full: Σ P×P; diag: σ² P
  #sampleFactor: Float64Array | null = null; // full: L⁻¹ with LLᵀ = H + δI (Δ = ε L⁻¹ has covariance Σ)
  #covTensor: Tensor | null = null;
  #factorTensor: Tensor | null = null;

  private constructor(
    readonly model: Module,
    readonly outputs: number,
    opts: LaplaceOptions,
    fitted: { size: number; n: number; nll: number; mean: Float64Array; h: Float64Array },
  ) {
    this.likelihood = opts.likelihood;
    this.curvature = opts.curvature ?? 'ggn';
    this.structure = opts.structure ?? 'full';
    this.noiseVariance = opts.noiseVariance ?? 1;
    this.features = opts.features ?? null;
    this.batchSize = opts.batchSize ?? 256;
    this.size = fitted.size;
    this.n = fitted.n;
    this.nll = fitted.nll;
    this.mean = fitted.mean;
    this.curvatureMatrix = fitted.h;
    this.#delta = opts.priorPrecision ?? 1;
  }

  readonly features: ((x: Tensor) => Tensor) | null;
  readonly batchSize: number;

  /**
   * Fits the curvature at the model's current parameters on the training data x [N, ...] and
   * targets y (binary: 0/1 floats [N]; classification: int32 [N]; regression: floats [N]).
   * Every parameter of `model` must belong to a Linear or Conv2d layer for 'ggn' and 'ef'.
   */
  static async fit(model: Module, x: Tensor, y: Tensor, opts: LaplaceOptions): Promise<Laplace> {
    const lik = opts.likelihood;
    if (lik !== 'binary' && lik !== 'classification' && lik !== 'regression') throw new ArgumentError(`Laplace.fit: likelihood must be 'binary', 'classification' or 'regression', got '${String(lik)}'`);
    const curvature = opts.curvature ?? 'ggn';
    if (!['ggn', 'ef', 'hessian'].includes(curvature)) throw new ArgumentError(`Laplace.fit: curvature must be 'ggn', 'ef' or 'hessian', got '${curvature}'`);
    const structure = opts.structure ?? 'full';
    if (structure !== 'full' && structure !== 'diag') throw new ArgumentError(`Laplace.fit: structure must be 'full' or 'diag', got '${String(structure)}'`);
    checkPositive('priorPrecision', opts.priorPrecision ?? 1);
    checkPositive('noiseVariance', opts.noiseVariance ?? 1);
    const bs = opts.batchSize ?? 256;
    if (!Number.isInteger(bs) || bs < 1) throw new ArgumentError(`Laplace.fit: batchSize must be a positive integer, got ${bs}`);
    if (x.rank < 1 || x.shape[0] === 0) throw new ShapeError(`Laplace.fit: expected a non-empty batch x [N, ...], got ${fmtShape(x.shape)}`);
    const N = x.shape[0];
    if (y.rank < 1 || y.shape[0] !== N) throw new ShapeError(`Laplace.fit: ${N} inputs but targets of shape ${fmtShape(y.shape)}`);
    const params = model.parameters();
    if (params.length === 0) throw new ArgumentError('Laplace.fit: the model has no parameters');
    const P = params.reduce((s, p) => s + p.size, 0);
    const mean = new Float64Array(P);
    let o = 0;
    for (const p of params) {
      mean.set(await p.data(), o);
      o += p.size;
    }
    const K = await outputCount(model, x, opts, lik);
    const h = new Float64Array(structure === 'full' ? P * P : P);
    let nll = 0;
    for (let s = 0; s < N; s += bs) {
      const len = Math.min(bs, N - s);
      const part = tidy(() => {
        const xb = featuresOf(opts, x.slice([s], [len]));
        const yb = y.slice([s], [len]);
        const curv = curvatureChunk(model, params, xb, yb, K, { ...opts, curvature, structure });
        const l = noGrad(() => nllSum(lik, model.forward(xb) as Tensor, yb, opts.noiseVariance ?? 1));
        return [curv, l];
      });
      const hv = await part[0].data();
      for (let i = 0; i < hv.length; i++) h[i] += hv[i];
      nll += await part[1].item();
      part.forEach((t) => t.dispose());
    }
    if (structure === 'full') for (let i = 0; i < P; i++) for (let j = 0; j < i; j++) h[i * P + j] = h[j * P + i] = 0.5 * (h[i * P + j] + h[j * P + i]);
    return new Laplace(model, K, { ...opts, curvature, structure }, { size: P, n: N, nll, mean, h });
  }

  /** The prior precision δ. */
  get priorPrecision(): number {
    return this.#delta;
  }

  set priorPrecision(d: number) {
    checkPositive('priorPrecision', d);
    if (d !== this.#delta) this.#invalidate();
    this.#delta = d;
  }

  #invalidate(): void {
    this.#cov = null;
    this.#sampleFactor = null;
    this.#covTensor?.dispose();
    this.#factorTensor?.dispose();
    this.#covTensor = null;
    this.#factorTensor = null;
    this.#kronCov?.dispose();
    this.#kronCov = null;
  }

  /** Frees the device copies of Σ (the host matrices stay). */
  dispose(): void {
    this.#invalidate();
  }

  /** The posterior precision H + δI (full P×P, or its diagonal). */
  get posteriorPrecision(): Float64Array {
    const P = this.size;
    const a = Float64Array.from(this.curvatureMatrix);
    if (this.structure === 'diag') for (let i = 0; i < P; i++) a[i] += this.#delta;
    else for (let i = 0; i < P; i++) a[i * P + i] += this.#delta;
    return a;
  }

  /** Σ = (H + δI)⁻¹ (full P×P, or the diagonal variances). */
  get posteriorCovariance(): Float64Array {
    this.#factor();
    return this.#cov!;
  }

  #factor(): void {
    if (this.#cov) return;
    const P = this.size;
    const a = this.posteriorPrecision;
    if (this.structure === 'diag') {
      if (a.some((v) => !(v > 0))) throw new SingularMatrixError(`Laplace: the diagonal posterior precision has a non-positive entry (curvature '${this.curvature}' with δ = ${this.#delta})`);
      this.#cov = a.map((v) => 1 / v);
      return;
    }
    const l = cholesky(a, P);
    if (!l) throw new SingularMatrixError(`Laplace: H + δI (${P}×${P}, curvature '${this.curvature}', δ = ${this.#delta}) is not positive definite; the exact Hessian can be indefinite away from a minimum: use 'ggn' or a larger prior precision`);
    this.#cov = choleskyInverse(l, P);
    // L⁻¹ (lower): rows of ε L⁻¹ have covariance L⁻ᵀL⁻¹ = (LLᵀ)⁻¹ = Σ.
    const m = new Float64Array(P * P);
    for (let j = 0; j < P; j++) {
      m[j * P + j] = 1 / l[j * P + j];
      for (let i = j + 1; i < P; i++) {
        let s = 0;
        for (let k = j; k < i; k++) s -= l[i * P + k] * m[k * P + j];
        m[i * P + j] = s / l[i * P + i];
      }
    }
    this.#sampleFactor = m;
  }

  /** ln Z(δ) = −NLL(θ*) − ½δ‖θ*‖² + (P/2) ln δ − ½ ln det(H + δI) at δ (default the current prior precision). */
  logMarginalLikelihood(delta = this.#delta): number {
    checkPositive('priorPrecision', delta);
    const P = this.size;
    let tt = 0;
    for (const v of this.mean) tt += v * v;
    let logDet: number;
    if (this.structure === 'diag') {
      logDet = 0;
      for (let i = 0; i < P; i++) logDet += Math.log(this.curvatureMatrix[i] + delta);
    } else {
      const a = Float64Array.from(this.curvatureMatrix);
      for (let i = 0; i < P; i++) a[i * P + i] += delta;
      const l = cholesky(a, P);
      if (!l) return -Infinity;
      logDet = choleskyLogDet(l, P);
    }
    return -this.nll - 0.5 * delta * tt + (P / 2) * Math.log(delta) - 0.5 * logDet;
  }

  /**
   * Tunes δ over `grid` (default 10^-4 … 10^4, 4 points per decade): 'marglik' maximises
   * {@link logMarginalLikelihood}; 'val-nll' minimises the NLL of the probit predictive on
   * (xVal, yVal). Sets and returns the chosen δ.
   */
  async optimizePriorPrecision(opts: { method?: 'marglik' | 'val-nll'; grid?: readonly number[]; xVal?: Tensor; yVal?: Tensor } = {}): Promise<number> {
    const grid = opts.grid ?? Array.from({ length: 33 }, (_, i) => 10 ** (-4 + i / 4));
    if (grid.length === 0) throw new ArgumentError('Laplace.optimizePriorPrecision: the grid is empty');
    grid.forEach((d) => checkPositive('grid value', d));
    const method = opts.method ?? 'marglik';
    let best = grid[0];
    let bestScore = -Infinity;
    if (method === 'marglik') {
      for (const d of grid) {
        const s = this.logMarginalLikelihood(d);
        if (s > bestScore) [best, bestScore] = [d, s];
      }
    } else if (method === 'val-nll') {
      if (!opts.xVal || !opts.yVal) throw new ArgumentError("Laplace.optimizePriorPrecision: method 'val-nll' needs xVal and yVal");
      if (this.likelihood === 'regression') throw new ArgumentError("Laplace.optimizePriorPrecision: 'val-nll' is for classification likelihoods");
      const saved = this.#delta;
      for (const d of grid) {
        this.priorPrecision = d;
        let s: number;
        try {
          const p = this.predict(opts.xVal);
          s = -(await classNll(p.probs, opts.yVal, this.likelihood));
          [p.probs, p.fMean, p.fCov].forEach((t) => t.dispose());
        } catch (e) {
          if (e instanceof SingularMatrixError) continue;
          throw e;
        }
        if (s > bestScore) [best, bestScore] = [d, s];
      }
      this.priorPrecision = saved;
    } else {
      throw new ArgumentError(`Laplace.optimizePriorPrecision: method must be 'marglik' or 'val-nll', got '${String(method)}'`);
    }
    this.priorPrecision = best;
    return best;
  }

  /** Output Jacobians of the model at x: J [B, K', P] and the outputs f [B, K'] (batched, see the module comment). */
  jacobians(x: Tensor): { J: Tensor; f: Tensor } {
    return tidy(() => {
      const xb = featuresOf(this, x);
      const params = this.model.parameters();
      const f = noGrad(() => (this.model.forward(xb) as Tensor).reshape([xb.shape[0], this.outputs]));
      return { J: outputJacobians(this.model, params, xb, this.outputs), f };
    });
  }

  /**
   * The predictive distribution at x [M, ...] (see the module comment): probit (default) or MC
   * over weights. Processes `batchSize` rows per pass.
   */
  predict(x: Tensor, opts: LaplacePredictOptions = {}): LaplacePrediction {
    const method = opts.method ?? 'probit';
    if (method !== 'probit' && method !== 'mc') throw new ArgumentError(`Laplace.predict: method must be 'probit' or 'mc', got '${String(method)}'`);
    const S = opts.samples ?? 100;
    if (method === 'mc' && (!Number.isInteger(S) || S < 1)) throw new ArgumentError(`Laplace.predict: samples must be a positive integer, got ${S}`);
    if (x.rank < 1) throw new ShapeError(`Laplace.predict: expected a batch [M, ...], got ${fmtShape(x.shape)}`);
    this.#factor();
    const P = this.size;
    const K = this.outputs;
    if (!this.#covTensor) this.#covTensor = keep(tensor(Array.from(this.#cov!), this.structure === 'full' ? [P, P] : [P]));
    if (method === 'mc' && this.structure === 'full' && !this.#factorTensor) this.#factorTensor = keep(tensor(Array.from(this.#sampleFactor!), [P, P]));
    const M = x.shape[0];
    // One draw of ε [P, S] for all rows (the same weight samples for every input).
    const eps = method === 'mc' ? normal([S, P], opts.seed === undefined ? {} : { seed: opts.seed }) : null;
    const delta = eps ? tidy(() => (this.structure === 'full' ? matmul(eps, this.#factorTensor!) : eps.mul(this.#covTensor!.sqrt()))) : null; // [S, P]
    eps?.dispose();
    try {
      const parts = { mean: [] as Tensor[], cov: [] as Tensor[], samples: [] as Tensor[] };
      for (let s = 0; s < Math.max(M, 1); s += this.batchSize) {
        const len = Math.min(this.batchSize, M - s);
        if (len <= 0) break;
        if (this.#kron(x)) {
          this.#kronChunk(x.slice([s], [len]), delta, parts);
          continue;
        }
        const { J, f } = this.jacobians(x.slice([s], [len])); // [B, K, P], [B, K]
        tidy(() => {
          const Jf = J.reshape([len * K, P]);
          const JS = this.structure === 'full' ? matmul(Jf, this.#covTensor!) : Jf.mul(this.#covTensor!);
          const cov = matmul(JS.reshape([len, K, P]), J, { transposeB: true }); // [B, K, K]
          parts.mean.push(keep(f));
          parts.cov.push(keep(cov));
          if (delta) parts.samples.push(keep(matmul(delta, Jf, { transposeB: true }).reshape([S, len, K]).add(unsqueeze(f, 0)))); // [S, B, K]
        });
        J.dispose();
      }
      const out = tidy(() => {
        const fMean = parts.mean.length === 1 ? parts.mean[0] : concat(parts.mean, 0);
        const fCov = parts.cov.length === 1 ? parts.cov[0] : concat(parts.cov, 0);
        const res: LaplacePrediction = { fMean, fCov, probs: null as unknown as Tensor };
        if (delta) {
          const fs = parts.samples.length === 1 ? parts.samples[0] : concat(parts.samples, 1);
          res.sampleProbs = this.#link(fs);
          res.probs = res.sampleProbs.mean(0);
          if (fs !== parts.samples[0]) fs.dispose();
        } else {
          res.probs = this.#probit(fMean, fCov);
        }
        return res;
      });
      const returned = new Set<Tensor>([out.fMean, out.fCov, out.probs, ...(out.sampleProbs ? [out.sampleProbs] : [])]);
      for (const t of [...parts.mean, ...parts.cov, ...parts.samples]) if (!returned.has(t)) t.dispose();
      return out;
    } finally {
      delta?.dispose();
    }
  }

  #kronCov: Tensor | null = null;

  #kron(x: Tensor): boolean {
    return this.model instanceof Linear && (this.features ? true : x.rank === 2) && !this.model.hasHooks();
  }

  /** One predictive chunk of a Linear model through its Kronecker structure (same results as the Jacobian path). */
  #kronChunk(x: Tensor, delta: Tensor | null, parts: { mean: Tensor[]; cov: Tensor[]; samples: Tensor[] }): void {
    const m = this.model as Linear;
    const K = m.outFeatures;
    const D = m.inFeatures;
    tidy(() => {
      const feats = featuresOf(this, x);
      if (feats.rank !== 2) throw new ShapeError(`Laplace.predict: the Linear model needs features [B, D], got ${fmtShape(feats.shape)}`);
      const B = feats.shape[0];
      const phi = augmented(m, feats);
      const Dp = phi.shape[1];
      const f = noGrad(() => m.forward(feats) as Tensor);
      let cov: Tensor;
      if (this.structure === 'diag') {
        // C[k,l] = δ_kl Σ_i φ_i² σ²_(k,i).
        const q = intTensor(Array.from(kroneckerIndex(m)));
        const inv = new Int32Array(q.size);
        kroneckerIndex(m).forEach((kIdx, a) => (inv[kIdx] = a));
        const v = indexSelect(this.#covTensor!, 0, intTensor(Array.from(inv))).reshape([K, Dp]);
        const ckk = matmul(phi.square(), v, { transposeB: true }); // [B, K]
        const eye = tensor(Array.from({ length: K * K }, (_, i) => (i % (K + 1) === 0 ? 1 : 0)), [1, K, K]);
        cov = ckk.reshape([B, K, 1]).mul(eye);
      } else {
        if (!this.#kronCov) {
          const kIdx = kroneckerIndex(m);
          const inv = new Int32Array(kIdx.length);
          kIdx.forEach((k, a) => (inv[k] = a));
          const ii = intTensor(Array.from(inv));
          this.#kronCov = keep(noGrad(() => indexSelect(indexSelect(this.#covTensor!, 0, ii), 1, ii).reshape([K, Dp, K * Dp]))); // Σ in (k,i),(l,j) order
        }
        const t = matmul(unsqueeze(phi, 0), this.#kronCov); // [K, B, K·D']
        cov = t.reshape([K, B, K, Dp]).mul(phi.reshape([1, B, 1, Dp])).sum(-1).permute([1, 0, 2]); // [B, K, K]
      }
      parts.mean.push(keep(f));
      parts.cov.push(keep(cov));
      if (delta) {
        // Sampled weights W_s = W* + Δ_s (parameter order: weight [K, D] then bias [K]).
        const S = delta.shape[0];
        const dW = delta.slice([0, 0], [S, K * D]).reshape([S, K, D]);
        let fs = matmul(unsqueeze(feats, 0), dW, { transposeB: true }); // [S, B, K]
        if (m.bias) fs = fs.add(delta.slice([0, K * D], [S, K]).reshape([S, 1, K]));
        parts.samples.push(keep(fs.add(unsqueeze(f, 0))));
      }
    });
  }

  /** Probabilities of outputs f [..., K'] under the likelihood's link (sigmoid → [.., 2], softmax, identity). */
  #link(f: Tensor): Tensor {
    if (this.likelihood === 'classification') return softmax(f, -1);
    if (this.likelihood === 'binary') {
      const p = sigmoid(f);
      return concat([p.neg().add(1), p], -1);
    }
    return f;
  }

  #probit(mean: Tensor, cov: Tensor): Tensor {
    if (this.likelihood === 'regression') return mean;
    const K = this.outputs;
    const eye = tensor(Array.from({ length: K * K }, (_, i) => (i % (K + 1) === 0 ? 1 : 0)), [1, K, K]);
    const variances = cov.mul(eye).sum(-1); // [M, K]
    const kappa = variances.mul(Math.PI / 8).add(1).rsqrt();
    return this.#link(mean.mul(kappa));
  }
}

// ---------------------------------------------------------------------------------------------

/** A single Linear layer on [B, D] inputs: the Kronecker fast paths apply. */
function isPlainLinear(model: Module, x: Tensor): boolean {
  return model instanceof Linear && x.rank === 2 && !model.hasHooks();
}

/** φ̃ = [φ, 1] (or φ without a bias), [B, D']. */
function augmented(m: Linear, x: Tensor): Tensor {
  return m.bias ? concat([x, ones([x.shape[0], 1], { backend: x.backend })], 1) : x;
}

/**
 * Kronecker order (k, i) with i < D' (i = D the bias) → parameter order (weight [K, D] row-major,
 * then bias [K]): q[a] for parameter index a is its Kronecker index.
 */
function kroneckerIndex(m: Linear): Int32Array {
  const K = m.outFeatures;
  const D = m.inFeatures;
  const Dp = m.bias ? D + 1 : D;
  const q = new Int32Array(K * Dp);
  for (let k = 0; k < K; k++) {
    for (let i = 0; i < D; i++) q[k * D + i] = k * Dp + i;
    if (m.bias) q[K * D + k] = k * Dp + D;
  }
  return q;
}

/** Σ_b Λ_b ⊗ φ̃_b φ̃_bᵀ in parameter order: [P, P] (full) or [P] (diag). */
function kroneckerGgn(m: Linear, x: Tensor, lam: Tensor, structure: LaplaceStructure): Tensor {
  const B = x.shape[0];
  const K = m.outFeatures;
  const phi = augmented(m, x);
  const Dp = phi.shape[1];
  const q = intTensor(Array.from(kroneckerIndex(m)));
  if (structure === 'diag') {
    const eye = tensor(Array.from({ length: K * K }, (_, i) => (i % (K + 1) === 0 ? 1 : 0)), [1, K, K]);
    const lamDiag = lam.mul(eye).sum(-1); // [B, K]
    return indexSelect(matmul(lamDiag, phi.square(), { transposeA: true }).reshape([K * Dp]), 0, q);
  }
  const outer = matmul(phi.reshape([B, Dp, 1]), phi.reshape([B, 1, Dp])).reshape([B, Dp * Dp]);
  const hk = matmul(lam.reshape([B, K * K]), outer, { transposeA: true }); // [(k,l), (i,j)]
  const h = hk.reshape([K, K, Dp, Dp]).permute([0, 2, 1, 3]).reshape([K * Dp, K * Dp]); // [(k,i), (l,j)]
  return indexSelect(indexSelect(h, 0, q), 1, q);
}

function featuresOf(o: { features?: ((x: Tensor) => Tensor) | null }, x: Tensor): Tensor {
  return o.features ? noGrad(() => o.features!(x)) : x;
}

async function outputCount(model: Module, x: Tensor, opts: LaplaceOptions, lik: LaplaceLikelihood): Promise<number> {
  const out = tidy(() => noGrad(() => model.forward(featuresOf(opts, x.slice([0], [1]))) as Tensor));
  const shape = out.shape;
  out.dispose();
  const K = shape.length === 1 ? 1 : shape.slice(1).reduce((a, b) => a * b, 1);
  if (shape.length > 2) throw new ShapeError(`Laplace.fit: the model must output [B, K] (or [B]), got ${fmtShape(shape)}`);
  if (lik !== 'classification' && K !== 1) throw new ShapeError(`Laplace.fit: likelihood '${lik}' needs one output per row ([B, 1] or [B]), the model gives ${fmtShape(shape)}`);
  if (lik === 'classification' && K < 2) throw new ShapeError(`Laplace.fit: 'classification' needs logits [B, K] with K ≥ 2, got ${fmtShape(shape)} (use 'binary' for one logit)`);
  return K;
}

/** Row (k, b) of a K-fold repeated batch has loss f_k(x_b): per-sample gradients are the Jacobian rows. [B, K, P]. */
function outputJacobians(model: Module, params: Tensor[], x: Tensor, K: number): Tensor {
  const B = x.shape[0];
  const xr = K === 1 ? x : broadcastTo(unsqueeze(x, 0), [K, ...x.shape]).reshape([K * B, ...x.shape.slice(1)]);
  const idx = intTensor(Array.from({ length: K * B }, (_, r) => Math.floor(r / B)), [K * B, 1]);
  const pick = (out: Tensor) => (K === 1 ? out.reshape([B]) : takeAlongAxis(out.reshape([K * B, K]), idx, 1).reshape([K * B]));
  return flatGrads(model, params, perSampleGrads(model, pick, xr, undefined, { params }), K * B).reshape([K, B, -1]).permute([1, 0, 2]);
}

function flatGrads(model: Module, params: Tensor[], g: Record<string, Tensor>, rows: number): Tensor {
  const byTensor = new Map(model.namedParameters().map(([n, t]) => [t, n] as const));
  const cols = params.map((p) => g[byTensor.get(p)!].reshape([rows, p.size]));
  return cols.length === 1 ? cols[0] : concat(cols, 1);
}

function perRowLoss(lik: LaplaceLikelihood, out: Tensor, y: Tensor, noiseVar: number): Tensor {
  const B = out.shape[0];
  if (lik === 'classification') return crossEntropy(out, y, { reduction: 'none' });
  const f = out.reshape([B]);
  const t = y.reshape([B]);
  if (lik === 'binary') return bceWithLogits(f, t, { reduction: 'none' });
  return f.sub(t).square().mul(0.5 / noiseVar);
}

function nllSum(lik: LaplaceLikelihood, out: Tensor, y: Tensor, noiseVar: number): Tensor {
  const s = perRowLoss(lik, out, y, noiseVar).sum();
  return lik === 'regression' ? s.add(0.5 * out.shape[0] * Math.log(2 * Math.PI * noiseVar)) : s;
}

/** Λ_b, the Hessian of the NLL w.r.t. the outputs, [B, K, K]. */
function outputHessian(lik: LaplaceLikelihood, f: Tensor, K: number, noiseVar: number): Tensor {
  const B = f.shape[0];
  if (lik === 'regression') return broadcastTo(tensor([1 / noiseVar], [1, 1, 1]), [B, 1, 1]);
  if (lik === 'binary') {
    const p = sigmoid(f.reshape([B, 1, 1]));
    return p.mul(p.neg().add(1));
  }
  const p = softmax(f, -1); // [B, K]
  const eye = tensor(Array.from({ length: K * K }, (_, i) => (i % (K + 1) === 0 ? 1 : 0)), [1, K, K]);
  const outer = matmul(p.reshape([B, K, 1]), p.reshape([B, 1, K]));
  return p.reshape([B, K, 1]).mul(eye).sub(outer);
}

function curvatureChunk(model: Module, params: Tensor[], x: Tensor, y: Tensor, K: number, opts: LaplaceOptions & { curvature: LaplaceCurvature; structure: LaplaceStructure }): Tensor {
  const B = x.shape[0];
  const P = params.reduce((s, p) => s + p.size, 0);
  const noiseVar = opts.noiseVariance ?? 1;
  if (opts.curvature === 'ggn' && isPlainLinear(model, x)) {
    const f = noGrad(() => (model.forward(x) as Tensor).reshape([B, K]));
    return kroneckerGgn(model as Linear, x, outputHessian(opts.likelihood, f, K, noiseVar), opts.structure);
  }
  if (opts.curvature === 'ggn') {
    const J = outputJacobians(model, params, x, K); // [B, K, P]
    const f = noGrad(() => (model.forward(x) as Tensor).reshape([B, K]));
    const LJ = matmul(outputHessian(opts.likelihood, f, K, noiseVar), J); // [B, K, P]
    if (opts.structure === 'diag') return J.mul(LJ).reshape([B * K, P]).sum(0);
    return matmul(J.reshape([B * K, P]), LJ.reshape([B * K, P]), { transposeA: true });
  }
  if (opts.curvature === 'ef') {
    const loss = (out: Tensor, t?: Tensor) => perRowLoss(opts.likelihood, out, t!, noiseVar);
    const G = flatGrads(model, params, perSampleGrads(model, loss, x, y, { params }), B); // [B, P]
    if (opts.structure === 'diag') return G.square().sum(0);
    return matmul(G, G, { transposeA: true });
  }
  // Exact Hessian, one Hessian-vector product per parameter coordinate (double backward).
  return withGrad(() => {
    const L = perRowLoss(opts.likelihood, model.forward(x) as Tensor, y, noiseVar).sum();
    const g = gradients(L, params, undefined, true);
    const gFlat = concat(g.map((t) => t.reshape([-1])), 0);
    const rows: Tensor[] = [];
    for (let i = 0; i < P; i++) {
      const hi = tidy(() => {
        const row = concat(gradients(gFlat.slice([i], [1]).sum(), params).map((t) => t.reshape([-1])), 0);
        return opts.structure === 'diag' ? row.slice([i], [1]) : row;
      });
      rows.push(hi);
    }
    return noGrad(() => (opts.structure === 'diag' ? concat(rows, 0) : concat(rows, 0).reshape([P, P])));
  });
}

async function classNll(probs: Tensor, y: Tensor, lik: LaplaceLikelihood): Promise<number> {
  const p = await probs.data();
  const K = probs.shape[1];
  const t = await y.data();
  let s = 0;
  for (let i = 0; i < t.length; i++) {
    const c = lik === 'binary' ? (t[i] > 0.5 ? 1 : 0) : t[i];
    s -= Math.log(Math.max(p[i * K + c], 1e-12));
  }
  return s / t.length;
}

/** A diagonal or full Laplace over the last Linear layer of a network (Kristiadi et al. 2020). */
export async function lastLayerLaplace(
  head: Module,
  features: (x: Tensor) => Tensor,
  x: Tensor,
  y: Tensor,
  opts: Omit<LaplaceOptions, 'features'>,
): Promise<Laplace> {
  return Laplace.fit(head, x, y, { ...opts, features });
}


