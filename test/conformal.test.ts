import { beforeAll, describe, expect, it } from 'vitest';
import {
  ArgumentError, CalibrationSizeError, ConformalRegressor, ConformalSetSizeDetector, NotFittedError, DTypeError, IndexError, ShapeError, SplitConformalClassifier,
  conformalClassScores, conformalQuantile, intervalMetrics, memory, minCalibrationSize, randomNormal, randomUniform, setBackend,
  setMetrics, softmaxRows, tensor, type Backend, type Tensor,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

beforeAll(() => {
  setBackend(cpu);
});

async function rows(t: Tensor): Promise<number[][]> {
  return (await t.toArray()) as number[][];
}

function closeRows(got: number[][], want: number[][], digits = 6): void {
  expect(got.length).toBe(want.length);
  got.forEach((r, i) => r.forEach((v, j) => expect(v).toBeCloseTo(want[i][j], digits)));
}

describe('conformal quantile: the ⌈(n+1)(1−α)⌉-th smallest score', () => {
  it('exact values on hand-made scores', () => {
    const s = [5, 1, 4, 2, 3];
    expect(conformalQuantile(s, 0.2)).toBe(5); // ⌈6·0.8⌉ = 5
    expect(conformalQuantile(s, 0.4)).toBe(4); // ⌈3.6⌉ = 4
    expect(conformalQuantile(s, 0.5)).toBe(3); // ⌈3⌉ = 3
    expect(conformalQuantile(s, 0.9)).toBe(1); // ⌈0.6⌉ = 1
    const nine = [9, 8, 7, 6, 5, 4, 3, 2, 1];
    expect(conformalQuantile(nine, 0.1)).toBe(9); // ⌈10·0.9⌉ = 9 exactly (no float round-up to 10)
    expect(conformalQuantile([0.3, 0.1, 0.2, 0.7, 0.5, 0.6, 0.4, 0.9, 0.8, 1.0], 0.25)).toBeCloseTo(0.9, 12); // ⌈8.25⌉ = 9
  });

  it('minimum calibration sizes', () => {
    expect(minCalibrationSize(0.1)).toBe(9);
    expect(minCalibrationSize(0.05)).toBe(19);
    expect(minCalibrationSize(0.01)).toBe(99);
    expect(minCalibrationSize(0.5)).toBe(1);
    expect(minCalibrationSize(0.3)).toBe(3); // ⌈4·0.7⌉ = 3 ≤ 3, ⌈3·0.7⌉ = 3 > 2
  });

  it('too few scores, α outside (0, 1), NaN: typed errors that say the minimum n', () => {
    expect(() => conformalQuantile([1, 2, 3, 4, 5, 6, 7, 8], 0.1)).toThrow(CalibrationSizeError);
    expect(() => conformalQuantile([1, 2, 3, 4, 5, 6, 7, 8], 0.1)).toThrow(/need at least n = 9/);
    try {
      conformalQuantile([1, 2], 0.01);
    } catch (e) {
      expect(e).toBeInstanceOf(ArgumentError);
      expect((e as CalibrationSizeError).minimum).toBe(99);
    }
    for (const a of [0, 1, -0.1, 1.5, NaN]) expect(() => conformalQuantile([1, 2, 3], a)).toThrow(/alpha must be a number in \(0, 1\)/);
    expect(() => conformalQuantile([1, NaN, 3], 0.5)).toThrow(ArgumentError);
  });
});

const P = [
  [0.5, 0.3, 0.2],
  [0.1, 0.6, 0.3],
  [0.4, 0.4, 0.2], // a tie: class 0 is ranked before class 1 (lower index first)
];

describe('classification scores on a hand-made softmax', () => {
  it('LAC / THR: 1 − p_y', async () => {
    const s = conformalClassScores(tensor(P), { score: 'lac' });
    closeRows(await rows(s), P.map((r) => r.map((p) => 1 - p)));
    closeRows(await rows(conformalClassScores(tensor(P), { score: 'thr' })), await rows(s));
  });

  it('APS non-randomised: mass of the classes ranked before y, plus p_y', async () => {
    const s = conformalClassScores(tensor(P), { score: 'aps', randomized: false });
    closeRows(await rows(s), [
      [0.5, 0.8, 1.0],
      [1.0, 0.6, 0.9],
      [0.4, 0.8, 1.0],
    ]);
  });

  it('APS randomised with a fixed U: the mass before y plus u·p_y (one u per row)', async () => {
    const u = [0.5, 0.25, 0.75];
    const s = conformalClassScores(tensor(P), { score: 'aps', u });
    closeRows(await rows(s), [
      [0.25, 0.5 + 0.15, 0.8 + 0.1],
      [0.9 + 0.025, 0.15, 0.6 + 0.075],
      [0.3, 0.4 + 0.3, 0.8 + 0.15],
    ]);
    // u as a tensor gives the same; a seed reproduces its draw.
    closeRows(await rows(conformalClassScores(tensor(P), { score: 'aps', u: tensor(u) })), await rows(s));
    const a = await rows(conformalClassScores(tensor(P), { score: 'aps', seed: 7 }));
    const b = await rows(conformalClassScores(tensor(P), { score: 'aps', seed: 7 }));
    expect(a).toEqual(b);
  });

  it('RAPS: APS + λ·max(0, rank − k_reg)', async () => {
    const s = conformalClassScores(tensor(P), { score: 'raps', randomized: false, lambda: 0.1, kReg: 1 });
    closeRows(await rows(s), [
      [0.5, 0.9, 1.2],
      [1.2, 0.6, 1.0],
      [0.4, 0.9, 1.2],
    ]);
    const r = conformalClassScores(tensor(P), { score: 'raps', u: [0.5, 0.25, 0.75], lambda: 0.2, kReg: 2 });
    closeRows(await rows(r), [
      [0.25, 0.65, 0.9 + 0.2],
      [0.925 + 0.2, 0.15, 0.675],
      [0.3, 0.7, 0.95 + 0.2],
    ]);
  });

  it('prediction sets from a hand-computed q̂', async () => {
    // Calibration scores (APS, non-randomised) at the labels: 0.5, 0.8, 1.0, 0.6; α = 0.4, n = 4:
    // ⌈5·0.6⌉ = 3 → q̂ = the 3rd smallest = 0.8.
    const cal = tensor([P[0], P[0], P[0], P[1]]);
    const c = await new SplitConformalClassifier({ alpha: 0.4, score: 'aps', randomized: false }).calibrate(cal, [0, 1, 2, 1]);
    expect(c.qhat).toBeCloseTo(0.8, 6);
    expect(c.calibrationSize).toBe(4);
    const sets = c.predictSets(tensor(P));
    expect(sets.dtype).toBe('bool');
    expect(await sets.toArray()).toEqual([ // bool reads back as 1 / 0
      [1, 1, 0],
      [0, 1, 0],
      [1, 1, 0],
    ]);
    const m = await setMetrics(sets, [1, 2, 2]);
    expect(m.coverage).toBeCloseTo(1 / 3, 12);
    expect(m.meanSize).toBeCloseTo(5 / 3, 12);
    expect(m.sizeStratified).toEqual([
      { size: 1, count: 1, coverage: 0 },
      { size: 2, count: 2, coverage: 0.5 },
    ]);
    expect(m.minStratifiedCoverage).toBe(0);
    expect(m.emptyFraction).toBe(0);
    // An empty set counts in emptyFraction, not in the worst non-empty stratum.
    const withEmpty = await setMetrics(tensor([[1, 0, 0], [0, 0, 0], [0, 1, 1]], { dtype: 'bool' }), [0, 1, 2]);
    expect(withEmpty).toEqual({
      coverage: 2 / 3, meanSize: 1, emptyFraction: 1 / 3, minStratifiedCoverage: 1,
      sizeStratified: [{ size: 0, count: 1, coverage: 0 }, { size: 1, count: 1, coverage: 1 }, { size: 2, count: 1, coverage: 1 }],
    });
    // LAC at the same calibration: scores 0.5, 0.7, 0.8, 0.4 → q̂ = 0.7; set = {y : p_y ≥ 0.3}.
    const lac = await new SplitConformalClassifier({ alpha: 0.4, score: 'lac' }).calibrate(cal, [0, 1, 2, 1]);
    expect(lac.qhat).toBeCloseTo(0.7, 6);
    expect(await lac.predictSets(tensor([[0.05, 0.05, 0.9]])).toArray()).toEqual([[0, 0, 1]]);
    expect(await lac.predictSets(tensor([[0.2, 0.25, 0.55], [0.35, 0.35, 0.3]])).toArray()).toEqual([[0, 0, 1], [1, 1, 1]]);
    // LAC sets can be empty; allowEmpty: false adds the top class (argmax p).
    expect(await lac.predictSets(tensor([[0.2, 0.25, 0.29]])).toArray()).toEqual([[0, 0, 0]]);
    const lacNe = await new SplitConformalClassifier({ alpha: 0.4, score: 'lac', allowEmpty: false }).calibrate(cal, [0, 1, 2, 1]);
    expect(await lacNe.predictSets(tensor([[0.2, 0.25, 0.29]])).toArray()).toEqual([[0, 0, 1]]);
    expect(await new SplitConformalClassifier({ alpha: 0.4, score: 'aps', randomized: false }).calibrate(cal, [0, 1, 2, 1])
      .then((a) => a.predictSets(tensor([[0.85, 0.1, 0.05]])).toArray())).toEqual([[0, 0, 0]]); // p_top = 0.85 > q̂ = 0.8: empty
    expect(await new SplitConformalClassifier({ alpha: 0.4, score: 'aps', randomized: false, allowEmpty: false }).calibrate(cal, [0, 1, 2, 1])
      .then((a) => a.predictSets(tensor([[0.85, 0.1, 0.05]])).toArray())).toEqual([[1, 0, 0]]);
    expect(lacNe.allowEmpty).toBe(false);
  });

  it('leaves no tensor behind', async () => {
    const probs = tensor(P);
    const before = memory().liveTensors;
    const c = await new SplitConformalClassifier({ alpha: 0.4, score: 'raps' }).calibrate(probs, [0, 1, 2], { seed: 1 });
    const sets = c.predictSets(probs, { seed: 2 });
    await setMetrics(sets, [0, 1, 2]);
    sets.dispose();
    expect(memory().liveTensors).toBe(before);
  });

  it('bad input: typed errors naming the method and the shapes', async () => {
    expect(() => new SplitConformalClassifier({ alpha: 1 })).toThrow(ArgumentError);
    expect(() => new SplitConformalClassifier({ alpha: 0 })).toThrow(/alpha must be a number in \(0, 1\)/);
    expect(() => new SplitConformalClassifier({ alpha: 0.1, lambda: -1 })).toThrow(/lambda/);
    expect(() => new SplitConformalClassifier({ alpha: 0.1, score: 'bogus' as 'aps' })).toThrow(/unknown score/);
    const c = new SplitConformalClassifier({ alpha: 0.1 });
    expect(() => c.qhat).toThrow(NotFittedError);
    expect(() => c.predictSets(tensor(P))).toThrow(/call calibrate/);
    await expect(c.calibrate(tensor(P), [0, 1, 2])).rejects.toThrow(CalibrationSizeError);
    await expect(c.calibrate(tensor(P), [0, 1, 2])).rejects.toThrow(/3 calibration points are too few for alpha = 0.1; need at least n = 9/);
    const ok = new SplitConformalClassifier({ alpha: 0.5 });
    await expect(ok.calibrate(tensor(P), [0, 1])).rejects.toThrow(ShapeError);
    await expect(ok.calibrate(tensor(P), [0, 1, 3])).rejects.toThrow(IndexError);
    await expect(ok.calibrate(tensor([0.1, 0.9]), [0])).rejects.toThrow(/expected probabilities \[B, K\], got \[2\]/);
    await expect(ok.calibrate(tensor(P), tensor([0, 1, 2]))).rejects.toThrow(DTypeError);
    expect(() => conformalClassScores(tensor(P), { u: [0.5] })).toThrow(/u must have one value per row, \[3\], got \[1\]/);
    await expect(setMetrics(tensor(P), [0, 1, 2])).rejects.toThrow(ShapeError);
  });
});

/** Synthetic exchangeable data: softmax of 2·N(0,1) logits over K classes, labels drawn from those probabilities. */
function synthetic(n: number, K: number, seed: number): { probs: Float64Array; labels: Int32Array } {
  const z = randomNormal(n * K, seed, 0);
  for (let i = 0; i < z.length; i++) z[i] *= 2;
  const probs = softmaxRows(z, K);
  const u = randomUniform(n, seed, 1_000_000);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let c = 0;
    let k = 0;
    while (k < K - 1 && (c += probs[i * K + k]) <= u[i]) k++;
    labels[i] = k;
  }
  return { probs, labels };
}

/**
 * Coverage statistics for split conformal with n calibration and m test points at level α:
 * given the calibration set the coverage is Beta(n + 1 − l, l), l = ⌊(n+1)α⌋ (continuous
 * scores); the m test points add binomial noise. The mean over R independent seeds then has
 * standard deviation sd = sqrt(Var_Beta + E[c(1−c)]/m) / √R. The test accepts the mean within
 * [1 − α − 4·sd, 1 − α + 1/(n+1) + 4·sd]: the lower end is the guarantee, the upper end its
 * tightness for tie-free scores; 4 sd makes a false failure odds of about 1 in 30,000.
 */
function coverageBand(n: number, m: number, alpha: number, R: number): [number, number] {
  const l = Math.floor((n + 1) * alpha);
  const a = n + 1 - l;
  const b = l;
  const varBeta = (a * b) / ((a + b) ** 2 * (a + b + 1));
  const mu = a / (a + b);
  const sd = Math.sqrt(varBeta + (mu * (1 - mu)) / m) / Math.sqrt(R);
  return [1 - alpha - 4 * sd, 1 - alpha + 1 / (n + 1) + 4 * sd];
}

describe('coverage ≥ 1 − α on exchangeable synthetic data, over 200 seeds', () => {
  const R = 200;
  const n = 100;
  const m = 200;
  const K = 5;
  const alpha = 0.1;
  const cases: [string, ConstructorParameters<typeof SplitConformalClassifier>[0]][] = [
    ['lac', { alpha, score: 'lac' }],
    ['aps randomised', { alpha, score: 'aps' }],
    ['aps non-randomised', { alpha, score: 'aps', randomized: false }],
    ['raps randomised', { alpha, score: 'raps', lambda: 0.05, kReg: 1 }],
  ];
  for (const [label, opts] of cases) {
    it(label, async () => {
      setBackend(cpu);
      const [lo, hi] = coverageBand(n, m, alpha, R);
      let sum = 0;
      for (let r = 0; r < R; r++) {
        const d = synthetic(n + m, K, 1000 + r);
        const probs = tensor(Float32Array.from(d.probs), [n + m, K]);
        const cal = probs.slice([0, 0], [n, K]);
        const test = probs.slice([n, 0], [m, K]);
        const c = await new SplitConformalClassifier(opts).calibrate(cal, d.labels.subarray(0, n), { seed: r });
        const sets = c.predictSets(test, { seed: R + r });
        sum += (await setMetrics(sets, d.labels.subarray(n))).coverage;
        for (const t of [probs, cal, test, sets]) t.dispose();
      }
      const mean = sum / R;
      expect(mean).toBeGreaterThanOrEqual(lo);
      expect(mean).toBeLessThanOrEqual(hi);
    });
  }

  it('regression: absolute residual and CQR intervals', async () => {
    setBackend(cpu);
    const [lo, hi] = coverageBand(n, m, alpha, R);
    for (const method of ['absolute', 'cqr'] as const) {
      let sum = 0;
      for (let r = 0; r < R; r++) {
        const N = n + m;
        const x = randomUniform(N, 5000 + r, 0);
        const e = randomNormal(N, 5000 + r, 1_000_000);
        // heteroscedastic noise: the fixed ±0.5 quantile band of the CQR heads is wrong on purpose
        const y = Float32Array.from(x, (xi, i) => 2 * xi + (0.2 + xi) * e[i]);
        const pred = method === 'absolute'
          ? tensor(Float32Array.from(x, (xi) => 2 * xi), [N])
          : tensor(Float32Array.from({ length: 2 * N }, (_, j) => 2 * x[j >> 1] + (j & 1 ? 0.5 : -0.5)), [N, 2]);
        const yt = tensor(y, [N]);
        const calPred = method === 'absolute' ? pred.slice([0], [n]) : pred.slice([0, 0], [n, 2]);
        const testPred = method === 'absolute' ? pred.slice([n], [m]) : pred.slice([n, 0], [m, 2]);
        const reg = await new ConformalRegressor({ alpha, method }).calibrate(calPred, yt.slice([0], [n]));
        const { lower, upper } = reg.predictIntervals(testPred);
        const yTest = yt.slice([n], [m]);
        sum += (await intervalMetrics(lower, upper, yTest)).coverage;
        for (const t of [pred, yt, calPred, testPred, lower, upper, yTest]) t.dispose();
      }
      const mean = sum / R;
      expect(mean, method).toBeGreaterThanOrEqual(lo);
      expect(mean, method).toBeLessThanOrEqual(hi);
    }
  });
});

describe('regression intervals: exact values and errors', () => {
  it('absolute residual: ŷ ± q̂; CQR: [q_lo − q̂, q_hi + q̂]', async () => {
    // residuals |y − ŷ| = 0.1, 0.4, 0.2, 0.3 → α = 0.4, n = 4: q̂ = the 3rd smallest = 0.3
    const reg = await new ConformalRegressor({ alpha: 0.4 }).calibrate(tensor([1, 2, 3, 4]), tensor([1.1, 1.6, 3.2, 4.3]));
    expect(reg.qhat).toBeCloseTo(0.3, 6);
    const iv = reg.predictIntervals(tensor([0, 10]));
    expect(Array.from(await iv.lower.data())).toEqual([expect.closeTo(-0.3, 6), expect.closeTo(9.7, 5)]);
    expect(Array.from(await iv.upper.data())).toEqual([expect.closeTo(0.3, 6), expect.closeTo(10.3, 5)]);
    // CQR scores max(lo − y, y − hi): y inside [0, 1] at 0.5 → −0.5, 0.9 → −0.1; outside: 1.2 → 0.2, −0.4 → 0.4.
    const q = tensor([[0, 1], [0, 1], [0, 1], [0, 1]]);
    const cqr = await new ConformalRegressor({ alpha: 0.4, method: 'cqr' }).calibrate(q, tensor([0.5, 0.9, 1.2, -0.4]));
    expect(cqr.qhat).toBeCloseTo(0.2, 6);
    const c = cqr.predictIntervals(tensor([[2, 3]]));
    expect((await c.lower.data())[0]).toBeCloseTo(1.8, 6);
    expect((await c.upper.data())[0]).toBeCloseTo(3.2, 6);
    expect(await intervalMetrics(tensor([0, 0]), tensor([1, 1]), tensor([0.5, 2]))).toEqual({ coverage: 0.5, meanWidth: 1 });
  });

  it('bad input', async () => {
    expect(() => new ConformalRegressor({ alpha: 2 })).toThrow(ArgumentError);
    await expect(new ConformalRegressor({ alpha: 0.4, method: 'cqr' }).calibrate(tensor([1, 2, 3, 4]), tensor([1, 2, 3, 4]))).rejects.toThrow(/'cqr' expects quantile predictions \[B, 2\]/);
    await expect(new ConformalRegressor({ alpha: 0.4 }).calibrate(tensor([1, 2, 3, 4]), tensor([1, 2, 3]))).rejects.toThrow(ShapeError);
    await expect(new ConformalRegressor({ alpha: 0.05 }).calibrate(tensor([1, 2, 3, 4]), tensor([1, 2, 3, 4]))).rejects.toThrow(/need at least n = 19/);
    expect(() => new ConformalRegressor({ alpha: 0.4 }).predictIntervals(tensor([1]))).toThrow(/calibrate/);
  });
});

describe('ConformalSetSizeDetector: the set size as a Detector', () => {
  it('fit calibrates on labelled data; score = |C(x)|; NotFittedError before fit; no leaks', async () => {
    setBackend(cpu);
    // The "model" is the identity on log-probabilities, so softmax(model(x)) = the rows of P.
    const logP = (rowsP: number[][]) => tensor(rowsP.map((r) => r.map(Math.log)));
    const det = new ConformalSetSizeDetector((x: Tensor) => x.mul(1), new SplitConformalClassifier({ alpha: 0.4, score: 'aps', randomized: false }));
    expect(() => det.score(logP(P))).toThrow(NotFittedError);
    expect(det.name).toBe('conformal set size (aps, α = 0.4)');
    await det.fit({ x: logP([P[0], P[0], P[0], P[1]]), labels: [0, 1, 2, 1], batchSize: 3 });
    expect(det.classifier.qhat).toBeCloseTo(0.8, 5);
    const x = logP(P);
    const before = memory().liveTensors;
    const s = det.score(x);
    expect(Array.from(await s.data())).toEqual([2, 1, 2]);
    const p = det.predict(x);
    expect(Array.from(await p.prediction.data())).toEqual([0, 1, 0]);
    for (const t of [s, p.score, p.prediction]) t.dispose();
    expect(memory().liveTensors).toBe(before);
    await expect(det.fit({ x: logP(P), labels: [0, 1] })).rejects.toThrow(ShapeError);
    await expect(det.fit({ x: logP(P) })).rejects.toThrow(/needs labels/);
  });
});

describe('WebGPU', () => {
  it('class scores and sets equal the CPU reference', async (ctx) => {
    const gpu: Backend = await requireWebGPU(ctx);
    const d = synthetic(37, 7, 3);
    const u = randomUniform(37, 4, 0);
    for (const opts of [{ score: 'lac' }, { score: 'aps', u }, { score: 'raps', u, lambda: 0.1, kReg: 2 }, { score: 'aps', randomized: false }] as const) {
      const on = (be: Backend) => conformalClassScores(tensor(Float32Array.from(d.probs), [37, 7], { backend: be }), opts);
      const a = await on(cpu).data();
      const b = await on(gpu).data();
      for (let i = 0; i < a.length; i++) expect(b[i]).toBeCloseTo(a[i], 5);
    }
    setBackend(gpu);
    const probs = tensor(Float32Array.from(d.probs), [37, 7]);
    const c = await new SplitConformalClassifier({ alpha: 0.2, score: 'aps', randomized: false }).calibrate(probs, d.labels);
    const m = await setMetrics(c.predictSets(probs), d.labels);
    expect(m.coverage).toBeGreaterThanOrEqual(0.8);
  });
});
