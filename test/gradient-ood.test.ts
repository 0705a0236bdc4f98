import { describe, expect, it } from 'vitest';
import {
  Linear,
  NotFittedError,
  Sequential,
  ArgumentError,
  type Backend,
  type Tensor,
  GradientStage2Detector,
  confoundingLoss,
  fromHost,
  gradNormDetector,
  gradNormScore,
  gradientFeatures,
  gradientNormDetector,
  memory,
  parameter,
  setBackend,
  tidy,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { Rng } from './helpers/compare.js';
import { W1, W2, b1, b2, tinyMlp, tinyMlpForward } from './helpers/tiny-mlp.js';

// A fixed-weight 3 → 4 → 3 MLP with hand-checkable gradients.
const X = [[1.0, -0.5, 0.3], [-0.2, 0.8, 1.1], [0.4, 0.4, -0.9]];

const net = tinyMlp;

const forward = tinyMlpForward;
const softmax = (z: number[], T = 1) => {
  const m = Math.max(...z.map((v) => v / T));
  const e = z.map((v) => Math.exp(v / T - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};
const sq = (v: number[]) => v.reduce((s, a) => s + a * a, 0);

/** Squared norms of [W1, b1, W2, b2] gradients for output-gradient rule dz(z). */
function referenceNorms(dzOf: (z: number[]) => number[]): number[][] {
  return X.map((x) => {
    const { pre, h, z } = forward(x);
    const dz = dzOf(z);
    const dh = h.map((_, j) => (pre[j] > 0 ? W2.reduce((s, w, i) => s + w[j] * dz[i], 0) : 0));
    return [sq(dh) * sq(x), sq(dh), sq(dz) * sq(h), sq(dz)];
  });
}

function close(got: ArrayLike<number>, want: number[], rel: number): void {
  expect(got.length).toBe(want.length);
  want.forEach((w, i) => expect(Math.abs(got[i] - w)).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(w))));
}

describe('gradient features of the confounding label (Lee & AlRegib)', () => {
  it('softmax: exact per-layer squared norms, dL/dz = K·p − 1', async () => {
    setBackend(cpu);
    const m = net('float64');
    const x = fromHost(X.flat(), [3, 3], 'float64');
    const f = gradientFeatures(m, x);
    expect(f.names).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    close(await f.norms.data(), referenceNorms((z) => softmax(z).map((p) => 3 * p - 1)).flat(), 1e-12);
    // The loss itself: −Σ log p_k.
    const z = fromHost(X.flat(), [3, 3], 'float64');
    close(await confoundingLoss(z).data(), X.map((r) => -softmax(r).reduce((s, p) => s + Math.log(p), 0)), 1e-12);
  });

  it("granularity 'unit': exact per-output-unit squared norms (δ_bj²·‖a_b‖² for weights, δ_bj² for biases)", async () => {
    setBackend(cpu);
    const m = net('float64');
    const x = fromHost(X.flat(), [3, 3], 'float64');
    const f = gradientFeatures(m, x, { granularity: 'unit' });
    expect(f.names).toEqual([
      ...[0, 1, 2, 3].map((j) => `0.weight[${j}]`), ...[0, 1, 2, 3].map((j) => `0.bias[${j}]`),
      ...[0, 1, 2].map((j) => `2.weight[${j}]`), ...[0, 1, 2].map((j) => `2.bias[${j}]`),
    ]);
    expect(f.norms.shape).toEqual([3, 14]);
    const want = X.map((xr) => {
      const { pre, h, z } = forward(xr);
      const dz = softmax(z).map((p) => 3 * p - 1);
      const dh = h.map((_, j) => (pre[j] > 0 ? W2.reduce((s, w, i) => s + w[j] * dz[i], 0) : 0));
      return [...dh.map((d) => d * d * sq(xr)), ...dh.map((d) => d * d), ...dz.map((d) => d * d * sq(h)), ...dz.map((d) => d * d)];
    });
    close(await f.norms.data(), want.flat(), 1e-12);
    expect(() => gradientFeatures(m, x, { granularity: 'row' as 'unit' })).toThrow(/granularity must be 'tensor' or 'unit'/);
  });

  it('sigmoid: dL/dz = σ(z) − 1', async () => {
    setBackend(cpu);
    const m = net('float64');
    const x = fromHost(X.flat(), [3, 3], 'float64');
    const f = gradientFeatures(m, x, { confounding: 'sigmoid' });
    close(await f.norms.data(), referenceNorms((z) => z.map((v) => 1 / (1 + Math.exp(-v)) - 1)).flat(), 1e-12);
    expect(() => confoundingLoss(x, 'tanh' as 'softmax')).toThrow(ArgumentError);
  });

  it('a confident input gets a larger norm than a uniform one (the documented sign)', async () => {
    setBackend(cpu);
    const lin = new Linear(2, 3, { bias: false });
    lin.weight = parameter(fromHost([10, 0, -10, 0, 0, 10], [3, 2], 'float64'));
    const m = new Sequential(lin);
    const x = fromHost([1, 0, 0, 0], [2, 2], 'float64'); // row 0 confident, row 1 logits all 0
    const s = await gradientNormDetector(m).score(x).data();
    expect(s[0]).toBeLessThan(s[1]); // score = −Σ norms: the confident row is less OOD
    expect(s[1]).toBeCloseTo(0, 12);
  });

  it('gradientNormDetector = −Σ features; WebGPU matches CPU; no leaks', async (ctx) => {
    setBackend(cpu);
    const x = fromHost(X.flat(), [3, 3], 'float64');
    const want = referenceNorms((z) => softmax(z).map((p) => 3 * p - 1)).map((r) => -r.reduce((a, b) => a + b, 0));
    const m = net('float64');
    const before = memory().liveTensors;
    const s = gradientNormDetector(m).score(x);
    close(await s.data(), want, 1e-12);
    s.dispose();
    x.dispose();
    expect(memory().liveTensors).toBeLessThanOrEqual(before);
    const gpu = await requireWebGPU(ctx);
    setBackend(gpu);
    const xg = fromHost(X.flat(), [3, 3], 'float32', gpu);
    close(await gradientNormDetector(net('float32', gpu)).score(xg).data(), want, 1e-5);
    close(await gradNormScore(net('float32', gpu), xg).data(), gradNormReference(1), 1e-5);
  });
});

function gradNormReference(T: number): number[] {
  return X.map((x) => {
    const { h, z } = forward(x);
    const d = softmax(z, T).map((p) => (p - 1 / 3) / T);
    return -d.reduce((s, v) => s + Math.abs(v), 0) * h.reduce((s, v) => s + Math.abs(v), 0);
  });
}

describe('GradNorm (Huang et al. 2021)', () => {
  it('exact: −‖δ‖₁·‖a‖₁ with δ = (softmax(z/T) − 1/K)/T at the last Linear', async () => {
    setBackend(cpu);
    const x = fromHost(X.flat(), [3, 3], 'float64');
    for (const T of [1, 2.5]) close(await gradNormDetector(net('float64'), { temperature: T }).score(x).data(), gradNormReference(T), 1e-12);
    expect(() => gradNormScore(net('float64'), x, { temperature: 0 })).toThrow(ArgumentError);
  });
});

describe('GradientStage2Detector (the five steps)', () => {
  it('NotFittedError before fit; after fit on in-distribution vs noise it separates them', async () => {
    setBackend(cpu);
    const m = net('float32');
    const det = new GradientStage2Detector(m, { stage2: { epochs: 80, seed: 1 } });
    const rng = new Rng(4);
    // In-distribution: points near two class prototypes; the default challenge is Gaussian noise.
    const rows = (n: number, spread: number) => Array.from({ length: n }, (_, i) => {
      const c = X[i % 3];
      return c.map((v) => v * 3 + spread * rng.normal());
    }).flat();
    const xin = fromHost(rows(96, 0.05), [96, 3], 'float32');
    expect(() => det.score(xin)).toThrow(NotFittedError);
    await det.fit({ x: xin, batchSize: 32 });
    const before = memory().liveTensors;
    const read = async (t: Tensor) => { const d = await t.data(); t.dispose(); return d; };
    const sIn = await read(tidy(() => det.score(fromHost(rows(30, 0.05), [30, 3], 'float32'))));
    const noise = Array.from({ length: 90 }, () => 3 * rng.normal());
    const sOut = await read(tidy(() => det.score(fromHost(noise, [30, 3], 'float32'))));
    expect(memory().liveTensors).toBe(before);
    const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / a.length;
    expect(mean(sOut)).toBeGreaterThan(mean(sIn));
    // An explicit challenge set is used instead of the noise.
    const det2 = new GradientStage2Detector(m, { stage2: { epochs: 5 } });
    await det2.fit({ x: xin, challenge: fromHost(noise, [30, 3], 'float32') });
    expect(det2.score(xin).shape).toEqual([96]);
    expect(() => new GradientStage2Detector((() => 0) as unknown as Sequential)).toThrow(ArgumentError);
  });
});

