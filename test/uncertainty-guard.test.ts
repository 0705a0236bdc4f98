/**
 * The guard (uncertainty/guard.ts): hand-computed thresholds with ties, the exact "≤ target on
 * the calibration set" property, realised FPR on a fresh sample, and the classify /
 * tryClassify / check behaviour with the typed NotReliableClassification.
 */
import { describe, expect, it } from 'vitest';
import { ArgumentError, DubitoError, Guard, NotReliableClassification, calibrateThreshold, guard, rejectionRate } from '../node.js';
import { randomNormal, randomUniform } from '../engine/random/philox.js';

describe('calibrateThreshold', () => {
  it('hand-computed thresholds', () => {
    const s = [10, 3, 7, 1, 5, 2, 9, 4, 8, 6]; // 1..10 shuffled
    expect(calibrateThreshold(s, 0.2)).toBe(8); // rejects 9, 10
    expect(calibrateThreshold(s, 0.25)).toBe(8); // ⌊2.5⌋ = 2 rejections
    expect(calibrateThreshold(s, 0.1)).toBe(9);
    expect(calibrateThreshold(s, 0)).toBe(10); // nothing rejected
    expect(calibrateThreshold(s, 0.95)).toBe(1); // at most 9 rejected
    // 0.29·100 = 28.999999999999996 in floating point; still 29 rejections allowed
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(calibrateThreshold(hundred, 0.29)).toBe(71);
    expect(rejectionRate(hundred, 71)).toBe(0.29);
  });

  it('ties: scores equal to the threshold are accepted', () => {
    expect(calibrateThreshold([1, 1, 1, 1, 2], 0.2)).toBe(1); // rejects only the 2: FPR 0.2
    // any τ < 2 would reject four of five (0.8 > 0.5), so τ = 2 and nothing is rejected
    expect(calibrateThreshold([1, 2, 2, 2, 2], 0.5)).toBe(2);
    expect(rejectionRate([1, 2, 2, 2, 2], 2)).toBe(0);
  });

  it('realised FPR on the calibration set is ≤ target exactly, and the threshold is the smallest such score', () => {
    const s = Array.from(randomUniform(997, 3, 0), (u) => Math.round(u * 50)); // heavy ties
    for (const target of [0, 0.01, 0.05, 0.1, 0.29, 0.5, 0.9]) {
      const tau = calibrateThreshold(s, target);
      expect(rejectionRate(s, tau)).toBeLessThanOrEqual(target);
      const smaller = s.filter((v) => v < tau);
      if (smaller.length) expect(rejectionRate(s, Math.max(...smaller))).toBeGreaterThan(target);
    }
  });

  it('realised FPR on a fresh in-distribution sample is close to the target', () => {
    const heldOut = randomNormal(5000, 7, 0);
    const fresh = randomNormal(50000, 8, 0);
    for (const target of [0.05, 0.01, 0.2]) {
      const tau = calibrateThreshold(heldOut, target);
      expect(rejectionRate(heldOut, tau)).toBeLessThanOrEqual(target);
      expect(rejectionRate(heldOut, tau)).toBeGreaterThan(target - 1 / 5000 - 1e-12); // continuous scores: no ties
      // standard error of the quantile estimate ≈ √(t(1−t)/5000) ≤ 0.0057
      expect(Math.abs(rejectionRate(fresh, tau) - target), `target ${target}`).toBeLessThan(0.015);
    }
  });

  it('argument errors', () => {
    expect(() => calibrateThreshold([], 0.05)).toThrow(ArgumentError);
    expect(() => calibrateThreshold([1, 2], 1)).toThrow(/\[0, 1\)/);
    expect(() => calibrateThreshold([1, NaN], 0.05)).toThrow(/NaN/);
  });
});

describe('Guard', () => {
  const model = async (x: number) => ({ prediction: x > 0 ? 'pos' : 'neg', score: Math.abs(x) });

  it('classify returns the prediction or throws NotReliableClassification with its fields', async () => {
    const g = guard({ predict: model, threshold: 2 });
    expect(await g.classify(1.5)).toBe('pos');
    expect(await g.classify(-2)).toBe('neg'); // score = threshold is accepted
    let err: unknown;
    try {
      await g.classify(-3);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NotReliableClassification);
    expect(err).toBeInstanceOf(DubitoError);
    const nr = err as NotReliableClassification<string>;
    expect([nr.prediction, nr.score, nr.threshold]).toEqual(['neg', 3, 2]);
    expect(nr.name).toBe('NotReliableClassification');
    expect(nr.message).toMatch(/score 3 exceeds the threshold 2/);
  });

  it('tryClassify returns a tagged union; NaN scores are rejected', async () => {
    const g = new Guard({ predict: (x: number) => ({ prediction: x, score: x }), threshold: 0.5 });
    expect(await g.tryClassify(0.25)).toEqual({ ok: true, prediction: 0.25, score: 0.25 });
    const r = await g.tryClassify(0.75);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.prediction).toBe(0.75);
    expect(g.check(1, NaN).ok).toBe(false);
  });

  it('Guard.calibrated: threshold from held-out in-distribution scores', async () => {
    const heldOut = Array.from({ length: 100 }, (_, i) => i / 100);
    const g = Guard.calibrated(model, heldOut, 0.05);
    expect(g.threshold).toBe(0.94);
    expect((await g.tryClassify(0.94)).ok).toBe(true);
    expect((await g.tryClassify(0.95)).ok).toBe(false);
  });
});
