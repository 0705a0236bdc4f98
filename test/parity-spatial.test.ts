/**
 * PyTorch parity of the spatial ops: unbatched [C, H, W] inputs for conv2d / convTranspose2d /
 * pooling / upsampling (functions and layers), pooling `ceilMode` and `countIncludePad`,
 * reflect / replicate / circular padding, and `interpolate` (nearest, nearest-exact, linear,
 * bilinear; size or scaleFactor). Hand-computed values and independent re-implementations of
 * PyTorch's formulas, float64 finite-difference gradients on the CPU, WebGPU against the CPU.
 */
import { describe, expect, it } from 'vitest';
import {
  type Tensor, ArgumentError, AdaptiveAvgPool2d, AvgPool2d, Conv2d, ConvTranspose2d, MaxPool2d, ReLU, Sequential, ShapeError, Upsample,
  adaptiveAvgPool2d, avgPool2d, conv2d, convTranspose2d, globalAvgPool2d, grads, interpolate, maxPool2d, maxPool2dWithIndices, memory, pad, setBackend, tensor, tidy,
  upsampleBilinear2d,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { Rng, TOL, compareBackends, expectClose, host, rand } from './helpers/compare.js';
import { gradcheck } from './helpers/gradcheck.js';

setBackend(cpu);
const f64 = (data: number[], shape: number[]) => tensor(data, shape, { dtype: 'float64' });
const val = async (t: Tensor) => Array.from(await t.data());
const iota = (n: number) => Array.from({ length: n }, (_, i) => i);
/**
 * Bilinear resampling on WebGPU computes source coordinates scale·o in f32 (the CPU in double):
 * for o up to ~100 that is a position error of ~100·6e-8 ≈ 6e-6, times the slope of the data
 * (≲ 2 per pixel here), on top of the f32 lerp itself.
 */
const LERP: { rtol: number; atol: number; why: string } = { rtol: 1e-5, atol: 2e-5, why: 'f32 source coordinates (scale·o) on the GPU: ~6e-6 position error times the slope' };
/** A window sum of k f32 terms then a division (values in [−2, 2]). */
const AVG = (k: number) => ({ ...TOL.reduction(k, 2), why: `f32 window sum of ${k} terms (values in [-2, 2]) and a division` });

// ------------------------------------------------------------------ PyTorch reference loops
/** PyTorch pooling_output_shape. */
function outLen(n: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  let o = Math.floor((n + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0)) / s) + 1;
  if (ceil && (o - 1) * s >= n + p) o--;
  return o;
}
/** PyTorch avg_pool2d (CPU kernel) on one H×W plane. */
function refAvg(x: number[], H: number, W: number, k: number, s: number, p: number, ceil: boolean, includePad: boolean): number[] {
  const OH = outLen(H, k, s, p, 1, ceil);
  const OW = outLen(W, k, s, p, 1, ceil);
  const out: number[] = [];
  for (let oh = 0; oh < OH; oh++) {
    for (let ow = 0; ow < OW; ow++) {
      let hs = oh * s - p;
      let ws = ow * s - p;
      let he = Math.min(hs + k, H + p);
      let we = Math.min(ws + k, W + p);
      const poolSize = (he - hs) * (we - ws);
      hs = Math.max(hs, 0);
      ws = Math.max(ws, 0);
      he = Math.min(he, H);
      we = Math.min(we, W);
      let acc = 0;
      for (let h = hs; h < he; h++) for (let w = ws; w < we; w++) acc += x[h * W + w];
      out.push(acc / (includePad ? poolSize : (he - hs) * (we - ws)));
    }
  }
  return out;
}
/** PyTorch max_pool2d on one plane (padding is −∞). */
function refMax(x: number[], H: number, W: number, k: number, s: number, p: number, d: number, ceil: boolean): number[] {
  const OH = outLen(H, k, s, p, d, ceil);
  const OW = outLen(W, k, s, p, d, ceil);
  const out: number[] = [];
  for (let oh = 0; oh < OH; oh++) {
    for (let ow = 0; ow < OW; ow++) {
      let m = -Infinity;
      for (let a = 0; a < k; a++) {
        for (let b = 0; b < k; b++) {
          const h = oh * s - p + a * d;
          const w = ow * s - p + b * d;
          if (h >= 0 && h < H && w >= 0 && w < W) m = Math.max(m, x[h * W + w]);
        }
      }
      out.push(m);
    }
  }
  return out;
}

describe('unbatched [C, H, W] inputs', () => {
  const rng = new Rng(21);
  const X = rand(rng, [2, 5, 6], 'float64').data;
  const Wc = rand(rng, [3, 2, 3, 3], 'float64').data;
  const Bc = [0.1, -0.2, 0.3];

  it('functions give the batch-of-one result without the batch dim', async () => {
    const x = f64(X, [2, 5, 6]);
    const xb = f64(X, [1, 2, 5, 6]);
    const w = f64(Wc, [3, 2, 3, 3]);
    const b = f64(Bc, [3]);
    const cases: [string, (t: Tensor) => Tensor][] = [
      ['conv2d', (t) => conv2d(t, w, b, { padding: 1, stride: [1, 2] })],
      ['convTranspose2d', (t) => convTranspose2d(t, f64(Wc.slice(0, 36), [2, 2, 3, 3]), null, { stride: 2 })],
      ['maxPool2d', (t) => maxPool2d(t, { kernelSize: 2, ceilMode: true })],
      ['avgPool2d', (t) => avgPool2d(t, { kernelSize: 3, stride: 2, padding: 1 })],
      ['adaptiveAvgPool2d', (t) => adaptiveAvgPool2d(t, [2, 4])],
      ['upsampleBilinear2d', (t) => upsampleBilinear2d(t, [7, 3])],
      ['globalAvgPool2d', (t) => globalAvgPool2d(t, true)],
    ];
    for (const [name, f] of cases) {
      const u = f(x);
      const v = f(xb);
      expect(u.shape, name).toEqual(v.shape.slice(1));
      expectClose(await val(u), await val(v), TOL.exact, name);
    }
    expect(globalAvgPool2d(x).shape).toEqual([2]);
  });

  it('layers accept [C, H, W]; errors name the unbatched shape', async () => {
    const x = f64(X, [2, 5, 6]);
    const conv = new Conv2d(2, 3, 3, { dtype: 'float64', padding: 'same' });
    expect(conv.forward(x).shape).toEqual([3, 5, 6]);
    expect(new ConvTranspose2d(2, 4, 2, { dtype: 'float64', stride: 2 }).forward(x).shape).toEqual([4, 10, 12]);
    expect(new MaxPool2d(2).forward(x).shape).toEqual([2, 2, 3]);
    expect(new MaxPool2d(2, { ceilMode: true }).forward(x).shape).toEqual([2, 3, 3]);
    expect(new AvgPool2d(2, { ceilMode: true, countIncludePad: false }).forward(x).shape).toEqual([2, 3, 3]);
    expect(new AdaptiveAvgPool2d(1).forward(x).shape).toEqual([2, 1, 1]);
    // Sequential's fused Conv2d+ReLU path only takes [N, C, H, W]; unbatched inputs run unfused.
    const seq = new Sequential(conv, new ReLU());
    expectClose(await val(seq.forward(x)), await val(conv.forward(f64(X, [1, 2, 5, 6])).relu()), TOL.exact, 'Sequential');
    expect(() => conv.forward(f64(X.slice(0, 30), [1, 5, 6]))).toThrow(/Conv2d\(2→3\): expected input \[N, 2, H, W\] \(or unbatched \[2, H, W\]\), got \[1,5,6\]/);
    expect(() => conv2d(f64(X.slice(0, 30), [1, 5, 6]), f64(Wc, [3, 2, 3, 3]))).toThrow(/conv2d: channel mismatch: .* \(unbatched input \[1,5,6\] viewed as \[1,1,5,6\]\)/);
    expect(() => new MaxPool2d(2).forward(f64([1, 2], [2]))).toThrow(ShapeError);
  });

  it('maxPool2dWithIndices on [C, H, W]: values, indices, gradient, no leaks', async () => {
    const x = f64(X, [2, 5, 6]);
    const r = maxPool2dWithIndices(x, { kernelSize: 2, ceilMode: true });
    const rb = maxPool2dWithIndices(f64(X, [1, 2, 5, 6]), { kernelSize: 2, ceilMode: true });
    expect(r.values.shape).toEqual([2, 3, 3]);
    expect(await val(r.values)).toEqual(await val(rb.values));
    expect(await val(r.indices)).toEqual(await val(rb.indices));
    const [g] = grads((t) => maxPool2dWithIndices(t, { kernelSize: 2 }).values.sum(), [0])(x);
    const [gb] = grads((t) => maxPool2d(t, { kernelSize: 2 }).sum(), [0])(x);
    expect(await val(g)).toEqual(await val(gb));
    const m0 = memory().liveTensors;
    const q = maxPool2dWithIndices(x, { kernelSize: 3, stride: 2 });
    q.values.dispose();
    q.indices.dispose();
    tidy(() => { maxPool2dWithIndices(x, { kernelSize: 2 }).values.sum(); });
    const w = f64(X, [2, 5, 6]).requireGrad();
    tidy(() => { maxPool2dWithIndices(w, { kernelSize: 2 }).values.sum().backward(); });
    w.dispose();
    expect(memory().liveTensors).toBe(m0);
    expect(() => maxPool2dWithIndices(f64([1, 2, 3, 4], [1, 2, 2]), { kernelSize: 3 })).toThrow(/\(unbatched input \[1,2,2\] viewed as \[1,1,2,2\]\)/);
    expect(memory().liveTensors).toBe(m0 + 1); // only the tensor literal above
    const small = f64([1, 2, 3, 4], [1, 2, 2]);
    expect(() => maxPool2d(small, { kernelSize: 3 })).toThrow(ShapeError);
    const wt = f64(Wc, [3, 2, 3, 3]);
    expect(() => conv2d(small, wt)).toThrow(ShapeError);
    small.dispose();
    wt.dispose();
    expect(memory().liveTensors).toBe(m0 + 1);
  });

  it('gradients flow through the unbatched path (float64 finite differences)', async () => {
    const x = host(X, [2, 5, 6], 'float64');
    const w = host(Wc, [3, 2, 3, 3], 'float64');
    await gradcheck((a, b) => conv2d(a, b, null, { padding: 1 }), [x, w], { label: 'conv2d [C,H,W]' });
    await gradcheck((a) => avgPool2d(a, { kernelSize: 2, ceilMode: true }), [x], { label: 'avgPool2d [C,H,W]' });
    await gradcheck((a) => upsampleBilinear2d(a, [4, 9]), [x], { label: 'upsample [C,H,W]' });
    await gradcheck((a) => convTranspose2d(a, f64(Wc.slice(0, 36), [2, 2, 3, 3]), null, { stride: 2 }), [x], { label: 'convT [C,H,W]' });
  });

  it('WebGPU agrees with the CPU', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const r = new Rng(4);
    const x = rand(r, [3, 9, 11], 'float32');
    const w = rand(r, [5, 3, 3, 3], 'float32');
    await compareBackends(cpu, gpu, (a, b) => conv2d(a, b, null, { padding: 1 }), [x, w], TOL.matmul(27), 'conv2d');
    await compareBackends(cpu, gpu, (a) => maxPool2d(a, { kernelSize: 3, stride: 2, ceilMode: true }), [x], TOL.select, 'maxPool2d');
    await compareBackends(cpu, gpu, (a) => upsampleBilinear2d(a, [5, 17], { alignCorners: true }), [x], LERP, 'upsample');
    setBackend(cpu);
  });
});

describe('pooling ceilMode and countIncludePad (PyTorch semantics)', () => {
  it('hand values: 5×5 with kernel 2 gives 3×3 with ceilMode (partial last windows)', async () => {
    const x = f64(iota(25), [1, 1, 5, 5]);
    expect(await maxPool2d(x, { kernelSize: 2 }).toArray()).toEqual([[[[6, 8], [16, 18]]]]);
    expect(await maxPool2d(x, { kernelSize: 2, ceilMode: true }).toArray()).toEqual([[[[6, 8, 9], [16, 18, 19], [21, 23, 24]]]]);
    // The last windows hold 2 and 1 input elements and no padding: divided by those counts either way.
    const avg = [[3, 5, 6.5], [13, 15, 16.5], [20.5, 22.5, 24]];
    expect(await avgPool2d(x, { kernelSize: 2, ceilMode: true }).toArray()).toEqual([[avg]]);
    expect(await avgPool2d(x, { kernelSize: 2, ceilMode: true, countIncludePad: false }).toArray()).toEqual([[avg]]);
  });

  it('the last window must start inside the input or its left padding', () => {
    // H = 5, k = 2, s = 2, p = 1: ⌈(5+2−2)/2⌉+1 = 4, but window 3 would start at 6−1 = 5 = H → 3.
    const x = f64(iota(25), [1, 1, 5, 5]);
    expect(maxPool2d(x, { kernelSize: 2, padding: 1, ceilMode: true }).shape).toEqual([1, 1, 3, 3]);
    expect(maxPool2d(f64(iota(36), [1, 1, 6, 6]), { kernelSize: 3, stride: 2, padding: 1, ceilMode: true }).shape).toEqual([1, 1, 4, 4]);
  });

  it('matches a re-implementation of PyTorch avg_pool2d / max_pool2d over many geometries', async () => {
    const rng = new Rng(8);
    for (const [H, W] of [[6, 6], [7, 5], [5, 8], [3, 4]]) {
      const X = rand(rng, [H, W], 'float64').data;
      const x = f64(X, [1, 1, H, W]);
      for (const [k, s, p] of [[2, 2, 0], [3, 2, 1], [3, 3, 1], [2, 1, 1], [3, 2, 0]]) {
        for (const ceil of [false, true]) {
          if (2 * p > k || outLen(H, k, s, p, 1, ceil) < 1 || outLen(W, k, s, p, 1, ceil) < 1) continue;
          for (const inc of [true, false]) {
            const got = await val(avgPool2d(x, { kernelSize: k, stride: s, padding: p, ceilMode: ceil, countIncludePad: inc }));
            expectClose(got, refAvg(X, H, W, k, s, p, ceil, inc), TOL.arith, `avg ${H}x${W} k${k} s${s} p${p} ceil=${ceil} inc=${inc}`);
          }
          for (const d of [1, 2]) {
            if (2 * p > d * (k - 1) + 1 || outLen(H, k, s, p, d, ceil) < 1 || outLen(W, k, s, p, d, ceil) < 1) continue;
            const got = await val(maxPool2d(x, { kernelSize: k, stride: s, padding: p, dilation: d, ceilMode: ceil }));
            expectClose(got, refMax(X, H, W, k, s, p, d, ceil), TOL.exact, `max ${H}x${W} k${k} s${s} p${p} d${d} ceil=${ceil}`);
          }
        }
      }
    }
  });

  it('countIncludePad=true with ceilMode: the padding counts, the part past the padding does not', async () => {
    // H = W = 6, k = 3, s = 2, p = 1, ceil: 4 windows; the last starts at 5 and covers rows 5, 6 (pad).
    const x = f64(new Array(36).fill(1), [1, 1, 6, 6]);
    const inc = await val(avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true }));
    // Corner (0,0): 2×2 real of a 3×3 window → 4/9. Last corner: window rows 5..6, cols 5..6 → 1 real of 2×2 → 1/4.
    expect(inc[0]).toBeCloseTo(4 / 9, 15);
    expect(inc[15]).toBeCloseTo(1 / 4, 15);
    expect(inc[3]).toBeCloseTo(2 / 6, 15);
    const exc = await val(avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false }));
    expect(exc.every((v) => Math.abs(v - 1) < 1e-15)).toBe(true);
  });

  it('gradients (float64 finite differences) and WebGPU vs CPU, forward and backward', async (ctx) => {
    const rng = new Rng(2);
    const x = rand(rng, [2, 3, 7, 6], 'float64');
    await gradcheck((a) => avgPool2d(a, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: true }), [x], { label: 'avg ceil' });
    await gradcheck((a) => avgPool2d(a, { kernelSize: 2, ceilMode: true, countIncludePad: false }), [x], { label: 'avg ceil exc' });
    await gradcheck((a) => maxPool2d(a, { kernelSize: 2, stride: 2, ceilMode: true }), [x], { label: 'max ceil' });
    const gpu = await requireWebGPU(ctx);
    const xf = rand(rng, [2, 3, 13, 10], 'float32');
    for (const [opts, outHW] of [[{ kernelSize: 3, stride: 2, padding: 1, ceilMode: true }, [7, 6]], [{ kernelSize: 2, ceilMode: true }, [7, 5]]] as const) {
      const cot = rand(rng, [2, 3, ...outHW], 'float32');
      await compareBackends(cpu, gpu, (a) => avgPool2d(a, opts), [xf], AVG(9), 'avg ceil');
      await compareBackends(cpu, gpu, (a) => avgPool2d(a, { ...opts, countIncludePad: false }), [xf], AVG(9), 'avg ceil exc');
      await compareBackends(cpu, gpu, (a) => maxPool2d(a, opts), [xf], TOL.select, 'max ceil');
      const vjp = (f: (t: Tensor) => Tensor) => (a: Tensor, c: Tensor) => grads((u) => f(u).mul(c).sum(), [0])(a)[0];
      await compareBackends(cpu, gpu, vjp((a) => maxPool2d(a, opts)), [xf, cot], TOL.select, 'max ceil backward');
      await compareBackends(cpu, gpu, vjp((a) => avgPool2d(a, opts)), [xf, cot], AVG(9), 'avg ceil backward');
    }
    setBackend(cpu);
  });

  it('divisorOverride divides the window sums (padding counts as zeros)', async (ctx) => {
    const x = f64(new Array(16).fill(1), [1, 1, 4, 4]);
    expect(await val(avgPool2d(x, { kernelSize: 2, divisorOverride: 3 }))).toEqual(new Array(4).fill(4 / 3));
    // k 3, s 2, p 1 on 4×4 ones: real elements per window [[4, 6], [6, 9]].
    expectClose(await val(avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, divisorOverride: 2 })), [2, 3, 3, 4.5], TOL.arith, 'padded');
    const X = iota(25);
    const want = refAvg(X, 5, 5, 2, 2, 0, true, true).map((v, i) => {
      const oh = Math.floor(i / 3);
      const ow = i % 3;
      return (v * (oh === 2 ? 1 : 2) * (ow === 2 ? 1 : 2)) / 5; // sum = mean · real count (no padding)
    });
    expectClose(await val(new AvgPool2d(2, { ceilMode: true, divisorOverride: 5 }).forward(f64(X, [1, 5, 5]))), want, TOL.arith, 'ceil layer');
    expect(() => avgPool2d(x, { kernelSize: 2, divisorOverride: 0 })).toThrow(ArgumentError);
    expect(() => avgPool2d(x, { kernelSize: 2, divisorOverride: 1.5 })).toThrow(ArgumentError);
    await gradcheck((a) => avgPool2d(a, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true, divisorOverride: 4 }), [rand(new Rng(4), [1, 2, 6, 5], 'float64')], { label: 'divisorOverride' });
    const gpu = await requireWebGPU(ctx);
    await compareBackends(cpu, gpu, (a) => avgPool2d(a, { kernelSize: 3, stride: 2, padding: 1, divisorOverride: 7 }), [rand(new Rng(5), [2, 3, 9, 8], 'float32')], AVG(9), 'divisorOverride');
    setBackend(cpu);
  });

  it('bad ceilMode is an ArgumentError', () => {
    expect(() => maxPool2d(f64(iota(16), [1, 1, 4, 4]), { kernelSize: 2, ceilMode: 1 as unknown as boolean })).toThrow(ArgumentError);
  });
});

describe('pad modes: reflect, replicate, circular', () => {
  it('1-D hand values (PyTorch F.pad semantics)', async () => {
    const x = f64([1, 2, 3], [3]);
    expect(await pad(x, [[2, 2]], { mode: 'reflect' }).toArray()).toEqual([3, 2, 1, 2, 3, 2, 1]);
    expect(await pad(x, [[2, 1]], { mode: 'replicate' }).toArray()).toEqual([1, 1, 1, 2, 3, 3]);
    expect(await pad(x, [[2, 3]], { mode: 'circular' }).toArray()).toEqual([2, 3, 1, 2, 3, 1, 2, 3]);
    expect(await pad(x, [[1, 1]], { mode: 'constant', value: 9 }).toArray()).toEqual([9, 1, 2, 3, 9]);
    expect(await pad(x, [[1, 0]], 7).toArray()).toEqual([7, 1, 2, 3]);
  });

  it('2-D on the spatial dims of NCHW, as F.pad(x, (1, 1, 2, 0), mode)', async () => {
    const x = f64(iota(6), [1, 1, 2, 3]); // [[0,1,2],[3,4,5]]
    const pads: [number, number][] = [[0, 0], [0, 0], [1, 0], [1, 1]];
    expect(await pad(x, pads, { mode: 'reflect' }).toArray()).toEqual([[[[4, 3, 4, 5, 4], [1, 0, 1, 2, 1], [4, 3, 4, 5, 4]]]]);
    expect(await pad(x, pads, { mode: 'replicate' }).toArray()).toEqual([[[[0, 0, 1, 2, 2], [0, 0, 1, 2, 2], [3, 3, 4, 5, 5]]]]);
    expect(await pad(x, pads, { mode: 'circular' }).toArray()).toEqual([[[[5, 3, 4, 5, 3], [2, 0, 1, 2, 0], [5, 3, 4, 5, 3]]]]);
  });

  it('typed errors: reflect needs pad < size, circular pad <= size, replicate a non-empty dim', () => {
    const x = f64([1, 2, 3], [3]);
    expect(() => pad(x, [[3, 0]], { mode: 'reflect' })).toThrow(ArgumentError);
    expect(() => pad(x, [[3, 0]], { mode: 'reflect' })).toThrow(/pad: reflect padding \[3, 0\] of dim 0 of \[3\] needs each pad < 3/);
    expect(() => pad(x, [[0, 4]], { mode: 'circular' })).toThrow(/circular padding \[0, 4\] of dim 0 of \[3\] needs each pad <= 3/);
    expect(() => pad(f64([], [0]), [[1, 1]], { mode: 'replicate' })).toThrow(/replicate padding \[1, 1\] of dim 0 of \[0\] needs a non-empty dim/);
    expect(() => pad(x, [[1, 1]], { mode: 'wrap' as 'reflect' })).toThrow(ArgumentError);
    expect(() => pad(x, [[1, 1]], { mode: 'reflect', value: 2 })).toThrow(ArgumentError);
    expect(() => pad(x, [[-1, 1]], { mode: 'reflect' })).toThrow(ArgumentError);
  });

  it('gradients sum over every copy (float64 finite differences); WebGPU agrees; no leaks', async (ctx) => {
    const rng = new Rng(6);
    const x = rand(rng, [2, 3, 4], 'float64');
    for (const mode of ['reflect', 'replicate', 'circular'] as const) {
      await gradcheck((a) => pad(a, [[0, 0], [2, 1], [3, 3]], { mode }), [x], { label: `pad ${mode}` });
    }
    const t = f64([1, 2, 3], [3]).requireGrad();
    tidy(() => pad(t, [[2, 2]], { mode: 'reflect' }).sum().backward());
    expect(await t.grad!.toArray()).toEqual([2, 3, 2]);
    t.dispose(); // [3,2,1,2,3,2,1]: 1 and 3 appear twice, 2 three times
    const m0 = memory().liveTensors;
    const xt = f64(iota(12), [3, 4]);
    for (let i = 0; i < 3; i++) tidy(() => { pad(xt, [[1, 1], [2, 2]], { mode: 'reflect' }); });
    tidy(() => { pad(xt.requireGrad(), [[1, 1], [2, 2]], { mode: 'circular' }).sum().backward(); });
    pad(xt, [[1, 1], [2, 2]], { mode: 'replicate' }).dispose();
    xt.dispose();
    expect(memory().liveTensors).toBe(m0);
    const gpu = await requireWebGPU(ctx);
    const xf = rand(rng, [2, 3, 9, 7], 'float32');
    for (const mode of ['reflect', 'replicate', 'circular'] as const) {
      await compareBackends(cpu, gpu, (a) => pad(a, [[0, 0], [1, 0], [3, 2], [6, 5]], { mode }), [xf], TOL.select, `pad ${mode}`);
    }
    const xi = rand(rng, [4, 5], 'int32');
    await compareBackends(cpu, gpu, (a) => pad(a, [[2, 1], [4, 3]], { mode: 'reflect' }), [xi], TOL.exact, 'pad int32');
    setBackend(cpu);
  });
});

describe('interpolate (F.interpolate)', () => {
  it('nearest and nearest-exact by size and by scaleFactor (hand values)', async () => {
    const x = f64([10, 20, 30], [1, 1, 3]);
    expect(await interpolate(x, { size: 5 }).toArray()).toEqual([[[10, 10, 20, 20, 30]]]);
    expect(await interpolate(x, { size: 5, mode: 'nearest-exact' }).toArray()).toEqual([[[10, 10, 20, 30, 30]]]);
    expect(await interpolate(x, { scaleFactor: 2 }).toArray()).toEqual([[[10, 10, 20, 20, 30, 30]]]);
    expect(await interpolate(x, { size: 2 }).toArray()).toEqual([[[10, 20]]]);
    // 2-D: per-dim sizes.
    const y = f64(iota(6), [1, 1, 2, 3]);
    expect(await interpolate(y, { size: [3, 2] }).toArray()).toEqual([[[[0, 1], [0, 1], [3, 4]]]]);
    // 5-D works too (any number of spatial dims).
    expect(interpolate(f64(iota(8), [1, 1, 2, 2, 2]), { scaleFactor: [1, 2, 3] }).shape).toEqual([1, 1, 2, 4, 6]);
  });

  it('scaleFactor maps coordinates with 1/scale as PyTorch (unless recomputeScaleFactor)', async () => {
    // in 10, scale 1.15 → out ⌊11.5⌋ = 11; dst 10 → ⌊10/1.15⌋ = 8, but ⌊10·10/11⌋ = 9.
    const x = f64(iota(10), [1, 1, 10]);
    const a = await val(interpolate(x, { scaleFactor: 1.15 }));
    expect(a).toEqual([0, 0, 1, 2, 3, 4, 5, 6, 6, 7, 8]);
    const b = await val(interpolate(x, { scaleFactor: 1.15, recomputeScaleFactor: true }));
    expect(b).toEqual([0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await val(interpolate(x, { size: 11 }))).toEqual(b);
  });

  it('bilinear: the classic 2×2 → 4×4 result, alignCorners, and a fractional scaleFactor', async () => {
    const x = f64([1, 2, 3, 4], [1, 1, 2, 2]);
    expect(await val(interpolate(x, { scaleFactor: 2, mode: 'bilinear' }))).toEqual([1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4]);
    const ac = await val(interpolate(x, { size: [3, 3], mode: 'bilinear', alignCorners: true }));
    expectClose(ac, [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4], TOL.arith, 'alignCorners');
    // Fractional scale: source index = max((dst + ½)/s − ½, 0) (float32 scale), reference by hand.
    const X = [0, 1, 4, 9, 16];
    const s = 1.5; // 5 → 7
    const sc = Math.fround(1 / s);
    const want = iota(7).map((o) => {
      const src = Math.max(Math.fround(sc * (o + 0.5) - 0.5), 0);
      const i0 = Math.min(Math.floor(src), 4);
      const l1 = src - i0;
      return (1 - l1) * X[i0] + l1 * X[Math.min(i0 + 1, 4)];
    });
    const got = await val(interpolate(f64(X, [1, 1, 1, 5]), { scaleFactor: [1, s], mode: 'bilinear' }));
    expectClose(got, want, { rtol: 1e-6, atol: 1e-6, why: 'the scale is rounded to float32 as PyTorch; lerp weights carry that rounding' }, 'fractional');
    // 'linear' on [N, C, L].
    expect(await val(interpolate(f64([1, 2, 3], [1, 1, 3]), { size: 5, mode: 'linear', alignCorners: true }))).toEqual([1, 1.5, 2, 2.5, 3]);
  });

  it('typed errors', () => {
    const x = f64(iota(4), [1, 1, 2, 2]);
    expect(() => interpolate(x, {})).toThrow(/interpolate: give exactly one of size and scaleFactor/);
    expect(() => interpolate(x, { size: 3, scaleFactor: 2 })).toThrow(ArgumentError);
    expect(() => interpolate(x, { size: 3, alignCorners: true })).toThrow(/alignCorners can only be set with the linear modes/);
    expect(() => interpolate(f64(iota(4), [1, 1, 4]), { size: 3, mode: 'bilinear' })).toThrow(/mode 'bilinear' needs a 4-D input/);
    expect(() => interpolate(x, { size: 3, mode: 'linear' })).toThrow(ShapeError);
    expect(() => interpolate(x, { size: [3, 3, 3] })).toThrow(/size must be a positive integer, or 2 of them/);
    expect(() => interpolate(x, { scaleFactor: 0.1 })).toThrow(/gives an empty output/);
    expect(() => interpolate(f64(iota(4), [2, 2]), { size: 3 })).toThrow(ShapeError);
    expect(() => interpolate(x, { size: 3, mode: 'bicubic' as 'bilinear' })).toThrow(ArgumentError);
  });

  it('Upsample layer; gradients (float64 finite differences); WebGPU agrees', async (ctx) => {
    const up = new Upsample({ scaleFactor: 2, mode: 'bilinear' });
    expect(up.forward(f64(iota(8), [1, 2, 2, 2])).shape).toEqual([1, 2, 4, 4]);
    expect(new Upsample({ size: [3, 5] }).forward(f64(iota(8), [1, 2, 2, 2])).shape).toEqual([1, 2, 3, 5]);
    const rng = new Rng(3);
    const x = rand(rng, [2, 2, 3, 4], 'float64');
    await gradcheck((a) => interpolate(a, { scaleFactor: [1.7, 2.5] }), [x], { label: 'nearest' });
    await gradcheck((a) => interpolate(a, { size: [5, 3], mode: 'nearest-exact' }), [x], { label: 'nearest-exact' });
    await gradcheck((a) => interpolate(a, { scaleFactor: 1.5, mode: 'bilinear' }), [x], { label: 'bilinear' });
    await gradcheck((a) => interpolate(a, { size: 7, mode: 'linear' }), [rand(rng, [2, 3, 4], 'float64')], { label: 'linear' });
    const gpu = await requireWebGPU(ctx);
    const xf = rand(rng, [2, 3, 7, 9], 'float32');
    await compareBackends(cpu, gpu, (a) => interpolate(a, { scaleFactor: 1.6 }), [xf], TOL.select, 'nearest');
    await compareBackends(cpu, gpu, (a) => interpolate(a, { size: [4, 13], mode: 'nearest-exact' }), [xf], TOL.select, 'nearest-exact');
    await compareBackends(cpu, gpu, (a) => interpolate(a, { scaleFactor: [2.3, 0.7], mode: 'bilinear' }), [xf], LERP, 'bilinear');
    await compareBackends(cpu, gpu, (a) => interpolate(a.reshape([2, 3, 63]), { size: 100, mode: 'linear', alignCorners: true }), [xf], LERP, 'linear');
    setBackend(cpu);
  });
});
