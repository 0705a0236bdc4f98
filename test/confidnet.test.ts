import { describe, expect, it } from 'vitest';
import {
  ArgumentError,
  ConfidNet,
  Linear,
  NotFittedError,
  ShapeError,
  type Tensor,
  confidNetLoss,
  fromHost,
  matmul,
  mcpLogit,
  memory,
  setBackend,
  tidy,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { Rng } from './helpers/compare.js';

/**
 * A fixed 3-class linear classifier on N random 4-d features, with labels equal to its own
 * prediction except for a `flip` fraction of rows (its failures): TCP is then mostly a function
 * of the features, so a ConfidNet head can learn it.
 */
async function toyFailures(seed: number, N: number, flip: number) {
  const rng = new Rng(seed);
  const feats = fromHost(Array.from({ length: N * 4 }, () => rng.normal()), [N, 4], 'float32');
  const Wc = fromHost([1, -1, 0.5, 0, -0.5, 1, 0, 1, 0.3, 0.2, -1, 0.4], [3, 4], 'float32');
  const logits = (f: Tensor) => matmul(f, Wc, { transposeB: true }).mul(2);
  const zv = await logits(feats).data();
  const labels = Array.from({ length: N }, (_, i) => {
    const r = Array.from(zv.slice(3 * i, 3 * i + 3));
    const a = r.indexOf(Math.max(...r));
    return rng.next() < flip ? (a + 1) % 3 : a;
  });
  return { N, feats, logits, labels, zv };
}

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
    // Labels: the classifier's own prediction, flipped for 10% of rows (failures), so TCP is
    // mostly a function of the features and learnable.
    const { N, feats, logits, labels } = await toyFailures(3, 200, 0.1);
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

  it('mcpLogit: z_max − logsumexp of the other logits (hand values), finite where MCP rounds to 1', async () => {
    setBackend(cpu);
    const got = await mcpLogit(fromHost([2, 0.5, -1, 0, 0, 3, 1, 1, 0], [3, 3], 'float64')).data();
    expect(got[0]).toBeCloseTo(2 - Math.log(Math.exp(0.5) + Math.exp(-1)), 12);
    expect(got[1]).toBeCloseTo(3 - Math.log(2), 12);
    // tied maximum: one of the two 1s is the max, the other stays among the rest → 1 − log(e + 1)
    expect(got[2]).toBeCloseTo(1 - Math.log(Math.E + 1), 12);
    // sigmoid(logit(MCP)) = max softmax
    const p0 = Math.exp(2) / (Math.exp(2) + Math.exp(0.5) + Math.exp(-1));
    expect(1 / (1 + Math.exp(-got[0]))).toBeCloseTo(p0, 12);
    const big = await mcpLogit(fromHost([40, 0, -5], [1, 3], 'float32')).data();
    expect(big[0]).toBeCloseTo(40 - Math.log(1 + Math.exp(-5)), 4); // softmax would round to exactly 1 in float32
    expect(() => mcpLogit(fromHost([1, 2], [2], 'float32'))).toThrow(/mcpLogit: expected logits \[B, K\]/);
  });

  it("base 'mcp': the untrained head returns MCP exactly; training lowers the loss; score = −ĉ", async () => {
    setBackend(cpu);
    const { N, feats, logits, labels, zv } = await toyFailures(5, 120, 0.15);
    const cn = new ConfidNet({ features: (x) => x, logits, hidden: 8, base: 'mcp' }, 4);
    const c0 = await cn.confidence(feats).data();
    for (let i = 0; i < N; i++) {
      const r = Array.from(zv.slice(3 * i, 3 * i + 3));
      const m = Math.max(...r);
      const mcp = 1 / r.reduce((s, v) => s + Math.exp(v - m), 0);
      expect(Math.abs(c0[i] - mcp)).toBeLessThan(1e-6);
    }
    expect(() => cn.confidenceFromFeatures(feats)).toThrow(ArgumentError);
    expect(() => new ConfidNet({ features: (x) => x, logits }, 4).confidenceFromFeatures(feats, fromHost(new Float32Array(N), [N], 'float32'))).toThrow(ArgumentError);
    const lab = fromHost(labels, [N], 'int32');
    const lossOf = async () => (await tidy(() => confidNetLoss(cn.confidence(feats), logits(feats), lab)).data())[0];
    const l0 = await lossOf();
    await cn.fit({ x: feats, labels, epochs: 40, lr: 3e-3, batchSize: 40 });
    const l1 = await lossOf();
    expect(l1).toBeLessThan(l0);
    const before = memory().liveTensors;
    const { prediction, score } = cn.predict(feats);
    const c = cn.confidence(feats);
    const sv = await score.data();
    const cv = await c.data();
    for (let i = 0; i < N; i++) expect(sv[i]).toBeCloseTo(-cv[i], 6);
    prediction.dispose();
    score.dispose();
    c.dispose();
    expect(memory().liveTensors).toBe(before);
  });
});
