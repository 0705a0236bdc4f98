import { ArgumentError, ShapeError, type Tensor, detach, fmtShape, gradients, noGrad, sign, softmax, takeAlongAxis, tidy, withGrad, logSoftmax } from '../engine/index.js';

export interface OdinOptions {
  /** Temperature T (used in BOTH the perturbation and the score). Default 1000 (Liang et al.). */
  temperature?: number;
  /** Perturbation magnitude ε. Default 0.0014 (a value from the paper's grid; tune on validation data). */
  epsilon?: number;
}

/**
 * ODIN (Liang, Li & Srikant, ICLR 2018, "Enhancing the reliability of out-of-distribution image
 * detection in neural networks").
 *
 *   ŷ = argmax_k z_k(x),   x̃ = x − ε · sign(−∇ₓ log softmax_ŷ(z(x)/T)),
 *   score(x) = −max_k softmax(z(x̃)/T)_k
 *
 * The temperature appears in both places (a widely copied implementation drops it from the
 * gradient). Returned as an uncertainty: **higher = more likely OOD** (the paper thresholds the
 * positive max-softmax; we negate it so every dubito score points the same way).
 * `model` maps inputs [B, ...] to logits [B, K] and must be in eval mode (per-sample gradients are
 * taken from the gradient of the batch sum, which is exact when samples do not interact).
 * T and ε should be chosen on a validation split.
 */
export function odinScore(model: (x: Tensor) => Tensor, x: Tensor, opts: OdinOptions = {}): Tensor {
  const T = opts.temperature ?? 1000;
  const eps = opts.epsilon ?? 0.0014;
  if (!(T > 0) || !Number.isFinite(T)) throw new ArgumentError(`odinScore: temperature must be a positive finite number, got ${T}`);
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new ArgumentError(`odinScore: epsilon must be a finite number >= 0, got ${eps}`);
  return tidy(() => {
    const xin = detach(x).requireGrad();
    const g = withGrad(() => {
      const z = model(xin);
      if (z.rank !== 2 || z.shape[0] !== x.shape[0]) throw new ShapeError(`odinScore: the model must return logits [B, K] for input ${fmtShape(x.shape)}, got ${fmtShape(z.shape)}`);
      const logp = logSoftmax(z.div(T), -1);
      const yhat = detach(z).argmax(-1, true);
      // L = −Σ_b log softmax_ŷ(z_b/T);  ∇ₓL = −∇ₓ log softmax_ŷ, so x̃ = x − ε·sign(∇ₓL).
      const loss = takeAlongAxis(logp, yhat, 1).sum().neg();
      return gradients(loss, [xin])[0];
    });
    return noGrad(() => {
      const xt = x.sub(sign(g).mul(eps));
      const p = softmax(model(xt).div(T), -1);
      return p.max(-1).neg();
    });
  });
}
