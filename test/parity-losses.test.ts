/**
 * PyTorch parity of the losses: crossEntropy / nllLoss on [N, C, d1, ...] logits with
 * [N, d1, ...] labels (segmentation) and unbatched [C]; label validation (typed IndexError on
 * the host: CPU backend and DataLoader batches on every backend; device-born labels on WebGPU
 * checked by a kernel, raised at the next read); Gaussian NLL with a variance per row ([N, 1] against [N, D]) with PyTorch's
 * `full` / `eps` semantics. Values by hand (JS doubles), gradients against float64 finite
 * differences, WebGPU against the CPU reference.
 */
import { describe, expect, it, vi } from 'vitest';
import {
  type Tensor, ArgumentError, DataLoader, IndexError, Linear, SGD, ShapeError,
  checkClassTargets, crossEntropy, fit, gaussianNllLoss, gaussianNllLossVar, grads, memory, nllLoss, setBackend, tensor, tidy,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { Rng, TOL, compareBackends, expectClose, host, rand } from './helpers/compare.js';
import { gradcheck } from './helpers/gradcheck.js';

setBackend(cpu);
const f64 = (data: number[], shape: number[]) => tensor(data, shape, { dtype: 'float64' });
const i32 = (data: number[], shape = [data.length]) => tensor(data, shape, { dtype: 'int32' });
const val = async (t: Tensor) => Array.from(await t.data());

/** Reference: per-position −w[t]·log softmax over dim 1 of x [N, C, S] (S = flattened spatial dims). */
function refCE(x: number[], N: number, C: number, S: number, t: number[], w?: number[], ignore = -100) {
  const loss: number[] = [];
  const wt: number[] = [];
  for (let n = 0; n < N; n++) {
    for (let s = 0; s < S; s++) {
      const col = Array.from({ length: C }, (_, c) => x[(n * C + c) * S + s]);
      const m = Math.max(...col);
      const lse = m + Math.log(col.reduce((a, v) => a + Math.exp(v - m), 0));
      const lab = t[n * S + s];
      if (lab === ignore) {
        loss.push(0);
        wt.push(0);
        continue;
      }
      const ww = w ? w[lab] : 1;
      loss.push(-ww * (col[lab] - lse));
      wt.push(ww);
    }
  }
  return { loss, wt };
}

describe('crossEntropy / nllLoss on [N, C, d1, ...] (segmentation)', () => {
  const N = 2;
  const C = 3;
  const H = 2;
  const W = 3;
  const rng = new Rng(11);
  const X = rand(rng, [N, C, H, W], 'float64', { lo: -3, hi: 3 }).data;
  const T = [0, 2, 1, 1, 0, 2, 2, 2, 0, 1, 1, 0];
  const WGT = [0.2, 0.5, 0.3];

  it('mean / sum / none match the per-pixel definition, with class weights', async () => {
    const x = f64(X, [N, C, H, W]);
    const t = i32(T, [N, H, W]);
    const { loss, wt } = refCE(X, N, C, H * W, T);
    const none = crossEntropy(x, t, { reduction: 'none' });
    expect(none.shape).toEqual([N, H, W]);
    expectClose(await val(none), loss, TOL.arith, 'none');
    expect(await crossEntropy(x, t).item()).toBeCloseTo(loss.reduce((a, b) => a + b) / loss.length, 12);
    expect(await crossEntropy(x, t, { reduction: 'sum' }).item()).toBeCloseTo(loss.reduce((a, b) => a + b), 12);
    const r = refCE(X, N, C, H * W, T, WGT);
    const wmean = r.loss.reduce((a, b) => a + b) / r.wt.reduce((a, b) => a + b);
    expect(await crossEntropy(x, t, { weight: f64(WGT, [3]) }).item()).toBeCloseTo(wmean, 12);
    // nllLoss on log-probabilities agrees.
    expect(await nllLoss(x.logSoftmax(1), t, { weight: f64(WGT, [3]) }).item()).toBeCloseTo(wmean, 12);
    expect(wt.length).toBe(N * H * W);
  });

  it('equals the [N·H·W, C] form (permute + flatten), incl. label smoothing and ignoreIndex', async () => {
    const x = f64(X, [N, C, H, W]);
    const T2 = [...T];
    T2[3] = -100;
    T2[7] = -100;
    const t = i32(T2, [N, H, W]);
    const flatX = x.permute([0, 2, 3, 1]).reshape([-1, C]);
    const flatT = t.reshape([-1]);
    for (const opts of [{}, { labelSmoothing: 0.2 }, { weight: f64(WGT, [3]), labelSmoothing: 0.1 }]) {
      expect(await crossEntropy(x, t, opts).item()).toBeCloseTo(await crossEntropy(flatX, flatT, opts).item(), 12);
      const a = await val(crossEntropy(x, t, { ...opts, reduction: 'none' }));
      const b = await val(crossEntropy(flatX, flatT, { ...opts, reduction: 'none' }));
      expectClose(a, b, TOL.arith, 'none');
    }
  });

  it('3-D logits [N, C, L] and unbatched [C] with a 0-d target', async () => {
    const x = f64(X.slice(0, 2 * 3 * 4), [2, 3, 4]);
    const t = i32([0, 1, 2, 1, 2, 2, 0, 1], [2, 4]);
    const { loss } = refCE(X.slice(0, 24), 2, 3, 4, [0, 1, 2, 1, 2, 2, 0, 1]);
    expectClose(await val(crossEntropy(x, t, { reduction: 'none' })), loss, TOL.arith, '3-D');
    const u = f64([1, 2, 0.5], [3]);
    const lse = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(0.5));
    const l = crossEntropy(u, i32([1], []), { reduction: 'none' });
    expect(l.shape).toEqual([]);
    expect(await l.item()).toBeCloseTo(lse - 2, 12);
    expect(await crossEntropy(u, i32([2], [])).item()).toBeCloseTo(lse - 0.5, 12);
    expect(await nllLoss(u, i32([0], [])).item()).toBeCloseTo(-1, 12);
  });

  it('ignoreIndex inside [0, C) ignores that class (PyTorch); all ignored → mean NaN, sum 0', async () => {
    const x = f64(X, [N, C, H, W]);
    const t = i32(T, [N, H, W]);
    const { loss } = refCE(X, N, C, H * W, T, undefined, 0);
    const kept = loss.filter((_, i) => T[i] !== 0);
    expect(await crossEntropy(x, t, { ignoreIndex: 0 }).item()).toBeCloseTo(kept.reduce((a, b) => a + b) / kept.length, 12);
    const none = await val(crossEntropy(x, t, { ignoreIndex: 0, reduction: 'none' }));
    T.forEach((c, i) => { if (c === 0) expect(Math.abs(none[i])).toBe(0); });
    const all = i32(new Array(12).fill(-100), [N, H, W]);
    expect(Number.isNaN(await crossEntropy(x, all).item())).toBe(true);
    expect(Number.isNaN(await nllLoss(x, all).item())).toBe(true);
    expect(await crossEntropy(x, all, { reduction: 'sum' }).item()).toBe(0);
  });

  it('shape errors name the expected target shape', () => {
    const x = f64(X, [N, C, H, W]);
    expect(() => crossEntropy(x, i32(T, [N, W, H]))).toThrow(ShapeError);
    expect(() => crossEntropy(x, i32(T, [N, W, H]))).toThrow(/crossEntropy: target \[2,3,2\] must be \[N, d1, \.\.\.\] = \[2,2,3\] for input \[2,3,2,3\]/);
    expect(() => nllLoss(x, i32(T.slice(0, 6), [N, H * W / 2]))).toThrow(ShapeError);
  });

  it('gradients match float64 finite differences (weights, ignoreIndex, smoothing)', async () => {
    const T2 = [...T];
    T2[5] = -100;
    const t = host(T2, [N, H, W], 'int32');
    const w = host(WGT, [3], 'float64');
    await gradcheck((a, b, c) => crossEntropy(a, b, { weight: c, labelSmoothing: 0.15 }), [host(X, [N, C, H, W], 'float64'), t, w], { argnums: [0], label: 'CE 4-D' });
    await gradcheck((a, b) => crossEntropy(a, b, { reduction: 'none' }), [host(X, [N, C, H, W], 'float64'), t], { argnums: [0], label: 'CE 4-D none' });
    await gradcheck((a, b) => nllLoss(a.logSoftmax(1), b, { reduction: 'sum' }), [host(X, [N, C, H, W], 'float64'), t], { argnums: [0], label: 'nll 4-D' });
  });

  it('WebGPU agrees with the CPU', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const r = new Rng(5);
    const x = rand(r, [3, 5, 7, 9], 'float32', { lo: -4, hi: 4 });
    const t = rand(r, [3, 7, 9], 'int32', { lo: 0, hi: 4 });
    t.data[4] = -100;
    const w = host([0.1, 0.4, 0.2, 0.2, 0.1], [5]);
    const tol = TOL.compositeReduction(3 * 7 * 9 * 5, 4);
    await compareBackends(cpu, gpu, (a, b, c) => crossEntropy(a, b, { weight: c, labelSmoothing: 0.1 }), [x, t, w], tol, 'CE 4-D');
    await compareBackends(cpu, gpu, (a, b) => crossEntropy(a, b, { reduction: 'none' }), [x, t], TOL.compositeReduction(5, 4), 'CE 4-D none');
    const t2 = { ...t, data: t.data.map((v) => (v === -100 ? 2 : v)) };
    await compareBackends(cpu, gpu, (a, b) => nllLoss(a, b, { ignoreIndex: 2 }), [x, t2], tol, 'nll 4-D');
    setBackend(cpu);
  });
});

describe('class labels are validated', () => {
  const x = f64([1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3], [4, 3]);

  it('CPU: a label >= C or < 0 (not ignoreIndex) is an IndexError naming the label, its position and C', () => {
    expect(() => crossEntropy(x, i32([0, 1, 3, 2]))).toThrow(IndexError);
    expect(() => crossEntropy(x, i32([0, 1, 3, 2]))).toThrow(/crossEntropy: class index 3 at position 2 of \[4\] is out of range for input \[4,3\] with C = 3 classes; expected 0 <= class index < 3 or the ignoreIndex -100/);
    expect(() => nllLoss(x, i32([0, -1, 1, 2]))).toThrow(/nllLoss: class index -1 at position 1 of \[4\]/);
    expect(() => crossEntropy(x, i32([0, -100, 7, 2]), { ignoreIndex: -100 })).toThrow(/class index 7 at position 2/);
    // Segmentation: the position is a multi-index.
    const seg = f64(new Array(2 * 3 * 2 * 2).fill(0), [2, 3, 2, 2]);
    expect(() => crossEntropy(seg, i32([0, 1, 2, 0, 1, 1, 9, 0], [2, 2, 2]))).toThrow(/class index 9 at position \[1, 1, 0\] \(flat 6\) of \[2,2,2\]/);
    // Valid labels and ignoreIndex pass.
    expect(() => crossEntropy(x, i32([0, -100, 2, 1]))).not.toThrow();
  });

  it('fit on the CPU stops at the first batch with a typed error (a 10-class dataset on a 9-output head)', async () => {
    const n = 12;
    const xs = { data: Array.from({ length: n * 4 }, (_, i) => Math.sin(i)), shape: [n, 4], dtype: 'float32' as const };
    const ys = { data: Array.from({ length: n }, (_, i) => i % 10), shape: [n], dtype: 'int32' as const };
    const model = new Linear(4, 9);
    const loader = new DataLoader([xs, ys], { batchSize: 12 });
    await expect(fit(model, loader, { epochs: 1, optimizer: new SGD(model.parameters(), { lr: 0.1 }), progress: false })).rejects.toThrow(/crossEntropy: class index 9 at position 9 \(DataLoader array 1, sample 9\)/);
  });

  it('WebGPU: DataLoader labels are checked on the host (no readback); device-born labels raise at the next read; checkClassTargets reads back once', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const n = 8;
    const xs = { data: Array.from({ length: n * 3 }, (_, i) => Math.cos(i)), shape: [n, 3], dtype: 'float32' as const };
    const ys = { data: [0, 1, 2, 1, 0, 3, 1, 2], shape: [n], dtype: 'int32' as const };
    const loader = new DataLoader([xs, ys], { batchSize: 4, shuffle: true, seed: 3, backend: gpu });
    const reads = vi.spyOn(gpu, 'read');
    let thrown: unknown = null;
    for (const [bx, by] of loader) {
      try {
        tidy(() => crossEntropy(bx, by));
      } catch (e) {
        thrown ??= e;
      }
      bx.dispose();
      by.dispose();
    }
    expect(reads).not.toHaveBeenCalled();
    reads.mockRestore();
    expect(thrown).toBeInstanceOf(IndexError);
    expect(String(thrown)).toMatch(/crossEntropy: class index 3 at position \d \(DataLoader array 1, sample 5\) of \[4\] is out of range for input \[4,3\] with C = 3 classes/);
    // fit on WebGPU rejects too.
    const model = new Linear(3, 3, { backend: gpu });
    const l2 = new DataLoader([xs, ys], { batchSize: 8, backend: gpu });
    await expect(fit(model, l2, { epochs: 1, optimizer: new SGD(model.parameters(), { lr: 0.1 }), progress: false })).rejects.toThrow(IndexError);
    // Labels computed on the device are checked on the device: the IndexError comes at the next read.
    const logits = tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3], [4, 3], { backend: gpu });
    const dev = tensor([0, 1, 2, 1], [4], { dtype: 'int32', backend: gpu }).add(tensor([0, 0, 5, -100 - 1], [4], { dtype: 'int32', backend: gpu }));
    await expect(crossEntropy(logits, dev, { reduction: 'none' }).data()).rejects.toThrow(/crossEntropy: class index 7 at position 2 of \[4\] is out of range for input \[4,3\] with C = 3 classes/);
    await expect(crossEntropy(logits, dev).item()).rejects.toThrow(IndexError);
    const devOk = tensor([0, 1, 2, 1], [4], { dtype: 'int32', backend: gpu }).add(tensor([0, 0, 0, -100 - 1], [4], { dtype: 'int32', backend: gpu }));
    const none = await crossEntropy(logits, devOk, { reduction: 'none' }).data();
    expect(Math.abs(none[3])).toBe(0); // label −100 = ignoreIndex (−0: the negated empty sum)
    expect(Number.isFinite(none[0]) && Number.isFinite(none[1]) && Number.isFinite(none[2])).toBe(true);
    await expect(checkClassTargets(dev, 3)).rejects.toThrow(/checkClassTargets: class index 7 at position 2 of \[4\]/);
    await expect(checkClassTargets(tensor([0, 2], [2], { dtype: 'int32', backend: gpu }), 3)).resolves.toBeUndefined();
    for (const t of [logits, dev, devOk, ...model.parameters()]) t.dispose();
    setBackend(cpu);
  });

  it('no tensors leak from the segmentation loss or the label check', () => {
    const m0 = memory().liveTensors;
    const seg = f64(new Array(24).fill(0.5), [2, 3, 2, 2]);
    const t = i32([0, 1, 2, 0, 1, 1, 2, 0], [2, 2, 2]);
    for (let i = 0; i < 3; i++) tidy(() => { grads((a) => crossEntropy(a, t, { labelSmoothing: 0.1 }), [0])(seg); });
    crossEntropy(seg, t).dispose();
    expect(() => crossEntropy(seg, i32([0, 1, 2, 0, 1, 1, 3, 0], [2, 2, 2]))).toThrow(IndexError);
    const bad0d = i32([5], []);
    const u = f64([1, 2, 3], [3]);
    expect(() => crossEntropy(u, bad0d)).toThrow(/class index 5/);
    bad0d.dispose();
    u.dispose();
    seg.dispose();
    t.dispose();
    // The failing call's label tensor is the only survivor (created outside any scope by i32()).
    expect(memory().liveTensors - m0).toBe(1);
  });
});

describe('Gaussian NLL with a variance per row (PyTorch GaussianNLLLoss)', () => {
  const MU = [0.5, -1, 2, 0, 1, 1.5];
  const Y = [1, -1, 1.5, -0.7, 0.2, 2];
  const V = [0.5, 2]; // one variance per row of [2, 3]
  const per = (v: (i: number) => number, full = false) => MU.map((m, i) => 0.5 * (Math.log(v(i)) + (m - Y[i]) ** 2 / v(i)) + (full ? 0.5 * Math.log(2 * Math.PI) : 0));
  const mean = (a: number[]) => a.reduce((s, v) => s + v) / a.length;

  it('var [N, 1] and [N] broadcast over [N, D]; a number; full; reductions', async () => {
    const mu = f64(MU, [2, 3]);
    const y = f64(Y, [2, 3]);
    const want = per((i) => V[Math.floor(i / 3)]);
    const none = gaussianNllLossVar(mu, y, f64(V, [2, 1]), { reduction: 'none' });
    expect(none.shape).toEqual([2, 3]);
    expectClose(await val(none), want, TOL.arith, '[N,1]');
    expect(await gaussianNllLossVar(mu, y, f64(V, [2])).item()).toBeCloseTo(mean(want), 12);
    expect(await gaussianNllLossVar(mu, y, f64(V, [2, 1]), { reduction: 'sum' }).item()).toBeCloseTo(want.reduce((a, b) => a + b), 12);
    expect(await gaussianNllLossVar(mu, y, f64(V, [2, 1]), { full: true }).item()).toBeCloseTo(mean(per((i) => V[Math.floor(i / 3)], true)), 12);
    expect(await gaussianNllLossVar(mu, y, 0.7).item()).toBeCloseTo(mean(per(() => 0.7)), 12);
    const full = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8];
    expect(await gaussianNllLossVar(mu, y, f64(full, [2, 3])).item()).toBeCloseTo(mean(per((i) => full[i])), 12);
    // Target with a size-1 dim broadcasts.
    const yb = f64([1, 2], [2, 1]);
    const wantB = MU.map((m, i) => 0.5 * (Math.log(V[Math.floor(i / 3)]) + (m - [1, 2][Math.floor(i / 3)]) ** 2 / V[Math.floor(i / 3)]));
    expectClose(await val(gaussianNllLossVar(mu, yb, f64(V, [2, 1]), { reduction: 'none' })), wantB, TOL.arith, 'target [N,1]');
    // The log-variance form accepts a per-row logVar too.
    const lv = V.map(Math.log);
    expect(await gaussianNllLoss(mu, f64(lv, [2, 1]), y).item()).toBeCloseTo(mean(want), 12);
    expect(await gaussianNllLoss(mu, f64(lv, [2]), y).item()).toBeCloseTo(mean(want), 12);
  });

  it('eps clamps the value (default 1e-6) and the gradient passes straight through, as PyTorch', async () => {
    const mu = f64([0, 1], [2, 1]);
    const y = f64([0.5, 1], [2, 1]);
    const v = f64([0, 1e-9], [2, 1]);
    const e = 1e-6;
    const want = [0.5 * (Math.log(e) + 0.25 / e), 0.5 * Math.log(e)];
    expectClose(await val(gaussianNllLossVar(mu, y, v, { reduction: 'none' })), want, TOL.arith, 'clamped');
    const e2 = 0.1;
    expectClose(await val(gaussianNllLossVar(mu, y, v, { reduction: 'none', eps: e2 })), [0.5 * (Math.log(e2) + 0.25 / e2), 0.5 * Math.log(e2)], TOL.arith, 'eps 0.1');
    // d/dvar of ½(log v + d²/v) at the clamped v, even though var < eps.
    const [gv] = grads((vv) => gaussianNllLossVar(mu, y, vv, { reduction: 'sum', eps: e2 }), [0])(v);
    expectClose(await val(gv), [0.5 * (1 / e2 - 0.25 / e2 ** 2), 0.5 / e2], TOL.arith, 'straight-through grad');
  });

  it('typed errors: negative variance (CPU), wrong var shape, bad eps', () => {
    const mu = f64(MU, [2, 3]);
    const y = f64(Y, [2, 3]);
    expect(() => gaussianNllLossVar(mu, y, f64([0.5, -1], [2, 1]))).toThrow(ArgumentError);
    expect(() => gaussianNllLossVar(mu, y, f64([0.5, -1], [2, 1]))).toThrow(/gaussianNllLossVar: var has a negative \(or NaN\) entry -1 at flat position 1 of \[2,1\]/);
    expect(() => gaussianNllLossVar(mu, y, -2)).toThrow(ArgumentError);
    expect(() => gaussianNllLossVar(mu, y, f64([1, 1, 1], [3, 1]))).toThrow(/var \[3,1\] must have the shape of the mean \[2,3\], or \[2,1\] \(one per row\), or \[2\]/);
    expect(() => gaussianNllLossVar(mu, y, f64([1, 1, 1], [1, 3]))).toThrow(ShapeError);
    expect(() => gaussianNllLossVar(mu, y, 1, { eps: 0 })).toThrow(ArgumentError);
    expect(() => gaussianNllLossVar(mu, f64([1, 2, 3], [3]), 1)).toThrow(ShapeError);
    expect(() => gaussianNllLoss(mu, f64([1, 1, 1], [3]), y)).toThrow(ShapeError);
  });

  it('gradients w.r.t. input, target and the per-row variance match float64 finite differences', async () => {
    const ins = [host(MU, [2, 3], 'float64'), host(Y, [2, 3], 'float64'), host(V, [2, 1], 'float64')];
    await gradcheck((a, b, c) => gaussianNllLossVar(a, b, c, { full: true }), ins, { label: 'gnll var [N,1]' });
    await gradcheck((a, b, c) => gaussianNllLossVar(a, b, c, { reduction: 'none' }), [ins[0], ins[1], host(V, [2], 'float64')], { label: 'gnll var [N]' });
    await gradcheck((a, b, c) => gaussianNllLoss(a, c, b), [ins[0], ins[1], host([0.1, -0.3], [2, 1], 'float64')], { label: 'gnll logVar [N,1]' });
  });

  it('WebGPU agrees with the CPU; a negative variance gives NaN there (no readback)', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const r = new Rng(9);
    const mu = rand(r, [37, 5], 'float32');
    const y = rand(r, [37, 5], 'float32');
    const v = rand(r, [37, 1], 'float32', { lo: 0.05, hi: 3 });
    await compareBackends(cpu, gpu, (a, b, c) => gaussianNllLossVar(a, b, c, { full: true }), [mu, y, v], TOL.compositeReduction(185, 4), 'gnll');
    await compareBackends(cpu, gpu, (a, b, c) => gaussianNllLossVar(a, b, c, { reduction: 'none' }), [mu, y, v], TOL.transcendental, 'gnll none');
    await compareBackends(cpu, gpu, (a, b, c) => grads((p, q) => gaussianNllLossVar(p, b, q), [0, 1])(a, c)[1], [mu, y, v], TOL.transcendental, 'gnll dvar');
    const neg = await gaussianNllLossVar(tensor([0, 0], [2, 1], { backend: gpu }), tensor([1, 1], [2, 1], { backend: gpu }), tensor([1, -1], [2, 1], { backend: gpu }), { reduction: 'none' }).data();
    expect(Number.isFinite(neg[0])).toBe(true);
    expect(Number.isNaN(neg[1])).toBe(true);
    setBackend(cpu);
  });
});
