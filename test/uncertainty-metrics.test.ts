/**
 * Evaluation metrics (uncertainty/metrics.ts): exact values on tiny hand-computed cases, then
 * agreement with brute-force float64 references (pairwise Mann-Whitney, per-positive
 * precision, threshold scans) on random data with ties, and the error cases.
 */
import { describe, expect, it } from 'vitest';
import {
  BinaryScoreAccumulator, CalibrationAccumulator, DubitoError, MetricError, accuracy, adaptiveEce, adaptiveReliabilityDiagram,
  aurc, auprError, auprIn, auprOut, auprSuccess, auroc, averagePrecision, precisionRecallCurve, binIndex, brier, confidenceAndCorrect, ece,
  fprAtTpr, fprAtTprDetail, mce, nll, nllFromLogits, oodMetrics, reliabilityDiagram, riskCoverageCurve, rocCurve,
} from '../index.js';
import { randomUniform } from '../engine/random/philox.js';

/** Rounded uniforms so that ties occur. */
function tiedScores(n: number, seed: number, levels = 20): number[] {
  return Array.from(randomUniform(n, seed, 0), (u) => Math.floor(u * levels) / levels);
}
function bits(n: number, seed: number, p = 0.4): number[] {
  return Array.from(randomUniform(n, seed, 0), (u) => (u < p ? 1 : 0));
}

function expectMetricError(f: () => unknown, reason: MetricError['reason'], msg?: RegExp): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(MetricError);
  expect(err).toBeInstanceOf(DubitoError);
  expect((err as MetricError).reason).toBe(reason);
  if (msg) expect((err as Error).message).toMatch(msg);
}

// ---- float64 brute-force references ----
function aurocRef(s: number[], y: number[]): number {
  let u = 0;
  let np = 0;
  let nn = 0;
  for (let i = 0; i < s.length; i++) {
    if (y[i] === 1) np++;
    else nn++;
  }
  for (let i = 0; i < s.length; i++) {
    if (y[i] !== 1) continue;
    for (let j = 0; j < s.length; j++) {
      if (y[j] === 1) continue;
      u += s[i] > s[j] ? 1 : s[i] === s[j] ? 0.5 : 0;
    }
  }
  return u / (np * nn);
}
/** AP = mean over positives i of precision at threshold s_i (tied samples included). */
function apRef(s: number[], y: number[]): number {
  let total = 0;
  let np = 0;
  for (let i = 0; i < s.length; i++) {
    if (y[i] !== 1) continue;
    np++;
    let tp = 0;
    let all = 0;
    for (let j = 0; j < s.length; j++) {
      if (s[j] >= s[i]) {
        all++;
        tp += y[j];
      }
    }
    total += tp / all;
  }
  return total / np;
}
/** Scan every candidate threshold (+∞ and each score), keep the largest with TPR ≥ target. */
function fprRef(s: number[], y: number[], target: number): number {
  const cands = [Infinity, ...new Set(s)].sort((a, b) => b - a);
  const np = y.filter((v) => v === 1).length;
  const nn = y.length - np;
  for (const t of cands) {
    let tp = 0;
    let fp = 0;
    for (let i = 0; i < s.length; i++) {
      if (s[i] >= t) {
        if (y[i] === 1) tp++;
        else fp++;
      }
    }
    if (tp / np >= target - 1e-12) return fp / nn;
  }
  return 1;
}

describe('AUROC', () => {
  it('hand-computed: 3 of 4 pairs ordered', () => {
    expect(auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], { positive: 1 })).toBe(0.75);
  });
  it('ties count one half', () => {
    // positives {1, 2}, negatives {1, 0}: pairs ½ + 1 + 1 + 1 = 3.5 of 4
    expect(auroc([1, 1, 2, 0], [1, 0, 1, 0], { positive: 1 })).toBe(0.875);
    expect(auroc([3, 3, 3, 3], [1, 0, 1, 0], { positive: 1 })).toBe(0.5);
  });
  it('the positive class is explicit: swapping it gives 1 − AUROC', () => {
    expect(auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], { positive: 0 })).toBe(0.25);
    expect(auroc([0.1, 0.4, 0.35, 0.8], [false, false, true, true], { positive: true })).toBe(0.75);
    expect(auroc([0.1, 0.4, 0.35, 0.8], [7, 7, 3, 3], { positive: 3 })).toBe(0.75);
  });
  it('perfect separation and reversal', () => {
    expect(auroc([1, 2, 3, 4], [0, 0, 1, 1], { positive: 1 })).toBe(1);
    expect(auroc([4, 3, 2, 1], [0, 0, 1, 1], { positive: 1 })).toBe(0);
  });
  it('equals the Mann-Whitney U / (n₊n₋) brute force on random tied data', () => {
    for (const seed of [1, 2, 3]) {
      const s = tiedScores(301, seed);
      const y = bits(301, seed + 100);
      expect(auroc(s, y, { positive: 1 })).toBeCloseTo(aurocRef(s, y), 13);
    }
  });
  it('ROC curve runs from (0,0) to (1,1) over distinct thresholds', () => {
    const c = rocCurve([1, 1, 2, 0], [1, 0, 1, 0], { positive: 1 });
    expect(Array.from(c.thresholds)).toEqual([Infinity, 2, 1, 0]);
    expect(Array.from(c.tpr)).toEqual([0, 0.5, 1, 1]);
    expect(Array.from(c.fpr)).toEqual([0, 0, 0.5, 1]);
  });
});

describe('average precision, AUPR-In / AUPR-Out', () => {
  it('hand-computed AP (scikit-learn example): ½·1 + ½·⅔', () => {
    expect(averagePrecision([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], { positive: 1 })).toBeCloseTo(5 / 6, 15);
  });
  it('tied samples enter together', () => {
    // 2 (pos): P=1, R=½; the tie at 1 (pos+neg): P=⅔, R=1
    expect(averagePrecision([2, 1, 1, 0], [1, 1, 0, 0], { positive: 1 })).toBeCloseTo(5 / 6, 15);
  });
  it('AUPR-Out = AP with OOD positive on the score; AUPR-In = AP with ID positive on −score', () => {
    const s = [0.1, 0.2, 0.3, 0.4, 0.5];
    const ood = [0, 1, 0, 1, 1];
    // Out: 0.5 O (1, ⅓), 0.4 O (1, ⅔), 0.3 I, 0.2 O (¾, 1) → ⅓ + ⅓ + ⅓·¾
    expect(auprOut(s, ood, { oodLabel: 1 })).toBeCloseTo(11 / 12, 15);
    // In on −s: −0.1 I (1, ½), −0.2 O, −0.3 I (⅔, 1) → ½ + ½·⅔
    expect(auprIn(s, ood, { oodLabel: 1 })).toBeCloseTo(5 / 6, 15);
    expect(auprOut(s, [true, false, true, false, false], { oodLabel: false })).toBeCloseTo(11 / 12, 15);
  });
  it('precisionRecallCurve: hand values with a tie, and AP = Σ ΔR·P over its points', () => {
    // 2 (pos): P=1, R=½; the tie at 1 (pos+neg): P=⅔, R=1; 0 (neg): P=½, R=1
    const c = precisionRecallCurve([2, 1, 1, 0], [1, 1, 0, 0], { positive: 1 });
    expect(Array.from(c.thresholds)).toEqual([2, 1, 0]);
    expect(Array.from(c.recall)).toEqual([0.5, 1, 1]);
    expect(c.precision[0]).toBe(1);
    expect(c.precision[1]).toBeCloseTo(2 / 3, 15);
    expect(c.precision[2]).toBe(0.5);
    const s = tiedScores(301, 9, 12);
    const y = bits(301, 77, 0.4);
    const pr = precisionRecallCurve(s, y, { positive: 1 });
    let ap = 0;
    for (let k = 0; k < pr.recall.length; k++) ap += (pr.recall[k] - (k ? pr.recall[k - 1] : 0)) * pr.precision[k];
    expect(ap).toBeCloseTo(averagePrecision(s, y, { positive: 1 }), 13);
  });
  it('matches the per-positive precision reference on random tied data', () => {
    for (const seed of [4, 5]) {
      const s = tiedScores(257, seed, 10);
      const y = bits(257, seed + 50, 0.3);
      expect(averagePrecision(s, y, { positive: 1 })).toBeCloseTo(apRef(s, y), 13);
      expect(auprIn(s, y, { oodLabel: 1 })).toBeCloseTo(apRef(s.map((v) => -v), y.map((v) => 1 - v)), 13);
    }
  });
});

describe('FPR at 95% TPR', () => {
  it('hand-computed: the largest threshold reaching the target TPR', () => {
    const pos = Array.from({ length: 20 }, (_, i) => i + 1); // 1..20
    const neg = [0.5, 1.5, 2.5, 19.5, 25];
    const s = [...pos, ...neg];
    const y = [...pos.map(() => 1), ...neg.map(() => 0)];
    // TPR ≥ 0.95 needs 19 of 20 positives: τ = 2; negatives ≥ 2: 2.5, 19.5, 25
    const d = fprAtTprDetail(s, y, { positive: 1 });
    expect(d).toEqual({ fpr: 0.6, tpr: 0.95, threshold: 2 });
    expect(fprAtTpr(s, y, { positive: 1, tpr: 0.5 })).toBe(0.4); // τ = 11: 19.5, 25
  });
  it('edge cases: all scores equal → 1; perfect separation → 0; ties cross together', () => {
    expect(fprAtTpr([5, 5, 5, 5], [1, 0, 1, 0], { positive: 1 })).toBe(1);
    expect(fprAtTpr([3, 4, 1, 2], [1, 1, 0, 0], { positive: 1 })).toBe(0);
    expect(fprAtTprDetail([1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0], { positive: 1 })).toEqual({ fpr: 0.5, tpr: 1, threshold: 1 });
  });
  it('matches a threshold scan on random tied data', () => {
    for (const [seed, t] of [[6, 0.95], [7, 0.8], [8, 0.5]] as const) {
      const s = tiedScores(203, seed, 15);
      const y = bits(203, seed + 9, 0.5);
      expect(fprAtTpr(s, y, { positive: 1, tpr: t })).toBeCloseTo(fprRef(s, y, t), 14);
    }
  });
});

describe('oodMetrics (higher score = more OOD)', () => {
  it('hand-computed table', () => {
    const r = oodMetrics([0.1, 0.3], [0.2, 0.4, 0.5]);
    expect(r.auroc).toBeCloseTo(5 / 6, 15);
    expect(r.auprOut).toBeCloseTo(11 / 12, 15);
    expect(r.auprIn).toBeCloseTo(5 / 6, 15);
    // both ID accepted (−s ≥ −0.3) → OOD 0.2 accepted too: 1 of 3
    expect(r.fpr95).toBeCloseTo(1 / 3, 15);
  });
});

describe('failure prediction: AUPR-Error, AUPR-Success, AURC', () => {
  it('hand-computed AUPR-Error / AUPR-Success', () => {
    const c = [0.9, 0.8, 0.7, 0.6];
    const ok = [1, 1, 0, 1];
    // success: .9 ✓(1, ⅓) .8 ✓(1, ⅔) .7 ✗ .6 ✓(¾, 1) → ⅔ + ¼
    expect(auprSuccess(c, ok)).toBeCloseTo(11 / 12, 15);
    // error on −c: −.6 ✓, −.7 ✗ (½, 1) → ½
    expect(auprError(c, ok)).toBeCloseTo(0.5, 15);
    expect(auprError(c, [true, true, false, true])).toBeCloseTo(0.5, 15);
  });
  it('hand-computed AURC = mean selective risk', () => {
    // risks at k = 1..4: 0, ½, ⅓, ½ → (4/3)/4
    expect(aurc([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0])).toBeCloseTo(1 / 3, 15);
    // a tie of {✓, ✗} on top: expected risks ½, ½, then ⅓
    expect(aurc([0.9, 0.9, 0.5], [1, 0, 1])).toBeCloseTo(4 / 9, 15);
    expect(aurc([0.9, 0.9, 0.5], [0, 1, 1])).toBeCloseTo(4 / 9, 15);
    const rc = riskCoverageCurve([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]);
    expect(Array.from(rc.coverage)).toEqual([0.25, 0.5, 0.75, 1]);
    expect(rc.risk[3]).toBe(0.5);
  });
  it('AURC does not depend on the order of tied samples (float64 reference: average over permutations)', () => {
    const c = tiedScores(40, 11, 5);
    const ok = bits(40, 12, 0.7);
    const perm = c.map((_, i) => i).reverse();
    expect(aurc(perm.map((i) => c[i]), perm.map((i) => ok[i]))).toBeCloseTo(aurc(c, ok), 14);
  });
});

describe('calibration: ECE, MCE, adaptive ECE, reliability diagram', () => {
  it('bins are (lo, hi] and the first includes 0', () => {
    expect(binIndex(0, 15)).toBe(0);
    expect(binIndex(1 / 15, 15)).toBe(0);
    expect(binIndex(2 / 15, 15)).toBe(1);
    expect(binIndex(2 / 15 + 1e-12, 15)).toBe(2);
    expect(binIndex(1, 15)).toBe(14);
    for (let m = 1; m <= 15; m++) expect(binIndex(m / 15, 15)).toBe(m - 1);
  });
  it('hand-computed ECE and MCE with 5 bins', () => {
    const conf = [0.1, 0.2, 0.25, 0.9, 0.95, 1.0, 0.0];
    const ok = [0, 0, 1, 1, 1, 0, 0];
    // bin 0 [0, .2]: {.1,.2,0} conf .1 acc 0; bin 1 (.2,.4]: {.25} acc 1; bin 4 (.8,1]: conf .95 acc ⅔
    const expected = (3 * 0.1 + 1 * 0.75 + 3 * (0.95 - 2 / 3)) / 7;
    expect(ece(conf, ok, { bins: 5 })).toBeCloseTo(expected, 15);
    expect(mce(conf, ok, { bins: 5 })).toBeCloseTo(0.75, 15);
    const d = reliabilityDiagram(conf, ok, { bins: 5 });
    expect(Array.from(d.count)).toEqual([3, 1, 0, 0, 3]);
    expect(d.confidence[0]).toBeCloseTo(0.1, 15);
    expect(d.accuracy[4]).toBeCloseTo(2 / 3, 15);
    expect(Number.isNaN(d.accuracy[2])).toBe(true);
    expect(Array.from(d.edges)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
  });
  it('default 15 bins; perfectly calibrated → 0', () => {
    expect(ece([1, 1, 1], [1, 1, 1])).toBe(0);
    expect(ece([0.5, 0.5], [1, 0])).toBe(0);
    expect(reliabilityDiagram([0.5], [1]).count.length).toBe(15);
  });
  it('hand-computed adaptive (equal-mass) ECE', () => {
    const conf = [0.6, 0.1, 0.5, 0.3, 0.2, 0.4];
    const ok = [1, 0, 1, 0, 1, 1];
    // sorted groups {.1✗,.2✓} gap .35, {.3✗,.4✓} gap .15, {.5✓,.6✓} gap .45
    expect(adaptiveEce(conf, ok, { bins: 3 })).toBeCloseTo((0.35 + 0.15 + 0.45) / 3, 15);
    expect(Array.from(adaptiveReliabilityDiagram(conf, ok, { bins: 3 }).count)).toEqual([2, 2, 2]);
  });
  it('ECE matches a float64 reference with explicit bin edges', () => {
    const conf = Array.from(randomUniform(500, 21, 0), (u) => Math.round(u * 60) / 60); // many values on edges
    const ok = bits(500, 22, 0.6);
    let ref = 0;
    for (let m = 0; m < 15; m++) {
      const lo = m / 15;
      const hi = (m + 1) / 15;
      const idx = conf.map((c, i) => i).filter((i) => (m === 0 ? conf[i] >= lo : conf[i] > lo) && conf[i] <= hi);
      if (!idx.length) continue;
      const cm = idx.reduce((a, i) => a + conf[i], 0) / idx.length;
      const am = idx.reduce((a, i) => a + ok[i], 0) / idx.length;
      ref += (idx.length / conf.length) * Math.abs(am - cm);
    }
    expect(ece(conf, ok)).toBeCloseTo(ref, 14);
  });
  it('hand-computed NLL, Brier, accuracy', () => {
    const p = [[0.7, 0.2, 0.1], [0.3, 0.4, 0.3]];
    const y = [0, 2];
    expect(nll(p, y)).toBeCloseTo((-Math.log(0.7) - Math.log(0.3)) / 2, 15);
    expect(brier(p, y)).toBeCloseTo((0.14 + 0.74) / 2, 15);
    expect(accuracy(p, y)).toBe(0.5);
    expect(brier([0.7, 0.2, 0.1, 0.3, 0.4, 0.3], y, { numClasses: 3 })).toBeCloseTo(0.44, 15);
    expect(nllFromLogits(p.map((r) => r.map(Math.log)), y)).toBeCloseTo((-Math.log(0.7) - Math.log(0.3)) / 2, 14);
    expect(nll([[1, 0]], [1])).toBeCloseTo(-Math.log(1e-12), 10); // clamped, not ∞
    const cc = confidenceAndCorrect(p, y);
    expect(Array.from(cc.confidence)).toEqual([0.7, 0.4]);
    expect(Array.from(cc.prediction)).toEqual([0, 1]);
    expect(Array.from(cc.correct)).toEqual([1, 0]);
  });
});

describe('streaming accumulators equal the one-shot functions', () => {
  it('BinaryScoreAccumulator', () => {
    const s = tiedScores(300, 31);
    const y = bits(300, 32);
    const acc = new BinaryScoreAccumulator({ positive: 1 });
    for (let i = 0; i < 300; i += 64) acc.update(s.slice(i, i + 64), y.slice(i, i + 64));
    expect(acc.count).toBe(300);
    expect(acc.auroc()).toBe(auroc(s, y, { positive: 1 }));
    expect(acc.averagePrecision()).toBe(averagePrecision(s, y, { positive: 1 }));
    expect(acc.fprAtTpr()).toBe(fprAtTpr(s, y, { positive: 1 }));
    acc.reset();
    expect(acc.count).toBe(0);
  });
  it('CalibrationAccumulator', () => {
    const n = 200;
    const k = 3;
    const u = randomUniform(n * k, 41, 0);
    const probs: number[][] = [];
    for (let i = 0; i < n; i++) {
      const r = [u[i * k] + 0.01, u[i * k + 1] + 0.01, u[i * k + 2] + 0.01];
      const s = r[0] + r[1] + r[2];
      probs.push(r.map((v) => v / s));
    }
    const y = Array.from(randomUniform(n, 42, 0), (v) => Math.floor(v * k));
    const acc = new CalibrationAccumulator(10);
    for (let i = 0; i < n; i += 33) acc.updateProbs(probs.slice(i, i + 33), y.slice(i, i + 33));
    const { confidence, correct } = confidenceAndCorrect(probs, y);
    expect(acc.ece()).toBeCloseTo(ece(confidence, correct, { bins: 10 }), 13);
    expect(acc.mce()).toBeCloseTo(mce(confidence, correct, { bins: 10 }), 13);
    expect(acc.nll()).toBeCloseTo(nll(probs, y), 13);
    expect(acc.brier()).toBeCloseTo(brier(probs, y), 13);
    expect(acc.accuracy()).toBeCloseTo(accuracy(probs, y), 15);
    expect(Array.from(acc.reliability().count)).toEqual(Array.from(reliabilityDiagram(confidence, correct, { bins: 10 }).count));
  });
});

describe('typed errors', () => {
  it('only one class present', () => {
    expectMetricError(() => auroc([1, 2, 3], [1, 1, 1], { positive: 1 }), 'one-class', /only one class/);
    expectMetricError(() => auroc([1, 2, 3], [0, 0, 0], { positive: 1 }), 'one-class');
    expectMetricError(() => auprOut([1, 2], [0, 0], { oodLabel: 1 }), 'one-class');
    expectMetricError(() => auprError([0.9, 0.8], [1, 1]), 'one-class');
    expectMetricError(() => fprAtTpr([1, 2], [2, 2], { positive: 1 }), 'one-class');
    expectMetricError(() => oodMetrics([0.1, 0.2], []), 'one-class');
  });
  it('length mismatch and empty input', () => {
    expectMetricError(() => auroc([1, 2, 3], [1, 0], { positive: 1 }), 'length', /3 entries.*2/);
    expectMetricError(() => ece([0.5], [1, 0]), 'length');
    expectMetricError(() => brier([[0.5, 0.5]], [0, 1]), 'length');
    expectMetricError(() => auroc([], [], { positive: 1 }), 'empty');
    expectMetricError(() => new BinaryScoreAccumulator({ positive: 1 }).update([1], [1, 0]), 'length');
  });
  it('NaN inputs', () => {
    expectMetricError(() => auroc([1, NaN, 3], [1, 0, 1], { positive: 1 }), 'nan', /scores\[1\]/);
    expectMetricError(() => ece([0.5, NaN], [1, 0]), 'nan');
    expectMetricError(() => aurc([0.5, 0.2], [1, NaN]), 'nan');
    expectMetricError(() => nll([[NaN, 1]], [0]), 'nan');
    expectMetricError(() => new CalibrationAccumulator().update([NaN], [1]), 'nan');
  });
  it('values out of range', () => {
    expectMetricError(() => ece([1.5], [1]), 'range', /outside \[0, 1\]/);
    expectMetricError(() => ece([0.5], [2]), 'range');
    expectMetricError(() => nll([[0.5, 0.5]], [2]), 'range', /class index/);
    expectMetricError(() => brier([0.5, 0.5, 0.5], [0]), 'range', /numClasses/);
    expectMetricError(() => fprAtTpr([1, 2], [0, 1], { positive: 1, tpr: 1.5 }), 'range');
    expectMetricError(() => new CalibrationAccumulator().ece(), 'empty');
  });
});
