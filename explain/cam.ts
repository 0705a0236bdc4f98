/**
 * Class activation maps from gradients at a convolutional layer, batched over inputs:
 * Grad-CAM, CounterfactualCAM, ContrastCAM and VOICE (the variance of the contrastive
 * explanations over every contrast class, as an uncertainty map of the explanation).
 *
 * Common recipe (Selvaraju et al., "Grad-CAM", ICCV 2017): A = the target layer's output
 * [B, C, h, w]; J = a per-input objective of the logits; α_c = (1/hw) Σ_ij ∂J/∂A_cij;
 * map = ReLU(Σ_c α_c A_c), bilinearly upsampled to the input's H × W, then min–max normalised
 * per map to [0, 1] (see NORMALIZE_EPS for flat maps).
 *
 * How the layer is tapped: a forward hook on the layer replaces its output by a fresh leaf (a
 * detached view marked `requiresGrad`, repeated per row when one input needs several maps), so
 * the backward pass stops at the layer and no gradient reaches the parameters. The hook is
 * removed before the function returns, whatever happens. Layers after the target layer must treat
 * batch rows independently (no batch statistics: call `model.eval()`, which also turns dropout
 * off), which is what makes one backward over all rows equal to separate backwards.
 */
import {
  ArgumentError, ShapeError, type Tensor, add, cast, detach, div, eq, fmtShape, fromHost, ge, gradients, gt, indexSelect, mean,
  mul, neg, noGrad, relu, reshape, slice, sqrt, sub, sum, tidy, unsqueeze, upsampleBilinear2d, variance, where, withGrad,
  zerosLike,
} from '../engine/index.js';
import type { Module } from '../nn/index.js';
import {
  type LayerRef, type Targets, batchOf, checkLogits, classTensor, normalizeMaps, predicted, readTargets, resolveLayer,
  rowObjective, runnerUp,
} from './common.js';

export interface CamOptions {
  /** The target layer: a module of `model` or its name in `model.namedModules()`. Its output must be [B, C, h, w]. */
  layer: LayerRef;
  /** Upsample to the input's spatial size (default true; needs a 4-D input [B, Cin, H, W]), or to an explicit [H, W]. */
  upsample?: boolean | readonly [number, number];
  /** Min–max normalise each map to [0, 1] (default true). */
  normalize?: boolean;
}

export interface GradCamOptions extends CamOptions {
  /** The class to explain per input (default: the predicted class). Must be in [0, K). */
  target?: Targets;
}

export interface ContrastCamOptions extends CamOptions {
  /** The contrast class Q per input (default: the runner-up, the second-highest logit). Must differ from the prediction P. */
  contrast?: Targets;
}

/** VOICE always normalises its maps (the method is defined on normalised ContrastCAMs). */
export interface VoiceOptions extends Omit<CamOptions, 'normalize'> {
  /** Threshold for the IoU of (uncertainty > t) and (explanation > t) (default 0.1, as the VOICE paper). */
  threshold?: number;
}

export interface VoiceResult {
  /** The normalised ContrastCAM for every Q ≠ P: [B, K−1, H, W] (order given by `contrastClasses`). */
  maps: Tensor;
  /** The contrast class of each map: int32 [B, K−1], Q = (P + 1 + j) mod K for j = 0 … K−2. */
  contrastClasses: Tensor;
  /** The Grad-CAM of the prediction (the explanation whose uncertainty VOICE measures): [B, H, W]. */
  explanation: Tensor;
  /** Per-pixel variance of `maps` across Q, min–max normalised: [B, H, W]. */
  uncertainty: Tensor;
  /** mean / std of each uncertainty map (population std; 0 for a flat map): [B]. */
  snr: Tensor;
  /** IoU of (uncertainty > t) with (explanation > t) (0 when both are empty): [B]. */
  iou: Tensor;
  /** The predicted class P (argmax of the logits): int32 [B]. */
  prediction: Tensor;
}

/** Rows of one batched CAM pass: which input each row explains and its objective. */
interface RowSpec {
  /** int32 [R]: the input of each row (null: one row per input). */
  repeat: Tensor | null;
  /** The summed objective of the rows' logits [R, K] (see `rowObjective`). */
  objective: (logits: Tensor) => Tensor;
  /** Negate α (CounterfactualCAM). */
  negate?: boolean;
}

interface Tap {
  activation: Tensor | null;
  calls: number;
}

/**
 * One forward and one backward: the CAM of every row, [R, h, w] (before upsampling). Runs with
 * gradient recording on (also inside `noGrad`); call inside `tidy`.
 */
function camRows(op: string, model: Module, x: Tensor, layer: LayerRef, rows: RowSpec): { cams: Tensor; logits: Tensor } {
  const B = batchOf(op, x);
  const { module, name } = resolveLayer(op, model, layer);
  const tap: Tap = { activation: null, calls: 0 };
  const handle = module.registerForwardHook((_m, _inputs, out) => {
    tap.calls++;
    const t = out as Tensor;
    if (!t || typeof t !== 'object' || !('shape' in t) || t.rank !== 4 || t.shape[0] !== B) {
      const got = t && typeof t === 'object' && 'shape' in t ? fmtShape(t.shape) : typeof out;
      throw new ShapeError(`${op}: layer '${name}' returned ${got}, expected [B, C, H, W] with B = ${B} (the input batch)`);
    }
    if (tap.calls > 1) throw new ArgumentError(`${op}: layer '${name}' ran more than once in one forward pass; choose a layer that runs once`);
    const leaf = rows.repeat ? indexSelect(detach(t), 0, rows.repeat) : detach(t);
    leaf.requiresGrad = true;
    tap.activation = leaf;
    return leaf;
  });
  try {
    return withGrad(() => {
      const R = rows.repeat ? rows.repeat.shape[0] : B;
      const logits = checkLogits(op, model.forward(x), R);
      if (!tap.activation) throw new ArgumentError(`${op}: layer '${name}' did not run in the model's forward pass`);
      const A = tap.activation;
      const L = rows.objective(logits);
      const [G] = gradients(L, [A]);
      let alpha = mean(G, [2, 3], true); // [R, C, 1, 1]
      if (rows.negate) alpha = neg(alpha);
      const cams = noGrad(() => relu(sum(mul(alpha, detach(A)), 1))); // [R, h, w]
      return { cams, logits: detach(logits) };
    });
  } finally {
    handle.remove();
  }
}

/** Upsampling and normalisation of [R, h, w] maps as the options say. */
function finish(op: string, cams: Tensor, x: Tensor, opts: CamOptions): Tensor {
  let m = cams;
  const up = opts.upsample ?? true;
  if (up !== false) {
    let size: [number, number];
    if (up === true) {
      if (x.rank !== 4) throw new ShapeError(`${op}: upsampling to the input needs an image batch [B, C, H, W], got ${fmtShape(x.shape)}; pass upsample: [H, W] or false`);
      size = [x.shape[2], x.shape[3]];
    } else size = [up[0], up[1]];
    m = reshape(upsampleBilinear2d(unsqueeze(m, 1), size), [m.shape[0], size[0], size[1]]);
  }
  return opts.normalize ?? true ? normalizeMaps(m) : m;
}

async function explicitClasses(op: string, what: string, t: Targets | undefined, x: Tensor, model: Module): Promise<Int32Array | null> {
  if (t === undefined) return null;
  const B = batchOf(op, x);
  const K = numClasses(op, model, x);
  return readTargets(op, what, t, B, K);
}

/** K from one forward of the first input (no gradients). */
function numClasses(op: string, model: Module, x: Tensor): number {
  return tidy(() => noGrad(() => checkLogits(op, model.forward(slice(x, [0], [1, ...x.shape.slice(1)])), 1).shape[1]));
}

/**
 * Grad-CAM (Selvaraju et al. 2017): "why P?". Score s = the target's pre-softmax logit;
 * α_c = spatial mean of ∂s/∂A_c; map = ReLU(Σ_c α_c A_c), upsampled and normalised. [B, H, W].
 */
export async function gradCam(model: Module, x: Tensor, opts: GradCamOptions): Promise<Tensor> {
  const t = await explicitClasses('gradCam', 'target', opts.target, x, model);
  return tidy(() => {
    const cls = t ? classTensor(t, x) : null;
    const { cams } = camRows('gradCam', model, x, opts.layer, { repeat: null, objective: (l) => rowObjective(l, cls ?? predicted(l), 1, 0) });
    return finish('gradCam', cams, x, opts);
  });
}

/**
 * CounterfactualCAM (Selvaraju et al. 2017, "counterfactual explanations"): "what would make
 * the network less sure of P?" — Grad-CAM with α negated, so it highlights the regions whose
 * removal would raise the target's score. [B, H, W].
 */
export async function counterfactualCam(model: Module, x: Tensor, opts: GradCamOptions): Promise<Tensor> {
  const t = await explicitClasses('counterfactualCam', 'target', opts.target, x, model);
  return tidy(() => {
    const cls = t ? classTensor(t, x) : null;
    const { cams } = camRows('counterfactualCam', model, x, opts.layer, { repeat: null, objective: (l) => rowObjective(l, cls ?? predicted(l), 1, 0), negate: true });
    return finish('counterfactualCam', cams, x, opts);
  });
}

/**
 * ContrastCAM (Prabhushankar et al., "Contrastive explanations in neural networks", ICIP 2020):
 * "why P, rather than Q?". J = cross-entropy(logits, Q) (the loss of pretending the label were
 * Q); α_c = spatial mean of ∂J/∂A_c; map = ReLU(Σ_c α_c A_c), upsampled and normalised.
 * Default Q: the runner-up (second-highest logit). An explicit Q equal to the prediction P throws
 * an ArgumentError (the contrast would be with itself). [B, H, W].
 */
export async function contrastCam(model: Module, x: Tensor, opts: ContrastCamOptions): Promise<Tensor> {
  const q = await explicitClasses('contrastCam', 'contrast class', opts.contrast, x, model);
  const { map, same } = tidy(() => {
    const cls = q ? classTensor(q, x) : null;
    let same: Tensor | null = null;
    const { cams } = camRows('contrastCam', model, x, opts.layer, {
      repeat: null,
      objective: (l) => {
        // Q = P is checked on the device in the same pass (no extra forward), read below.
        if (cls) same = eq(predicted(l), cls);
        return rowObjective(l, cls ?? runnerUp(l), -1, 1);
      },
    });
    return { map: finish('contrastCam', cams, x, opts), same: same as Tensor | null };
  });
  if (same) {
    const s = await same.data();
    same.dispose();
    const b = Array.from(s).findIndex((v) => v !== 0);
    if (b >= 0) {
      map.dispose();
      throw new ArgumentError(`contrastCam: contrast class Q = ${q![b]} equals the prediction P for input ${b}; "why P rather than P" has no answer (choose Q ≠ P)`);
    }
  }
  return map;
}

/**
 * VOICE (Prabhushankar & AlRegib, "VOICE: Variance of Induced Contrastive Explanations to
 * quantify uncertainty in neural network interpretability", 2023): for each input, the
 * ContrastCAMs for ALL contrast classes Q ≠ P, min–max normalised, and their per-pixel variance
 * across Q (population variance), min–max normalised, as the uncertainty of the explanation.
 * Metrics: SNR = mean/std of the uncertainty map, and the IoU of (uncertainty > t) with
 * (Grad-CAM explanation > t), t = 0.1. The notes report a higher IoU on wrongly classified inputs.
 *
 * Batched: one forward of the layers before the target layer on the B inputs, then the layer's
 * activation is repeated K times per input (K−1 contrast rows and the Grad-CAM row) and the rest
 * of the network runs forward and backward ONCE over B·K rows. Memory grows with B·K rows after
 * the layer.
 */
export async function voice(model: Module, x: Tensor, opts: VoiceOptions): Promise<VoiceResult> {
  const op = 'voice';
  const B = batchOf(op, x);
  const t = opts.threshold ?? 0.1;
  if (!Number.isFinite(t)) throw new ArgumentError(`voice: threshold must be a finite number, got ${t}`);
  const K = numClasses(op, model, x);
  if (K < 2) throw new ArgumentError(`voice: needs at least 2 classes (got K = ${K})`);
  return tidy(() => {
    const be = x.backend;
    const dt = x.dtype;
    const R = B * K;
    // Row r = b·K + j: j = 0 is input b's Grad-CAM row, j = 1 … K−1 its contrast rows, Q = (P + j) mod K.
    const repeat = fromHost(Int32Array.from({ length: R }, (_, r) => Math.floor(r / K)), [R], 'int32', be);
    const jHost = Float64Array.from({ length: R }, (_, r) => r % K);
    const j = fromHost(jHost, [R], dt, be);
    const coef = fromHost(jHost.map((v) => (v === 0 ? 1 : -1)), [R], dt, be); // +1: the score z_P (j = 0); −1: the −z_Q term of CE
    const lse = fromHost(jHost.map((v) => (v === 0 ? 0 : 1)), [R], dt, be);
    let rowClass: Tensor | null = null;
    const { cams } = camRows(op, model, x, opts.layer, {
      repeat,
      objective: (l) => {
        // Every row of input b sees the same logits, so P per row is input b's prediction.
        const s = add(cast(predicted(l), dt), j);
        rowClass = cast(sub(s, mul(cast(ge(s, K), dt), K)), 'int32'); // (P + j) mod K, [R]
        return rowObjective(l, rowClass, coef, lse);
      },
    });
    const all = finish(op, cams, x, { ...opts, normalize: true }); // [R, H', W'], each map normalised
    const [Ho, Wo] = [all.shape[1], all.shape[2]];
    const perInput = reshape(all, [B, K, Ho, Wo]);
    const explanation = reshape(slice(perInput, [0, 0, 0, 0], [B, 1, Ho, Wo]), [B, Ho, Wo]);
    const maps = slice(perInput, [0, 1, 0, 0], [B, K - 1, Ho, Wo]);
    const uncertainty = normalizeMaps(variance(maps, 1)); // [B, Ho, Wo]
    const classes = reshape(rowClass!, [B, K]);
    const contrastClasses = slice(classes, [0, 1], [B, K - 1]);
    const prediction = reshape(slice(classes, [0, 0], [B, 1]), [B]);
    const m = mean(uncertainty, [1, 2]);
    const sd = sqrt(variance(uncertainty, [1, 2]));
    const snr = where(gt(sd, 0), div(m, where(gt(sd, 0), sd, 1)), zerosLike(m));
    const u = cast(gt(uncertainty, t), dt);
    const e = cast(gt(explanation, t), dt);
    const inter = sum(mul(u, e), [1, 2]);
    const union = sub(add(sum(u, [1, 2]), sum(e, [1, 2])), inter);
    const iou = where(gt(union, 0), div(inter, where(gt(union, 0), union, 1)), zerosLike(inter));
    return { maps, contrastClasses, explanation, uncertainty, snr, iou, prediction };
  });
}
