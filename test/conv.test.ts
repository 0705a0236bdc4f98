// conv2d / convTranspose2d and their gradient ops (engine/ops/conv.ts, kernels/conv2d*.wgsl).
//
// * WebGPU vs the CPU reference (float64 accumulation, inputs rounded to float32 on both sides)
//   over geometries chosen to hit the kernels' edges: stride 1/2/3, padding 0/1/2/'same'
//   (incl. asymmetric), dilation, groups and depthwise, 1×1 kernels, odd sizes, C/O = 1, channel
//   counts that are not multiples of the register blocks (8), pixel counts past one workgroup
//   tile (64·PB), split-K weight gradients with a ragged last split, and N = 0.
// * Gradients vs central finite differences in float64 on the CPU backend, including one
//   second-order case through each of conv2d and convTranspose2d.
// * Typed errors for bad shapes and options.
import { describe, expect, it } from 'vitest';
import {
  ArgumentError,
  ShapeError,
  type Backend,
  type Tensor,
  conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  conv2dBiasAct,
  convTranspose2d,
  grad,
  grads,
  keep,
  memory,
  tensor,
  tidy,
} from '../node.js';
import type { Conv2dOpOptions, ConvTranspose2dOpOptions } from '../engine/ops/conv.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

// ---- helpers ----

/** Deterministic values in [-1, 1). */
function rnd(n: number, seed: number): Float64Array {
  const r = new Float64Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    r[i] = (s / 4294967296) * 2 - 1;
  }
  return r;
}

const sizeOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const f32 = (v: Float64Array) => Float32Array.from(v);

function t(be: Backend, v: Float64Array, shape: readonly number[]): Tensor {
  return tensor(f32(v), shape, { backend: be });
}
function t64(v: Float64Array, shape: readonly number[]): Tensor {
  return tensor(v, shape, { dtype: 'float64', backend: cpu });
}

/**
 * GPU float32 vs CPU reference. Tolerance: inputs are in [-1, 1] and every output is a sum of at
 * most a few hundred products; float32 accumulation in a different order than the float64
 * reference differs by ~K·2⁻²⁴ relative to the magnitudes involved, so 2e-5 · max(1, max|ref|)
 * has ample margin while still catching any indexing error (which produces O(1) differences).
 */
async function expectClose(gpuT: Tensor, cpuT: Tensor, what: string): Promise<void> {
  expect(gpuT.shape, `${what}: shape`).toEqual(cpuT.shape);
  const g = await gpuT.data();
  const c = await cpuT.data();
  let scale = 1;
  for (let i = 0; i < c.length; i++) scale = Math.max(scale, Math.abs(c[i]));
  let worst = 0;
  let at = -1;
  for (let i = 0; i < c.length; i++) {
    const e = Math.abs(g[i] - c[i]);
    if (!(e <= worst)) {
      worst = e;
      at = i;
    }
  }
  expect(worst, `${what}: max |gpu − cpu| = ${worst} at ${at} (gpu ${g[at]}, cpu ${c[at]})`).toBeLessThanOrEqual(2e-5 * scale);
}

// ---- hand-computed values (PyTorch semantics: cross-correlation; transposed-conv placement) ----

describe('known values', () => {
  const x9 = [1, 2, 3, 4, 5, 6, 7, 8, 9];
  const k4 = [1, 2, 3, 4];
  const cases = async (be: Backend) => {
    const x = tensor(x9, [1, 1, 3, 3], { backend: be });
    const w = tensor(k4, [1, 1, 2, 2], { backend: be });
    expect(Array.from(await conv2d(x, w).data())).toEqual([37, 47, 67, 77]);
    expect(Array.from(await conv2d(x, w, tensor([-40], [1], { backend: be })).data())).toEqual([-3, 7, 27, 37]);
    expect(Array.from(await conv2dBiasAct(x, w, tensor([-50], [1], { backend: be }), {}, 'relu').data())).toEqual([0, 0, 17, 27]);
    const x4 = tensor([1, 2, 3, 4], [1, 1, 2, 2], { backend: be });
    expect(await convTranspose2d(x4, w, null, { stride: 2 }).toArray()).toEqual([[[[1, 2, 2, 4], [3, 4, 6, 8], [3, 6, 4, 8], [9, 12, 12, 16]]]]);
    expect(await convTranspose2d(x4, w, null, { stride: 2, padding: 1 }).toArray()).toEqual([[[[4, 6], [6, 4]]]]);
    expect(await convTranspose2d(x4, w, null, { stride: 2, padding: 1, outputPadding: 1 }).toArray()).toEqual([[[[4, 6, 8], [6, 4, 8], [12, 12, 16]]]]);
  };
  it('cpu', () => cases(cpu));
  it('webgpu', async (ctx) => cases(await requireWebGPU(ctx)));
});

// ---- WebGPU vs CPU ----

interface ConvCase {
  name: string;
  x: [number, number, number, number];
  w: [number, number, number, number];
  opts: Conv2dOpOptions;
  bias?: boolean;
}

const CONV_CASES: ConvCase[] = [
  { name: 'basic 3x3, odd H/W', x: [2, 3, 7, 9], w: [5, 3, 3, 3], opts: {}, bias: true },
  { name: 'stride 2 pad 1', x: [2, 3, 8, 7], w: [4, 3, 3, 3], opts: { stride: 2, padding: 1 }, bias: true },
  { name: '5x5 pad 2', x: [1, 2, 6, 6], w: [3, 2, 5, 5], opts: { padding: 2 } },
  { name: "'same' with an even 4x3 kernel (asymmetric pad)", x: [2, 3, 5, 7], w: [2, 3, 4, 3], opts: { padding: 'same' }, bias: true },
  { name: "'same' dilation 2", x: [1, 2, 5, 6], w: [2, 2, 3, 3], opts: { padding: 'same', dilation: 2 } },
  { name: 'dilation 2 pad 1', x: [1, 2, 9, 8], w: [3, 2, 3, 3], opts: { dilation: 2, padding: 1 } },
  { name: 'groups 2', x: [2, 4, 6, 5], w: [6, 2, 3, 3], opts: { groups: 2, padding: 1 }, bias: true },
  { name: 'depthwise stride 2', x: [2, 5, 7, 6], w: [5, 1, 3, 3], opts: { groups: 5, padding: 1, stride: 2 } },
  { name: 'depthwise multiplier 2', x: [1, 3, 5, 5], w: [6, 1, 3, 3], opts: { groups: 3, padding: 1 } },
  { name: '1x1 kernel, C = O = 1', x: [3, 1, 4, 3], w: [1, 1, 1, 1], opts: {}, bias: true },
  { name: '1x1 spatial input', x: [2, 3, 1, 1], w: [2, 3, 1, 1], opts: { padding: 'valid' } },
  { name: 'O = 11, C = 9 (ragged blocks), 363 pixels (several workgroups)', x: [3, 9, 11, 11], w: [11, 9, 3, 3], opts: { padding: 1 }, bias: true },
  { name: 'stride [2,1], padding [1,0], dilation [1,2], 3x2 kernel', x: [2, 3, 9, 7], w: [4, 3, 3, 2], opts: { stride: [2, 1], padding: [1, 0], dilation: [1, 2] } },
  { name: 'stride 3 > kernel 2 (input rows no tap reaches)', x: [2, 2, 8, 7], w: [3, 2, 2, 2], opts: { stride: 3 } },
  { name: 'split-K weight gradient with a ragged last split', x: [5, 4, 11, 13], w: [5, 4, 3, 3], opts: { padding: 1 } },
  { name: 'R = C·kH·kW = 288 (several weight-gradient column blocks)', x: [1, 32, 5, 5], w: [3, 32, 3, 3], opts: { padding: 1 } },
  { name: 'groups 2 with Og = 10 (ragged blocks), stride 2, > one tile of pixels per phase', x: [4, 6, 23, 21], w: [20, 3, 3, 3], opts: { groups: 2, stride: 2, padding: 1 }, bias: true },
  { name: 'N = 0', x: [0, 3, 5, 5], w: [4, 3, 3, 3], opts: {}, bias: true },
];

function convOutShape(c: ConvCase): number[] {
  const [N, , H, W] = c.x;
  const [O, , kH, kW] = c.w;
  const p2 = (v: number | readonly [number, number] | undefined, d: number): [number, number] =>
    v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  const [sh, sw] = p2(c.opts.stride, 1);
  const [dh, dw] = p2(c.opts.dilation, 1);
  let ph2: number, pw2: number;
  if (c.opts.padding === 'same') {
    ph2 = dh * (kH - 1);
    pw2 = dw * (kW - 1);
  } else {
    const [ph, pw] = c.opts.padding === 'valid' ? [0, 0] : p2(c.opts.padding, 0);
    ph2 = 2 * ph;
    pw2 = 2 * pw;
  }
  return [N, O, Math.floor((H + ph2 - dh * (kH - 1) - 1) / sh) + 1, Math.floor((W + pw2 - dw * (kW - 1) - 1) / sw) + 1];
}

describe('conv2d on WebGPU matches the CPU reference', () => {
  CONV_CASES.forEach((c, ci) => {
    it(c.name, async (ctx) => {
      const gpu = await requireWebGPU(ctx);
      const yShape = convOutShape(c);
      const xv = rnd(sizeOf(c.x), 11 + ci);
      const wv = rnd(sizeOf(c.w), 23 + ci);
      const bv = rnd(c.w[0], 37 + ci);
      const dyv = rnd(sizeOf(yShape), 41 + ci);
      const run = (be: Backend) =>
        tidy(() => {
          const x = t(be, xv, c.x);
          const w = t(be, wv, c.w);
          const b = c.bias ? t(be, bv, [c.w[0]]) : null;
          const dy = t(be, dyv, yShape);
          return [
            keep(conv2d(x, w, b, c.opts)),
            keep(conv2dBiasAct(x, w, b, c.opts, 'relu')),
            keep(conv2dBackwardInput(dy, w, c.x, c.opts)),
            keep(conv2dBackwardWeight(x, dy, c.w, c.opts)),
          ];
        });
      const g = run(gpu);
      const r = run(cpu);
      expect(r[0].shape).toEqual(yShape);
      const names = ['forward', 'forward + bias + relu (fused)', 'grad input', 'grad weight'];
      for (let i = 0; i < g.length; i++) await expectClose(g[i], r[i], names[i]);
      for (const x of [...g, ...r]) x.dispose();
    });
  });
});

interface ConvTCase {
  name: string;
  x: [number, number, number, number];
  w: [number, number, number, number];
  opts: ConvTranspose2dOpOptions;
  out: [number, number];
}

const CONVT_CASES: ConvTCase[] = [
  { name: 'stride 2, padding 1, outputPadding 1', x: [2, 3, 4, 5], w: [3, 2, 3, 3], opts: { stride: 2, padding: 1, outputPadding: 1 }, out: [8, 10] },
  { name: 'groups 2, 2x3 kernel, stride 2', x: [1, 4, 3, 3], w: [4, 3, 2, 3], opts: { stride: 2, groups: 2 }, out: [6, 7] },
  { name: 'dilation 2, padding 2', x: [2, 2, 5, 4], w: [2, 3, 3, 3], opts: { dilation: 2, padding: 2 }, out: [5, 4] },
  { name: 'stride 1, dilation 2, outputPadding 1 (trailing rows no input reaches)', x: [1, 2, 4, 3], w: [2, 2, 3, 3], opts: { dilation: 2, outputPadding: 1 }, out: [9, 8] },
  { name: 'stride 3 > kernel 2 (gaps in the output)', x: [2, 2, 3, 4], w: [2, 3, 2, 2], opts: { stride: 3 }, out: [8, 11] },
  { name: 'Cin = Cout = 1, 1x1 kernel, stride 2', x: [2, 1, 3, 4], w: [1, 1, 1, 1], opts: { stride: 2, outputPadding: 1 }, out: [6, 8] },
  { name: 'N = 0', x: [0, 3, 4, 4], w: [3, 2, 3, 3], opts: { stride: 2, outputPadding: 1, padding: 1 }, out: [8, 8] },
];

describe('convTranspose2d on WebGPU matches the CPU reference (forward and gradients)', () => {
  CONVT_CASES.forEach((c, ci) => {
    it(c.name, async (ctx) => {
      const gpu = await requireWebGPU(ctx);
      const Cout = c.w[1] * (c.opts.groups ?? 1);
      const yShape = [c.x[0], Cout, ...c.out];
      const xv = rnd(sizeOf(c.x), 101 + ci);
      const wv = rnd(sizeOf(c.w), 131 + ci);
      const bv = rnd(Cout, 151 + ci);
      const rv = rnd(sizeOf(yShape), 171 + ci);
      const run = (be: Backend) =>
        tidy(() => {
          const x = t(be, xv, c.x);
          const w = t(be, wv, c.w);
          const b = t(be, bv, [Cout]);
          const R = t(be, rv, yShape);
          const y = convTranspose2d(x, w, b, c.opts);
          const gs = grads((x, w, b) => convTranspose2d(x, w, b, c.opts).mul(R).sum(), [0, 1, 2])(x, w, b);
          return [keep(y), ...gs.map(keep)];
        });
      const g = run(gpu);
      const r = run(cpu);
      expect(r[0].shape).toEqual(yShape);
      const names = ['forward', 'd/dx', 'd/dw', 'd/dbias'];
      for (let i = 0; i < g.length; i++) await expectClose(g[i], r[i], names[i]);
      for (const x of [...g, ...r]) x.dispose();
    });
  });
});

describe('second-order gradients on WebGPU match the CPU reference', () => {
  it('d/d(x,w) of sum(grad_w(½·sum(conv2d(x,w)²))²), stride 2, groups 2', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const xs = [2, 4, 6, 5];
    const ws = [4, 2, 3, 3];
    const opts: Conv2dOpOptions = { stride: 2, padding: 1, groups: 2 };
    const xv = rnd(sizeOf(xs), 7);
    const wv = rnd(sizeOf(ws), 8);
    const f = (x: Tensor, w: Tensor) => {
      const gw = grad((w: Tensor) => conv2d(x, w, null, opts).square().sum().mul(0.5))(w);
      return gw.square().sum();
    };
    const run = (be: Backend) => tidy(() => grads(f, [0, 1])(t(be, xv, xs), t(be, wv, ws)).map(keep));
    const g = run(gpu);
    const r = run(cpu);
    // Fourth-degree polynomial in the inputs: values reach ~1e2, the relative tolerance scales with them.
    await expectClose(g[0], r[0], 'd/dx');
    await expectClose(g[1], r[1], 'd/dw');
  });
});

// ---- finite differences (float64, CPU) ----

/**
 * Compares grads(f) at `vals` with central differences (h = 1e-6). In float64 the truncation
 * error is O(h²·f''') ≈ 1e-12 and the rounding error O(1e-16·|f|/h) ≈ 1e-9, so 1e-6 relative
 * tolerance is tight.
 */
async function fdCheck(f: (...ts: Tensor[]) => Tensor, vals: Float64Array[], shapes: number[][]): Promise<void> {
  const mk = (vs: Float64Array[]) => vs.map((v, i) => t64(v, shapes[i]));
  const analytic = tidy(() => grads(f, vals.map((_, i) => i))(...mk(vals)).map(keep));
  const evalAt = async (vs: Float64Array[]) => {
    const y = tidy(() => f(...mk(vs)));
    const v = await y.item();
    y.dispose();
    return v;
  };
  const h = 1e-6;
  for (let i = 0; i < vals.length; i++) {
    const a = await analytic[i].data();
    expect(analytic[i].shape).toEqual(shapes[i]);
    for (let k = 0; k < vals[i].length; k++) {
      const plus = vals.map((v) => Float64Array.from(v));
      const minus = vals.map((v) => Float64Array.from(v));
      plus[i][k] += h;
      minus[i][k] -= h;
      const fd = ((await evalAt(plus)) - (await evalAt(minus))) / (2 * h);
      expect(Math.abs(a[k] - fd), `input ${i} element ${k}: analytic ${a[k]} vs FD ${fd}`).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(fd)));
    }
    analytic[i].dispose();
  }
}

describe('gradients vs finite differences (float64, CPU)', () => {
  it('conv2d: x, w, bias (stride [2,1], padding 1, dilation [1,2], groups 2)', async () => {
    const xs = [2, 4, 5, 6];
    const ws = [4, 2, 3, 2];
    const ys = [2, 4, 3, 6];
    const R = t64(rnd(sizeOf(ys), 3), ys);
    const opts: Conv2dOpOptions = { stride: [2, 1], padding: 1, dilation: [1, 2], groups: 2 };
    expect(conv2d(t64(rnd(sizeOf(xs), 1), xs), t64(rnd(sizeOf(ws), 2), ws), null, opts).shape).toEqual(ys);
    await fdCheck((x, w, b) => conv2d(x, w, b, opts).mul(R).sum(), [rnd(sizeOf(xs), 1), rnd(sizeOf(ws), 2), rnd(4, 4)], [xs, ws, [4]]);
  });

  it("conv2d 'same' with an even kernel (asymmetric padding)", async () => {
    const xs = [1, 2, 4, 5];
    const ws = [3, 2, 2, 4];
    const R = t64(rnd(sizeOf([1, 3, 4, 5]), 5), [1, 3, 4, 5]);
    await fdCheck((x, w) => conv2d(x, w, null, { padding: 'same' }).mul(R).sum(), [rnd(sizeOf(xs), 6), rnd(sizeOf(ws), 7)], [xs, ws]);
  });

  it('conv2dBiasAct relu: x, w, bias', async () => {
    const xs = [2, 3, 5, 5];
    const ws = [4, 3, 3, 3];
    const ys = [2, 4, 3, 3];
    const R = t64(rnd(sizeOf(ys), 8), ys);
    const opts: Conv2dOpOptions = { stride: 2, padding: 1 };
    // Check no output sits within FD reach of the relu kink (else FD is not a derivative there).
    const pre = await conv2d(t64(rnd(sizeOf(xs), 9), xs), t64(rnd(sizeOf(ws), 10), ws), t64(rnd(4, 11), [4]), opts).data();
    expect(Math.min(...Array.from(pre, Math.abs))).toBeGreaterThan(1e-4);
    expect(Array.from(pre).some((v) => v < 0)).toBe(true);
    await fdCheck((x, w, b) => conv2dBiasAct(x, w, b, opts, 'relu').mul(R).sum(), [rnd(sizeOf(xs), 9), rnd(sizeOf(ws), 10), rnd(4, 11)], [xs, ws, [4]]);
  });

  it('convTranspose2d: x, w, bias (stride 2, padding 1, outputPadding 1, groups 2)', async () => {
    const xs = [2, 4, 3, 3];
    const ws = [4, 1, 3, 3];
    const ys = [2, 2, 6, 6];
    const R = t64(rnd(sizeOf(ys), 12), ys);
    const opts: ConvTranspose2dOpOptions = { stride: 2, padding: 1, outputPadding: 1, groups: 2 };
    await fdCheck((x, w, b) => convTranspose2d(x, w, b, opts).mul(R).sum(), [rnd(sizeOf(xs), 13), rnd(sizeOf(ws), 14), rnd(2, 15)], [xs, ws, [2]]);
  });

  it('convTranspose2d with dilation 2 and outputPadding 1 at stride 1', async () => {
    const xs = [1, 2, 3, 3];
    const ws = [2, 2, 2, 3];
    const ys = [1, 2, 6, 8];
    const R = t64(rnd(sizeOf(ys), 16), ys);
    const opts: ConvTranspose2dOpOptions = { dilation: 2, outputPadding: 1 };
    await fdCheck((x, w) => convTranspose2d(x, w, null, opts).mul(R).sum(), [rnd(sizeOf(xs), 17), rnd(sizeOf(ws), 18)], [xs, ws]);
  });

  it('second order through conv2d: d/d(x,w) of sum(grad_w(½·sum(conv2d(x,w)²))²)', async () => {
    const xs = [2, 2, 4, 4];
    const ws = [2, 1, 3, 2];
    const opts: Conv2dOpOptions = { stride: 2, padding: 1, groups: 2 };
    const f = (x: Tensor, w: Tensor) => {
      const gw = grad((w: Tensor) => conv2d(x, w, null, opts).square().sum().mul(0.5))(w);
      return gw.square().sum();
    };
    await fdCheck(f, [rnd(sizeOf(xs), 19), rnd(sizeOf(ws), 20)], [xs, ws]);
  });

  it('second order through convTranspose2d: d/d(x,w) of sum(grad_x(⅓·sum(convT(x,w)³))²)', async () => {
    const xs = [1, 2, 3, 3];
    const ws = [2, 2, 3, 3];
    const opts: ConvTranspose2dOpOptions = { stride: 2, padding: 1, outputPadding: 1 };
    const f = (x: Tensor, w: Tensor) => {
      const gx = grad((x: Tensor) => convTranspose2d(x, w, null, opts).pow(3).sum().div(3))(x);
      return gx.square().sum();
    };
    await fdCheck(f, [rnd(sizeOf(xs), 21), rnd(sizeOf(ws), 22)], [xs, ws]);
  });
});

// ---- errors ----

describe('typed errors', () => {
  const x = tensor(rnd(75, 1), [1, 3, 5, 5], { backend: cpu });
  it('channel mismatch', () => {
    const w = tensor(rnd(36, 2), [2, 2, 3, 3], { backend: cpu });
    expect(() => conv2d(x, w)).toThrow(ShapeError);
    expect(() => conv2d(x, w)).toThrow(/conv2d: channel mismatch: x \[1,3,5,5\] has C=3 channels but w \[2,2,3,3\]/);
    expect(() => conv2dBackwardWeight(x, tensor(rnd(18, 3), [1, 2, 3, 3], { backend: cpu }), [2, 2, 3, 3])).toThrow(/conv2dBackwardWeight: channel mismatch/);
    expect(() => convTranspose2d(x, w)).toThrow(/convTranspose2d: channel mismatch: x \[1,3,5,5\] has Cin=3/);
  });
  it('groups not dividing C or O', () => {
    expect(() => conv2d(x, tensor(rnd(18, 2), [2, 1, 3, 3], { backend: cpu }), null, { groups: 2 })).toThrow(/conv2d: groups=2 does not divide the 3 input channels of x \[1,3,5,5\]/);
    const x4 = tensor(rnd(100, 1), [1, 4, 5, 5], { backend: cpu });
    expect(() => conv2d(x4, tensor(rnd(54, 2), [3, 2, 3, 3], { backend: cpu }), null, { groups: 2 })).toThrow(ShapeError);
    expect(() => conv2d(x4, tensor(rnd(54, 2), [3, 2, 3, 3], { backend: cpu }), null, { groups: 0 })).toThrow(ArgumentError);
  });
  it('kernel larger than the padded input', () => {
    const w = tensor(rnd(75, 2), [1, 3, 5, 5], { backend: cpu });
    const small = tensor(rnd(27, 1), [1, 3, 3, 3], { backend: cpu });
    expect(() => conv2d(small, w)).toThrow(ShapeError);
    expect(() => conv2d(small, w)).toThrow(/conv2d: the kernel \(extent 5 along H, dilation 1\) is larger than the padded input 3\+0=3/);
    expect(conv2d(small, w, null, { padding: 1 }).shape).toEqual([1, 1, 1, 1]);
    expect(() => conv2d(x, tensor(rnd(27, 2), [1, 3, 3, 3], { backend: cpu }), null, { dilation: 3 })).toThrow(/extent 7 along H, dilation 3/);
  });
  it('wrong ranks', () => {
    const w = tensor(rnd(27, 2), [1, 3, 3, 3], { backend: cpu });
    // Rank 3 is an unbatched [C,H,W] input now (PyTorch semantics, test/parity-spatial.test.ts); rank 2 is still wrong.
    expect(() => conv2d(tensor(rnd(75, 1), [15, 5], { backend: cpu }), w)).toThrow(/conv2d: the input x must have rank 4 \[N,C,H,W\], got \[15,5\]/);
    expect(() => conv2d(x, tensor(rnd(27, 2), [3, 3, 3], { backend: cpu }))).toThrow(ShapeError);
    expect(() => convTranspose2d(tensor(rnd(75, 1), [15, 5], { backend: cpu }), w)).toThrow(/convTranspose2d: the input x must have rank 4/);
    expect(() => conv2dBackwardInput(tensor(rnd(9, 1), [1, 1, 9], { backend: cpu }), w, [1, 3, 5, 5])).toThrow(/conv2dBackwardInput: dy must have conv2d's output shape \[1,1,3,3\]/);
  });
  it('bad options and bias', () => {
    const w = tensor(rnd(27, 2), [1, 3, 3, 3], { backend: cpu });
    expect(() => conv2d(x, w, null, { padding: 'same', stride: 2 })).toThrow(ArgumentError);
    expect(() => conv2d(x, w, null, { padding: -1 })).toThrow(ArgumentError);
    expect(() => conv2d(x, w, null, { stride: [1, 0] })).toThrow(/conv2d: stride must be an integer >= 1/);
    expect(() => conv2d(x, w, tensor([1, 2], [2], { backend: cpu }))).toThrow(/conv2d: bias must have shape \[1\]/);
    const wt = tensor(rnd(54, 2), [3, 2, 3, 3], { backend: cpu });
    expect(() => convTranspose2d(x, wt, null, { stride: 2, outputPadding: 2 })).toThrow(ArgumentError);
    expect(() => convTranspose2d(x, wt, null, { padding: 5 })).toThrow(/convTranspose2d: the output would be/);
    expect(() => conv2d(tensor([1, 2, 3, 4], [1, 1, 2, 2], { dtype: 'int32', backend: cpu }), tensor([1], [1, 1, 1, 1], { dtype: 'int32', backend: cpu }))).toThrow(/conv2d: expected float tensors/);
  });
});

describe('memory', () => {
  it('conv2d / convTranspose2d forward and backward inside tidy leave no live tensors', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const x = t(gpu, rnd(2 * 3 * 6 * 6, 1), [2, 3, 6, 6]);
    const w = t(gpu, rnd(4 * 3 * 9, 2), [4, 3, 3, 3]);
    const b = t(gpu, rnd(4, 3), [4]);
    const wt = t(gpu, rnd(3 * 2 * 9, 4), [3, 2, 3, 3]);
    const bt = t(gpu, rnd(2, 5), [2]);
    const m0 = memory().liveTensors;
    for (let i = 0; i < 3; i++) {
      tidy(() => {
        grads((x, w, b) => conv2dBiasAct(x, w, b, { padding: 1 }, 'relu').sum(), [0, 1, 2])(x, w, b);
        grads((x, w, b) => convTranspose2d(x, w, b, { stride: 2, outputPadding: 1 }).square().sum(), [0, 1, 2])(x, wt, bt);
      });
    }
    expect(memory().liveTensors).toBe(m0);
    for (const v of [x, w, b, wt, bt]) v.dispose();
  });
});
