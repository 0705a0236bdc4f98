import { describe, expect, it } from 'vitest';
import {
  ConfidNet,
  Linear,
  NotFittedError,
  ShapeError,
  type Tensor,
  confidNetLoss,
  fromHost,
  matmul,
  memory,
  setBackend,
  tidy,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { Rng } from './helpers/compare.js';

describe('ConfidNet (Corbière et al. 2019)', () => {
  it('loss: exact mean (ĉ − softmax(z)_y)²', async () => {
    setBackend(cpu);
    const z = [[2, 0.5, -1], [0.1, 0.2, 0.3], [-1, 3, 0]];
    const y = [0, 2, 0];
    const c = [0.9, 0.2, 0.6];
    const want = z.map((r, b) => {
      const e = r.map(Math.exp);
      const p = e[y[b]] / e.reduce((s, v) => s + v, 0);
      return (c[b] - p) ** 2;
    }).reduce((s, v) => s + v, 0) / 3;
    const got = await confidNetLoss(fromHost(c, [3], 'float64'), fromHost(z.flat(), [3, 3], 'float64'), fromHost(y, [3], 'int32')).data();
    expect(got[0]).toBeCloseTo(want, 14);
    expect(() => confidNetLoss(fromHost(c, [3], 'float64'), fromHost(z.flat(), [3, 3], 'float64'), fromHost([0, 1], [2], 'int32'))).toThrow(ShapeError);
  });

  it('the head: five Linear layers with ReLU, sigmoid output; trains towards TCP; score = −ĉ', async () => {
    setBackend(cpu);
    const rng = new Rng(3);
    const N = 200;
    const feats = fromHost(Array.from({ length: N * 4 }, () => rng.normal()), [N, 4], 'float32');
    const Wc = fromHost([1, -1, 0.5, 0, -0.5, 1, 0, 1, 0.3, 0.2, -1, 0.4], [3, 4], 'float32');
    const logits = (f: Tensor) => matmul(f, Wc, { transposeB: true }).mul(2);
    // Labels: the classifier's own prediction, flipped for 10% of rows (failures), so TCP is
    // mostly a function of the features and learnable.
    const zv = await logits(feats).data();
    const labels = Array.from({ length: N }, (_, i) => {
      const r = Array.from(zv.slice(3 * i, 3 * i + 3));
      const a = r.indexOf(Math.max(...r));
      return rng.next() < 0.1 ? (a + 1) % 3 : a;
    });
    const cn = new ConfidNet({ features: (x) => x, logits, hidden: 16 }, 4);
    expect(cn.head.children().filter((m) => m instanceof Linear).map((m) => (m as Linear).outFeatures)).toEqual([16, 16, 16, 16, 1]);
    expect(() => cn.score(feats)).toThrow(NotFittedError);
    const lab = fromHost(labels, [N], 'int32');
    const lossOf = async () => (await tidy(() => confidNetLoss(cn.confidence(feats), logits(feats), lab)).data())[0];
    const l0 = await lossOf();
    await cn.fit({ x: feats, labels, epochs: 60, lr: 3e-3, batchSize: 50 });
    const l1 = await lossOf();
    expect(l1).toBeLessThan(0.5 * l0);
    const before = memory().liveTensors;
    const s = cn.score(feats);
    const c = cn.confidence(feats);
    const sv = await s.data();
    const cv = await c.data();
    for (let i = 0; i < N; i++) {
      expect(sv[i]).toBeCloseTo(-cv[i], 7);
      expect(cv[i]).toBeGreaterThan(0);
      expect(cv[i]).toBeLessThan(1);
    }
    s.dispose();
    c.dispose();
    expect(memory().liveTensors).toBe(before);
  });

  it('WebGPU: the loss matches the CPU', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    setBackend(gpu);
    const got = await confidNetLoss(fromHost([0.9, 0.2], [2], 'float32', gpu), fromHost([2, 0.5, 0.1, 0.3], [2, 2], 'float32', gpu), fromHost([0, 1], [2], 'int32', gpu)).data();
    const p0 = 1 / (1 + Math.exp(-1.5));
    const p1 = 1 / (1 + Math.exp(-0.2));
    expect(got[0]).toBeCloseTo(((0.9 - p0) ** 2 + (0.2 - p1) ** 2) / 2, 6);
  });
});
