import { describe, expect, it } from 'vitest';
import {
  ArgumentError,
  IntrospectiveClassifier,
  Linear,
  NotFittedError,
  type Tensor,
  crossEntropy,
  fromHost,
  gradients,
  introspectiveFeatures,
  memory,
  setBackend,
  tidy,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { Rng } from './helpers/compare.js';
import { W1, W2, b1, b2, tinyMlp } from './helpers/tiny-mlp.js';

const X = [[1.0, -0.5, 0.3], [-0.2, 0.8, 1.1]];

const net = tinyMlp;

async function valuesOf(t: Tensor): Promise<Float64Array | Float32Array> {
  const v = await t.data();
  t.dispose();
  return v as Float64Array | Float32Array;
}

function reference(normalize: boolean): number[] {
  const out: number[] = [];
  for (const x of X) {
    const a = W1.map((w, i) => Math.max(0, w.reduce((s, v, j) => s + v * x[j], b1[i])));
    const z = W2.map((w, i) => w.reduce((s, v, j) => s + v * a[j], b2[i]));
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const p = e.map((v) => v / e.reduce((s, u) => s + u, 0));
    const na = normalize ? Math.hypot(...a) : 1;
    for (let q = 0; q < 3; q++) {
      const d = p.map((v, k) => v - (k === q ? 1 : 0));
      const nd = normalize ? Math.hypot(...d) : 1;
      for (let k = 0; k < 3; k++) for (let j = 0; j < 4; j++) out.push((d[k] / nd) * (a[j] / na));
    }
  }
  return out;
}

describe('introspective features (Prabhushankar & AlRegib 2022)', () => {
  it('exact: (p − e_Q)aᵀ for every Q, normalised; unnormalised = autograd ∂CE(z, Q)/∂W', async () => {
    setBackend(cpu);
    const m = net('float64');
    const x = fromHost(X.flat(), [2, 3], 'float64');
    const before = memory().liveTensors;
    const f = introspectiveFeatures(m, x);
    expect(f.shape).toEqual([2, 36]);
    const got = await f.data();
    // 10 digits: the normalisation divides by (‖·‖ + 1e-12), a documented guard against 0/0.
    reference(true).forEach((v, i) => expect(got[i]).toBeCloseTo(v, 10));
    f.dispose();
    expect(memory().liveTensors).toBe(before);
    const raw = await introspectiveFeatures(m, x, { normalize: false }).data();
    const l2 = m.children()[2] as Linear;
    for (let b = 0; b < 2; b++) for (let q = 0; q < 3; q++) {
      const [g] = tidy(() => gradients(crossEntropy(m.forward(x.slice([b], [1, 3])), fromHost([q], [1], 'int32'), { reduction: 'sum' }), [l2.weight]));
      const gv = await g.data();
      for (let i = 0; i < 12; i++) expect(raw[b * 36 + q * 12 + i]).toBeCloseTo(gv[i], 12);
    }
    expect(() => introspectiveFeatures(m, x, { layer: '1' })).toThrow(ArgumentError);
  });

  it("exact: questions 'allOnes' = (K·p − 1)aᵀ = autograd ∂Σ_Q CE(z, Q)/∂W, and bias appends ∂/∂b", async () => {
    setBackend(cpu);
    const m = net('float64');
    const x = fromHost(X.flat(), [2, 3], 'float64');
    const l2 = m.children()[2] as Linear;
    const before = memory().liveTensors;
    const raw = introspectiveFeatures(m, x, { questions: 'allOnes', bias: true, normalize: false });
    expect(raw.shape).toEqual([2, 15]); // K·(D + 1) = 3·5
    const rv = await raw.data();
    raw.dispose();
    for (let b = 0; b < 2; b++) {
      const xb = x.slice([b], [1, 3]);
      const [gw, gb] = tidy(() => {
        const z = m.forward(xb);
        const loss = crossEntropy(z, fromHost([0], [1], 'int32'), { reduction: 'sum' })
          .add(crossEntropy(z, fromHost([1], [1], 'int32'), { reduction: 'sum' }))
          .add(crossEntropy(z, fromHost([2], [1], 'int32'), { reduction: 'sum' }));
        return gradients(loss, [l2.weight, l2.bias!]);
      });
      const w = await gw.data();
      const bb = await gb.data();
      for (let k = 0; k < 3; k++) {
        for (let j = 0; j < 4; j++) expect(rv[b * 15 + k * 5 + j]).toBeCloseTo(w[k * 4 + j], 12);
        expect(rv[b * 15 + k * 5 + 4]).toBeCloseTo(bb[k], 12);
      }
      for (const t of [xb, gw, gb]) t.dispose();
    }
    // Normalised: the unit-norm version of the same [W | b] gradient, per sample.
    const nv = await valuesOf(introspectiveFeatures(m, x, { questions: 'allOnes', bias: true }));
    for (let b = 0; b < 2; b++) {
      const row = Array.from(rv.slice(b * 15, b * 15 + 15));
      const n = Math.hypot(...row);
      row.forEach((v, i) => expect(nv[b * 15 + i]).toBeCloseTo(v / n, 10));
    }
    // Without bias: [B, K·D], the W part of the above.
    const nb = await valuesOf(introspectiveFeatures(m, x, { questions: 'allOnes', normalize: false }));
    for (let b = 0; b < 2; b++) for (let k = 0; k < 3; k++) for (let j = 0; j < 4; j++) expect(nb[b * 12 + k * 4 + j]).toBeCloseTo(rv[b * 15 + k * 5 + j], 12);
    // 'each' with bias: [B, K·K·(D + 1)]; the bias entry of question Q is p_k − [k = Q].
    const eb = introspectiveFeatures(m, x, { bias: true, normalize: false });
    expect(eb.shape).toEqual([2, 45]);
    const ev = await eb.data();
    eb.dispose();
    const plain = reference(false);
    for (let b = 0; b < 2; b++) for (let q = 0; q < 3; q++) for (let k = 0; k < 3; k++) {
      for (let j = 0; j < 4; j++) expect(ev[b * 45 + q * 15 + k * 5 + j]).toBeCloseTo(plain[b * 36 + q * 12 + k * 4 + j], 12);
    }
    expect(memory().liveTensors).toBe(before);
    expect(() => introspectiveFeatures(m, x, { questions: 'some' as never })).toThrow(ArgumentError);
  });

  it('WebGPU matches the CPU reference', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    setBackend(gpu);
    const mg = net('float32', gpu);
    const xg = fromHost(X.flat(), [2, 3], 'float32', gpu);
    const got = await introspectiveFeatures(mg, xg).data();
    reference(true).forEach((v, i) => expect(got[i]).toBeCloseTo(v, 5));
    setBackend(cpu);
    const want = await introspectiveFeatures(net('float64'), fromHost(X.flat(), [2, 3], 'float64'), { questions: 'allOnes', bias: true }).data();
    setBackend(gpu);
    const g1 = await introspectiveFeatures(mg, xg, { questions: 'allOnes', bias: true }).data();
    expect(g1.length).toBe(30);
    want.forEach((v, i) => expect(g1[i]).toBeCloseTo(v, 5));
  });

  it('IntrospectiveClassifier: NotFittedError, then H re-predicts the class of a separable toy', async () => {
    setBackend(cpu);
    const m = net('float32');
    const rng = new Rng(2);
    const N = 120;
    const xs: number[] = [];
    const ys: number[] = [];
    for (let i = 0; i < N; i++) {
      const c = i % 2;
      const base = X[c];
      base.forEach((v) => xs.push(2 * v + 0.1 * rng.normal()));
      ys.push(c);
    }
    const x = fromHost(xs, [N, 3], 'float32');
    const clf = new IntrospectiveClassifier(m, { stage2: { epochs: 40, lr: 3e-3, seed: 1 } });
    expect(() => clf.score(x)).toThrow(NotFittedError);
    await clf.fit({ x, labels: ys, numClasses: 3, batchSize: 50 });
    const { prediction, score } = clf.predict(x);
    const pred = await prediction.data();
    let ok = 0;
    for (let i = 0; i < N; i++) ok += pred[i] === ys[i] ? 1 : 0;
    expect(ok / N).toBeGreaterThan(0.95);
    expect(score.shape).toEqual([N]);
  });
});
