import optimWgsl from '../../kernels/optim.wgsl';
import { type DType, type TypedArray, allocHost } from '../dtype.js';
import { DTypeError, ShapeError, fmtShape } from '../errors.js';
import { type GpuArg, defineMultiOp } from '../op.js';
import type { OutInfo } from '../backend.js';
import { type Tensor, runOpMulti } from '../tensor.js';
import { type WebGPUBackend, grid1D } from '../webgpu/webgpu-backend.js';
import { type StructField, kernelFamily } from '../webgpu/kernel-source.js';
import { detach } from './autograd.js';
import { maximum } from './binary.js';

// Fused optimiser steps as ordinary table ops with several outputs: one op computes the new
// parameter and the new optimiser state (Adam: m, v; SGD: momentum buffer) — one dispatch
// instead of ~20 elementwise ops. Each optimiser's arithmetic is written once per backend kind:
// the CPU reference below and the WGSL in kernels/optim.wgsl. They are not differentiable
// (optimisers run under noGrad).
//
// The CPU reference rounds every intermediate to the tensor's dtype (float32: Math.fround) and
// uses the dtype's rounding of each scalar operand, i.e. exactly what the op-by-op update
// (p − lr·m/(√v/√bc₂ + eps)/bc₁ written with `add`/`mul`/... and scalar tensors) computes, so
// the two are bit-identical (test/optim-fused.test.ts). The WGSL performs the same f32
// operations in the same order.

/** Hyperparameters of SGD (torch.optim.SGD names and defaults, see nn/optim/sgd.ts). */
export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

/** Hyperparameters of Adam/AdamW (torch.optim.Adam names, see nn/optim/adam.ts). */
export interface AdamOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
}

export interface FusedAdamResult {
  param: Tensor;
  expAvg: Tensor;
  expAvgSq: Tensor;
  /** AMSGrad only: max(vmax, v) (a view of expAvgSq on the first step), else null. */
  maxExpAvgSq: Tensor | null;
}

export interface FusedSgdResult {
  param: Tensor;
  /** The new momentum buffer (null without momentum). */
  momentumBuffer: Tensor | null;
}

// ---- the scalars each kernel reads (one list: the uniform struct is generated from it) ----
const ADAM_SCALARS = ['b1', 'omb1', 'b2', 'omb2', 'sqrt_bc2', 'eps', 'lr_bc1', 'wd', 'decay'] as const;
const SGD_SCALARS = ['lr', 'momentum', 'omd', 'wd'] as const;
type AdamScalars = Record<(typeof ADAM_SCALARS)[number], number>;
type SgdScalars = Record<(typeof SGD_SCALARS)[number], number>;
const params = (names: readonly string[]): StructField[] => [['n', 'u32'], ...names.map((k): StructField => [k, 'f32'])];

const OPTIM = kernelFamily({
  name: 'optim',
  source: optimWgsl,
  preludes: ['grid', 'ieee'],
  structs: { AdamParams: params(ADAM_SCALARS), SgdParams: params(SGD_SCALARS) },
}).variant();

/** The scalar operands of one Adam step as JS numbers (rounded to the dtype where used). */
function adamScalars(h: AdamOptions, step: number): AdamScalars {
  const [beta1, beta2] = h.betas;
  const bc1 = 1 - Math.pow(beta1, step);
  const bc2 = 1 - Math.pow(beta2, step);
  return {
    b1: beta1, omb1: 1 - beta1, b2: beta2, omb2: 1 - beta2, sqrt_bc2: Math.sqrt(bc2), eps: h.eps, lr_bc1: h.lr / bc1,
    wd: h.weightDecay, decay: 1 - h.lr * h.weightDecay,
  };
}

const sgdScalars = (h: SGDOptions): SgdScalars => ({ lr: h.lr, momentum: h.momentum, omd: 1 - h.dampening, wd: h.weightDecay });

/** Rounding of a JS double to the storage precision of `dtype` (what storing into its array does). */
const rounder = (dtype: DType): ((x: number) => number) => (dtype === 'float32' ? Math.fround : (x: number) => x);

function checkInputs(op: string, [p, ...others]: readonly Tensor[]): OutInfo {
  if (p.dtype !== 'float32' && p.dtype !== 'float64') throw new DTypeError(`${op}: parameters must be float, got ${p.dtype} ${fmtShape(p.shape)}`);
  for (const t of others) {
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      throw new ShapeError(`${op}: ${fmtShape(t.shape)} does not match the parameter ${fmtShape(p.shape)}`);
    }
    if (t.dtype !== p.dtype) throw new DTypeError(`${op}: ${t.dtype} ${fmtShape(t.shape)} does not match the parameter's ${p.dtype}`);
  }
  return { shape: [...p.shape], dtype: p.dtype };
}

// ---- Adam / AdamW ----
interface AdamAttrs {
  h: AdamOptions;
  /**
   * 1-based step count (bias corrections); a function is read when the kernel's uniforms are
   * packed, so a replayed step (engine/capture.ts) sees the optimiser's current count.
   */
  step: number | (() => number);
  /** Decoupled weight decay (AdamW) instead of L2 added to the gradient (Adam). */
  decoupled: boolean;
  /** Inputs: [p, grad] on the first step, [p, grad, m, v] after, plus vmax with `useMax`. */
  first: boolean;
  useMax: boolean;
}

const wdMode = (a: AdamAttrs) => (a.h.weightDecay === 0 ? 0 : a.decoupled ? 2 : 1);

const ADAM_STEP = defineMultiOp<AdamAttrs>({
  name: 'adamStep',
  infer(inputs) {
    const o = checkInputs('adamStep', inputs);
    return [o, o, o];
  },
  cpu([p, g, m0, v0, vmax0], a, [out]) {
    const r = rounder(out.dtype);
    const s = adamScalars(a.h, typeof a.step === 'function' ? a.step() : a.step);
    const B1 = r(s.b1), OMB1 = r(s.omb1), B2 = r(s.b2), OMB2 = r(s.omb2), SQ = r(s.sqrt_bc2), EPS = r(s.eps), LR = r(s.lr_bc1), WD = r(s.wd), DECAY = r(s.decay);
    const mode = wdMode(a);
    const P = p.data, G = g.data;
    const M0 = a.first ? null : m0.data, V0 = a.first ? null : v0.data, VM = a.useMax ? vmax0.data : null;
    const n = P.length;
    const outP = allocHost(out.dtype, n), outM = allocHost(out.dtype, n), outV = allocHost(out.dtype, n);
    for (let i = 0; i < n; i++) {
      let d = G[i];
      if (a.h.maximize) d = r(d * -1);
      let w = P[i];
      if (mode === 1) d = r(d + r(w * WD));
      else if (mode === 2) w = r(w * DECAY);
      const dd = r(d * d);
      const m = M0 ? r(r(M0[i] * B1) + r(d * OMB1)) : r(d * OMB1);
      const v = V0 ? r(r(V0[i] * B2) + r(dd * OMB2)) : r(dd * OMB2);
      outM[i] = m;
      outV[i] = v;
      const vu = VM ? Math.max(VM[i], v) : v;
      const denom = r(r(r(Math.sqrt(vu)) / SQ) + EPS);
      outP[i] = r(w - r(r(m / denom) * LR));
    }
    return [outP, outM, outV];
  },
  webgpu(gpu, [p, g, m0, v0, vmax0], a, [outP, outM, outV]) {
    const n = outP.shape.reduce((x, y) => x * y, 1);
    gpu.dispatch({
      kernel: OPTIM,
      entry: 'adam_step',
      constants: { FIRST: a.first, AMSGRAD: a.useMax, MAXIMIZE: a.h.maximize, WD_MODE: wdMode(a) },
      bindings: {
        p: p.buffer,
        grad: g.buffer,
        m0: (m0 ?? p).buffer,
        v0: (v0 ?? p).buffer,
        vmax0: (vmax0 ?? p).buffer,
        out_p: outP.buffer,
        out_m: outM.buffer,
        out_v: outV.buffer,
        // Live uniform: the learning rate and the bias corrections are re-read per replay.
        adam: () => ({ n, ...adamScalars(a.h, typeof a.step === 'function' ? a.step() : a.step) }),
      },
      workgroups: grid1D(n),
    });
  },
});

/**
 * One Adam/AdamW step for one parameter (torch.optim.Adam/AdamW arithmetic):
 *   d = ±grad (+ wd·p for Adam's L2; AdamW decays p ← p·(1 − lr·wd) instead),
 *   m = β₁m + (1−β₁)d, v = β₂v + (1−β₂)d², p ← p − (lr/(1−β₁ᵗ))·m / (√v̂/√(1−β₂ᵗ) + eps)
 * with v̂ = max(vmax, v) under AMSGrad. `m0`/`v0` null on the first step; `step` is 1-based
 * (or a function returning it: the WebGPU kernel's scalars — lr, bias corrections — are then
 * re-read from `h` and `step()` whenever a recorded step is replayed, see engine/capture.ts).
 */
export function fusedAdam(p: Tensor, grad: Tensor, m0: Tensor | null, v0: Tensor | null, vmax0: Tensor | null, h: AdamOptions, step: number | (() => number), decoupled: boolean): FusedAdamResult {
  const first = !m0 || !v0;
  // Without a running max yet (first step, or AMSGrad switched on later) v itself is used.
  const useMax = h.amsgrad && !first && !!vmax0;
  const inputs = first ? [p, grad] : useMax ? [p, grad, m0, v0, vmax0!] : [p, grad, m0, v0];
  const [param, expAvg, expAvgSq] = runOpMulti(ADAM_STEP, inputs, { h, step, decoupled, first, useMax });
  // AMSGrad's running max, exactly as the op-by-op update computes it: max(vmax, v), or on the
  // first step v itself (a view).
  return { param, expAvg, expAvgSq, maxExpAvgSq: h.amsgrad ? (useMax ? maximum(vmax0!, expAvgSq) : detach(expAvgSq)) : null };
}

// ---- SGD ----
interface SgdAttrs {
  h: SGDOptions;
  /** Inputs: [p, grad], plus the momentum buffer after the first step with momentum. */
  first: boolean;
}

const SGD_STEP = defineMultiOp<SgdAttrs>({
  name: 'sgdStep',
  infer(inputs, a) {
    const o = checkInputs('sgdStep', inputs);
    return a.h.momentum !== 0 ? [o, o] : [o];
  },
  cpu([p, g, b0], a, [out]) {
    const r = rounder(out.dtype);
    const s = sgdScalars(a.h);
    const LR = r(s.lr), MU = r(s.momentum), OMD = r(s.omd), WD = r(s.wd);
    const momentum = a.h.momentum !== 0;
    const P = p.data, G = g.data, B0 = momentum && !a.first ? b0.data : null;
    const n = P.length;
    const outP = allocHost(out.dtype, n);
    const outB: TypedArray | null = momentum ? allocHost(out.dtype, n) : null;
    for (let i = 0; i < n; i++) {
      let d = G[i];
      if (a.h.maximize) d = r(d * -1);
      const w = P[i];
      if (a.h.weightDecay !== 0) d = r(d + r(w * WD));
      if (outB) {
        const b = B0 ? r(r(B0[i] * MU) + r(d * OMD)) : d;
        outB[i] = b;
        d = a.h.nesterov ? r(d + r(b * MU)) : b;
      }
      outP[i] = r(w - r(d * LR));
    }
    return outB ? [outP, outB] : [outP];
  },
  webgpu(gpu, [p, g, b0], a, [outP, outB]) {
    const n = outP.shape.reduce((x, y) => x * y, 1);
    sgdDispatch(gpu, p, g, b0, a, outP, outB, n);
  },
});

function sgdDispatch(gpu: WebGPUBackend, p: GpuArg, g: GpuArg, b0: GpuArg | undefined, a: SgdAttrs, outP: GpuArg, outB: GpuArg | undefined, n: number): void {
  const scratch = outB ? outB.buffer : gpu.allocBuffer(16, 'sgdStep');
  gpu.dispatch({
    kernel: OPTIM,
    entry: 'sgd_step',
    constants: { FIRST: a.first, MOMENTUM: a.h.momentum !== 0, NESTEROV: a.h.nesterov, MAXIMIZE: a.h.maximize, WEIGHT_DECAY: a.h.weightDecay !== 0 },
    bindings: { p: p.buffer, grad: g.buffer, buf0: (b0 ?? p).buffer, out_p: outP.buffer, out_buf: scratch, sgd: () => ({ n, ...sgdScalars(a.h) }) },
    workgroups: grid1D(n),
  });
  if (!outB) gpu.freeBuffer(scratch);
}

/**
 * One SGD step for one parameter (torch.optim.SGD arithmetic): d = ±grad + wd·p;
 * b = d on the first step, then μb + (1−dampening)d; d = d + μb (Nesterov) or b; p ← p − lr·d.
 * `buf0` null on the first step (or without momentum). The WebGPU kernel re-reads its scalars
 * (lr, momentum, dampening, weight decay) from `h` whenever a recorded step is replayed.
 */
export function fusedSgd(p: Tensor, grad: Tensor, buf0: Tensor | null, h: SGDOptions): FusedSgdResult {
  const first = !buf0 || h.momentum === 0;
  const [param, momentumBuffer] = runOpMulti(SGD_STEP, first ? [p, grad] : [p, grad, buf0], { h, first });
  return { param, momentumBuffer: momentumBuffer ?? null };
}
