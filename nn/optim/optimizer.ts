import {
  ArgumentError, DTypeError, IndexError, ShapeError, Tensor, add, detach, fmtShape, full, keep, maximum, mul, noGrad, sqrt, square, sum, tidy, abs, max, minimum, div,
} from '../../engine/index.js';
import { assignInPlace, sameBackendOrThrow } from '../assign.js';

/** Per-parameter optimiser state: tensors (moments, momentum buffers) and numbers (step counts). */
export type ParamState = Record<string, Tensor | number>;

export type ParamGroup<H> = H & { params: Tensor[] };

/** `params` as a flat list, or PyTorch-style groups with per-group hyperparameters. */
export type ParamsArg<H> = Tensor[] | Array<Partial<H> & { params: Tensor[] }>;

export interface OptimizerStateDict<H> {
  /** State by parameter index (counting through the groups in order). */
  state: Record<number, ParamState>;
  /** Hyperparameters of each group, with `params` replaced by parameter indices. */
  paramGroups: Array<H & { params: number[] }>;
}

/**
 * Base class of the optimisers (torch.optim.Optimizer). Updates run under `noGrad` inside a
 * `tidy` scope; each parameter is updated in place (the Tensor object keeps its identity, see
 * nn/assign.ts), state tensors are replaced and the old ones freed, so `memory().liveTensors`
 * stays flat across steps. Parameters whose `.grad` is null are skipped.
 */
export abstract class Optimizer<H extends { lr: number }> {
  readonly paramGroups: ParamGroup<H>[];
  readonly defaults: H;
  /** State per parameter tensor. */
  readonly state = new Map<Tensor, ParamState>();

  constructor(params: ParamsArg<H>, defaults: H) {
    this.defaults = defaults;
    const name = this.constructor.name;
    if (!Array.isArray(params) || params.length === 0) throw new ArgumentError(`${name}: expected a non-empty list of parameters or parameter groups`);
    const groups = params[0] instanceof Tensor ? [{ params: params as Tensor[] }] : (params as Array<Partial<H> & { params: Tensor[] }>);
    const seen = new Set<Tensor>();
    this.paramGroups = groups.map((g, gi) => {
      if (!g || !Array.isArray(g.params)) throw new ArgumentError(`${name}: parameter group ${gi} has no 'params' list`);
      for (const p of g.params) {
        if (!(p instanceof Tensor)) throw new ArgumentError(`${name}: group ${gi} contains a non-Tensor`);
        if (p.dtype !== 'float32' && p.dtype !== 'float64') throw new DTypeError(`${name}: parameters must be float, got ${p.dtype} ${fmtShape(p.shape)}`);
        if (seen.has(p)) throw new ArgumentError(`${name}: a parameter ${fmtShape(p.shape)} appears in more than one group`);
        seen.add(p);
      }
      const merged = { ...defaults, ...g, params: [...g.params] } as ParamGroup<H>;
      this.validate(merged);
      return merged;
    });
  }

  /** Throws ArgumentError for invalid hyperparameters. */
  protected validate(g: ParamGroup<H>): void {
    if (!(g.lr >= 0)) throw new ArgumentError(`${this.constructor.name}: lr must be ≥ 0, got ${g.lr}`);
  }

  /** Computes the new value of `p` from its gradient; updates `state` via {@link setState}. Runs under noGrad + tidy. */
  protected abstract update(p: Tensor, grad: Tensor, group: ParamGroup<H>, state: ParamState): Tensor;

  /** Replaces a state tensor (keeps the new one, frees the old one). */
  protected setState(state: ParamState, key: string, value: Tensor): void {
    const old = state[key];
    keep(value);
    state[key] = value;
    if (old instanceof Tensor && old !== value) old.dispose();
  }

  /** One optimisation step over every parameter with a gradient. */
  step(): void {
    tidy(() =>
      noGrad(() => {
        for (const group of this.paramGroups) {
          for (const p of group.params) {
            const g = p.grad;
            if (!g) continue;
            if (g.shape.length !== p.shape.length || g.shape.some((d, i) => d !== p.shape[i])) {
              throw new ShapeError(`${this.constructor.name}.step: gradient ${fmtShape(g.shape)} does not match its parameter ${fmtShape(p.shape)}`);
            }
            let state = this.state.get(p);
            if (!state) this.state.set(p, (state = {}));
            const next = this.update(p, g, group, state);
            assignInPlace(p, next, `${this.constructor.name}.step`);
          }
        }
      }),
    );
  }

  /** Frees every parameter's `.grad`. */
  zeroGrad(): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (p.grad) {
          p.grad.dispose();
          p.grad = null;
        }
      }
    }
  }

  /** State and hyperparameters; state tensors are detached views (a snapshot; dispose when done). */
  stateDict(): OptimizerStateDict<H> {
    const state: Record<number, ParamState> = {};
    const paramGroups: Array<H & { params: number[] }> = [];
    let idx = 0;
    for (const g of this.paramGroups) {
      const ids: number[] = [];
      for (const p of g.params) {
        const s = this.state.get(p);
        if (s) {
          const copy: ParamState = {};
          for (const [k, v] of Object.entries(s)) copy[k] = v instanceof Tensor ? detach(v) : v;
          state[idx] = copy;
        }
        ids.push(idx++);
      }
      const { params: _omit, ...hyper } = g;
      void _omit;
      paramGroups.push({ ...(hyper as unknown as H), params: ids });
    }
    return { state, paramGroups };
  }

  /** Restores state and hyperparameters saved by {@link stateDict} (groups and sizes must match). */
  loadStateDict(sd: OptimizerStateDict<H>): void {
    const name = this.constructor.name;
    if (!sd || !Array.isArray(sd.paramGroups) || sd.paramGroups.length !== this.paramGroups.length) {
      throw new ArgumentError(`${name}.loadStateDict: expected ${this.paramGroups.length} parameter groups, got ${sd?.paramGroups?.length}`);
    }
    const byIndex: Tensor[] = [];
    sd.paramGroups.forEach((g, gi) => {
      if (g.params.length !== this.paramGroups[gi].params.length) {
        throw new ArgumentError(`${name}.loadStateDict: group ${gi} has ${g.params.length} parameters, the optimiser has ${this.paramGroups[gi].params.length}`);
      }
      g.params.forEach((id, j) => (byIndex[id] = this.paramGroups[gi].params[j]));
    });
    for (const [k, s] of Object.entries(sd.state)) {
      const p = byIndex[Number(k)];
      if (!p) throw new IndexError(`${name}.loadStateDict: state for parameter index ${k}, which no group lists`);
      for (const [key, v] of Object.entries(s)) {
        if (!(v instanceof Tensor)) continue;
        if (v.shape.length !== p.shape.length || v.shape.some((d, i) => d !== p.shape[i])) {
          throw new ShapeError(`${name}.loadStateDict: state '${key}' of parameter ${k} has shape ${fmtShape(v.shape)}, the parameter is ${fmtShape(p.shape)}`);
        }
        if (v.dtype !== p.dtype) throw new DTypeError(`${name}.loadStateDict: state '${key}' of parameter ${k} is ${v.dtype}, the parameter is ${p.dtype}`);
        sameBackendOrThrow(p, v, `${name}.loadStateDict state '${key}' of parameter ${k}`);
      }
    }
    this.disposeState();
    for (const [k, s] of Object.entries(sd.state)) {
      const st: ParamState = {};
      for (const [key, v] of Object.entries(s)) st[key] = v instanceof Tensor ? keep(detach(v)) : v;
      this.state.set(byIndex[Number(k)], st);
    }
    sd.paramGroups.forEach((g, gi) => {
      const { params: _omit, ...hyper } = g;
      void _omit;
      Object.assign(this.paramGroups[gi], hyper);
    });
  }

  private disposeState(): void {
    for (const s of this.state.values()) for (const v of Object.values(s)) if (v instanceof Tensor) v.dispose();
    this.state.clear();
  }

  /** Frees the optimiser state (not the parameters). */
  dispose(): void {
    this.disposeState();
  }
}

/**
 * Rescales the gradients of `params` in place so that their joint norm is at most `maxNorm`
 * (torch.nn.utils.clip_grad_norm_: factor min(1, maxNorm / (norm + 1e-6)), no host sync).
 * Returns the total norm before clipping as a scalar tensor (`await n.item()` to read it).
 * `normType` 2 (default), 1 or Infinity.
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, normType: number = 2): Tensor {
  if (!(maxNorm >= 0)) throw new ArgumentError(`clipGradNorm: maxNorm must be ≥ 0, got ${maxNorm}`);
  if (normType !== 2 && normType !== 1 && normType !== Infinity) throw new ArgumentError(`clipGradNorm: normType must be 1, 2 or Infinity, got ${normType}`);
  const ps = [...params].filter((p) => p.grad);
  if (!ps.length) return full([], 0);
  return tidy(() =>
    noGrad(() => {
      let total: Tensor | null = null;
      for (const p of ps) {
        const g = p.grad!;
        const part = normType === 2 ? sum(square(g)) : normType === 1 ? sum(abs(g)) : max(abs(g));
        total = total === null ? part : normType === Infinity ? maximum(total, part) : add(total, part);
      }
      const norm = normType === 2 ? sqrt(total!) : total!;
      const coef = minimum(div(maxNorm, add(norm, 1e-6)), 1);
      for (const p of ps) assignInPlace(p.grad!, mul(p.grad!, coef), 'clipGradNorm');
      return norm;
    }),
  );
}
