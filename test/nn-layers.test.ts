import { describe, expect, it } from 'vitest';
import {
  type Backend, type Tensor, ShapeError, ArgumentError, Linear, Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, Dropout, BatchNorm1d, BatchNorm2d,
  Sequential, ReLU, GELU, Tanh, Sigmoid, Softplus, LeakyReLU, enableMCDropout, manualSeed, setBackend, tensor, grads, tidy, Module,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { Rng, TOL, bitsEqual, expectClose, rand } from './helpers/compare.js';

setBackend(cpu);
const val = async (t: Tensor) => Array.from(await t.data());

/** Builds the same model (same seed) on both backends, runs the same input, returns both outputs. */
async function onBoth(gpu: Backend, build: () => Module<[Tensor], Tensor>, shape: number[], seed = 1, train = false) {
  const x = rand(new Rng(seed), shape, 'float32');
  const out: Float32Array[] = [];
  const params: Float32Array[][] = [];
  for (const be of [cpu, gpu]) {
    setBackend(be);
    manualSeed(seed);
    const m = build().train(train);
    params.push(await Promise.all(m.parameters().map(async (p) => (await p.data()) as Float32Array)));
    const y = tidy(() => m.forward(tensor(x.data, x.shape)));
    out.push((await y.data()) as Float32Array);
    y.dispose();
    m.dispose();
  }
  setBackend(cpu);
  return { cpu: out[0], gpu: out[1], params };
}

describe('initialisation (PyTorch rules, Philox, identical on both backends)', () => {
  it('Linear: weight and bias in ±1/√in with uniform moments; reproducible with manualSeed', async () => {
    manualSeed(0);
    const l = new Linear(64, 48);
    const w = await val(l.weight);
    const b = await val(l.bias!);
    const bound = 1 / 8;
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...b.map(Math.abs))).toBeLessThanOrEqual(bound);
    const mean = w.reduce((s, v) => s + v, 0) / w.length;
    const vr = w.reduce((s, v) => s + v * v, 0) / w.length;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(vr).toBeGreaterThan((bound * bound) / 3 * 0.9);
    expect(vr).toBeLessThan((bound * bound) / 3 * 1.1);
    manualSeed(0);
    const l2 = new Linear(64, 48);
    expect(await val(l2.weight)).toEqual(w);
    expect(await val(new Linear(64, 48).weight)).not.toEqual(w);
  });

  it('Conv2d uses fan_in = in/groups·kh·kw, ConvTranspose2d fan_in = out/groups·kh·kw (torch)', async () => {
    manualSeed(3);
    const c = new Conv2d(4, 6, 3, { groups: 2 });
    expect(c.weight.shape).toEqual([6, 2, 3, 3]);
    const bc = 1 / Math.sqrt(2 * 9);
    const wc = await val(c.weight);
    expect(Math.max(...wc.map(Math.abs))).toBeLessThanOrEqual(bc);
    expect(Math.max(...wc.map(Math.abs))).toBeGreaterThan(bc * 0.8);
    const t = new ConvTranspose2d(4, 6, [2, 3]);
    expect(t.weight.shape).toEqual([4, 6, 2, 3]);
    const bt = 1 / Math.sqrt(6 * 6);
    const wt = await val(t.weight);
    expect(Math.max(...wt.map(Math.abs))).toBeLessThanOrEqual(bt);
    expect(Math.max(...wt.map(Math.abs))).toBeGreaterThan(bt * 0.8);
    expect(Math.max(...(await val(t.bias!)).map(Math.abs))).toBeLessThanOrEqual(bt);
    expect(() => new Conv2d(3, 4, 3, { groups: 2 })).toThrow(ArgumentError);
  });

  it('the same seed gives bit-identical parameters on CPU and WebGPU', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const r = await onBoth(gpu, () => new Sequential(new Linear(5, 7), new Conv2dLike()), [2, 5]);
    r.params[0].forEach((p, i) => expect(bitsEqual(p, r.params[1][i])).toBe(true));
  });
});

class Conv2dLike extends Module<[Tensor], Tensor> {
  c = new Conv2d(1, 2, 2);
  forward(x: Tensor) { return x; }
}

describe('layers: values and CPU/WebGPU agreement', () => {
  it('Linear = x·Wᵀ + b (any leading dims, optional bias) with a typed shape error', async () => {
    manualSeed(2);
    const l = new Linear(3, 2);
    const W = await val(l.weight);
    const B = await val(l.bias!);
    const X = [1, 2, 3, -1, 0, 0.5, 2, 2, 2, 0, 1, 0];
    const want: number[] = [];
    for (let i = 0; i < 4; i++) for (let o = 0; o < 2; o++) want.push(B[o] + [0, 1, 2].reduce((s, k) => s + X[i * 3 + k] * W[o * 3 + k], 0));
    const y = l.forward(tensor(X, [2, 2, 3]));
    expect(y.shape).toEqual([2, 2, 2]);
    expectClose(await val(y), want, TOL.matmul(3), 'linear');
    const nb = new Linear(3, 2, { bias: false });
    expect(nb.bias).toBeNull();
    expect(nb.forward(tensor([1, 2, 3])).shape).toEqual([2]);
    expect(() => l.forward(tensor([1, 2], [1, 2]))).toThrow(ShapeError);
    expect(() => l.forward(tensor([1, 2], [1, 2]))).toThrow(/Linear\(3→2\): expected input \[\.\.\., 3\], got \[1,2\]/);
  });

  it('activation modules', async () => {
    const x = tensor([-2, -0.5, 0, 1.5]);
    const xs = [-2, -0.5, 0, 1.5];
    expectClose(await val(new LeakyReLU(0.2).forward(x)), xs.map((v) => (v > 0 ? v : 0.2 * v)), TOL.arith, 'leaky');
    expectClose(await val(new Softplus(2).forward(x)), xs.map((v) => Math.log1p(Math.exp(2 * v)) / 2), TOL.transcendental, 'softplus beta');
    expectClose(await val(new Sigmoid().forward(x)), xs.map((v) => 1 / (1 + Math.exp(-v))), TOL.transcendental, 'sigmoid');
    expectClose(await val(new Tanh().forward(x)), xs.map(Math.tanh), TOL.transcendental, 'tanh');
    expect(await val(new ReLU().forward(x))).toEqual([0, 0, 0, 1.5]);
    expect(new Flatten().forward(tensor(new Array(24).fill(1), [2, 3, 4])).shape).toEqual([2, 12]);
  });

  it('MLP and CNN stacks agree across backends', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const mlp = await onBoth(gpu, () => new Sequential(new Linear(6, 9), new GELU(), new Linear(9, 4), new Tanh()), [5, 6]);
    expectClose(mlp.gpu, mlp.cpu, TOL.compositeReduction(9, 2), 'mlp');
    const cnn = await onBoth(gpu, () => new Sequential(
      new Conv2d(2, 4, 3, { padding: 1 }), new BatchNorm2d(4), new ReLU(), new MaxPool2d(2),
      new Conv2d(4, 4, 3, { padding: 'same', groups: 2 }), new AvgPool2d(2, { stride: 1 }),
      new ConvTranspose2d(4, 3, 2, { stride: 2 }), new AdaptiveAvgPool2d(2), new Flatten(), new Linear(12, 3),
    ), [2, 2, 6, 6], 4, true);
    expectClose(cnn.gpu, cnn.cpu, { rtol: 1e-4, atol: 1e-5, why: 'f32 conv stack with batch statistics' }, 'cnn');
  });
});

describe('Dropout', () => {
  it('drops ~p and scales by 1/(1−p) in training, is the identity in eval, MC-dropout stays stochastic', async () => {
    manualSeed(11);
    const d = new Dropout(0.25);
    const x = tensor(new Array(4000).fill(1));
    const y = await val(d.forward(x));
    const zeros = y.filter((v) => v === 0).length;
    expect(zeros / 4000).toBeGreaterThan(0.22);
    expect(zeros / 4000).toBeLessThan(0.28);
    expect(y.filter((v) => v !== 0).every((v) => Math.abs(v - 4 / 3) < 1e-6)).toBe(true);
    const y2 = await val(d.forward(x));
    expect(y2).not.toEqual(y);
    d.eval();
    expect(d.forward(x)).toBe(x);
    const model = new Sequential(new Linear(2, 2), new Dropout(0.5), new Sequential(new Dropout(0.1)));
    model.eval();
    expect(enableMCDropout(model)).toBe(2);
    expect((model.at(1) as Dropout).active).toBe(true);
    expect(await val(model.at(1).forward(x))).toContain(0);
    enableMCDropout(model, false);
    expect(model.at(1).forward(x)).toBe(x);
    manualSeed(11);
    expect(await val(new Dropout(0.25).forward(x))).toEqual(y);
    expect(() => new Dropout(1)).toThrow(ArgumentError);
  });

  it('masks are identical on CPU and WebGPU for the same seed', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const r = await onBoth(gpu, () => new Dropout(0.5), [8, 37], 21, true);
    expect(bitsEqual(r.cpu, r.gpu)).toBe(true);
  });
});

describe('BatchNorm', () => {
  const X = [1, 2, 0, -1, 3, 5, 2, 2, -4, 0.5, 1, 7];

  it('training: batch statistics, running mean / unbiased running var with momentum 0.1; eval: running stats', async () => {
    const bn = new BatchNorm1d(3);
    const x = tensor(X, [4, 3]);
    const y = await val(bn.forward(x));
    const cols = [0, 1, 2].map((c) => [0, 1, 2, 3].map((i) => X[i * 3 + c]));
    const mu = cols.map((c) => c.reduce((a, b) => a + b) / 4);
    const vb = cols.map((c, j) => c.reduce((a, b) => a + (b - mu[j]) ** 2, 0) / 4);
    const want = X.map((v, i) => (v - mu[i % 3]) / Math.sqrt(vb[i % 3] + 1e-5));
    expectClose(y, want, { rtol: 1e-5, atol: 1e-5, why: 'f32 normalisation' }, 'bn train');
    expectClose(await val(bn.runningMean!), mu.map((m) => 0.1 * m), TOL.reduction(4, 8), 'running mean');
    expectClose(await val(bn.runningVar!), vb.map((v) => 0.9 + 0.1 * (v * 4) / 3), { rtol: 1e-5, atol: 1e-6, why: 'f32' }, 'running var');
    expect(await bn.numBatchesTracked!.item()).toBe(1);
    bn.eval();
    const rm = mu.map((m) => 0.1 * m);
    const rv = vb.map((v) => 0.9 + 0.1 * (v * 4) / 3);
    expectClose(await val(bn.forward(x)), X.map((v, i) => (v - rm[i % 3]) / Math.sqrt(rv[i % 3] + 1e-5)), { rtol: 1e-5, atol: 1e-5, why: 'f32' }, 'bn eval');
    expect(await bn.numBatchesTracked!.item()).toBe(1);
    bn.train();
    expect(() => bn.forward(tensor([1, 2, 3], [1, 3]))).toThrow(/more than 1 value per channel/);
    expect(() => bn.forward(tensor(X, [3, 4]))).toThrow(/BatchNorm1d\(3\): expected input of rank 2 or 3 with 3 channels in dim 1, got \[3,4\]/);
    expect(() => new BatchNorm2d(3).forward(x)).toThrow(ShapeError);
  });

  it('gradient (training mode, affine) matches central finite differences (float64)', async () => {
    manualSeed(1);
    const bn = new BatchNorm1d(2, { dtype: 'float64' });
    const rng = new Rng(5);
    const x = tensor(rand(rng, [3, 2, 2], 'float64').data, [3, 2, 2], { dtype: 'float64' });
    const r = tensor(rand(rng, [3, 2, 2], 'float64').data, [3, 2, 2], { dtype: 'float64' });
    const f = (a: Tensor) => bn.forward(a).mul(r).sum();
    const [g] = grads(f, [0])(x);
    const ad = await val(g);
    const base = await val(x);
    const h = 1e-6;
    const fd: number[] = [];
    for (let i = 0; i < base.length; i++) {
      const at = async (d: number) => { const v = [...base]; v[i] += d; return f(tensor(v, [3, 2, 2], { dtype: 'float64' })).item(); };
      fd.push(((await at(h)) - (await at(-h))) / (2 * h));
    }
    expectClose(ad, fd, { rtol: 1e-5, atol: 1e-7, why: 'central FD float64' }, 'bn grad');
  });

  it('agrees across backends in train and eval mode', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const tr = await onBoth(gpu, () => new BatchNorm2d(3), [4, 3, 3, 2], 6, true);
    expectClose(tr.gpu, tr.cpu, { rtol: 1e-4, atol: 1e-5, why: 'f32 batch statistics' }, 'bn2d train');
    const ev = await onBoth(gpu, () => new BatchNorm2d(3), [4, 3, 3, 2], 6, false);
    expectClose(ev.gpu, ev.cpu, TOL.divSqrt, 'bn2d eval');
  });
});
