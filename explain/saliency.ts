/**
 * Input attributions, batched over inputs (and over noise samples / integration steps): vanilla
 * gradients, gradient × input, guided backpropagation, SmoothGrad and Integrated Gradients.
 * Every method explains the target's pre-softmax logit s = z_t(x) and returns attributions with
 * the input's shape (Captum's convention); `attributionMap` turns them into [B, H, W] maps.
 */
import {
  ArgumentError, ShapeError, type Tensor, abs, add, broadcastTo, cast, defineOp, detach, fmtShape, fromHost, gradients,
  indexSelect, max, mean, min, mul, noGrad, normal, relu, reshape, runOp, sub, sum, tidy, withGrad,
} from '../engine/index.js';
import { Module, ReLU } from '../nn/index.js';
import { type Targets, batchOf, checkLogits, classTensor, normalizeMaps, predicted, readTargets, rowObjective } from './common.js';

export type SaliencyMethod = 'gradient' | 'gradientXInput' | 'guidedBackprop' | 'smoothGrad' | 'integratedGradients';

/** Riemann rules for Integrated Gradients' path integral over α ∈ [0, 1] with `steps` intervals. */
export type RiemannRule = 'left' | 'right' | 'middle' | 'trapezoid';

export interface SaliencyOptions {
  method: SaliencyMethod;
  /** The class to explain per input (default: the predicted class at x). */
  target?: Targets;
  /** Return |attribution| (Captum's `Saliency(abs=True)`); default false (signed). */
  abs?: boolean;
  /** SmoothGrad: noisy copies per input (default 25). */
  samples?: number;
  /**
   * SmoothGrad: noise level σ / (max(x_b) − min(x_b)) per input (Smilkov et al. recommend
   * 0.1–0.2; default 0.15). `noiseStd` overrides it with an absolute σ.
   */
  noiseLevel?: number;
  noiseStd?: number;
  /** SmoothGrad: seed of the Gaussian noise (Philox; default: the global stream). */
  seed?: number;
  /** Integrated Gradients: number of Riemann intervals (default 50). */
  steps?: number;
  /** Integrated Gradients: the rule (default 'middle': α_k = (k + ½)/m, error O(1/m²)). */
  rule?: RiemannRule;
  /** Integrated Gradients: the baseline x′ (a number, or a tensor broadcastable to x; default 0). */
  baseline?: number | Tensor;
}

// ------------------------------------------------------------------------------ guided backprop
/**
 * Identity whose backward passes only positive gradients: dx = max(dy, 0). Placed after each ReLU
 * module's output during guided backpropagation, the chain ReLU → gate gives Springenberg et al.'s
 * rule dx = max(dy, 0) · 1[x > 0] (positive gradient AND positive input). A view: no kernel runs.
 */
const GUIDED_GATE = defineOp<object>({
  name: 'explainGuidedReluGate',
  view: true,
  infer: ([x]) => ({ shape: [...x.shape], dtype: x.dtype }),
  cpu: ([x]) => x.data,
  webgpu() {},
  grad: (dy) => [relu(dy)],
});

/**
 * Runs `fn` with every ReLU module of `model` guided (see GUIDED_GATE). Scoped: the forward hooks
 * that insert the gate are removed in a `finally`, so only graphs recorded inside `fn` carry
 * gates and ordinary training afterwards sees ordinary ReLU gradients. Functional `relu` calls
 * (not ReLU modules) are not modified.
 */
export function withGuidedRelu<T>(model: Module, fn: () => T): T {
  const relus = model.modules().filter((m) => m instanceof ReLU);
  if (!relus.length) throw new ArgumentError(`saliency('guidedBackprop'): ${model.constructor.name} has no ReLU modules to guide (guided backpropagation modifies ReLU modules only)`);
  const handles = relus.map((m) => m.registerForwardHook((_m, _i, out) => runOp(GUIDED_GATE, [out as Tensor], {})));
  try {
    return fn();
  } finally {
    for (const h of handles) h.remove();
  }
}

// ------------------------------------------------------------------------------ core
/** ∂(Σ_r z_r,cls_r)/∂xin for a batch of rows `xin` (any number of rows). */
function inputGradient(op: string, model: Module, xin: Tensor, cls: Tensor): Tensor {
  return withGrad(() => {
    const leaf = detach(xin);
    leaf.requiresGrad = true;
    const logits = checkLogits(op, model.forward(leaf), xin.shape[0]);
    return gradients(rowObjective(logits, cls, 1, 0), [leaf])[0];
  });
}

/** The rows of `x` repeated n times, row-major [n·B, ...] (copy k of input b at row k·B + b). */
function repeatRows(x: Tensor, n: number): Tensor {
  const B = x.shape[0];
  return indexSelect(x, 0, fromHost(Int32Array.from({ length: n * B }, (_, r) => r % B), [n * B], 'int32', x.backend));
}

function positiveInt(op: string, name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new ArgumentError(`${op}: ${name} must be a positive integer, got ${v}`);
  return v;
}

/** Riemann nodes α_k and weights w_k (Σ w_k = 1) for `steps` intervals. */
export function riemannNodes(rule: RiemannRule, steps: number): { alphas: number[]; weights: number[] } {
  const m = steps;
  switch (rule) {
    case 'left': return { alphas: Array.from({ length: m }, (_, k) => k / m), weights: new Array(m).fill(1 / m) };
    case 'right': return { alphas: Array.from({ length: m }, (_, k) => (k + 1) / m), weights: new Array(m).fill(1 / m) };
    case 'middle': return { alphas: Array.from({ length: m }, (_, k) => (k + 0.5) / m), weights: new Array(m).fill(1 / m) };
    case 'trapezoid': return {
      alphas: Array.from({ length: m + 1 }, (_, k) => k / m),
      weights: Array.from({ length: m + 1 }, (_, k) => (k === 0 || k === m ? 0.5 / m : 1 / m)),
    };
    default: throw new ArgumentError(`integratedGradients: unknown rule '${String(rule)}' (expected left, right, middle or trapezoid)`);
  }
}

/**
 * Input attributions for the target's logit s = z_t, with x's shape:
 * - `gradient` (Simonyan et al. 2014): ∂s/∂x.
 * - `gradientXInput` (Shrikumar et al. 2016): x ⊙ ∂s/∂x.
 * - `guidedBackprop` (Springenberg et al. 2015): ∂s/∂x with every ReLU module's backward replaced
 *   by dx = max(dy, 0)·1[x > 0]; scoped to this call (see `withGuidedRelu`).
 * - `smoothGrad` (Smilkov et al. 2017): (1/n) Σ_i ∂s/∂x (x + ε_i), ε_i ~ N(0, σ²), all n·B noisy
 *   copies in one forward/backward.
 * - `integratedGradients` (Sundararajan et al. 2017): (x − x′) ⊙ Σ_k w_k ∂s/∂x (x′ + α_k (x − x′)),
 *   a Riemann sum of the path integral, all steps·B points in one forward/backward. Completeness:
 *   Σ attributions ≈ s(x) − s(x′), up to the Riemann error.
 * For the noisy / interpolated rows the target is the class at x (the prediction when not given).
 */
export async function saliency(model: Module, x: Tensor, opts: SaliencyOptions): Promise<Tensor> {
  const method = opts.method;
  const op = `saliency('${method}')`;
  if (!(model instanceof Module)) throw new ArgumentError(`${op}: model must be a Module, got ${typeof model}`);
  const B = batchOf(op, x);
  let t: Int32Array | null = null;
  if (opts.target !== undefined) {
    const K = tidy(() => noGrad(() => checkLogits(op, model.forward(x), B).shape[1]));
    t = await readTargets(op, 'target', opts.target, B, K);
  }
  const out = tidy(() => {
    const cls = t ? classTensor(t, x) : noGrad(() => predicted(checkLogits(op, model.forward(x), B)));
    switch (method) {
      case 'gradient': return inputGradient(op, model, x, cls);
      case 'gradientXInput': return noGrad(() => mul(inputGradient(op, model, x, cls), detach(x)));
      case 'guidedBackprop': return withGuidedRelu(model, () => inputGradient(op, model, x, cls));
      case 'smoothGrad': {
        const n = positiveInt(op, 'samples', opts.samples ?? 25);
        const axes = Array.from({ length: x.rank - 1 }, (_, i) => i + 1);
        let sigma: Tensor | number;
        if (opts.noiseStd !== undefined) {
          if (!(opts.noiseStd >= 0) || !Number.isFinite(opts.noiseStd)) throw new ArgumentError(`${op}: noiseStd must be a finite number ≥ 0, got ${opts.noiseStd}`);
          sigma = opts.noiseStd;
        } else {
          const level = opts.noiseLevel ?? 0.15;
          if (!(level >= 0) || !Number.isFinite(level)) throw new ArgumentError(`${op}: noiseLevel must be a finite number ≥ 0, got ${level}`);
          sigma = noGrad(() => mul(sub(max(x, axes, true), min(x, axes, true)), level)); // [B, 1, …]
        }
        const rows = repeatRows(detach(x), n); // [n·B, ...]
        const eps = normal(rows.shape, { seed: opts.seed, backend: x.backend });
        const sig = typeof sigma === 'number' ? sigma : repeatRows(sigma, n);
        const noisy = add(rows, mul(cast(eps, x.dtype), sig));
        const g = inputGradient(op, model, noisy, repeatRows(cls, n));
        return noGrad(() => mean(reshape(g, [n, ...x.shape]), 0));
      }
      case 'integratedGradients': {
        const m = positiveInt(op, 'steps', opts.steps ?? 50);
        const { alphas, weights } = riemannNodes(opts.rule ?? 'middle', m);
        const n = alphas.length;
        const base = typeof opts.baseline === 'object' ? opts.baseline : null;
        const baseNum = typeof opts.baseline === 'number' ? opts.baseline : 0;
        if (base) {
          try {
            broadcastTo(base, x.shape).dispose();
          } catch {
            throw new ShapeError(`${op}: baseline ${fmtShape(base.shape)} does not broadcast to the input ${fmtShape(x.shape)}`);
          }
        }
        const xd = detach(x);
        const x0 = base ? broadcastTo(detach(base), x.shape) : add(mul(xd, 0), baseNum);
        const diff = sub(xd, x0); // [B, ...]
        const shapeA = [n, ...x.shape.map(() => 1)];
        const alpha = fromHost(Float64Array.from(alphas), shapeA, x.dtype, x.backend);
        const w = fromHost(Float64Array.from(weights), shapeA, x.dtype, x.backend);
        const path = reshape(add(x0, mul(alpha, diff)), [n * B, ...x.shape.slice(1)]); // x′ + α_k (x − x′), row k·B + b
        const g = reshape(inputGradient(op, model, path, repeatRows(cls, n)), [n, ...x.shape]);
        return noGrad(() => mul(sum(mul(g, w), 0), diff));
      }
      default:
        throw new ArgumentError(`saliency: unknown method '${String(method)}' (expected gradient, gradientXInput, guidedBackprop, smoothGrad or integratedGradients)`);
    }
  });
  if (!opts.abs) return out;
  const a = abs(out);
  out.dispose();
  return a;
}

/**
 * Attributions [B, C, H, W] (or [B, H, W]) → saliency maps [B, H, W]: the largest |attribution|
 * over channels (Simonyan et al. 2014), min–max normalised per map.
 */
export function attributionMap(attr: Tensor): Tensor {
  if (attr.rank !== 4 && attr.rank !== 3) throw new ShapeError(`attributionMap: expected attributions [B, C, H, W] or [B, H, W], got ${fmtShape(attr.shape)}`);
  return tidy(() => normalizeMaps(attr.rank === 4 ? max(abs(attr), 1) : abs(attr)));
}
