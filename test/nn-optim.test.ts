import { describe, expect, it } from 'vitest';
import {
  type Tensor, ArgumentError, ShapeError, SGD, Adam, AdamW, StepLR, CosineAnnealingLR, clipGradNorm, Linear, ReLU, Sequential,
  crossEntropy, dispose, keep, manualSeed, memory, noGrad, parameter, setBackend, tensor, tidy,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { expectClose } from './helpers/compare.js';

setBackend(cpu);
const val = async (t: Tensor) => Array.from(await t.data());
const tol = { rtol: 1e-12, atol: 1e-14, why: 'float64, same arithmetic' };

/** loss = ½ Σ c·p², so ∇ = c·p. */
function backwardQuadratic(p: Tensor, c: number[]): void {
  tidy(() => p.square().mul(tensor(c, [c.length], { dtype: 'float64' })).sum().mul(0.5).backward());
}

describe('optimisers against hand-computed updates', () => {
  it('SGD with momentum, Nesterov and weight decay (two steps)', async () => {
    const p0 = [1, -2, 0.5];
    const c = [1, 3, -2];
    const p = parameter(tensor(p0, [3], { dtype: 'float64' }));
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 });
    let ref = [...p0];
    let buf: number[] | null = null;
    for (let step = 0; step < 2; step++) {
      opt.zeroGrad();
      backwardQuadratic(p, c);
      opt.step();
      const g = ref.map((v, i) => c[i] * v + 0.01 * v);
      buf = buf ? buf.map((b, i) => 0.9 * b + g[i]) : [...g];
      const d = g.map((gi, i) => gi + 0.9 * buf![i]);
      ref = ref.map((v, i) => v - 0.1 * d[i]);
      expectClose(await val(p), ref, tol, `sgd step ${step + 1}`);
    }
    expect(p.grad).not.toBeNull();
    // Plain momentum with dampening.
    const q = parameter(tensor([2], [1], { dtype: 'float64' }));
    const o2 = new SGD([q], { lr: 0.5, momentum: 0.5, dampening: 0.3 });
    for (let i = 0; i < 2; i++) { o2.zeroGrad(); backwardQuadratic(q, [1]); o2.step(); }
    // step1: b=2, q=2-1=1; step2: g=1, b=0.5·2+0.7·1=1.7, q=1-0.85=0.15
    expectClose(await val(q), [0.15], tol, 'dampening');
    expect(() => new SGD([q], { lr: 0.1, nesterov: true })).toThrow(ArgumentError);
  });

  it('Adam (with L2 weight decay) and AdamW (decoupled) match the bias-corrected formulas', async () => {
    const p0 = [1, -2, 0.5];
    const c = [1, 3, -2];
    for (const kind of ['adam', 'adamw', 'amsgrad'] as const) {
      const p = parameter(tensor(p0, [3], { dtype: 'float64' }));
      const wd = kind === 'adamw' ? 0.1 : 0.05;
      const opt = kind === 'adamw' ? new AdamW([p], { lr: 0.01, weightDecay: wd }) : new Adam([p], { lr: 0.01, weightDecay: wd, amsgrad: kind === 'amsgrad' });
      let ref = [...p0];
      let m = [0, 0, 0];
      let v = [0, 0, 0];
      let vmax = [0, 0, 0];
      for (let t = 1; t <= 3; t++) {
        opt.zeroGrad();
        backwardQuadratic(p, c);
        opt.step();
        let g = ref.map((x, i) => c[i] * x);
        if (kind === 'adamw') ref = ref.map((x) => x * (1 - 0.01 * wd));
        else g = g.map((gi, i) => gi + wd * ref[i]);
        m = m.map((mi, i) => 0.9 * mi + 0.1 * g[i]);
        v = v.map((vi, i) => 0.999 * vi + 0.001 * g[i] * g[i]);
        vmax = vmax.map((x, i) => Math.max(x, v[i]));
        const vu = kind === 'amsgrad' ? vmax : v;
        const mhat = m.map((x) => x / (1 - 0.9 ** t));
        const vhat = vu.map((x) => x / (1 - 0.999 ** t));
        ref = ref.map((x, i) => x - (0.01 * mhat[i]) / (Math.sqrt(vhat[i]) + 1e-8));
        expectClose(await val(p), ref, tol, `${kind} step ${t}`);
      }
      // First Adam step moves each coordinate by ≈ lr·sign(g).
      opt.dispose();
      p.dispose();
    }
  });

  it('Adam on float32 agrees between CPU and WebGPU', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const res: number[][] = [];
    for (const be of [cpu, gpu]) {
      setBackend(be);
      const p = parameter(tensor([1, -2, 0.5, 3]));
      const opt = new Adam([p], { lr: 0.1 });
      for (let i = 0; i < 5; i++) {
        opt.zeroGrad();
        tidy(() => p.square().mul(tensor([1, 2, 3, 4])).sum().backward());
        opt.step();
      }
      res.push(await val(p));
      opt.dispose();
      p.dispose();
    }
    setBackend(cpu);
    expectClose(res[1], res[0], { rtol: 1e-5, atol: 1e-6, why: 'f32 sqrt/div a few ULP per step' }, 'adam gpu');
  });
});

describe('memory, state and schedules', () => {
  it('liveTensors stays flat over 200 training steps (SGD momentum and AdamW)', async () => {
    manualSeed(0);
    const model = new Sequential(new Linear(4, 8), new ReLU(), new Linear(8, 3));
    const x = tensor(new Array(24).fill(0).map((_, i) => Math.sin(i)), [6, 4]);
    const y = tensor([0, 1, 2, 0, 1, 2], [6], { dtype: 'int32' });
    for (const opt of [new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4 }), new AdamW(model.parameters(), { lr: 0.01, amsgrad: true })]) {
      const step = () => tidy(() => {
        opt.zeroGrad();
        const loss = crossEntropy(model.forward(x), y);
        loss.backward();
        clipGradNorm(model.parameters(), 1);
        opt.step();
      });
      const lossNow = async () => {
        const l = tidy(() => noGrad(() => crossEntropy(model.forward(x), y)));
        const v = await l.item();
        l.dispose();
        return v;
      };
      for (let i = 0; i < 3; i++) step();
      const first = await lossNow();
      const m0 = memory().liveTensors;
      for (let i = 0; i < 200; i++) step();
      expect(memory().liveTensors).toBe(m0);
      const last = await lossNow();
      expect(last).toBeLessThan(first);
      opt.zeroGrad();
      opt.dispose();
    }
    model.dispose();
  });

  it('optimiser stateDict / loadStateDict resume identically', async () => {
    const make = () => { manualSeed(4); return new Sequential(new Linear(3, 4), new ReLU(), new Linear(4, 2)); };
    const x = tensor([1, 2, 3, -1, 0, 1], [2, 3]);
    const y = tensor([0, 1], [2], { dtype: 'int32' });
    const train = (m: Sequential, o: Adam) => tidy(() => { o.zeroGrad(); crossEntropy(m.forward(x), y).backward(); o.step(); });
    const a = make();
    const oa = new Adam(a.parameters(), { lr: 0.05 });
    for (let i = 0; i < 3; i++) train(a, oa);
    const b = make();
    const ob = new Adam(b.parameters(), { lr: 0.5 });
    const msd = a.stateDict();
    const osd = oa.stateDict();
    b.loadStateDict(msd);
    ob.loadStateDict(osd);
    expect(osd.state[0].step).toBe(3);
    expect(ob.paramGroups[0].lr).toBe(0.05);
    dispose([msd, osd.state]);
    train(a, oa);
    train(b, ob);
    const pa = await Promise.all(a.parameters().map(val));
    const pb = await Promise.all(b.parameters().map(val));
    expect(pb).toEqual(pa);
    const bad = oa.stateDict();
    (bad.state[0] as Record<string, Tensor>).expAvg = tensor([1, 2]);
    expect(() => ob.loadStateDict(bad)).toThrow(ShapeError);
    expect(() => ob.loadStateDict({ state: {}, paramGroups: [] })).toThrow(ArgumentError);
  });

  it('StepLR and CosineAnnealingLR', () => {
    const p = parameter(tensor([1]));
    const o1 = new SGD([p], { lr: 1 });
    const s1 = new StepLR(o1, 2, 0.5);
    const lrs: number[] = [o1.paramGroups[0].lr];
    for (let i = 0; i < 4; i++) { s1.step(); lrs.push(s1.getLastLr()[0]); }
    expect(lrs).toEqual([1, 1, 0.5, 0.5, 0.25]);
    const o2 = new Adam([p], { lr: 0.1 });
    const s2 = new CosineAnnealingLR(o2, 4, 0.01);
    const c: number[] = [o2.paramGroups[0].lr];
    for (let i = 0; i < 4; i++) { s2.step(); c.push(o2.paramGroups[0].lr); }
    c.forEach((v, t) => expect(v).toBeCloseTo(0.01 + 0.09 * (1 + Math.cos((Math.PI * t) / 4)) / 2, 12));
    expect(c[4]).toBeCloseTo(0.01, 12);
    expect(() => new StepLR(o1, 0)).toThrow(ArgumentError);
  });

  it('clipGradNorm rescales to maxNorm and returns the total norm (2, 1, ∞)', async () => {
    const a = parameter(tensor([0, 0]));
    const b = parameter(tensor([0]));
    const setGrads = () => { a.grad?.dispose(); b.grad?.dispose(); a.grad = keep(tensor([3, 4])); b.grad = keep(tensor([12])); };
    setGrads();
    const n = clipGradNorm([a, b], 6.5);
    expect(await n.item()).toBeCloseTo(13, 5);
    const f = 6.5 / (13 + 1e-6);
    expectClose([...(await val(a.grad!)), ...(await val(b.grad!))], [3 * f, 4 * f, 12 * f], { rtol: 1e-6, atol: 0, why: 'f32' }, 'clipped');
    setGrads();
    expect(await clipGradNorm([a, b], 100).item()).toBeCloseTo(13, 5);
    expect(await val(a.grad!)).toEqual([3, 4]);
    setGrads();
    expect(await clipGradNorm([a, b], 100, 1).item()).toBe(19);
    expect(await clipGradNorm([a, b], 6, Infinity).item()).toBe(12);
    expect((await val(b.grad!))[0]).toBeCloseTo(6 * 12 / (12 + 1e-6), 6);
  });
});
