/**
 * Property-style tests over seeded random shapes: matmul (transposes, batch broadcasting, 1-D
 * operands), reductions over random axis subsets, broadcasting binary ops — WebGPU vs CPU —
 * and determinism (same inputs twice → bit-identical results on each backend).
 */
import { describe, expect, it } from 'vitest';
import {
  type Backend,
  type Tensor,
  add, exp, grad, logSoftmax, logsumexp, matmul, max, maximum, mean, min, mul, softmax, sub, sum, tanh, variance, where, gt,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { type HostTensor, Rng, TOL, bitsEqual, compareBackends, fmt, rand, runOn, sizeOf } from './helpers/compare.js';

const TRIALS = 20;

/** A random batch shape of rank 0-2 and a second one that broadcasts against it. */
function batchPair(rng: Rng): [number[], number[]] {
  const rank = rng.int(0, 2);
  const base = Array.from({ length: rank }, () => rng.int(1, 3));
  const other = base.map((d) => (rng.bool(0.3) ? 1 : d));
  const drop = rng.int(0, other.length);
  const a = rng.bool() ? base : other.slice(drop);
  const b = a === base ? other.slice(drop) : base;
  return [a, b];
}

describe('matmul: random shapes, transposes and batch broadcasting (WebGPU vs CPU)', () => {
  it(`${TRIALS} random cases`, async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(2024);
    for (let t = 0; t < TRIALS; t++) {
      const M = rng.int(1, 70);
      const N = rng.int(1, 70);
      const K = rng.int(1, 90);
      const transposeA = rng.bool();
      const transposeB = rng.bool();
      const [ba, bb] = batchPair(rng);
      const vecA = ba.length === 0 && rng.bool(0.15);
      const vecB = bb.length === 0 && !vecA && rng.bool(0.15);
      const sa = vecA ? [K] : [...ba, ...(transposeA ? [K, M] : [M, K])];
      const sb = vecB ? [K] : [...bb, ...(transposeB ? [N, K] : [K, N])];
      const a = rand(rng, sa, 'float32', { lo: -1, hi: 1 });
      const b = rand(rng, sb, 'float32', { lo: -1, hi: 1 });
      const label = `matmul ${fmt(sa)}${transposeA ? 'ᵀ' : ''} @ ${fmt(sb)}${transposeB ? 'ᵀ' : ''}`;
      const { cpu: c } = await compareBackends(cpu, gpu, (x, y) => matmul(x, y, { transposeA, transposeB }), [a, b], TOL.matmul(K), label);
      const batch = ba.length || bb.length ? (ba.length >= bb.length ? ba : bb).map((_, i, arr) => {
        const da = ba[ba.length - arr.length + i] ?? 1;
        const db = bb[bb.length - arr.length + i] ?? 1;
        return Math.max(da, db);
      }) : [];
      expect(c.shape, label).toEqual([...batch, ...(vecA ? [] : [M]), ...(vecB ? [] : [N])]);
    }
  });

  it('degenerate shapes: K = 0 gives zeros, M or batch = 0 gives empty, 1×1 and long K', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(2026);
    const cases: [number[], number[], number][] = [[[3, 0], [0, 4], 0], [[0, 5], [5, 2], 5], [[2, 3, 0], [0, 2], 0], [[1, 1], [1, 1], 1], [[0, 3, 4], [4, 2], 4], [[1, 2000], [2000, 1], 2000]];
    for (const [sa, sb, K] of cases) {
      const { gpu: g } = await compareBackends(cpu, gpu, (x, y) => matmul(x, y), [rand(rng, sa, 'float32', { lo: -1, hi: 1 }), rand(rng, sb, 'float32', { lo: -1, hi: 1 })], TOL.matmul(K), `matmul ${fmt(sa)} @ ${fmt(sb)}`);
      if (K === 0) expect(Array.from(g.data).every((v) => v === 0), 'K = 0 → zeros').toBe(true);
    }
  });

  it('matmul gradients on WebGPU match the CPU for random shapes', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(2025);
    for (let t = 0; t < 6; t++) {
      const [M, N, K] = [rng.int(1, 20), rng.int(1, 20), rng.int(1, 20)];
      const [ba, bb] = batchPair(rng);
      const a = rand(rng, [...ba, M, K], 'float32', { lo: -1, hi: 1 });
      const b = rand(rng, [...bb, K, N], 'float32', { lo: -1, hi: 1 });
      const P = (x: Tensor, y: Tensor) => sum(mul(tanh(matmul(x, y)), 0.5));
      await compareBackends(cpu, gpu, (x, y) => grad((u: Tensor) => P(u, y))(x), [a, b], TOL.matmul(Math.max(M, N, K) * 4), `d/da ${fmt(a.shape)} @ ${fmt(b.shape)}`);
      await compareBackends(cpu, gpu, (x, y) => grad((u: Tensor) => P(x, u))(y), [a, b], TOL.matmul(Math.max(M, N, K) * 4), `d/db ${fmt(a.shape)} @ ${fmt(b.shape)}`);
    }
  });
});

const REDUCERS: [string, (x: Tensor, axes: number[], keep: boolean) => Tensor, 'sum' | 'exact' | 'composite'][] = [
  ['sum', (x, a, k) => sum(x, a, k), 'sum'],
  ['mean', (x, a, k) => mean(x, a, k), 'sum'],
  ['max', (x, a, k) => max(x, a, k), 'exact'],
  ['min', (x, a, k) => min(x, a, k), 'exact'],
  ['logsumexp', (x, a, k) => logsumexp(x, a, k), 'composite'],
  ['variance', (x, a, k) => variance(x, a, k, 1), 'composite'],
];

describe('reductions over random axis subsets (WebGPU vs CPU)', () => {
  it(`${TRIALS} random shapes × every reducer`, async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(77);
    for (let t = 0; t < TRIALS; t++) {
      const rank = rng.int(1, 4);
      const shape = Array.from({ length: rank }, () => (rng.bool(0.15) ? 1 : rng.int(2, rng.bool(0.2) ? 400 : 9)));
      // a random non-empty subset of axes, each written positive or negative at random
      let axes = shape.map((_, i) => i).filter(() => rng.bool());
      if (axes.length === 0) axes = [rng.int(0, rank - 1)];
      const written = axes.map((a) => (rng.bool() ? a - rank : a));
      const keepDims = rng.bool();
      const n = axes.reduce((p, a) => p * shape[a]!, 1);
      const x = rand(rng, shape);
      for (const [name, f, kind] of REDUCERS) {
        if (name === 'variance' && n === 1) continue; // correction 1 over one element: 0/0 by definition (both give NaN)
        const tol = kind === 'exact' ? TOL.select : kind === 'sum' ? TOL.reduction(n, 2) : TOL.compositeReduction(n, 2);
        const { cpu: c } = await compareBackends(cpu, gpu, (u) => f(u, written, keepDims), [x], tol, `${name} ${fmt(shape)} axes ${JSON.stringify(written)} keepDims ${keepDims}`);
        expect(sizeOf(c.shape)).toBe(sizeOf(shape) / n);
      }
      const axis = written[0]!;
      await compareBackends(cpu, gpu, (u) => softmax(u, axis), [x], TOL.compositeReduction(shape[axes[0]!]!), `softmax ${fmt(shape)} axis ${axis}`);
    }
  });
});

/** A random shape and a second one that broadcasts against it (dims dropped or set to 1). */
function broadcastPair(rng: Rng): [number[], number[]] {
  const rank = rng.int(0, 4);
  const a = Array.from({ length: rank }, () => rng.int(1, 6));
  const b = a.slice(rng.int(0, rank)).map((d) => (rng.bool(0.4) ? 1 : d));
  const withOnes = a.map((d) => (rng.bool(0.25) ? 1 : d));
  return rng.bool() ? [withOnes, b] : [b, withOnes];
}

describe('broadcasting binary ops over random shape pairs (WebGPU vs CPU)', () => {
  it(`${TRIALS} random pairs`, async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(99);
    for (let t = 0; t < TRIALS; t++) {
      const [sa, sb] = broadcastPair(rng);
      const a = rand(rng, sa);
      const b = rand(rng, sb);
      const label = `${fmt(sa)} with ${fmt(sb)}`;
      await compareBackends(cpu, gpu, (x, y) => add(mul(x, y), sub(x, y)), [a, b], TOL.arith, `x*y + (x−y) ${label}`);
      await compareBackends(cpu, gpu, (x, y) => where(gt(x, y), maximum(x, y), exp(y)), [a, b], TOL.transcendental, `where ${label}`);
    }
  });
});

describe('more than 65535 workgroups: the dispatch grid folds into y', () => {
  it('unary and per-row reduction over 4.2M elements', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rows = 65535 * 64 + 129; // one-thread-per-element/-output kernels need 65537 workgroups
    const data = new Array<number>(rows);
    for (let i = 0; i < rows; i++) data[i] = Math.fround(((i * 7919) % 2001) / 500 - 2);
    const x: HostTensor = { data, shape: [rows, 1], dtype: 'float32' };
    const { gpu: g } = await compareBackends(cpu, gpu, (t) => sum(tanh(t), 1), [x], TOL.transcendental, 'sum(tanh(x), 1) over 4.2M rows');
    expect(g.shape).toEqual([rows]);
  });
});

describe('determinism: same inputs twice give bit-identical results', () => {
  const rng = new Rng(5);
  const inputs: HostTensor[] = [rand(rng, [3, 5000]), rand(rng, [33, 47]), rand(rng, [47, 29])];
  const programs: [string, (a: Tensor, b: Tensor, c: Tensor) => Tensor][] = [
    ['sum of long rows', (a) => sum(a, 1)],
    ['max/argmax path', (a) => max(a, 0)],
    ['softmax', (a) => softmax(a, -1)],
    ['logsumexp all', (a) => logsumexp(a)],
    ['matmul', (_a, b, c) => matmul(b, c)],
    ['matmul gradient', (_a, b, c) => grad((u: Tensor) => sum(logSoftmax(matmul(u, c), -1)))(b)],
  ];
  const check = async (be: Backend) => {
    for (const [name, f] of programs) {
      const r1 = await runOn(be, f, inputs);
      const r2 = await runOn(be, f, inputs);
      expect(bitsEqual(r1.data, r2.data), `${name} on ${be.name}`).toBe(true);
    }
  };
  it('cpu', async () => {
    await check(cpu);
  });
  it('webgpu', async (ctx) => {
    await check(await requireWebGPU(ctx));
  });
});
