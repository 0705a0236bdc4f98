/**
 * Temperature scaling (uncertainty/calibration.ts): a hand-solvable case, recovery of a known
 * temperature on synthetic data, optimality against a float64 grid search, the
 * probabilities-instead-of-logits warning, bounds, tensors on both backends, and the scaler.
 */
import { describe, expect, it, vi } from 'vitest';
import {
  ArgumentError, NotFittedError, TemperatureScaler, applyTemperature, fitTemperature, fitTemperatureHost, nllFromLogits,
  setBackend, tensor,
} from '../node.js';
import { randomNormal, randomUniform } from '../engine/random/philox.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

/** N samples, K classes: z ~ N(0, scale²), y ~ softmax(z / tStar) (philox-seeded). */
function synthetic(n: number, k: number, tStar: number, seed: number, scale = 3): { z: Float32Array; y: Int32Array } {
  const z = randomNormal(n * k, seed, 0, 0, scale);
  const u = randomUniform(n, seed + 1, 0);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const row = Array.from(z.subarray(i * k, (i + 1) * k), (v) => v / tStar);
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    let c = 0;
    let acc = e[0] / s;
    while (u[i] > acc && c < k - 1) acc += e[++c] / s;
    y[i] = c;
  }
  return { z, y };
}

describe('fitTemperature', () => {
  it('hand-solvable: identical logits (2, 1), 3 labels 0 and 1 label 1 → σ(1/T) = ¾, T = 1/ln 3', () => {
    // (1, 0) rows would be one-hot, i.e. look like probabilities; (2, 1) has the same gap
    const z = [2, 1, 2, 1, 2, 1, 2, 1];
    const fit = fitTemperatureHost(z, 2, [0, 0, 0, 1]);
    expect(fit.converged).toBe(true);
    expect(fit.atBound).toBe(false);
    expect(fit.temperature).toBeCloseTo(1 / Math.log(3), 10);
    expect(fit.logTemperature).toBeCloseTo(-Math.log(Math.log(3)), 10);
    // NLL at the optimum: −¾ ln ¾ − ¼ ln ¼
    expect(fit.nllAfter).toBeCloseTo(-0.75 * Math.log(0.75) - 0.25 * Math.log(0.25), 12);
    expect(fit.inputLooksLikeProbabilities).toBe(false);
  });

  it('recovers a known temperature (T* = 2.5, N = 20000, K = 5) within 4%', () => {
    // The MLE's relative standard error here is ≈ 1%; 4% is a ~4σ band.
    for (const [tStar, seed] of [[2.5, 100], [0.7, 200]] as const) {
      const { z, y } = synthetic(20000, 5, tStar, seed);
      const fit = fitTemperatureHost(z, 5, y);
      expect(fit.converged).toBe(true);
      expect(Math.abs(fit.temperature / tStar - 1), `T̂ = ${fit.temperature}, T* = ${tStar}`).toBeLessThan(0.04);
      expect(fit.iterations).toBeLessThan(30);
    }
  });

  it('is the NLL minimiser (float64 reference: dense grid + derivative check)', () => {
    const { z, y } = synthetic(2000, 4, 1.7, 300);
    const fit = fitTemperatureHost(z, 4, y);
    const nllAt = (t: number) => nllFromLogits(Array.from(z, (v) => v / t), y, { numClasses: 4 });
    expect(fit.nllAfter).toBeCloseTo(nllAt(fit.temperature), 12);
    expect(fit.nllBefore).toBeCloseTo(nllAt(1), 12);
    let best = Infinity;
    for (let lt = -1; lt <= 1.5; lt += 0.005) best = Math.min(best, nllAt(Math.exp(lt)));
    expect(fit.nllAfter).toBeLessThanOrEqual(best + 1e-12);
    const h = 1e-5;
    const dLdLogT = (nllAt(fit.temperature * Math.exp(h)) - nllAt(fit.temperature * Math.exp(-h))) / (2 * h);
    expect(Math.abs(dLdLogT)).toBeLessThan(1e-7);
  });

  it('warns once, and flags, when the input rows look like probabilities', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const p = [0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.3, 0.3, 0.4];
      const fit = fitTemperatureHost(p, 3, [0, 1, 0]);
      expect(fit.inputLooksLikeProbabilities).toBe(true);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0][0])).toMatch(/probabilities, not logits/);
      expect(fitTemperatureHost(p, 3, [0, 1, 2]).inputLooksLikeProbabilities).toBe(true);
      expect(warn).toHaveBeenCalledTimes(1); // once per process
      // log-probabilities are fine as logits: no flag
      expect(fitTemperatureHost(p.map(Math.log), 3, [0, 1, 0]).inputLooksLikeProbabilities).toBe(false);
    } finally {
      warn.mockRestore();
    }
  });

  it('clamps to the bounds when the optimum lies outside them', () => {
    // perfectly separated → wants T → 0
    const sep = fitTemperatureHost([2, 0, 0, 2], 2, [0, 1]);
    expect(sep.atBound).toBe(true);
    expect(sep.temperature).toBeCloseTo(1e-3, 12);
    // always wrong → wants T → ∞ (uniform)
    const anti = fitTemperatureHost([2, 0, 0, 2], 2, [1, 0], { bounds: [0.1, 50] });
    expect(anti.atBound).toBe(true);
    expect(anti.temperature).toBeCloseTo(50, 9);
  });

  it('argument errors', () => {
    expect(() => fitTemperatureHost([1, 2, 3], 2, [0])).toThrow(/whole number of rows/);
    expect(() => fitTemperatureHost([1, 2], 2, [2])).toThrow(ArgumentError);
    expect(() => fitTemperatureHost([1, NaN], 2, [0])).toThrow(/finite/);
    expect(() => fitTemperatureHost([1, 2], 2, [0], { bounds: [2, 1] })).toThrow(/bounds/);
  });

  for (const [name, get] of [['cpu', async () => cpu], ['webgpu', requireWebGPU]] as const) {
    it(`accepts [N, K] tensors on ${name} (same result as the float32 host values)`, async (ctx) => {
      const be = await get(ctx);
      setBackend(be);
      const { z, y } = synthetic(500, 3, 1.3, 400);
      const zt = tensor(z, [500, 3]);
      const yt = tensor(y, [500]);
      const fromTensor = await fitTemperature(zt, yt);
      const fromHost = fitTemperatureHost(z, 3, y);
      expect(fromTensor.temperature).toBe(fromHost.temperature);
      const scaled = applyTemperature(zt, 2);
      expect(Array.from(await scaled.data()).slice(0, 3)).toEqual(Array.from(z.slice(0, 3), (v) => Math.fround(v / 2)));
      scaled.dispose();
      zt.dispose();
      yt.dispose();
    });
  }
});

describe('TemperatureScaler', () => {
  it('fit / transform / predictProba', async () => {
    setBackend(cpu);
    const ts = new TemperatureScaler();
    expect(() => ts.temperature).toThrow(NotFittedError);
    await ts.fit([2, 1, 2, 1, 2, 1, 2, 1], [0, 0, 0, 1], { numClasses: 2 });
    const t = 1 / Math.log(3);
    expect(ts.temperature).toBeCloseTo(t, 10);
    expect(Array.from(ts.transform([1, 0]))).toEqual([1 / ts.temperature, 0]);
    const z = tensor([[1, 0]]);
    const p = ts.predictProba(z);
    const got = Array.from(await p.data());
    expect(got[0]).toBeCloseTo(0.75, 6); // σ(ln 3) = ¾
    expect(got[1]).toBeCloseTo(0.25, 6);
    p.dispose();
    z.dispose();
    expect(() => applyTemperature([1], 0)).toThrow(ArgumentError);
  });
});
