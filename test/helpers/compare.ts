/**
 * Cross-backend comparison: run the same op on the CPU reference and on WebGPU from the same
 * host inputs and compare the results under per-dtype tolerances (the table below, with reasons).
 * NaN and ±Infinity must appear at the same positions (with the same sign for infinities).
 */
import { expect } from 'vitest';
import { type Backend, type DType, type Tensor, type TypedArray, fromHost, tidy } from '../../node.js';

// ------------------------------------------------------------------------------------ PRNG
/** A tiny seeded PRNG (mulberry32): same seed, same stream, on every machine. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  /** Integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
}

// ------------------------------------------------------------------------------ host inputs
/** Input data that lives on the host; materialised on each backend by `runOn`. */
export interface HostTensor {
  data: number[];
  shape: number[];
  dtype: DType;
}

export const sizeOf = (shape: readonly number[]): number => shape.reduce((p, d) => p * d, 1);

export interface RandOptions {
  lo?: number;
  hi?: number;
  /** Values for which this returns true are redrawn (e.g. keep relu inputs away from its kink). */
  avoid?: (v: number) => boolean;
}

/**
 * Seeded random data of `shape`. float: uniform in [lo, hi) (default [−2, 2)), rounded to the
 * dtype so both backends see bit-identical inputs; int32: integers in [lo, hi] (default
 * [−10, 10]); bool: fair coin.
 */
export function rand(rng: Rng, shape: readonly number[], dtype: DType = 'float32', opts: RandOptions = {}): HostTensor {
  const n = sizeOf(shape);
  const data = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let v: number;
    let tries = 0;
    do {
      if (dtype === 'bool') v = rng.bool() ? 1 : 0;
      else if (dtype === 'int32') v = rng.int(opts.lo ?? -10, opts.hi ?? 10);
      else {
        v = rng.uniform(opts.lo ?? -2, opts.hi ?? 2);
        if (dtype === 'float32') v = Math.fround(v);
      }
      if (++tries > 1000) throw new Error('rand: `avoid` rejects every value');
    } while (opts.avoid?.(v));
    data[i] = v;
  }
  return { data, shape: [...shape], dtype };
}

/** `n` seeded floats, uniform in [lo, hi) (default [−1, 1)), rounded to float32: plain numbers for hand-built inputs. */
export function values(n: number, seed: number, lo = -1, hi = 1): number[] {
  return rand(new Rng(seed), [n], 'float32', { lo, hi }).data;
}

/**
 * Seeded input of `shape`, the small default of the shape-op and pooling tests: float32 uniform in
 * [−1, 1), or for int32 integers in [0, 49] (valid indices for the usual small dims).
 */
export function seeded(shape: readonly number[], seed = 1, dtype: DType = 'float32'): HostTensor {
  return dtype === 'int32' ? rand(new Rng(seed), shape, 'int32', { lo: 0, hi: 49 }) : rand(new Rng(seed), shape, dtype, { lo: -1, hi: 1 });
}

/** Explicit int32 host values (shape defaults to 1-D); values are truncated toward zero. */
export function ints(data: readonly number[], shape: readonly number[] = [data.length]): HostTensor {
  return host(data.map(Math.trunc), shape, 'int32');
}

/** Explicit host values. */
export function host(data: readonly number[], shape: readonly number[], dtype: DType = 'float32'): HostTensor {
  if (data.length !== sizeOf(shape)) throw new Error(`host: ${data.length} values for shape [${shape}]`);
  return { data: [...data], shape: [...shape], dtype };
}

// ------------------------------------------------------------------------------ tolerances
export interface Tol {
  rtol: number;
  atol: number;
  /** Why this tolerance (shown in failure messages). */
  why: string;
}

const EPS32 = 2 ** -23; // 1.19e-7: float32 unit roundoff ×2 (one ULP at 1)

/**
 * The one table of tolerances used by the cross-backend tests. The CPU reference computes in
 * JS doubles and rounds once to float32, so it is (nearly) the correctly rounded result; the
 * bounds below are the error WebGPU is allowed on top of that.
 */
export const TOL = {
  /** int32 and bool results: integer arithmetic and comparisons are exact on both backends. */
  exact: { rtol: 0, atol: 0, why: 'int/bool results are exact' },
  /** max/min/sign/where: the result is one of the inputs (or −1/0/1), no rounding at all. */
  select: { rtol: 0, atol: 0, why: 'selects an input element: bit-exact' },
  /**
   * float32 add/sub/mul/neg/abs/min/max/where/cast/square: IEEE-correctly rounded on GPU, the CPU
   * rounds an (almost always exact) double result once, so ≤ 1 ULP apart from rare double rounding;
   * atol 1e-37 admits subnormals that a GPU may flush to zero.
   */
  arith: { rtol: 2 * EPS32, atol: 1e-37, why: 'correctly rounded f32 arithmetic: ≤ 1-2 ULP, subnormals may flush' },
  /** div/reciprocal/sqrt/rsqrt: WGSL allows 2.5 ULP (x/y) and 2 ULP (inverseSqrt). */
  divSqrt: { rtol: 4 * EPS32, atol: 1e-37, why: 'WGSL x/y is 2.5 ULP, inverseSqrt 2 ULP' },
  /**
   * exp/log/pow/tanh/sigmoid/softplus/log1p on inputs of modest size (|x| ≲ 5): WGSL exp and log
   * are "3 + 2|x| ULP" / absolute 2^-21 near 1, compositions add a few more.
   */
  transcendental: { rtol: 1e-5, atol: 1e-6, why: 'WGSL exp/log/pow are a few ULP (log: abs 2^-21 near 1); composed ops add a few more' },
  /**
   * lgamma/digamma/erf/gelu: f32 series/rational approximations in special.wgsl with relative
   * error ~1e-6 (documented < 1e-5), absolute near their zeros (lgamma at 1, 2; digamma at 1.46).
   */
  special: { rtol: 2e-5, atol: 2e-6, why: 'f32 series approximations (special.wgsl) are ~1e-6 relative, absolute near zeros' },
  /**
   * Sums of n float32 terms of magnitude ≲ m accumulated in f32 (GPU) vs double (CPU): rounding
   * errors of the partial sums behave like a random walk, so error ≈ eps·√n·(typical partial sum
   * ≈ m·√n); we allow 8·eps·√n relative plus 8·eps·√n·(m·√n) absolute (for sums that cancel).
   */
  reduction(n: number, magnitude = 1): Tol {
    const r = 8 * EPS32 * Math.sqrt(Math.max(n, 1));
    return { rtol: r, atol: r * magnitude * Math.sqrt(Math.max(n, 1)), why: `f32 accumulation of n=${n} terms: error grows ~ eps·√n` };
  },
  /**
   * Composite reductions (mean, variance, logsumexp, softmax, logSoftmax): a reduction plus
   * transcendental elementwise steps; the worse of the two bounds applies.
   */
  compositeReduction(n: number, magnitude = 1): Tol {
    const r = TOL.reduction(n, magnitude);
    return { rtol: Math.max(r.rtol, 1e-5), atol: Math.max(r.atol, 1e-6), why: `reduction over n=${n} composed with exp/log (few ULP each)` };
  },
  /**
   * matmul with inner dim K and entries ≲ 1: each output is a K-term dot product, tiled kernels
   * sum in a different order from the CPU's double accumulation (same √K random-walk argument).
   */
  matmul(k: number): Tol {
    const r = 8 * EPS32 * Math.sqrt(Math.max(k, 1));
    return { rtol: r, atol: r * Math.sqrt(Math.max(k, 1)), why: `f32 dot products over K=${k}: error ~ eps·√K` };
  },
} as const;

/** An absolute float tolerance (rtol 0), e.g. for float atomics whose summation order varies. */
export function absTol(atol: number, why = `absolute ${atol}`): Tol {
  return { rtol: 0, atol, why };
}

/** The tolerance for `dtype`: exact for int32/bool, `floatTol` for floats. */
export function tolFor(dtype: DType, floatTol: Tol): Tol {
  return dtype === 'float32' || dtype === 'float64' ? floatTol : TOL.exact;
}

// ------------------------------------------------------------------------------ comparison
export interface Mismatch {
  index: number;
  got: number;
  want: number;
  reason: string;
}

/** Finds the first positional mismatch (NaN/inf placement, or |got − want| > atol + rtol·|want|). */
export function findMismatch(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tol): Mismatch | null {
  if (got.length !== want.length) return { index: -1, got: got.length, want: want.length, reason: 'length differs' };
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (Number.isNaN(w) || Number.isNaN(g)) {
      if (Number.isNaN(w) !== Number.isNaN(g)) return { index: i, got: g, want: w, reason: 'NaN position differs' };
      continue;
    }
    if (!Number.isFinite(w) || !Number.isFinite(g)) {
      if (g !== w) return { index: i, got: g, want: w, reason: 'infinity position/sign differs' };
      continue;
    }
    if (!(Math.abs(g - w) <= tol.atol + tol.rtol * Math.abs(w))) {
      return { index: i, got: g, want: w, reason: `|diff| ${Math.abs(g - w).toExponential(3)} > atol ${tol.atol} + rtol ${tol.rtol}·|want|` };
    }
  }
  return null;
}

/** Largest |got − want| / (atol + rtol·|want|) over finite positions (1 = at the tolerance). */
export function worstRatio(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tol): number {
  let w = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const v = want[i]!;
    if (!Number.isFinite(g) || !Number.isFinite(v)) continue;
    const denom = tol.atol + tol.rtol * Math.abs(v);
    const r = denom === 0 ? (g === v ? 0 : Infinity) : Math.abs(g - v) / denom;
    if (r > w) w = r;
  }
  return w;
}

/** Asserts positional closeness; the message names the first offending index and the tolerance's reason. */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tol, label = ''): void {
  const m = findMismatch(got, want, tol);
  if (m) {
    expect.fail(`${label}: element ${m.index}: got ${m.got}, want ${m.want} (${m.reason}; tolerance: ${tol.why})`);
  }
}

export interface Result {
  data: TypedArray;
  shape: number[];
  dtype: DType;
}

/** Uploads `inputs` to `backend`, runs `fn`, reads the result back and frees everything. */
export async function runOn(backend: Backend, fn: (...xs: Tensor[]) => Tensor, inputs: readonly HostTensor[]): Promise<Result> {
  const out = tidy(() => {
    const xs = inputs.map((h) => fromHost(h.data, h.shape, h.dtype, backend));
    return fn(...xs);
  });
  try {
    return { data: await out.data(), shape: [...out.shape], dtype: out.dtype };
  } finally {
    out.dispose();
  }
}

/**
 * Runs `fn` on the CPU reference and on WebGPU with the same host inputs and asserts equal
 * shape, dtype and values (under `floatTol` for float results, exactly for int/bool). Returns
 * both results for extra checks.
 */
export async function compareBackends(
  cpu: Backend,
  gpu: Backend,
  fn: (...xs: Tensor[]) => Tensor,
  inputs: readonly HostTensor[],
  floatTol: Tol,
  label = '',
): Promise<{ cpu: Result; gpu: Result }> {
  const c = await runOn(cpu, fn, inputs);
  const g = await runOn(gpu, fn, inputs);
  expect(g.shape, `${label}: shape`).toEqual(c.shape);
  expect(g.dtype, `${label}: dtype`).toBe(c.dtype);
  expectClose(g.data, c.data, tolFor(c.dtype, floatTol), `${label} (webgpu vs cpu)`);
  return { cpu: c, gpu: g };
}

/** Byte-level equality of two typed arrays (NaN payloads included). */
export function bitsEqual(a: TypedArray, b: TypedArray): boolean {
  if (a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

export const fmt = (shape: readonly number[]): string => `[${shape.join(',')}]`;
