/**
 * Bootstrap intervals and seed statistics (uncertainty/bootstrap.ts): the documented resampling
 * (indices ⌊u·n⌋ from the Philox stream), reproducibility, stratification of the OOD metrics, a
 * constant statistic, the normal-theory width of a mean, and meanStd.
 */
import { describe, expect, it } from 'vitest';
import { ArgumentError, bootstrapOodMetricsMean, bootstrapIndices, bootstrapInterval, bootstrapOodMetrics, meanStd, oodMetrics, percentileInterval, randomUniform } from '../node.js';

describe('bootstrap', () => {
  it('indices are ⌊u·n⌋ of randomUniform(B·n, seed, stream), resample b at [b·n, (b+1)·n)', () => {
    const idx = bootstrapIndices(7, 3, 5, 1);
    const u = randomUniform(21, 5, 1);
    expect(Array.from(idx)).toEqual(Array.from(u, (v) => Math.min(6, Math.floor(v * 7))));
    for (const i of idx) expect(i >= 0 && i < 7).toBe(true);
    expect(Array.from(bootstrapIndices(7, 3, 5, 1))).toEqual(Array.from(idx));
    expect(Array.from(bootstrapIndices(7, 3, 6, 1))).not.toEqual(Array.from(idx));
  });

  it('a constant statistic has a zero-width interval; the point estimate uses all samples', () => {
    const r = bootstrapInterval(10, () => 3.5, { resamples: 50 });
    expect(r).toEqual({ value: 3.5, lo: 3.5, hi: 3.5 });
    const seen: number[] = [];
    bootstrapInterval(4, (ix) => {
      seen.push(ix.length);
      return 0;
    }, { resamples: 3 });
    expect(seen).toEqual([4, 4, 4, 4]);
  });

  it('the interval of a mean has the normal-theory width ±1.96·σ/√n (to sampling error)', () => {
    const n = 400;
    const x = Array.from(randomUniform(n, 11, 0), (v) => v * 2); // U[0, 2): σ = 2/√12
    const mean = (ix: Int32Array) => ix.reduce((a, i) => a + x[i], 0) / ix.length;
    const r = bootstrapInterval(n, mean, { resamples: 2000, seed: 3 });
    const half = (1.96 * (2 / Math.sqrt(12))) / Math.sqrt(n);
    expect(r.lo).toBeLessThan(r.value);
    expect(r.hi).toBeGreaterThan(r.value);
    expect((r.hi - r.lo) / 2).toBeGreaterThan(0.85 * half);
    expect((r.hi - r.lo) / 2).toBeLessThan(1.15 * half);
  });

  it('OOD metrics: point estimate = oodMetrics, reproducible, perfectly separated sets give [1, 1] and [0, 0]', () => {
    const inS = Array.from(randomUniform(200, 1, 0));
    const outS = Array.from(randomUniform(300, 2, 0), (v) => v + 0.4);
    const a = bootstrapOodMetrics(inS, outS, { resamples: 200, seed: 9 });
    const p = oodMetrics(inS, outS);
    for (const k of ['auroc', 'auprIn', 'auprOut', 'fpr95'] as const) {
      expect(a[k].value).toBe(p[k]);
      expect(a[k].lo).toBeLessThanOrEqual(a[k].value + 1e-12);
      expect(a[k].hi).toBeGreaterThanOrEqual(a[k].value - 1e-12);
    }
    expect(bootstrapOodMetrics(inS, outS, { resamples: 200, seed: 9 })).toEqual(a);
    const sep = bootstrapOodMetrics([0, 0.1, 0.2], [1, 2], { resamples: 100 });
    expect([sep.auroc.lo, sep.auroc.hi]).toEqual([1, 1]);
    expect([sep.fpr95.lo, sep.fpr95.hi]).toEqual([0, 0]);
  });

  it('each resample\'s metrics (sorted once, draw counts as weights) equal oodMetrics of the resampled arrays, ties included', () => {
    // Scores rounded to 1 decimal: many ties within and across the two sets.
    const inS = Array.from(randomUniform(57, 21, 0), (v) => Math.round(v * 10) / 10);
    const outS = Array.from(randomUniform(43, 22, 0), (v) => Math.round((v + 0.3) * 10) / 10);
    for (const seed of [0, 1, 2, 3, 4, 5, 6, 7]) {
      // One resample: the interval's ends are that resample's statistic.
      const r = bootstrapOodMetrics(inS, outS, { resamples: 1, seed });
      const iIn = bootstrapIndices(inS.length, 1, seed, 0);
      const iOut = bootstrapIndices(outS.length, 1, seed, 1);
      const ref = oodMetrics(Array.from(iIn, (i) => inS[i]), Array.from(iOut, (i) => outS[i]));
      for (const k of ['auroc', 'auprIn', 'auprOut', 'fpr95'] as const) {
        expect(r[k].lo).toBeCloseTo(ref[k], 12);
        expect(r[k].hi).toBeCloseTo(ref[k], 12);
      }
    }
  });

  it('seed-averaged OOD metrics: one run equals bootstrapOodMetrics; two runs average point and resamples', () => {
    const inS = Array.from(randomUniform(120, 4, 0));
    const outS = Array.from(randomUniform(80, 5, 0), (v) => v + 0.3);
    const one = bootstrapOodMetricsMean([{ inScores: inS, outScores: outS }], { resamples: 100, seed: 2 });
    expect(one.mean).toEqual(bootstrapOodMetrics(inS, outS, { resamples: 100, seed: 2 }));
    // the same run twice: identical mean and interval; a run with negated scores mirrors AUROC to 1 − AUROC
    const twice = bootstrapOodMetricsMean([{ inScores: inS, outScores: outS }, { inScores: inS, outScores: outS }], { resamples: 100, seed: 2 });
    expect(twice.mean.auroc.value).toBeCloseTo(one.mean.auroc.value, 12);
    expect(twice.mean.auroc.lo).toBeCloseTo(one.mean.auroc.lo, 12);
    const mirrored = bootstrapOodMetricsMean([{ inScores: inS, outScores: outS }, { inScores: inS.map((v) => -v), outScores: outS.map((v) => -v) }], { resamples: 50 });
    expect(mirrored.mean.auroc.value).toBeCloseTo(0.5, 12);
    expect(mirrored.mean.auroc.lo).toBeCloseTo(0.5, 12);
    expect(mirrored.perRun.map((r) => r.auroc)).toEqual([one.mean.auroc.value, 1 - one.mean.auroc.value].map((v) => expect.closeTo(v, 12)));
    expect(() => bootstrapOodMetricsMean([{ inScores: inS, outScores: outS }, { inScores: [1], outScores: outS }])).toThrow(ArgumentError);
  });

  it('percentileInterval and argument errors', () => {
    expect(percentileInterval(0, [0, 1, 2, 3, 4], 0.5)).toEqual({ value: 0, lo: 1, hi: 3 });
    expect(() => bootstrapInterval(3, () => 0, { resamples: 0 })).toThrow(ArgumentError);
    expect(() => bootstrapInterval(3, () => 0, { level: 1 })).toThrow(ArgumentError);
    expect(() => bootstrapOodMetrics([], [1])).toThrow(ArgumentError);
  });

  it('meanStd: sample standard deviation (n − 1)', () => {
    expect(meanStd([1, 2, 3, 4])).toEqual({ mean: 2.5, std: Math.sqrt(5 / 3), n: 4 });
    expect(meanStd([7])).toEqual({ mean: 7, std: 0, n: 1 });
    expect(() => meanStd([])).toThrow(ArgumentError);
  });
});
