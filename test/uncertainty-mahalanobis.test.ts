/**
 * Mahalanobis detector (uncertainty/mahalanobis.ts): a 1-D hand-computed case, agreement with
 * a brute-force float64 reference that inverts the covariance explicitly (Gauss-Jordan), the
 * tensor path on both backends, and a singular covariance (duplicated feature).
 */
import { describe, expect, it } from 'vitest';
import { ArgumentError, MahalanobisDetector, NotFittedError, ShapeError, choleskyWithJitter, setBackend, tensor } from '../node.js';
import { randomNormal } from '../engine/random/philox.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

/** Explicit inverse by Gauss-Jordan elimination with partial pivoting (float64). */
function inverse(a: number[][]): number[][] {
  const n = a.length;
  const m = a.map((r, i) => [...r, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    [m[c], m[p]] = [m[p], m[c]];
    const piv = m[c][c];
    for (let j = 0; j < 2 * n; j++) m[c][j] /= piv;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r][c];
      for (let j = 0; j < 2 * n; j++) m[r][j] -= f * m[c][j];
    }
  }
  return m.map((r) => r.slice(n));
}

/** Brute force: class means, tied covariance (1/N), explicit Σ⁻¹, min over classes. */
function referenceScores(train: number[][], labels: number[], c: number, test: number[][]): number[] {
  const d = train[0].length;
  const mu = Array.from({ length: c }, (_, k) => {
    const rows = train.filter((_, i) => labels[i] === k);
    return Array.from({ length: d }, (_, j) => rows.reduce((a, r) => a + r[j], 0) / rows.length);
  });
  const cov = Array.from({ length: d }, () => new Array<number>(d).fill(0));
  train.forEach((f, i) => {
    for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) cov[a][b] += ((f[a] - mu[labels[i]][a]) * (f[b] - mu[labels[i]][b])) / train.length;
  });
  const inv = inverse(cov);
  return test.map((f) => Math.min(...mu.map((m) => {
    const x = f.map((v, j) => v - m[j]);
    let s = 0;
    for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) s += x[a] * inv[a][b] * x[b];
    return s;
  })));
}

/** Random correlated features with class-dependent means. */
function data(n: number, d: number, c: number, seed: number): { x: number[][]; y: number[] } {
  const g = randomNormal(n * d, seed, 0);
  const x: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const k = i % c;
    const row: number[] = [];
    for (let j = 0; j < d; j++) row.push(g[i * d + j] + (j > 0 ? 0.6 * g[i * d + j - 1] : 0) + 3 * Math.cos(k * 2.1 + j));
    x.push(row);
    y.push(k);
  }
  return { x, y };
}

function expectRelClose(got: ArrayLike<number>, want: number[], rel: number): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    expect(Math.abs(got[i] - want[i]) / Math.max(Math.abs(want[i]), 1e-3), `index ${i}: got ${got[i]}, want ${want[i]}`).toBeLessThanOrEqual(rel);
  }
}

describe('MahalanobisDetector', () => {
  it('hand-computed 1-D case', async () => {
    // class 0: {0, 2} → μ₀ = 1; class 1: {10, 12} → μ₁ = 11; Σ = (1+1+1+1)/4 = 1
    const det = await new MahalanobisDetector().fit([[0], [2], [10], [12]], [0, 0, 1, 1], 2);
    expect(Array.from(det.classMeans)).toEqual([1, 11]);
    expect(Array.from(det.covariance)).toEqual([1]);
    expect(det.jitter).toBe(0);
    expect(Array.from(det.scoreHost([[5], [1], [11.5], [-2]]))).toEqual([16, 0, 0.25, 9]);
  });

  it('relative Mahalanobis (Ren et al. 2021), hand-computed 1-D case: min_c MD_c − MD_0', async () => {
    // class 0: {0, 2} → μ₀ = 1; class 1: {4, 6} → μ₁ = 5; tied Σ = 1. Background: μ = 3, Σ₀ = (9+1+1+9)/4 = 5.
    const rows = [[0], [2], [4], [6]];
    const det = await new MahalanobisDetector({ relative: true }).fit(rows, [0, 0, 1, 1], 2);
    expect(det.name).toBe('Mahalanobis (relative)');
    // f = 3: min(4, 4) − 0 = 4; f = 10: 25 − 49/5 = 15.2; f = 1: 0 − 4/5 = −0.8
    const want = [4, 15.2, -0.8];
    expectRelClose(det.scoreHost([[3], [10], [1]]), want, 1e-12);
    setBackend(cpu);
    const x = tensor([[3], [10], [1]]);
    const s = det.score(x);
    expectRelClose(await s.data(), want, 1e-6);
    s.dispose();
    x.dispose();
    // the plain detector on the same rows keeps the class term alone
    const plain = await new MahalanobisDetector().fit(rows, [0, 0, 1, 1], 2);
    expect(Array.from(plain.scoreHost([[3], [10], [1]]))).toEqual([4, 25, 0]);
    det.dispose();
  });

  it('relative Mahalanobis in 3-D equals the class detector minus a one-class detector fitted to all rows', async () => {
    const { x, y } = data(60, 3, 3, 5);
    const rel = await new MahalanobisDetector({ relative: true }).fit(x, y, 3);
    const cls = await new MahalanobisDetector().fit(x, y, 3);
    const one = await new MahalanobisDetector().fit(x, y.map(() => 0), 1);
    const probe = x.slice(0, 7).map((r) => r.map((v, j) => v * 1.7 + j));
    const a = cls.scoreHost(probe);
    const b = one.scoreHost(probe);
    expectRelClose(rel.scoreHost(probe), Array.from(a, (v, i) => v - b[i]), 1e-12);
  });

  it('matches the explicit-inverse float64 reference (host path)', async () => {
    const { x, y } = data(60, 4, 3, 7);
    const test = data(25, 4, 3, 8).x.map((r, i) => r.map((v) => v * (1 + (i % 3))));
    const det = await new MahalanobisDetector().fit(x, y, 3);
    expect(det.jitter).toBe(0);
    expectRelClose(det.scoreHost(test), referenceScores(x, y, 3, test), 1e-10);
    expectRelClose(det.scoreHost(test.flat()), referenceScores(x, y, 3, test), 1e-10);
  });

  for (const [name, get] of [['cpu', async () => cpu], ['webgpu', requireWebGPU]] as const) {
    it(`score(Tensor) on ${name} matches the reference (float32 tolerance), fit from a tensor`, async (ctx) => {
      setBackend(await get(ctx));
      const { x, y } = data(80, 6, 4, 11);
      const test = data(33, 6, 4, 12).x.map((r, i) => r.map((v) => v + (i % 5) - 2));
      const xt = tensor(x);
      const yt = tensor(y, undefined, { dtype: 'int32' });
      const det = await new MahalanobisDetector().fit(xt, yt, 4);
      xt.dispose();
      yt.dispose();
      const t = tensor(test);
      const s = det.score(t);
      expect(s.shape).toEqual([33]);
      expectRelClose(await s.data(), referenceScores(x, y, 4, test), 2e-4);
      s.dispose();
      t.dispose();
      det.dispose();
    });
  }

  it('a duplicated feature (singular covariance) gets jitter and matches the de-duplicated scores', async () => {
    const { x, y } = data(50, 3, 2, 21);
    const test = data(10, 3, 2, 22).x;
    const dup = (r: number[]) => [...r, r[1]];
    const det = await new MahalanobisDetector().fit(x.map(dup), y, 2);
    expect(det.jitter).toBeGreaterThan(0);
    const got = det.scoreHost(test.map(dup));
    for (const v of got) expect(Number.isFinite(v)).toBe(true);
    expectRelClose(got, referenceScores(x, y, 2, test), 1e-6);
    setBackend(cpu);
    const t = tensor(test.map(dup));
    const s = det.score(t);
    expectRelClose(await s.data(), referenceScores(x, y, 2, test), 1e-3);
    s.dispose();
    t.dispose();
    det.dispose();
  });

  it('choleskyWithJitter: an exactly rank-deficient matrix', () => {
    const a = Float64Array.from([1, 1, 1, 1]); // [[1,1],[1,1]]
    const { L, jitter } = choleskyWithJitter(a, 2);
    expect(jitter).toBeGreaterThan(0);
    expect(jitter).toBeLessThan(1e-6);
    // L Lᵀ = A + λI
    expect(L[0] * L[0]).toBeCloseTo(1 + jitter, 14);
    expect(L[2] * L[0]).toBeCloseTo(1, 14);
    expect(L[2] * L[2] + L[3] * L[3]).toBeCloseTo(1 + jitter, 14);
  });

  it('errors: not fitted, empty class, wrong shapes', async () => {
    const det = new MahalanobisDetector();
    expect(() => det.scoreHost([[1]])).toThrow(NotFittedError);
    await expect(det.fit([[0], [1]], [0, 0], 2)).rejects.toThrow(/class 1 has no training samples/);
    await expect(det.fit([[0], [1]], [0, 2], 2)).rejects.toThrow(ArgumentError);
    await det.fit([[0, 1], [1, 0]], [0, 0], 1);
    setBackend(cpu);
    const t = tensor([[1, 2, 3]]);
    expect(() => det.score(t)).toThrow(ShapeError);
    t.dispose();
  });
});
