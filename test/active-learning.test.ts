import { beforeAll, describe, expect, it } from 'vitest';
import {
  ACQUISITIONS, Adam, ArgumentError, Dropout, Linear, ReLU, Sequential, ShapeError, acquisitionScores, balancedInitialSet, crossEntropy,
  enableMCDropout, indexSelect, manualSeed, mcDropoutScorer, memory, noGrad, randomNormal, runActiveLearning, selectTopK, setBackend,
  tensor, tidy, type Tensor,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

beforeAll(() => {
  setBackend(cpu);
});

// Fixed MC samples [T = 2, B = 3, K = 2]:
//   row 0: both passes (1, 0)                 → BALD 0, VR 0, H 0, margin −1
//   row 1: passes (1, 0) and (0, 1)           → BALD ln 2, VR 1/2, H ln 2, margin 0
//   row 2: both passes (0.6, 0.4)             → BALD 0, VR 0, H = −0.6 ln 0.6 − 0.4 ln 0.4, margin −0.2
const SAMPLES = [
  [[1, 0], [1, 0], [0.6, 0.4]],
  [[1, 0], [0, 1], [0.6, 0.4]],
];
const H2 = -(0.6 * Math.log(0.6) + 0.4 * Math.log(0.4));

async function scores(a: 'bald' | 'variationRatio' | 'maxEntropy' | 'margin'): Promise<number[]> {
  return Array.from(await acquisitionScores(tensor(SAMPLES), a).data());
}

describe('acquisition functions on fixed MC samples', () => {
  it('exact values', async () => {
    const bald = await scores('bald');
    [0, Math.LN2, 0].forEach((v, i) => expect(bald[i]).toBeCloseTo(v, 6));
    expect(await scores('variationRatio')).toEqual([0, 0.5, 0]);
    const h = await scores('maxEntropy');
    [0, Math.LN2, H2].forEach((v, i) => expect(h[i]).toBeCloseTo(v, 6));
    const m = await scores('margin');
    [-1, 0, -0.2].forEach((v, i) => expect(m[i]).toBeCloseTo(v, 6));
  });

  it('top-k: largest first, ties to the lower index, NaN last', () => {
    expect(Array.from(selectTopK([1, 3, 3, 2], 2))).toEqual([1, 2]);
    expect(Array.from(selectTopK([NaN, 0, -1], 3))).toEqual([1, 2, 0]);
    expect(Array.from(selectTopK([0, 0.5, 0.2], 0))).toEqual([]);
  });

  it('bad input', () => {
    expect(() => acquisitionScores(tensor([[0.5, 0.5]]), 'bald')).toThrow(ShapeError);
    expect(() => acquisitionScores(tensor(SAMPLES), 'random' as 'bald')).toThrow(ArgumentError);
    expect(() => acquisitionScores(tensor(SAMPLES), 'nope' as 'bald')).toThrow(/unknown acquisition 'nope'/);
    expect(() => selectTopK([1, 2], 3)).toThrow(/cannot acquire k = 3 from a pool of 2/);
    expect(() => balancedInitialSet([0, 0, 1], 2, 2, 0)).toThrow(/class 1 has 1 pool examples, fewer than perClass = 2/);
    expect(() => balancedInitialSet([0, 5], 2, 1, 0)).toThrow(/labels\[1\] = 5/);
  });

  it('balanced start set: perClass of each class, seeded', () => {
    const labels = Array.from({ length: 40 }, (_, i) => i % 4);
    const a = balancedInitialSet(labels, 4, 3, 11);
    expect(a.length).toBe(12);
    expect([0, 1, 2, 3].map((c) => Array.from(a).filter((i) => labels[i] === c).length)).toEqual([3, 3, 3, 3]);
    expect(Array.from(balancedInitialSet(labels, 4, 3, 11))).toEqual(Array.from(a));
    expect(Array.from(balancedInitialSet(labels, 4, 3, 12))).not.toEqual(Array.from(a));
  });
});

/** Three Gaussian blobs in 2-D (centres on a triangle, σ = 0.6), seeded. */
function blobs(n: number, seed: number): { x: Float32Array; y: Int32Array } {
  const e = randomNormal(2 * n, seed, 0);
  const centres = [[0, 2], [-1.8, -1], [1.8, -1]];
  const x = new Float32Array(2 * n);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 3;
    x[2 * i] = centres[y[i]][0] + 0.6 * e[2 * i];
    x[2 * i + 1] = centres[y[i]][1] + 0.6 * e[2 * i + 1];
  }
  return { x, y };
}

function tinyLoop(acquisition: (typeof ACQUISITIONS)[number], keepModels?: Sequential[]) {
  const pool = blobs(90, 1);
  const test = blobs(60, 2);
  const poolX = tensor(pool.x, [90, 2]);
  const testX = tensor(test.x, [60, 2]);
  const poolY = tensor(pool.y, [90], { dtype: 'int32' });
  const train = async (idx: Int32Array, round: number) => {
    manualSeed(100 + round);
    const net = new Sequential(new Linear(2, 16), new ReLU(), new Dropout(0.3), new Linear(16, 3));
    const opt = new Adam(net.parameters(), { lr: 0.05 });
    const ids = tensor(idx, [idx.length], { dtype: 'int32' });
    const xb = indexSelect(poolX, 0, ids);
    const yb = indexSelect(poolY, 0, ids);
    for (let s = 0; s < 60; s++) {
      tidy(() => {
        opt.zeroGrad();
        crossEntropy(net.forward(xb), yb).backward();
        opt.step();
      });
    }
    for (const t of [ids, xb, yb]) t.dispose();
    opt.dispose(); // Adam's moments
    net.eval();
    enableMCDropout(net);
    keepModels?.push(net);
    return net;
  };
  const evaluate = async (net: Sequential) => {
    const pred = noGrad(() => tidy(() => net.forward(testX).argmax(-1)));
    const p = await pred.data();
    pred.dispose();
    let c = 0;
    for (let i = 0; i < 60; i++) if (p[i] === test.y[i]) c++;
    return c / 60;
  };
  const scorer = mcDropoutScorer<Sequential>(poolX, { samples: 8, seed: 5 });
  const run = () => runActiveLearning({
    poolLabels: pool.y, numClasses: 3, initialPerClass: 1, k: 4, rounds: 3, acquisition, seed: 9,
    train, evaluate, score: scorer, dispose: keepModels ? undefined : (m) => m.dispose(),
  });
  return { run, scorer, dispose: () => [poolX, testX, poolY].forEach((t) => t.dispose()) };
}

describe('the pool-based loop on a tiny synthetic problem', () => {
  it('BALD: acquires the top-k of the MC-dropout scores, grows the labelled set, leaks nothing', async () => {
    const models: Sequential[] = [];
    const loop = tinyLoop('bald', models);
    const before = memory().liveTensors;
    const r = await loop.run();
    expect(r.labels).toEqual([3, 7, 11, 15]);
    expect(r.accuracy).toHaveLength(4);
    expect(r.accuracy[3]).toBeGreaterThan(0.9); // separated blobs: 15 labels are plenty
    const all = [...balancedInitialSet(blobs(90, 1).y, 3, 1, 9), ...r.acquired.flatMap((a) => Array.from(a))];
    expect(new Set(all).size).toBe(15); // never acquires a labelled index twice
    // round 0's acquisition is exactly the top 4 of the scorer on the unlabelled rows
    const start = new Set(balancedInitialSet(blobs(90, 1).y, 3, 1, 9));
    const unl = Int32Array.from({ length: 90 }, (_, i) => i).filter((i) => !start.has(i));
    const s0 = await loop.scorer(models[0], unl, 'bald', 0);
    expect(Array.from(r.acquired[0])).toEqual(Array.from(selectTopK(s0, 4), (j) => unl[j]));
    models.forEach((m) => m.dispose());
    expect(memory().liveTensors).toBe(before);
    loop.dispose();
  });

  it('random and the other acquisitions run; random is seeded', async () => {
    for (const a of ['random', 'variationRatio', 'maxEntropy', 'margin'] as const) {
      const loop = tinyLoop(a);
      const r = await loop.run();
      expect(r.labels).toEqual([3, 7, 11, 15]);
      expect(r.acquired.every((q) => q.length === 4)).toBe(true);
      if (a === 'random') expect((await loop.run()).acquired).toEqual(r.acquired);
      loop.dispose();
    }
  });

  it('acquisition larger than the pool, missing scorer: typed errors before any training', async () => {
    let trained = 0;
    const base = {
      poolLabels: [0, 1, 0, 1, 0, 1], numClasses: 2, initialPerClass: 1, seed: 0, acquisition: 'random' as const,
      train: async () => { trained++; return null; }, evaluate: async () => 1,
    };
    await expect(runActiveLearning({ ...base, k: 5, rounds: 1 })).rejects.toThrow(/k = 5 over 1 rounds needs 5 unlabelled inputs, but the pool of 6 has 4/);
    await expect(runActiveLearning({ ...base, k: 2, rounds: 3 })).rejects.toThrow(ArgumentError);
    await expect(runActiveLearning({ ...base, acquisition: 'bald', k: 1, rounds: 1 })).rejects.toThrow(/needs a score function/);
    await expect(runActiveLearning({ ...base, k: 0, rounds: 1 })).rejects.toThrow(/k must be a positive integer/);
    expect(trained).toBe(0);
    expect(await runActiveLearning({ ...base, k: 2, rounds: 2 })).toMatchObject({ labels: [2, 4, 6] });
  });
});

describe('WebGPU', () => {
  it('acquisition scores equal the CPU reference', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const z = randomNormal(5 * 13 * 4, 3, 0);
    const probs = (be: typeof gpu): Tensor => tensor(z, [5, 13, 4], { backend: be }).softmax(-1);
    for (const a of ['bald', 'variationRatio', 'maxEntropy', 'margin'] as const) {
      const c = await acquisitionScores(probs(cpu), a).data();
      const g = await acquisitionScores(probs(gpu), a).data();
      for (let i = 0; i < c.length; i++) expect(g[i]).toBeCloseTo(c[i], 5);
    }
  });
});
