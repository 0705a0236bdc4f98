import { describe, expect, it } from 'vitest';
import {
  ArgumentError,
  type Backend,
  type Tensor,
  bim,
  crossEntropy,
  fgsm,
  fromHost,
  iterativeLeastLikely,
  matmul,
  memory,
  pgd,
  setBackend,
  softmax,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { Rng } from './helpers/compare.js';

// A fixed linear classifier on 6-d inputs in [0, 1], 3 classes.
const W = [[1.2, -0.7, 0.3, 0.9, -1.1, 0.4], [-0.5, 0.8, -1.3, 0.2, 0.6, -0.9], [0.3, 0.1, 0.9, -1.0, 0.5, 1.1]];
function setup(be: Backend, dtype: 'float32' | 'float64' = 'float64') {
  setBackend(be);
  const w = fromHost(W.flat(), [3, 6], dtype, be);
  const model = (x: Tensor) => matmul(x, w, { transposeB: true });
  const rng = new Rng(8);
  const x = fromHost(Array.from({ length: 4 * 6 }, () => 0.05 + 0.9 * rng.next()), [4, 6], dtype, be);
  const y = fromHost([0, 1, 2, 0], [4], 'int32', be);
  return { w, model, x, y };
}
const lossOf = async (model: (x: Tensor) => Tensor, x: Tensor, y: Tensor) => Array.from(await crossEntropy(model(x), y, { reduction: 'none' }).data());

async function inBall(adv: Tensor, x: Tensor, eps: number, lo = 0, hi = 1) {
  const a = await adv.data();
  const b = await x.data();
  for (let i = 0; i < a.length; i++) {
    expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(eps + 1e-6);
    expect(a[i]).toBeGreaterThanOrEqual(lo);
    expect(a[i]).toBeLessThanOrEqual(hi);
  }
}

describe('adversarial attacks', () => {
  it('FGSM: x + ε·sign(∇ₓ CE) (exact on a linear model), clipped', async () => {
    const { w, model, x, y } = setup(cpu);
    const eps = 0.1;
    const before = memory().liveTensors;
    const adv = await fgsm(model, x, y, { epsilon: eps });
    expect(memory().liveTensors).toBe(before + 1);
    // ∇ₓ CE = Wᵀ(p − e_y)
    const p = await softmax(model(x), 1).data();
    const xs = await x.data();
    const ys = await y.data();
    const got = await adv.data();
    for (let b = 0; b < 4; b++) for (let j = 0; j < 6; j++) {
      const g = W.reduce((s, row, k) => s + row[j] * (p[b * 3 + k] - (k === ys[b] ? 1 : 0)), 0);
      expect(got[b * 6 + j]).toBeCloseTo(Math.min(1, Math.max(0, xs[b * 6 + j] + eps * Math.sign(g))), 12);
    }
    void w;
  });

  it('BIM raises the loss monotonically with a small step and stays inside the ball and the clip range', async () => {
    const { model, x, y } = setup(cpu);
    const eps = 0.2;
    let prev = await lossOf(model, x, y);
    for (let steps = 1; steps <= 8; steps++) {
      const adv = await bim(model, x, y, { epsilon: eps, stepSize: 0.03, steps });
      await inBall(adv, x, eps);
      const l = await lossOf(model, adv, y);
      l.forEach((v, i) => expect(v).toBeGreaterThanOrEqual(prev[i] - 1e-12));
      prev = l;
      adv.dispose();
    }
  });

  it('PGD: random start inside the ball, loss above the clean loss; least-likely lowers the LL loss', async () => {
    const { model, x, y } = setup(cpu);
    const eps = 0.15;
    const before = memory().liveTensors;
    const adv = await pgd(model, x, y, { epsilon: eps, steps: 10, seed: 3 });
    expect(memory().liveTensors).toBe(before + 1);
    await inBall(adv, x, eps);
    const clean = await lossOf(model, x, y);
    (await lossOf(model, adv, y)).forEach((v, i) => expect(v).toBeGreaterThan(clean[i]));
    const ll = await iterativeLeastLikely(model, x, { epsilon: eps, steps: 10 });
    await inBall(ll, x, eps);
    const z = await model(x).data();
    const yLL = fromHost(Array.from({ length: 4 }, (_, b) => { const r = Array.from(z.slice(b * 3, b * 3 + 3)); return r.indexOf(Math.min(...r)); }), [4], 'int32');
    const cl = await lossOf(model, x, yLL);
    (await lossOf(model, ll, yLL)).forEach((v, i) => expect(v).toBeLessThan(cl[i]));
  });

  it('typed errors: ε < 0, inputs outside the clip range, bad steps', async () => {
    const { model, x, y } = setup(cpu);
    await expect(fgsm(model, x, y, { epsilon: -0.1 })).rejects.toThrow(ArgumentError);
    await expect(pgd(model, x.mul(3), y, { epsilon: 0.1 })).rejects.toThrow(/outside the clip range/);
    await expect(bim(model, x, y, { epsilon: 0.1, steps: 1.5 })).rejects.toThrow(ArgumentError);
    await expect(pgd(model, x, y, { epsilon: 0.1, clip: [1, 0] })).rejects.toThrow(ArgumentError);
  });

  it('WebGPU matches the CPU (BIM, deterministic)', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const c = setup(cpu, 'float32');
    const want = await (await bim(c.model, c.x, c.y, { epsilon: 0.1, steps: 5 })).data();
    const g = setup(gpu, 'float32');
    const got = await (await bim(g.model, g.x, g.y, { epsilon: 0.1, steps: 5 })).data();
    for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 5);
  });
});
