/**
 * explain/ on tiny fixed-weight networks with hand-derived float64 expectations (Captum style):
 * the expected values are computed below from each method's formula with plain JS arithmetic on
 * the explicit weights (no library ops), then compared with the library on the CPU reference in
 * float64. Also: batched VOICE = the per-input, per-Q loop; Integrated Gradients completeness;
 * SmoothGrad = the mean of the noisy gradients; guided backprop leaves ordinary gradients alone;
 * deletion / insertion curves; typed errors; no leaks.
 */
import { describe, expect, it } from 'vitest';
import {
  ArgumentError, Conv2d, cast, Flatten, IndexError, Linear, MaxPool2d, ReLU, Sequential, ShapeError, Tanh, type Tensor, add,
  contrastCam, counterfactualCam, crossEntropy, deletionCurve, dispose, fromHost, gradCam, insertionCurve, intTensor,
  manualSeed, memory, mul, normal, saliency, setBackend, slice, tidy, voice,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { settleGarbage } from './helpers/settle-garbage.js';

setBackend(cpu);

const f64 = (data: number[], shape: number[]) => fromHost(data, shape, 'float64', cpu);

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, label: string): void {
  expect(got.length, label).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i])))) {
      throw new Error(`${label}: element ${i}: got ${got[i]}, want ${want[i]} (tol ${tol})`);
    }
  }
}

// ------------------------------------------------------------------------------ the tiny CNN
// x [B,1,3,3] → Conv2d(1,2,2) → ReLU (the target layer '1', output [B,2,2,2]) → Flatten → Linear(8,3)
const CW = [[[1, -0.5], [0.25, 0.75]], [[-0.6, 0.9], [0.4, -0.2]]]; // [2][2][2]
const CB = [0.1, 0.05];
const LW = [
  [0.5, -0.3, 0.8, 0.2, -0.4, 0.6, 0.1, -0.7],
  [-0.2, 0.9, -0.5, 0.3, 0.7, -0.1, 0.4, 0.2],
  [0.3, 0.1, 0.2, -0.6, 0.5, 0.4, -0.3, 0.8],
];
const LB = [0.05, -0.1, 0.2];
const X = [
  [[0.2, 0.9, 0.4], [0.7, 0.1, 0.6], [0.3, 0.8, 0.5]],
  [[0.9, 0.2, 0.1], [0.4, 0.8, 0.3], [0.6, 0.5, 0.7]],
];

async function tinyCnn(): Promise<Sequential> {
  const conv = new Conv2d(1, 2, 2);
  const lin = new Linear(8, 3);
  const net = new Sequential(conv, new ReLU(), new Flatten(), lin);
  await net.to('float64');
  net.loadStateDict({
    '0.weight': f64(CW.flat(2), [2, 1, 2, 2]), '0.bias': f64(CB, [2]), '3.weight': f64(LW.flat(), [3, 8]), '3.bias': f64(LB, [3]),
  });
  return net.eval();
}
const xTensor = () => f64(X.flat(2), [2, 1, 3, 3]);

/** Hand forward: activations A[c][i][j] and logits z[k]. */
function handForward(x: number[][]): { A: number[][][]; z: number[] } {
  const A = [0, 1].map((c) => [0, 1].map((i) => [0, 1].map((j) => {
    let s = CB[c];
    for (let u = 0; u < 2; u++) for (let v = 0; v < 2; v++) s += CW[c][u][v] * x[i + u][j + v];
    return Math.max(s, 0);
  })));
  const a = A.flat(2);
  const z = LW.map((row, k) => LB[k] + row.reduce((s, w, n) => s + w * a[n], 0));
  return { A, z };
}
const softmaxJs = (z: number[]) => {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((p, q) => p + q, 0);
  return e.map((v) => v / s);
};
const argmaxJs = (z: number[]) => z.indexOf(Math.max(...z));
/** CAM from ∂J/∂A[c][i][j] = dA[c·4 + i·2 + j] (the linear head makes it constant in A). */
function handCam(A: number[][][], dA: number[], negate = false): number[] {
  const alpha = [0, 1].map((c) => (negate ? -1 : 1) * (dA[4 * c] + dA[4 * c + 1] + dA[4 * c + 2] + dA[4 * c + 3]) / 4);
  const out: number[] = [];
  for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) out.push(Math.max(alpha[0] * A[0][i][j] + alpha[1] * A[1][i][j], 0));
  return out;
}
/** Bilinear 2×2 → 3×3, half-pixel centres; the scale in/out rounded to float32 as dubito's op does. */
function handUpsample(m: number[]): number[] {
  const scale = Math.fround(2 / 3);
  const src = (o: number) => Math.max((o + 0.5) * scale - 0.5, 0);
  const out: number[] = [];
  for (let oy = 0; oy < 3; oy++) {
    for (let ox = 0; ox < 3; ox++) {
      const sy = src(oy), sx = src(ox);
      const y0 = Math.floor(sy), x0 = Math.floor(sx);
      const y1 = Math.min(y0 + 1, 1), x1 = Math.min(x0 + 1, 1);
      const ly = sy - y0, lx = sx - x0;
      out.push((1 - ly) * ((1 - lx) * m[y0 * 2 + x0] + lx * m[y0 * 2 + x1]) + ly * ((1 - lx) * m[y1 * 2 + x0] + lx * m[y1 * 2 + x1]));
    }
  }
  return out;
}
const handNormalize = (m: number[]) => {
  const lo = Math.min(...m), hi = Math.max(...m);
  return m.map((v) => (v - lo) / (hi - lo + 1e-7));
};

describe('Grad-CAM family on a tiny fixed-weight CNN (hand-derived, CPU float64)', () => {
  it('Grad-CAM: α = mean of the logit weights over each channel, default target = argmax', async () => {
    const net = await tinyCnn();
    const x = xTensor();
    const raw = await gradCam(net, x, { layer: '1', upsample: false, normalize: false });
    const full = await gradCam(net, x, { layer: net.at(1) });
    const wantRaw: number[] = [];
    const wantFull: number[] = [];
    for (const img of X) {
      const { A, z } = handForward(img);
      const m = handCam(A, LW[argmaxJs(z)]);
      wantRaw.push(...m);
      wantFull.push(...handNormalize(handUpsample(m)));
    }
    expect(raw.shape).toEqual([2, 2, 2]);
    expect(full.shape).toEqual([2, 3, 3]);
    expectClose(await raw.data(), wantRaw, 1e-14, 'raw Grad-CAM');
    expectClose(await full.data(), wantFull, 1e-12, 'upsampled, normalised Grad-CAM');
    dispose([raw, full, x]);
    net.dispose();
  });

  it('Grad-CAM and CounterfactualCAM for explicit targets (one per input)', async () => {
    const net = await tinyCnn();
    const x = xTensor();
    for (const target of [[2, 1], [0, 0]]) {
      const g = await gradCam(net, x, { layer: '1', target, upsample: false, normalize: false });
      const c = await counterfactualCam(net, x, { layer: '1', target, upsample: false, normalize: false });
      const wantG = X.flatMap((img, b) => handCam(handForward(img).A, LW[target[b]]));
      const wantC = X.flatMap((img, b) => handCam(handForward(img).A, LW[target[b]], true));
      expectClose(await g.data(), wantG, 1e-14, `Grad-CAM target ${target}`);
      expectClose(await c.data(), wantC, 1e-14, `CounterfactualCAM target ${target}`);
      dispose([g, c]);
    }
    x.dispose();
    net.dispose();
  });

  it('ContrastCAM: ∂CE(z, Q)/∂A = Σ_k (p_k − [k = Q]) W_k; default Q = runner-up', async () => {
    const net = await tinyCnn();
    const x = xTensor();
    const preds = X.map((img) => argmaxJs(handForward(img).z));
    const runner = X.map((img) => {
      const z = handForward(img).z;
      const order = [0, 1, 2].sort((a, b) => z[b] - z[a]);
      return order[1];
    });
    const explicit = preds.map((p) => (p + 2) % 3);
    for (const [q, label] of [[undefined, 'runner-up'], [explicit, 'explicit']] as const) {
      const got = await contrastCam(net, x, { layer: '1', contrast: q, upsample: false, normalize: false });
      const want = X.flatMap((img, b) => {
        const { A, z } = handForward(img);
        const p = softmaxJs(z);
        const Q = (q ?? runner)[b];
        const dA = LW[0].map((_, n) => p.reduce((s, pk, k) => s + (pk - (k === Q ? 1 : 0)) * LW[k][n], 0));
        return handCam(A, dA);
      });
      expectClose(await got.data(), want, 1e-13, `ContrastCAM (${label})`);
      got.dispose();
    }
    x.dispose();
    net.dispose();
  });

  it('a flat map normalises to zeros (no NaN)', async () => {
    const net = await tinyCnn();
    // An all-zero input leaves only the conv biases: A is constant per channel, so the map is flat.
    const x = f64(new Array(9).fill(0), [1, 1, 3, 3]);
    const m = await gradCam(net, x, { layer: '1', upsample: false });
    expect(Array.from(await m.data())).toEqual([0, 0, 0, 0]);
    dispose([m, x]);
    net.dispose();
  });
});

// ------------------------------------------------------------------------------ VOICE
async function smallLeNet(seed: number, dtype: 'float32' | 'float64'): Promise<Sequential> {
  manualSeed(seed);
  const net = new Sequential(
    new Conv2d(1, 4, 3, { padding: 1 }), new ReLU(), new MaxPool2d(2), new Conv2d(4, 6, 3), new ReLU(), new Flatten(),
    new Linear(6 * 4 * 4, 16), new ReLU(), new Linear(16, 4),
  );
  if (dtype === 'float64') await net.to('float64');
  return net.eval();
}

describe('VOICE', () => {
  it('batched over B·K rows equals the per-input, per-Q ContrastCAM loop (CPU float64)', async () => {
    const net = await smallLeNet(3, 'float64');
    manualSeed(4);
    const x = tidy(() => cast(normal([3, 1, 12, 12]), 'float64'));
    await settleGarbage();
    const before = memory().liveTensors;
    const v = await voice(net, x, { layer: '4' });
    const K = 4;
    expect(v.maps.shape).toEqual([3, K - 1, 12, 12]);
    expect(v.uncertainty.shape).toEqual([3, 12, 12]);
    const maps = await v.maps.data();
    const classes = await v.contrastClasses.data();
    const preds = await v.prediction.data();
    const unc = await v.uncertainty.data();
    const expl = await v.explanation.data();
    const snr = await v.snr.data();
    const iou = await v.iou.data();
    for (let b = 0; b < 3; b++) {
      const xb = slice(x, [b, 0, 0, 0], [1, 1, 12, 12]);
      const g = await gradCam(net, xb, { layer: '4' });
      expectClose(expl.subarray(b * 144, (b + 1) * 144), await g.data(), 1e-12, `explanation ${b}`);
      const loopMaps: Float64Array[] = [];
      for (let j = 0; j < K - 1; j++) {
        const q = classes[b * (K - 1) + j];
        expect(q).not.toBe(preds[b]);
        const c = await contrastCam(net, xb, { layer: '4', contrast: [q] });
        const d = (await c.data()) as Float64Array;
        loopMaps.push(d);
        expectClose(maps.subarray((b * (K - 1) + j) * 144, (b * (K - 1) + j + 1) * 144), d, 1e-12, `map b=${b} Q=${q}`);
        c.dispose();
      }
      // Variance across Q (population), normalised; SNR; IoU — by hand from the loop's maps.
      const varMap = Array.from({ length: 144 }, (_, p) => {
        const vals = loopMaps.map((m) => m[p]);
        const mu = vals.reduce((s, t) => s + t, 0) / vals.length;
        return vals.reduce((s, t) => s + (t - mu) ** 2, 0) / vals.length;
      });
      const u = handNormalize(varMap);
      expectClose(unc.subarray(b * 144, (b + 1) * 144), u, 1e-9, `uncertainty ${b}`);
      const mu = u.reduce((s, t) => s + t, 0) / 144;
      const sd = Math.sqrt(u.reduce((s, t) => s + (t - mu) ** 2, 0) / 144);
      expectClose([snr[b]], [mu / sd], 1e-9, `snr ${b}`);
      const gd = await g.data();
      let inter = 0, union = 0;
      for (let p = 0; p < 144; p++) {
        const a = u[p] > 0.1, e = gd[p] > 0.1;
        if (a && e) inter++;
        if (a || e) union++;
      }
      expect(iou[b]).toBeCloseTo(union ? inter / union : 0, 12);
      dispose([xb, g]);
    }
    dispose(Object.values(v));
    expect(memory().liveTensors - before).toBe(0);
    x.dispose();
    net.dispose();
  });

  // float32 on WebGPU vs the float64 CPU reference: maps in [0, 1] after normalisation; the
  // gradients pass through 2 convs + 2 linears in f32 (~1e-6 relative), the normalisation
  // divides by each map's range; 1e-3 absolute is far below a wrong formula (O(0.1) errors).
  it('batched VOICE on WebGPU matches the CPU float64 result', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const net64 = await smallLeNet(5, 'float64');
    const net32 = await smallLeNet(5, 'float32');
    await net32.to(gpu);
    manualSeed(6);
    const xh = await tidy(() => normal([5, 1, 12, 12])).data();
    const x64 = fromHost(xh, [5, 1, 12, 12], 'float64', cpu);
    const x32 = fromHost(xh, [5, 1, 12, 12], 'float32', gpu);
    const a = await voice(net64, x64, { layer: '4' });
    const b = await voice(net32, x32, { layer: '4' });
    expect(Array.from(await b.prediction.data())).toEqual(Array.from(await a.prediction.data()));
    expect(Array.from(await b.contrastClasses.data())).toEqual(Array.from(await a.contrastClasses.data()));
    expectClose(await b.maps.data(), await a.maps.data(), 1e-3, 'maps');
    expectClose(await b.uncertainty.data(), await a.uncertainty.data(), 2e-3, 'uncertainty');
    expectClose(await b.snr.data(), await a.snr.data(), 2e-3, 'snr');
    dispose([...Object.values(a), ...Object.values(b), x64, x32]);
    net64.dispose();
    net32.dispose();
  });
});

// ------------------------------------------------------------------------------ saliency
describe('saliency', () => {
  // A linear model: every method has a closed form. z = W·vec(x) + b on 2×2 single-channel images.
  const W = [[0.5, -1, 2, 0.25], [-0.5, 1.5, 0.75, -2]];
  async function linearNet(): Promise<Sequential> {
    const net = new Sequential(new Flatten(), new Linear(4, 2));
    await net.to('float64');
    net.loadStateDict({ '1.weight': f64(W.flat(), [2, 4]), '1.bias': f64([0.1, -0.3], [2]) });
    return net.eval();
  }
  const XS = [[1, 2, 0.5, -1], [0.25, -0.5, 3, 1]];

  it('on a linear model: gradient = W_t, gradient × input = integrated gradients (baseline 0) = x ⊙ W_t, SmoothGrad = W_t', async () => {
    const net = await linearNet();
    const x = f64(XS.flat(), [2, 1, 2, 2]);
    const target = [1, 0];
    const wantG = target.flatMap((t) => W[t]);
    const wantGxI = XS.flatMap((xs, b) => xs.map((v, i) => v * W[target[b]][i]));
    const g = await saliency(net, x, { method: 'gradient', target });
    const gi = await saliency(net, x, { method: 'gradientXInput', target });
    const ig = await saliency(net, x, { method: 'integratedGradients', target, steps: 3, rule: 'left' });
    const sg = await saliency(net, x, { method: 'smoothGrad', target, samples: 7, seed: 1 });
    const ab = await saliency(net, x, { method: 'gradient', target, abs: true });
    expect(g.shape).toEqual([2, 1, 2, 2]);
    expectClose(await g.data(), wantG, 1e-15, 'gradient');
    expectClose(await gi.data(), wantGxI, 1e-15, 'gradient × input');
    expectClose(await ig.data(), wantGxI, 1e-14, 'integrated gradients');
    expectClose(await sg.data(), wantG, 1e-14, 'SmoothGrad');
    expectClose(await ab.data(), wantG.map(Math.abs), 1e-15, '|gradient|');
    dispose([g, gi, ig, sg, ab, x]);
    net.dispose();
  });

  it('guided backprop on Linear → ReLU → Linear: dx = W1ᵀ (1[h > 0] · max(W2_t … , 0)) applied layer by layer', async () => {
    const W1 = [[1, -1, 0.5, 0.2], [-0.3, 0.8, 1, -0.6], [0.7, 0.4, -0.9, 0.3]];
    const b1 = [0.1, -0.2, 0.05];
    const W2 = [[1.5, -2, 0.5], [-1, 0.5, 2]];
    const net = new Sequential(new Flatten(), new Linear(4, 3), new ReLU(), new Linear(3, 2));
    await net.to('float64');
    net.loadStateDict({ '1.weight': f64(W1.flat(), [3, 4]), '1.bias': f64(b1, [3]), '3.weight': f64(W2.flat(), [2, 3]), '3.bias': f64([0, 0], [2]) });
    net.eval();
    const x = f64(XS.flat(), [2, 1, 2, 2]);
    const target = [0, 1];
    const guided = await saliency(net, x, { method: 'guidedBackprop', target });
    const vanilla = await saliency(net, x, { method: 'gradient', target });
    const want = (guide: boolean) => XS.flatMap((xs, b) => {
      const h = W1.map((row, j) => row.reduce((s, w, i) => s + w * xs[i], b1[j]));
      const dh = W2[target[b]].map((w, j) => (h[j] > 0 ? (guide ? Math.max(w, 0) : w) : 0));
      return xs.map((_, i) => dh.reduce((s, d, j) => s + d * W1[j][i], 0));
    });
    expectClose(await guided.data(), want(true), 1e-15, 'guided');
    expectClose(await vanilla.data(), want(false), 1e-15, 'vanilla');
    expect(Array.from(await guided.data())).not.toEqual(Array.from(await vanilla.data()));
    dispose([guided, vanilla, x]);
    net.dispose();
  });

  it('guided backprop leaves the model and its ordinary gradients unchanged afterwards', async () => {
    const net = await smallLeNet(7, 'float64');
    manualSeed(8);
    const x = tidy(() => cast(normal([3, 1, 12, 12]), 'float64'));
    const y = intTensor([0, 3, 1]);
    const paramGrads = async () => {
      net.zeroGrad();
      tidy(() => crossEntropy(net.forward(x), y).backward());
      const out = await Promise.all(net.parameters().map((p) => p.grad!.data()));
      net.zeroGrad();
      return out.map((a) => Array.from(a));
    };
    const before = await paramGrads();
    const inputBefore = await saliency(net, x, { method: 'gradient' });
    const guided = await saliency(net, x, { method: 'guidedBackprop' });
    expect(net.modules().some((m) => m.hasHooks())).toBe(false);
    expect(await paramGrads()).toEqual(before);
    const inputAfter = await saliency(net, x, { method: 'gradient' });
    expect(Array.from(await inputAfter.data())).toEqual(Array.from(await inputBefore.data()));
    expect(Array.from(await guided.data())).not.toEqual(Array.from(await inputBefore.data()));
    dispose([inputBefore, inputAfter, guided, x, y]);
    net.dispose();
  });

  it('Integrated Gradients completeness: Σ attributions → s(x) − s(x′) at the Riemann rate', async () => {
    // A smooth network (tanh), so the midpoint rule's error falls as 1/m².
    manualSeed(9);
    const net = new Sequential(new Conv2d(1, 3, 3), new Tanh(), new Flatten(), new Linear(3 * 4 * 4, 3));
    await net.to('float64');
    net.eval();
    const x = tidy(() => cast(normal([2, 1, 6, 6]), 'float64'));
    const baseline = 0.25;
    const target = [2, 0];
    const delta = tidy(() => {
      const z1 = net.forward(x);
      const z0 = net.forward(add(mul(x, 0), baseline));
      return z1.sub(z0);
    });
    const d = await delta.data();
    const want = target.map((t, b) => d[b * 3 + t]);
    const errs: number[] = [];
    for (const steps of [4, 16, 64]) {
      const ig = await saliency(net, x, { method: 'integratedGradients', target, steps, baseline });
      const a = await ig.data();
      const sums = [0, 1].map((b) => Array.from(a.subarray(b * 36, (b + 1) * 36)).reduce((s, v) => s + v, 0));
      errs.push(Math.max(...sums.map((s, b) => Math.abs(s - want[b]))));
      ig.dispose();
    }
    // Midpoint rule: the error shrinks ~16× per 4× steps; allow 8×.
    expect(errs[1]).toBeLessThan(errs[0] / 8);
    expect(errs[2]).toBeLessThan(errs[1] / 8);
    expect(errs[2]).toBeLessThan(1e-3 * Math.max(...want.map(Math.abs)));
    for (const rule of ['left', 'right', 'trapezoid'] as const) {
      const ig = await saliency(net, x, { method: 'integratedGradients', target, steps: 256, baseline, rule });
      const a = await ig.data();
      const sums = [0, 1].map((b) => Array.from(a.subarray(b * 36, (b + 1) * 36)).reduce((s, v) => s + v, 0));
      expectClose(sums, want, 2e-2, `rule ${rule}`);
      ig.dispose();
    }
    dispose([delta, x]);
    net.dispose();
  });

  it('SmoothGrad = the mean of the vanilla gradients at the same noisy inputs (one batched pass)', async () => {
    const net = await smallLeNet(10, 'float64');
    manualSeed(11);
    const x = tidy(() => cast(normal([2, 1, 12, 12]), 'float64'));
    const n = 5;
    const std = 0.3;
    await settleGarbage();
    const before = memory().liveTensors;
    const sg = await saliency(net, x, { method: 'smoothGrad', samples: n, noiseStd: std, seed: 42 });
    expect(memory().liveTensors - before).toBe(1);
    const pred = tidy(() => net.forward(x).argmax(-1));
    const target = Array.from(await pred.data());
    // The same noise: normal([n·B, ...], seed 42), copy k of input b at row k·B + b.
    const noisy = tidy(() => {
      const eps = cast(normal([n * 2, 1, 12, 12], { seed: 42 }), 'float64');
      const rows = fromHost(Array.from({ length: n }, () => 0).flatMap(() => [0, 1]), [n * 2], 'int32', cpu);
      return add(x.indexSelect(0, rows), mul(eps, std));
    });
    const g = await saliency(net, noisy, { method: 'gradient', target: Array.from({ length: n * 2 }, (_, r) => target[r % 2]) });
    const gd = await g.data();
    const want = Array.from({ length: 2 * 144 }, (_, i) => {
      let s = 0;
      for (let k = 0; k < n; k++) s += gd[k * 288 + i];
      return s / n;
    });
    expectClose(await sg.data(), want, 1e-12, 'SmoothGrad');
    dispose([sg, pred, noisy, g, x]);
    net.dispose();
  });
});

// ------------------------------------------------------------------------------ masking metrics
describe('deletion and insertion curves', () => {
  it('follow the target probability as pixels are removed / inserted in map order (hand-derived)', async () => {
    const W = [[2, -1, 0.5, 1], [-1, 1, 1, -0.5]];
    const net = new Sequential(new Flatten(), new Linear(4, 2));
    await net.to('float64');
    net.loadStateDict({ '1.weight': f64(W.flat(), [2, 4]), '1.bias': f64([0, 0.2], [2]) });
    net.eval();
    const xs = [[0.9, 0.3, 0.6, 0.8], [0.2, 0.7, 0.4, 0.1]];
    const maps = [[0.1, 0.9, 0.5, 0.5], [1, 0, 0.3, 0.6]]; // ties (0.5, 0.5) keep pixel order
    const x = f64(xs.flat(), [2, 1, 2, 2]);
    const m = f64(maps.flat(), [2, 2, 2]);
    await settleGarbage();
    const before = memory().liveTensors;
    const del = await deletionCurve(net, x, m, { steps: 4 });
    const ins = await insertionCurve(net, x, m, { steps: 4, baseline: 0.5 });
    expect(memory().liveTensors - before).toBe(4);
    expect(del.fractions).toEqual([0, 0.25, 0.5, 0.75, 1]);
    const order = maps.map((mm) => [0, 1, 2, 3].sort((a, b) => mm[b] - mm[a] || a - b));
    const prob = (v: number[], t: number) => softmaxJs(W.map((row, k) => row.reduce((s, w, i) => s + w * v[i], k === 1 ? 0.2 : 0)))[t];
    const targets = xs.map((v) => argmaxJs(W.map((row, k) => row.reduce((s, w, i) => s + w * v[i], k === 1 ? 0.2 : 0))));
    const wantDel: number[] = [];
    const wantIns: number[] = [];
    xs.forEach((v, b) => {
      for (let k = 0; k <= 4; k++) {
        const top = new Set(order[b].slice(0, k));
        wantDel.push(prob(v.map((p, i) => (top.has(i) ? 0 : p)), targets[b]));
        wantIns.push(prob(v.map((p, i) => (top.has(i) ? p : 0.5)), targets[b]));
      }
    });
    expectClose(await del.curve.data(), wantDel, 1e-14, 'deletion curve');
    expectClose(await ins.curve.data(), wantIns, 1e-14, 'insertion curve');
    const auc = (c: number[]) => (c[0] / 2 + c[1] + c[2] + c[3] + c[4] / 2) / 4;
    expectClose(await del.auc.data(), [auc(wantDel.slice(0, 5)), auc(wantDel.slice(5))], 1e-14, 'deletion AUC');
    expectClose(await ins.auc.data(), [auc(wantIns.slice(0, 5)), auc(wantIns.slice(5))], 1e-14, 'insertion AUC');
    const logit = await deletionCurve(net, x, m, { steps: 4, score: 'logit', target: [1, 1] });
    expect((await logit.curve.data())[0]).toBeCloseTo(W[1].reduce((s, w, i) => s + w * xs[0][i], 0.2), 12);
    dispose([del.curve, del.auc, ins.curve, ins.auc, logit.curve, logit.auc, x, m]);
    net.dispose();
  });
});

// ------------------------------------------------------------------------------ errors
describe('typed errors', () => {
  it('name the method, the layer and what was expected', async () => {
    const net = await tinyCnn();
    const x = xTensor();
    await expect(gradCam(net, x, { layer: 'features.9' })).rejects.toThrow(ArgumentError);
    await expect(gradCam(net, x, { layer: 'features.9' })).rejects.toThrow(/gradCam: layer 'features.9' is not a module of Sequential \(its modules: '', '0', '1', '2', '3'\)/);
    await expect(gradCam(net, x, { layer: new ReLU() })).rejects.toThrow(/not a submodule/);
    await expect(gradCam(net, x, { layer: '3' })).rejects.toThrow(ShapeError);
    await expect(gradCam(net, x, { layer: '3' })).rejects.toThrow(/layer '3' returned \[2,3\], expected \[B, C, H, W\]/);
    await expect(gradCam(net, x, { layer: '1', target: 3 })).rejects.toThrow(IndexError);
    await expect(gradCam(net, x, { layer: '1', target: [0, -1] })).rejects.toThrow(/target -1 is outside \[0, 3\)/);
    await expect(gradCam(net, x, { layer: '1', target: [0, 1, 2] })).rejects.toThrow(/3 targets for a batch of B = 2/);
    await expect(voice(net, x, { layer: '2' })).rejects.toThrow(ShapeError);
    const p = X.map((img) => argmaxJs(handForward(img).z));
    await expect(contrastCam(net, x, { layer: '1', contrast: p })).rejects.toThrow(ArgumentError);
    await expect(contrastCam(net, x, { layer: '1', contrast: p })).rejects.toThrow(/Q = \d equals the prediction P for input 0/);
    await expect(contrastCam(net, x, { layer: '1', contrast: [(p[0] + 1) % 3, 5] })).rejects.toThrow(IndexError);
    const lin = new Sequential(new Flatten(), new Linear(9, 3));
    await expect(saliency(lin, cast(x, 'float32'), { method: 'guidedBackprop' })).rejects.toThrow(/no ReLU modules/);
    await expect(deletionCurve(net, x, f64([1, 2, 3, 4], [1, 2, 2]))).rejects.toThrow(/maps must be \[B, H, W\] = \[2, 3, 3\]/);
    expect(net.modules().some((m) => m.hasHooks()), 'hooks are removed after a failure').toBe(false);
    x.dispose();
    net.dispose();
  });
});
