/**
 * GradCON (uncertainty/gradcon.ts) on the CPU reference backend in float64:
 * - the architecture of the official CAE (shapes, parameter names and count);
 * - the training loss J = MSE + β·L_g against an independent computation (∂MSE/∂W_i by central
 *   differences, no autograd), and L_g = 0 on the first step;
 * - ∂J/∂θ, which differentiates through ∂MSE/∂W_i (double backward through the transposed
 *   convs), against central differences of J, on a tiny CAE (widths 2);
 * - the running mean ḡ (sum / count of the total-loss gradients) over several steps;
 * - save / load of ḡ through safetensors;
 * - the batched per-sample score against one single-sample computation per row;
 * - typed errors and no leaks.
 */
import { describe, expect, it } from 'vitest';
import {
  ArgumentError, Conv2d, ConvTranspose2d, GradConCAE, GradConDetector, NotFittedError, ReconstructionErrorDetector, SGD, Sequential, Sigmoid, type Tensor,
  decodeSafetensors, decoderWeights, encodeSafetensors, gradconLoss, gradconScores, gradconStep, gradients, manualSeed, mean, memory, noGrad, safetensorsToTensors,
  setBackend, slice, square, sub, tensor, tidy, withGrad,
} from '../node.js';
import { gradcheck } from './helpers/gradcheck.js';
import { Rng } from './helpers/compare.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

setBackend(cpu);

function images(seed: number, B: number, hw = 28): Tensor {
  const rng = new Rng(seed);
  return tensor(Array.from({ length: B * hw * hw }, () => rng.uniform(0, 1)), [B, 1, hw, hw], { dtype: 'float64', backend: cpu });
}
/**
 * A tiny CAE (widths 2) with fixed weights: W ~ U(−0.3, 0.3), biases ~ U(0, 0.2) from a seeded
 * generator. (PyTorch's default init leaves most ReLUs of such a narrow net inactive, and then
 * whole decoder gradients are exactly 0; with seed 0 here every decoder gradient entry is nonzero.)
 */
function tinyCae(seed = 0): GradConCAE {
  manualSeed(seed);
  const m = new GradConCAE({ channels: [2, 2, 2, 2], dtype: 'float64' });
  const rng = new Rng(seed + 100);
  noGrad(() => {
    for (const [k, p] of m.namedParameters()) {
      p.assign(tensor(Array.from({ length: p.size }, () => (k.endsWith('bias') ? rng.uniform(0, 0.2) : rng.uniform(-0.3, 0.3))), p.shape, { dtype: 'float64', backend: cpu }));
    }
  });
  return m;
}
async function host(t: Tensor): Promise<number[]> {
  return Array.from(await t.data());
}
function setRefGrad(m: GradConCAE, seed: number, count: number): void {
  const rng = new Rng(seed);
  const ws = decoderWeights(m);
  noGrad(() => {
    ws.forEach((w, i) => {
      const s = m.refGrad.sumOf(i);
      s.assign(tensor(Array.from({ length: w.size }, () => rng.uniform(-1, 1) * count), w.shape, { dtype: 'float64', backend: cpu }));
    });
    m.refGrad.count.assign(tensor(count, { dtype: 'float64', backend: cpu }));
  });
  m.refGrad.hostCount = count;
}
const cos = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { d += a[i]! * b[i]!; na += a[i]! ** 2; nb += b[i]! ** 2; }
  return d / Math.max(Math.sqrt(na * nb), 1e-8);
};
const mseOf = (m: GradConCAE, x: Tensor) => tidy(() => noGrad(() => mean(square(sub(m.forward(x), x)))));

describe('GradConCAE architecture (official code)', () => {
  it('28×28 → 15 → 8 → 5 → 3 → 4 → 8 → 14 → 28, PyTorch parameter names and count', async () => {
    manualSeed(0);
    const m = new GradConCAE();
    const x = tensor(new Float32Array(2 * 784).fill(0.5), [2, 1, 28, 28]);
    const sizes: number[] = [];
    tidy(() => noGrad(() => {
      let h = x;
      for (const l of [...m.down.children(), ...m.up.children()]) {
        h = l.forward(h);
        if (l instanceof Conv2d || l instanceof ConvTranspose2d) sizes.push(h.shape[2]!);
      }
      expect(h.shape).toEqual([2, 1, 28, 28]);
    }));
    expect(sizes).toEqual([15, 8, 5, 3, 4, 8, 14, 28]);
    expect(m.parameterCount()).toBe(115392 + 115329);
    const names = m.namedParameters().map(([k]) => k);
    expect(names).toContain('down.6.weight');
    expect(names).toContain('up.6.bias');
    expect(decoderWeights(m).map((w) => w.shape)).toEqual([[64, 64, 4, 4], [64, 32, 4, 4], [32, 32, 4, 4], [32, 1, 4, 4]]);
    expect(new Set(m.namedBuffers().map(([k]) => k))).toEqual(new Set(['refGrad.count', 'refGrad.sum0', 'refGrad.sum1', 'refGrad.sum2', 'refGrad.sum3']));
    x.dispose();
    m.dispose();
  });
});

describe('GradCON loss', () => {
  it('equals MSE − β/4 Σ cos(∂MSE/∂W_i, ḡ_i) with ∂MSE/∂W_i from central differences', async () => {
    const m = tinyCae();
    const x = images(1, 2);
    setRefGrad(m, 7, 3);
    const parts = tidy(() => gradconLoss(m, x));
    const [J, mse, Lg] = [(await host(parts.loss))[0]!, (await host(parts.mse))[0]!, (await host(parts.gradLoss))[0]!];
    parts.loss.dispose(); parts.mse.dispose(); parts.gradLoss.dispose();
    // Independent reference: finite differences of the MSE in each decoder weight.
    const eps = 1e-6;
    let cosSum = 0;
    const ws = decoderWeights(m);
    for (const [i, w] of ws.entries()) {
      const w0 = await host(w);
      const g = new Float64Array(w0.length);
      for (let j = 0; j < w0.length; j++) {
        const at = async (d: number) => {
          noGrad(() => w.assign(tensor(w0.map((v, q) => (q === j ? v + d : v)), w.shape, { dtype: 'float64', backend: cpu })));
          const t = mseOf(m, x);
          const v = (await host(t))[0]!;
          t.dispose();
          return v;
        };
        g[j] = ((await at(eps)) - (await at(-eps))) / (2 * eps);
        noGrad(() => w.assign(tensor(w0, w.shape, { dtype: 'float64', backend: cpu })));
      }
      const ref = await host(tidy(() => m.refGrad.mean(i)));
      cosSum += cos(g, ref);
    }
    const mseRef = (await host(mseOf(m, x)))[0]!;
    expect(mse).toBeCloseTo(mseRef, 14);
    // FD gradients carry ~1e-10 relative error; the cosine inherits it.
    expect(Math.abs(Lg - -cosSum / 4)).toBeLessThan(1e-7);
    expect(Math.abs(J - (mseRef - (0.03 * cosSum) / 4))).toBeLessThan(1e-8);
    expect(Lg).not.toBe(0);
    x.dispose(); m.dispose();
  });

  it('L_g = 0 on the first step (no history), and β scales it', async () => {
    const m = tinyCae();
    const x = images(2, 2);
    const p0 = tidy(() => gradconLoss(m, x));
    expect((await host(p0.gradLoss))[0]).toBe(0);
    expect((await host(p0.loss))[0]).toBe((await host(p0.mse))[0]);
    setRefGrad(m, 9, 1);
    const p1 = tidy(() => gradconLoss(m, x, { beta: 0.5 }));
    const [J, mse, Lg] = [(await host(p1.loss))[0]!, (await host(p1.mse))[0]!, (await host(p1.gradLoss))[0]!];
    expect(J).toBeCloseTo(mse + 0.5 * Lg, 15);
    for (const t of [p0.loss, p0.mse, p0.gradLoss, p1.loss, p1.mse, p1.gradLoss]) t.dispose();
    x.dispose(); m.dispose();
  });

  it('∂J/∂θ through ∂MSE/∂W_i (double backward through the transposed convs) matches central differences', async () => {
    const m = tinyCae(0);
    setRefGrad(m, 11, 2);
    const x = images(4, 2);
    const convs = m.up.children().filter((l): l is ConvTranspose2d => l instanceof ConvTranspose2d);
    const targets: [string, { weight: Tensor }][] = [...convs.map((c, i) => [`up W${i + 1}`, c] as [string, { weight: Tensor }]), ['down W1', m.down.at(0) as Conv2d]];
    for (const [label, layer] of targets) {
      const w0 = layer.weight;
      const init = { data: Array.from(await w0.data()), shape: [...w0.shape], dtype: 'float64' as const };
      await gradcheck((t) => {
        // The finite-difference evaluations upload t without requiresGrad; J itself needs
        // ∂MSE/∂t (its inner gradient), so mark it.
        layer.weight = t.requiresGrad ? t : t.requireGrad();
        try {
          return gradconLoss(m, x, { beta: 0.5 }).loss;
        } finally {
          layer.weight = w0;
        }
      }, [init], { label: `GradCON J w.r.t. ${label}`, rtol: 1e-6, atol: 1e-8 });
    }
    x.dispose(); m.dispose();
  });
});

describe('training step and the running mean ḡ', () => {
  it('ḡ_i = mean of W_i.grad of the TOTAL loss over the steps; the first step uses the MSE gradient', async () => {
    const m = tinyCae(8);
    const opt = new SGD(m.parameters(), { lr: 0.1 });
    const ws = decoderWeights(m);
    const sums = ws.map((w) => new Float64Array(w.size));
    const xs = [images(20, 2), images(21, 2), images(22, 2)];
    for (const [s, x] of xs.entries()) {
      // The MSE-only gradient at the current weights, for comparison.
      const gm = tidy(() => withGrad(() => gradients(mean(square(sub(m.forward(x), x))), ws)));
      const gmH = await Promise.all(gm.map(host));
      gm.forEach((t) => t.dispose());
      const r = gradconStep(m, opt, x);
      const gl = (await host(r.gradLoss))[0]!;
      r.loss.dispose(); r.mse.dispose(); r.gradLoss.dispose();
      for (const [i, w] of ws.entries()) {
        const g = await host(w.grad!);
        if (s === 0) {
          expect(gl).toBe(0);
          expect(g).toEqual(gmH[i]);
        } else {
          expect(gl).not.toBe(0);
          expect(g.some((v, q) => Math.abs(v - gmH[i]![q]!) > 1e-12), `step ${s}: W${i}.grad should include β·∂L_g/∂W`).toBe(true);
        }
        g.forEach((v, q) => { sums[i]![q] += v; });
      }
    }
    expect(m.refGrad.hostCount).toBe(3);
    expect((await host(m.refGrad.count))[0]).toBe(3);
    for (const [i] of ws.entries()) {
      const got = await host(m.refGrad.sumOf(i));
      got.forEach((v, q) => expect(Math.abs(v - sums[i]![q]!)).toBeLessThan(1e-14 * Math.max(1, Math.abs(sums[i]![q]!))));
      const meanT = tidy(() => m.refGrad.mean(i));
      (await host(meanT)).forEach((v, q) => expect(v).toBeCloseTo(sums[i]![q]! / 3, 14));
      meanT.dispose();
    }
    xs.forEach((x) => x.dispose());
    m.dispose();
  });

  it('ḡ survives a safetensors round trip (count, sums, and identical scores)', async () => {
    const m = tinyCae(12);
    const opt = new SGD(m.parameters(), { lr: 0.05 });
    const x = images(30, 3);
    for (let s = 0; s < 2; s++) {
      const r = gradconStep(m, opt, x);
      r.loss.dispose(); r.mse.dispose(); r.gradLoss.dispose();
    }
    const bytes = await encodeSafetensors(m.stateDict());
    const m2 = tinyCae(99);
    expect(m2.refGrad.hostCount).toBe(0);
    const loaded = safetensorsToTensors(decodeSafetensors(bytes), cpu);
    m2.loadStateDict(loaded);
    for (const t of Object.values(loaded)) t.dispose();
    expect(m2.refGrad.hostCount).toBe(2);
    for (let i = 0; i < 4; i++) expect(await host(m2.refGrad.sumOf(i))).toEqual(await host(m.refGrad.sumOf(i)));
    const a = tidy(() => gradconScores(m, x));
    const b = tidy(() => gradconScores(m2, x));
    expect(await host(b.score)).toEqual(await host(a.score));
    for (const t of [a.score, a.mse, a.cos, b.score, b.mse, b.cos]) t.dispose();
    x.dispose(); m.dispose(); m2.dispose();
  });
});

describe('per-sample score', () => {
  it('the batched score equals, row by row, the single-sample computation MSE_b − 0.12·mean_i cos(∂MSE_b/∂W_i, ḡ_i)', async () => {
    const m = tinyCae(14);
    setRefGrad(m, 15, 4);
    const B = 5;
    const x = images(40, B);
    const r = tidy(() => gradconScores(m, x));
    const [score, mse, c] = [await host(r.score), await host(r.mse), await host(r.cos)];
    expect(r.score.shape).toEqual([B]);
    const ws = decoderWeights(m);
    const refs = await Promise.all(ws.map((_, i) => host(tidy(() => m.refGrad.mean(i)))));
    for (let b = 0; b < B; b++) {
      const xb = slice(x, [b, 0, 0, 0], [1, -1, -1, -1]);
      const { l, gs } = tidy(() => withGrad(() => {
        const l = mean(square(sub(m.forward(xb), xb)));
        return { l, gs: gradients(l, ws) };
      }));
      const lb = (await host(l))[0]!;
      let cs = 0;
      for (const [i, g] of gs.entries()) cs += cos(await host(g), refs[i]!);
      cs /= 4;
      expect(mse[b]).toBeCloseTo(lb, 14);
      expect(c[b]).toBeCloseTo(cs, 12);
      expect(score[b]).toBeCloseTo(lb - 0.12 * cs, 12);
      l.dispose(); gs.forEach((g) => g.dispose()); xb.dispose();
    }
    // γ is a parameter.
    const r2 = tidy(() => gradconScores(m, x, { gamma: 1 }));
    (await host(r2.score)).forEach((v, b) => expect(v).toBeCloseTo(mse[b]! - c[b]!, 12));
    for (const t of [r.score, r.mse, r.cos, r2.score, r2.mse, r2.cos]) t.dispose();
    x.dispose(); m.dispose();
  });

  it('detectors: GradCON and plain reconstruction error return [B]; no leaks', async () => {
    const m = tinyCae(16);
    setRefGrad(m, 17, 1);
    const x = images(50, 3);
    const det = new GradConDetector(m);
    const rec = new ReconstructionErrorDetector(m);
    const before = memory().liveTensors;
    const s = det.score(x);
    expect(memory().liveTensors).toBe(before + 1);
    const e = rec.score(x);
    expect(memory().liveTensors).toBe(before + 2);
    const full = tidy(() => gradconScores(m, x));
    expect(await host(s)).toEqual(await host(full.score));
    expect(await host(e)).toEqual(await host(full.mse));
    for (const t of [s, e, full.score, full.mse, full.cos]) t.dispose();
    expect(memory().liveTensors).toBe(before);
    const opt = new SGD(m.parameters(), { lr: 0.01 });
    const r = gradconStep(m, opt, x); // the first step also creates .grad tensors
    r.loss.dispose(); r.mse.dispose(); r.gradLoss.dispose();
    const live = memory().liveTensors;
    const r2 = gradconStep(m, opt, x);
    expect(memory().liveTensors).toBe(live + 3);
    r2.loss.dispose(); r2.mse.dispose(); r2.gradLoss.dispose();
    expect(memory().liveTensors).toBe(live);
    x.dispose(); m.dispose();
  });
});

describe('bad input', () => {
  it('scoring before training throws NotFittedError', () => {
    const m = tinyCae();
    const x = images(60, 1);
    expect(() => gradconScores(m, x)).toThrow(NotFittedError);
    expect(() => new GradConDetector(m).score(x)).toThrow(/no reference gradients yet/);
    m.refGrad.hostCount = null;
    expect(() => gradconScores(m, x)).toThrow(/syncCount/);
    x.dispose(); m.dispose();
  });
  it('a decoder without ConvTranspose2d weights, or with unsupported layers, is rejected', () => {
    const m = tinyCae();
    const bad = { down: m.down, up: new Sequential(new Conv2d(2, 1, 3), new Sigmoid()), refGrad: m.refGrad, forward: (x: Tensor) => x };
    expect(() => decoderWeights(bad)).toThrow(ArgumentError);
    expect(() => new GradConDetector(bad)).toThrow(/no ConvTranspose2d weights/);
    const odd = { down: m.down, up: new Sequential(new ConvTranspose2d(2, 1, 4), new Sigmoid(), new Conv2d(1, 1, 1)), refGrad: m.refGrad, forward: (x: Tensor) => x };
    m.refGrad.hostCount = 1;
    const x = images(61, 1);
    expect(() => gradconScores(odd, x)).toThrow(/decoder has 1 ConvTranspose2d weights but refGrad tracks 4/);
    const odd4 = { ...odd, up: new Sequential(new ConvTranspose2d(2, 2, 4), new ConvTranspose2d(2, 2, 4), new ConvTranspose2d(2, 2, 4), new ConvTranspose2d(2, 1, 4), new Conv2d(1, 1, 1)) };
    expect(() => gradconScores(odd4, x)).toThrow(/decoder layer 4 is a Conv2d/);
    expect(() => gradconLoss(odd, x)).toThrow(/refGrad tracks 4/);
    expect(() => gradconLoss(m, x, { beta: -1 })).toThrow(/beta/);
    x.dispose(); m.dispose();
  });
});

describe('WebGPU', () => {
  it('a training step (double backward) and the batched scores agree with the CPU reference (float32, paper-size CAE)', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    manualSeed(21);
    const mc = new GradConCAE();
    const mg = new GradConCAE();
    await mg.to(gpu);
    const onGpu: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(mc.stateDict())) onGpu[k] = await t.to(gpu);
    mg.loadStateDict(onGpu);
    for (const t of Object.values(onGpu)) t.dispose();
    expect(mg.refGrad.hostCount, 'count loaded on a device is unknown on the host').toBe(null);
    expect(await mg.refGrad.syncCount()).toBe(0);
    const rng = new Rng(70);
    const data = Array.from({ length: 3 * 784 }, () => rng.uniform(0, 1));
    const xc = tensor(data, [3, 1, 28, 28], { backend: cpu });
    const xg = tensor(data, [3, 1, 28, 28], { backend: gpu });
    const oc = new SGD(mc.parameters(), { lr: 0.5 });
    const og = new SGD(mg.parameters(), { lr: 0.5 });
    const losses: number[][] = [[], []];
    for (let s = 0; s < 2; s++) {
      for (const [j, [m, o, x]] of ([[mc, oc, xc], [mg, og, xg]] as const).entries()) {
        const r = gradconStep(m, o, x);
        losses[j]!.push((await host(r.loss))[0]!, (await host(r.gradLoss))[0]!);
        r.loss.dispose(); r.mse.dispose(); r.gradLoss.dispose();
      }
    }
    losses[1]!.forEach((v, i) => expect(Math.abs(v - losses[0]![i]!), `loss/L_g #${i}`).toBeLessThan(1e-4 + 1e-4 * Math.abs(losses[0]![i]!)));
    const rc = tidy(() => gradconScores(mc, xc));
    const rg = tidy(() => gradconScores(mg, xg));
    const [sc, sg] = [await host(rc.score), await host(rg.score)];
    // float32 on two backends: summation orders differ; scores are O(0.1), cosines O(1).
    sg.forEach((v, b) => expect(Math.abs(v - sc[b]!), `score ${b}`).toBeLessThan(2e-4));
    for (const t of [rc.score, rc.mse, rc.cos, rg.score, rg.mse, rg.cos, xc, xg]) t.dispose();
    mc.dispose(); mg.dispose();
  });
});
