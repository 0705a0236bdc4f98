import { describe, expect, it } from 'vitest';
import {
  type Tensor, ArgumentError, DTypeError, ShapeError, grads, setBackend, tensor, tidy,
  crossEntropy, nllLoss, binaryCrossEntropy, bceWithLogits, mseLoss, l1Loss, gaussianNllLoss, klDivDiagonalGaussians, klDivBetweenDiagonalGaussians,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { Rng, TOL, compareBackends, expectClose, host, rand } from './helpers/compare.js';

setBackend(cpu);
const f64 = (data: number[], shape: number[]) => tensor(data, shape, { dtype: 'float64' });
const i32 = (data: number[]) => tensor(data, [data.length], { dtype: 'int32' });
const val = async (t: Tensor) => Array.from(await t.data());

/** Central finite differences (float64, CPU) of scalar f w.r.t. argument `argnum`, compared with autodiff. */
async function checkGrad(f: (...xs: Tensor[]) => Tensor, args: Tensor[], argnum: number, label: string, h = 1e-6): Promise<void> {
  setBackend(cpu);
  const [g] = grads(f, [argnum])(...args);
  const ad = await val(g);
  const x = args[argnum];
  const base = await val(x);
  const fd: number[] = [];
  for (let i = 0; i < base.length; i++) {
    const at = async (d: number) => {
      const v = [...base];
      v[i] += d;
      const xi = tensor(v, x.shape, { dtype: 'float64' });
      const a = [...args];
      a[argnum] = xi;
      const y = await f(...a).item();
      xi.dispose();
      return y;
    };
    fd.push(((await at(h)) - (await at(-h))) / (2 * h));
  }
  expectClose(ad, fd, { rtol: 1e-5, atol: 1e-7, why: 'central FD in float64, h=1e-6' }, label);
}

const lse = (r: number[]) => {
  const m = Math.max(...r);
  return m + Math.log(r.reduce((s, v) => s + Math.exp(v - m), 0));
};
const logSoftmaxRows = (x: number[][]) => x.map((r) => r.map((v) => v - lse(r)));

describe('classification losses', () => {
  const X = [[1, 2, 3], [1, 1, 1], [-2, 0.5, 4], [10, -10, 0]];
  const T = [2, 0, 1, 0];
  const W = [0.2, 0.3, 0.5];
  const lp = logSoftmaxRows(X);
  const nll = T.map((t, i) => -lp[i][t]);

  it('crossEntropy: mean/sum/none, class weights (weighted mean), ignoreIndex', async () => {
    const x = f64(X.flat(), [4, 3]);
    const t = i32(T);
    expect(await crossEntropy(x, t).item()).toBeCloseTo(nll.reduce((a, b) => a + b) / 4, 12);
    expect(await crossEntropy(x, t, { reduction: 'sum' }).item()).toBeCloseTo(nll.reduce((a, b) => a + b), 12);
    expectClose(await val(crossEntropy(x, t, { reduction: 'none' })), nll, TOL.arith, 'none');
    const wsum = T.reduce((s, c) => s + W[c], 0);
    const wl = T.reduce((s, c, i) => s + W[c] * nll[i], 0);
    expect(await crossEntropy(x, t, { weight: f64(W, [3]) }).item()).toBeCloseTo(wl / wsum, 12);
    // ignoreIndex (default −100): row 1 ignored, not counted.
    const ti = i32([2, -100, 1, 0]);
    expect(await crossEntropy(x, ti).item()).toBeCloseTo((nll[0] + nll[2] + nll[3]) / 3, 12);
    expect(await crossEntropy(x, i32([2, 7, 1, 0]), { ignoreIndex: 7 }).item()).toBeCloseTo((nll[0] + nll[2] + nll[3]) / 3, 12);
  });

  it('crossEntropy: label smoothing (PyTorch semantics, with and without weights) and soft targets', async () => {
    const x = f64(X.flat(), [4, 3]);
    const t = i32(T);
    const eps = 0.1;
    const C = 3;
    const smooth = lp.map((r) => -r.reduce((a, b) => a + b));
    const mean = (a: number[]) => a.reduce((s, v) => s + v) / a.length;
    expect(await crossEntropy(x, t, { labelSmoothing: eps }).item()).toBeCloseTo((1 - eps) * mean(nll) + (eps / C) * mean(smooth), 12);
    // Equivalent soft-target form (no weights): target (1−ε)·onehot + ε/C.
    const soft = T.map((c) => [0, 1, 2].map((k) => (k === c ? 1 - eps : 0) + eps / C)).flat();
    expect(await crossEntropy(x, f64(soft, [4, 3])).item()).toBeCloseTo((1 - eps) * mean(nll) + (eps / C) * mean(smooth), 12);
    // Weighted: nll part is the weighted mean; the smoothing part Σ_i Σ_c w_c(−logp_ic) / Σ_i w[t_i].
    const wsum = T.reduce((s, c) => s + W[c], 0);
    const wnll = T.reduce((s, c, i) => s + W[c] * nll[i], 0) / wsum;
    const wsmooth = lp.reduce((s, r) => s - r.reduce((a, v, c) => a + W[c] * v, 0), 0) / wsum;
    expect(await crossEntropy(x, t, { labelSmoothing: eps, weight: f64(W, [3]) }).item()).toBeCloseTo((1 - eps) * wnll + (eps / C) * wsmooth, 12);
    // 'none' with an ignored row gives 0 there.
    const none = await val(crossEntropy(x, i32([2, -100, 1, 0]), { labelSmoothing: eps, reduction: 'none' }));
    expect(none[1]).toBe(0);
    expect(none[0]).toBeCloseTo((1 - eps) * nll[0] + (eps / C) * smooth[0], 12);
  });

  it('crossEntropy is stable for huge logits and nllLoss matches the weighted definition', async () => {
    const big = f64([1000, -1000, 0, 0, 5000, 5000], [2, 3]);
    const l = await val(crossEntropy(big, i32([0, 2]), { reduction: 'none' }));
    expect(l[0]).toBeCloseTo(0, 12);
    expect(l[1]).toBeCloseTo(Math.log(2), 10);
    const lpT = f64(lp.flat(), [4, 3]);
    const wsum = T.reduce((s, c) => s + W[c], 0);
    expect(await nllLoss(lpT, i32(T), { weight: f64(W, [3]) }).item()).toBeCloseTo(T.reduce((s, c, i) => s + W[c] * nll[i], 0) / wsum, 12);
    expect(await nllLoss(lpT, i32(T), { reduction: 'sum' }).item()).toBeCloseTo(nll.reduce((a, b) => a + b), 12);
  });

  it('typed errors name the loss, the shapes and the expectation', () => {
    const x = f64(X.flat(), [4, 3]);
    expect(() => crossEntropy(x, i32([0, 1, 2]))).toThrow(ShapeError);
    expect(() => crossEntropy(x, i32([0, 1, 2]))).toThrow(/crossEntropy: target \[3\] must be \[N\] = \[4\]/);
    expect(() => crossEntropy(x, tensor([0, 1, 2, 0], [4], { dtype: 'float64' }))).toThrow(ShapeError);
    expect(() => nllLoss(x, tensor([0, 1, 2, 0], [4], { dtype: 'float64' }))).toThrow(DTypeError);
    expect(() => crossEntropy(x, i32(T), { weight: f64([1, 2], [2]) })).toThrow(/weight \[2\] must be \[C\] = \[3\]/);
    expect(() => crossEntropy(x, i32(T), { labelSmoothing: 1.5 })).toThrow(ArgumentError);
    expect(() => mseLoss(x, f64([1, 2], [2]))).toThrow(/mseLoss: input \[4,3\] and target \[2\]/);
  });

  it('gradients match central finite differences (float64)', async () => {
    const rng = new Rng(7);
    const x = f64(rand(rng, [4, 3], 'float64', { lo: -3, hi: 3 }).data, [4, 3]);
    const w = f64(W, [3]);
    const soft = f64([0.1, 0.2, 0.7, 1, 0, 0, 0.3, 0.3, 0.4, 0.5, 0.25, 0.25], [4, 3]);
    await checkGrad((a) => crossEntropy(a, i32([2, -100, 1, 0]), { weight: w, labelSmoothing: 0.2 }), [x], 0, 'CE weighted+smoothed');
    await checkGrad((a) => crossEntropy(a, soft, { reduction: 'sum' }), [x], 0, 'CE soft');
    await checkGrad((a) => nllLoss(a.logSoftmax(1), i32(T), { weight: w }), [x], 0, 'nll');
  });
});

describe('binary losses', () => {
  it('binaryCrossEntropy clamps log at −100 like PyTorch (finite at p = 0, 1)', async () => {
    const p = [0.2, 0.9, 0, 1, 0, 1, 0.5];
    const y = [0, 1, 0, 1, 1, 0, 0.3];
    const cl = (v: number) => Math.max(Math.log(v), -100);
    const want = p.map((pi, i) => -(y[i] * cl(pi) + (1 - y[i]) * cl(1 - pi)));
    expectClose(await val(binaryCrossEntropy(f64(p, [7]), f64(y, [7]), { reduction: 'none' })), want, TOL.arith, 'bce');
    expect(want[4]).toBe(100);
    const g = grads((a) => binaryCrossEntropy(a, f64(y, [7])), [0])(f64(p, [7]))[0];
    for (const v of await val(g)) expect(Number.isFinite(v)).toBe(true);
  });

  it('bceWithLogits is stable for |x| large, supports posWeight, and equals BCE(sigmoid(x))', async () => {
    const x = [-100, 0, 3, 50, -2];
    const y = [1, 0, 1, 0, 0.25];
    const sp = (v: number) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));
    const want = x.map((xi, i) => (1 - y[i]) * xi + sp(-xi));
    expectClose(await val(bceWithLogits(f64(x, [5]), f64(y, [5]), { reduction: 'none' })), want, TOL.arith, 'bceWithLogits');
    expect(want[0]).toBeCloseTo(100, 10);
    const pw = 3;
    const wantPw = x.map((xi, i) => (1 - y[i]) * xi + (1 + (pw - 1) * y[i]) * sp(-xi));
    expectClose(await val(bceWithLogits(f64(x, [5]), f64(y, [5]), { reduction: 'none', posWeight: f64([pw], [1]) })), wantPw, TOL.arith, 'posWeight');
    const xs = [-2, 0.3, 1.7];
    const ys = [0, 1, 1];
    const a = await bceWithLogits(f64(xs, [3]), f64(ys, [3])).item();
    const b = await binaryCrossEntropy(f64(xs, [3]).sigmoid(), f64(ys, [3])).item();
    expect(a).toBeCloseTo(b, 12);
  });

  it('gradients match central finite differences (float64)', async () => {
    const y = f64([0, 1, 0.3, 1], [4]);
    await checkGrad((p) => binaryCrossEntropy(p, y, { weight: f64([1, 2, 0.5, 1], [4]) }), [f64([0.2, 0.7, 0.5, 0.9], [4])], 0, 'bce');
    await checkGrad((x) => bceWithLogits(x, y, { posWeight: f64([2.5], [1]), reduction: 'sum' }), [f64([-3, 0.4, 2, 7], [4])], 0, 'bceWithLogits');
  });
});

describe('regression and Gaussian losses', () => {
  const mu = [0.5, -1, 2, 0];
  const lv = [0, 1.5, -2, 0.3];
  const y = [1, -1, 1.5, -0.7];

  it('mse / l1 values', async () => {
    expect(await mseLoss(f64(mu, [4]), f64(y, [4])).item()).toBeCloseTo(mu.reduce((s, m, i) => s + (m - y[i]) ** 2, 0) / 4, 12);
    expect(await l1Loss(f64(mu, [4]), f64(y, [4]), { reduction: 'sum' }).item()).toBeCloseTo(mu.reduce((s, m, i) => s + Math.abs(m - y[i]), 0), 12);
  });

  it('gaussianNllLoss = mean(½·logVar + (y−μ)²/(2·exp(logVar))) (+½log2π with full)', async () => {
    const per = mu.map((m, i) => 0.5 * lv[i] + (y[i] - m) ** 2 / (2 * Math.exp(lv[i])));
    const mean = per.reduce((a, b) => a + b) / 4;
    expect(await gaussianNllLoss(f64(mu, [4]), f64(lv, [4]), f64(y, [4])).item()).toBeCloseTo(mean, 12);
    expect(await gaussianNllLoss(f64(mu, [4]), f64(lv, [4]), f64(y, [4]), { full: true }).item()).toBeCloseTo(mean + 0.5 * Math.log(2 * Math.PI), 12);
    // Extreme log-variances stay finite.
    const ext = await val(gaussianNllLoss(f64([0, 0], [2]), f64([80, -80], [2]), f64([1, 0], [2]), { reduction: 'none' }));
    expect(ext.every(Number.isFinite)).toBe(true);
  });

  it('KL divergences: to N(0, I) (VAE) and between two diagonal Gaussians', async () => {
    const M = [0.5, -1, 2, 0, 0.1, 0.2];
    const L = [0, 1.5, -2, 0.3, -0.5, 0.7];
    const perRow = [0, 1].map((r) => -0.5 * [0, 1, 2].reduce((s, j) => { const m = M[r * 3 + j]; const l = L[r * 3 + j]; return s + 1 + l - m * m - Math.exp(l); }, 0));
    expectClose(await val(klDivDiagonalGaussians(f64(M, [2, 3]), f64(L, [2, 3]), { reduction: 'none' })), perRow, TOL.arith, 'kl none');
    expect(await klDivDiagonalGaussians(f64(M, [2, 3]), f64(L, [2, 3])).item()).toBeCloseTo((perRow[0] + perRow[1]) / 2, 12);
    expect(await klDivDiagonalGaussians(f64([0, 0], [1, 2]), f64([0, 0], [1, 2])).item()).toBe(0);
    // KL(N1‖N2) reduces to the first when N2 = N(0, I), and is 0 for equal distributions.
    const z = f64([0, 0, 0, 0, 0, 0], [2, 3]);
    expect(await klDivBetweenDiagonalGaussians(f64(M, [2, 3]), f64(L, [2, 3]), z, z).item()).toBeCloseTo((perRow[0] + perRow[1]) / 2, 12);
    expect(await klDivBetweenDiagonalGaussians(f64(M, [2, 3]), f64(L, [2, 3]), f64(M, [2, 3]), f64(L, [2, 3]), { reduction: 'sum' }).item()).toBeCloseTo(0, 12);
    // 1-D case by hand: N(1, e^0.5) vs N(-1, e^-0.3).
    const want = 0.5 * (-0.3 - 0.5 + (Math.exp(0.5) + 4) / Math.exp(-0.3) - 1);
    expect(await klDivBetweenDiagonalGaussians(f64([1], [1]), f64([0.5], [1]), f64([-1], [1]), f64([-0.3], [1])).item()).toBeCloseTo(want, 12);
  });

  it('gradients match central finite differences (float64)', async () => {
    const m = f64(mu, [2, 2]);
    const l = f64(lv, [2, 2]);
    const t = f64(y, [2, 2]);
    await checkGrad((a, b) => gaussianNllLoss(a, b, t), [m, l], 0, 'gnll dmu');
    await checkGrad((a, b) => gaussianNllLoss(a, b, t), [m, l], 1, 'gnll dlogvar');
    await checkGrad((a, b) => klDivDiagonalGaussians(a, b), [m, l], 0, 'kl dmu');
    await checkGrad((a, b) => klDivDiagonalGaussians(a, b), [m, l], 1, 'kl dlogvar');
    const m2 = f64([0.3, -0.2, 1, 0.4], [2, 2]);
    const l2 = f64([0.1, -0.4, 0.2, 0.9], [2, 2]);
    for (const k of [0, 1, 2, 3]) await checkGrad((a, b, c, d) => klDivBetweenDiagonalGaussians(a, b, c, d), [m, l, m2, l2], k, `kl2 arg${k}`);
    await checkGrad((a) => mseLoss(a, t), [m], 0, 'mse');
  });
});

describe('losses on WebGPU agree with the CPU', () => {
  it('crossEntropy (weighted, smoothed), bceWithLogits, gaussianNll, KL', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(3);
    const x = rand(rng, [5, 4], 'float32', { lo: -4, hi: 4 });
    const t = host([0, 3, 1, 2, 3], [5], 'int32');
    const w = host([0.1, 0.4, 0.2, 0.3], [4]);
    const tol = TOL.compositeReduction(20, 4);
    await compareBackends(cpu, gpu, (a, b, c) => crossEntropy(a, b, { weight: c, labelSmoothing: 0.1 }), [x, t, w], tol, 'CE');
    const y = rand(rng, [5, 4], 'float32', { lo: 0, hi: 1 });
    await compareBackends(cpu, gpu, (a, b) => bceWithLogits(a, b), [x, y], tol, 'bceWithLogits');
    await compareBackends(cpu, gpu, (a, b, c) => binaryCrossEntropy(a.sigmoid(), c, { reduction: 'none' }), [x, y, y], TOL.transcendental, 'bce');
    await compareBackends(cpu, gpu, (a, b, c) => gaussianNllLoss(a, b, c), [x, y, x], tol, 'gnll');
    await compareBackends(cpu, gpu, (a, b) => klDivDiagonalGaussians(a, b, { reduction: 'none' }), [y, x], tol, 'kl');
    setBackend(cpu);
  });

  it('no tensors leak from a loss inside tidy', async () => {
    setBackend(cpu);
    const { memory } = await import('../node.js');
    const x = f64([1, 2, 3, 4, 5, 6], [2, 3]);
    const t = i32([0, 2]);
    const m0 = memory().liveTensors;
    for (let i = 0; i < 5; i++) tidy(() => { grads((a) => crossEntropy(a, t, { labelSmoothing: 0.1 }), [0])(x); });
    const l = crossEntropy(x, t, { labelSmoothing: 0.1 });
    l.dispose();
    expect(memory().liveTensors).toBe(m0);
  });
});
