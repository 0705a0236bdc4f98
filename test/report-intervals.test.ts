/** statCell (uncertainty/report/intervals.ts): mean ± std [CI] cells, percent form, one seed, non-finite values. */
import { describe, expect, it } from 'vitest';
import { report } from '../node.js';

describe('report.statCell', () => {
  it('formats mean ± std [lo, hi]', () => {
    expect(report.statCell({ mean: 0.98765, std: 0.00123, ci95: [0.981, 0.993], n: 3 })).toBe('0.9877 ± 0.0012 [0.9810, 0.9930]');
    expect(report.statCell({ mean: 0.9912, std: 0.0011, ci95: [0.985, 0.996], n: 3 }, { percent: true })).toBe('99.12% ± 0.11 [98.50, 99.60]');
    expect(report.statCell({ mean: 0.5, std: 0, ci95: [0.4, 0.6], n: 1 }, { digits: 2 })).toBe('0.50 [0.40, 0.60]');
    expect(report.statCell({ mean: 0.5, std: 0.1, ci95: [0.4, 0.6] }, { ci: false, digits: 1 })).toBe('0.5 ± 0.1');
    expect(report.statCell({ mean: NaN, std: NaN, ci95: [NaN, NaN], n: 2 })).toBe('— ± — [—, —]');
  });
});
