/**
 * The Detector protocol (uncertainty/detector.ts, detectors.ts, evaluate.ts, guard.ts): every
 * adapter's score equals the score function it wraps on a fixed model, on both backends;
 * predict() agrees with score(); no tensors leak; NotFittedError before fit; evaluateDetectors on
 * a hand-checkable case; guard(detector, { fpr, heldOut }) places the threshold, reports the
 * realised FPR and works a whole batch at a time.
 */
import { describe, expect, it } from 'vitest';
import {
  type Backend, type Detector, type Tensor, ArgumentError, DeepEnsemble, DetectorGuard, Dropout, Linear, MahalanobisDetector, NotFittedError,
  NotReliableClassification, ReLU, Sequential, Tanh, calibrateThreshold, dirichletDetector, dirichletDifferentialEntropy,
  dirichletExpectedEntropy, dirichletMaxProbabilityScore, dirichletMutualInformation, dirichletPrecisionScore, dirichletPredictiveEntropy, energyDetector, energyScore,
  DTypeError, ShapeError,
  enableMCDropout, ensembleDetector, entropyDetector, entropyScore, evaluateDetectors, guard, manualSeed, maxLogitDetector, maxLogitScore,
  mcDropout, mcDropoutDetector, meanEnergyScore, memory, mspDetector, mspScore, noGrad, odinDetector, odinScore, oodMetrics, scoreAll,
  setBackend, tensor, tidy, uniform, vacuity, dispose,
} from '../node.js';
import { digamma } from '../engine/special.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

async function vals(t: Tensor): Promise<number[]> {
  const d = Array.from(await t.data());
  t.dispose();
  return d;
}

function mlp(): Sequential {
  return new Sequential(new Linear(6, 16), new ReLU(), new Dropout(0.4), new Linear(16, 12), new Tanh(), new Linear(12, 4));
}

/**
 * Builds the fixed model on `be` (seeded) and a fixed input batch. Inside `tidy`, so that
 * temporaries of the parameter initialisation are freed now rather than garbage-collected
 * later (which would move `memory().liveTensors` under the leak checks below).
 */
function fixture(be: Backend) {
  setBackend(be);
  return tidy(() => {
    manualSeed(7);
    const model = mlp();
    model.eval();
    const x = uniform([5, 6], { seed: 3, low: -2, high: 2 });
    const train = uniform([40, 6], { seed: 4, low: -2, high: 2 });
    const labels = Array.from({ length: 40 }, (_, i) => i % 3);
    return { model, x, train, labels };
  });
}

/** Every adapter vs the function it wraps; returns the max |Δ| per adapter (all must be 0 or tiny). */
async function adaptersEqualFunctions(be: Backend): Promise<void> {
  const { model, x, train, labels } = fixture(be);
  const f = (t: Tensor) => model.forward(t);
  const cases: [Detector, () => Tensor][] = [
    [mspDetector(model), () => mspScore(f(x))],
    [maxLogitDetector(model), () => maxLogitScore(f(x))],
    [entropyDetector(model), () => entropyScore(f(x))],
    [energyDetector(model, { temperature: 2.5 }), () => energyScore(f(x), 2.5)],
    [energyDetector(f), () => energyScore(f(x), 1)],
    [odinDetector(model, { temperature: 10, epsilon: 0.02 }), () => odinScore(f, x, { temperature: 10, epsilon: 0.02 })],
    [dirichletDetector(model, { measure: 'vacuity', concentration: 'exp' }), () => vacuity(f(x).exp())],
    [dirichletDetector(model, { measure: 'precision', concentration: 'exp' }), () => dirichletPrecisionScore(f(x).exp())],
    [dirichletDetector(model, { concentration: 'exp' }), () => dirichletMutualInformation(f(x).exp())],
    [dirichletDetector(model, { measure: 'expectedEntropy', concentration: (z) => z.exp().add(1) }), () => dirichletExpectedEntropy(f(x).exp().add(1))],
    [dirichletDetector(model, { measure: 'predictiveEntropy', concentration: 'exp' }), () => dirichletPredictiveEntropy(f(x).exp())],
    [dirichletDetector((t) => f(t).exp(), { measure: 'differentialEntropy' }), () => dirichletDifferentialEntropy(f(x).exp())],
    [dirichletDetector(model, { measure: 'maxProbability', concentration: 'exp' }), () => dirichletMaxProbabilityScore(f(x).exp())],
  ];
  // MC dropout: the adapter vs mcDropout with the same seed (MC dropout switched on by hand).
  const mcOld = () => {
    enableMCDropout(model);
    const r = mcDropout(model, x, { samples: 6, seed: 11 });
    enableMCDropout(model, false);
    return r;
  };
  cases.push(
    [mcDropoutDetector(model, { samples: 6, seed: 11 }), () => mcOld().predictiveEntropy],
    [mcDropoutDetector(model, { samples: 6, seed: 11, measure: 'mutualInformation' }), () => mcOld().mutualInformation],
    [mcDropoutDetector(model, { samples: 6, seed: 11, measure: 'variationRatio' }), () => mcOld().variationRatio],
  );
  // MC dropout with a deterministic trunk equals MC dropout of the whole network.
  const head = new Sequential(model.at(2), model.at(3), model.at(4), model.at(5));
  const trunk = new Sequential(model.at(0), model.at(1));
  cases.push([mcDropoutDetector(head, { samples: 6, seed: 11, trunk, measure: 'mutualInformation' }), () => mcOld().mutualInformation]);
  // Deep ensemble of three seeded copies.
  const ens = tidy(() => DeepEnsemble.create(() => mlp(), 3, 20).eval());
  cases.push(
    [ensembleDetector(ens), () => ens.predict(x).predictiveEntropy],
    [ensembleDetector(ens, { measure: 'mutualInformation' }), () => ens.predict(x).mutualInformation],
    [ensembleDetector(ens, { measure: 'variationRatio' }), () => ens.predict(x).variationRatio],
    [ensembleDetector(ens, { measure: 'meanEnergy', temperature: 2 }), () => {
      const z = ens.forward(x);
      return energyScore(z.reshape([-1, 4]), 2).reshape([3, -1]).mean(0);
    }],
  );
  // Mahalanobis over a feature extractor, fitted through the protocol vs the feature-level API.
  const feats = (t: Tensor) => trunk.forward(t);
  const det = await new MahalanobisDetector({ features: feats, batchSize: 16 }).fit({ x: train, labels });
  const trainFeats = feats(train);
  const ref = await new MahalanobisDetector().fit(trainFeats, labels, 3);
  trainFeats.dispose();
  cases.push([det, () => ref.score(feats(x))]);

  for (const [d, old] of cases) {
    // Warm-up: the first call may build kept caches (the ensemble's stacked weights, the
    // Mahalanobis device copies); later calls must not add a single live tensor.
    noGrad(() => d.score(x)).dispose();
    const before = memory().liveTensors;
    const got = await vals(noGrad(() => d.score(x)));
    expect(memory().liveTensors, `${d.name}: score leaks`).toBe(before);
    const want = await vals(tidy(() => noGrad(old)));
    expect(got.length, d.name).toBe(5);
    // The same ops on the same backend: equal up to float32 summation order at most.
    got.forEach((v, i) => expect(Math.abs(v - want[i]), `${d.name} [${i}]: ${v} vs ${want[i]}`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(want[i]))));
    if (d.predict) {
      const p = d.predict(x);
      const ps = await vals(p.score);
      ps.forEach((v, i) => expect(Math.abs(v - got[i]), `${d.name} predict().score`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(got[i]))));
      expect(p.prediction.dtype, d.name).toBe('int32');
      expect(p.prediction.shape, d.name).toEqual([5]);
      p.prediction.dispose();
      expect(memory().liveTensors, `${d.name}: predict leaks`).toBe(before);
    }
  }
  // Prediction of a logit adapter = argmax of the logits.
  const p = mspDetector(model).predict(x);
  expect(await vals(p.prediction)).toEqual(await vals(tidy(() => noGrad(() => f(x).argmax(-1)))));
  p.score.dispose();
  // The adapter restored the Dropout switches: the model is deterministic again.
  const a = await vals(tidy(() => noGrad(() => f(x))));
  const b = await vals(tidy(() => noGrad(() => f(x))));
  expect(a).toEqual(b);
  det.dispose();
  ref.dispose();
  ens.dispose();
  // Free everything this fixture made, so that nothing is left for the garbage collector to
  // release (and to subtract from liveTensors) during a later test.
  for (const m of ens.members) dispose(m.parameters());
  dispose([model.parameters(), x, train]);
}

describe('Detector adapters equal the functions they wrap', () => {
  it('cpu', async () => {
    await adaptersEqualFunctions(cpu);
  });

  it('webgpu', async (ctx) => {
    await adaptersEqualFunctions(await requireWebGPU(ctx));
  });

  it('logit adapters without a model score their input (the logits)', async () => {
    setBackend(cpu);
    const z = tensor([[1, 2, 3], [0, 0, 5]]);
    expect(await vals(mspDetector().score(z))).toEqual(await vals(mspScore(z)));
    expect(await vals(energyDetector(undefined, { temperature: 3 }).score(z))).toEqual(await vals(energyScore(z, 3)));
    expect(mspDetector(undefined, { name: 'mine' }).name).toBe('mine');
  });

  it('MahalanobisDetector: NotFittedError before fit; float64 features are scored in float64 (= scoreHost)', async () => {
    setBackend(cpu);
    const det = new MahalanobisDetector({ features: (x) => x });
    expect(det.isFitted).toBe(false);
    expect(() => det.score(tensor([[1, 2]]))).toThrow(NotFittedError);
    await expect(det.fit({ x: tensor([[1, 2]]) })).rejects.toThrow(/labels/);
    const rows = [[0, 0], [1, 0.5], [0.2, 1], [3, 3], [4, 2.5], [3.5, 4.2]];
    await det.fit({ x: [tensor(rows.slice(0, 3)), tensor(rows.slice(3))], labels: [0, 0, 0, 1, 1, 1] });
    const q = [[0.5, 0.5], [10, -3]];
    const q64 = tensor(q, undefined, { dtype: 'float64' });
    const s64 = await vals(det.score(q64));
    q64.dispose();
    const host = Array.from(det.scoreHost(q));
    s64.forEach((v, i) => expect(Math.abs(v - host[i])).toBeLessThanOrEqual(1e-12 * Math.max(1, host[i])));
    det.dispose();
  });

  it('bad options are typed errors', () => {
    setBackend(cpu);
    const m = mlp();
    expect(() => energyDetector(m, { temperature: 0 })).toThrow(ArgumentError);
    expect(() => dirichletDetector(m, { measure: 'nope' as 'vacuity' })).toThrow(/unknown measure/);
    expect(() => mcDropoutDetector(new Sequential(new Linear(2, 2)), { samples: 3 })).toThrow(/no Dropout/);
    expect(() => mcDropoutDetector(m, { samples: 3, measure: 'nope' as 'variationRatio' })).toThrow(/unknown measure/);
  });
});

describe('new score functions', () => {
  it('meanEnergyScore, dirichletPrecisionScore and dirichletExpectedEntropy vs float64 references', async () => {
    setBackend(cpu);
    const z = [[[1, 2, 0.5], [-1, 0, 3]], [[0, 0, 0], [2, 2, 2]]]; // [T=2, B=2, K=3]
    const lse = (r: number[]) => Math.log(r.reduce((a, v) => a + Math.exp(v / 2), 0)) * 2;
    const wantE = [0, 1].map((b) => -(lse(z[0][b]) + lse(z[1][b])) / 2);
    const gotE = await vals(meanEnergyScore(tensor(z), 2));
    gotE.forEach((v, i) => expect(Math.abs(v - wantE[i])).toBeLessThan(1e-5));
    const alpha = [[1, 1, 1], [10, 2, 0.5], [100, 100, 1]];
    expect(await vals(dirichletPrecisionScore(tensor(alpha)))).toEqual([-3, -12.5, -201]);
    const ee = alpha.map((a) => {
      const a0 = a.reduce((s, v) => s + v, 0);
      return digamma(a0 + 1) - a.reduce((s, v) => s + (v / a0) * digamma(v + 1), 0);
    });
    const gotEE = await vals(dirichletExpectedEntropy(tensor(alpha)));
    gotEE.forEach((v, i) => expect(Math.abs(v - ee[i])).toBeLessThan(1e-5));
    // predictive entropy = expected entropy + mutual information
    const h = await vals(dirichletPredictiveEntropy(tensor(alpha)));
    const mi = await vals(dirichletMutualInformation(tensor(alpha)));
    h.forEach((v, i) => expect(Math.abs(v - (gotEE[i] + mi[i]))).toBeLessThan(1e-5));
  });
});

describe('Dirichlet detectors on fixed concentrations', () => {
  // α rows: flat K = 3; a confident row; a spread row with a tie for the maximum.
  const alpha = [[1, 1, 1], [10, 2, 0.5], [4, 4, 2]];

  it('maxProbability = −max_k α_k/α₀, and every measure by hand (float64)', async () => {
    setBackend(cpu);
    const a64 = tensor(alpha, undefined, { dtype: 'float64' });
    const want: Record<string, number[]> = {
      maxProbability: [-1 / 3, -10 / 12.5, -0.4],
      vacuity: [1, 3 / 12.5, 0.3],
      precision: [-3, -12.5, -10],
    };
    for (const [measure, w] of Object.entries(want)) {
      const got = await vals(dirichletDetector(undefined, { measure: measure as 'vacuity' }).score(a64));
      got.forEach((v, i) => expect(Math.abs(v - w[i]), `${measure} [${i}]`).toBeLessThan(1e-14));
    }
    expect(await vals(dirichletMaxProbabilityScore(a64))).toEqual(await vals(dirichletDetector(undefined, { measure: 'maxProbability' }).score(a64)));
    expect(dirichletDetector(undefined, { measure: 'maxProbability' }).name).toBe('Dirichlet MSP of the mean');
    // −max p ∈ [−1, −1/K]; the flat Dirichlet sits at −1/K, its upper end.
    expect(await vals(dirichletMaxProbabilityScore(tensor([[1e6, 1, 1], [1, 1, 1]])))).toEqual([expect.closeTo(-1, 5), expect.closeTo(-1 / 3, 6)]);
    a64.dispose();
  });

  it('non-positive or NaN concentrations are an ArgumentError naming the detector and the row (cpu)', () => {
    setBackend(cpu);
    const before = memory().liveTensors;
    for (const bad of [0, -0.5, NaN]) {
      const a = tensor([[1, 2, 3], [2, bad, 1]]);
      for (const measure of ['vacuity', 'precision', 'mutualInformation', 'expectedEntropy', 'predictiveEntropy', 'differentialEntropy', 'maxProbability'] as const) {
        const d = dirichletDetector(undefined, { measure });
        expect(() => d.score(a), `${measure} ${bad}`).toThrow(ArgumentError);
        expect(() => d.score(a), `${measure} ${bad}`).toThrow(new RegExp(`dirichletDetector \\(${d.name}\\).*\\[2,3\\].*positive.*row 1 has minimum ${String(bad)}`));
      }
      a.dispose();
    }
    // A model whose output becomes α through `concentration`: the check sees α, not the logits.
    const z = tensor([[0, -1, 2]]);
    expect(() => dirichletDetector((t) => t, { concentration: (o) => o.sub(1) }).score(z)).toThrow(/row 0 has minimum -2/);
    const ok = dirichletDetector((t) => t, { concentration: 'exp' }).score(z);
    const rank1 = tensor([1, 2, 3]);
    const ints = tensor([[1, 2]], undefined, { dtype: 'int32' });
    expect(() => dirichletDetector(undefined, { measure: 'vacuity' }).score(rank1)).toThrow(ShapeError);
    expect(() => dirichletDetector(undefined, { measure: 'vacuity' }).score(ints)).toThrow(DTypeError);
    dispose([z, ok, rank1, ints]);
    expect(memory().liveTensors).toBe(before); // a throwing score frees what it made
  });

  it('webgpu: a row with a non-positive concentration scores NaN, the others are exact', async (ctx) => {
    const be = await requireWebGPU(ctx);
    setBackend(be);
    const a = tensor([[10, 2, 0.5], [1, 0, 1], [4, 4, 2], [-1, 3, 3]]);
    const d = dirichletDetector(undefined, { measure: 'maxProbability' });
    const got = await vals(d.score(a));
    expect(Number.isNaN(got[1]) && Number.isNaN(got[3])).toBe(true);
    expect(got[0]).toBeCloseTo(-0.8, 6);
    expect(got[2]).toBeCloseTo(-0.4, 6);
    const p = d.predict!(a);
    expect(await vals(p.prediction)).toEqual([0, 0, 0, 1]); // argmax α, first maximum on ties
    expect((await vals(p.score)).map(Number.isNaN)).toEqual([false, true, false, true]);
    a.dispose();
    setBackend(cpu);
  });
});

/** A detector whose score is the first input column (hand-checkable). */
const column: Detector = {
  name: 'column 0',
  score: (x) => x.slice([0, 0], [-1, 1]).reshape([-1]),
};

describe('evaluateDetectors', () => {
  it('hand-checkable AUROC / AUPR-In / AUPR-Out / FPR95 (OOD positive for AUROC and AUPR-Out)', async () => {
    setBackend(cpu);
    const inDist = tensor([[1], [2], [3], [4]]);
    const outDist = tensor([[3.5], [5], [0]]);
    const before = memory().liveTensors;
    const table = await evaluateDetectors([column], { inDist, outDist, batchSize: 3 });
    expect(memory().liveTensors).toBe(before);
    const r = table.rows[0];
    expect(r.name).toBe('column 0');
    // 12 (in, out) pairs; out > in for 3.5 > {1,2,3}, 5 > all four, 0 > none: 7/12.
    expect(r.auroc).toBeCloseTo(7 / 12, 12);
    // OOD positive, descending score 5,4,3.5,3,2,1,0: precisions at the positives 1, 2/3, 3/7.
    expect(r.auprOut).toBeCloseTo((1 + 2 / 3 + 3 / 7) / 3, 12);
    // ID positive on −score, order 0,1,2,3,3.5,4,5: precisions at the ID rows 1/2, 2/3, 3/4, 4/6.
    expect(r.auprIn).toBeCloseTo((1 / 2 + 2 / 3 + 3 / 4 + 4 / 6) / 4, 12);
    // 95% in-distribution TPR needs all four accepted (score ≤ 4): OOD 3.5 and 0 are accepted too.
    expect(r.fpr95).toBeCloseTo(2 / 3, 12);
    expect(Array.from(r.scores.inDist)).toEqual([1, 2, 3, 4]);
    expect(Array.from(r.scores.outDist)).toEqual([3.5, 5, 0]);
    expect(table.get('column 0')).toBe(r);
    expect(table.format()).toMatch(/column 0\s+0\.5833\s+0\.6458\s+0\.6984\s+0\.6667/);
    // Same numbers from arrays of batches (tensors stay the caller's) and a perfect detector.
    const perfect: Detector = { name: 'perfect', score: (x) => x.slice([0, 0], [-1, 1]).reshape([-1]).mul(0).add(x.shape[0] === 3 ? 1 : 0) };
    const parts = [inDist.slice([0, 0], [2, 1]), inDist.slice([2, 0], [2, 1])];
    const t2 = await evaluateDetectors([column, perfect], { inDist: parts, outDist });
    expect(parts.map((t) => t.isDisposed)).toEqual([false, false]);
    dispose(parts);
    expect(t2.rows[0].auroc).toBeCloseTo(7 / 12, 12);
    expect(t2.rows[1].auroc).toBe(1);
    expect(t2.rows[1].fpr95).toBe(0);
    dispose([inDist, outDist]);
  });

  it('matches oodMetrics on the scores of real detectors (webgpu)', async (ctx) => {
    const be = await requireWebGPU(ctx);
    const { model, x, train } = fixture(be);
    const table = await evaluateDetectors([mspDetector(model), energyDetector(model)], { inDist: train, outDist: x.mul(4), batchSize: 16 });
    for (const r of table.rows) {
      expect(r).toMatchObject(oodMetrics(r.scores.inDist, r.scores.outDist));
      expect(Array.from(r.scores.inDist)).toEqual(Array.from(await scoreAll(r.detector, train)));
    }
    dispose([model.parameters(), x, train]);
  });

  it('argument errors', async () => {
    setBackend(cpu);
    await expect(evaluateDetectors([], { inDist: tensor([[1]]), outDist: tensor([[2]]) })).rejects.toThrow(ArgumentError);
    await expect(evaluateDetectors([{ name: 'x' } as unknown as Detector], { inDist: tensor([[1]]), outDist: tensor([[2]]) })).rejects.toThrow(/not a Detector/);
    const bad: Detector = { name: 'bad', score: (x) => x };
    await expect(evaluateDetectors([bad], { inDist: tensor([[1, 2]]), outDist: tensor([[2, 3]]) })).rejects.toThrow(/one value per row/);
  });
});

/** A detector over a 2-column input: score = column 0, prediction = column 1 (as int32). */
const scoredColumns: Detector = {
  name: 'columns',
  score: (x) => x.slice([0, 0], [-1, 1]).reshape([-1]),
  predict: (x) => ({ score: x.slice([0, 0], [-1, 1]).reshape([-1]), prediction: x.slice([0, 1], [-1, 1]).reshape([-1]).cast('int32') }),
};

async function guardFromDetector(be: Backend): Promise<void> {
  setBackend(be);
  // Held-out in-distribution scores 1..100: at fpr 0.05 the threshold is 95 and exactly 5 are rejected.
  const heldOut = tensor(Array.from({ length: 100 }, (_, i) => [100 - i, 0]));
  const g = await guard(scoredColumns, { fpr: 0.05, heldOut, batchSize: 32 });
  expect(g).toBeInstanceOf(DetectorGuard);
  expect(g.threshold).toBe(95);
  expect(g.realisedFpr).toBe(0.05);
  expect(g.heldOutCount).toBe(100);
  expect(g.targetFpr).toBe(0.05);
  // A whole batch at a time: tensors, nothing read back; NaN is never reliable.
  const batch = tensor([[94, 3], [95, 1], [96, 2], [NaN, 4], [-1, 0]]);
  const before = memory().liveTensors;
  const r = g.apply(batch);
  expect(r.reliable.dtype).toBe('bool');
  expect(Array.from(await r.reliable.data()).map(Boolean)).toEqual([true, true, false, false, true]);
  expect(Array.from(await r.prediction!.data())).toEqual([3, 1, 2, 4, 0]);
  r.prediction!.dispose();
  r.score.dispose();
  r.reliable.dispose();
  expect(memory().liveTensors).toBe(before);
  const rows = await g.tryClassify(batch);
  expect(rows.map((x) => x.ok)).toEqual([true, true, false, false, true]);
  expect(rows[0]).toEqual({ ok: true, prediction: 3, score: 94 });
  // classify: all predictions if every row is reliable, else the FIRST rejected row's error.
  const good = tensor([[1, 7], [95, 8]]);
  expect(Array.from(await g.classify(good))).toEqual([7, 8]);
  good.dispose();
  let err: unknown;
  try {
    await g.classify(batch);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(NotReliableClassification);
  const nr = err as NotReliableClassification<number>;
  expect([nr.prediction, nr.score, nr.threshold]).toEqual([2, 96, 95]);
  expect(memory().liveTensors).toBe(before);
  heldOut.dispose();
  batch.dispose();
}

describe('guard(detector, { fpr, heldOut })', () => {
  it('cpu: threshold at the held-out quantile, realised FPR, batched apply / classify / tryClassify', async () => {
    await guardFromDetector(cpu);
  });

  it('webgpu: the same', async (ctx) => {
    await guardFromDetector(await requireWebGPU(ctx));
  });

  it('from a real detector: threshold = calibrateThreshold of its held-out scores; classifier option; precomputed scores', async () => {
    const { model, x, train } = fixture(cpu);
    const det = energyDetector(model);
    const g = await guard(det, { fpr: 0.1, heldOut: train });
    const s = await scoreAll(det, train);
    expect(g.threshold).toBe(calibrateThreshold(s, 0.1));
    expect(g.realisedFpr).toBeLessThanOrEqual(0.1);
    expect(g.realisedFpr).toBeGreaterThan(0.1 - 1 / 40 - 1e-12);
    const g2 = await guard({ name: 'no predict', score: (t: Tensor) => det.score(t) }, { fpr: 0.1, heldOutScores: s, classifier: model });
    expect(g2.threshold).toBe(g.threshold);
    const a = await g.tryClassify(x);
    const b = await g2.tryClassify(x);
    expect(b.map((r) => r.ok)).toEqual(a.map((r) => r.ok));
    expect(b.map((r) => (r.ok ? r.prediction : r.error.prediction))).toEqual(a.map((r) => (r.ok ? r.prediction : r.error.prediction)));
    const g3 = await guard(column, { fpr: 0.1, heldOutScores: [1, 2, 3] });
    expect(g3.hasClassifier).toBe(false);
    await expect(g3.tryClassify(tensor([[1]]))).rejects.toThrow(/no predictions/);
    const q = tensor([[1], [9]]);
    const r = g3.apply(q);
    expect(r.prediction).toBeNull();
    expect(Array.from(await r.reliable.data()).map(Boolean)).toEqual([true, false]);
    dispose([r, q, model.parameters(), x, train]);
  });

  it('argument errors', async () => {
    setBackend(cpu);
    await expect(guard(column, { fpr: 0.1 })).rejects.toThrow(/exactly one/);
    await expect(guard(column, { fpr: 0.1, heldOutScores: [1], heldOut: tensor([[1]]) })).rejects.toThrow(/exactly one/);
    await expect(guard(column, { fpr: 1, heldOutScores: [1, 2] })).rejects.toThrow(/\[0, 1\)/);
    await expect(guard(column, { fpr: 0.1, heldOutScores: [] })).rejects.toThrow(ArgumentError);
  });
});
