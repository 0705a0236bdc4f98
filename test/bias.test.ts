import { describe, expect, it } from 'vitest';
import {
  ArgumentError, DbVae, LatentHistogram, Linear, Sequential, ShapeError, dbVaeLoss, latentHistogramWeights, memory, setBackend, tensor, trainDbVae, tidy,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

setBackend(cpu);

// Three latent dims, four rows. Dim 0: values 0,0,0,1 → 2 bins of width ½, masses [¾, ¼].
// Dim 1: 0,1,1,1 → masses [¼, ¾]. Dim 2: constant 5 → one occupied bin of mass 1.
const Z = [0, 0, 5, 0, 1, 5, 0, 1, 5, 1, 1, 5];

describe('latent-histogram weights', () => {
  it('equal Π_i 1/(Q̂_i(z_i) + α), normalised (hand values)', () => {
    // α = ¼: row 0 → 1/((¾+¼)(¼+¼)) · c = 2c, rows 1, 2 → 1/((1)(1)) · c = c, row 3 → 2c, with c = 1/(1+¼)
    // from the constant dim; normalised: [1/3, 1/6, 1/6, 1/3].
    const w = latentHistogramWeights(Z, 3, { bins: 2, alpha: 0.25 });
    [1 / 3, 1 / 6, 1 / 6, 1 / 3].forEach((v, i) => expect(w[i]).toBeCloseTo(v, 14));
    const h = LatentHistogram.fit(Z, 3, { bins: 2 });
    expect(Array.from(h.mass)).toEqual([0.75, 0.25, 0.25, 0.75, 1, 0]);
    expect(Array.from(h.density(Z))).toEqual([0.75, 0.25, 1, 0.75, 0.75, 1, 0.75, 0.75, 1, 0.25, 0.75, 1]);
    // rarity = −Σ log(Q̂ + α)
    const r = h.rarity([0, 0, 5], 0.25);
    expect(r[0]).toBeCloseTo(-(Math.log(1) + Math.log(0.5) + Math.log(1.25)), 14);
    // a huge α flattens the weights (no debiasing); a small α sharpens them
    const flat = latentHistogramWeights(Z, 3, { bins: 2, alpha: 1e6 });
    for (const v of flat) expect(v).toBeCloseTo(0.25, 5);
    const sharp = latentHistogramWeights(Z, 3, { bins: 2, alpha: 1e-3 });
    expect(sharp[0] / sharp[1]).toBeGreaterThan(2.9); // (0.751·0.751)/(0.751·0.251) ≈ 2.99
  });

  it('clamps values outside the fitted range into the end bins', () => {
    const h = LatentHistogram.fit(Z, 3, { bins: 2 });
    expect(Array.from(h.density([-10, 10, 7]))).toEqual([0.75, 0.75, 1]);
  });

  it('rarityTensor equals the host rarity, on the CPU and on WebGPU, without leaks', async (ctx) => {
    const h = LatentHistogram.fit(Z, 3, { bins: 2 });
    const probe = [0, 0, 5, 0.7, 0.2, 5, -3, 4, 5, 1, 1, 5, 0.49, 0.51, 5];
    const want = h.rarity(probe, 0.1);
    for (const be of [cpu, await requireWebGPU(ctx)]) {
      const before = memory().liveTensors;
      const z = tensor(probe, { backend: be });
      const r = tidy(() => h.rarityTensor(z.reshape([5, 3]), 0.1));
      expect(memory().liveTensors).toBe(before + 2); // z and r: the rarity's intermediates are freed
      const got = await r.data();
      for (let i = 0; i < 5; i++) expect(got[i]).toBeCloseTo(want[i], 5);
      z.dispose();
      r.dispose();
      expect(memory().liveTensors).toBe(before);
    }
  });

  it('rejects α ≤ 0, non-finite latents and bad shapes with typed errors', () => {
    for (const alpha of [0, -1, NaN, Infinity]) expect(() => latentHistogramWeights(Z, 3, { alpha })).toThrow(ArgumentError);
    expect(() => latentHistogramWeights(Z, 3, { alpha: 0 })).toThrow(/alpha must be a finite number > 0/);
    expect(() => LatentHistogram.fit(Z, 5)).toThrow(ShapeError);
    expect(() => LatentHistogram.fit([0, NaN], 2)).toThrow(/latent value \[0, 1\] is NaN/);
    expect(() => LatentHistogram.fit(Z, 3, { bins: 0 })).toThrow(ArgumentError);
    const h = LatentHistogram.fit(Z, 3);
    expect(() => h.rarity(Z, -0.5)).toThrow(ArgumentError);
    expect(() => h.rarityTensor(tensor([[1, 2]]), 1)).toThrow(/expected latents \[B, 3\]/);
  });
});

/** DB-VAE with a 2→2 linear encoder, 1 latent dim, 2 classes and a 1→2 linear decoder, fixed weights. */
function tinyDbVae(): DbVae {
  const m = new DbVae({ encoder: new Sequential(new Linear(2, 2)), features: 2, latentDim: 1, numClasses: 2, decoder: new Sequential(new Linear(1, 2)) });
  m.loadStateDict({
    'encoder.0.weight': tensor([[1, 0], [0, 1]]),
    'encoder.0.bias': tensor([0, 0]),
    'classifier.weight': tensor([[1, -1], [0.5, 2]]),
    'classifier.bias': tensor([0, 0.1]),
    'muHead.weight': tensor([[0.3, -0.2]]),
    'muHead.bias': tensor([0.1]),
    'logVarHead.weight': tensor([[-0.4, 0.2]]),
    'logVarHead.bias': tensor([0]),
    'decoder.0.weight': tensor([[1.5], [-0.5]]),
    'decoder.0.bias': tensor([0.2, -0.1]),
  });
  return m;
}

describe('DB-VAE loss', () => {
  it('equals CE + λ(Σ BCE + β·KL) computed by hand on a tiny fixed net', async () => {
    const xs = [[1, 0], [0.5, 0.25]];
    const ys = [0, 1];
    const eps = [0.5, -1];
    const lambda = 0.3;
    const beta = 0.7;
    // by hand
    let want = 0;
    for (let b = 0; b < 2; b++) {
      const [x0, x1] = xs[b];
      const l0 = x0 - x1;
      const l1 = 0.5 * x0 + 2 * x1 + 0.1;
      const lse = Math.log(Math.exp(l0) + Math.exp(l1));
      const ce = lse - (ys[b] === 0 ? l0 : l1);
      const mu = 0.3 * x0 - 0.2 * x1 + 0.1;
      const lv = -0.4 * x0 + 0.2 * x1;
      const z = mu + Math.exp(lv / 2) * eps[b];
      const r = [1.5 * z + 0.2, -0.5 * z - 0.1];
      const sig = (v: number) => 1 / (1 + Math.exp(-v));
      const bce = -[x0, x1].reduce((s, t, j) => s + t * Math.log(sig(r[j])) + (1 - t) * Math.log(1 - sig(r[j])), 0);
      const kl = -0.5 * (1 + lv - mu * mu - Math.exp(lv));
      want += (ce + lambda * (bce + beta * kl)) / 2;
    }
    const m = tinyDbVae();
    const before = memory().liveTensors;
    const x = tensor(xs);
    const y = tensor(ys, { dtype: 'int32' });
    const loss = tidy(() => dbVaeLoss(m.forwardAll(x, { eps: tensor([[eps[0]], [eps[1]]]) }), x, y, { vaeWeight: lambda, klWeight: beta }));
    expect(await loss.item()).toBeCloseTo(want, 5);
    // the classifier path of forward() is the logits of forwardAll
    const logits = tidy(() => m.forward(x));
    const lv = await logits.data();
    [1, 0.5 + 0.1, 0.25, 0.25 + 0.5 + 0.1].forEach((v, i) => expect(lv[i]).toBeCloseTo(v, 6));
    for (const t of [loss, logits, x, y]) t.dispose();
    expect(memory().liveTensors).toBe(before);
  });

  it('rejects a reconstruction that does not match the input, and bad eps', () => {
    const m = tinyDbVae();
    const x = tensor([[1, 0, 1]]);
    expect(() => tidy(() => m.forwardAll(tensor([[1, 0]]), { eps: tensor([[1, 2]]) }))).toThrow(/eps must be \[1,1\]/);
    expect(() => tidy(() => dbVaeLoss(m.forwardAll(tensor([[1, 0]]), { eps: tensor([[0]]) }), x, tensor([0], { dtype: 'int32' })))).toThrow(ShapeError);
    expect(() => new DbVae({ latentDim: 0 })).toThrow(ArgumentError);
  });
});

describe('trainDbVae', () => {
  it('recomputes the histogram weights every epoch and trains without leaking', async () => {
    // 40 points in [0,1]²: 36 near (0.2, 0.2) (the majority style) and 4 near (0.8, 0.8); class = x0 > 0.5
    const n = 40;
    const data = new Float32Array(n * 2);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const rare = i % 10 === 0;
      data[2 * i] = (rare ? 0.8 : 0.2) + 0.01 * ((i * 7) % 5);
      data[2 * i + 1] = (rare ? 0.8 : 0.2) + 0.01 * ((i * 3) % 5);
      y[i] = rare ? 1 : 0;
    }
    const m = new DbVae({ encoder: new Sequential(new Linear(2, 4)), features: 4, latentDim: 2, numClasses: 2, decoder: new Sequential(new Linear(2, 2)) });
    const before = memory().liveTensors;
    const seen: number[] = [];
    const r = await trainDbVae(m, { x: { data, shape: [n, 2] }, y }, { epochs: 3, alpha: 0.01, bins: 4, batchSize: 8, lr: 0.01, seed: 3, onEpoch: (e) => seen.push(e.epoch) });
    expect(seen).toEqual([1, 2, 3]);
    expect(r.loss.every(Number.isFinite)).toBe(true);
    // non-uniform weights: the effective sample size is below n, and recomputed (a number) each epoch
    expect(r.effectiveSamples.every((v) => v !== null && v > 1 && v < n)).toBe(true);
    const plain = await trainDbVae(m, { x: { data, shape: [n, 2] }, y }, { epochs: 1, alpha: null, batchSize: 8 });
    expect(plain.effectiveSamples).toEqual([null]);
    expect(memory().liveTensors).toBe(before + 0);
    await expect(trainDbVae(m, { x: { data, shape: [n, 2] }, y }, { epochs: 1, alpha: 0 })).rejects.toThrow(ArgumentError);
  });
});
