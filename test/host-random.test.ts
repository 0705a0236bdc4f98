import { describe, expect, it } from 'vitest';
import {
  Adam,
  ConfidNet,
  Linear,
  ReLU,
  Sequential,
  Stage2Classifier,
  type Tensor,
  crossEntropy,
  fromHost,
  gather,
  keep,
  manualSeed,
  matmul,
  mean,
  memory,
  mulberry32,
  noGrad,
  setBackend,
  shuffleWith,
  softmax,
  sqrt,
  square,
  tidy,
  variance,
} from '../node.js';
import { rng as toyRng } from '../examples/toy-random.js';
import { cpu } from './helpers/backends.js';
import { Rng } from './helpers/compare.js';

/** mulberry32 as it is usually published (Tommy Ettinger's generator, the common JS one-liner form). */
function referenceMulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The shuffle + mini-batch loop the stage-2 classifier and ConfidNet each inlined before sharing one. */
async function referenceLoop(N: number, epochs: number, bs: number, seed: number, step: (ix: Tensor) => Tensor): Promise<number> {
  let s = seed >>> 0;
  const rand = () => {
    let t = (s = (s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const order = Int32Array.from({ length: N }, (_, i) => i);
  let last = NaN;
  for (let e = 0; e < epochs; e++) {
    for (let i = N - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); const t = order[i]; order[i] = order[j]; order[j] = t; }
    const losses: Tensor[] = [];
    for (let st = 0; st < N; st += bs) {
      const idx = order.subarray(st, Math.min(N, st + bs));
      losses.push(tidy(() => keep(step(fromHost(idx, [idx.length], 'int32')).detach())));
    }
    if (e === epochs - 1) {
      let tot = 0;
      for (const l of losses) tot += (await l.data())[0];
      last = tot / losses.length;
    }
    for (const l of losses) l.dispose();
  }
  return last;
}

const bits = async (t: Tensor) => Array.from(new Uint32Array(new Float32Array(await t.data()).buffer));

describe('host generator (mulberry32) and the shared mini-batch loop', () => {
  it('mulberry32 draws the published sequence (10,000 draws, several seeds); toy-random uses it', () => {
    for (const seed of [0, 1, 42, 0x9e3779b9, 0x85ebca6b, 0xffffffff, -7]) {
      const a = mulberry32(seed);
      const b = referenceMulberry32(seed >>> 0);
      const c = toyRng(seed);
      let mismatches = 0;
      let outside = 0;
      for (let i = 0; i < 10000; i++) {
        const v = a();
        if (v !== b() || c() !== v) mismatches++;
        if (!(v >= 0 && v < 1)) outside++;
      }
      expect(mismatches).toBe(0);
      expect(outside).toBe(0);
    }
  });

  it('shuffleWith: Fisher–Yates with one draw per position, a permutation', () => {
    const a = Int32Array.from({ length: 50 }, (_, i) => i);
    shuffleWith(a, mulberry32(9));
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const want = Array.from({ length: 50 }, (_, i) => i);
    const r = referenceMulberry32(9);
    for (let i = 49; i > 0; i--) { const j = Math.floor(r() * (i + 1)); [want[i], want[j]] = [want[j], want[i]]; }
    expect([...a]).toEqual(want);
  });

  it('Stage2Classifier: weights bit-identical to the former inline loop (same seed)', async () => {
    setBackend(cpu);
    const rng = new Rng(21);
    const N = 90;
    const D = 5;
    const feats = fromHost(Array.from({ length: N * D }, () => rng.normal()), [N, D], 'float32');
    const labels = Array.from({ length: N }, (_, i) => (i * 7) % 3);
    const opts = { hidden: 6, epochs: 4, batchSize: 16, seed: 5, lr: 3e-3 };
    // No leak: fit + dispose leaves the live-tensor count as it was (the standardisation's
    // intermediates leaked 3 tensors per fit before).
    const live = memory().liveTensors;
    const probe = await new Stage2Classifier(opts).fit(feats, labels, 3);
    probe.dispose();
    expect(memory().liveTensors).toBe(live);
    const st = await new Stage2Classifier(opts).fit(feats, labels, 3);
    const got = await st.logits(feats);
    // The pre-refactor algorithm, step by step.
    manualSeed(opts.seed);
    const net = new Sequential(new Linear(D, opts.hidden), new ReLU(), new Linear(opts.hidden, 3));
    const mu = keep(noGrad(() => mean(feats, 0, true)));
    const sd = keep(noGrad(() => sqrt(variance(feats, 0, true).add(1e-12)).add(1e-6)));
    const opt = new Adam(net.parameters(), { lr: opts.lr, weightDecay: 0 });
    const yAll = fromHost(Int32Array.from(labels), [N], 'int32');
    const last = await referenceLoop(N, opts.epochs, opts.batchSize, (opts.seed ^ 0x9e3779b9) >>> 0, (ix) => {
      const xb = feats.indexSelect(0, ix).sub(mu).div(sd);
      opt.zeroGrad();
      const loss = crossEntropy(net.forward(xb), yAll.indexSelect(0, ix));
      loss.backward();
      opt.step();
      return loss;
    });
    const want = tidy(() => noGrad(() => net.eval().forward(feats.sub(mu).div(sd))));
    expect(await bits(got)).toEqual(await bits(want));
    expect(st.lastLoss).toBe(last);
  });

  it('ConfidNet.fit without val: head bit-identical to the former inline loop; no leak', async () => {
    setBackend(cpu);
    const rng = new Rng(8);
    const N = 70;
    const feats = fromHost(Array.from({ length: N * 4 }, () => rng.normal()), [N, 4], 'float32');
    const W = fromHost(Array.from({ length: 12 }, () => rng.normal()), [3, 4], 'float32');
    const logits = (f: Tensor) => matmul(f, W, { transposeB: true });
    const labels = Array.from({ length: N }, (_, i) => i % 3);
    manualSeed(4);
    const cn = new ConfidNet({ features: (x) => x, logits, hidden: 5 }, 4);
    manualSeed(4);
    const ref = new Sequential(new Linear(4, 5), new ReLU(), new Linear(5, 5), new ReLU(), new Linear(5, 5), new ReLU(), new Linear(5, 5), new ReLU(), new Linear(5, 1));
    const before = memory().liveTensors;
    await cn.fit({ x: feats, labels, epochs: 3, batchSize: 32, lr: 1e-3, seed: 2 });
    expect(memory().liveTensors).toBe(before);
    const lab = fromHost(labels, [N, 1], 'int32');
    const T = keep(noGrad(() => gather(softmax(logits(feats), 1), lab, 1).reshape([N])));
    manualSeed(2);
    const opt = new Adam(ref.parameters(), { lr: 1e-3 });
    const last = await referenceLoop(N, 3, 32, (2 ^ 0x85ebca6b) >>> 0, (ix) => {
      opt.zeroGrad();
      const c = ref.forward(feats.indexSelect(0, ix)).reshape([ix.shape[0]]).sigmoid();
      const loss = mean(square(c.sub(T.indexSelect(0, ix))));
      loss.backward();
      opt.step();
      return loss;
    });
    expect(await bits(cn.confidence(feats))).toEqual(await bits(tidy(() => noGrad(() => ref.forward(feats).reshape([N]).sigmoid()))));
    expect(cn.lastLoss).toBe(last);
    expect(cn.selectedEpoch).toBe(3);
    expect(cn.valHistory).toEqual([]);
  });
});
