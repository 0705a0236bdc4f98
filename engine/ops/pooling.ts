import poolWgsl from '../../kernels/pool.wgsl';
import { type DType, allocHost, isFloat } from '../dtype.js';
import { ArgumentError, DTypeError, ShapeError, fmtShape } from '../errors.js';
import { type CpuArg, type OpDef, defineOp } from '../op.js';

/** Every pooling operand is [N, C, ...]: all are chunked along N with the output. */
const splitAllRows = (inputs: readonly unknown[]) => ({ inputs: inputs.map(() => true) });
import { sizeOf } from '../shape.js';
import { type Tensor, fromHost, runOp } from '../tensor.js';
import { type WebGPUBackend, grid1D } from '../webgpu/webgpu-backend.js';
import { kernelFamily } from '../webgpu/kernel-source.js';
import { composite } from './autograd.js';
import { mul } from './binary.js';
import { mean } from './reduce.js';
import { unbatched, unbatchedWithIndices } from './unbatched.js';

// 2-D pooling and bilinear upsampling over NCHW tensors. Every backward rule is itself an op
// whose gradient is expressed with the forward ops, so second derivatives work. All WebGPU
// backward kernels are deterministic gathers (no atomics); see kernels/pool.wgsl.

/** Pooling geometry (one set of attrs shared by every pooling op). */
interface Geom {
  H: number;
  W: number;
  OH: number;
  OW: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  dh: number;
  dw: number;
  includePad: boolean;
  adaptive: boolean;
  alignCorners: boolean;
  scaleH: number;
  scaleW: number;
}

const POOL_KERNEL = kernelFamily({ name: 'pool', source: poolWgsl, preludes: ['grid', 'ieee'] }).variant();

function poolDispatch(gpu: WebGPUBackend, entry: string, g: Geom, n: number, bindings: Record<string, GPUBuffer>, constants?: Record<string, boolean>): void {
  gpu.dispatch({
    kernel: POOL_KERNEL,
    entry,
    constants: g.adaptive ? { ADAPTIVE: true, ...constants } : constants,
    bindings: {
      ...bindings,
      params: {
        n, H: g.H, W: g.W, OH: g.OH, OW: g.OW, kh: g.kh, kw: g.kw, sh: g.sh, sw: g.sw, ph: g.ph, pw: g.pw, dh: g.dh, dw: g.dw,
        include_pad: g.includePad ? 1 : 0, align_corners: g.alignCorners ? 1 : 0, scale_h: g.scaleH, scale_w: g.scaleW,
      },
    },
    workgroups: grid1D(n),
  });
}

const planes = (shape: readonly number[]) => shape[0] * shape[1];
const outShapeOf = (x: { shape: readonly number[] }, g: Geom) => [x.shape[0], x.shape[1], g.OH, g.OW];
const inShapeOf = (dy: { shape: readonly number[] }, g: Geom) => [dy.shape[0], dy.shape[1], g.H, g.W];

// ---- max pooling ----
const MAX_ARGMAX = defineOp<Geom>({
  name: 'maxPool2dIndices',
  splitRows: splitAllRows,
  notDifferentiable: true, // integer argmax positions (maxPool2dGather carries the gradient)
  infer: ([x], g) => ({ shape: outShapeOf(x, g), dtype: 'int32' }),
  cpu([x], g, out) {
    const r = allocHost('int32', sizeOf(out.shape));
    const P = planes(x.shape);
    let i = 0;
    for (let p = 0; p < P; p++) {
      const base = p * g.H * g.W;
      for (let oh = 0; oh < g.OH; oh++) {
        for (let ow = 0; ow < g.OW; ow++) {
          let bi = -1;
          let bv = 0;
          for (let a = 0; a < g.kh; a++) {
            const h = oh * g.sh - g.ph + a * g.dh;
            if (h < 0 || h >= g.H) continue;
            for (let b = 0; b < g.kw; b++) {
              const w = ow * g.sw - g.pw + b * g.dw;
              if (w < 0 || w >= g.W) continue;
              const v = x.data[base + h * g.W + w];
              // A NaN wins (the first in window order): NaN propagates, as in PyTorch.
              if (bi < 0 || (!Number.isNaN(bv) && (v > bv || Number.isNaN(v)))) {
                bv = v;
                bi = h * g.W + w;
              }
            }
          }
          r[i++] = bi;
        }
      }
    }
    return r;
  },
  webgpu: (gpu, [x], g, out) => poolDispatch(gpu, 'max_argmax', g, sizeOf(out.shape), { x: x.buffer, out_idx: out.buffer }),
});

const MAX_GATHER: OpDef<Geom> = defineOp<Geom>({
  name: 'maxPool2dGather',
  splitRows: splitAllRows,
  infer: ([x], g) => ({ shape: outShapeOf(x, g), dtype: x.dtype }),
  cpu([x, idx], g, out) {
    const r = allocHost(out.dtype, sizeOf(out.shape));
    const per = g.OH * g.OW;
    for (let i = 0; i < r.length; i++) {
      const q = idx.data[i];
      r[i] = q >= 0 ? x.data[Math.floor(i / per) * g.H * g.W + q] : 0;
    }
    return r;
  },
  webgpu: (gpu, [x, idx], g, out) => poolDispatch(gpu, 'plane_gather', g, sizeOf(out.shape), { x: x.buffer, idx: idx.buffer, out: out.buffer }),
  grad: (dy, [, idx], _o, g) => [runOp(MAX_BACKWARD, [dy, idx], g), null],
});

const MAX_BACKWARD: OpDef<Geom> = defineOp<Geom>({
  name: 'maxPool2dBackward',
  splitRows: splitAllRows,
  infer: ([dy], g) => ({ shape: inShapeOf(dy, g), dtype: dy.dtype }),
  cpu([dy, idx], g, out) {
    const r = allocHost(out.dtype, sizeOf(out.shape));
    const per = g.OH * g.OW;
    for (let i = 0; i < dy.data.length; i++) {
      const q = idx.data[i];
      if (q >= 0) r[Math.floor(i / per) * g.H * g.W + q] += dy.data[i];
    }
    return r;
  },
  webgpu: (gpu, [dy, idx], g, out) => {
    // Non-overlapping windows (the usual k = stride, no padding): a single candidate window per input.
    const disjoint = !g.adaptive && g.kh === g.sh && g.kw === g.sw && g.ph === 0 && g.pw === 0 && g.dh === 1 && g.dw === 1;
    poolDispatch(gpu, 'max_backward', g, sizeOf(out.shape), { x: dy.buffer, idx: idx.buffer, out: out.buffer }, disjoint ? { DISJOINT: true } : undefined);
  },
  grad: (ddy, [, idx], _o, g) => [runOp(MAX_GATHER, [ddy, idx], g), null],
});

// ---- average pooling (fixed windows and adaptive bins share the ops) ----
/** [start, end) of output position o's window along one axis (clamped) and its count-include-pad size. */
function window1(o: number, size: number, osize: number, k: number, s: number, p: number, adaptive: boolean): [number, number, number] {
  if (adaptive) {
    const st = Math.floor((o * size) / osize);
    const en = Math.ceil(((o + 1) * size) / osize);
    return [st, en, en - st];
  }
  const st = o * s - p;
  const en = Math.min(st + k, size + p);
  return [Math.max(st, 0), Math.min(en, size), en - st];
}

function divisor(wh: [number, number, number], ww: [number, number, number], g: Geom): number {
  return g.includePad && !g.adaptive ? wh[2] * ww[2] : (wh[1] - wh[0]) * (ww[1] - ww[0]);
}

function avgCpu(src: CpuArg, g: Geom, outDType: DType, forward: boolean) {
  const P = planes(src.shape);
  const r = allocHost(outDType, P * (forward ? g.OH * g.OW : g.H * g.W));
  for (let p = 0; p < P; p++) {
    const ib = p * g.H * g.W;
    const ob = p * g.OH * g.OW;
    for (let oh = 0; oh < g.OH; oh++) {
      const wh = window1(oh, g.H, g.OH, g.kh, g.sh, g.ph, g.adaptive);
      for (let ow = 0; ow < g.OW; ow++) {
        const ww = window1(ow, g.W, g.OW, g.kw, g.sw, g.pw, g.adaptive);
        const d = divisor(wh, ww, g);
        if (d <= 0) continue;
        if (forward) {
          let acc = 0;
          for (let h = wh[0]; h < wh[1]; h++) for (let w = ww[0]; w < ww[1]; w++) acc += src.data[ib + h * g.W + w];
          r[ob + oh * g.OW + ow] = acc / d;
        } else {
          const v = src.data[ob + oh * g.OW + ow] / d;
          for (let h = wh[0]; h < wh[1]; h++) for (let w = ww[0]; w < ww[1]; w++) r[ib + h * g.W + w] += v;
        }
      }
    }
  }
  return r;
}

function avgOps(name: string) {
  const fwd: OpDef<Geom> = defineOp<Geom>({
    name,
    splitRows: splitAllRows,
    infer: ([x], g) => ({ shape: outShapeOf(x, g), dtype: x.dtype }),
    cpu: ([x], g, out) => avgCpu(x, g, out.dtype, true),
    webgpu: (gpu, [x], g, out) => poolDispatch(gpu, 'avg_fwd', g, sizeOf(out.shape), { x: x.buffer, out: out.buffer }),
    grad: (dy, _x, _o, g) => [runOp(bwd, [dy], g)],
  });
  const bwd: OpDef<Geom> = defineOp<Geom>({
    name: `${name}Backward`,
    splitRows: splitAllRows,
    infer: ([dy], g) => ({ shape: inShapeOf(dy, g), dtype: dy.dtype }),
    cpu: ([dy], g, out) => avgCpu(dy, g, out.dtype, false),
    webgpu: (gpu, [dy], g, out) => poolDispatch(gpu, 'avg_bwd', g, sizeOf(out.shape), { x: dy.buffer, out: out.buffer }),
    grad: (ddy, _x, _o, g) => [runOp(fwd, [ddy], g)],
  });
  return fwd;
}
const AVG_POOL = avgOps('avgPool2d');
const ADAPTIVE_AVG_POOL = avgOps('adaptiveAvgPool2d');

// ---- bilinear upsampling ----
interface Taps {
  i0: number;
  i1: number;
  l0: number;
  l1: number;
}
/** PyTorch area_pixel_compute_source_index and the two taps (CPU; mirrors lerp_at in pool.wgsl). */
function lerpAt(o: number, scale: number, size: number, alignCorners: boolean): Taps {
  const src = alignCorners ? scale * o : Math.max(scale * (o + 0.5) - 0.5, 0);
  const i0 = Math.min(Math.floor(src), size - 1);
  const l1 = src - i0;
  return { i0, i1: i0 + (i0 < size - 1 ? 1 : 0), l0: 1 - l1, l1 };
}

function bilinearCpu(src: CpuArg, g: Geom, outDType: DType, forward: boolean) {
  const P = planes(src.shape);
  const r = allocHost(outDType, P * (forward ? g.OH * g.OW : g.H * g.W));
  const th = Array.from({ length: g.OH }, (_, o) => lerpAt(o, g.scaleH, g.H, g.alignCorners));
  const tw = Array.from({ length: g.OW }, (_, o) => lerpAt(o, g.scaleW, g.W, g.alignCorners));
  for (let p = 0; p < P; p++) {
    const ib = p * g.H * g.W;
    const ob = p * g.OH * g.OW;
    for (let oh = 0; oh < g.OH; oh++) {
      const a = th[oh];
      const r0 = ib + a.i0 * g.W;
      const r1 = ib + a.i1 * g.W;
      for (let ow = 0; ow < g.OW; ow++) {
        const b = tw[ow];
        if (forward) {
          const d = src.data;
          r[ob + oh * g.OW + ow] = a.l0 * (b.l0 * d[r0 + b.i0] + b.l1 * d[r0 + b.i1]) + a.l1 * (b.l0 * d[r1 + b.i0] + b.l1 * d[r1 + b.i1]);
        } else {
          const v = src.data[ob + oh * g.OW + ow];
          r[r0 + b.i0] += a.l0 * b.l0 * v;
          r[r0 + b.i1] += a.l0 * b.l1 * v;
          r[r1 + b.i0] += a.l1 * b.l0 * v;
          r[r1 + b.i1] += a.l1 * b.l1 * v;
        }
      }
    }
  }
  return r;
}

const UPSAMPLE: OpDef<Geom> = defineOp<Geom>({
  name: 'upsampleBilinear2d',
  splitRows: splitAllRows,
  infer: ([x], g) => ({ shape: outShapeOf(x, g), dtype: x.dtype }),
  cpu: ([x], g, out) => bilinearCpu(x, g, out.dtype, true),
  webgpu: (gpu, [x], g, out) => poolDispatch(gpu, 'bilinear_fwd', g, sizeOf(out.shape), { x: x.buffer, out: out.buffer }),
  grad: (dy, _x, _o, g) => [runOp(UPSAMPLE_BACKWARD, [dy], g)],
});
const UPSAMPLE_BACKWARD: OpDef<Geom> = defineOp<Geom>({
  name: 'upsampleBilinear2dBackward',
  splitRows: splitAllRows,
  infer: ([dy], g) => ({ shape: inShapeOf(dy, g), dtype: dy.dtype }),
  cpu: ([dy], g, out) => bilinearCpu(dy, g, out.dtype, false),
  webgpu: (gpu, [dy], g, out) => poolDispatch(gpu, 'bilinear_bwd', g, sizeOf(out.shape), { x: dy.buffer, out: out.buffer }),
  grad: (ddy, _x, _o, g) => [runOp(UPSAMPLE, [ddy], g)],
});

// ---- argument handling ----
type Pair = number | readonly [number, number];

function pair(op: string, what: string, v: Pair, min: number): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if ((typeof v !== 'number' && (!Array.isArray(v) || v.length !== 2)) || !p.every((n) => Number.isInteger(n) && n >= min)) {
    throw new ArgumentError(`${op}: ${what} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`);
  }
  return p;
}

function checkInput(op: string, x: Tensor): void {
  if (x.rank !== 4) throw new ShapeError(`${op}: expected an NCHW tensor of rank 4, got ${fmtShape(x.shape)}`);
  if (!isFloat(x.dtype)) throw new DTypeError(`${op}: expected a float tensor, got ${x.dtype} ${fmtShape(x.shape)}`);
}

const BASE: Omit<Geom, 'H' | 'W' | 'OH' | 'OW'> = {
  kh: 1, kw: 1, sh: 1, sw: 1, ph: 0, pw: 0, dh: 1, dw: 1, includePad: true, adaptive: false, alignCorners: false, scaleH: 0, scaleW: 0,
};

function windowGeom(op: string, x: Tensor, kernelSize: Pair, stride: Pair | undefined, padding: Pair, dilation: Pair, ceilMode = false): Geom {
  checkInput(op, x);
  const [kh, kw] = pair(op, 'kernelSize', kernelSize, 1);
  const [sh, sw] = pair(op, 'stride', stride ?? kernelSize, 1);
  const [ph, pw] = pair(op, 'padding', padding, 0);
  const [dh, dw] = pair(op, 'dilation', dilation, 1);
  const [H, W] = [x.shape[2], x.shape[3]];
  const eh = dh * (kh - 1) + 1;
  const ew = dw * (kw - 1) + 1;
  if (2 * ph > eh || 2 * pw > ew) {
    throw new ArgumentError(`${op}: padding [${ph},${pw}] must be at most half the (dilated) kernel size [${eh},${ew}]`);
  }
  if (typeof ceilMode !== 'boolean') throw new ArgumentError(`${op}: ceilMode must be a boolean, got ${JSON.stringify(ceilMode)}`);
  const OH = outSize(H, eh, sh, ph, ceilMode);
  const OW = outSize(W, ew, sw, pw, ceilMode);
  if (OH < 1 || OW < 1) {
    throw new ShapeError(`${op}: input ${fmtShape(x.shape)} is smaller than the (dilated, padded) kernel [${eh},${ew}] with padding [${ph},${pw}] (output would be ${OH}x${OW})`);
  }
  return { ...BASE, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw };
}

/**
 * Output length along one axis (PyTorch pooling_output_shape): ⌊(n + 2p − e)/s⌋ + 1, or with
 * ceilMode ⌈(n + 2p − e)/s⌉ + 1 minus one if the last window would start past the input and its
 * left padding. Windows reaching past the input (and its padding) just see fewer elements: the
 * kernels already clamp every window to the input, as PyTorch does.
 */
function outSize(n: number, e: number, s: number, p: number, ceilMode: boolean): number {
  let o = Math.floor((n + 2 * p - e + (ceilMode ? s - 1 : 0)) / s) + 1;
  if (ceilMode && (o - 1) * s >= n + p) o--;
  return o;
}

export interface MaxPool2dOptions {
  kernelSize: Pair;
  /** Default: kernelSize. */
  stride?: Pair;
  /** Implicit −∞ padding (at most half the dilated kernel). Default 0. */
  padding?: Pair;
  dilation?: Pair;
  /**
   * Output size with ⌈⌉ instead of ⌊⌋ (PyTorch ceil_mode): a last, partial window covers the
   * remaining rows/cols (out-of-range taps are ignored). Default false.
   */
  ceilMode?: boolean;
}

export interface AvgPool2dOptions {
  kernelSize: Pair;
  /** Default: kernelSize. */
  stride?: Pair;
  /** Zero padding (at most half the kernel). Default 0. */
  padding?: Pair;
  /**
   * Count padded zeros in the divisor (PyTorch default true); false divides by the number of
   * input elements in the window. As PyTorch, the divisor never counts the part of a ceil-mode
   * window that lies beyond the padding.
   */
  countIncludePad?: boolean;
  /** PyTorch ceil_mode (see {@link MaxPool2dOptions.ceilMode}). Default false. */
  ceilMode?: boolean;
  /** Divide every window sum by this non-zero integer instead (PyTorch divisor_override; countIncludePad is then ignored). */
  divisorOverride?: number;
}

/**
 * 2-D max pooling over an NCHW tensor, or an unbatched [C, H, W] one (PyTorch `max_pool2d`,
 * including `ceilMode`). Ties go to the first maximum in window order; a window holding a NaN gives
 * NaN (the first NaN's index), as PyTorch.
 * Gradient flows to the winning input (deterministic gather on WebGPU); second derivatives work.
 * A window that holds only padding (possible with large dilation) gives 0.
 */
export function maxPool2d(x: Tensor, opts: MaxPool2dOptions): Tensor {
  if (x.rank === 3) return unbatched(x, (xb) => maxPool2d(xb, opts));
  const g = windowGeom('maxPool2d', x, opts.kernelSize, opts.stride, opts.padding ?? 0, opts.dilation ?? 1, opts.ceilMode);
  return composite(() => runOp(MAX_GATHER, [x, runOp(MAX_ARGMAX, [x], g)], g));
}

/**
 * Max pooling that also returns the argmax per output (int32, flat h·W + w within each input
 * plane, as PyTorch's `return_indices`). `values` records `indices` in its graph: keep
 * `indices` alive while `values` may still be differentiated. Accepts [C, H, W] like maxPool2d.
 */
export function maxPool2dWithIndices(x: Tensor, opts: MaxPool2dOptions): { values: Tensor; indices: Tensor } {
  if (x.rank === 3) return unbatchedWithIndices(x, (xb) => maxPool2dWithIndices(xb, opts));
  const g = windowGeom('maxPool2d', x, opts.kernelSize, opts.stride, opts.padding ?? 0, opts.dilation ?? 1, opts.ceilMode);
  const indices = runOp(MAX_ARGMAX, [x], g);
  return { values: runOp(MAX_GATHER, [x, indices], g), indices };
}

/**
 * 2-D average pooling over an NCHW tensor, or an unbatched [C, H, W] one (PyTorch `avg_pool2d`
 * with `countIncludePad`, `ceilMode` and `divisorOverride`).
 */
export function avgPool2d(x: Tensor, opts: AvgPool2dOptions): Tensor {
  if (x.rank === 3) return unbatched(x, (xb) => avgPool2d(xb, opts));
  const g = windowGeom('avgPool2d', x, opts.kernelSize, opts.stride, opts.padding ?? 0, 1, opts.ceilMode);
  const d = opts.divisorOverride;
  if (d === undefined) return runOp(AVG_POOL, [x], { ...g, includePad: opts.countIncludePad ?? true });
  if (!Number.isInteger(d) || d === 0) throw new ArgumentError(`avgPool2d: divisorOverride must be a non-zero integer, got ${d}`);
  // Window sum = the count-include-pad average times its (host-computed) divisor.
  const incl = (o: number, n: number, k: number, st: number, p: number) => Math.min(o * st - p + k, n + p) - (o * st - p);
  const f = new Float64Array(g.OH * g.OW);
  for (let oh = 0; oh < g.OH; oh++) for (let ow = 0; ow < g.OW; ow++) f[oh * g.OW + ow] = (incl(oh, g.H, g.kh, g.sh, g.ph) * incl(ow, g.W, g.kw, g.sw, g.pw)) / d;
  return composite(() => mul(runOp(AVG_POOL, [x], { ...g, includePad: true }), fromHost(f, [g.OH, g.OW], x.dtype, x.backend)));
}

/**
 * Adaptive average pooling to `[outH, outW]` (PyTorch bins: start = floor(i·H/outH),
 * end = ceil((i+1)·H/outH); bins may overlap). x is [N, C, H, W] or unbatched [C, H, W].
 */
export function adaptiveAvgPool2d(x: Tensor, outputSize: Pair): Tensor {
  if (x.rank === 3) return unbatched(x, (xb) => adaptiveAvgPool2d(xb, outputSize));
  checkInput('adaptiveAvgPool2d', x);
  const [OH, OW] = pair('adaptiveAvgPool2d', 'outputSize', outputSize, 1);
  const [H, W] = [x.shape[2], x.shape[3]];
  if (H === 0 || W === 0) throw new ShapeError(`adaptiveAvgPool2d: input ${fmtShape(x.shape)} has an empty spatial dim`);
  return runOp(ADAPTIVE_AVG_POOL, [x], { ...BASE, H, W, OH, OW, adaptive: true });
}

/** Mean over H and W of an NCHW tensor: [N, C] (or [N, C, 1, 1] with keepDims); [C, H, W] gives [C] ([C, 1, 1]). */
export function globalAvgPool2d(x: Tensor, keepDims = false): Tensor {
  if (x.rank === 3) return unbatched(x, (xb) => globalAvgPool2d(xb, keepDims));
  checkInput('globalAvgPool2d', x);
  return mean(x, [2, 3], keepDims);
}

export interface UpsampleBilinearOptions {
  /** Align the corner pixels' centres (PyTorch align_corners). Default false (half-pixel centres). */
  alignCorners?: boolean;
  /**
   * The scale factor the output size came from (out = ⌊in·scale⌋). Without alignCorners PyTorch
   * then maps output to input coordinates with 1/scale rather than in/out (they differ when
   * in·scale is not an integer); pass it to get exactly `interpolate(x, scale_factor=...)`.
   */
  scaleFactor?: Pair;
}

/**
 * Bilinear resize of an NCHW tensor to `[outH, outW]` (PyTorch `interpolate(mode='bilinear')`
 * with an explicit size: scale = in/out, or (in−1)/(out−1) with alignCorners). The gradient is
 * the transpose (a deterministic gather of the four tap weights on WebGPU). x is [N, C, H, W] or
 * unbatched [C, H, W].
 */
export function upsampleBilinear2d(x: Tensor, outputSize: Pair, opts: UpsampleBilinearOptions = {}): Tensor {
  if (x.rank === 3) return unbatched(x, (xb) => upsampleBilinear2d(xb, outputSize, opts));
  checkInput('upsampleBilinear2d', x);
  const [OH, OW] = pair('upsampleBilinear2d', 'outputSize', outputSize, 1);
  const [H, W] = [x.shape[2], x.shape[3]];
  if (H === 0 || W === 0) throw new ShapeError(`upsampleBilinear2d: input ${fmtShape(x.shape)} has an empty spatial dim`);
  const align = opts.alignCorners ?? false;
  let sf: [number, number] | null = null;
  if (opts.scaleFactor !== undefined) {
    sf = typeof opts.scaleFactor === 'number' ? [opts.scaleFactor, opts.scaleFactor] : [opts.scaleFactor[0], opts.scaleFactor[1]];
    if (!sf.every((v) => Number.isFinite(v) && v > 0)) throw new ArgumentError(`upsampleBilinear2d: scaleFactor must be positive and finite, got ${JSON.stringify(opts.scaleFactor)}`);
  }
  const scale = (i: number, o: number, s: number | undefined) => Math.fround(align ? (o > 1 ? (i - 1) / (o - 1) : 0) : s !== undefined ? 1 / s : i / o);
  return runOp(UPSAMPLE, [x], { ...BASE, H, W, OH, OW, alignCorners: align, scaleH: scale(H, OH, sf?.[0]), scaleW: scale(W, OW, sf?.[1]) });
}
