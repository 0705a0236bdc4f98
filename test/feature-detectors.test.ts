/**
 * Feature-space detectors (uncertainty/feature-detectors.ts) on tiny fixtures whose scores are
 * computed by hand or by an independent brute-force float64 reference in this file: feature norm,
 * deep k-NN, class-conditional GMM, ReAct + energy, ViM, multi-layer Mahalanobis with input
 * pre-processing and its logistic-regression combination; plus the host linear algebra.
 */
import { describe, expect, it } from 'vitest';
import {
  ArgumentError, FeatureNormDetector, GmmDetector, KnnDetector, MultiLayerMahalanobisDetector, NotFittedError, ReActEnergyDetector, ShapeError,
  VimDetector, logisticRegression, memory, percentile, setBackend, slice, symmetricEigen, tensor, type Backend, type Tensor,
} from '../node.js';
import { randomNormal } from '../engine/random/philox.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

function expectClose(got: ArrayLike<number>, want: number[], rel: number): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    expect(Math.abs(got[i] - want[i]) / Math.max(Math.abs(want[i]), 1), `index ${i}: got ${got[i]}, want ${want[i]}`).toBeLessThanOrEqual(rel);
  }
}

async function scoreOf(det: { score(x: Tensor): Tensor }, rows: number[][], be: Backend = cpu): Promise<Float32Array | Float64Array> {
  const x = tensor(rows, undefined, { backend: be });
  const s = det.score(x);
  expect(s.shape).toEqual([rows.length]);
  const v = await s.data();
  s.dispose();
  x.dispose();
  return v as Float32Array;
}

/** Gauss-Jordan inverse and determinant (float64), independent of the library's Cholesky. */
function invDet(a: number[][]): { inv: number[][]; det: number } {
  const n = a.length;
  const m = a.map((r, i) => [...r, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  let det = 1;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    if (p !== c) {
      [m[c], m[p]] = [m[p], m[c]];
      det = -det;
    }
    const piv = m[c][c];
    det *= piv;
    for (let j = 0; j < 2 * n; j++) m[c][j] /= piv;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r][c];
      for (let j = 0; j < 2 * n; j++) m[r][j] -= f * m[c][j];
    }
  }
  return { inv: m.map((r) => r.slice(n)), det };
}

function randomRows(n: number, d: number, seed: number, shift: (i: number, j: number) => number = () => 0): number[][] {
  const g = randomNormal(n * d, seed, 0);
  return Array.from({ length: n }, (_, i) => Array.from({ length: d }, (_, j) => g[i * d + j] + (j > 0 ? 0.5 * g[i * d + j - 1] : 0) + shift(i, j)));
}

describe('FeatureNormDetector', () => {
  it('−‖f‖₂ by default, +‖f‖₂ with largeIsOod; conv maps are average-pooled first', async () => {
    setBackend(cpu);
    expectClose(await scoreOf(new FeatureNormDetector(), [[3, 4], [0, 0], [1, 0]]), [-5, 0, -1], 1e-7);
    expectClose(await scoreOf(new FeatureNormDetector({ direction: 'largeIsOod' }), [[3, 4], [0, 0]]), [5, 0], 1e-7);
    // maps [1, 2, 2, 2]: channel means 2.5 and 0 → ‖(2.5, 0)‖ = 2.5
    const maps = tensor([[[[1, 2], [3, 4]], [[1, -1], [2, -2]]]]);
    const s = new FeatureNormDetector().score(maps);
    expectClose(await s.data(), [-2.5], 1e-7);
    s.dispose();
    maps.dispose();
    expect(() => new FeatureNormDetector({ direction: 'up' as 'smallIsOod' })).toThrow(ArgumentError);
  });
});

describe('KnnDetector (Sun et al. 2022)', () => {
  it('hand-computed distances to the k-th normalised neighbour', async () => {
    setBackend(cpu);
    const bank = tensor([[1, 0], [0, 1], [2, 2]]); // normalised: (1,0), (0,1), (.7071,.7071)
    const dist = (k: number) => new KnnDetector({ k }).fit({ x: bank });
    const d45 = Math.sqrt(2 - Math.SQRT2); // ‖(1,0) − (1/√2, 1/√2)‖
    expectClose(await scoreOf(await dist(1), [[3, 0], [0, 0]]), [0, 1], 1e-6);
    expectClose(await scoreOf(await dist(2), [[3, 0]]), [d45], 1e-6);
    expectClose(await scoreOf(await dist(3), [[3, 0], [0, 0]]), [Math.SQRT2, 1], 1e-6);
    bank.dispose();
  });

  it('duplicated training rows count as separate neighbours; matches a brute-force reference', async () => {
    setBackend(cpu);
    const train = randomRows(40, 5, 3);
    train.push([...train[0]]);
    const test = [...randomRows(12, 5, 4, (i) => (i % 3) - 1), [...train[0]]];
    const norm = (r: number[]) => {
      const n = Math.hypot(...r);
      return r.map((v) => (n > 0 ? v / n : 0));
    };
    const zt = train.map(norm);
    const ref = (k: number) => test.map((q) => {
      const z = norm(q);
      const ds = zt.map((b) => Math.hypot(...b.map((v, j) => v - z[j]))).sort((a, b) => a - b);
      return ds[k - 1];
    });
    for (const k of [1, 2, 5]) {
      const det = await new KnnDetector({ k }).fit({ x: tensor(train) });
      const got = await scoreOf(det, test);
      expectClose(got, ref(k), 2e-3); // float32 sqrt of 2 − 2·cos near 0 loses digits: absolute 2e-3 on distances ≤ 2
      if (k === 2) expect(got[test.length - 1]).toBeLessThan(2e-3); // the query equals two bank rows
      det.dispose();
    }
  });

  it('errors: not fitted, wrong feature width, k larger than the bank', async () => {
    setBackend(cpu);
    const x = tensor([[1, 2]]);
    expect(() => new KnnDetector().score(x)).toThrow(NotFittedError);
    await expect(new KnnDetector({ k: 5 }).fit({ x })).rejects.toThrow(ArgumentError);
    const det = await new KnnDetector({ k: 1 }).fit({ x });
    const bad = tensor([[1, 2, 3]]);
    expect(() => det.score(bad)).toThrow(ShapeError);
    expect(() => new KnnDetector({ k: 0 })).toThrow(ArgumentError);
    bad.dispose();
    x.dispose();
    det.dispose();
  });
});

describe('GmmDetector', () => {
  it('1-D hand case: −log Σ_c π_c 𝒩(f; μ_c, σ²_c)', async () => {
    setBackend(cpu);
    // class 0 {0, 2}: μ 1, σ² 1;  class 1 {10, 12, 14}: μ 12, σ² 8/3; π = (2/5, 3/5)
    const det = await new GmmDetector({ regularization: 0 }).fit({ x: tensor([[0], [2], [10], [12], [14]]), labels: [0, 0, 1, 1, 1] });
    const pdf = (f: number, m: number, v: number) => Math.exp(-((f - m) ** 2) / (2 * v)) / Math.sqrt(2 * Math.PI * v);
    const ref = (f: number) => -Math.log(0.4 * pdf(f, 1, 1) + 0.6 * pdf(f, 12, 8 / 3));
    expectClose(await scoreOf(det, [[1], [12], [6], [-3]]), [ref(1), ref(12), ref(6), ref(-3)], 1e-5);
    expectClose(det.logConstants, [Math.log(0.4) - 0.5 * Math.log(2 * Math.PI), Math.log(0.6) - 0.5 * Math.log(2 * Math.PI * 8 / 3)], 1e-12);
  });

  it('matches an explicit-inverse reference with per-class full covariances and the ridge', async () => {
    setBackend(cpu);
    const c = 3;
    const d = 4;
    const x = randomRows(90, d, 5, (i, j) => 3 * Math.cos((i % c) * 2 + j));
    const y = x.map((_, i) => i % c);
    const test = randomRows(20, d, 6, (i, j) => (i % 4) * Math.sin(j));
    const r = 0.05;
    const det = await new GmmDetector({ regularization: r }).fit({ x: tensor(x), labels: tensor(y, undefined, { dtype: 'int32' }), numClasses: c });
    const comps = Array.from({ length: c }, (_, k) => {
      const rows = x.filter((_, i) => y[i] === k);
      const mu = Array.from({ length: d }, (_, j) => rows.reduce((a, q) => a + q[j], 0) / rows.length);
      const cov = Array.from({ length: d }, (_, a) => Array.from({ length: d }, (_, b) => rows.reduce((s, q) => s + (q[a] - mu[a]) * (q[b] - mu[b]), 0) / rows.length));
      const tr = cov.reduce((s, row, a) => s + row[a], 0);
      cov.forEach((row, a) => (row[a] += (r * tr) / d));
      return { pi: rows.length / x.length, mu, ...invDet(cov) };
    });
    const ref = test.map((f) => -Math.log(comps.reduce((s, { pi, mu, inv, det: dt }) => {
      const v = f.map((q, j) => q - mu[j]);
      let q = 0;
      for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) q += v[a] * inv[a][b] * v[b];
      return s + (pi * Math.exp(-q / 2)) / Math.sqrt((2 * Math.PI) ** d * dt);
    }, 0)));
    expectClose(await scoreOf(det, test), ref, 2e-5);
    det.dispose();
  });

  it('a class without samples is refused', async () => {
    setBackend(cpu);
    await expect(new GmmDetector().fit({ x: tensor([[0], [1]]), labels: [0, 0], numClasses: 2 })).rejects.toThrow(/class 1 has no training samples/);
  });
});

describe('ReActEnergyDetector (Sun, Guo & Li 2021)', () => {
  it('clips at c, then −T·logsumexp(head(h)/T); c = the p-th percentile of the training activations', async () => {
    setBackend(cpu);
    const head = (h: Tensor) => h; // logits = clipped features
    const fixed = new ReActEnergyDetector({ head, threshold: 2 });
    expectClose(await scoreOf(fixed, [[1, 5], [-1, 0]]), [-(2 + Math.log1p(Math.exp(-1))), -Math.log(Math.exp(-1) + 1)], 1e-6);
    const t2 = new ReActEnergyDetector({ head, threshold: 2, temperature: 2 });
    expectClose(await scoreOf(t2, [[1, 5]]), [-2 * Math.log(Math.exp(0.5) + Math.exp(1))], 1e-6);
    const train = tensor([[0, 1], [2, 3], [4, 5]]); // activations 0..5
    const p90 = await new ReActEnergyDetector({ head }).fit({ x: train });
    expect(p90.threshold).toBeCloseTo(4.5, 12); // h = 5·0.9
    const p50 = await new ReActEnergyDetector({ head, percentile: 50 }).fit({ x: train });
    expect(p50.threshold).toBeCloseTo(2.5, 12);
    expect(() => new ReActEnergyDetector({ head }).score(train)).toThrow(NotFittedError);
    train.dispose();
  });

  it('percentile: NumPy linear interpolation', () => {
    expect(percentile([3, 1, 2, 4], 0)).toBe(1);
    expect(percentile([3, 1, 2, 4], 100)).toBe(4);
    expect(percentile([3, 1, 2, 4], 50)).toBe(2.5);
    expect(percentile([10], 37)).toBe(10);
    expect(() => percentile([1], 101)).toThrow(ArgumentError);
  });
});

describe('VimDetector (Wang et al. 2022)', () => {
  // W = [[1,0,0],[0,1,0]], b = [1, −2] → origin o = −Wᵀ(WWᵀ)⁻¹b = (−1, 2, 0).
  const o = [-1, 2, 0];
  const W = [1, 0, 0, 0, 1, 0];
  const b = [1, -2];
  // Centred training rows with a diagonal covariance (18, 8, 0.5)/6: the residual axis is e₃.
  const centred = [[3, 0, 0], [-3, 0, 0], [0, 2, 0], [0, -2, 0], [0, 0, 0.5], [0, 0, -0.5]];
  const train = centred.map((r) => r.map((v, j) => v + o[j]));

  it('hand case: origin, residual, α = Σ max z / Σ ‖residual‖, score = α‖res‖ − logsumexp z', async () => {
    setBackend(cpu);
    const det = await new VimDetector({ weight: W, bias: b, principalDim: 2 }).fit({ x: tensor(train) });
    const f = det.fitted;
    expectClose(f.origin, o, 1e-12);
    // logits of the training rows = the centred first two coordinates; max: 3, 0, 2, 0, 0, 0 → 5; residual norms sum to 1
    expect(f.alpha).toBeCloseTo(5, 10);
    expect(Math.abs(f.residualBasis[2])).toBeCloseTo(1, 10);
    // query o + (1, 1, 2): z = (1, 1), residual 2 → 5·2 − (1 + ln 2)
    const q = [1, 1, 2].map((v, j) => v + o[j]);
    expectClose(await scoreOf(det, [q, o]), [10 - 1 - Math.LN2, -Math.LN2], 1e-6);
    expect(() => new VimDetector({ weight: W, bias: b, principalDim: 3 }).fitHost(train.flat(), 3, W, b)).toThrow(ArgumentError);
    det.dispose();
  });

  it('symmetricEigen: A·v = λ·v, descending, orthonormal', () => {
    const rows = randomRows(30, 5, 9);
    const A = new Float64Array(25);
    for (const r of rows) for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) A[i * 5 + j] += r[i] * r[j];
    const { values, vectors } = symmetricEigen(A, 5);
    for (let k = 0; k < 5; k++) {
      if (k > 0) expect(values[k]).toBeLessThanOrEqual(values[k - 1]);
      for (let i = 0; i < 5; i++) {
        let av = 0;
        for (let j = 0; j < 5; j++) av += A[i * 5 + j] * vectors[j * 5 + k];
        expect(Math.abs(av - values[k] * vectors[i * 5 + k])).toBeLessThan(1e-9 * values[0]);
      }
      for (let m = 0; m < 5; m++) {
        let dot = 0;
        for (let i = 0; i < 5; i++) dot += vectors[i * 5 + k] * vectors[i * 5 + m];
        expect(dot).toBeCloseTo(k === m ? 1 : 0, 10);
      }
    }
  });
});

describe('MultiLayerMahalanobisDetector (Lee et al. 2018)', () => {
  // Two 1-D "layers": column 0 and column 1. Class 0 {(0,0), (2,4)}, class 1 {(10,20), (12,24)}:
  // layer 1 μ = 1, 11, σ² = 1; layer 2 μ = 2, 22, σ² = 4.
  const layers = (x: Tensor) => [slice(x, [0, 0], [-1, 1]), slice(x, [0, 1], [-1, 1])];
  const trainX = [[0, 0], [2, 4], [10, 20], [12, 24]];
  const labels = [0, 0, 1, 1];

  it('per-layer distances, input pre-processing x̃ = x − ε·sign(∇ₓM_l), default weights 1/D_l', async () => {
    setBackend(cpu);
    const plain = await new MultiLayerMahalanobisDetector({ layers }).fit({ x: tensor(trainX), labels });
    const x = tensor([[5, 3], [11, 21]]);
    const s0 = plain.layerScores(x);
    expect(s0.shape).toEqual([2, 2]);
    expectClose(await s0.data(), [16, 0.25, 0, 0.25], 1e-6);
    expectClose(await scoreOf(plain, [[5, 3], [11, 21]]), [16.25, 0.25], 1e-6);
    const pre = await new MultiLayerMahalanobisDetector({ layers, epsilon: 0.5 }).fit({ x: tensor(trainX), labels });
    const s1 = pre.layerScores(x);
    // layer 1: x₀ = 5 → 4.5: (3.5)² = 12.25; layer 2: x₁ = 3 → 2.5: 0.25/4; row 2: 11 is at the mean (gradient 0 → no step); 21 → 21.5: 0.25/4
    expectClose(await s1.data(), [12.25, 0.0625, 0, 0.0625], 1e-6);
    const shared = plain.withEpsilon(0.5); // the fitted layer statistics, another ε
    const s2 = shared.layerScores(x);
    expectClose(await s2.data(), [12.25, 0.0625, 0, 0.0625], 1e-6);
    expect(shared.epsilon).toBe(0.5);
    s2.dispose();
    s0.dispose();
    s1.dispose();
    x.dispose();
  });

  it('fitCombination: the logistic regression is at its optimum and score = b + Σ w_l (s_l − m_l)/σ_l', async () => {
    setBackend(cpu);
    const det = await new MultiLayerMahalanobisDetector({ layers, l2: 0.1 }).fit({ x: tensor(trainX), labels });
    const inRows = [[1, 2], [11, 22], [0.5, 3], [12, 20], [2, 1], [10, 23]];
    const outRows = [[6, 12], [5, 30], [-4, 9], [16, 2], [1.5, 8], [10.5, 25]];
    await det.fitCombination({ inDist: tensor(inRows), outDist: tensor(outRows) });
    const { weights, bias, means, stds } = det.combination;
    // host reference of the per-layer scores
    const dist = (r: number[]) => [Math.min((r[0] - 1) ** 2, (r[0] - 11) ** 2), Math.min((r[1] - 2) ** 2, (r[1] - 22) ** 2) / 4];
    const all = [...inRows, ...outRows].map(dist);
    const y = [...inRows.map(() => 0), ...outRows.map(() => 1)];
    for (let l = 0; l < 2; l++) {
      const m = all.reduce((a, s) => a + s[l], 0) / all.length;
      expect(means[l]).toBeCloseTo(m, 4);
      expect(stds[l]).toBeCloseTo(Math.sqrt(all.reduce((a, s) => a + (s[l] - m) ** 2, 0) / all.length), 4);
    }
    // gradient of the penalised negative log-likelihood vanishes at (w, b)
    const g = [0, 0, 0];
    all.forEach((s, i) => {
      const z = bias + weights[0] * (s[0] - means[0]) / stds[0] + weights[1] * (s[1] - means[1]) / stds[1];
      const r = 1 / (1 + Math.exp(-z)) - y[i];
      g[0] += r * (s[0] - means[0]) / stds[0];
      g[1] += r * (s[1] - means[1]) / stds[1];
      g[2] += r;
    });
    g[0] += 0.1 * weights[0];
    g[1] += 0.1 * weights[1];
    for (const v of g) expect(Math.abs(v)).toBeLessThan(1e-6);
    const q = [[5, 3], [11, 21]];
    const want = q.map(dist).map((s) => bias + weights[0] * (s[0] - means[0]) / stds[0] + weights[1] * (s[1] - means[1]) / stds[1]);
    expectClose(await scoreOf(det, q), want, 1e-5);
    det.dispose();
  });

  it('logisticRegression: recovers the optimum of a 1-D problem (stationarity)', () => {
    const x = [-2, -1, -0.5, 0.3, 0.1, 1, 2, 0.2];
    const y = [0, 0, 1, 0, 1, 1, 1, 0];
    const { weights, bias } = logisticRegression(x, y, 1, { l2: 0 });
    let gw = 0;
    let gb = 0;
    x.forEach((v, i) => {
      const r = 1 / (1 + Math.exp(-(weights[0] * v + bias))) - y[i];
      gw += r * v;
      gb += r;
    });
    expect(Math.abs(gw)).toBeLessThan(1e-9);
    expect(Math.abs(gb)).toBeLessThan(1e-9);
  });

  it('errors: not fitted, layers option missing', () => {
    setBackend(cpu);
    const x = tensor([[1, 2]]);
    expect(() => new MultiLayerMahalanobisDetector({ layers }).score(x)).toThrow(NotFittedError);
    expect(() => new MultiLayerMahalanobisDetector({} as { layers: (x: Tensor) => Tensor[] })).toThrow(ArgumentError);
    x.dispose();
  });
});

describe('feature detectors: no leaks, and WebGPU agrees with the float64 references', () => {
  it('scoring frees every intermediate (kNN, GMM, ViM, ReAct, multi-layer with ε)', async () => {
    setBackend(cpu);
    const train = tensor(randomRows(30, 3, 13, (i, j) => (i % 2) * 3 * j));
    const lab = Array.from({ length: 30 }, (_, i) => i % 2);
    const knn = await new KnnDetector({ k: 3 }).fit({ x: train });
    const gmm = await new GmmDetector().fit({ x: train, labels: lab });
    const vim = await new VimDetector({ weight: [1, 0, 0, 0, 1, 0], bias: [0, 0], principalDim: 1 }).fit({ x: train });
    const react = await new ReActEnergyDetector({ head: (h: Tensor) => h }).fit({ x: train });
    const ml = await new MultiLayerMahalanobisDetector({ layers: (x) => [x, slice(x, [0, 0], [-1, 2])], epsilon: 0.01 }).fit({ x: train, labels: lab });
    const q = tensor(randomRows(7, 3, 14));
    for (const d of [knn, gmm, vim, react, ml]) d.score(q).dispose(); // warm the device caches
    const before = memory().liveTensors;
    for (const d of [knn, gmm, vim, react, ml]) d.score(q).dispose();
    expect(memory().liveTensors).toBe(before);
    for (const d of [knn, gmm, vim, ml]) d.dispose();
    q.dispose();
    train.dispose();
  });

  it('kNN, GMM and ViM on WebGPU match the CPU float64 path', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rows = randomRows(50, 6, 17, (i, j) => 2 * Math.cos((i % 3) + j));
    const lab = rows.map((_, i) => i % 3);
    const test = randomRows(37, 6, 18, (i) => (i % 5) - 2);
    const W = Array.from(randomNormal(18, 19, 0));
    const bb = [0.1, -0.2, 0.3];
    const make = async (be: Backend) => {
      setBackend(be);
      const x = tensor(rows, undefined, { backend: be });
      const ds = [
        await new KnnDetector({ k: 4 }).fit({ x }),
        await new GmmDetector({ regularization: 0.01 }).fit({ x, labels: lab }),
        await new VimDetector({ weight: W, bias: bb, principalDim: 3 }).fit({ x }),
      ];
      x.dispose();
      return ds;
    };
    const onCpu = await make(cpu);
    const onGpu = await make(gpu);
    for (let i = 0; i < onCpu.length; i++) {
      const want = Array.from(await scoreOf(onCpu[i], test, cpu));
      expectClose(await scoreOf(onGpu[i], test, gpu), want, 2e-4);
      onCpu[i].dispose();
      onGpu[i].dispose();
    }
    setBackend(cpu);
  });
});
