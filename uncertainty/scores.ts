/**
 * Uncertainty / OOD scores as tensor functions. They are built from the library's own ops, so
 * they run on the WebGPU and CPU backends alike, are differentiable, and free their
 * intermediates (`composite`).
 *
 * THE RULE: every function named `…Score`, and every uncertainty measure here (entropy,
 * mutual information, variation ratio, variance, vacuity), returns HIGHER = MORE UNCERTAIN /
 * MORE LIKELY OOD. Where a paper defines an in-distribution *confidence* c (max softmax, max
 * logit), the score is its plain negation −c — no affine shift such as 1 − c — so score
 * values and thresholds map one-to-one onto the paper's numbers. Functions that return
 * probabilities or confidences (`softmaxConfidence`, `predictiveMean`, `dirichletMean`) say
 * so in their names and docs and are not scores.
 *
 * Shapes: logits z [B, K] (class axis last); stochastic probability samples P [T, B, K]
 * (T MC-dropout passes or ensemble members, each row a probability vector); Dirichlet
 * concentrations α [B, K] (α > 0). Natural logarithms throughout (nats).
 */
import {
  add, arange, argmax, ArgumentError, cast, composite, digamma, div, eq, exp, fmtShape, lgamma, log, logSoftmax, logsumexp, max, maximum, mean, mul, neg, reciprocal, reshape, ShapeError, softmax, sub, sum, type Tensor, variance,
} from '../engine/index.js';

function requireRank(name: string, t: Tensor, rank: number, what: string): void {
  if (t.rank !== rank) throw new ShapeError(`${name}: expected ${what} (rank ${rank}), got shape ${fmtShape(t.shape)}`);
  if (t.shape[t.rank - 1] === 0) throw new ShapeError(`${name}: the class axis is empty in ${fmtShape(t.shape)}`);
}

/** Smallest value fed to log when computing p·log p, so that p = 0 contributes 0, not NaN. */
const TINY = 1e-30;

/** Σ_k p_k ln p_k along the last axis, with 0·ln 0 = 0 (p clamped to ≥ 1e-30 inside the log). */
function sumPLogP(p: Tensor): Tensor {
  return composite(() => sum(mul(p, log(maximum(p, TINY))), -1));
}

// ---------------------------------------------------------------------------------------------
// single deterministic pass: logits z [B, K]

/**
 * Confidence (NOT a score): max_k softmax(z)_k, the maximum class probability (MCP), e.g. as
 * the `confidence` input of the calibration metrics. Higher = more confident. Returns [B].
 */
export function softmaxConfidence(logits: Tensor): Tensor {
  requireRank('softmaxConfidence', logits, 2, 'logits [B, K]');
  return composite(() => max(softmax(logits, -1), -1));
}

/**
 * MSP score (Hendrycks & Gimpel 2017, "A baseline for detecting misclassified and
 * out-of-distribution examples"): score = −max_k softmax(z)_k ∈ [−1, −1/K].
 * Higher = more OOD. Returns [B].
 */
export function mspScore(logits: Tensor): Tensor {
  requireRank('mspScore', logits, 2, 'logits [B, K]');
  return composite(() => neg(max(softmax(logits, -1), -1)));
}

/**
 * Max-logit score (Hendrycks et al. 2022, "Scaling out-of-distribution detection for
 * real-world settings"): score = −max_k z_k. Higher = more OOD. Returns [B].
 */
export function maxLogitScore(logits: Tensor): Tensor {
  requireRank('maxLogitScore', logits, 2, 'logits [B, K]');
  return composite(() => neg(max(logits, -1)));
}

/**
 * Predictive-entropy score of one softmax: H[p] = −Σ_k p_k ln p_k with p = softmax(z),
 * computed as −Σ_k exp(ℓ_k)·ℓ_k with ℓ = logSoftmax(z) (finite for large logits; a class with
 * p_k = 0 in float32 contributes 0). ∈ [0, ln K]. Higher = more uncertain. Returns [B].
 */
export function entropyScore(logits: Tensor): Tensor {
  requireRank('entropyScore', logits, 2, 'logits [B, K]');
  return composite(() => {
    const l = logSoftmax(logits, -1);
    return neg(sum(mul(exp(l), l), -1));
  });
}

/**
 * Energy score (Liu et al. 2020, "Energy-based out-of-distribution detection"):
 * E(z; T) = −T · logsumexp(z / T) (default T = 1). This IS the paper's free energy; the paper
 * uses −E as its in-distribution score, so E itself is higher = more OOD. Returns [B].
 */
export function energyScore(logits: Tensor, temperature = 1): Tensor {
  requireRank('energyScore', logits, 2, 'logits [B, K]');
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new ArgumentError(`energyScore: temperature must be a finite positive number, got ${temperature}`);
  return composite(() => mul(logsumexp(temperature === 1 ? logits : div(logits, temperature), -1), -temperature));
}

// ---------------------------------------------------------------------------------------------
// T stochastic passes (MC dropout, Gal & Ghahramani 2016) or M ensemble members
// (Lakshminarayanan et al. 2017): probabilities P [T, B, K]

/**
 * Mean energy over T passes or M ensemble members, from LOGITS z [T, B, K]:
 * (1/T) Σ_t E(z_t; τ) with E(z; τ) = −τ · logsumexp(z / τ) the energy score of Liu et al. 2020
 * (see {@link energyScore}; default τ = 1). Averaging the members' free energies is the
 * ensemble form used in this library's evaluation. Higher = more OOD. [T,B,K] → [B].
 */
export function meanEnergyScore(logits: Tensor, temperature = 1): Tensor {
  requireRank('meanEnergyScore', logits, 3, 'logit samples [T, B, K]');
  const [t, b, k] = logits.shape;
  return composite(() => mean(reshape(energyScore(reshape(logits, [t * b, k]), temperature), [t, b]), 0));
}

/** Predictive mean p̄ = (1/T) Σ_t p_t (NOT a score; a probability vector per row). [T,B,K] → [B,K]. */
export function predictiveMean(probs: Tensor): Tensor {
  requireRank('predictiveMean', probs, 3, 'probability samples [T, B, K]');
  return mean(probs, 0);
}

/**
 * Predictive entropy H[p̄] = −Σ_k p̄_k ln p̄_k of the predictive mean (total uncertainty;
 * MC-dropout literature, e.g. Gal 2016 thesis §3.3). 0·ln 0 = 0. ∈ [0, ln K].
 * Higher = more uncertain. [T,B,K] → [B].
 */
export function predictiveEntropy(probs: Tensor): Tensor {
  requireRank('predictiveEntropy', probs, 3, 'probability samples [T, B, K]');
  return composite(() => neg(sumPLogP(mean(probs, 0))));
}

/**
 * Expected entropy (1/T) Σ_t H[p_t] (the aleatoric part of the predictive entropy).
 * Higher = more uncertain. [T,B,K] → [B].
 */
export function expectedEntropy(probs: Tensor): Tensor {
  requireRank('expectedEntropy', probs, 3, 'probability samples [T, B, K]');
  return composite(() => neg(mean(sumPLogP(probs), 0)));
}

/**
 * Mutual information between prediction and parameters, BALD (Houlsby et al. 2011; Gal et
 * al. 2017): MI = H[p̄] − (1/T) Σ_t H[p_t] (epistemic uncertainty). Mathematically ≥ 0
 * (Jensen); float rounding negatives are clamped to 0. Higher = more uncertain. [T,B,K] → [B].
 */
export function mutualInformation(probs: Tensor): Tensor {
  requireRank('mutualInformation', probs, 3, 'probability samples [T, B, K]');
  return composite(() => {
    const h = neg(sumPLogP(mean(probs, 0)));
    const eh = neg(mean(sumPLogP(probs), 0));
    return maximum(sub(h, eh), 0);
  });
}

/** Per-class vote counts over the T passes: counts[b,k] = #{t : argmax_j P[t,b,j] = k}. [B,K] float32. */
function voteCounts(probs: Tensor): Tensor {
  return composite(() => {
    const [t, b, k] = probs.shape;
    const votes = reshape(argmax(probs, -1), [t, b, 1]);
    const classes = arange(0, k, 1, { dtype: 'int32', backend: probs.backend });
    return sum(cast(eq(votes, classes), 'float32'), 0);
  });
}

/**
 * The modal prediction c* = the class most often the argmax over the T passes (each pass's
 * argmax takes the first maximum; ties in the mode go to the smallest class index).
 * [T,B,K] → [B] int32.
 */
export function modalPrediction(probs: Tensor): Tensor {
  requireRank('modalPrediction', probs, 3, 'probability samples [T, B, K]');
  return composite(() => argmax(voteCounts(probs), -1));
}

/**
 * Variation ratio (Freeman 1965; used for MC dropout by Gal 2016): 1 − f_{c*}/T, where f_{c*}
 * is the number of passes whose argmax is the modal class c* (see modalPrediction; which
 * class wins a tie does not change the value). ∈ [0, 1 − 1/K]. Higher = more uncertain.
 * [T,B,K] → [B].
 */
export function variationRatio(probs: Tensor): Tensor {
  requireRank('variationRatio', probs, 3, 'probability samples [T, B, K]');
  const t = probs.shape[0];
  return composite(() => sub(1, div(max(voteCounts(probs), -1), t)));
}

/**
 * Per-class variance of the probabilities across passes, Var_t[p_{t,k}] (population, 1/T).
 * Higher = more uncertain. [T,B,K] → [B,K]; `.mean(-1)` gives a per-sample score.
 */
export function perClassVariance(probs: Tensor): Tensor {
  requireRank('perClassVariance', probs, 3, 'probability samples [T, B, K]');
  return variance(probs, 0, false, 0);
}

export interface RegressionUncertainty {
  /** Mean of the member means, (1/M) Σ_m μ_m. */
  mean: Tensor;
  /** Aleatoric variance: mean of the member variances, (1/M) Σ_m σ²_m. */
  aleatoric: Tensor;
  /** Epistemic variance: variance of the member means, (1/M) Σ_m (μ_m − μ̄)² (population). */
  epistemic: Tensor;
  /** Total predictive variance = aleatoric + epistemic (the mixture's variance). */
  total: Tensor;
}

/**
 * Regression ensemble / MC-dropout decomposition (Lakshminarayanan et al. 2017; Kendall & Gal
 * 2017): from member means μ [M, ...] and variances σ² [M, ...] (same shape), the mixture's
 * mean, aleatoric = mean of variances, epistemic = variance of means, total = their sum. All
 * variances are higher = more uncertain. Reduces over axis 0.
 */
export function regressionUncertainty(means: Tensor, variances: Tensor): RegressionUncertainty {
  if (means.rank < 1 || means.shape.join(',') !== variances.shape.join(',')) {
    throw new ShapeError(`regressionUncertainty: means ${fmtShape(means.shape)} and variances ${fmtShape(variances.shape)} must have the same shape [M, ...]`);
  }
  const m = mean(means, 0);
  const aleatoric = mean(variances, 0);
  const epistemic = variance(means, 0, false, 0);
  const total = composite(() => mean(variances, 0).add(variance(means, 0, false, 0)));
  return { mean: m, aleatoric, epistemic, total };
}

// ---------------------------------------------------------------------------------------------
// Dirichlet outputs (prior networks, Malinin & Gales 2018; evidential, Sensoy et al. 2018):
// concentrations α [B, K], α₀ = Σ_k α_k

/** Expected class probabilities E[p] = α / α₀ (NOT a score). [B,K] → [B,K]. */
export function dirichletMean(alpha: Tensor): Tensor {
  requireRank('dirichletMean', alpha, 2, 'concentrations [B, K]');
  return composite(() => div(alpha, sum(alpha, -1, true)));
}

/**
 * Maximum probability of the Dirichlet mean, negated: −max_k α_k/α₀ ∈ [−1, −1/K] (the MSP of
 * the expected prediction p = α/α₀, as Malinin & Gales 2018 report it next to their Dirichlet
 * measures; the same rule as {@link mspScore}, applied to p instead of softmax(z)). Higher = more
 * uncertain. [B,K] → [B].
 */
export function dirichletMaxProbabilityScore(alpha: Tensor): Tensor {
  requireRank('dirichletMaxProbabilityScore', alpha, 2, 'concentrations [B, K]');
  return composite(() => neg(div(max(alpha, -1), sum(alpha, -1))));
}

/**
 * Vacuity (Sensoy et al. 2018, "uncertainty mass" u = K / S): K / α₀ — 1 for the flat
 * Dirichlet α = 1, → 0 as evidence grows. Higher = more uncertain. [B,K] → [B].
 */
export function vacuity(alpha: Tensor): Tensor {
  requireRank('vacuity', alpha, 2, 'concentrations [B, K]');
  const k = alpha.shape[1];
  return composite(() => mul(reciprocal(sum(alpha, -1)), k));
}

/**
 * Mutual information of a Dirichlet (Malinin & Gales 2018, eq. for "distributional
 * uncertainty"): MI = −Σ_k (α_k/α₀)(ln(α_k/α₀) − ψ(α_k+1) + ψ(α₀+1)), i.e. H[E p] − E[H[p]].
 * Higher = more uncertain (epistemic / distributional). [B,K] → [B].
 */
export function dirichletMutualInformation(alpha: Tensor): Tensor {
  requireRank('dirichletMutualInformation', alpha, 2, 'concentrations [B, K]');
  return composite(() => {
    const a0 = sum(alpha, -1, true);
    const p = div(alpha, a0);
    const inner = add(sub(log(p), digamma(add(alpha, 1))), digamma(add(a0, 1)));
    return neg(sum(mul(p, inner), -1));
  });
}

/**
 * Precision score −α₀ = −Σ_k α_k (Malinin & Gales 2018 call α₀ the precision of the Dirichlet: the
 * total evidence, large for confident in-distribution inputs). Negated so that, like every score
 * here, higher = more uncertain / more OOD. [B,K] → [B].
 */
export function dirichletPrecisionScore(alpha: Tensor): Tensor {
  requireRank('dirichletPrecisionScore', alpha, 2, 'concentrations [B, K]');
  return composite(() => neg(sum(alpha, -1)));
}

/**
 * Expected entropy of a Dirichlet output, E_{p~Dir(α)}[H[p]] = ψ(α₀+1) − Σ_k (α_k/α₀) ψ(α_k+1)
 * (the "data" / aleatoric part in Malinin & Gales 2018; predictive entropy = expected entropy +
 * mutual information). ∈ [0, ln K). Higher = more uncertain. [B,K] → [B].
 */
export function dirichletExpectedEntropy(alpha: Tensor): Tensor {
  requireRank('dirichletExpectedEntropy', alpha, 2, 'concentrations [B, K]');
  return composite(() => {
    const a0 = sum(alpha, -1, true);
    const p = div(alpha, a0);
    return sub(digamma(add(sum(alpha, -1), 1)), sum(mul(p, digamma(add(alpha, 1))), -1));
  });
}

/**
 * Entropy of the expected prediction H[α/α₀] = −Σ_k (α_k/α₀) ln(α_k/α₀) (total uncertainty
 * of a Dirichlet output). Higher = more uncertain. [B,K] → [B].
 */
export function dirichletPredictiveEntropy(alpha: Tensor): Tensor {
  requireRank('dirichletPredictiveEntropy', alpha, 2, 'concentrations [B, K]');
  return composite(() => neg(sumPLogP(div(alpha, sum(alpha, -1, true)))));
}

/**
 * Differential entropy of Dir(α) (Malinin & Gales 2018):
 * H = Σ_k lnΓ(α_k) − lnΓ(α₀) + (α₀ − K)ψ(α₀) − Σ_k (α_k − 1)ψ(α_k). Maximal, −ln((K−1)!), for
 * the flat α = 1 (the uniform density on the simplex), → −∞ as the Dirichlet sharpens; it is
 * ≤ 0 for K ≥ 2.
 * Higher = more uncertain. [B,K] → [B].
 */
export function dirichletDifferentialEntropy(alpha: Tensor): Tensor {
  requireRank('dirichletDifferentialEntropy', alpha, 2, 'concentrations [B, K]');
  const k = alpha.shape[1];
  return composite(() => {
    const a0 = sum(alpha, -1);
    const logB = sub(sum(lgamma(alpha), -1), lgamma(a0));
    const t1 = mul(sub(a0, k), digamma(a0));
    const t2 = sum(mul(sub(alpha, 1), digamma(alpha)), -1);
    return sub(logB.add(t1), t2);
  });
}
