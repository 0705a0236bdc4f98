import { describe, expect, it } from 'vitest';
import {
  type Backend, ArgumentError, ReLU, Sequential, ShapeError, type Tensor, conv2d, crossEntropy, fromHost, grads, linear, manualSeed, memory, randomNormal,
  setBackend, tensor, tidy, intTensor, Linear, summarizeSamples,
} from '../node.js';
import {
  Conv2dVariational, LinearVariational, accumulatedKl, elboLoss, gaussianKl, reparameterise, variationalLogits, variationalProbs,
} from '../nn/layers/variational.js';
import { variationalDetector } from '../uncertainty/bayes/detectors.js';
import { predictiveEntropy } from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { expectClose, host, Rng, TOL } from './helpers/compare.js';
import { gradcheck } from './helpers/gradcheck.js';

const softplus = (r: number) => Math.log1p(Math.exp(r));

describe('LinearVariational / Conv2dVariational', () => {
  it('KL(q ‖ p) matches the analytic formula (hand values and the layer sum)', async () => {
    setBackend(cpu);
    // One weight: μ = 0.3, ρ = −1 → σ = softplus(−1); prior N(0.1, 0.5²).
    const s = softplus(-1);
    const want = Math.log(0.5 / s) + (s * s + 0.2 * 0.2) / (2 * 0.25) - 0.5;
    const kl = gaussianKl(tensor([0.3], [1], { dtype: 'float64' }), tensor([-1], [1], { dtype: 'float64' }), 0.1, 0.5);
    expect(await kl.item()).toBeCloseTo(want, 13);
    // q = p gives 0.
    const rho0 = Math.log(Math.expm1(0.5)); // softplus(ρ0) = 0.5
    expect(await gaussianKl(tensor([0.1, 0.1]), tensor([rho0, rho0]), 0.1, 0.5).item()).toBeCloseTo(0, 6);
    // The layer: Σ over weights and biases, with its prior.
    manualSeed(3);
    const layer = new LinearVariational(3, 2, { priorSigma: 0.7, rhoInit: -2 });
    const mu = [...(await layer.weightMu.data()), ...(await layer.biasMu!.data())];
    const rho = [...(await layer.weightRho.data()), ...(await layer.biasRho!.data())];
    let total = 0;
    for (let i = 0; i < mu.length; i++) {
      const sg = softplus(rho[i]);
      total += Math.log(0.7 / sg) + (sg * sg + mu[i] * mu[i]) / (2 * 0.49) - 0.5;
    }
    expect(await layer.kl().item()).toBeCloseTo(total, 4);
    const model = new Sequential(layer, new ReLU(), new LinearVariational(2, 2));
    const acc = await accumulatedKl(model).item();
    expect(acc).toBeCloseTo(total + (await (model.modules()[3] as LinearVariational).kl().item()), 4);
  });

  it('forward with a fixed noise stream is x·(μ + softplus(ρ)ε)ᵀ + b exactly, T samples in one pass', async () => {
    setBackend(cpu);
    manualSeed(7);
    const layer = new LinearVariational(3, 2, { rhoInit: -1 });
    const B = 4;
    const T = 3;
    const xs = new Rng(1);
    const xh = Array.from({ length: B * 3 }, () => xs.uniform(-1, 1));
    const x = tensor(xh, [B, 3]);
    const wMu = await layer.weightMu.data();
    const wRho = await layer.weightRho.data();
    const bMu = await layer.biasMu!.data();
    const bRho = await layer.biasRho!.data();
    const per = layer.blocksPerSample; // weight 6 → 2 blocks, bias 2 → 1 block
    expect(per).toBe(3);
    layer.setSamplesPerPass(T).setNoiseStream({ seed: 11, offset: 5 });
    const xt = tensor([...xh, ...xh, ...xh], [T * B, 3]);
    const y = await layer.forward(xt).data();
    expect(layer.noiseStream).toEqual({ seed: 11, offset: 5 + T * per });
    for (let t = 0; t < T; t++) {
      const eps = randomNormal(4 * per, 11, 5 + t * per);
      for (let b = 0; b < B; b++) {
        for (let o = 0; o < 2; o++) {
          let v = bMu[o] + softplus(bRho[o]) * eps[8 + o];
          for (let i = 0; i < 3; i++) v += xh[b * 3 + i] * (wMu[o * 3 + i] + softplus(wRho[o * 3 + i]) * eps[o * 3 + i]);
          expect(y[(t * B + b) * 2 + o]).toBeCloseTo(v, 5);
        }
      }
    }
    // Frozen: the means, deterministic.
    layer.setSamplesPerPass(1).setNoiseStream(null);
    layer.frozen = true;
    const m1 = await layer.forward(x).data();
    const m2 = await layer.forward(x).data();
    expect(Array.from(m1)).toEqual(Array.from(m2));
    const det = await linear(x, layer.weightMu, layer.biasMu!).data();
    expectClose(m1, det, TOL.matmul(3));
    // Unfrozen, the global generator: two forwards differ.
    layer.frozen = false;
    const r1 = await layer.forward(x).data();
    const r2 = await layer.forward(x).data();
    expect(Array.from(r1)).not.toEqual(Array.from(r2));
  });

  it('Conv2dVariational: T samples as one grouped conv equal T convolutions with the sampled weights', async () => {
    setBackend(cpu);
    manualSeed(5);
    const layer = new Conv2dVariational(2, 3, 3, { padding: 1, rhoInit: -1.5 });
    const T = 3;
    const B = 2;
    const xh = host(Array.from({ length: B * 2 * 5 * 4 }, (_, i) => Math.sin(i * 0.37)), [B, 2, 5, 4]);
    const x = tensor(xh.data, xh.shape);
    const xt = tensor([...xh.data, ...xh.data, ...xh.data], [T * B, 2, 5, 4]);
    layer.setSamplesPerPass(T).setNoiseStream({ seed: 3 });
    const y = await layer.forward(xt).data();
    expect(y.length).toBe(T * B * 3 * 5 * 4);
    const per = layer.blocksPerSample;
    const nW = 3 * 2 * 9;
    for (let t = 0; t < T; t++) {
      const eps = randomNormal(4 * per, 3, t * per);
      const epsW = tensor(Array.from(eps.slice(0, nW)), [3, 2, 3, 3]);
      const epsB = tensor(Array.from(eps.slice(4 * Math.ceil(nW / 4), 4 * Math.ceil(nW / 4) + 3)), [3]);
      const w = reparameterise(layer.weightMu, layer.weightRho, epsW);
      const b = reparameterise(layer.biasMu!, layer.biasRho!, epsB);
      const want = await conv2d(x, w, b, { padding: [1, 1] }).data();
      const got = y.slice(t * B * 60, (t + 1) * B * 60);
      expectClose(got, want, TOL.matmul(18));
    }
    expect(() => layer.forward(tensor(new Array(2 * 2 * 5 * 4).fill(0), [2, 2, 5, 4]))).toThrow(/multiple of 3/);
  });

  it('ELBO gradient w.r.t. μ and ρ vs float64 central differences (CPU)', async () => {
    setBackend(cpu);
    const rng = new Rng(2);
    const B = 5;
    const N = 40; // training-set size of the KL weight
    const xh = host(Array.from({ length: B * 3 }, () => rng.uniform(-1, 1)), [B, 3], 'float64');
    const epsW = Array.from({ length: 6 }, () => rng.normal());
    const epsB = Array.from({ length: 2 }, () => rng.normal());
    const yTarget = [0, 1, 1, 0, 1];
    const elbo = (wMu: Tensor, wRho: Tensor, bMu: Tensor, bRho: Tensor): Tensor => {
      const x = fromHost(xh.data, xh.shape, 'float64', cpu);
      const w = reparameterise(wMu, wRho, fromHost(epsW, [2, 3], 'float64', cpu));
      const b = reparameterise(bMu, bRho, fromHost(epsB, [2], 'float64', cpu));
      const nll = crossEntropy(linear(x, w, b), intTensor(yTarget, [B]));
      const kl = gaussianKl(wMu, wRho, 0, 0.8).add(gaussianKl(bMu, bRho, 0, 0.8));
      return nll.add(kl.mul(1 / N));
    };
    const inputs = [
      host(Array.from({ length: 6 }, () => rng.uniform(-1, 1)), [2, 3], 'float64'),
      host(Array.from({ length: 6 }, () => rng.uniform(-3, 0)), [2, 3], 'float64'),
      host([0.1, -0.2], [2], 'float64'),
      host([-1, -2], [2], 'float64'),
    ];
    await gradcheck(elbo, inputs, { label: 'ELBO' });

    // The layer's elboLoss (float64 parameters, the same ε through a fixed stream) is that function.
    const layer = new LinearVariational(3, 2, { dtype: 'float64', backend: cpu, priorSigma: 0.8 });
    const model = new Sequential(layer);
    layer.setNoiseStream({ seed: 9 });
    const eps = randomNormal(4 * layer.blocksPerSample, 9, 0);
    epsW.splice(0, 6, ...Array.from(eps.slice(0, 6)));
    epsB.splice(0, 2, ...Array.from(eps.slice(8, 10)));
    const layerLoss = (wMu: Tensor, wRho: Tensor, bMu: Tensor, bRho: Tensor): Tensor => {
      layer.weightMu = wMu;
      layer.weightRho = wRho;
      layer.biasMu = bMu;
      layer.biasRho = bRho;
      layer.setNoiseStream({ seed: 9 });
      const out = model.forward(fromHost(xh.data, xh.shape, 'float64', cpu));
      return elboLoss(crossEntropy(out, intTensor(yTarget, [B])), model, N);
    };
    const at = inputs.map((h) => fromHost(h.data, h.shape, 'float64', cpu));
    const want = tidy(() => grads(elbo, [0, 1, 2, 3])(...at));
    const got = tidy(() => grads(layerLoss, [0, 1, 2, 3])(...at));
    for (let k = 0; k < 4; k++) expectClose(await got[k].data(), await want[k].data(), { rtol: 1e-6, atol: 1e-9, why: 'float32 ε widened identically; same float64 graph' });
    expect(await layerLoss(at[0], at[1], at[2], at[3]).item()).toBeCloseTo(await elbo(at[0], at[1], at[2], at[3]).item(), 9);
  });

  it('variationalPredictive: one batched pass, reproducible, independent of chunking, no leaks', async () => {
    setBackend(cpu);
    manualSeed(1);
    const model = new Sequential(new LinearVariational(2, 8, { rhoInit: -1 }), new ReLU(), new LinearVariational(8, 3, { rhoInit: -1 }));
    model.eval();
    const x = tensor(Array.from({ length: 10 }, (_, i) => Math.cos(i)), [5, 2]);
    const before = memory().liveTensors;
    const a = variationalLogits(model, x, { samples: 6, seed: 42 });
    const b = variationalLogits(model, x, { samples: 6, seed: 42, maxRowsPerPass: 10 }); // chunks of 2 samples
    expect(a.shape).toEqual([6, 5, 3]);
    expectClose(await b.data(), await a.data(), TOL.matmul(8));
    // Sample t equals a single pass with the noise streams started at t·blocksPerSample.
    const l0 = model.modules()[1] as LinearVariational;
    const l2 = model.modules()[3] as LinearVariational;
    const t = 4;
    l0.setNoiseStream({ seed: 42, offset: t * l0.blocksPerSample });
    l2.setNoiseStream({ seed: 42 + 2 ** 32, offset: t * l2.blocksPerSample });
    const single = tidy(() => model.forward(x));
    expectClose(await single.data(), (await a.data()).slice(t * 15, (t + 1) * 15), TOL.matmul(8));
    single.dispose();
    l0.setNoiseStream(null);
    l2.setNoiseStream(null);
    const rows = await a.data();
    expect(Array.from(rows.slice(0, 15))).not.toEqual(Array.from(rows.slice(15, 30)));
    const p = summarizeSamples(variationalProbs(model, x, { samples: 6, seed: 42 }));
    expect(p.mutualInformation.shape).toEqual([5]);
    for (const v of await p.mutualInformation.data()) expect(v).toBeGreaterThanOrEqual(-1e-6);
    for (const k of Object.values(p)) (k as Tensor).dispose();
    a.dispose();
    b.dispose();
    expect(memory().liveTensors).toBe(before);
    expect(l0.samplesPerPass).toBe(1);
    // As a detector: the predictive entropy of the same samples.
    const det = variationalDetector(model, { samples: 6, seed: 42 });
    const want = tidy(() => predictiveEntropy(variationalProbs(model, x, { samples: 6, seed: 42 })));
    expectClose(await det.score(x).data(), await want.data(), TOL.compositeReduction(6));
  });

  it('bad input: typed errors naming the layer', () => {
    setBackend(cpu);
    expect(() => new LinearVariational(0, 2)).toThrow(ArgumentError);
    expect(() => new LinearVariational(2, 2, { priorSigma: 0 })).toThrow(/priorSigma/);
    expect(() => new Conv2dVariational(3, 4, 3, { groups: 2 })).toThrow(/divisible/);
    const l = new LinearVariational(3, 2);
    expect(() => l.forward(tensor([1, 2], [1, 2]))).toThrow(ShapeError);
    expect(() => l.setSamplesPerPass(0)).toThrow(ArgumentError);
    expect(() => accumulatedKl(new Sequential(new Linear(2, 2)))).toThrow(/no LinearVariational/);
    expect(() => elboLoss(tensor(1), new Sequential(l), 0)).toThrow(/datasetSize/);
    expect(() => elboLoss(tensor([1, 2]), new Sequential(l), 10)).toThrow(ShapeError);
    expect(() => variationalLogits(new Sequential(l), tensor([[1, 2, 3]]), { samples: 0 })).toThrow(/samples/);
  });

  it('WebGPU: the batched T-sample forward matches the CPU reference (same Philox noise)', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const run = async (backend: Backend) => {
      setBackend(backend);
      manualSeed(21);
      const model = new Sequential(new Conv2dVariational(1, 2, 3, { rhoInit: -1 }), new ReLU());
      const x = tensor(Array.from({ length: 3 * 5 * 4 }, (_, i) => Math.sin(i)), [3, 1, 5, 4]);
      const h = variationalLogits(model, x, { samples: 4, seed: 8 });
      const out = await h.data();
      h.dispose();
      return out;
    };
    const onGpu = await run(gpu);
    const onCpu = await run(cpu);
    setBackend(cpu);
    expectClose(onGpu, onCpu, TOL.matmul(9));
  });
});
