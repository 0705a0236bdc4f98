import { describe, expect, it } from 'vitest';
import { type Backend, ArgumentError, matmul, odinScore, setBackend, tensor, type Tensor } from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

// A linear "network" z = x Wᵀ + b with hand-checkable ODIN arithmetic.
const W = [[1.0, -2.0, 0.5], [0.3, 0.8, -1.2], [-0.7, 0.1, 0.9]];
const bias = [0.1, -0.3, 0.2];
const X = [[0.5, -0.2, 1.0], [-1.0, 0.4, 0.3]];

function reference(T: number, eps: number): number[] {
  const logits = (x: number[]) => W.map((w, k) => w.reduce((s, v, j) => s + v * x[j], bias[k]));
  const softmaxT = (z: number[]) => {
    const m = Math.max(...z.map((v) => v / T));
    const e = z.map((v) => Math.exp(v / T - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  };
  return X.map((x) => {
    const z = logits(x);
    const yhat = z.indexOf(Math.max(...z));
    const p = softmaxT(z);
    // ∇ₓ log softmax_ŷ(z/T) = (W_ŷ − Σ_k p_k W_k) / T ; x̃ = x − ε·sign(−∇)
    const g = x.map((_, j) => (W[yhat][j] - p.reduce((s, pk, k) => s + pk * W[k][j], 0)) / T);
    const xt = x.map((v, j) => v - eps * Math.sign(-g[j]));
    return -Math.max(...softmaxT(logits(xt)));
  });
}

async function run(be: Backend, T: number, eps: number): Promise<number[]> {
  setBackend(be);
  const w = tensor(W);
  const b = tensor(bias);
  const model = (x: Tensor) => matmul(x, w, { transposeB: true }).add(b);
  return Array.from(await odinScore(model, tensor(X), { temperature: T, epsilon: eps }).data());
}

describe('ODIN: temperature in both the perturbation and the score', () => {
  for (const name of ['cpu', 'webgpu'] as const) {
    it(`${name}: matches the hand-derived float64 reference`, async (ctx) => {
      const be = name === 'cpu' ? cpu : await requireWebGPU(ctx);
      for (const [T, eps] of [[1, 0.05], [10, 0.1], [1000, 0.0014]]) {
        const got = await run(be, T, eps);
        reference(T, eps).forEach((r, i) => expect(got[i]).toBeCloseTo(r, 6));
      }
    });
  }

  it('the perturbation lowers the score of the predicted class (ε > 0 increases confidence)', async () => {
    const plain = await run(cpu, 2, 0);
    const pert = await run(cpu, 2, 0.2);
    pert.forEach((v, i) => expect(v).toBeLessThan(plain[i]));
  });

  it('rejects a non-positive temperature', () => {
    setBackend(cpu);
    expect(() => odinScore((x) => x, tensor([[1, 2]]), { temperature: 0 })).toThrow(ArgumentError);
  });
});
