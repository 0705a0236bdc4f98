import { describe, expect, it } from 'vitest';
import { ArgumentError, Linear, Sequential, ShapeError, type Tensor, intTensor, memory, parameter, setBackend, tensor, tanh, matmul } from '../node.js';
import { Laplace, lastLayerLaplace } from '../uncertainty/bayes/laplace.js';
import { laplaceDetector } from '../uncertainty/bayes/detectors.js';
import { SingularMatrixError } from '../uncertainty/bayes/linalg.js';
import { cpu } from './helpers/backends.js';
import { expectClose } from './helpers/compare.js';

const sig = (z: number) => 1 / (1 + Math.exp(-z));
const f32 = (why: string) => ({ rtol: 2e-5, atol: 2e-6, why: `float32 device sums of a few terms (${why})` });

function logistic1d(w: number, b: number): Linear {
  const m = new Linear(1, 1);
  m.weight = parameter(tensor([[w]]));
  m.bias = parameter(tensor([b]));
  return m;
}

describe('Laplace on 1-D logistic regression vs the hand-computed Hessian', () => {
  const xs = [-1, 0.5, 2, 1.2];
  const ys = [0, 1, 1, 0];
  const w = 0.7;
  const b = -0.2;
  const hand = () => {
    // ∂²/∂θ² Σ_n BCE(σ(w x_n + b), y_n) = Σ_n p_n(1 − p_n) [[x², x], [x, 1]], θ = (w, b).
    const H = [0, 0, 0, 0];
    const EF = [0, 0, 0, 0];
    let nll = 0;
    xs.forEach((x, n) => {
      const p = sig(w * x + b);
      const l = p * (1 - p);
      const r = (p - ys[n]) ** 2;
      const phi = [x, 1];
      for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) {
        H[i * 2 + j] += l * phi[i] * phi[j];
        EF[i * 2 + j] += r * phi[i] * phi[j];
      }
      nll -= ys[n] * Math.log(p) + (1 - ys[n]) * Math.log(1 - p);
    });
    return { H, EF, nll };
  };
  const x = () => tensor(xs, [xs.length, 1]);
  const y = () => tensor(ys);

  it("'ggn', 'hessian' and 'ef' curvatures, full and diagonal", async () => {
    setBackend(cpu);
    const { H, EF, nll } = hand();
    for (const curvature of ['ggn', 'hessian'] as const) {
      const la = await Laplace.fit(logistic1d(w, b), x(), y(), { likelihood: 'binary', curvature, priorPrecision: 0.5 });
      expectClose(la.curvatureMatrix, H, f32(curvature), curvature);
      expectClose(la.posteriorPrecision, [H[0] + 0.5, H[1], H[2], H[3] + 0.5], f32(curvature));
      expect(la.nll).toBeCloseTo(nll, 5);
      const diag = await Laplace.fit(logistic1d(w, b), x(), y(), { likelihood: 'binary', curvature, structure: 'diag' });
      expectClose(diag.curvatureMatrix, [H[0], H[3]], f32(`${curvature} diag`));
    }
    const ef = await Laplace.fit(logistic1d(w, b), x(), y(), { likelihood: 'binary', curvature: 'ef', batchSize: 3 }); // two chunks
    expectClose(ef.curvatureMatrix, EF, f32('ef'));
  });

  it('posterior covariance, probit and MC predictive at a test point', async () => {
    setBackend(cpu);
    const { H } = hand();
    const d = 0.3;
    const la = await Laplace.fit(logistic1d(w, b), x(), y(), { likelihood: 'binary', priorPrecision: d });
    const A = [H[0] + d, H[1], H[2], H[3] + d];
    const det = A[0] * A[3] - A[1] * A[2];
    const S = [A[3] / det, -A[1] / det, -A[2] / det, A[0] / det];
    expectClose(la.posteriorCovariance, S, f32('2×2 inverse'));
    const xStar = 3;
    const v = S[0] * xStar * xStar + 2 * S[1] * xStar + S[3];
    const mu = w * xStar + b;
    const pr = la.predict(tensor([[xStar]]));
    expect(await pr.fMean.item()).toBeCloseTo(mu, 5);
    expect(await pr.fCov.item()).toBeCloseTo(v, 4);
    const probs = await pr.probs.data();
    const pWant = sig(mu / Math.sqrt(1 + (Math.PI * v) / 8));
    expect(probs[1]).toBeCloseTo(pWant, 5);
    expect(probs[0]).toBeCloseTo(1 - pWant, 5);
    // MC over weights: S = 20000 linearised samples f_s = μ + J Δ_s, Δ_s ~ N(0, Σ).
    const mc = la.predict(tensor([[xStar], [0]]), { method: 'mc', samples: 20000, seed: 5 });
    expect(mc.sampleProbs!.shape).toEqual([20000, 2, 2]);
    const fs: number[] = [];
    const sp = await mc.sampleProbs!.data();
    for (let s = 0; s < 20000; s++) fs.push(Math.log(sp[s * 4 + 1] / sp[s * 4 + 0])); // the logit of sample s at x*
    const m = fs.reduce((a, c) => a + c, 0) / fs.length;
    const varS = fs.reduce((a, c) => a + (c - m) ** 2, 0) / (fs.length - 1);
    // 4 standard errors of the mean; the sample variance has relative s.e. √(2/S) ≈ 1%: allow 5%.
    expect(Math.abs(m - mu)).toBeLessThan(4 * Math.sqrt(v / 20000));
    expect(varS / v).toBeGreaterThan(0.95);
    expect(varS / v).toBeLessThan(1.05);
    // The MC mean probability agrees with the probit approximation to about 0.02 (MacKay's approximation error).
    expect(Math.abs((await mc.probs.data())[1] - pWant)).toBeLessThan(0.02);
    // Far from the data the Laplace predictive is less confident than the MAP prediction.
    const far = la.predict(tensor([[20]]));
    expect((await far.probs.data())[1]).toBeLessThan(sig(w * 20 + b));
  });

  it('marginal likelihood matches the formula and tuning picks its grid maximum', async () => {
    setBackend(cpu);
    const { H, nll } = hand();
    const la = await Laplace.fit(logistic1d(w, b), x(), y(), { likelihood: 'binary' });
    const lml = (d: number) => -nll - 0.5 * d * (w * w + b * b) + Math.log(d) - 0.5 * Math.log((H[0] + d) * (H[3] + d) - H[1] * H[2]);
    for (const d of [0.01, 0.3, 2, 50]) expect(la.logMarginalLikelihood(d)).toBeCloseTo(lml(d), 4);
    const grid = [0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30];
    const want = grid.reduce((a, c) => (lml(c) > lml(a) ? c : a));
    expect(await la.optimizePriorPrecision({ grid })).toBe(want);
    expect(la.priorPrecision).toBe(want);
    const vd = await la.optimizePriorPrecision({ method: 'val-nll', grid, xVal: x(), yVal: y() });
    expect(grid).toContain(vd);
  });

  it('laplaceDetector: the score is the entropy of the predictive (probit) or a sampled measure (MC)', async () => {
    setBackend(cpu);
    const la = await Laplace.fit(logistic1d(w, b), x(), y(), { likelihood: 'binary' });
    const q = tensor([[0.3], [3], [-4]]);
    const p = await la.predict(q).probs.data();
    const s = await laplaceDetector(la).score(q).data();
    for (let i = 0; i < 3; i++) expect(s[i]).toBeCloseTo(-(p[2 * i] * Math.log(p[2 * i]) + p[2 * i + 1] * Math.log(p[2 * i + 1])), 5);
    const det = laplaceDetector(la, { method: 'mc', samples: 64, seed: 2, measure: 'mutualInformation' });
    const { prediction, score } = det.predict(q);
    expect(Array.from(await prediction.data())).toEqual([1, 1, 0]);
    for (const v of await score.data()) expect(v).toBeGreaterThanOrEqual(-1e-6);
    expect(() => laplaceDetector(la, { measure: 'variationRatio' })).toThrow(/needs method 'mc'/);
  });

  it('bad input and an indefinite exact Hessian give typed errors', async () => {
    setBackend(cpu);
    await expect(Laplace.fit(logistic1d(w, b), x(), y(), { likelihood: 'binary', priorPrecision: 0 })).rejects.toThrow(ArgumentError);
    await expect(Laplace.fit(logistic1d(w, b), x(), tensor([1, 0]), { likelihood: 'binary' })).rejects.toThrow(ShapeError);
    await expect(Laplace.fit(new Linear(1, 3), x(), y(), { likelihood: 'binary' })).rejects.toThrow(/one output per row/);
    await expect(Laplace.fit(logistic1d(w, b), x(), y(), { likelihood: 'poisson' as 'binary' })).rejects.toThrow(/likelihood/);
    const la = await Laplace.fit(logistic1d(w, b), x(), y(), { likelihood: 'binary' });
    expect(() => (la.priorPrecision = -1)).toThrow(ArgumentError);
    await expect(la.optimizePriorPrecision({ method: 'val-nll' })).rejects.toThrow(/xVal/);
    expect(() => la.predict(x(), { method: 'mc', samples: 0 })).toThrow(/samples/);
    // An exact Hessian that is not positive definite (a curvature of −1 built by hand) is refused clearly.
    const bad = await Laplace.fit(logistic1d(w, b), x(), y(), { likelihood: 'binary', priorPrecision: 1e-6 });
    bad.curvatureMatrix.set([-1, 0, 0, -1]);
    expect(() => bad.posteriorCovariance).toThrow(SingularMatrixError);
  });
});

describe('Laplace with a softmax likelihood (GGN from batched output Jacobians)', () => {
  const X = [[0.5, -1], [1, 2], [-1.5, 0.3], [0.2, 0.1], [2, -0.4]];
  const Y = [0, 2, 1, 1, 0];
  const W = [[0.3, -0.2], [0.1, 0.4], [-0.5, 0.2]];
  const Bv = [0.1, 0, -0.1];
  const model = () => {
    const m = new Linear(2, 3);
    m.weight = parameter(tensor(W));
    m.bias = parameter(tensor(Bv));
    return m;
  };
  // J_n [3, 9]: ∂f_k/∂W[l,i] = δ_kl x_i (index l·2 + i), ∂f_k/∂b_l = δ_kl (index 6 + l).
  const jac = (x: number[]) => Array.from({ length: 3 }, (_, k) => Array.from({ length: 9 }, (_, a) => (a < 6 ? (Math.floor(a / 2) === k ? x[a % 2] : 0) : a - 6 === k ? 1 : 0)));
  const probs = (x: number[]) => {
    const z = W.map((r, k) => r[0] * x[0] + r[1] * x[1] + Bv[k]);
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const s = e.reduce((a, c) => a + c, 0);
    return e.map((v) => v / s);
  };

  it('GGN Σ_n J_nᵀ(diag p − ppᵀ)J_n and the empirical Fisher match the host computation', async () => {
    setBackend(cpu);
    const G = new Array(81).fill(0);
    const EF = new Array(81).fill(0);
    X.forEach((x, n) => {
      const J = jac(x);
      const p = probs(x);
      const g = Array.from({ length: 9 }, (_, a) => J.reduce((s, row, k) => s + row[a] * (p[k] - (Y[n] === k ? 1 : 0)), 0));
      for (let a = 0; a < 9; a++) for (let c = 0; c < 9; c++) {
        let s = 0;
        for (let k = 0; k < 3; k++) for (let l = 0; l < 3; l++) s += J[k][a] * ((k === l ? p[k] : 0) - p[k] * p[l]) * J[l][c];
        G[a * 9 + c] += s;
        EF[a * 9 + c] += g[a] * g[c];
      }
    });
    const xt = tensor(X);
    const yt = intTensor(Y);
    const la = await Laplace.fit(model(), xt, yt, { likelihood: 'classification', batchSize: 2 });
    expectClose(la.curvatureMatrix, G, f32('GGN'), 'GGN');
    const ef = await Laplace.fit(model(), xt, yt, { likelihood: 'classification', curvature: 'ef' });
    expectClose(ef.curvatureMatrix, EF, f32('EF'), 'EF');
    const hs = await Laplace.fit(model(), xt, yt, { likelihood: 'classification', curvature: 'hessian' });
    expectClose(hs.curvatureMatrix, G, f32('Hessian = GGN for a linear softmax model'), 'Hessian');
    const dg = await Laplace.fit(model(), xt, yt, { likelihood: 'classification', structure: 'diag' });
    expectClose(dg.curvatureMatrix, G.filter((_, i) => i % 10 === 0), f32('diag'));

    // The predictive covariance of the logits at one point is J Σ Jᵀ.
    const Sigma = la.posteriorCovariance;
    const xs = [0.7, -0.3];
    const J = jac(xs);
    const pr = la.predict(tensor([xs]));
    const C = await pr.fCov.data();
    for (let k = 0; k < 3; k++) for (let l = 0; l < 3; l++) {
      let s = 0;
      for (let a = 0; a < 9; a++) for (let c = 0; c < 9; c++) s += J[k][a] * Sigma[a * 9 + c] * J[l][c];
      expect(C[k * 3 + l]).toBeCloseTo(s, 4);
    }
    const pp = await pr.probs.data();
    expect(pp[0] + pp[1] + pp[2]).toBeCloseTo(1, 5);
  });

  it('the Kronecker fast path of a Linear model equals the generic Jacobian path (Sequential(Linear))', async () => {
    setBackend(cpu);
    const xt = tensor(X);
    const yt = intTensor(Y);
    for (const structure of ['full', 'diag'] as const) {
      const fast = await Laplace.fit(model(), xt, yt, { likelihood: 'classification', structure, priorPrecision: 0.7 });
      const slow = await Laplace.fit(new Sequential(model()), xt, yt, { likelihood: 'classification', structure, priorPrecision: 0.7 });
      expectClose(fast.curvatureMatrix, slow.curvatureMatrix, f32(`GGN ${structure}`));
      const xq = tensor([[0.7, -0.3], [3, 3], [-2, 1]]);
      for (const method of ['probit', 'mc'] as const) {
        const a = fast.predict(xq, { method, samples: 16, seed: 3 });
        const b = slow.predict(xq, { method, samples: 16, seed: 3 });
        expectClose(await a.fCov.data(), await b.fCov.data(), f32(`fCov ${structure}`));
        expectClose(await a.probs.data(), await b.probs.data(), f32(`probs ${structure} ${method}`));
        if (method === 'mc') expectClose(await a.sampleProbs!.data(), await b.sampleProbs!.data(), f32('MC samples'));
      }
    }
  });

  it('last-layer Laplace through a fixed feature map equals a Laplace on the precomputed features; no leaks', async () => {
    setBackend(cpu);
    const A = tensor([[1, -0.5], [0.3, 0.8]]);
    const feats = (x: Tensor) => tanh(matmul(x, A));
    const xt = tensor(X);
    const yt = intTensor(Y);
    const ll = await lastLayerLaplace(model(), feats, xt, yt, { likelihood: 'classification' });
    const direct = await Laplace.fit(model(), feats(xt), yt, { likelihood: 'classification' });
    expectClose(ll.curvatureMatrix, direct.curvatureMatrix, f32('same computation'));
    const before = memory().liveTensors;
    const p = ll.predict(xt, { method: 'mc', samples: 8, seed: 1 });
    for (const t of [p.probs, p.fMean, p.fCov, p.sampleProbs!]) t.dispose();
    ll.dispose();
    expect(memory().liveTensors).toBe(before);
  });
});
