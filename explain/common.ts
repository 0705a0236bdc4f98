/**
 * Shared pieces of the explanation methods: resolving a target layer, validating class targets,
 * building the per-row objective and min–max normalisation of maps.
 */
import {
  ArgumentError, IndexError, ShapeError, type Tensor, add, argmax, detach, fmtShape, fromHost, logsumexp, max, min,
  mul, oneHot, sub, div, sum,
} from '../engine/index.js';
import { Module } from '../nn/index.js';

/** A layer given as the module itself or as its dotted name from `model.namedModules()`. */
export type LayerRef = Module | string;

/**
 * Class targets, one per input: a single class for every input, an array / Int32Array of B
 * classes, or an int32 tensor [B]. Omitted: the predicted class (argmax of the logits).
 */
export type Targets = number | readonly number[] | Int32Array | Tensor;

/**
 * Added to the range in the per-map min–max normalisation, (m − min) / (max − min + ε): a flat
 * map (for instance Grad-CAM after a ReLU that removed everything) becomes all zeros instead of
 * NaN. The same ε as pytorch-grad-cam's `scale_cam_image`.
 */
export const NORMALIZE_EPS = 1e-7;

/** The module that `layer` names in `model`, or a clear ArgumentError listing what exists. */
export function resolveLayer(op: string, model: Module, layer: LayerRef): { module: Module; name: string } {
  if (!(model instanceof Module)) throw new ArgumentError(`${op}: model must be a Module, got ${typeof model}`);
  const named = model.namedModules();
  if (typeof layer === 'string') {
    const hit = named.find(([n]) => n === layer);
    if (!hit) {
      const names = named.map(([n]) => `'${n}'`).join(', ');
      throw new ArgumentError(`${op}: layer '${layer}' is not a module of ${model.constructor.name} (its modules: ${names})`);
    }
    return { module: hit[1], name: layer };
  }
  if (!(layer instanceof Module)) throw new ArgumentError(`${op}: layer must be a Module or the name of one, got ${typeof layer}`);
  const hit = named.find(([, m]) => m === layer);
  if (!hit) throw new ArgumentError(`${op}: the layer ${layer.constructor.name} is not a submodule of ${model.constructor.name}`);
  return { module: layer, name: hit[0] };
}

/** Checks that `x` is a float batch [B, ...] with B ≥ 1 and returns B. */
export function batchOf(op: string, x: Tensor): number {
  if (x.dtype !== 'float32' && x.dtype !== 'float64') throw new ArgumentError(`${op}: the input must be float32 or float64, got ${x.dtype} ${fmtShape(x.shape)}`);
  if (x.rank < 2 || x.shape[0] < 1) throw new ShapeError(`${op}: expected a batch of inputs [B, ...] with B ≥ 1, got ${fmtShape(x.shape)}`);
  return x.shape[0];
}

/** Checks the logits a model returned: [rows, K]. */
export function checkLogits(op: string, logits: unknown, rows: number): Tensor {
  const t = logits as Tensor;
  if (!t || typeof t !== 'object' || !('shape' in t) || t.rank !== 2 || t.shape[0] !== rows) {
    const shape = t && typeof t === 'object' && 'shape' in t ? fmtShape(t.shape) : typeof logits;
    throw new ShapeError(`${op}: the model must return logits [${rows}, K], got ${shape}`);
  }
  if (t.shape[1] < 1) throw new ShapeError(`${op}: the model returned logits ${fmtShape(t.shape)} with no classes`);
  return t;
}

/** Reads and validates explicit targets: B integers in [0, K). */
export async function readTargets(op: string, what: string, t: Targets, B: number, K: number): Promise<Int32Array> {
  let v: Int32Array;
  if (typeof t === 'number') v = new Int32Array(B).fill(t);
  else if (t instanceof Int32Array) v = t;
  else if (Array.isArray(t)) v = Int32Array.from(t as number[]);
  else {
    const tt = t as Tensor;
    if (tt.dtype !== 'int32') throw new ArgumentError(`${op}: ${what} tensor must be int32, got ${tt.dtype} ${fmtShape(tt.shape)}`);
    if (tt.rank !== 1) throw new ShapeError(`${op}: ${what} tensor must be [B] = [${B}], got ${fmtShape(tt.shape)}`);
    v = Int32Array.from(await tt.data());
  }
  const raw = typeof t === 'number' ? [t] : Array.isArray(t) ? (t as number[]) : Array.from(v);
  for (const c of raw) {
    if (!Number.isInteger(c) || c < 0 || c >= K) throw new IndexError(`${op}: ${what} ${c} is outside [0, ${K}) (the model has K = ${K} classes)`);
  }
  if (v.length !== B) throw new ShapeError(`${op}: ${v.length} ${what}s for a batch of B = ${B} inputs`);
  return v;
}

/** int32 tensor of class indices on `like`'s backend. */
export function classTensor(values: Int32Array, like: Tensor): Tensor {
  return fromHost(values, [values.length], 'int32', like.backend);
}

/** The predicted class of each row (argmax), computed on the device. */
export function predicted(logits: Tensor): Tensor {
  return argmax(detach(logits), -1);
}

/** The second-highest logit's class of each row (the default contrast class), on the device. */
export function runnerUp(logits: Tensor): Tensor {
  const l = detach(logits);
  const K = l.shape[1];
  const top = oneHot(argmax(l, -1), K, l.dtype);
  // Push the top class below every other logit: subtract (max − min + 1) at its position.
  const spread = add(sub(max(l, 1, true), min(l, 1, true)), 1);
  return argmax(sub(l, mul(top, spread)), -1);
}

/**
 * The objective whose gradient the CAMs use, summed over rows (rows are independent, so the
 * gradient of the sum w.r.t. a row's activation is that row's own):
 *   L = Σ_r [ coef_r · z_r,cls_r + lse_r · logsumexp(z_r) ].
 *   - Grad-CAM row for class t:        cls = t, coef = 1,  lse = 0 → L_r = z_rt (the pre-softmax score)
 *   - ContrastCAM row for contrast Q:  cls = Q, coef = −1, lse = 1 → L_r = CE(z_r, Q) = logsumexp(z_r) − z_rQ
 * `coef` and `lse` are numbers (every row) or [R] tensors.
 */
export function rowObjective(logits: Tensor, cls: Tensor, coef: number | Tensor, lse: number | Tensor): Tensor {
  const K = logits.shape[1];
  const picked = sum(mul(logits, oneHot(cls, K, logits.dtype)), 1); // [R]: z_r,cls_r
  let L = sum(typeof coef === 'number' ? (coef === 1 ? picked : mul(picked, coef)) : mul(picked, coef));
  if (typeof lse !== 'number' || lse !== 0) L = add(L, sum(mul(logsumexp(logits, 1), lse)));
  return L;
}

/** Per-map min–max normalisation of [N, ...] maps over all but the first axis. */
export function normalizeMaps(m: Tensor): Tensor {
  const axes = Array.from({ length: m.rank - 1 }, (_, i) => i + 1);
  const lo = min(m, axes, true);
  const hi = max(m, axes, true);
  return div(sub(m, lo), add(sub(hi, lo), NORMALIZE_EPS));
}
