/**
 * Helpers shared by the shape-op and pooling tests: seeded inputs, a WebGPU-vs-CPU runner and a
 * float64 finite-difference gradient check (first order, or a Hessian-vector product with `order2`).
 */
import { expect } from 'vitest';
import { type Backend, type DType, type Tensor, grad, grads, noGrad, setBackend, tensor, tidy } from '../../node.js';
import { cpu } from './backends.js';

// ---- helpers ----
export function rand(n: number, seed: number, lo = -1, hi = 1): number[] {
  let s = seed >>> 0 || 1;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(lo + ((s >>> 8) / 2 ** 24) * (hi - lo));
  }
  return out;
}
export const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

export interface In {
  v: ArrayLike<number>;
  shape: number[];
  dtype?: DType;
}
export const inp = (shape: number[], seed = 1, dtype: DType = 'float32'): In => ({
  v: dtype === 'float32' ? rand(size(shape), seed) : rand(size(shape), seed, 0, 50).map(Math.floor),
  shape,
  dtype,
});
export const ints = (v: number[], shape = [v.length]): In => ({ v, shape, dtype: 'int32' });

/** Runs `f` on both backends and checks WebGPU against the CPU reference. */
export async function both(gpu: Backend, f: (...xs: Tensor[]) => Tensor, ins: In[], tol = 0): Promise<Float32Array | Int32Array | Uint8Array> {
  const run = async (be: Backend) =>
    tidy(() => f(...ins.map((i) => tensor(Array.from(i.v), i.shape, { dtype: i.dtype ?? 'float32', backend: be })))).data().then((d) => d);
  const rc = await run(cpu);
  const shapeC = tidy(() => f(...ins.map((i) => tensor(Array.from(i.v), i.shape, { dtype: i.dtype ?? 'float32', backend: cpu })))).shape;
  const g = tidy(() => f(...ins.map((i) => tensor(Array.from(i.v), i.shape, { dtype: i.dtype ?? 'float32', backend: gpu }))));
  expect(g.shape).toEqual(shapeC);
  const rg = await g.data();
  g.dispose();
  expect(rg.length).toBe(rc.length);
  for (let i = 0; i < rc.length; i++) {
    if (Math.abs(rg[i] - rc[i]) > tol) expect.fail(`element ${i}: webgpu ${rg[i]} vs cpu ${rc[i]}`);
  }
  return rc as Float32Array;
}

/**
 * Checks d/dx_k of sum(w · f(xs)) (random w) against central differences in float64 on the CPU,
 * for every float input. With `order2`, checks the gradient of sum(v · ∂/∂x0) instead, i.e. a
 * Hessian-vector product through the backward ops.
 */
export async function gradcheck(f: (...xs: Tensor[]) => Tensor, ins: In[], order2 = false, eps = 1e-6, tol = 1e-6): Promise<void> {
  setBackend(cpu);
  const mk = (vals: ArrayLike<number>[]) => ins.map((i, k) => tensor(Array.from(vals[k]), i.shape, { dtype: i.dtype === 'int32' ? 'int32' : 'float64', backend: cpu }));
  const base = ins.map((i) => Array.from(i.v));
  const outShape = tidy(() => f(...mk(base))).shape;
  const w = tensor(rand(size(outShape), 99), outShape, { dtype: 'float64', backend: cpu });
  const fl = ins.map((i, k) => (i.dtype === 'int32' ? -1 : k)).filter((k) => k >= 0);
  let scalarF = (...xs: Tensor[]) => f(...xs).mul(w).sum();
  if (order2) {
    const inner = scalarF;
    const v = tensor(rand(size(ins[0].shape), 77), ins[0].shape, { dtype: 'float64', backend: cpu });
    scalarF = (...xs: Tensor[]) => grad((x0: Tensor) => inner(x0, ...xs.slice(1)))(xs[0]).mul(v).sum();
  }
  const targets = order2 ? [0] : fl;
  const analytic = await Promise.all(tidy(() => grads(scalarF, targets)(...mk(base))).map((t) => t.data()));
  for (let a = 0; a < targets.length; a++) {
    const k = targets[a];
    for (let j = 0; j < base[k].length; j++) {
      const at = (d: number) => {
        const vals = base.map((b) => [...b]);
        vals[k][j] += d;
        return noGrad(() => tidy(() => scalarF(...mk(vals))));
      };
      const num = ((await at(eps).item()) - (await at(-eps).item())) / (2 * eps);
      const an = analytic[a][j];
      if (!(Math.abs(an - num) <= tol * (1 + Math.abs(num)))) expect.fail(`input ${k}, element ${j}: analytic ${an} vs numeric ${num}`);
    }
  }
  w.dispose();
}
