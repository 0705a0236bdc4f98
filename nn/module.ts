import {
  ArgumentError, type Backend, cast, defineOp, detach, type DType, DTypeError, fmtShape, isRecording, keep, noGrad, runOp, ShapeError, Tensor,
} from '../engine/index.js';
import { assignInPlace, sameBackendOrThrow } from './assign.js';

// ------------------------------------------------------------------------------ parameters
const PARAMETERS = new WeakSet<Tensor>();
const BUFFERS = new WeakSet<Tensor>();

/**
 * Marks `t` as a trainable parameter (PyTorch's `nn.Parameter(t)`): sets `requiresGrad`, exempts
 * it from `tidy` scopes (`keep`) and lets a {@link Module} find it when it is assigned to one of
 * the module's properties. Returns `t`.
 */
export function parameter(t: Tensor, requiresGrad = true): Tensor {
  keep(t);
  t.requiresGrad = requiresGrad;
  PARAMETERS.add(t);
  return t;
}

/** Marks `t` as a module buffer (state that is saved but not trained, e.g. BatchNorm statistics). */
export function buffer(t: Tensor): Tensor {
  keep(t);
  BUFFERS.add(t);
  return t;
}

export const isParameter = (t: unknown): t is Tensor => t instanceof Tensor && PARAMETERS.has(t);
export const isBuffer = (t: unknown): t is Tensor => t instanceof Tensor && BUFFERS.has(t);

// ------------------------------------------------------------------------------ hooks
export interface HookHandle {
  remove(): void;
}

/** Called after `forward`; returning a value replaces the output (as in PyTorch). */
export type ForwardHook = (module: Module, inputs: unknown[], output: any) => unknown;
/** Called before `forward`; returning an array replaces the inputs. */
export type ForwardPreHook = (module: Module, inputs: unknown[]) => unknown[] | void;
/**
 * Called during backward with the gradient of the loss w.r.t. the module's output. `gradOutput`
 * is only valid during the call (the backward pass frees it afterwards): to keep it, store
 * `keep(gradOutput.detach())` (or use {@link capture}).
 */
export type BackwardHook = (module: Module, gradOutput: Tensor) => void;

interface HookAttrs {
  fire: (dy: Tensor) => void;
}

/** Identity whose gradient rule reports the incoming gradient (dy) to the module's backward hooks. */
const OUTPUT_HOOK = defineOp<HookAttrs>({
  name: 'moduleOutputHook',
  view: true,
  infer: ([x]) => ({ shape: [...x.shape], dtype: x.dtype }),
  cpu: ([x]) => x.data,
  webgpu() {},
  grad(dy, _inputs, _out, a) {
    a.fire(dy);
    return [dy];
  },
});

interface Internals {
  forwardHooks: Map<number, ForwardHook>;
  forwardPreHooks: Map<number, ForwardPreHook>;
  backwardHooks: Map<number, BackwardHook>;
}
let nextHookId = 1;
const INTERNALS = new WeakMap<Module, Internals>();
function internals(m: Module): Internals {
  let i = INTERNALS.get(m);
  if (!i) INTERNALS.set(m, (i = { forwardHooks: new Map(), forwardPreHooks: new Map(), backwardHooks: new Map() }));
  return i;
}

export interface LoadStateDictOptions {
  /** Every key of the module must be present and no other key (default true). */
  strict?: boolean;
}

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export type StateDict = Record<string, Tensor>;

/** Per module: the hook-running `forward` its constructor installed, and the method it wraps. */
const FORWARD_IMPLS = new WeakMap<object, { wrapper: unknown; impl: (...inputs: any[]) => unknown }>();

/**
 * The `forward` implementation that `m.forward(...)` runs: the class's method that the Module
 * constructor wrapped with the hooks, or null when `m.forward` was replaced on the instance since.
 * Sequential's fusion uses it to make sure a fused kernel never stands in for a different forward.
 */
export function forwardImplementation(m: Module): ((...inputs: any[]) => unknown) | null {
  const f = FORWARD_IMPLS.get(m);
  return f && f.wrapper === m.forward ? f.impl : null;
}

/**
 * Base class of every layer and model, after `torch.nn.Module`.
 *
 * - Parameters: assign `parameter(t)` to a property (`this.weight = parameter(...)`), or call
 *   `registerParameter(name, t)`. Parameters are kept alive across `tidy` scopes; the optimisers
 *   update them in place (the Tensor object stays the same), so references stay valid.
 * - Buffers: `this.runningMean = buffer(t)` or `registerBuffer(name, t)`.
 * - Submodules: assign a Module to a property, or `registerModule(name, m)`.
 * - `forward(...)` is what subclasses implement; calling `module.forward(x)` runs the forward
 *   pre-hooks, the implementation, the forward hooks and attaches the backward hooks (the base
 *   constructor wraps the subclass's method, like PyTorch's `module(x)`).
 *
 * Names are dotted paths in PyTorch's order (own parameters, then children in registration
 * order), e.g. `features.0.weight`, so state dicts can be ported key by key.
 */
export abstract class Module<I extends unknown[] = any[], O = any> {
  /** Training mode (dropout active, BatchNorm uses batch statistics). Set with `train()`/`eval()`. */
  training = true;

  constructor() {
    const impl = this.forward;
    const wrapper = (...inputs: I): O => this.callForward(impl, inputs);
    FORWARD_IMPLS.set(this, { wrapper, impl });
    Object.defineProperty(this, 'forward', {
      value: wrapper,
      enumerable: false,
      writable: true,
      configurable: true,
    });
  }

  /** The computation. Subclasses implement it; callers call it (hooks run around it). */
  abstract forward(...inputs: I): O;

  /** Whether any forward, forward-pre or backward hook is registered on this module itself. */
  hasHooks(): boolean {
    const h = INTERNALS.get(this);
    return !!h && (h.forwardHooks.size > 0 || h.forwardPreHooks.size > 0 || h.backwardHooks.size > 0);
  }

  private callForward(impl: (...inputs: I) => O, inputs: I): O {
    const h = INTERNALS.get(this);
    if (!h) return impl.apply(this, inputs);
    let args = inputs;
    for (const pre of h.forwardPreHooks.values()) {
      const r = pre(this, args);
      if (r !== undefined) args = r as I;
    }
    let out: O = impl.apply(this, args);
    for (const hook of h.forwardHooks.values()) {
      const r = hook(this, args, out);
      if (r !== undefined) out = r as O;
    }
    if (h.backwardHooks.size && out instanceof Tensor && out.requiresGrad && isRecording()) {
      const hooks = [...h.backwardHooks.values()];
      out = runOp(OUTPUT_HOOK, [out], { fire: (dy: Tensor) => { for (const b of hooks) b(this, dy); } }) as O;
    }
    return out;
  }

  // ---- registration ----
  /** Registers (or replaces) a parameter under `name`; `null` records an absent optional parameter. */
  registerParameter(name: string, t: Tensor | null): void {
    checkName(this, name);
    members(this)[name] = t === null ? null : isParameter(t) ? t : parameter(t);
  }

  registerBuffer(name: string, t: Tensor | null): void {
    checkName(this, name);
    members(this)[name] = t === null ? null : isBuffer(t) ? t : buffer(t);
  }

  registerModule(name: string, m: Module | null): void {
    checkName(this, name);
    if (m !== null && !(m instanceof Module)) throw new ArgumentError(`registerModule: '${name}' must be a Module, got ${typeof m}`);
    members(this)[name] = m;
  }

  // ---- traversal ----
  /** This module's own parameters (not its children's), in property order. */
  protected ownEntries(kind: 'param' | 'buffer'): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const k of Object.keys(this)) {
      const v = members(this)[k];
      if ((kind === 'param' && isParameter(v)) || (kind === 'buffer' && isBuffer(v))) out.push([k, v]);
    }
    return out;
  }

  /** Direct submodules with their property names. */
  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const k of Object.keys(this)) {
      const v = members(this)[k];
      if (v instanceof Module) out.push([k, v]);
    }
    return out;
  }

  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /** Every module in the tree, pre-order, starting with this one (name ''). Shared modules appear once. */
  namedModules(prefix = '', seen = new Set<Module>()): [string, Module][] {
    if (seen.has(this)) return [];
    seen.add(this);
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, c] of this.namedChildren()) out.push(...c.namedModules(prefix ? `${prefix}.${n}` : n, seen));
    return out;
  }

  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** Parameters with dotted names (`features.0.weight`); shared tensors appear once (first name). */
  namedParameters(): [string, Tensor][] {
    return this.namedTensors('param', true);
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(): [string, Tensor][] {
    return this.namedTensors('buffer', true);
  }

  buffers(): Tensor[] {
    return this.namedBuffers().map(([, t]) => t);
  }

  /** Total number of parameter elements. */
  parameterCount(): number {
    return this.parameters().reduce((s, p) => s + p.size, 0);
  }

  private namedTensors(kind: 'param' | 'buffer', dedupe: boolean): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const [n, t] of m.ownEntries(kind)) {
        if (dedupe && seen.has(t)) continue;
        seen.add(t);
        out.push([prefix ? `${prefix}.${n}` : n, t]);
      }
    }
    return out;
  }

  // ---- modes ----
  /** Sets training mode on this module and all submodules. */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  /** Inference mode (`train(false)`). */
  eval(): this {
    return this.train(false);
  }

  /** Calls `fn` on every module (children first, then this one), like PyTorch's `apply`. */
  apply(fn: (m: Module) => void): this {
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
  }

  /** Frees every parameter's `.grad` (PyTorch's `zero_grad(set_to_none=True)`). */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      if (p.grad) {
        p.grad.dispose();
        p.grad = null;
      }
    }
  }

  // ---- state ----
  /**
   * Parameters and buffers by dotted name (each module's parameters, then its buffers, then its
   * children's; every name of a shared tensor is listed). The values are detached views: a
   * snapshot that costs no copy (later optimiser steps do not change it). Dispose it when done
   * (`dispose(dict)`), or create it inside `tidy`.
   */
  stateDict(): StateDict {
    const out: StateDict = Object.create(null);
    for (const [prefix, m] of this.namedModules()) {
      for (const kind of ['param', 'buffer'] as const) {
        for (const [n, t] of m.ownEntries(kind)) out[prefix ? `${prefix}.${n}` : n] = detach(t);
      }
    }
    return out;
  }

  /**
   * Loads values by name. Shapes and dtypes must match (ShapeError / DTypeError naming the key),
   * values must live on the module's backend (BackendMismatchError otherwise). With `strict`
   * (default), missing or unexpected keys throw an ArgumentError listing them. The module shares
   * the given tensors' memory (no copy) and stays independent of them: disposing the dict later
   * is fine.
   */
  loadStateDict(dict: StateDict | Map<string, Tensor>, opts: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = opts.strict ?? true;
    const entries = dict instanceof Map ? dict : new Map(Object.entries(dict));
    const targets = new Map<string, Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const kind of ['param', 'buffer'] as const) {
        for (const [n, t] of m.ownEntries(kind)) targets.set(prefix ? `${prefix}.${n}` : n, t);
      }
    }
    const missingKeys = [...targets.keys()].filter((k) => !entries.has(k));
    const unexpectedKeys = [...entries.keys()].filter((k) => !targets.has(k));
    const who = this.constructor.name;
    if (strict && (missingKeys.length || unexpectedKeys.length)) {
      throw new ArgumentError(
        `loadStateDict(${who}): ` +
          (missingKeys.length ? `missing keys [${missingKeys.join(', ')}]` : '') +
          (missingKeys.length && unexpectedKeys.length ? '; ' : '') +
          (unexpectedKeys.length ? `unexpected keys [${unexpectedKeys.join(', ')}]` : '') +
          ' (pass { strict: false } to load a subset)',
      );
    }
    // Validate everything before changing anything.
    for (const [k, dst] of targets) {
      const src = entries.get(k);
      if (!src) continue;
      if (!(src instanceof Tensor)) throw new ArgumentError(`loadStateDict(${who}): '${k}' must be a Tensor`);
      if (src.shape.length !== dst.shape.length || src.shape.some((d, i) => d !== dst.shape[i])) {
        throw new ShapeError(`loadStateDict(${who}): '${k}' has shape ${fmtShape(src.shape)}, the module expects ${fmtShape(dst.shape)}`);
      }
      if (src.dtype !== dst.dtype) throw new DTypeError(`loadStateDict(${who}): '${k}' has dtype ${src.dtype}, the module expects ${dst.dtype}`);
      sameBackendOrThrow(dst, src, `loadStateDict(${who}) '${k}'`);
    }
    noGrad(() => {
      for (const [k, dst] of targets) {
        const src = entries.get(k);
        if (src) assignInPlace(dst, detach(src), `loadStateDict '${k}'`);
      }
    });
    return { missingKeys, unexpectedKeys };
  }

  /**
   * Moves every parameter and buffer to `backend` in place (the Tensor objects stay the same, so
   * optimisers built earlier keep working); gradients are dropped. Or, given a float dtype,
   * casts float parameters and buffers (new Tensor objects: build optimisers afterwards), e.g.
   * `await model.to('float64')` for finite-difference checks on the CPU backend.
   */
  async to(target: Backend | DType): Promise<this> {
    if (typeof target === 'string') {
      this.castFloats(target);
      return this;
    }
    this.zeroGrad();
    const seen = new Set<Tensor>();
    for (const t of [...this.parameters(), ...this.buffers()]) {
      if (seen.has(t)) continue;
      seen.add(t);
      if (t.backend === target) continue;
      const moved = await t.to(target);
      assignInPlace(t, moved, 'Module.to');
    }
    return this;
  }

  private castFloats(dtype: DType): void {
    if (dtype !== 'float32' && dtype !== 'float64') throw new DTypeError(`Module.to: expected a float dtype, got ${dtype}`);
    const replaced = new Map<Tensor, Tensor>();
    for (const m of this.modules()) {
      for (const k of Object.keys(m)) {
        const v = members(m)[k];
        const isP = isParameter(v);
        if (!isP && !isBuffer(v)) continue;
        if ((v.dtype !== 'float32' && v.dtype !== 'float64') || v.dtype === dtype) continue;
        let r = replaced.get(v);
        if (!r) {
          r = noGrad(() => cast(v, dtype));
          r = isP ? parameter(r, v.requiresGrad) : buffer(r);
          replaced.set(v, r);
        }
        members(m)[k] = r;
      }
    }
    for (const old of replaced.keys()) old.dispose();
  }

  /** Frees every parameter and buffer of the tree (the module is unusable afterwards). */
  dispose(): void {
    for (const t of [...this.parameters(), ...this.buffers()]) t.dispose();
    for (const m of this.modules()) INTERNALS.delete(m);
  }

  // ---- hooks ----
  /** `hook(module, inputs, output)` after every forward; a non-undefined return replaces the output. */
  registerForwardHook(hook: ForwardHook): HookHandle {
    return addHook(internals(this).forwardHooks, hook);
  }

  /** `hook(module, inputs)` before every forward; returning an array replaces the inputs. */
  registerForwardPreHook(hook: ForwardPreHook): HookHandle {
    return addHook(internals(this).forwardPreHooks, hook);
  }

  /**
   * `hook(module, gradOutput)` during backward, with the gradient w.r.t. this module's (tensor)
   * output. It works by routing the output through an identity op whose gradient rule calls the
   * hook, so it fires for `backward()`, `grad()` and `gradients()` alike, once per forward call
   * whose output the differentiated value depends on.
   */
  registerBackwardHook(hook: BackwardHook): HookHandle {
    return addHook(internals(this).backwardHooks, hook);
  }

  // ---- printing ----
  /** Extra text inside the module's parentheses in `toString()` (e.g. `in=4, out=3`). */
  extraRepr(): string {
    return '';
  }

  toString(): string {
    const kids = this.namedChildren();
    const head = `${this.constructor.name}(${this.extraRepr()}`;
    if (!kids.length) return head + ')';
    const lines = kids.map(([n, m]) => `  (${n}): ${m.toString().split('\n').join('\n  ')}`);
    return `${head}\n${lines.join('\n')}\n)`;
  }
}

function addHook<H>(map: Map<number, H>, hook: H): HookHandle {
  const id = nextHookId++;
  map.set(id, hook);
  return { remove: () => void map.delete(id) };
}

/**
 * A module's own properties by name. Registration is by property assignment (as in PyTorch), so
 * traversal and registration read and write members reflectively; values come back as `unknown`
 * and are narrowed by `isParameter` / `isBuffer` / `instanceof Module` before use.
 */
function members(m: Module): Record<string, unknown> {
  return m as unknown as Record<string, unknown>;
}

function checkName(m: Module, name: string): void {
  if (typeof name !== 'string' || name === '' || name.includes('.')) {
    throw new ArgumentError(`${m.constructor.name}: invalid member name '${name}' (non-empty, no '.')`);
  }
  if (typeof members(m)[name] === 'function') {
    throw new ArgumentError(`${m.constructor.name}: '${name}' would shadow a method`);
  }
}

// ------------------------------------------------------------------------------ capture
export interface Capture {
  /** Output of the most recent forward call (a detached, kept copy-free view), or null. */
  readonly activation: Tensor | null;
  /** Gradient w.r.t. that output from the most recent backward pass, or null. */
  readonly gradient: Tensor | null;
  /** Every captured activation / gradient when `{ all: true }` (oldest first). */
  readonly activations: Tensor[];
  readonly gradients: Tensor[];
  /** Frees what was captured so far (the hooks stay). */
  clear(): void;
  /** Removes the hooks and frees what was captured. */
  remove(): void;
}

/**
 * Captures a module's output and the gradient w.r.t. it (Grad-CAM, per-sample gradients, input
 * gradients): `const c = capture(model.features); ...forward + backward...; c.activation, c.gradient`.
 * Captured tensors are kept (not freed by `tidy`) until `clear()` / `remove()`; by default only
 * the latest of each is held, `{ all: true }` keeps every one.
 */
export function capture(module: Module, opts: { all?: boolean } = {}): Capture {
  const acts: Tensor[] = [];
  const grads: Tensor[] = [];
  const push = (list: Tensor[], t: Tensor) => {
    if (!opts.all) for (const old of list.splice(0)) old.dispose();
    list.push(keep(detach(t)));
  };
  const fh = module.registerForwardHook((_m, _i, out) => {
    if (out instanceof Tensor) push(acts, out);
  });
  const bh = module.registerBackwardHook((_m, dy) => push(grads, dy));
  const clear = () => {
    for (const t of acts.splice(0)) t.dispose();
    for (const t of grads.splice(0)) t.dispose();
  };
  return {
    get activation() { return acts.length ? acts[acts.length - 1] : null; },
    get gradient() { return grads.length ? grads[grads.length - 1] : null; },
    get activations() { return [...acts]; },
    get gradients() { return [...grads]; },
    clear,
    remove() {
      fh.remove();
      bh.remove();
      clear();
    },
  };
}
