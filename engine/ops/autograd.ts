import { isFloat } from '../dtype.js';
import { ArgumentError, DTypeError, DubitoError, ShapeError, fmtShape } from '../errors.js';
import { defineOp } from '../op.js';
import { isRecording, noGrad, withGrad } from '../runtime.js';
import { Tensor, runOp } from '../tensor.js';
import { tidy, keep, leaveScope, openScope } from '../memory.js';
import { add } from './binary.js';
import { onesLike, zerosLike } from './creation.js';

const DETACH = defineOp<object>({
  name: 'detach',
  view: true,
  notDifferentiable: true, // cuts the graph on purpose
  infer: ([x]) => ({ shape: [...x.shape], dtype: x.dtype }),
  cpu: ([x]) => x.data,
  webgpu() {},
});

/** A view sharing `x`'s storage, cut from the autodiff graph. */
export function detach(x: Tensor): Tensor {
  return runOp(DETACH, [x], {});
}

const ALIAS = defineOp<object>({
  name: 'identity',
  view: true,
  infer: ([x]) => ({ shape: [...x.shape], dtype: x.dtype }),
  cpu: ([x]) => x.data,
  webgpu() {},
  grad: (dy) => [dy],
});

/**
 * Runs `fn` (which builds one result from several ops) so that its intermediates do not leak:
 * if the result records a graph they are owned by it (freed with it), otherwise freed at once.
 */
export function composite<T extends Tensor>(fn: () => T): T {
  const scope = openScope();
  let r: T;
  try {
    r = fn();
  } catch (e) {
    leaveScope(scope);
    scope.open = false;
    for (const t of [...scope.tensors]) if (!t.kept) t.dispose();
    throw e;
  }
  leaveScope(scope);
  scope.open = false;
  const created = r.scope === scope;
  const temps: Tensor[] = [];
  for (const t of scope.tensors) {
    t.scope = null;
    if (t !== r && !t.isDisposed && !t.kept) temps.push(t);
  }
  scope.tensors.clear();
  if (temps.length) {
    if (r.node) (r.owned ??= []).push(...temps);
    else for (const t of temps) t.dispose();
  }
  const parent = scope.parent;
  if (parent && parent.open && created && !r.isDisposed) {
    parent.tensors.add(r);
    r.scope = parent;
  }
  return r;
}

/** A view of `x` (same storage, its own lifetime) that passes gradients through unchanged. */
export function alias(x: Tensor): Tensor {
  return runOp(ALIAS, [x], {});
}

/** Throws a DTypeError naming `op` if some tensor in `xs` is not floating point (not differentiable). */
function checkDifferentiable(op: string, xs: readonly Tensor[], what: (i: number) => string): void {
  xs.forEach((x, i) => {
    if (!isFloat(x.dtype)) {
      throw new DTypeError(`${op}: cannot differentiate with respect to ${what(i)}, a ${x.dtype} tensor ${fmtShape(x.shape)} (only float32/float64 inputs are differentiable; cast it, or leave it out of argnums)`);
    }
  });
}

/** Tensors reachable from `y` through recorded nodes, in topological order (inputs first). */
function topoOrder(y: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[y, 0]];
  seen.add(y);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node ? t.node.inputs : [];
    if (i < inputs.length) {
      top[1]++;
      const u = inputs[i];
      if (u.requiresGrad && !seen.has(u)) {
        seen.add(u);
        stack.push([u, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order;
}

/**
 * Reverse-mode sweep: d(y·dy)/d(xs). Returns one gradient per x (zeros when y does not depend
 * on it). With `createGraph` the backward ops are recorded, so the returned gradients can be
 * differentiated again (Hessian-vector products, GradCON); their intermediates then belong to
 * the enclosing `tidy` scope. Without it, every intermediate is freed before returning.
 */
export function gradients(y: Tensor, xs: readonly Tensor[], dy?: Tensor, createGraph = false, caller = 'gradients'): Tensor[] {
  y.storageFor(caller);
  if (!dy && y.size !== 1) {
    throw new ShapeError(`${caller}: the output must be a scalar (got ${fmtShape(y.shape)}); pass dy for non-scalar outputs`);
  }
  if (dy && (dy.size !== y.size)) throw new ShapeError(`${caller}: dy ${fmtShape(dy.shape)} does not match the output ${fmtShape(y.shape)}`);
  if (caller === 'gradients') checkDifferentiable('gradients', xs, (i) => `xs[${i}]`);
  const order = topoOrder(y);
  const targets = new Set(xs);
  // Only propagate into tensors that lead to a target.
  const leads = new Set<Tensor>();
  for (const t of order) {
    if (targets.has(t) || (t.node && t.node.inputs.some((u) => leads.has(u)))) leads.add(t);
  }
  const sweep = () => {
    const grads = new Map<Tensor, Tensor>();
    if (leads.has(y)) grads.set(y, dy ?? onesLike(y));
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k];
      const g = grads.get(t);
      if (!g || !t.node || !leads.has(t)) continue;
      const node = t.node;
      const rule = () => node.op.grad!(g, node.inputs, t, node.attrs);
      let gs: (Tensor | null)[];
      try {
        gs = createGraph ? rule() : tidy(rule);
      } catch (e) {
        // Name what the user called (backward / grad) and whose gradient failed, not an inner op.
        if (e instanceof DubitoError && !e.message.startsWith(`${caller}:`)) {
          e.message = `${caller}: in the gradient of '${node.op.name}' (output #${t.id} ${fmtShape(t.shape)}): ${e.message}`;
        }
        throw e;
      }
      node.inputs.forEach((u, i) => {
        const gi = gs[i];
        if (!gi || !leads.has(u)) return;
        const prev = grads.get(u);
        grads.set(u, prev ? add(prev, gi) : gi);
      });
      if (!targets.has(t)) grads.delete(t);
    }
    // Several inputs can receive the very same tensor (e.g. both operands of `a + b`, or `dy`
    // itself): hand out views for repeats so each returned gradient can be disposed on its own.
    const handedOut = new Set<Tensor>();
    return xs.map((x) => {
      const g = grads.get(x) ?? zerosLike(x);
      if (handedOut.has(g) || g === dy) return runOp(ALIAS, [g], {});
      handedOut.add(g);
      return g;
    });
  };
  if (createGraph) return withGrad(sweep);
  return tidy(() => noGrad(sweep));
}

/**
 * Backpropagates from `y` (a scalar unless `dy` is given) and accumulates into `.grad` of every
 * leaf that requires grad. `.grad` tensors are exempt from `tidy` and freed with their leaf.
 */
export function backwardFrom(y: Tensor, dy?: Tensor, opts: { createGraph?: boolean } = {}): void {
  y.storageFor('backward');
  const leaves = topoOrder(y).filter((t) => t.requiresGrad && !t.node);
  if (!y.requiresGrad) throw new ArgumentError(`backward: the tensor ${fmtShape(y.shape)} does not require grad (no input of it has requiresGrad)`);
  const gs = gradients(y, leaves, dy, opts.createGraph ?? false, 'backward');
  leaves.forEach((leaf, i) => {
    const g = gs[i];
    if (leaf.grad) {
      const sum = add(leaf.grad, g);
      leaf.grad.dispose();
      g.dispose();
      leaf.grad = keep(sum);
    } else leaf.grad = keep(g);
  });
}

/** Prepares an argument to differentiate against: connected to outer graphs when nested. */
function markInput(x: Tensor): Tensor {
  if (x.requiresGrad && isRecording()) return runOp(ALIAS, [x], {});
  const v = detach(x);
  v.requiresGrad = true;
  return v;
}

export interface GradOptions {
  /** Which arguments to differentiate against (default [0]). */
  argnums?: number[];
  /** Record the backward pass so the gradient is itself differentiable (default: only when nested inside another grad). */
  createGraph?: boolean;
}

/**
 * `valueAndGrad(f)(...args)` returns `{ value, grads }`: f's scalar value and its gradients with
 * respect to the arguments in `argnums`. Nested use (`grad(grad(f))`) records the inner backward
 * so the outer one can differentiate it.
 */
export function valueAndGrad(f: (...args: Tensor[]) => Tensor, opts: GradOptions = {}) {
  const argnums = opts.argnums ?? [0];
  return (...args: Tensor[]): { value: Tensor; grads: Tensor[] } => {
    for (const i of argnums) {
      if (!(args[i] instanceof Tensor)) throw new ArgumentError(`grad: argument ${i} must be a Tensor`);
    }
    checkDifferentiable('grad', argnums.map((i) => args[i]), (k) => `argument ${argnums[k]}`);
    const nested = argnums.some((i) => args[i].requiresGrad) && isRecording();
    const createGraph = opts.createGraph ?? nested;
    const run = () =>
      withGrad(() => {
        const marked = args.map((a, i) => (argnums.includes(i) ? markInput(a) : a));
        const value = f(...marked);
        if (!(value instanceof Tensor)) throw new ArgumentError('grad: the function must return a Tensor');
        if (value.size !== 1) throw new ShapeError(`grad: the function must return a scalar, got ${fmtShape(value.shape)}`);
        const grads = gradients(value, argnums.map((i) => marked[i]), undefined, createGraph, 'grad');
        return { value: createGraph ? value : detach(value), grads };
      });
    return createGraph ? run() : tidy(run);
  };
}

/** `grad(f)(x)`: the gradient of scalar f at x (w.r.t. the first argument). */
export function grad(f: (...args: Tensor[]) => Tensor, opts: Omit<GradOptions, 'argnums'> = {}): (...args: Tensor[]) => Tensor {
  const vg = valueAndGrad(f, { ...opts, argnums: [0] });
  return (...args) => {
    const { value, grads } = vg(...args);
    if (!value.node) value.dispose();
    return grads[0];
  };
}

/** Gradients w.r.t. several arguments: `grads(f, [0, 1])(a, b)` → [∂f/∂a, ∂f/∂b]. */
export function grads(f: (...args: Tensor[]) => Tensor, argnums: number[], opts: Omit<GradOptions, 'argnums'> = {}): (...args: Tensor[]) => Tensor[] {
  const vg = valueAndGrad(f, { ...opts, argnums });
  return (...args) => {
    const r = vg(...args);
    if (!r.value.node) r.value.dispose();
    return r.grads;
  };
}

export { noGrad };
