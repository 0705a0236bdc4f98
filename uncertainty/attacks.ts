/**
 * L∞ adversarial attacks on any differentiable classifier, batched (every row attacked at once;
 * the only loop is over iterations). ε and the step size are in input units; every iterate is
 * clipped to the valid input range `clip` (default [0, 1]).
 *
 * - FGSM (Goodfellow, Shlens & Szegedy 2015): x' = clip(x + ε·sign ∇ₓ L(f(x), y)).
 * - BIM (Kurakin, Goodfellow & Bengio 2017) / PGD (Madry et al. 2018): x⁰ = x (BIM) or
 *   x + U(−ε, ε)^d (PGD's random start), then x^{t+1} = clip(Π_{‖x'−x‖∞ ≤ ε}(x^t + α·sign ∇ L(f(x^t), y))).
 * - Iterative least-likely class (Kurakin et al. 2017): y_LL = argmin_k f(x)_k, then
 *   x^{t+1} = clip(Π(x^t − α·sign ∇ L(f(x^t), y_LL))) — descends the loss of the least likely class.
 *
 * L is the per-sample cross-entropy (summed over the batch, which gives each row its own input
 * gradient); y defaults to the model's own prediction on x (no label leaking). Attacks are async
 * because they check on the host that x lies inside the clip range.
 */
import {
  ArgumentError,
  type Tensor,
  argmax,
  argmin,
  detach,
  fmtShape,
  gradients,
  max,
  maximum,
  min,
  minimum,
  noGrad,
  ShapeError,
  sign,
  stack,
  sum,
  tidy,
  uniform,
  withGrad,
} from '../engine/index.js';
import { crossEntropy } from '../nn/losses.js';
import { type ModelLike, asModelFn } from './detector.js';

export interface AttackOptions {
  /** L∞ radius in input units (≥ 0). */
  epsilon: number;
  /** Valid input range (default [0, 1]); x must lie inside it. */
  clip?: readonly [number, number];
  /** Per-sample loss of (logits, labels) → [B] (default cross-entropy, reduction 'none'). */
  loss?: (logits: Tensor, labels: Tensor) => Tensor;
}

export interface IterativeAttackOptions extends AttackOptions {
  /** Step size α in input units (default ε/4, as in many PGD setups). */
  stepSize?: number;
  /** Iterations (default 10). */
  steps?: number;
  /** PGD's uniform random start inside the ball (default true for pgd, false for bim). */
  randomStart?: boolean;
  /** Seed of the random start (default 0). */
  seed?: number;
}

const ceLoss = (z: Tensor, y: Tensor) => crossEntropy(z, y, { reduction: 'none' });

async function validate(what: string, x: Tensor, opts: AttackOptions): Promise<[number, number]> {
  const eps = opts.epsilon;
  if (!(Number.isFinite(eps) && eps >= 0)) throw new ArgumentError(`${what}: epsilon must be a finite number ≥ 0 (input units), got ${eps}`);
  const [lo, hi] = opts.clip ?? [0, 1];
  if (!(lo < hi)) throw new ArgumentError(`${what}: clip must be [low, high] with low < high, got [${lo}, ${hi}]`);
  if (x.rank < 1 || x.shape[0] < 1) throw new ShapeError(`${what}: expected a batch [B, ...], got ${fmtShape(x.shape)}`);
  const range = tidy(() => noGrad(() => stack([min(x), max(x)])));
  let mn: ArrayLike<number>;
  let mx: ArrayLike<number>;
  try {
    const r = await range.data();
    mn = [r[0]];
    mx = [r[1]];
  } finally {
    range.dispose();
  }
  if (mn[0] < lo || mx[0] > hi) {
    throw new ArgumentError(`${what}: the inputs span [${mn[0]}, ${mx[0]}], outside the clip range [${lo}, ${hi}]; pass { clip } matching your input normalisation`);
  }
  return [lo, hi];
}

function labelsOf(f: (x: Tensor) => Tensor, x: Tensor, y: Tensor | undefined, what: string): Tensor {
  if (y) {
    if (y.rank !== 1 || y.shape[0] !== x.shape[0]) throw new ShapeError(`${what}: labels must be [${x.shape[0]}], got ${fmtShape(y.shape)}`);
    return y;
  }
  return tidy(() => noGrad(() => argmax(f(x), 1)));
}

/** sign ∇ₓ Σ_b L(f(x)_b, y_b), [B, ...]. */
function inputGradSign(f: (x: Tensor) => Tensor, loss: (z: Tensor, y: Tensor) => Tensor, x: Tensor, y: Tensor, what: string): Tensor {
  return tidy(() => withGrad(() => {
    const xv = detach(x);
    xv.requiresGrad = true;
    const l = loss(f(xv), y);
    if (l.rank !== 1 || l.shape[0] !== x.shape[0]) throw new ShapeError(`${what}: the loss must return one value per sample [${x.shape[0]}], got ${fmtShape(l.shape)}`);
    const [g] = gradients(sum(l), [xv]);
    return sign(g);
  }));
}

const clamp = (t: Tensor, lo: Tensor | number, hi: Tensor | number) => minimum(maximum(t, lo), hi);

/** FGSM: x' = clip(x + ε·sign ∇ₓ L(f(x), y)). y defaults to the model's prediction. */
export async function fgsm(model: ModelLike, x: Tensor, y?: Tensor, opts: AttackOptions = { epsilon: 0 }): Promise<Tensor> {
  const [lo, hi] = await validate('fgsm', x, opts);
  const f = asModelFn(model);
  const yy = labelsOf(f, x, y, 'fgsm');
  try {
    return tidy(() => noGrad(() => clamp(x.add(inputGradSign(f, opts.loss ?? ceLoss, x, yy, 'fgsm').mul(opts.epsilon)), lo, hi)));
  } finally {
    if (yy !== y) yy.dispose();
  }
}

async function iterate(what: string, model: ModelLike, x: Tensor, y: Tensor | undefined, opts: IterativeAttackOptions, randomDefault: boolean, leastLikely: boolean): Promise<Tensor> {
  const [lo, hi] = await validate(what, x, opts);
  const eps = opts.epsilon;
  const alpha = opts.stepSize ?? eps / 4;
  const steps = opts.steps ?? 10;
  if (!(Number.isFinite(alpha) && alpha >= 0)) throw new ArgumentError(`${what}: stepSize must be ≥ 0, got ${alpha}`);
  if (!Number.isInteger(steps) || steps < 0) throw new ArgumentError(`${what}: steps must be an integer ≥ 0, got ${steps}`);
  const f = asModelFn(model);
  const loss = opts.loss ?? ceLoss;
  const target = leastLikely ? tidy(() => noGrad(() => argmin(f(x), 1))) : labelsOf(f, x, y, what);
  const lower = tidy(() => noGrad(() => maximum(x.sub(eps), lo)));
  const upper = tidy(() => noGrad(() => minimum(x.add(eps), hi)));
  let cur: Tensor = (tidy(() => noGrad(() => (opts.randomStart ?? randomDefault)
    ? clamp(x.add(uniform(x.shape, { low: -eps, high: eps, seed: opts.seed ?? 0, backend: x.backend }).cast(x.dtype)), lower, upper)
    : x.add(0))));
  try {
    for (let t = 0; t < steps; t++) {
      const next = (tidy(() => noGrad(() => {
        const s = inputGradSign(f, loss, cur, target, what).mul(leastLikely ? -alpha : alpha);
        return clamp(cur.add(s), lower, upper);
      })));
      cur.dispose();
      cur = next;
    }
    return cur;
  } finally {
    lower.dispose();
    upper.dispose();
    if (target !== y) target.dispose();
  }
}

/** PGD (Madry et al. 2018): random start in the ε-ball, `steps` projected sign-gradient ascent steps. */
export function pgd(model: ModelLike, x: Tensor, y?: Tensor, opts: IterativeAttackOptions = { epsilon: 0 }): Promise<Tensor> {
  return iterate('pgd', model, x, y, opts, true, false);
}

/** BIM (Kurakin et al. 2017): PGD without the random start. */
export function bim(model: ModelLike, x: Tensor, y?: Tensor, opts: IterativeAttackOptions = { epsilon: 0 }): Promise<Tensor> {
  return iterate('bim', model, x, y, opts, false, false);
}

/** Iterative least-likely class: descend the loss of y_LL = argmin_k f(x)_k inside the ε-ball. */
export function iterativeLeastLikely(model: ModelLike, x: Tensor, opts: IterativeAttackOptions = { epsilon: 0 }): Promise<Tensor> {
  return iterate('iterativeLeastLikely', model, x, undefined, opts, false, true);
}
