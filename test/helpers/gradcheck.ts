/**
 * Gradient checks against central finite differences, in float64 on the CPU reference backend.
 *
 * First order: for f(...xs) -> Tensor (any shape), the scalar L = Σ f(xs)·P with a seeded random
 * projection P (P = 1 for scalar f) is differentiated analytically with `grads` and numerically,
 * element by element, with (L(x + εe) − L(x − εe)) / 2ε.
 *
 * Second order: Hessian-vector products H·v computed by double backward,
 *   grad(x => Σ grad(L)(x) · v)(x),
 * against finite differences of the analytic gradient, (∇L(x + εv) − ∇L(x − εv)) / 2ε.
 *
 * Error budget with ε = 1e-6 in float64: truncation ≈ ε²·|f'''| ≈ 1e-12·|f'''|, roundoff
 * ≈ 1e-16·|L| / ε ≈ 1e-10·|L|. Defaults rtol 1e-6, atol 1e-7 leave margin for |f'''| up to ~1e5
 * and |L| up to ~1e3 while still catching any wrong derivative (those are off by O(1)).
 */
import { expect } from 'vitest';
import { type Tensor, cpuBackend, fromHost, grad, grads, mul, noGrad, sum, tidy } from '../../node.js';
import { type HostTensor, Rng, expectClose, fmt, sizeOf } from './compare.js';

export interface GradcheckOptions {
  /** Which inputs to differentiate (default: every float input). */
  argnums?: number[];
  eps?: number;
  rtol?: number;
  atol?: number;
  /** Seed of the random projection / direction. */
  seed?: number;
  label?: string;
}

const cpu = cpuBackend();

/** float inputs are promoted to float64 (the check's precision); int/bool inputs stay as given. */
function to64(h: HostTensor): HostTensor {
  return h.dtype === 'float32' ? { ...h, dtype: 'float64' } : h;
}

function upload(inputs: readonly HostTensor[]): Tensor[] {
  return inputs.map((h) => fromHost(h.data, h.shape, h.dtype, cpu));
}

function randomProjection(shape: readonly number[], seed: number): Tensor {
  const rng = new Rng(seed);
  const n = sizeOf(shape);
  const p = new Array<number>(n);
  for (let i = 0; i < n; i++) p[i] = rng.uniform(0.5, 1.5) * (rng.bool() ? 1 : -1);
  return fromHost(p, shape, 'float64', cpu);
}

/** Builds L(...xs) = Σ f(xs)·P (P fixed for the whole check). Returns L and a disposer for P. */
function scalarize(f: (...xs: Tensor[]) => Tensor, inputs: readonly HostTensor[], seed: number) {
  const outShape = tidy(() => noGrad(() => [...f(...upload(inputs)).shape]));
  if (outShape.length === 0) return { L: f, dispose: () => {}, outShape };
  const P = randomProjection(outShape, seed);
  P.kept = true;
  return { L: (...xs: Tensor[]) => sum(mul(f(...xs), P)), dispose: () => P.dispose(), outShape };
}

async function evalScalar(L: (...xs: Tensor[]) => Tensor, inputs: readonly HostTensor[]): Promise<number> {
  const out = tidy(() => noGrad(() => L(...upload(inputs))));
  try {
    const v = await out.data();
    if (v.length !== 1) throw new Error(`gradcheck: expected a scalar, got ${v.length} values`);
    return v[0]!;
  } finally {
    out.dispose();
  }
}

/** Analytic gradients of L at `inputs` w.r.t. `argnums`, as host arrays. */
async function analyticGrads(L: (...xs: Tensor[]) => Tensor, inputs: readonly HostTensor[], argnums: number[]): Promise<Float64Array[]> {
  const gs = tidy(() => grads(L, argnums)(...upload(inputs)));
  const out: Float64Array[] = [];
  for (const [k, g] of gs.entries()) {
    const h = inputs[argnums[k]!]!;
    expect(g.shape, `gradient ${k} shape`).toEqual(h.shape);
    expect(g.dtype, `gradient ${k} dtype`).toBe('float64');
    out.push(Float64Array.from(await g.data()));
  }
  for (const g of new Set(gs)) g.dispose();
  return out;
}

/**
 * Checks every partial derivative of f at `inputs` against central differences (float64, CPU).
 * Returns the analytic gradients (float64) for further assertions.
 */
export async function gradcheck(f: (...xs: Tensor[]) => Tensor, inputs: readonly HostTensor[], opts: GradcheckOptions = {}): Promise<Float64Array[]> {
  const xs = inputs.map(to64);
  const argnums = opts.argnums ?? xs.flatMap((h, i) => (h.dtype === 'float64' ? [i] : []));
  const eps = opts.eps ?? 1e-6;
  const tol = { rtol: opts.rtol ?? 1e-6, atol: opts.atol ?? 1e-7, why: `central differences, eps ${eps}, float64` };
  const { L, dispose, outShape } = scalarize(f, xs, opts.seed ?? 1234);
  try {
    const analytic = await analyticGrads(L, xs, argnums);
    for (const [k, i] of argnums.entries()) {
      const h = xs[i]!;
      const fd = new Float64Array(h.data.length);
      for (let j = 0; j < h.data.length; j++) {
        const at = (delta: number) => xs.map((x, m) => (m === i ? { ...x, data: x.data.map((v, q) => (q === j ? v + delta : v)) } : x));
        const fp = await evalScalar(L, at(eps));
        const fm = await evalScalar(L, at(-eps));
        fd[j] = (fp - fm) / (2 * eps);
      }
      expectClose(analytic[k]!, fd, tol, `${opts.label ?? 'gradcheck'}: d/d(input ${i} ${fmt(h.shape)}) of output ${fmt(outShape)}`);
    }
    return analytic;
  } finally {
    dispose();
  }
}

export interface HvpOptions extends Omit<GradcheckOptions, 'argnums'> {
  /** The input the Hessian is taken with respect to (default 0); the others are held fixed. */
  argnum?: number;
  /** Number of random directions v (default 2). */
  directions?: number;
}

/**
 * Checks Hessian-vector products of L = Σ f·P with respect to input `argnum`: double backward
 * (`grad(x => Σ grad(L)(x)·v)`) against central differences of the analytic gradient along v.
 */
export async function hvpcheck(f: (...xs: Tensor[]) => Tensor, inputs: readonly HostTensor[], opts: HvpOptions = {}): Promise<void> {
  const xs = inputs.map(to64);
  const a = opts.argnum ?? 0;
  const eps = opts.eps ?? 1e-6;
  const tol = { rtol: opts.rtol ?? 1e-6, atol: opts.atol ?? 1e-7, why: `central differences of the gradient, eps ${eps}, float64` };
  const { L, dispose } = scalarize(f, xs, opts.seed ?? 4321);
  const rng = new Rng((opts.seed ?? 4321) + 1);
  const withArg = (t: Tensor, all: Tensor[]) => all.map((x, m) => (m === a ? t : x));
  // ∇_a L as a function of input a alone (the others fixed).
  const gradL = (x: Tensor, rest: Tensor[]) => grad((t: Tensor) => L(...withArg(t, rest)))(x);
  try {
    for (let d = 0; d < (opts.directions ?? 2); d++) {
      const v = xs[a]!.data.map(() => rng.uniform(-1, 1));
      const hv = tidy(() => {
        const all = upload(xs);
        const V = fromHost(v, xs[a]!.shape, 'float64', cpu);
        return grad((t: Tensor) => sum(mul(gradL(t, all), V)))(all[a]!);
      });
      expect(hv.shape).toEqual(xs[a]!.shape);
      const analytic = Float64Array.from(await hv.data());
      hv.dispose();
      const shifted = async (s: number) => {
        const moved = xs.map((x, m) => (m === a ? { ...x, data: x.data.map((u, q) => u + s * v[q]!) } : x));
        const g = tidy(() => {
          const all = upload(moved);
          return gradL(all[a]!, all);
        });
        const r = Float64Array.from(await g.data());
        g.dispose();
        return r;
      };
      const gp = await shifted(eps);
      const gm = await shifted(-eps);
      const fd = gp.map((p, q) => (p - gm[q]!) / (2 * eps));
      expectClose(analytic, fd, tol, `${opts.label ?? 'hvpcheck'}: H·v (direction ${d}) w.r.t. input ${a} ${fmt(xs[a]!.shape)}`);
    }
  } finally {
    dispose();
  }
}

/**
 * d²f/dx² of a scalar→scalar function at x0 by `grad(grad(f))` against central differences of
 * `grad(f)`. Returns the analytic value.
 */
export async function secondDerivativeCheck(f: (x: Tensor) => Tensor, x0: number, opts: Omit<GradcheckOptions, 'argnums' | 'seed'> = {}): Promise<number> {
  const eps = opts.eps ?? 1e-6;
  const at = async (g: (x: Tensor) => Tensor, x: number) => {
    const t = tidy(() => g(fromHost([x], [], 'float64', cpu)));
    expect(t.shape).toEqual([]);
    const v = (await t.data())[0]!;
    t.dispose();
    return v;
  };
  const d2 = await at(grad(grad(f)), x0);
  const fd = ((await at(grad(f), x0 + eps)) - (await at(grad(f), x0 - eps))) / (2 * eps);
  const tol = { rtol: opts.rtol ?? 1e-6, atol: opts.atol ?? 1e-7, why: `central differences of grad(f), eps ${eps}, float64` };
  expectClose([d2], [fd], tol, `${opts.label ?? 'grad(grad(f))'} at x=${x0}`);
  return d2;
}
