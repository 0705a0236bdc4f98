/**
 * Generative guards (nn/models/vae.ts, nn/models/wgan.ts, uncertainty/generative-guards.ts):
 * the VAE loss, the WGAN-GP critic / generator / inverter losses and the gradient penalty on tiny
 * fixed nets against hand values (float64, CPU); the penalty's gradient w.r.t. the critic's
 * weights vs finite differences (double backward); the δz search against a host re-run of the same
 * Philox candidates and against a known decision boundary; the conditional classifier's
 * accept / reject / not-calibrated behaviour; typed errors; no leaked tensors.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type Tensor, ArgumentError, ConditionalClassifier, DeltaZDetector, NotFittedError, NotReliableClassification, ShapeError, VAE,
  VaeLossDetector, WganCritic, WganGenerator, WganInverter, blocksFor, calibrateThreshold, conditionalClassifier, conv2d, criticLoss,
  fromHost, generatorLoss, gradientPenalty, guard, inverterLoss, leakyRelu, manualSeed, matmul, memory, mul, parameter, randomNormal,
  randomUniform, scoreAll, setBackend, sum, tanh, tensor, tidy, vaeLoss,
} from '../node.js';
import { TOL, compareBackends, host } from './helpers/compare.js';
import { gradcheck } from './helpers/gradcheck.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

async function vals(t: Tensor): Promise<number[]> {
  const d = Array.from(await t.data());
  t.dispose();
  return d;
}
const f64 = (data: number[], shape: number[]) => fromHost(data, shape, 'float64', cpu);
const softplus = (v: number) => Math.log1p(Math.exp(v));
beforeAll(() => setBackend(cpu));

describe('VAE and vaeLoss', () => {
  // inputDim 2, hidden 2, latent 1, fixed weights
  function tinyVae(): VAE {
    const v = new VAE({ inputDim: 2, hidden: 2, latent: 1 });
    const set = (l: { weight: Tensor; bias: Tensor | null }, w: number[], ws: number[], b: number[]) => {
      l.weight = parameter(f64(w, ws));
      l.bias = parameter(f64(b, [b.length]));
    };
    set(v.fc1, [0.5, -0.4, 0.3, 0.8], [2, 2], [0.1, -0.2]);
    set(v.fcMu, [0.7, -0.6], [1, 2], [0.05]);
    set(v.fcLogVar, [-0.3, 0.2], [1, 2], [-0.5]);
    set(v.fc3, [1.2, -0.9], [2, 1], [0.2, 0.1]);
    set(v.fc4, [0.6, -0.5, -0.7, 0.4], [2, 2], [0.0, 0.3]);
    return v;
  }
  function handLoss(x: number[]): number {
    const relu = (a: number) => Math.max(a, 0);
    const h = [relu(0.5 * x[0] - 0.4 * x[1] + 0.1), relu(0.3 * x[0] + 0.8 * x[1] - 0.2)];
    const mu = 0.7 * h[0] - 0.6 * h[1] + 0.05;
    const lv = -0.3 * h[0] + 0.2 * h[1] - 0.5;
    const g = [relu(1.2 * mu + 0.2), relu(-0.9 * mu + 0.1)];
    const logits = [0.6 * g[0] - 0.5 * g[1], -0.7 * g[0] + 0.4 * g[1] + 0.3];
    const bce = logits.reduce((s, l, d) => s + (1 - x[d]) * l + softplus(-l), 0);
    const kl = -0.5 * (1 + lv - mu * mu - Math.exp(lv));
    return bce + kl;
  }

  it('the per-sample loss (z = μ) equals BCE + KL by hand; reductions', async () => {
    const v = tinyVae();
    const xs = [[0.2, 0.9], [1, 0], [0.5, 0.5]];
    const x = f64(xs.flat(), [3, 2]);
    const per = await vals(tidy(() => vaeLoss(v.forward(x, { sample: false }), x, { reduction: 'none' })));
    xs.forEach((r, i) => expect(per[i]).toBeCloseTo(handLoss(r), 12));
    const m = await vals(tidy(() => vaeLoss(v.forward(x, { sample: false }), x)));
    expect(m[0]).toBeCloseTo(per.reduce((a, b) => a + b) / 3, 12);
    const s = await vals(tidy(() => vaeLoss(v.forward(x, { sample: false }), x, { reduction: 'sum' })));
    expect(s[0]).toBeCloseTo(per.reduce((a, b) => a + b), 12);
    // the detector is the same per-sample loss
    const d = new VaeLossDetector(v);
    expect(Array.from(await scoreAll(d, x))).toEqual(per);
    x.dispose();
  });

  it('images are flattened; sampling changes the pass; bad input is a typed error', async () => {
    manualSeed(3);
    const v = new VAE({ hidden: 8, latent: 3 });
    const x = tensor(Array.from({ length: 2 * 784 }, (_, i) => (i % 7) / 7), [2, 1, 28, 28], { backend: cpu });
    const det = tidy(() => v.forward(x, { sample: false }).logits);
    const det2 = tidy(() => v.forward(x, { sample: false }).logits);
    const smp = tidy(() => v.forward(x, { sample: true }).logits);
    expect(det.shape).toEqual([2, 784]);
    expect(await det.data()).toEqual(await det2.data());
    expect(await smp.data()).not.toEqual(await det.data());
    for (const t of [det, det2, smp]) t.dispose();
    const bad = tensor([1, 2, 3], [1, 3], { backend: cpu });
    expect(() => new VaeLossDetector(v).score(bad)).toThrow(ShapeError);
    expect(() => new VaeLossDetector(v).score(bad)).toThrow(/VaeLossDetector\.score.*784.*\[1, ?3\]/);
    expect(() => v.encode(bad)).toThrow(/VAE\.encode/);
    expect(() => new VAE({ latent: 0 })).toThrow(ArgumentError);
    expect(() => new VaeLossDetector(v).predict(x)).toThrow(ArgumentError);
    for (const t of [x, bad]) t.dispose();
    v.dispose();
  });
});

describe('WGAN-GP losses', () => {
  // critic D(x) = Σ_j v_j tanh((W x)_j) on x ∈ R², W [3, 2], v [3]
  const W = [0.8, -0.5, 0.3, 0.9, -0.6, 0.4];
  const V = [1.1, -0.7, 0.5];
  const critic = (w: Tensor, v: Tensor) => (x: Tensor) => sum(mul(tanh(matmul(x, w, { transposeB: true })), v), 1);
  function handGradNorm(x: number[]): number {
    // ∇_x D = Wᵀ (v ⊙ (1 − tanh²(W x)))
    const a = [0, 1, 2].map((j) => Math.tanh(W[2 * j] * x[0] + W[2 * j + 1] * x[1]));
    const c = [0, 1, 2].map((j) => V[j] * (1 - a[j] * a[j]));
    const g = [0, 1].map((i) => c.reduce((s, cj, j) => s + cj * W[2 * j + i], 0));
    return Math.hypot(g[0], g[1]);
  }
  const real = [[0.3, -0.2], [1.0, 0.5]];
  const fake = [[-0.4, 0.7], [0.2, 0.1]];
  const eps = [0.25, 0.8];

  it('gradientPenalty = mean (‖∇D(x̂)‖ − 1)² by hand', async () => {
    const [w, v, r, f, e] = [f64(W, [3, 2]), f64(V, [3]), f64(real.flat(), [2, 2]), f64(fake.flat(), [2, 2]), f64(eps, [2])];
    const gp = (await vals(tidy(() => gradientPenalty(critic(w, v), r, f, { eps: e }))))[0];
    const hand = [0, 1].reduce((s, b) => {
      const xh = [0, 1].map((i) => eps[b] * real[b][i] + (1 - eps[b]) * fake[b][i]);
      return s + (handGradNorm(xh) - 1) ** 2;
    }, 0) / 2;
    expect(gp).toBeCloseTo(hand, 10);
    // critic loss = E D(fake) − E D(real) + λ GP
    const D = (x: number[]) => V.reduce((s, vj, j) => s + vj * Math.tanh(W[2 * j] * x[0] + W[2 * j + 1] * x[1]), 0);
    const cl = (await vals(tidy(() => criticLoss(critic(w, v), r, f, { eps: e, lambda: 10 }))))[0];
    expect(cl).toBeCloseTo((D(fake[0]) + D(fake[1])) / 2 - (D(real[0]) + D(real[1])) / 2 + 10 * hand, 9);
    const gl = (await vals(tidy(() => generatorLoss(critic(w, v), f))))[0];
    expect(gl).toBeCloseTo(-(D(fake[0]) + D(fake[1])) / 2, 12);
    for (const t of [w, v, r, f, e]) t.dispose();
  });

  it('the gradient penalty differentiates w.r.t. the critic weights (double backward) as finite differences', async () => {
    const r = f64(real.flat(), [2, 2]);
    const f = f64(fake.flat(), [2, 2]);
    const e = f64(eps, [2]);
    await gradcheck((w, v) => gradientPenalty(critic(w, v), r, f, { eps: e }), [host(W, [3, 2], 'float64'), host(V, [3], 'float64')], { label: 'GP(tanh critic)' });
    // a conv critic (the layers WganCritic uses: stride-2 conv + LeakyReLU) on 6×6 images
    const conv = (k: Tensor, v: Tensor) => (x: Tensor) => sum(mul(leakyRelu(conv2d(x, k, null, { stride: 2, padding: 1 }), 0.2), v), [1, 2, 3]);
    const rc = f64(Array.from({ length: 72 }, (_, i) => Math.sin(i * 0.7)), [2, 1, 6, 6]);
    const fc = f64(Array.from({ length: 72 }, (_, i) => Math.cos(i * 0.3)), [2, 1, 6, 6]);
    const kern = Array.from({ length: 2 * 9 }, (_, i) => Math.sin(1 + i * 1.3) * 0.6);
    const vv = Array.from({ length: 2 * 9 }, (_, i) => Math.cos(i * 0.9));
    await gradcheck((k, v) => gradientPenalty(conv(k, v), rc, fc, { eps: e }), [host(kern, [2, 1, 3, 3], 'float64'), host(vv, [2, 3, 3], 'float64')], { label: 'GP(conv critic)' });
    for (const t of [r, f, e, rc, fc]) t.dispose();
  });

  it('inverterLoss = mse(G(I(x)), x) + λ·mse(I(G(z)), z) by hand (linear G and I)', async () => {
    // G(z) = z·A (d=1 → D=2), I(x) = x·b (D=2 → d=1)
    const A = f64([0.5, -1.5], [1, 2]);
    const b = f64([0.4, 0.3], [2, 1]);
    const G = (z: Tensor) => matmul(z, A);
    const I = (x: Tensor) => matmul(x, b);
    const xs = [[0.2, 0.6], [1.0, -0.4]];
    const zs = [0.7, -1.2];
    const x = f64(xs.flat(), [2, 2]);
    const z = f64(zs, [2, 1]);
    const l = (await vals(tidy(() => inverterLoss(G, I, x, z, { lambda: 0.3 }))))[0];
    let rec = 0;
    for (const r of xs) {
      const zi = 0.4 * r[0] + 0.3 * r[1];
      rec += (0.5 * zi - r[0]) ** 2 + (-1.5 * zi - r[1]) ** 2;
    }
    let lat = 0;
    for (const zz of zs) lat += (zz - (0.4 * 0.5 * zz + 0.3 * -1.5 * zz)) ** 2;
    expect(l).toBeCloseTo(rec / 4 + 0.3 * lat / 2, 12);
    for (const t of [A, b, x, z]) t.dispose();
    expect(() => inverterLoss(G, I, x, z, { lambda: -1 })).toThrow(ArgumentError);
  });

  it('the networks: shapes, a penalty that reaches every critic weight, typed errors', async () => {
    manualSeed(5);
    const G = new WganGenerator({ latent: 8, width: 2 });
    const D = new WganCritic({ width: 2 });
    const I = new WganInverter({ latent: 8, width: 2 });
    const z = tensor(Array.from({ length: 3 * 8 }, (_, i) => Math.sin(i)), [3, 8], { backend: cpu });
    const before = memory().liveTensors;
    const img = tidy(() => G.forward(z));
    expect(img.shape).toEqual([3, 1, 28, 28]);
    const px = await img.data();
    expect(px.every((p) => p > 0 && p < 1)).toBe(true);
    const [dOut, iOut] = tidy(() => [D.forward(img), I.forward(img)]);
    expect(dOut.shape).toEqual([3]);
    expect(iOut.shape).toEqual([3, 8]);
    dOut.dispose();
    iOut.dispose();
    tidy(() => criticLoss((x) => D.forward(x), img, img.mul(0.5)).backward());
    for (const [name, p] of D.namedParameters()) {
      expect(p.grad, name).toBeTruthy();
      // the output bias cancels in E D(fake) − E D(real) and does not move ∇ₓD: exactly zero
      expect((await p.grad!.data()).some((g) => g !== 0), name).toBe(name !== 'fc.bias');
    }
    D.zeroGrad();
    img.dispose();
    expect(memory().liveTensors).toBe(before);
    expect(() => G.forward(tensor([1, 2], [1, 2], { backend: cpu }))).toThrow(/WganGenerator.*\[B, 8\]/);
    expect(() => D.forward(tensor([1, 2, 3, 4], [1, 1, 2, 2], { backend: cpu }))).toThrow(ShapeError);
    expect(() => I.forward(tensor([1, 2, 3, 4], [1, 1, 2, 2], { backend: cpu }))).toThrow(/WganInverter.*\[B, 1, 28, 28\]/);
    expect(() => gradientPenalty((x) => D.forward(x), z, tensor([1], [1, 1], { backend: cpu }))).toThrow(ShapeError);
    z.dispose();
  });
});

describe('δz search', () => {
  // latent = input space R²; G = I = identity; f(x) = logits [x₀, −x₀] (class 0 iff x₀ > 0)
  const id = (t: Tensor) => t;
  const f = (x: Tensor) => matmul(x, tensor([1, -1, 0, 0], [2, 2], { backend: x.backend }));

  it('equals a host re-run of the same Philox candidates', async () => {
    const B = 3;
    const K = 5;
    const d = 2;
    const T = 6;
    const dr = 0.2;
    const seed = 11;
    const xs = [[0.3, 0.1], [-0.5, 0.4], [0.9, -0.9]];
    const det = new DeltaZDetector(id, id, f, { candidates: K, steps: T, radiusStep: dr, seed });
    const x = tensor(xs.flat(), [B, d], { backend: cpu });
    const got = await vals(det.deltaZ(x));
    const stride = blocksFor(B * K * d) + blocksFor(B * K);
    const want = xs.map(() => Infinity);
    for (let t = 0; t < T; t++) {
      const u = randomNormal(B * K * d, seed, t * stride);
      const rho = randomUniform(B * K, seed, t * stride + blocksFor(B * K * d), t * dr, (t + 1) * dr);
      for (let b = 0; b < B; b++) {
        const y = xs[b][0] > 0 ? 0 : 1;
        for (let k = 0; k < K; k++) {
          const o = (b * K + k) * d;
          const n = Math.hypot(u[o], u[o + 1]);
          const z0 = xs[b][0] + (u[o] / n) * rho[b * K + k];
          const yc = z0 > 0 ? 0 : 1; // argmax of [z₀, −z₀] (ties → class 0)
          if (yc !== y) want[b] = Math.min(want[b], rho[b * K + k]);
        }
      }
    }
    expect(got.length).toBe(B);
    got.forEach((g, b) => (Number.isFinite(want[b]) ? expect(g).toBeCloseTo(want[b], 6) : expect(g).toBe(Infinity)));
    // score = −δz; predict carries f(x)
    expect(await vals(det.score(x))).toEqual(got.map((g) => -g));
    const p = det.predict(x);
    expect(await vals(p.prediction)).toEqual([0, 1, 0]);
    expect(await vals(p.score)).toEqual(got.map((g) => -g));
    x.dispose();
  });

  it('brackets the distance to a known decision boundary; no flip → +∞; no leaks; typed errors', async () => {
    const r0 = [0.5, 1.05, 0.12];
    const x = tensor(r0.flatMap((r) => [r, 0]), [3, 2], { backend: cpu });
    const dr = 0.1;
    const det = new DeltaZDetector(id, id, f, { candidates: 256, steps: 20, radiusStep: dr, seed: 2 });
    const before = memory().liveTensors;
    const dz = await vals(det.deltaZ(x));
    expect(memory().liveTensors).toBe(before);
    dz.forEach((v, i) => {
      expect(v).toBeGreaterThanOrEqual(r0[i] - 1e-6); // nothing closer than the boundary can flip
      expect(v).toBeLessThanOrEqual(r0[i] + 2 * dr);
    });
    const constant = new DeltaZDetector(id, id, (t: Tensor) => mul(t, 0).add(tensor([1, 0], [2], { backend: t.backend })), { steps: 3 });
    expect(await vals(constant.deltaZ(x))).toEqual([Infinity, Infinity, Infinity]);
    expect(() => det.deltaZ(tensor([1, 2], [2], { backend: cpu }))).toThrow(/DeltaZDetector\.deltaZ.*got \[2\]/);
    expect(() => new DeltaZDetector(id, id, f, { radiusStep: 0 })).toThrow(ArgumentError);
    expect(() => new DeltaZDetector(id, id, f, { candidates: 1.5 })).toThrow(ArgumentError);
    x.dispose();
  });
});

describe('conditionalClassifier', () => {
  // score = x₀ (higher = less reliable), classifier logits = x (2 classes)
  const det = { name: 'first', score: (x: Tensor) => x.slice([0, 0], [-1, 1]).reshape([x.shape[0]]) };
  const clf = (x: Tensor) => x;
  const heldOut = () => tensor([0.1, 0, 0.2, 0, 0.3, 0, 0.4, 0, 0.5, 0, 0.6, 0, 0.7, 0, 0.8, 0, 0.9, 0, 1.0, 0], [10, 2], { backend: cpu });

  it('before calibration every call throws NotFittedError', async () => {
    const c = conditionalClassifier(clf, det);
    const x = tensor([0.1, 0.2], [1, 2], { backend: cpu });
    expect(() => c.threshold).toThrow(NotFittedError);
    expect(() => c.apply(x)).toThrow(NotFittedError);
    await expect(c.classify(x)).rejects.toThrow(NotFittedError);
    await expect(c.classifyBatch(x)).rejects.toThrow(NotFittedError);
    x.dispose();
  });

  it('returns the prediction or throws NotReliableClassification with prediction and score; the batched form does not throw', async () => {
    const h = heldOut();
    const c = await conditionalClassifier(clf, det).calibrate(h, { fpr: 0.2 });
    expect(c.threshold).toBeCloseTo(0.8, 6); // rejects 0.9 and 1.0
    expect(c.realisedFpr).toBeCloseTo(0.2, 12);
    const ok = tensor([0.3, 0.9], [1, 2], { backend: cpu });
    expect(await c.classify(ok)).toBe(1);
    const bad = tensor([0.95, 0.1], [1, 2], { backend: cpu });
    const err = await c.classify(bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotReliableClassification);
    expect((err as NotReliableClassification<number>).prediction).toBe(0);
    expect((err as NotReliableClassification<number>).score).toBeCloseTo(0.95, 6);
    const batch = tensor([0.3, 0.9, 0.95, 0.1, 0.8, 0.0], [3, 2], { backend: cpu });
    const before = memory().liveTensors;
    const r = await c.classifyBatch(batch);
    expect(memory().liveTensors).toBe(before);
    expect(Array.from(r.prediction)).toEqual([1, 0, 0]);
    expect(r.reliable).toEqual([true, false, true]);
    const tagged = await c.tryClassify(batch);
    expect(tagged.map((t) => t.ok)).toEqual([true, false, true]);
    await expect(c.classify(batch)).rejects.toThrow(/conditionalClassifier\.classify.*\[3, ?2\]/);
    await expect(c.classify(batch)).rejects.toThrow(ShapeError);
    // from a calibrated DetectorGuard: its threshold is reused
    const g = await guard(det, { fpr: 0.2, heldOut: h });
    const c2 = conditionalClassifier(clf, g);
    expect(c2).toBeInstanceOf(ConditionalClassifier);
    expect(c2.threshold).toBe(g.threshold);
    expect(g.threshold).toBe(calibrateThreshold([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0].map(Math.fround), 0.2));
    expect(() => conditionalClassifier(clf, {} as never)).toThrow(ArgumentError);
    for (const t of [h, ok, bad, batch]) t.dispose();
  });
});

describe('generative guards on WebGPU', () => {
  it('the gradient penalty (double backward through a conv critic) and the δz search match the CPU reference', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const conv = (k: Tensor, v: Tensor) => (x: Tensor) => sum(mul(leakyRelu(conv2d(x, k, null, { stride: 2, padding: 1 }), 0.2), v), [1, 2, 3]);
    const imgs = (phase: number) => host(Array.from({ length: 3 * 49 }, (_, i) => Math.sin(i * 0.7 + phase)), [3, 1, 7, 7]);
    await compareBackends(cpu, gpu, (k, v, r, f, e) => gradientPenalty(conv(k, v), r, f, { eps: e }), [
      host(Array.from({ length: 2 * 9 }, (_, i) => Math.sin(1 + i * 1.3) * 0.6), [2, 1, 3, 3]),
      host(Array.from({ length: 2 * 16 }, (_, i) => Math.cos(i * 0.9)), [2, 4, 4]),
      imgs(0), imgs(2), host([0.25, 0.8, 0.5], [3]),
    ], TOL.compositeReduction(3 * 32), 'gradientPenalty');
    // δz with G = I = identity and a linear classifier: the same Philox candidates on both backends
    const id = (t: Tensor) => t;
    const f = (x: Tensor) => matmul(x, tensor([1, -1, 0.5, 0.2, 0.3, -0.1], [3, 2], { backend: x.backend }));
    const det = new DeltaZDetector(id, id, f, { candidates: 7, steps: 9, radiusStep: 0.15, seed: 4 });
    const xs = host(Array.from({ length: 5 * 3 }, (_, i) => Math.sin(i * 1.7) * 0.8), [5, 3]);
    await compareBackends(cpu, gpu, (x) => det.deltaZ(x), [xs], TOL.arith, 'deltaZ');
  });
});
