import { describe, expect, it } from 'vitest';
import {
  ArgumentError,
  ConfidNet,
  Linear,
  NotFittedError,
  ReLU,
  Sequential,
  ShapeError,
  type Tensor,
  auprError,
  confidNetLoss,
  fromHost,
  manualSeed,
  matmul,
  mcpLogit,
  memory,
  noGrad,
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

  it('fit with val: keeps the epoch with the best validation AUPR-Error (= a rerun for that many epochs)', async () => {
    setBackend(cpu);
    const tr = await toyFailures(11, 160, 0.2);
    const va = await toyFailures(12, 120, 0.2);
    const correctVal = (() => {
      const out = new Uint8Array(va.N);
      for (let i = 0; i < va.N; i++) {
        const r = Array.from(va.zv.slice(3 * i, 3 * i + 3));
        out[i] = r.indexOf(Math.max(...r)) === va.labels[i] ? 1 : 0;
      }
      return out;
    })();
    const opts = { x: tr.feats, labels: tr.labels, epochs: 12, lr: 2e-2, batchSize: 40, seed: 1 };
    manualSeed(3);
    const cn = new ConfidNet({ features: (x) => x, logits: tr.logits, hidden: 16 }, 4);
    const before = memory().liveTensors;
    await cn.fit({ ...opts, val: { x: va.feats, labels: va.labels } });
    expect(memory().liveTensors).toBe(before);
    expect(cn.valHistory).toHaveLength(12);
    const best = Math.max(...cn.valHistory);
    expect(cn.selectedEpoch).toBe(cn.valHistory.indexOf(best) + 1);
    // The history is not flat, and the kept epoch is not the last one (so the restore is exercised).
    expect(cn.selectedEpoch).toBeLessThan(12);
    expect(cn.valHistory[11]).toBeLessThan(best);
    const cVal = await noGrad(() => cn.confidence(va.feats)).data();
    expect(auprError(cVal, correctVal)).toBe(best);
    // A fresh head, same initialisation and seed, trained for exactly that many epochs: the same weights.
    manualSeed(3);
    const rerun = new ConfidNet({ features: (x) => x, logits: tr.logits, hidden: 16 }, 4);
    await rerun.fit({ ...opts, epochs: cn.selectedEpoch });
    expect(Array.from(await noGrad(() => rerun.confidence(va.feats)).data())).toEqual(Array.from(cVal));
    // selectBy 'loss': the epoch with the lowest validation MSE.
    manualSeed(3);
    const byLoss = new ConfidNet({ features: (x) => x, logits: tr.logits, hidden: 16 }, 4);
    await byLoss.fit({ ...opts, val: { x: va.feats, labels: va.labels }, selectBy: 'loss' });
    const low = Math.min(...byLoss.valHistory);
    expect(byLoss.selectedEpoch).toBe(byLoss.valHistory.indexOf(low) + 1);
    const lab = fromHost(va.labels, [va.N], 'int32');
    const mse = (await tidy(() => noGrad(() => confidNetLoss(byLoss.confidence(va.feats), va.logits(va.feats), lab))).data())[0];
    expect(mse).toBeCloseTo(low, 6);
  });

  it('fit: bad selection options throw typed errors', async () => {
    setBackend(cpu);
    const tr = await toyFailures(13, 40, 0.2);
    const cn = new ConfidNet({ features: (x) => x, logits: tr.logits, hidden: 4 }, 4);
    await expect(cn.fit({ x: tr.feats, labels: tr.labels, selectBy: 'auprError' })).rejects.toThrow(/selectBy needs a validation split/);
    await expect(cn.fit({ x: tr.feats, labels: tr.labels, val: { x: tr.feats, labels: tr.labels }, selectBy: 'accuracy' as 'loss' })).rejects.toThrow(ArgumentError);
    await expect(cn.fit({ x: tr.feats, labels: tr.labels, epochs: 0 })).rejects.toThrow(/epochs must be a positive integer/);
    // A validation split without errors: AUPR-Error is undefined there.
    const zv = await tr.logits(tr.feats).data();
    const own = Array.from({ length: tr.N }, (_, i) => {
      const r = Array.from(zv.slice(3 * i, 3 * i + 3));
      return r.indexOf(Math.max(...r));
    });
    await expect(cn.fit({ x: tr.feats, labels: tr.labels, val: { x: tr.feats, labels: own } })).rejects.toThrow(/needs errors and correct predictions of the classifier on val \(it has 0 errors in 40 rows\)/);
  });
});

/**
 * A fixed-weight classifier x [B, 3] → relu(W1 x + b1) [B, 2] → W2 f + b2 [B, 3] (float64), a
 * trainable copy of its encoder (Linear + ReLU), and a ConfidNet head with hidden = 2 whose
 * weights are fixed too; everything computed by hand in JS for the exact checks.
 */
async function tinyPhase2(copyOffset = 0) {
  const W1 = [0.5, -0.3, 0.8, -0.6, 0.4, 0.2];
  const b1 = [0.1, 0.05];
  const W2 = [1.2, -0.7, -0.4, 0.9, 0.3, 0.5];
  const b2 = [0.0, 0.2, -0.1];
  const classifierEnc = new Sequential(new Linear(3, 2), new ReLU());
  const classifierOut = new Linear(2, 3);
  await classifierEnc.to('float64');
  await classifierOut.to('float64');
  classifierEnc.loadStateDict({ '0.weight': fromHost(W1, [2, 3], 'float64'), '0.bias': fromHost(b1, [2], 'float64') });
  classifierOut.loadStateDict({ weight: fromHost(W2, [3, 2], 'float64'), bias: fromHost(b2, [3], 'float64') });
  const copy = new Sequential(new Linear(3, 2), new ReLU());
  await copy.to('float64');
  copy.loadStateDict({ '0.weight': fromHost(W1.map((v) => v + copyOffset), [2, 3], 'float64'), '0.bias': fromHost(b1, [2], 'float64') });
  const head = {
    h: [[0.7, -0.2, 0.3, 0.9], [0.1, 0.2], [0.4, -0.5, 0.6, 0.3], [-0.1, 0.2], [0.5, -0.4, 0.2, 0.8], [0.05, -0.05], [0.3, 0.6, -0.2, 0.4], [0.0, 0.1], [0.9, -0.8], [0.15]],
  };
  const cn = new ConfidNet({ features: (x) => classifierEnc.forward(x), logits: (x) => classifierOut.forward(classifierEnc.forward(x)), hidden: 2 }, 2);
  await cn.head.to('float64');
  const hd: Record<string, Tensor> = {};
  const shapes: number[][] = [[2, 2], [2], [2, 2], [2], [2, 2], [2], [2, 2], [2], [1, 2], [1]];
  [0, 2, 4, 6, 8].forEach((li, k) => {
    hd[`${li}.weight`] = fromHost(head.h[2 * k], shapes[2 * k], 'float64');
    hd[`${li}.bias`] = fromHost(head.h[2 * k + 1], shapes[2 * k + 1], 'float64');
  });
  cn.head.loadStateDict(hd);
  const x = [[1, 0.5, -0.2], [-0.3, 0.8, 0.6], [0.9, -0.4, 0.3], [0.2, 0.1, 1.1]];
  const y = [0, 1, 2, 1];
  const affine = (W: number[], b: number[], v: number[]) => b.map((bi, o) => bi + v.reduce((s, vi, i) => s + W[o * v.length + i] * vi, 0));
  const relu = (v: number[]) => v.map((t) => Math.max(0, t));
  const headFwd = (f: number[], hw: number[][] = head.h) => {
    let h = f;
    for (let k = 0; k < 5; k++) {
      h = affine(hw[2 * k], hw[2 * k + 1], h);
      if (k < 4) h = relu(h);
    }
    return 1 / (1 + Math.exp(-h[0]));
  };
  const tcpOf = (enc: number[], v: number[], label: number) => {
    const z = affine(W2, b2, relu(affine(enc, b1, v)));
    const m = Math.max(...z);
    const e = z.map((t) => Math.exp(t - m));
    return e[label] / e.reduce((a, b) => a + b, 0);
  };
  /** The loss by hand: the copy's encoder weights `Wc` give the features, the classifier's W1 the TCP. */
  const handLoss = (Wc: number[]) => x.reduce((s, v, b) => s + (headFwd(relu(affine(Wc, b1, v))) - tcpOf(W1, v, y[b])) ** 2, 0) / x.length;
  const X = fromHost(x.flat(), [4, 3], 'float64');
  const Y = fromHost(y, [4], 'int32');
  return { W1, copy, classifierEnc, classifierOut, cn, X, Y, y, handLoss, headFwd, tcpOf, x, b1 };
}

describe('ConfidNet phase 2: fine-tuning a copy of the encoder', () => {
  it('exact loss on a tiny fixed-weight net; its gradient w.r.t. the copy matches finite differences', async () => {
    setBackend(cpu);
    const t = await tinyPhase2(0.1);
    // Before fine-tuning the head reads the frozen classifier's features (W1).
    const l0 = (await tidy(() => t.cn.loss(t.X, t.Y)).data())[0];
    expect(l0).toBeCloseTo(t.handLoss(t.W1), 13);
    await t.cn.fit({ x: t.X, labels: t.y, epochs: 1, lr: 0, batchSize: 4 }); // lr 0: the fixed head stays as loaded
    await t.cn.fineTune({ x: t.X, labels: t.y, encoder: { module: t.copy, features: (x) => t.copy.forward(x) }, epochs: 1, lr: 0, batchSize: 4 });
    expect(t.cn.isFineTuned).toBe(true);
    // Now the copy's features (W1 + 0.1) and still the classifier's TCP.
    const Wc = t.W1.map((v) => v + 0.1);
    const loss = t.cn.loss(t.X, t.Y);
    expect((await loss.data())[0]).toBeCloseTo(t.handLoss(Wc), 13);
    expect(t.cn.lastLoss).toBeCloseTo(t.handLoss(Wc), 13);
    loss.backward();
    const w = (t.copy.children()[0] as Linear).weight;
    const g = await w.grad!.data();
    for (let i = 0; i < 6; i++) {
      const e = 1e-6;
      const up = Wc.slice(); up[i] += e;
      const dn = Wc.slice(); dn[i] -= e;
      expect(g[i]).toBeCloseTo((t.handLoss(up) - t.handLoss(dn)) / (2 * e), 8);
    }
    // No gradient reaches the frozen classifier.
    for (const p of [...t.classifierEnc.parameters(), ...t.classifierOut.parameters()]) expect(p.grad).toBeNull();
    loss.dispose();
  });

  it('one full-batch Adam step moves the copy by −lr·g/(|g|+ε) of that loss; the classifier stays bit-identical', async () => {
    setBackend(cpu);
    const t = await tinyPhase2(0.1);
    await t.cn.fit({ x: t.X, labels: t.y, epochs: 1, lr: 0, batchSize: 4 });
    const frozen = await Promise.all([...t.classifierEnc.parameters(), ...t.classifierOut.parameters()].map(async (p) => Array.from(await p.data())));
    const zBefore = Array.from(await noGrad(() => t.classifierOut.forward(t.classifierEnc.forward(t.X))).data());
    const Wc = t.W1.map((v) => v + 0.1);
    const lr = 1e-3;
    await t.cn.fineTune({ x: t.X, labels: t.y, encoder: { module: t.copy, features: (x) => t.copy.forward(x) }, epochs: 1, lr, batchSize: 4 });
    const w = Array.from(await (t.copy.children()[0] as Linear).weight.data());
    for (let i = 0; i < 6; i++) {
      const e = 1e-6;
      const up = Wc.slice(); up[i] += e;
      const dn = Wc.slice(); dn[i] -= e;
      const gi = (t.handLoss(up) - t.handLoss(dn)) / (2 * e);
      expect(Math.abs(gi)).toBeGreaterThan(1e-5); // every weight has a real gradient here
      expect(w[i]).toBeCloseTo(Wc[i] - (lr * gi) / (Math.abs(gi) + 1e-8), 9);
    }
    // More epochs at a large rate: the copy moves a lot, the classifier not at all.
    await t.cn.fineTune({ x: t.X, labels: t.y, encoder: { module: t.copy, features: (x) => t.copy.forward(x) }, epochs: 5, lr: 5e-2, batchSize: 2 });
    const after = await Promise.all([...t.classifierEnc.parameters(), ...t.classifierOut.parameters()].map(async (p) => Array.from(await p.data())));
    expect(after).toEqual(frozen);
    expect(Array.from(await noGrad(() => t.classifierOut.forward(t.classifierEnc.forward(t.X))).data())).toEqual(zBefore);
    const moved = Array.from(await (t.copy.children()[0] as Linear).weight.data());
    expect(Math.max(...moved.map((v, i) => Math.abs(v - Wc[i])))).toBeGreaterThan(0.05);
  });

  it('the TCP targets and predictions come from the frozen classifier, not from the copy', async () => {
    setBackend(cpu);
    // The copy starts far from the classifier: TCP computed through the copy would differ.
    const t = await tinyPhase2(0.6);
    await t.cn.fit({ x: t.X, labels: t.y, epochs: 1, lr: 0, batchSize: 4 });
    await t.cn.fineTune({ x: t.X, labels: t.y, encoder: { module: t.copy, features: (x) => t.copy.forward(x) }, epochs: 1, lr: 1e-3, batchSize: 4 });
    const Wc = t.W1.map((v) => v + 0.6);
    // The single step's loss (before its update): copy features, classifier TCP.
    expect(t.cn.lastLoss).toBeCloseTo(t.handLoss(Wc), 13);
    const copyFeatures = (v: number[]) => [0, 1].map((o) => Math.max(0, t.b1[o] + v.reduce((a, vi, i) => a + Wc[o * 3 + i] * vi, 0)));
    const withCopyTcp = t.x.reduce((s, v, b) => s + (t.headFwd(copyFeatures(v)) - t.tcpOf(Wc, v, t.y[b])) ** 2, 0) / t.x.length;
    expect(Math.abs(withCopyTcp - t.cn.lastLoss)).toBeGreaterThan(1e-3);
    // predict: the frozen classifier's argmax; score = −ĉ on the copy's features.
    const { prediction, score } = t.cn.predict(t.X);
    const z = await noGrad(() => t.classifierOut.forward(t.classifierEnc.forward(t.X))).data();
    const p = await prediction.data();
    for (let b = 0; b < 4; b++) {
      const r = Array.from(z.slice(3 * b, 3 * b + 3));
      expect(p[b]).toBe(r.indexOf(Math.max(...r)));
    }
    // The head was trained along with the copy: read both back and recompute ĉ by hand.
    const wNow = Array.from(await (t.copy.children()[0] as Linear).weight.data());
    const bNow = Array.from(await (t.copy.children()[0] as Linear).bias!.data());
    const hd = t.cn.head.stateDict();
    const hw = await Promise.all([0, 2, 4, 6, 8].flatMap((li) => [`${li}.weight`, `${li}.bias`]).map(async (k) => Array.from(await hd[k].data())));
    const sv = await score.data();
    for (let b = 0; b < 4; b++) {
      const f = [0, 1].map((o) => Math.max(0, bNow[o] + t.x[b].reduce((a, vi, i) => a + wNow[o * 3 + i] * vi, 0)));
      expect(sv[b]).toBeCloseTo(-t.headFwd(f, hw), 12);
    }
    for (const v of Object.values(hd)) v.dispose();
    prediction.dispose();
    score.dispose();
  });

  it('fineTune: model selection on val; typed errors; no leak', async () => {
    setBackend(cpu);
    const t = await tinyPhase2(0.1);
    const enc = { module: t.copy, features: (x: Tensor) => t.copy.forward(x) };
    await expect(t.cn.fineTune({ x: t.X, labels: t.y, encoder: enc })).rejects.toThrow(NotFittedError);
    await t.cn.fit({ x: t.X, labels: t.y, epochs: 1, lr: 0, batchSize: 4 });
    await expect(t.cn.fineTune({ x: [t.X] as unknown as Tensor, labels: t.y, encoder: enc })).rejects.toThrow(/x must be one tensor/);
    await expect(t.cn.fineTune({ x: t.X, labels: t.y, encoder: { module: {} as Sequential, features: enc.features } })).rejects.toThrow(/encoder must be/);
    await expect(t.cn.fineTune({ x: t.X, labels: [0, 1], encoder: enc })).rejects.toThrow(ShapeError);
    const before = memory().liveTensors;
    await t.cn.fineTune({ x: t.X, labels: t.y, encoder: enc, epochs: 6, lr: 2e-2, batchSize: 2, val: { x: t.X, labels: t.y }, selectBy: 'loss' });
    expect(memory().liveTensors).toBe(before);
    expect(t.cn.valHistory).toHaveLength(6);
    const low = Math.min(...t.cn.valHistory);
    expect(t.cn.selectedEpoch).toBe(t.cn.valHistory.indexOf(low) + 1);
    expect((await tidy(() => t.cn.loss(t.X, t.Y)).data())[0]).toBeCloseTo(low, 12);
  });
});
