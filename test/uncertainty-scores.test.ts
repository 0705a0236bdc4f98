/**
 * Uncertainty scores (uncertainty/scores.ts) on both backends: exact hand-computed values on
 * tiny inputs (the binary MC-dropout sanity cases of docs/methods.md, "Sampling-based uncertainty", among them), then agreement
 * with float64 host references on random inputs, and no leaked tensors.
 */
import { describe, expect, it } from 'vitest';
import {
  type Backend, type Tensor, ShapeError, dirichletDifferentialEntropy, dirichletMean, dirichletMutualInformation,
  dirichletPredictiveEntropy, energyScore, entropyScore, expectedEntropy, maxLogitScore, memory, modalPrediction, mspScore,
  mutualInformation, perClassVariance, predictiveEntropy, predictiveMean, regressionUncertainty, setBackend,
  softmaxConfidence, tensor, tidy, vacuity, variationRatio,
} from '../node.js';
import { digamma, lgamma } from '../engine/special.js';
import { randomNormal, randomUniform } from '../engine/random/philox.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

const LN2 = Math.LN2;

async function vals(t: Tensor): Promise<number[]> {
  const d = Array.from(await t.data());
  t.dispose();
  return d;
}

function expectClose(got: number[], want: number[], tol: number): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    expect(Math.abs(got[i] - want[i]), `index ${i}: got ${got[i]}, want ${want[i]}`).toBeLessThanOrEqual(tol);
  }
}

// ---- float64 references ----
function softmax64(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}
function lse64(z: number[]): number {
  const m = Math.max(...z);
  return m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
}
function h64(p: number[]): number {
  return -p.reduce((a, v) => a + (v > 0 ? v * Math.log(v) : 0), 0);
}
function rows(flat: ArrayLike<number>, k: number): number[][] {
  const r: number[][] = [];
  for (let i = 0; i < flat.length; i += k) r.push(Array.from(flat).slice(i, i + k));
  return r;
}

type BackendGetter = (ctx: { skip: (note?: string) => void }) => Promise<Backend>;
const backends: Array<[string, BackendGetter]> = [
  ['cpu', async () => cpu],
  ['webgpu', (ctx) => requireWebGPU(ctx)],
];

for (const [name, getBackend] of backends) {
  describe(`scores on ${name}`, () => {
    it('single-pass scores from logits: hand-computed values', async (ctx) => {
      setBackend(await getBackend(ctx));
      const z = tensor([[1, 2, 3], [0, 0, 0]]);
      const s = 1 + Math.exp(-1) + Math.exp(-2); // row 0: p = (e⁻², e⁻¹, 1)/s
      expectClose(await vals(mspScore(z)), [-1 / s, -1 / 3], 1e-6);
      expectClose(await vals(softmaxConfidence(z)), [1 / s, 1 / 3], 1e-6);
      expectClose(await vals(maxLogitScore(z)), [-3, -0], 0);
      const p0 = [Math.exp(-2) / s, Math.exp(-1) / s, 1 / s];
      expectClose(await vals(entropyScore(z)), [h64(p0), Math.log(3)], 1e-6);
      expectClose(await vals(energyScore(z)), [-(3 + Math.log(s)), -Math.log(3)], 1e-6);
      // T = 2: −2·logsumexp(z/2)
      expectClose(await vals(energyScore(z, 2)), [-2 * lse64([0.5, 1, 1.5]), -2 * Math.log(3)], 1e-6);
      z.dispose();
    });

    it('large logits stay finite (entropy via logSoftmax)', async (ctx) => {
      setBackend(await getBackend(ctx));
      const z = tensor([[1000, 0, -1000], [50, 50, -200]]);
      expectClose(await vals(entropyScore(z)), [0, LN2], 1e-5);
      expectClose(await vals(energyScore(z)), [-1000, -(50 + LN2)], 1e-3);
      z.dispose();
    });

    it('MC-dropout sanity cases from docs/methods.md (binary, T = 4)', async (ctx) => {
      setBackend(await getBackend(ctx));
      // b0: all passes (1,0); b1: half (1,0), half (0,1); b2: all (0.51, 0.49)
      const P = tensor([
        [[1, 0], [1, 0], [0.51, 0.49]],
        [[1, 0], [0, 1], [0.51, 0.49]],
        [[1, 0], [1, 0], [0.51, 0.49]],
        [[1, 0], [0, 1], [0.51, 0.49]],
      ]);
      const h051 = -(0.51 * Math.log(0.51) + 0.49 * Math.log(0.49));
      expectClose(await vals(variationRatio(P)), [0, 0.5, 0], 0);
      expectClose(await vals(predictiveEntropy(P)), [0, LN2, h051], 1e-6);
      expectClose(await vals(mutualInformation(P)), [0, LN2, 0], 1e-6);
      expect(Math.abs(h051 - LN2)).toBeLessThan(3e-4); // "H ≈ ln 2"
      expectClose(await vals(expectedEntropy(P)), [0, 0, h051], 1e-6);
      // the tie (2 votes each) in b1 goes to the smallest class index
      expect(await vals(modalPrediction(P))).toEqual([0, 0, 0]);
      expectClose(await vals(predictiveMean(P)), [1, 0, 0.5, 0.5, 0.51, 0.49], 1e-6);
      expectClose(await vals(perClassVariance(P)), [0, 0, 0.25, 0.25, 0, 0], 1e-6);
      P.dispose();
    });

    it('variation ratio with three classes and a non-trivial mode', async (ctx) => {
      setBackend(await getBackend(ctx));
      // T = 5 passes, one sample: argmaxes 2, 2, 1, 2, 0 → f_{c*} = 3, ratio 1 − 3/5
      const P = tensor([[[0.1, 0.2, 0.7]], [[0.3, 0.3, 0.4]], [[0.2, 0.5, 0.3]], [[0, 0, 1]], [[0.6, 0.2, 0.2]]]);
      expectClose(await vals(variationRatio(P)), [0.4], 1e-7);
      expect(await vals(modalPrediction(P))).toEqual([2]);
      P.dispose();
    });

    it('MC scores match float64 references on random probabilities', async (ctx) => {
      setBackend(await getBackend(ctx));
      const [T, B, K] = [7, 5, 4];
      const logits = randomNormal(T * B * K, 5, 0, 0, 2);
      const p64 = rows(logits, K).map(softmax64);
      const P = tensor(p64.flat(), [T, B, K]);
      const hRef: number[] = [];
      const miRef: number[] = [];
      for (let b = 0; b < B; b++) {
        const samples = Array.from({ length: T }, (_, t) => p64[t * B + b]);
        const mean = Array.from({ length: K }, (_, k) => samples.reduce((a, p) => a + p[k], 0) / T);
        const h = h64(mean);
        hRef.push(h);
        miRef.push(h - samples.reduce((a, p) => a + h64(p), 0) / T);
      }
      expectClose(await vals(predictiveEntropy(P)), hRef, 2e-6);
      expectClose(await vals(mutualInformation(P)), miRef, 2e-6);
      P.dispose();
    });

    it('regression ensemble: aleatoric = mean of variances, epistemic = variance of means', async (ctx) => {
      setBackend(await getBackend(ctx));
      const mu = tensor([[1, 2], [3, 2]]); // M = 2 members, B = 2
      const v = tensor([[0.5, 1], [1.5, 1]]);
      const r = regressionUncertainty(mu, v);
      expect(await vals(r.mean)).toEqual([2, 2]);
      expect(await vals(r.aleatoric)).toEqual([1, 1]);
      expect(await vals(r.epistemic)).toEqual([1, 0]);
      expect(await vals(r.total)).toEqual([2, 1]);
      mu.dispose();
      v.dispose();
    });

    it('Dirichlet: hand-computed vacuity, mean, mutual information, entropies', async (ctx) => {
      setBackend(await getBackend(ctx));
      const a = tensor([[1, 1], [2, 1], [10, 10]]);
      expectClose(await vals(vacuity(a)), [1, 2 / 3, 0.1], 1e-7);
      expectClose(await vals(dirichletMean(a)), [0.5, 0.5, 2 / 3, 1 / 3, 0.5, 0.5], 1e-7);
      const h21 = Math.log(3) - (2 / 3) * LN2; // H(⅔, ⅓)
      // MI(1,1) = ln 2 + ψ(2) − ψ(3) = ln 2 − ½ ; MI(2,1) = H(⅔,⅓) − (⅔·⅓ + ⅓·⅚) = H − ½
      const mi1010 = -2 * 0.5 * (Math.log(0.5) - digamma(11) + digamma(21));
      expectClose(await vals(dirichletMutualInformation(a)), [LN2 - 0.5, h21 - 0.5, mi1010], 2e-6);
      expectClose(await vals(dirichletPredictiveEntropy(a)), [LN2, h21, LN2], 1e-6);
      // differential entropy: flat Dir(1,1) → −ln(1!) = 0; Dir(2,1) → −ln 2 + ψ(3) − ψ(2) = ½ − ln 2
      const de1010 = 2 * lgamma(10) - lgamma(20) + (20 - 2) * digamma(20) - 2 * 9 * digamma(10);
      expectClose(await vals(dirichletDifferentialEntropy(a)), [0, 0.5 - LN2, de1010], 1e-4);
      a.dispose();
    });

    it('logit scores match float64 references on random logits, and nothing leaks', async (ctx) => {
      setBackend(await getBackend(ctx));
      const [B, K] = [37, 11];
      const flat = randomNormal(B * K, 9, 0, 0, 4);
      const zr = rows(flat, K);
      const z = tensor(flat, [B, K]);
      const before = memory().liveTensors;
      const out = tidy(() => [mspScore(z), maxLogitScore(z), entropyScore(z), energyScore(z, 1.5)]);
      const [m, ml, e, en] = await Promise.all(out.map((t) => vals(t)));
      expectClose(m, zr.map((r) => -Math.max(...softmax64(r))), 1e-6);
      expectClose(ml, zr.map((r) => -Math.max(...r)), 0);
      expectClose(e, zr.map((r) => h64(softmax64(r))), 2e-6);
      expectClose(en, zr.map((r) => -1.5 * lse64(r.map((v) => v / 1.5))), 2e-5);
      expect(memory().liveTensors).toBe(before);
      z.dispose();
    });
  });
}

describe('score argument checks', () => {
  it('rejects wrong ranks with ShapeError', () => {
    setBackend(cpu);
    const z = tensor([1, 2, 3]);
    expect(() => mspScore(z)).toThrow(ShapeError);
    expect(() => mutualInformation(z)).toThrow(/\[T, B, K\]/);
    const u = tensor(Array.from(randomUniform(6, 1, 0)), [2, 3]);
    expect(() => regressionUncertainty(u, z)).toThrow(ShapeError);
    z.dispose();
    u.dispose();
  });
});
