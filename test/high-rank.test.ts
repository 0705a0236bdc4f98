// Rank 9+ on WebGPU (issue 9 parity): patterns that do not collapse to MAX_RANK dims (permutes,
// broadcasts, slices, pads, concats, elementwise binary ops, where, reductions) run through the
// any-rank fallbacks (engine/ops/high-rank.ts) and agree with the CPU reference; never "needs
// rank 9 > 8".
import { describe, expect, it } from 'vitest';
import {
  ShapeError, type Tensor, add, argmax, fromHost, gather, grad, grads, scatterAdd, broadcastTo, concat, gt, max, mul, pad, permute, slice, sum, where,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { Rng, TOL, compareBackends, rand } from './helpers/compare.js';

const S9 = [2, 3, 2, 3, 2, 3, 2, 3, 2];
const S10 = [2, 3, 2, 3, 2, 3, 2, 3, 2, 3];
/** Reverses the dims: no two neighbours stay adjacent in memory, so nothing collapses. */
const rev = (r: number) => Array.from({ length: r }, (_, i) => r - 1 - i);
/** Every other dim first, then the rest (no adjacent pair survives either). */
const interleave = (r: number) => [...Array.from({ length: Math.ceil(r / 2) }, (_, i) => 2 * i), ...Array.from({ length: Math.floor(r / 2) }, (_, i) => 2 * i + 1)];

describe('WebGPU beyond rank 8 agrees with the CPU', () => {
  it('permutes of rank 9 and 10 that do not collapse (and their gradients)', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(1);
    await compareBackends(cpu, gpu, (x) => permute(x, rev(9)), [rand(rng, S9)], TOL.select, 'permute rank 9 reversed');
    await compareBackends(cpu, gpu, (x) => permute(x, interleave(10)), [rand(rng, S10)], TOL.select, 'permute rank 10 interleaved');
    await compareBackends(cpu, gpu, (x) => permute(x, rev(10)), [rand(rng, S10, 'int32')], TOL.exact, 'permute rank 10 int32');
    await compareBackends(cpu, gpu, (x) => permute(x, interleave(9)).mul(permute(x, interleave(9))).sum(), [rand(rng, S9)], TOL.reduction(7776, 4), 'through a sum');
    // Gradients: the adjoint of a permute is the inverse permute (rank 9 again), of a broadcast a sum.
    await compareBackends(cpu, gpu, (x) => grad((t: Tensor) => permute(t, interleave(9)).mul(mul(permute(t, interleave(9)), 3)).sum())(x), [rand(rng, S9)], TOL.arith, 'grad of a rank-9 permute');
    await compareBackends(cpu, gpu, (a, b) => grads((p: Tensor, q: Tensor) => mul(p, q).sum(), [0, 1])(a, b)[1], [rand(rng, [2, 1, 2, 1, 2, 1, 2, 1, 2]), rand(rng, [1, 3, 1, 3, 1, 3, 1, 3, 1])], TOL.reduction(32, 4), 'grad of a rank-9 broadcast');
  });

  it('broadcasts, elementwise binary ops and where with an alternating pattern of rank 9', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(2);
    const A = [2, 1, 2, 1, 2, 1, 2, 1, 2];
    const B = [1, 3, 1, 3, 1, 3, 1, 3, 1];
    const out = [2, 3, 2, 3, 2, 3, 2, 3, 2];
    await compareBackends(cpu, gpu, (a) => broadcastTo(a, out), [rand(rng, A)], TOL.select, 'broadcastTo rank 9');
    await compareBackends(cpu, gpu, (a, b) => add(a, b), [rand(rng, A), rand(rng, B)], TOL.arith, 'add rank 9');
    await compareBackends(cpu, gpu, (a, b) => mul(a, b), [rand(rng, [3, ...A]), rand(rng, B)], TOL.arith, 'mul rank 10');
    await compareBackends(cpu, gpu, (a, b) => gt(a, b), [rand(rng, A), rand(rng, B)], TOL.exact, 'gt rank 9 (bool)');
    await compareBackends(cpu, gpu, (a, b) => add(a, b), [rand(rng, A, 'int32'), rand(rng, B, 'int32')], TOL.exact, 'add rank 9 int32');
    await compareBackends(cpu, gpu, (a, b, c) => where(gt(c, 0), a, b), [rand(rng, A), rand(rng, B), rand(rng, [2, 1, 2, 3, 1, 1, 2, 3, 1])], TOL.select, 'where rank 9');
    // The gradient of a broadcast product sums back over the alternating axes.
    await compareBackends(cpu, gpu, (a, b) => sum(mul(add(a, b), add(a, b)), [0, 2, 4, 6, 8]), [rand(rng, A), rand(rng, B)], TOL.reduction(32, 16), 'sum over alternating axes');
  });

  it('slice, pad and concat of rank 9 non-collapsing patterns', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(3);
    const begin = [1, 1, 0, 1, 1, 0, 1, 1, 0];
    const size = [1, 2, 1, 2, 1, 2, 1, 2, 1];
    await compareBackends(cpu, gpu, (x) => slice(x, begin, size), [rand(rng, S9)], TOL.select, 'slice rank 9');
    await compareBackends(cpu, gpu, (x) => pad(x, S9.map((_, d) => (d % 2 ? [1, 0] : [0, 1]) as [number, number])), [rand(rng, S9)], TOL.select, 'pad rank 9');
    await compareBackends(cpu, gpu, (x, y) => concat([permute(x, rev(9)), permute(y, rev(9))], 4), [rand(rng, S9), rand(rng, S9)], TOL.select, 'concat rank 9');
  });

  it('reductions with more than 8 kept / reduced dims after collapsing (sum, max, argmax)', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(4);
    const shape = new Array(18).fill(2);
    const odd = Array.from({ length: 9 }, (_, i) => 2 * i + 1);
    const x = rand(rng, shape);
    await compareBackends(cpu, gpu, (t: Tensor) => sum(t, odd), [x], TOL.reduction(512, 2), 'sum 9 of 18 alternating axes');
    await compareBackends(cpu, gpu, (t: Tensor) => max(t, odd, true), [x], TOL.select, 'max keepDims');
    await compareBackends(cpu, gpu, (t: Tensor) => sum(permute(t, interleave(18)), Array.from({ length: 9 }, (_, i) => i + 9)), [x], TOL.reduction(512, 2), 'sum after a rank-18 permute');
    await compareBackends(cpu, gpu, (t: Tensor) => argmax(permute(t, rev(10)), 3), [rand(rng, S10)], TOL.exact, 'argmax rank 10');
  });

  it('gather / scatterAdd of rank 9+: dims that indices span fully are merged (vs CPU, with gradients)', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(5);
    const idx = (shape: number[], hi: number) => rand(rng, shape, 'int32', { lo: 0, hi: hi - 1 });
    await compareBackends(cpu, gpu, (x, i) => gather(x, i, 4), [rand(rng, S9), idx([2, 3, 2, 3, 4, 3, 2, 3, 2], 2)], TOL.select, 'gather rank 9, full dims');
    await compareBackends(cpu, gpu, (x, i) => gather(x, i, 8), [rand(rng, S9), idx([1, 3, 1, 3, 1, 3, 1, 3, 3], 2)], TOL.select, 'gather rank 9, alternating');
    await compareBackends(cpu, gpu, (x, i) => grad((t: Tensor) => gather(t, i, 8).square().sum())(x), [rand(rng, S9), idx([1, 3, 1, 3, 1, 3, 1, 3, 3], 2)], TOL.reduction(3, 4), 'gather rank 9 gradient');
    await compareBackends(cpu, gpu, (x, i, s) => scatterAdd(x, 1, i, s), [rand(rng, S10), idx([2, 5, 2, 3, 2, 3, 2, 3, 2, 3], 3), rand(rng, [2, 5, 2, 3, 2, 3, 2, 3, 2, 3])], TOL.reduction(5, 2), 'scatterAdd rank 10');
    // Out-of-range indices still raise the CPU's error (same flat position) on both backends.
    const bad = rand(rng, [2, 3, 2, 3, 4, 3, 2, 3, 2], 'int32', { lo: 0, hi: 1 });
    bad.data[17] = 5;
    const msg = /^gather: index 5 at flat position 17 of indices/;
    expect(() => gather(fromHost(rand(rng, S9).data, S9, 'float32', cpu), fromHost(bad.data, bad.shape, 'int32', cpu), 4)).toThrow(msg);
    await expect(gather(fromHost(rand(rng, S9).data, S9, 'float32', gpu), fromHost(bad.data, bad.shape, 'int32', gpu), 4).data()).rejects.toThrow(msg);
    // Nothing to merge: a typed error, not a kernel failure.
    expect(() => gather(fromHost(rand(rng, S9).data, S9, 'float32', cpu), fromHost(new Array(16).fill(0), [1, 2, 1, 2, 1, 2, 1, 2, 1], 'int32', cpu), 0)).toThrow(ShapeError);
  });
});
