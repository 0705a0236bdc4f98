import conv2dWgsl from '../../kernels/conv2d.wgsl';
import conv2dGradInputWgsl from '../../kernels/conv2d_grad_input.wgsl';
import conv2dGradWeightWgsl from '../../kernels/conv2d_grad_weight.wgsl';
import type { OutInfo } from '../backend.js';
import { type TypedArray, allocHost, isFloat, promote } from '../dtype.js';
import { ArgumentError, DTypeError, ShapeError, fmtShape } from '../errors.js';
import { type CpuArg, type GpuArg, defineOp } from '../op.js';
import { type Tensor, runOp } from '../tensor.js';
import { type WebGPUBackend, grid1D } from '../webgpu/webgpu-backend.js';
import { WG_1D } from '../webgpu/kernel-constants.js';
import { type StructField, kernelFamily } from '../webgpu/kernel-source.js';
import { add, reluGrad } from './binary.js';
import { sum } from './reduce.js';
import { reshape } from './shape-ops.js';
import { composite } from './autograd.js';
import { unbatched } from './unbatched.js';

// 2-D convolution and transposed convolution, NCHW, PyTorch semantics.
//
// Three ops, each a tuned WGSL pass (register-blocked implicit GEMM, no im2col buffer):
//   conv2d               x [N,C,H,W], w [O,C/g,kH,kW] (, bias [O]) -> y [N,O,Ho,Wo]   kernels/conv2d.wgsl
//   conv2dBackwardInput  dy, w -> dx (a transposed conv; also conv-transpose's forward)   kernels/conv2d_grad_input.wgsl
//   conv2dBackwardWeight x, dy -> dw                                                     kernels/conv2d_grad_weight.wgsl
// The three are adjoint to each other, so every backward rule is one of the three ops and
// gradients of gradients work to any order.
//
// Internally an op carries explicit output sizes: Ho/Wo may be smaller than the "natural" conv
// output (conv-transpose with outputPadding ≥ stride leaves trailing rows that no input reaches).
// Rows outside [0,Ho) simply do not exist; all three ops agree on that, so they stay adjoint.

export type IntPair = number | readonly [number, number];

export interface Conv2dOpOptions {
  stride?: IntPair;
  /** Zero padding per side, `'valid'` (0) or `'same'` (stride 1 only; total d·(k−1), extra at the bottom/right). */
  padding?: IntPair | 'same' | 'valid';
  dilation?: IntPair;
  groups?: number;
}

export interface ConvTranspose2dOpOptions {
  stride?: IntPair;
  padding?: IntPair;
  /** Extra rows/cols added at the bottom/right of the output; must be < max(stride, dilation) per dim. */
  outputPadding?: IntPair;
  dilation?: IntPair;
  groups?: number;
}

/** Geometry shared by the three ops: groups, stride, dilation and the top/left padding. */
interface Geom {
  groups: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  pt: number;
  pl: number;
}

interface FwdAttrs extends Geom {
  Ho: number;
  Wo: number;
  /** 0 = none, 1 = relu (fused epilogue). */
  act: 0 | 1;
}

interface BwdInputAttrs extends Geom {
  inputShape: number[];
}

interface BwdWeightAttrs extends Geom {
  weightShape: number[];
}

const geomOf = (a: Geom): Geom => ({ groups: a.groups, sh: a.sh, sw: a.sw, dh: a.dh, dw: a.dw, pt: a.pt, pl: a.pl });

// ---------------------------------------------------------------------------------------------
// validation

function intPair(op: string, name: string, v: IntPair | undefined, dflt: number, min: number): [number, number] {
  const p: readonly number[] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : Array.isArray(v) ? v : [];
  if (p.length !== 2 || !p.every((k) => Number.isInteger(k) && k >= min)) {
    throw new ArgumentError(`${op}: ${name} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`);
  }
  return [p[0], p[1]];
}

function checkGroups(op: string, groups: number | undefined): number {
  const g = groups ?? 1;
  if (!Number.isInteger(g) || g < 1) throw new ArgumentError(`${op}: groups must be a positive integer, got ${JSON.stringify(groups)}`);
  return g;
}

function checkRank4(op: string, what: string, shape: readonly number[], layout: string): void {
  if (shape.length !== 4) throw new ShapeError(`${op}: ${what} must have rank 4 ${layout}, got ${fmtShape(shape)}`);
}

/**
 * Checks that x [N,C,H,W] and a conv weight [O,C/groups,kH,kW] fit together. `xName`/`wName`
 * name the operands in messages (conv-transpose passes its own names).
 */
function checkChannels(op: string, xShape: readonly number[], wShape: readonly number[], groups: number): void {
  checkRank4(op, 'the input x', xShape, '[N,C,H,W]');
  checkRank4(op, 'the weight w', wShape, '[O,C/groups,kH,kW]');
  const C = xShape[1];
  const [O, Cg, kH, kW] = wShape;
  if (C % groups !== 0) {
    throw new ShapeError(`${op}: groups=${groups} does not divide the ${C} input channels of x ${fmtShape(xShape)}`);
  }
  if (O % groups !== 0) {
    throw new ShapeError(`${op}: groups=${groups} does not divide the ${O} output channels of w ${fmtShape(wShape)}`);
  }
  if (Cg * groups !== C) {
    throw new ShapeError(
      `${op}: channel mismatch: x ${fmtShape(xShape)} has C=${C} channels but w ${fmtShape(wShape)} expects ` +
        `C/groups=${Cg} per group × groups=${groups} = ${Cg * groups}`,
    );
  }
  if (kH < 1 || kW < 1) throw new ShapeError(`${op}: the kernel must be at least 1×1, got w ${fmtShape(wShape)}`);
}

function checkFloat(op: string, ...ts: Tensor[]): void {
  for (const t of ts) if (!isFloat(t.dtype)) throw new DTypeError(`${op}: expected float tensors, got ${t.dtype} ${fmtShape(t.shape)}`);
}

/** Output extent along one axis; errors when the dilated kernel does not fit the padded input. */
function outExtent(op: string, axis: string, n: number, k: number, s: number, d: number, padTotal: number, xShape: readonly number[], wShape: readonly number[]): number {
  const eff = d * (k - 1) + 1;
  if (eff > n + padTotal) {
    throw new ShapeError(
      `${op}: the kernel (extent ${eff} along ${axis}, dilation ${d}) is larger than the padded input ` +
        `${n}+${padTotal}=${n + padTotal} (x ${fmtShape(xShape)}, w ${fmtShape(wShape)})`,
    );
  }
  return Math.floor((n + padTotal - eff) / s) + 1;
}

/** Resolves conv2d options against x and w: geometry and the output size. */
function resolveConv2d(op: string, xShape: readonly number[], wShape: readonly number[], opts: Conv2dOpOptions): { geom: Geom; Ho: number; Wo: number } {
  const groups = checkGroups(op, opts.groups);
  checkChannels(op, xShape, wShape, groups);
  const [sh, sw] = intPair(op, 'stride', opts.stride, 1, 1);
  const [dh, dw] = intPair(op, 'dilation', opts.dilation, 1, 1);
  const [, , H, W] = xShape;
  const [, , kH, kW] = wShape;
  let pt: number, pb: number, pl: number, pr: number;
  if (opts.padding === 'same') {
    if (sh !== 1 || sw !== 1) throw new ArgumentError(`${op}: padding 'same' needs stride 1, got stride [${sh},${sw}]`);
    const th = dh * (kH - 1);
    const tw = dw * (kW - 1);
    pt = Math.floor(th / 2);
    pb = th - pt;
    pl = Math.floor(tw / 2);
    pr = tw - pl;
  } else {
    const [ph, pw] = opts.padding === 'valid' ? [0, 0] : intPair(op, 'padding', opts.padding, 0, 0);
    pt = pb = ph;
    pl = pr = pw;
  }
  const Ho = outExtent(op, 'H', H, kH, sh, dh, pt + pb, xShape, wShape);
  const Wo = outExtent(op, 'W', W, kW, sw, dw, pl + pr, xShape, wShape);
  return { geom: { groups, sh, sw, dh, dw, pt, pl }, Ho, Wo };
}

// ---------------------------------------------------------------------------------------------
// CPU reference kernels (float64 accumulation)

function sizes(xShape: readonly number[], wShape: readonly number[], groups: number) {
  const [N, C, H, W] = xShape;
  const [O, Cg, kH, kW] = wShape;
  return { N, C, H, W, O, Cg, kH, kW, Og: O / groups };
}

function toOut(acc: Float64Array, out: OutInfo): TypedArray {
  const r = allocHost(out.dtype, acc.length);
  for (let i = 0; i < acc.length; i++) r[i] = acc[i];
  return r;
}

function convForwardCpu(x: CpuArg, w: CpuArg, b: CpuArg | undefined, a: FwdAttrs, out: OutInfo): TypedArray {
  const { N, O } = sizes(x.shape, w.shape, a.groups);
  const plane = a.Ho * a.Wo;
  const X = x.data;
  const Wt = w.data;
  const acc = new Float64Array(N * O * plane);
  // Taps of one output position are visited consecutively in (c, kh, kw) order.
  forEachTap(x.shape, w.shape, a.Ho, a.Wo, a, (xi, yi, wi) => {
    acc[yi] += X[xi] * Wt[wi];
  });
  for (let i = 0; i < acc.length; i++) {
    const s = acc[i] + (b ? b.data[Math.floor(i / plane) % O] : 0);
    acc[i] = a.act === 1 ? Math.max(s, 0) : s;
  }
  return toOut(acc, out);
}

/** Visits every (x position, dy position, weight position) triple the conv connects. */
function forEachTap(
  xShape: readonly number[],
  wShape: readonly number[],
  Ho: number,
  Wo: number,
  a: Geom,
  f: (xi: number, yi: number, wi: number) => void,
): void {
  const { N, C, H, W, O, Cg, kH, kW, Og } = sizes(xShape, wShape, a.groups);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / Og);
      for (let oh = 0; oh < Ho; oh++) {
        for (let ow = 0; ow < Wo; ow++) {
          const yi = ((n * O + o) * Ho + oh) * Wo + ow;
          for (let c = 0; c < Cg; c++) {
            const xc = (n * C + g * Cg + c) * H * W;
            const wc = (o * Cg + c) * kH * kW;
            for (let kh = 0; kh < kH; kh++) {
              const ih = oh * a.sh - a.pt + kh * a.dh;
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < kW; kw++) {
                const iw = ow * a.sw - a.pl + kw * a.dw;
                if (iw < 0 || iw >= W) continue;
                f(xc + ih * W + iw, yi, wc + kh * kW + kw);
              }
            }
          }
        }
      }
    }
  }
}

function convBwdInputCpu(dy: CpuArg, w: CpuArg, a: BwdInputAttrs, out: OutInfo): TypedArray {
  const acc = new Float64Array(a.inputShape.reduce((p, d) => p * d, 1));
  const D = dy.data;
  const Wt = w.data;
  forEachTap(a.inputShape, w.shape, dy.shape[2], dy.shape[3], a, (xi, yi, wi) => {
    acc[xi] += D[yi] * Wt[wi];
  });
  return toOut(acc, out);
}

function convBwdWeightCpu(x: CpuArg, dy: CpuArg, a: BwdWeightAttrs, out: OutInfo): TypedArray {
  const acc = new Float64Array(a.weightShape.reduce((p, d) => p * d, 1));
  const X = x.data;
  const D = dy.data;
  forEachTap(x.shape, a.weightShape, dy.shape[2], dy.shape[3], a, (xi, yi, wi) => {
    acc[wi] += D[yi] * X[xi];
  });
  return toOut(acc, out);
}

// ---------------------------------------------------------------------------------------------
// WebGPU

const WG = WG_1D;

/**
 * The geometry every conv kernel reads, declared once: the three kernels' `Params` structs are
 * generated from it (plus each kernel's own tail fields) and packed from {@link geomParams}.
 */
const CONV_GEOMETRY: readonly StructField[] = [
  ['N', 'u32'], ['C', 'u32'], ['H', 'u32'], ['W', 'u32'],
  ['O', 'u32'], ['Ho', 'u32'], ['Wo', 'u32'], ['Cg', 'u32'],
  ['Og', 'u32'], ['kH', 'u32'], ['kW', 'u32'], ['blocks', 'u32'],
  ['sh', 'i32'], ['sw', 'i32'], ['dh', 'i32'], ['dw', 'i32'],
  ['pt', 'i32'], ['pl', 'i32'],
];
const CONV2D_KERNEL = kernelFamily({ name: 'conv2d', source: conv2dWgsl, structs: { Params: [...CONV_GEOMETRY, ['NP', 'u32']] } });
const CONV2D_GRAD_INPUT = kernelFamily({ name: 'conv2d_grad_input', source: conv2dGradInputWgsl, structs: { Params: CONV_GEOMETRY } });
const CONV2D_GRAD_WEIGHT = kernelFamily({
  name: 'conv2d_grad_weight',
  source: conv2dGradWeightWgsl,
  preludes: ['grid'],
  structs: { Params: [...CONV_GEOMETRY, ['R', 'u32'], ['rowsPerSplit', 'u32']] },
});

/**
 * Register-block size for `n` channels: the next power of two, capped at `max` (6 → 8, 3 → 4,
 * 64 → 8). Powers of two keep the number of compiled kernel variants small (compiling one takes
 * ~1 s on lavapipe); the few padded rows cost less than an extra block, which re-reads the input.
 */
function blockOf(n: number, max = 8): number {
  let b = 1;
  while (b < n && b < max) b *= 2;
  return b;
}

function geomParams(x: readonly number[], w: readonly number[], Ho: number, Wo: number, a: Geom, blocks: number) {
  const { N, C, H, W, O, Cg, kH, kW, Og } = sizes(x, w, a.groups);
  return { N, C, H, W, O, Ho, Wo, Cg, Og, kH, kW, blocks, sh: a.sh, sw: a.sw, dh: a.dh, dw: a.dw, pt: a.pt, pl: a.pl };
}

function convForwardGpu(gpu: WebGPUBackend, x: GpuArg, w: GpuArg, b: GpuArg | undefined, a: FwdAttrs, out: GpuArg): void {
  const { N, Og } = sizes(x.shape, w.shape, a.groups);
  const OB = blockOf(Og);
  const PB = OB <= 4 ? 8 : 4;
  const oBlocks = Math.ceil(Og / OB);
  const NP = N * a.Ho * a.Wo;
  const biasBuf = b ? b.buffer : gpu.allocBuffer(4, 'conv2d');
  gpu.dispatch({
    kernel: CONV2D_KERNEL.variant({ consts: { OB, PB } }),
    constants: { HAS_BIAS: !!b, ACT: a.act },
    bindings: {
      x: x.buffer,
      w: w.buffer,
      bias: biasBuf,
      out: out.buffer,
      params: { ...geomParams(x.shape, w.shape, a.Ho, a.Wo, a, oBlocks), NP },
    },
    workgroups: [Math.ceil(NP / (WG * PB)), a.groups * oBlocks, 1],
  });
  if (!b) gpu.freeBuffer(biasBuf);
}

function convBwdInputGpu(gpu: WebGPUBackend, dy: GpuArg, w: GpuArg, a: BwdInputAttrs, out: GpuArg): void {
  const [N, , H, W] = a.inputShape;
  const { Cg } = sizes(a.inputShape, w.shape, a.groups);
  const CB = blockOf(Cg);
  const PB = CB <= 4 ? 8 : 4;
  const cBlocks = Math.ceil(Cg / CB);
  // Largest phase class: ceil(H/sh) × ceil(W/sw) pixels per image.
  const NPmax = N * Math.ceil(H / a.sh) * Math.ceil(W / a.sw);
  gpu.dispatch({
    kernel: CONV2D_GRAD_INPUT.variant({ consts: { CB, PB } }),
    bindings: {
      dy: dy.buffer,
      w: w.buffer,
      out: out.buffer,
      params: geomParams(a.inputShape, w.shape, dy.shape[2], dy.shape[3], a, cBlocks),
    },
    workgroups: [Math.ceil(NPmax / (WG * PB)), a.groups * cBlocks, a.sh * a.sw],
  });
}

/** Target number of workgroups for the split-K weight gradient (enough to fill a GPU; lavapipe needs far fewer). */
const DW_TARGET_WORKGROUPS = 128;
/** Scratch limit for the split-K partial sums. */
const DW_MAX_SCRATCH_BYTES = 64 << 20;

function convBwdWeightGpu(gpu: WebGPUBackend, x: GpuArg, dy: GpuArg, a: BwdWeightAttrs, out: GpuArg): void {
  const { N, O, Cg, kH, kW, Og } = sizes(x.shape, a.weightShape, a.groups);
  const [, , Ho, Wo] = dy.shape;
  const R = Cg * kH * kW;
  const OB = blockOf(Og);
  // Columns per invocation: 1..4, the largest one with the fewest padded columns (576 → 3).
  let RB = 1;
  for (let k = 2; k <= 4; k++) if (Math.ceil(R / (WG * k)) * k <= Math.ceil(R / (WG * RB)) * RB) RB = k;
  // Few columns (R ≤ 32·RB, e.g. a first layer's C·kH·kW = 25): split the workgroup's lanes
  // between PS pixel phases instead of leaving most of them idle (see the kernel).
  let PS = 1;
  while (PS < 4 && (WG / (2 * PS)) * RB >= R) PS *= 2;
  const oBlocks = Math.ceil(Og / OB);
  const rBlocks = Math.ceil(R / ((WG / PS) * RB));
  const rows = N * Ho;
  const total = O * R;
  // Split the N·Ho·Wo reduction so the grid has about DW_TARGET_WORKGROUPS workgroups, keeping at
  // least ~256 output pixels per split and the scratch buffer bounded.
  const base = rBlocks * a.groups * oBlocks;
  let splits = Math.ceil(DW_TARGET_WORKGROUPS / base);
  splits = Math.min(splits, Math.max(1, Math.floor((rows * Wo) / 256)), Math.max(1, Math.floor(DW_MAX_SCRATCH_BYTES / (4 * total))));
  splits = Math.max(1, Math.min(splits, rows));
  const rowsPerSplit = Math.max(1, Math.ceil(rows / splits));
  splits = rows === 0 ? 1 : Math.ceil(rows / rowsPerSplit);
  const target = splits > 1 ? gpu.allocBuffer(4 * splits * total, 'conv2dBackwardWeight') : out.buffer;
  const kernel = CONV2D_GRAD_WEIGHT.variant({ consts: { OB, RB, PS } });
  gpu.dispatch({
    kernel,
    bindings: {
      x: x.buffer,
      dy: dy.buffer,
      out: target,
      params: { ...geomParams(x.shape, a.weightShape, Ho, Wo, a, oBlocks), R, rowsPerSplit },
    },
    workgroups: [rBlocks, a.groups * oBlocks, splits],
  });
  if (splits > 1) {
    gpu.dispatch({
      kernel,
      entry: 'reduce_splits',
      bindings: { part: target, dwout: out.buffer, rparams: { total, splits } },
      workgroups: grid1D(total, WG),
    });
    gpu.freeBuffer(target);
  }
}

// ---------------------------------------------------------------------------------------------
// ops

const CONV2D = defineOp<FwdAttrs>({
  name: 'conv2d',
  splitRows: (inputs) => ({ inputs: inputs.map((_, i) => i === 0) }),
  infer(inputs, a) {
    const [x, w, b] = inputs;
    checkChannels('conv2d', x.shape, w.shape, a.groups);
    checkFloat('conv2d', ...inputs);
    const O = w.shape[0];
    if (b && (b.rank !== 1 || b.shape[0] !== O)) {
      throw new ShapeError(`conv2d: bias must have shape [${O}] (one per output channel of w ${fmtShape(w.shape)}), got ${fmtShape(b.shape)}`);
    }
    return { shape: [x.shape[0], O, a.Ho, a.Wo], dtype: inputs.map((t) => t.dtype).reduce(promote) };
  },
  cpu: ([x, w, b], a, out) => convForwardCpu(x, w, b, a, out),
  webgpu: (gpu, [x, w, b], a, out) => convForwardGpu(gpu, x, w, b, a, out),
  grad(dy, inputs, out, a) {
    const [x, w, b] = inputs;
    // Fused relu: the gradient flows only where the output is positive.
    const g = a.act === 1 ? reluGrad(out, dy) : dy;
    const geom = geomOf(a);
    return [
      x.requiresGrad ? bwdInputRaw(g, w, x.shape, geom) : null,
      w.requiresGrad ? bwdWeightRaw(x, g, w.shape, geom) : null,
      b && b.requiresGrad ? sum(g, [0, 2, 3]) : null,
    ];
  },
});

const CONV2D_BWD_INPUT = defineOp<BwdInputAttrs>({
  name: 'conv2dBackwardInput',
  splitRows: (_inputs, a) => ({ inputs: [true, false], attrs: (_start, count) => ({ ...a, inputShape: [count, ...a.inputShape.slice(1)] }) }),
  infer([dy, w], a) {
    const op = 'conv2dBackwardInput';
    checkChannels(op, a.inputShape, w.shape, a.groups);
    checkRank4(op, 'dy', dy.shape, '[N,O,Ho,Wo]');
    checkFloat(op, dy, w);
    if (dy.shape[0] !== a.inputShape[0] || dy.shape[1] !== w.shape[0]) {
      throw new ShapeError(`${op}: dy ${fmtShape(dy.shape)} does not match input ${fmtShape(a.inputShape)} and w ${fmtShape(w.shape)} (expected [${a.inputShape[0]},${w.shape[0]},Ho,Wo])`);
    }
    return { shape: [...a.inputShape], dtype: promote(dy.dtype, w.dtype) };
  },
  cpu: ([dy, w], a, out) => convBwdInputCpu(dy, w, a, out),
  webgpu: (gpu, [dy, w], a, out) => convBwdInputGpu(gpu, dy, w, a, out),
  grad(g, [dy, w], _out, a) {
    const geom = geomOf(a);
    return [
      dy.requiresGrad ? convRaw(g, w, null, geom, dy.shape[2], dy.shape[3], 0) : null,
      w.requiresGrad ? bwdWeightRaw(g, dy, w.shape, geom) : null,
    ];
  },
});

const CONV2D_BWD_WEIGHT = defineOp<BwdWeightAttrs>({
  name: 'conv2dBackwardWeight',
  // dW sums over the batch: each chunk of images yields a partial dW.
  splitRows: () => ({ inputs: [true, true], combine: 'sum' }),
  infer([x, dy], a) {
    const op = 'conv2dBackwardWeight';
    checkChannels(op, x.shape, a.weightShape, a.groups);
    checkRank4(op, 'dy', dy.shape, '[N,O,Ho,Wo]');
    checkFloat(op, x, dy);
    if (dy.shape[0] !== x.shape[0] || dy.shape[1] !== a.weightShape[0]) {
      throw new ShapeError(`${op}: dy ${fmtShape(dy.shape)} does not match x ${fmtShape(x.shape)} and weight shape ${fmtShape(a.weightShape)} (expected [${x.shape[0]},${a.weightShape[0]},Ho,Wo])`);
    }
    return { shape: [...a.weightShape], dtype: promote(x.dtype, dy.dtype) };
  },
  cpu: ([x, dy], a, out) => convBwdWeightCpu(x, dy, a, out),
  webgpu: (gpu, [x, dy], a, out) => convBwdWeightGpu(gpu, x, dy, a, out),
  grad(g, [x, dy], _out, a) {
    const geom = geomOf(a);
    return [
      x.requiresGrad ? bwdInputRaw(dy, g, x.shape, geom) : null,
      dy.requiresGrad ? convRaw(x, g, null, geom, dy.shape[2], dy.shape[3], 0) : null,
    ];
  },
});

function convRaw(x: Tensor, w: Tensor, bias: Tensor | null, geom: Geom, Ho: number, Wo: number, act: 0 | 1): Tensor {
  return runOp(CONV2D, bias ? [x, w, bias] : [x, w], { ...geom, Ho, Wo, act });
}

function bwdInputRaw(dy: Tensor, w: Tensor, inputShape: readonly number[], geom: Geom): Tensor {
  return runOp(CONV2D_BWD_INPUT, [dy, w], { ...geom, inputShape: [...inputShape] });
}

function bwdWeightRaw(x: Tensor, dy: Tensor, weightShape: readonly number[], geom: Geom): Tensor {
  return runOp(CONV2D_BWD_WEIGHT, [x, dy], { ...geom, weightShape: [...weightShape] });
}

// ---------------------------------------------------------------------------------------------
// public API

/**
 * 2-D convolution (cross-correlation, as in PyTorch): x [N,C,H,W], w [O,C/groups,kH,kW],
 * optional bias [O] → [N,O,Ho,Wo] with Ho = ⌊(H + 2p − d·(kH−1) − 1)/s⌋ + 1. An unbatched
 * x [C,H,W] gives [O,Ho,Wo] (run as a batch of one, as PyTorch).
 */
export function conv2d(x: Tensor, w: Tensor, bias?: Tensor | null, opts: Conv2dOpOptions = {}): Tensor {
  if (x.rank === 3) return unbatched(x, (xb) => conv2d(xb, w, bias, opts));
  const { geom, Ho, Wo } = resolveConv2d('conv2d', x.shape, w.shape, opts);
  return convRaw(x, w, bias ?? null, geom, Ho, Wo, 0);
}

/**
 * conv2d with the bias add and activation fused into the kernel's epilogue. Its backward masks
 * dy by (out > 0) for 'relu' and then uses the conv2d rules.
 */
export function conv2dBiasAct(x: Tensor, w: Tensor, bias: Tensor | null | undefined, opts: Conv2dOpOptions = {}, act: 'relu' | 'none' = 'relu'): Tensor {
  if (x.rank === 3) return unbatched(x, (xb) => conv2dBiasAct(xb, w, bias, opts, act));
  if (act !== 'relu' && act !== 'none') throw new ArgumentError(`conv2dBiasAct: act must be 'relu' or 'none', got ${JSON.stringify(act)}`);
  const { geom, Ho, Wo } = resolveConv2d('conv2dBiasAct', x.shape, w.shape, opts);
  return convRaw(x, w, bias ?? null, geom, Ho, Wo, act === 'relu' ? 1 : 0);
}

/**
 * The gradient of `conv2d(x, w, _, opts)` with respect to x, given dy (shape of conv2d's output)
 * and x's shape. Differentiable in dy and w.
 */
export function conv2dBackwardInput(dy: Tensor, w: Tensor, inputShape: readonly number[], opts: Conv2dOpOptions = {}): Tensor {
  const op = 'conv2dBackwardInput';
  const { geom, Ho, Wo } = resolveConv2d(op, inputShape, w.shape, opts);
  const want = [inputShape[0], w.shape[0], Ho, Wo];
  if (dy.rank !== 4 || dy.shape.some((d, i) => d !== want[i])) {
    throw new ShapeError(`${op}: dy must have conv2d's output shape ${fmtShape(want)} for input ${fmtShape(inputShape)} and w ${fmtShape(w.shape)}, got ${fmtShape(dy.shape)}`);
  }
  return bwdInputRaw(dy, w, inputShape, geom);
}

/**
 * The gradient of `conv2d(x, w, _, opts)` with respect to w, given x, dy (shape of conv2d's
 * output) and w's shape. Differentiable in x and dy.
 */
export function conv2dBackwardWeight(x: Tensor, dy: Tensor, weightShape: readonly number[], opts: Conv2dOpOptions = {}): Tensor {
  const op = 'conv2dBackwardWeight';
  const { geom, Ho, Wo } = resolveConv2d(op, x.shape, weightShape, opts);
  const want = [x.shape[0], weightShape[0], Ho, Wo];
  if (dy.rank !== 4 || dy.shape.some((d, i) => d !== want[i])) {
    throw new ShapeError(`${op}: dy must have conv2d's output shape ${fmtShape(want)} for x ${fmtShape(x.shape)} and weight ${fmtShape(weightShape)}, got ${fmtShape(dy.shape)}`);
  }
  return bwdWeightRaw(x, dy, weightShape, geom);
}

/**
 * Transposed 2-D convolution (PyTorch's conv_transpose2d): x [N,Cin,H,W], w [Cin,Cout/groups,kH,kW],
 * optional bias [Cout] → [N,Cout,Hout,Wout], Hout = (H−1)·s − 2p + d·(kH−1) + outputPadding + 1.
 * It is the input-gradient of the conv2d that maps [N,Cout,Hout,Wout] to x's shape. An unbatched
 * x [Cin,H,W] gives [Cout,Hout,Wout].
 */
export function convTranspose2d(x: Tensor, w: Tensor, bias?: Tensor | null, opts: ConvTranspose2dOpOptions = {}): Tensor {
  if (x.rank === 3) return unbatched(x, (xb) => convTranspose2d(xb, w, bias, opts));
  const op = 'convTranspose2d';
  const groups = checkGroups(op, opts.groups);
  checkRank4(op, 'the input x', x.shape, '[N,Cin,H,W]');
  checkRank4(op, 'the weight w', w.shape, '[Cin,Cout/groups,kH,kW]');
  const [sh, sw] = intPair(op, 'stride', opts.stride, 1, 1);
  const [dh, dw] = intPair(op, 'dilation', opts.dilation, 1, 1);
  const [ph, pw] = intPair(op, 'padding', opts.padding, 0, 0);
  const [oph, opw] = intPair(op, 'outputPadding', opts.outputPadding, 0, 0);
  if (oph >= Math.max(sh, dh) || opw >= Math.max(sw, dw)) {
    throw new ArgumentError(`${op}: outputPadding [${oph},${opw}] must be smaller than stride [${sh},${sw}] or dilation [${dh},${dw}] in each dim`);
  }
  const [N, Cin, H, W] = x.shape;
  const [wi, Cog, kH, kW] = w.shape;
  if (Cin % groups !== 0) throw new ShapeError(`${op}: groups=${groups} does not divide the ${Cin} input channels of x ${fmtShape(x.shape)}`);
  if (wi !== Cin) {
    throw new ShapeError(`${op}: channel mismatch: x ${fmtShape(x.shape)} has Cin=${Cin} channels but w ${fmtShape(w.shape)} has ${wi} (expected w [Cin,Cout/groups,kH,kW])`);
  }
  if (kH < 1 || kW < 1) throw new ShapeError(`${op}: the kernel must be at least 1×1, got w ${fmtShape(w.shape)}`);
  const Cout = Cog * groups;
  const Hout = (H - 1) * sh - 2 * ph + dh * (kH - 1) + oph + 1;
  const Wout = (W - 1) * sw - 2 * pw + dw * (kW - 1) + opw + 1;
  if (Hout < 1 || Wout < 1) {
    throw new ShapeError(`${op}: the output would be ${Hout}×${Wout} for x ${fmtShape(x.shape)}, w ${fmtShape(w.shape)}, stride [${sh},${sw}], padding [${ph},${pw}]: padding is too large`);
  }
  checkFloat(op, x, w);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== Cout)) {
    throw new ShapeError(`${op}: bias must have shape [${Cout}] (Cout = ${Cog}×groups=${groups} for w ${fmtShape(w.shape)}), got ${fmtShape(bias.shape)}`);
  }
  const geom: Geom = { groups, sh, sw, dh, dw, pt: ph, pl: pw };
  return composite(() => {
    const y = bwdInputRaw(x, w, [N, Cout, Hout, Wout], geom);
    return bias ? add(y, reshape(bias, [1, Cout, 1, 1])) : y;
  });
}
