/**
 * Reductions (sum, mean, max, min, argmax, argmin, logsumexp, variance, softmax, logSoftmax):
 * WebGPU vs CPU over single/several/all/negative axes, keepDims, size-1 and zero-size dims,
 * long rows (the one-workgroup-per-row path) and many short rows (one-thread-per-row path),
 * ties, NaN, huge logits; gradients against float64 central differences on the CPU.
 */
import { describe, expect, it } from 'vitest';
import {
  type DType,
  type Tensor,
  ShapeError,
  argmax, argmin, fromHost, grad, logSoftmax, logsumexp, max, mean, min, softmax, sum, variance,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { type HostTensor, type Tol, Rng, TOL, compareBackends, fmt, host, rand, runOn, sizeOf } from './helpers/compare.js';
import { gradcheck } from './helpers/gradcheck.js';

type Axes = number | number[] | undefined;

interface RedCase {
  shape: number[];
  axes: Axes;
}

/** Number of elements reduced into each output. */
function reducedCount(shape: readonly number[], axes: Axes): number {
  if (axes === undefined) return sizeOf(shape);
  const list = (typeof axes === 'number' ? [axes] : axes).map((a) => (a < 0 ? a + shape.length : a));
  return list.reduce((p, a) => p * shape[a]!, 1);
}

const CASES: RedCase[] = [
  { shape: [2, 3, 4], axes: undefined },
  { shape: [2, 3, 4], axes: 0 },
  { shape: [2, 3, 4], axes: 1 },
  { shape: [2, 3, 4], axes: -1 },
  { shape: [2, 3, 4], axes: -3 },
  { shape: [2, 3, 4], axes: [0, 2] },
  { shape: [2, 3, 4], axes: [-1, -2] },
  { shape: [2, 3, 4], axes: [0, 1, 2] },
  { shape: [2, 3, 4], axes: [] },
  { shape: [], axes: undefined },
  { shape: [7], axes: 0 },
  { shape: [1, 5, 1], axes: [0, 2] },
  { shape: [1, 5, 1], axes: 1 },
  { shape: [3, 1, 4], axes: 1 },
  { shape: [2, 3, 1, 5], axes: [1, 3] },
  { shape: [3, 5000], axes: -1 }, // long rows: one workgroup per output
  { shape: [700, 3], axes: 0 }, // long strided columns: workgroup path
  { shape: [4100, 3], axes: 1 }, // many short rows: one thread per output
  { shape: [5000, 4], axes: 1 },
  { shape: [40, 300], axes: [0, 1] },
  { shape: [2, 300, 3], axes: [0, 2] },
];

const fmtAxes = (a: Axes) => (a === undefined ? 'all' : JSON.stringify(a));

interface RedOp {
  name: string;
  f: (x: Tensor, axes: Axes, keepDims: boolean) => Tensor;
  tol: (n: number) => Tol;
  /** Rejects zero-size reduced axes with a ShapeError. */
  needsNonEmpty: boolean;
}

const OPS: RedOp[] = [
  { name: 'sum', f: (x, a, k) => sum(x, a, k), tol: (n) => TOL.reduction(n), needsNonEmpty: false },
  { name: 'mean', f: (x, a, k) => mean(x, a, k), tol: (n) => TOL.reduction(n), needsNonEmpty: false },
  { name: 'max', f: (x, a, k) => max(x, a, k), tol: () => TOL.select, needsNonEmpty: true },
  { name: 'min', f: (x, a, k) => min(x, a, k), tol: () => TOL.select, needsNonEmpty: true },
  { name: 'logsumexp', f: (x, a, k) => logsumexp(x, a, k), tol: (n) => TOL.compositeReduction(n), needsNonEmpty: true },
  { name: 'variance(c=0)', f: (x, a, k) => variance(x, a, k, 0), tol: (n) => TOL.compositeReduction(n, 4), needsNonEmpty: false },
  { name: 'variance(c=1)', f: (x, a, k) => variance(x, a, k, 1), tol: (n) => TOL.compositeReduction(n, 4), needsNonEmpty: false },
];

describe('reductions: WebGPU vs CPU', () => {
  for (const op of OPS) {
    it(`${op.name}: axes subsets, keepDims, size-1 dims, long and many short rows`, async (ctx) => {
      const gpu = await requireWebGPU(ctx);
      const rng = new Rng(101);
      for (const c of CASES) {
        for (const keepDims of [false, true]) {
          const x = rand(rng, c.shape);
          const n = reducedCount(c.shape, c.axes);
          const { cpu: r } = await compareBackends(cpu, gpu, (t) => op.f(t, c.axes, keepDims), [x], op.tol(n), `${op.name} ${fmt(c.shape)} axes ${fmtAxes(c.axes)} keepDims ${keepDims}`);
          expect(r.dtype).toBe('float32');
        }
      }
    });

    it(`${op.name}: zero-size dims`, async (ctx) => {
      const gpu = await requireWebGPU(ctx);
      const rng = new Rng(102);
      const x = rand(rng, [3, 0, 2]);
      // Reducing a non-empty axis of an empty tensor gives an empty result on both backends.
      for (const keepDims of [false, true]) {
        const { cpu: r } = await compareBackends(cpu, gpu, (t) => op.f(t, 0, keepDims), [x], op.tol(3), `${op.name} [3,0,2] axis 0`);
        expect(r.shape).toEqual(keepDims ? [1, 0, 2] : [0, 2]);
      }
      for (const axes of [1, [0, 1], undefined] as Axes[]) {
        if (op.needsNonEmpty) {
          for (const be of [cpu, gpu]) {
            await expect(runOn(be, (t) => op.f(t, axes, false), [x]), `${op.name} over an empty axis on ${be.name}`).rejects.toThrow(ShapeError);
          }
        } else {
          const { cpu: r } = await compareBackends(cpu, gpu, (t) => op.f(t, axes, false), [x], op.tol(1), `${op.name} [3,0,2] axes ${fmtAxes(axes)}`);
          if (op.name === 'sum') expect(Array.from(r.data).every((v) => v === 0), 'sum over an empty axis is 0').toBe(true);
          if (op.name !== 'sum') expect(Array.from(r.data).every((v) => Number.isNaN(v)), `${op.name} over an empty axis is 0/0`).toBe(true);
        }
      }
    });
  }

  it('int32 and bool: sum is exact int32, max/min keep int32, mean is float32', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(103);
    for (const dtype of ['int32', 'bool'] as DType[]) {
      for (const c of CASES.filter((k) => sizeOf(k.shape) < 20000)) {
        const x = rand(rng, c.shape, dtype, { lo: -1000, hi: 1000 });
        const label = `${dtype} ${fmt(c.shape)} axes ${fmtAxes(c.axes)}`;
        const s = await compareBackends(cpu, gpu, (t) => sum(t, c.axes), [x], TOL.exact, `sum ${label}`);
        expect(s.cpu.dtype).toBe('int32');
        if (dtype === 'int32') {
          const m = await compareBackends(cpu, gpu, (t) => max(t, c.axes, true), [x], TOL.exact, `max ${label}`);
          expect(m.cpu.dtype).toBe('int32');
          await compareBackends(cpu, gpu, (t) => min(t, c.axes), [x], TOL.exact, `min ${label}`);
        }
        const mu = await compareBackends(cpu, gpu, (t) => mean(t, c.axes), [x], TOL.reduction(reducedCount(c.shape, c.axes), 1000), `mean ${label}`);
        expect(mu.cpu.dtype).toBe('float32');
      }
    }
  });

  it('sum of a long row is accurate to the √n bound (workgroup tree vs double accumulation)', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(104);
    const x = rand(rng, [2, 20000], 'float32', { lo: 0, hi: 1 });
    const { cpu: c, gpu: g } = await compareBackends(cpu, gpu, (t) => sum(t, 1), [x], TOL.reduction(20000), 'sum [2,20000]');
    // Independent host reference in double.
    for (let r = 0; r < 2; r++) {
      let s = 0;
      for (let i = 0; i < 20000; i++) s += x.data[r * 20000 + i]!;
      expect(Math.abs(c.data[r]! - s)).toBeLessThanOrEqual(Math.abs(s) * 2 ** -24);
      expect(Math.abs(g.data[r]! - s)).toBeLessThanOrEqual(TOL.reduction(20000).rtol * s);
    }
  });

  it('NaN propagates through max/min/sum on both paths; infinities are kept', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(105);
    for (const shape of [[4, 9], [4, 3000]]) {
      const x = rand(rng, shape);
      const w = shape[1]!;
      x.data[0 * w + 5] = NaN; // row 0: one NaN
      x.data[1 * w + 1] = Infinity; // row 1: +inf
      x.data[2 * w + 2] = -Infinity; // row 2: −inf
      x.data[3 * w + w - 1] = NaN; // row 3: NaN last
      for (const op of OPS.slice(0, 4)) {
        await compareBackends(cpu, gpu, (t) => op.f(t, 1, false), [x], op.tol(w), `${op.name} specials ${fmt(shape)}`);
      }
      const am = await compareBackends(cpu, gpu, (t) => argmax(t, 1), [x], TOL.exact, `argmax specials ${fmt(shape)}`);
      expect(Array.from(am.cpu.data)).toEqual([5, 1, am.cpu.data[2]!, w - 1]);
      await compareBackends(cpu, gpu, (t) => argmin(t, 1), [x], TOL.exact, `argmin specials ${fmt(shape)}`);
    }
  });
});

/** First index of the extreme along the last axis, computed on the host. */
function firstArg(x: HostTensor, rows: number, w: number, better: (a: number, b: number) => boolean): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let bi = 0;
    for (let i = 1; i < w; i++) if (better(x.data[r * w + i]!, x.data[r * w + bi]!)) bi = i;
    out.push(bi);
  }
  return out;
}

describe('argmax / argmin', () => {
  it('all axes, negative axes, keepDims, long rows', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(111);
    const cases: [number[], number][] = [[[7], 0], [[2, 3, 4], 0], [[2, 3, 4], 1], [[2, 3, 4], -1], [[1, 5, 1], 1], [[3, 5000], -1], [[700, 3], 0], [[4100, 3], 1]];
    for (const [shape, axis] of cases) {
      for (const keepDims of [false, true]) {
        for (const dtype of ['float32', 'int32'] as DType[]) {
          const x = rand(rng, shape, dtype, { lo: -100000, hi: 100000 });
          for (const [name, f] of [['argmax', argmax], ['argmin', argmin]] as const) {
            const { cpu: c } = await compareBackends(cpu, gpu, (t) => f(t, axis, keepDims), [x], TOL.exact, `${name} ${dtype} ${fmt(shape)} axis ${axis} keepDims ${keepDims}`);
            expect(c.dtype).toBe('int32');
          }
        }
      }
    }
  });

  it('ties return the first index on both backends (short rows and the workgroup path)', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(112);
    for (const [rows, w] of [[50, 6], [4, 5000], [4100, 4]] as [number, number][]) {
      // values from {−1, 0, 1}: every row has many ties for its max and min
      const h = rand(rng, [rows, w], 'int32', { lo: -1, hi: 1 });
      for (const dtype of ['float32', 'int32'] as DType[]) {
        const x: HostTensor = { ...h, dtype };
        const am = await compareBackends(cpu, gpu, (t) => argmax(t, -1), [x], TOL.exact, `argmax ties ${fmt(x.shape)}`);
        const an = await compareBackends(cpu, gpu, (t) => argmin(t, -1), [x], TOL.exact, `argmin ties ${fmt(x.shape)}`);
        expect(Array.from(am.gpu.data)).toEqual(firstArg(x, rows, w, (a, b) => a > b));
        expect(Array.from(an.gpu.data)).toEqual(firstArg(x, rows, w, (a, b) => a < b));
      }
    }
    // constant rows, and a maximum that appears late in one lane and early in another
    const w = 5000;
    const x = host(new Array(2 * w).fill(3), [2, w]);
    x.data[w + 4000] = 9;
    x.data[w + 130] = 9;
    const { gpu: g } = await compareBackends(cpu, gpu, (t) => argmax(t, 1), [x], TOL.exact, 'argmax constant rows');
    expect(Array.from(g.data)).toEqual([0, 130]);
  });

  it('several NaNs: the first NaN wins on both backends', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const w = 3000;
    const x = host(new Array(2 * w).fill(0).map((_, i) => i % 7), [2, w]);
    x.data[2900] = NaN;
    x.data[70] = NaN; // lane 6 of the workgroup scan, before 2900
    x.data[w + 5] = NaN;
    x.data[w + 64] = NaN; // same lane as 0, later
    for (const f of [argmax, argmin]) {
      const { gpu: g } = await compareBackends(cpu, gpu, (t) => f(t, 1), [x], TOL.exact, `${f.name} NaNs`);
      expect(Array.from(g.data)).toEqual([70, 5]);
    }
  });
});

describe('softmax and logSoftmax: WebGPU vs CPU', () => {
  it('over every axis (positive and negative), including size-1 and long axes', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(121);
    const cases: [number[], number][] = [[[7], 0], [[2, 3, 4], 0], [[2, 3, 4], 1], [[2, 3, 4], -1], [[3, 1], 1], [[1, 5, 1], -2], [[3, 5000], -1], [[4100, 3], 1], [[0, 4], 1]];
    for (const [shape, axis] of cases) {
      const x = rand(rng, shape, 'float32', { lo: -6, hi: 6 });
      const n = shape[axis < 0 ? axis + shape.length : axis]!;
      const sm = await compareBackends(cpu, gpu, (t) => softmax(t, axis), [x], TOL.compositeReduction(n), `softmax ${fmt(shape)} axis ${axis}`);
      await compareBackends(cpu, gpu, (t) => logSoftmax(t, axis), [x], TOL.compositeReduction(n, 6), `logSoftmax ${fmt(shape)} axis ${axis}`);
      expect(sm.gpu.shape).toEqual(shape);
      // rows sum to 1
      const sums = await runOn(gpu, (t) => sum(softmax(t, axis), axis), [x]);
      for (const s of sums.data) expect(Math.abs(s - 1)).toBeLessThan(TOL.compositeReduction(n).rtol * 4);
    }
  });

  it('huge logits (±1e4) stay finite, sum to 1 and match', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const x = host([1e4, 0, -1e4, 1e4 - 1, 1e4, 1e4, 1e4, 1e4, -1e4, -1e4, -1e4, -1e4 + 2], [3, 4]);
    for (const be of [cpu, gpu]) {
      const sm = await runOn(be, (t) => softmax(t, -1), [x]);
      expect(Array.from(sm.data).every(Number.isFinite), `softmax finite on ${be.name}`).toBe(true);
      const rowSums = [0, 1, 2].map((r) => sm.data[4 * r]! + sm.data[4 * r + 1]! + sm.data[4 * r + 2]! + sm.data[4 * r + 3]!);
      for (const s of rowSums) expect(Math.abs(s - 1)).toBeLessThan(1e-6);
      const ls = await runOn(be, (t) => logSoftmax(t, -1), [x]);
      expect(Array.from(ls.data).every(Number.isFinite), `logSoftmax finite on ${be.name}`).toBe(true);
      const lse = await runOn(be, (t) => logsumexp(t, -1), [x]);
      expect(Math.abs(lse.data[0]! - (1e4 + Math.log1p(Math.exp(-1)))), `logsumexp row 0 on ${be.name}`).toBeLessThan(1e-3);
      expect(Math.abs(lse.data[1]! - (1e4 + Math.log(4)))).toBeLessThan(1e-3);
    }
    await compareBackends(cpu, gpu, (t) => softmax(t, -1), [x], TOL.compositeReduction(4), 'softmax huge');
    await compareBackends(cpu, gpu, (t) => logSoftmax(t, 0), [x], TOL.compositeReduction(3, 2e4), 'logSoftmax huge axis 0');
  });

  it('logsumexp of rows that are all −inf is −inf (no NaN), +inf rows give +inf', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const x = host([-Infinity, -Infinity, Infinity, 1, 0, 1], [3, 2]);
    const { gpu: g } = await compareBackends(cpu, gpu, (t) => logsumexp(t, 1), [x], TOL.compositeReduction(2), 'logsumexp infinities');
    expect(Array.from(g.data).slice(0, 2)).toEqual([-Infinity, Infinity]);
  });
});

describe('reductions: gradients vs float64 finite differences (CPU)', () => {
  const GRAD_CASES: RedCase[] = [
    { shape: [2, 3, 4], axes: undefined },
    { shape: [2, 3, 4], axes: 1 },
    { shape: [2, 3, 4], axes: -1 },
    { shape: [2, 3, 4], axes: [0, 2] },
    { shape: [1, 5, 1], axes: [0, 2] },
    { shape: [], axes: undefined },
  ];
  for (const op of OPS) {
    it(`d ${op.name}`, async () => {
      const rng = new Rng(131);
      for (const c of GRAD_CASES) {
        if (op.name === 'variance(c=1)' && reducedCount(c.shape, c.axes) === 1) continue; // n − 1 = 0: division by zero by definition
        for (const keepDims of [false, true]) {
          // continuous random inputs: no ties for max/min, so the derivative exists
          await gradcheck((t) => op.f(t, c.axes, keepDims), [rand(rng, c.shape, 'float64')], { label: `${op.name} ${fmt(c.shape)} axes ${fmtAxes(c.axes)} keepDims ${keepDims}` });
        }
      }
    });
  }

  it('d max/min with ties: gradient split evenly among the maxima', async () => {
    const x = fromHost([1, 3, 3, 2, 0, 0], [2, 3], 'float64', cpu);
    const g = grad((t: Tensor) => max(t, 1).sum())(x);
    expect(Array.from(await g.data())).toEqual([0, 0.5, 0.5, 1, 0, 0]);
    const g2 = grad((t: Tensor) => min(t, 1).sum())(x);
    expect(Array.from(await g2.data())).toEqual([1, 0, 0, 0, 0.5, 0.5]);
  });

  for (const [name, f] of [['softmax', softmax], ['logSoftmax', logSoftmax]] as const) {
    it(`d ${name} over each axis`, async () => {
      const rng = new Rng(132);
      for (const [shape, axis] of [[[5], 0], [[2, 3, 4], 0], [[2, 3, 4], 1], [[2, 3, 4], -1], [[3, 1], 1]] as [number[], number][]) {
        await gradcheck((t) => f(t, axis), [rand(rng, shape, 'float64', { lo: -3, hi: 3 })], { label: `${name} ${fmt(shape)} axis ${axis}` });
      }
    });
  }
});
