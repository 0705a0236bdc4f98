import {
  ArgumentError, DTypeError, IndexError, type Replayable, ShapeError, Tensor, WebGPUBackend, add, detach, fmtShape, full, keep, maximum, mul, noGrad, recordStep,
  sqrt, square, sum, tidy, abs, max, minimum, div,
} from '../../engine/index.js';
import type { Module } from '../module.js';
import { Dropout } from '../layers/dropout.js';
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

  /**
   * Sets a state tensor. An existing one of the same shape and dtype is updated in place (it
   * shares `value`'s storage from now on, see `Tensor.assign`; `value` stays usable), so that state tensors keep their
   * identity across steps (what a compiled step, {@link compile}, updates); otherwise the new
   * one is kept and the old one freed.
   */
  protected setState(state: ParamState, key: string, value: Tensor): void {
    const old = state[key];
    if (old instanceof Tensor && old !== value && !old.isDisposed && old.dtype === value.dtype && old.shape.length === value.shape.length && old.shape.every((d, i) => d === value.shape[i])) {
      // A view: `value` stays valid for the caller (subclasses may use it after setting it).
      old.assign(detach(value), `${this.constructor.name}.step`);
      return;
    }
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

  /**
   * Compiles a whole training step — `zeroGrad`, `loss = lossFn(...inputs)`, `loss.backward()`,
   * `step()` — for inputs whose shapes and dtypes do not change (a fixed batch size). On WebGPU
   * the first call runs eagerly (it creates the optimiser state), the second runs while it is
   * recorded (engine/capture.ts `recordStep`), and every later call replays the recorded
   * dispatches without running the JS op graph: pipelines, bind groups and buffers are reused,
   * the inputs are copied into the recorded input buffers.
   *
   * What a replay updates, as the eager step would: the parameters and the optimiser's state
   * tensors, in place (the Tensor objects keep their identity; see `RecordOptions.state`);
   * numeric state (Adam's step count t) advances by what the recorded step added; the uniforms
   * of the fused update kernels are re-read per replay, so the current learning rate (an
   * `LRScheduler` step between calls), betas, eps, weight decay and Adam's bias corrections
   * 1 − βᵗ are honoured; dropout masks drawn from the global generator continue its stream.
   * The returned loss is detached and owned by the caller; `.grad` is null after a call (there
   * is no hook between backward and update, e.g. for gradient clipping: use the eager step).
   * Cost per replay: two buffer copies per parameter and state tensor (into the recording's
   * private buffer, and out to a fresh storage), no op graph.
   *
   * Handled by recording again (transparently): a change that selects another kernel (a weight
   * decay, momentum or other hyperparameter switched between zero and non-zero, a boolean
   * option), or a state tensor replaced (`loadStateDict`) or added (a parameter's first update).
   * Forbidden: inputs of another shape or dtype (ShapeError / DTypeError: compile another step);
   * adding or removing parameters (ArgumentError); switching train/eval (or MC dropout) of the
   * model between calls — pass `{ model }` to have its modules' modes checked (ArgumentError),
   * it is not detected otherwise; `lossFn` must not depend on JS state other than its inputs, the model's
   * tensors and the optimiser (a recorded step does not run it again). The CPU backend has no
   * dispatches to save: every call runs eagerly.
   */
  compile(lossFn: (...inputs: Tensor[]) => Tensor, opts: { model?: Module } = {}): CompiledStep {
    const name = `${this.constructor.name}.compile`;
    if (typeof lossFn !== 'function') throw new ArgumentError(`${name}: expected a loss function (...inputs) => scalar loss tensor`);
    const groupsAt = this.paramGroups.map((g) => [...g.params]);
    const modules = opts.model ? opts.model.modules() : [];
    const modes = modules.map((m) => m.training);
    const drops = modules.map((m) => (m instanceof Dropout ? m.active : null));
    const params = () => this.paramGroups.flatMap((g) => g.params);
    /** Parameters and state tensors, in a fixed order. */
    const stateList = (): Tensor[] => params().flatMap((p) => {
      const st = this.state.get(p) ?? {};
      return [p, ...Object.keys(st).sort().map((k) => st[k]).filter((v): v is Tensor => v instanceof Tensor)];
    });
    const numbers = () => params().flatMap((p) => {
      const st = this.state.get(p);
      return st ? Object.keys(st).filter((k) => typeof st[k] === 'number').map((k) => ({ st, k, v: st[k] as number })) : [];
    });
    /** What selects the update kernels: booleans, arrays, and which numbers are zero. */
    const kernelKey = () => JSON.stringify(this.paramGroups.map((g) => Object.entries(g).filter(([k]) => k !== 'params').map(([k, v]) => [k, typeof v === 'number' ? v === 0 : v])));
    const body = (...inputs: Tensor[]): Tensor => {
      const loss = lossFn(...inputs);
      if (!(loss instanceof Tensor) || loss.size !== 1) {
        throw new ShapeError(`${name}: the loss function must return a one-element tensor, got ${loss instanceof Tensor ? fmtShape(loss.shape) : typeof loss}`);
      }
      loss.backward();
      this.step();
      this.zeroGrad();
      return detach(loss);
    };
    let calls = 0;
    let sig: { shape: number[]; dtype: string }[] | null = null;
    let rec: { replay: Replayable; state: Tensor[]; key: string; counters: { st: ParamState; k: string; delta: number }[] } | null = null;
    let disposed = false;
    const drop = () => {
      rec?.replay.dispose();
      rec = null;
    };
    const sameList = (a: readonly Tensor[], b: readonly Tensor[]) => a.length === b.length && a.every((t, i) => t === b[i]);
    return {
      step: (...inputs: Tensor[]): Tensor => {
        if (disposed) throw new ArgumentError(`${name}: the compiled step was disposed`);
        if (!sig) sig = inputs.map((t) => ({ shape: [...t.shape], dtype: t.dtype }));
        if (inputs.length !== sig.length) throw new ArgumentError(`${name}: expected ${sig.length} inputs (as at the first call), got ${inputs.length}`);
        inputs.forEach((t, i) => {
          const s = sig![i];
          if (t.shape.length !== s.shape.length || t.shape.some((d, k) => d !== s.shape[k])) {
            throw new ShapeError(`${name}: input ${i} has shape ${fmtShape(t.shape)}, the step was compiled with ${fmtShape(s.shape)} (compile another step for another shape)`);
          }
          if (t.dtype !== s.dtype) throw new DTypeError(`${name}: input ${i} has dtype ${t.dtype}, the step was compiled with ${s.dtype}`);
        });
        this.paramGroups.forEach((g, gi) => {
          if (!sameList(g.params, groupsAt[gi] ?? [])) throw new ArgumentError(`${name}: the parameters of group ${gi} changed since the step was compiled (${groupsAt[gi]?.length ?? 0} → ${g.params.length}); compile a new step`);
        });
        if (this.paramGroups.length !== groupsAt.length) throw new ArgumentError(`${name}: the optimiser has ${this.paramGroups.length} parameter groups, ${groupsAt.length} when the step was compiled; compile a new step`);
        modules.forEach((m, i) => {
          if (m.training !== modes[i]) throw new ArgumentError(`${name}: ${m.constructor.name} was switched to ${m.training ? 'train' : 'eval'} mode after the step was compiled in ${modes[i] ? 'train' : 'eval'} mode; compile a new step`);
          if (m instanceof Dropout && m.active !== drops[i]) throw new ArgumentError(`${name}: a Dropout layer was switched ${m.active ? 'on' : 'off'} (MC dropout) after the step was compiled; compile a new step`);
        });
        calls++;
        this.zeroGrad();
        if (rec && (!sameList(stateList(), rec.state) || kernelKey() !== rec.key)) drop();
        if (rec) {
          for (const c of rec.counters) c.st[c.k] = (c.st[c.k] as number) + c.delta;
          try {
            return rec.replay.run(...inputs)[0];
          } catch (e) {
            for (const c of rec.counters) c.st[c.k] = (c.st[c.k] as number) - c.delta;
            throw e;
          }
        }
        const gpu = inputs.length ? inputs[0].backend instanceof WebGPUBackend : params()[0].backend instanceof WebGPUBackend;
        if (!gpu || calls < 2) return tidy(() => keep(body(...inputs)));
        const before = stateList();
        const nums = numbers();
        const key = kernelKey();
        const r = recordStep(body, inputs, { state: before });
        const after = stateList();
        if (sameList(before, after)) {
          const counters = nums.map((n) => ({ st: n.st, k: n.k, delta: (n.st[n.k] as number) - n.v })).filter((c) => c.delta !== 0);
          rec = { replay: r.replay, state: after, key, counters };
        } else r.replay.dispose(); // state was created during the recording: record again next call
        return r.outputs[0];
      },
      get recorded() {
        return rec !== null;
      },
      get dispatches() {
        return rec?.replay.dispatches ?? 0;
      },
      dispose: () => {
        disposed = true;
        drop();
      },
    };
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

/** A training step compiled by {@link Optimizer.compile}. */
export interface CompiledStep {
  /** Runs one training step on these inputs and returns its loss (detached; the caller owns it). */
  step(...inputs: Tensor[]): Tensor;
  /** True once a step is recorded (the next calls replay it; always false on the CPU backend). */
  readonly recorded: boolean;
  /** Dispatches one replayed step encodes (0 before the recording and on the CPU backend). */
  readonly dispatches: number;
  /** Frees the recording (not the parameters or the optimiser state). */
  dispose(): void;
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
