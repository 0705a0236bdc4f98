import { describe, expect, it } from 'vitest';
import { MetricError, groupMetrics, groupMetricsOf, intTensor, setBackend, tensor, ece, nll, accuracy } from '../node.js';
import { cpu } from './helpers/backends.js';

setBackend(cpu);

// Four rows, two classes, two groups; every confidence lands in its own one of the 15 ECE bins
// (0.9 → (13/15, 14/15], 0.8 → (11/15, 12/15], 0.7 → (10/15, 11/15], 0.6 → (8/15, 9/15]).
const probs = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]];
const labels = [0, 1, 1, 1];
const groups = [0, 0, 1, 1];

describe('groupMetrics', () => {
  it('gives accuracy, ECE and NLL per group, the worst group and the gaps (hand values)', () => {
    const r = groupMetrics(probs, labels, groups, { groupNames: { 0: 'thin', 1: 'thick' } });
    expect(r.groups.map((g) => [g.group, g.name, g.count])).toEqual([[0, 'thin', 2], [1, 'thick', 2]]);
    const [g0, g1] = r.groups;
    // group 0: row 0 right at 0.9, row 1 wrong at 0.8
    expect(g0.accuracy).toBe(0.5);
    expect(g0.ece).toBeCloseTo(0.5 * 0.1 + 0.5 * 0.8, 12);
    expect(g0.nll).toBeCloseTo(-(Math.log(0.9) + Math.log(0.2)) / 2, 12);
    // group 1: both right, at 0.7 and 0.6
    expect(g1.accuracy).toBe(1);
    expect(g1.ece).toBeCloseTo(0.5 * 0.3 + 0.5 * 0.4, 12);
    expect(g1.nll).toBeCloseTo(-(Math.log(0.7) + Math.log(0.6)) / 2, 12);
    expect(r.overall.accuracy).toBe(0.75);
    expect(r.overall.count).toBe(4);
    expect(r.overall.ece).toBeCloseTo(0.25 * (0.1 + 0.8 + 0.3 + 0.4), 12);
    expect(r.overall.nll).toBeCloseTo(-(Math.log(0.9) + Math.log(0.2) + Math.log(0.7) + Math.log(0.6)) / 4, 12);
    expect(r.worstGroup.group).toBe(0);
    expect(r.accuracyGap).toBe(0.5);
    expect(r.worstGroupGap).toBe(0.25);
  });

  it('equals the plain metrics on each group\'s rows, with flat input and non-contiguous group ids', () => {
    const flat = probs.flat();
    const g = [5, 2, 5, 2];
    const r = groupMetrics(flat, labels, g, { numClasses: 2, bins: 4 });
    expect(r.groups.map((x) => x.group)).toEqual([2, 5]);
    const rows2 = [probs[1], probs[3]];
    const conf = rows2.map((p) => Math.max(...p));
    const corr = [0, 1];
    expect(r.groups[0].accuracy).toBe(accuracy(rows2, [1, 1]));
    expect(r.groups[0].ece).toBe(ece(conf, corr, { bins: 4 }));
    expect(r.groups[0].nll).toBe(nll(rows2, [1, 1]));
    expect(r.worstGroup.group).toBe(2);
  });

  it('reads tensors back (groupMetricsOf)', async () => {
    const r = await groupMetricsOf(tensor(probs), intTensor(labels), intTensor(groups));
    expect(r.groups[0].accuracy).toBe(0.5);
    expect(r.overall.accuracy).toBe(0.75);
  });

  it('rejects one group, length mismatches, non-integer group ids and empty input', () => {
    expect(() => groupMetrics(probs, labels, [3, 3, 3, 3])).toThrow(MetricError);
    expect(() => groupMetrics(probs, labels, [3, 3, 3, 3])).toThrow(/all 4 rows are in group 3; a per-group breakdown needs at least two groups/);
    try {
      groupMetrics(probs, labels, [1, 1, 1, 1]);
      expect.fail('groupMetrics accepted a single group');
    } catch (e) {
      expect((e as MetricError).reason).toBe('one-class');
    }
    expect(() => groupMetrics(probs, labels, [0, 1])).toThrow(/4 probability rows but 2 group ids/);
    expect(() => groupMetrics(probs, [0, 1], groups)).toThrow(/4 probability rows but 2 labels/);
    expect(() => groupMetrics(probs, labels, [0, 0.5, 1, 1])).toThrow(/group id 1 is 0.5/);
    expect(() => groupMetrics([], [], [])).toThrow(MetricError);
    expect(() => groupMetrics([0.5, 0.5], [0], [0])).toThrow(/numClasses/);
  });
});
