import adamWgsl from '../../kernels/adam.wgsl';
import sgdWgsl from '../../kernels/sgd.wgsl';
import { type DType, type TypedArray, allocHost } from '../dtype.js';
import { BackendMismatchError, DTypeError, ShapeError, fmtShape } from '../errors.js';
import { CpuBackend, type CpuStorage } from '../cpu/cpu-backend.js';
import { Tensor } from '../tensor.js';
import { GpuStorage, WebGPUBackend, grid1D } from '../webgpu/webgpu-backend.js';
import { kernelFamily } from '../webgpu/kernel-source.js';
import { detach } from './autograd.js';
import { maximum } from './binary.js';

// Fused optimiser updates: one kernel per parameter computes the new parameter and the new
// optimiser state (Adam: m, v; SGD: momentum buffer) — one dispatch instead of ~20 elementwise
// ops (plus their scalar fills). These are multi-output kernels, which `defineOp` (one output
// per op) does not express, so they allocate their outputs here and wrap them in tensors.
// They are not differentiable (optimisers run under noGrad) and record no graph.
//
// The arithmetic is that of the op-by-op updates in nn/optim/{adam,sgd}.ts, operation for
// operation: on the CPU every intermediate is rounded to the tensor's dtype (float32: Math.fround)
// and every scalar operand is the dtype's rounding of the same JS number, exactly as the scalar
// tensors of the unfused ops are, so the CPU results are bit-identical to the unfused CPU path.
// The WGSL performs the same f32 operations in the same order.

const ADAM_KERNEL = kernelFamily({ name: 'adam', source: adamWgsl, preludes: ['grid', 'ieee'] }).variant();
const SGD_KERNEL = kernelFamily({ name: 'sgd', source: sgdWgsl, preludes: ['grid'] }).variant();

export interface FusedAdamHyper {
  beta1: number;
  beta2: number;
  lr: number;
  eps: number;
  /** 1-based step count (for the bias corrections). */
  step: number;
  weightDecay: number;
  /** Weight decay mode: L2 added to the gradient (Adam) or decoupled (AdamW). */
  decoupled: boolean;
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

export interface FusedSgdHyper {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

export interface FusedSgdResult {
  param: Tensor;
  /** The new momentum buffer (null without momentum). */
  momentumBuffer: Tensor | null;
}

function check(op: string, p: Tensor, others: (Tensor | null | undefined)[]): void {
  if (p.dtype !== 'float32' && p.dtype !== 'float64') throw new DTypeError(`${op}: parameters must be float, got ${p.dtype} ${fmtShape(p.shape)}`);
  const be = p.backend;
  for (const t of others) {
    if (!t) continue;
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      throw new ShapeError(`${op}: ${fmtShape(t.shape)} does not match the parameter ${fmtShape(p.shape)}`);
    }
    if (t.dtype !== p.dtype) throw new DTypeError(`${op}: ${t.dtype} ${fmtShape(t.shape)} does not match the parameter's ${p.dtype}`);
    if (t.backend !== be) throw new BackendMismatchError(`${op}: the parameter lives on ${be.name} but a state/gradient tensor lives on ${t.backend.name}`);
  }
}

const cpuData = (t: Tensor, op: string): TypedArray => (t.storageFor(op) as CpuStorage).data;
const gpuBuf = (t: Tensor, op: string): GPUBuffer => (t.storageFor(op) as GpuStorage).buffer;

/** Rounding of a JS double to the storage precision of `dtype` (what storing into its array does). */
const rounder = (dtype: DType): ((x: number) => number) => (dtype === 'float32' ? Math.fround : (x: number) => x);

function wrapCpu(be: CpuBackend, data: TypedArray, like: Tensor): Tensor {
  return new Tensor(be.upload(data, like.dtype), like.shape, like.dtype);
}

function wrapGpu(gpu: WebGPUBackend, buf: GPUBuffer, bytes: number, like: Tensor): Tensor {
  return new Tensor(new GpuStorage(gpu, buf, bytes), like.shape, like.dtype);
}

/**
 * One Adam/AdamW step for one parameter (torch.optim.Adam/AdamW arithmetic, see nn/optim/adam.ts):
 * returns the new parameter, m, v (and AMSGrad's running max). `m0`/`v0` null on the first step.
 */
export function fusedAdam(p: Tensor, grad: Tensor, m0: Tensor | null, v0: Tensor | null, vmax0: Tensor | null, h: FusedAdamHyper): FusedAdamResult {
  const op = 'fusedAdam';
  check(op, p, [grad, m0, v0, vmax0]);
  const first = !m0 || !v0;
  // Without a running max yet (first step, or AMSGrad switched on later) v itself is used.
  const useMax = h.amsgrad && !first && !!vmax0;
  const wdMode = h.weightDecay === 0 ? 0 : h.decoupled ? 2 : 1;
  const bc1 = 1 - Math.pow(h.beta1, h.step);
  const bc2 = 1 - Math.pow(h.beta2, h.step);
  // The scalar operands of the unfused update, as JS numbers (rounded to the dtype below).
  const s = {
    b1: h.beta1, omb1: 1 - h.beta1, b2: h.beta2, omb2: 1 - h.beta2, sqrtBc2: Math.sqrt(bc2), eps: h.eps, lrBc1: h.lr / bc1,
    wd: h.weightDecay, decay: 1 - h.lr * h.weightDecay,
  };
  const be = p.backend;
  const n = p.size;
  if (be instanceof WebGPUBackend) {
    const bytes = n * 4;
    const outP = gpu(be, bytes);
    const outM = gpu(be, bytes);
    const outV = gpu(be, bytes);
    if (n > 0) {
      const pb = gpuBuf(p, op);
      be.dispatch({
        kernel: ADAM_KERNEL,
        constants: { FIRST: first, AMSGRAD: useMax, MAXIMIZE: h.maximize, WD_MODE: wdMode },
        bindings: {
          p: pb,
          grad: gpuBuf(grad, op),
          m0: first ? pb : gpuBuf(m0!, op),
          v0: first ? pb : gpuBuf(v0!, op),
          vmax0: useMax ? gpuBuf(vmax0!, op) : pb,
          out_p: outP,
          out_m: outM,
          out_v: outV,
          params: { n, b1: s.b1, omb1: s.omb1, b2: s.b2, omb2: s.omb2, sqrt_bc2: s.sqrtBc2, eps: s.eps, lr_bc1: s.lrBc1, wd: s.wd, decay: s.decay },
        },
        workgroups: grid1D(n),
      });
    }
    const expAvgSq = wrapGpu(be, outV, bytes, p);
    return {
      param: wrapGpu(be, outP, bytes, p),
      expAvg: wrapGpu(be, outM, bytes, p),
      expAvgSq,
      maxExpAvgSq: h.amsgrad ? (useMax ? maxOf(vmax0!, expAvgSq) : viewOf(expAvgSq)) : null,
    };
  }
  if (!(be instanceof CpuBackend)) throw new DTypeError(`${op}: unsupported backend ${be.name}`);
  const r = rounder(p.dtype);
  const B1 = r(s.b1), OMB1 = r(s.omb1), B2 = r(s.b2), OMB2 = r(s.omb2), SQ = r(s.sqrtBc2), EPS = r(s.eps), LR = r(s.lrBc1), WD = r(s.wd), DECAY = r(s.decay);
  const P = cpuData(p, op), G = cpuData(grad, op);
  const M0 = first ? null : cpuData(m0!, op), V0 = first ? null : cpuData(v0!, op), VM = useMax ? cpuData(vmax0!, op) : null;
  const outP = allocHost(p.dtype, n), outM = allocHost(p.dtype, n), outV = allocHost(p.dtype, n);
  for (let i = 0; i < n; i++) {
    let d = G[i];
    if (h.maximize) d = r(d * -1);
    let w = P[i];
    if (wdMode === 1) d = r(d + r(w * WD));
    else if (wdMode === 2) w = r(w * DECAY);
    const dd = r(d * d);
    const m = M0 ? r(r(M0[i] * B1) + r(d * OMB1)) : r(d * OMB1);
    const v = V0 ? r(r(V0[i] * B2) + r(dd * OMB2)) : r(dd * OMB2);
    outM[i] = m;
    outV[i] = v;
    const vu = VM ? Math.max(VM[i], v) : v;
    const denom = r(r(r(Math.sqrt(vu)) / SQ) + EPS);
    outP[i] = r(w - r(r(m / denom) * LR));
  }
  const expAvgSq = wrapCpu(be, outV, p);
  return {
    param: wrapCpu(be, outP, p),
    expAvg: wrapCpu(be, outM, p),
    expAvgSq,
    maxExpAvgSq: h.amsgrad ? (useMax ? maxOf(vmax0!, expAvgSq) : viewOf(expAvgSq)) : null,
  };
}

/**
 * One SGD step for one parameter (torch.optim.SGD arithmetic, see nn/optim/sgd.ts): the new
 * parameter and momentum buffer. `buf0` null on the first step (or without momentum).
 */
export function fusedSgd(p: Tensor, grad: Tensor, buf0: Tensor | null, h: FusedSgdHyper): FusedSgdResult {
  const op = 'fusedSgd';
  check(op, p, [grad, buf0]);
  const momentum = h.momentum !== 0;
  const first = !buf0;
  const s = { lr: h.lr, momentum: h.momentum, omd: 1 - h.dampening, wd: h.weightDecay };
  const be = p.backend;
  const n = p.size;
  if (be instanceof WebGPUBackend) {
    const bytes = n * 4;
    const outP = gpu(be, bytes);
    const outB = momentum ? gpu(be, bytes) : null;
    if (n > 0) {
      const pb = gpuBuf(p, op);
      const scratch = outB ?? be.allocBuffer(16, op);
      be.dispatch({
        kernel: SGD_KERNEL,
        constants: { FIRST: first, MOMENTUM: momentum, NESTEROV: h.nesterov, MAXIMIZE: h.maximize, WEIGHT_DECAY: h.weightDecay !== 0 },
        bindings: {
          p: pb,
          grad: gpuBuf(grad, op),
          buf0: first ? pb : gpuBuf(buf0!, op),
          out_p: outP,
          out_buf: scratch,
          params: { n, lr: s.lr, momentum: s.momentum, omd: s.omd, wd: s.wd },
        },
        workgroups: grid1D(n),
      });
      if (!outB) be.freeBuffer(scratch);
    }
    return { param: wrapGpu(be, outP, bytes, p), momentumBuffer: outB ? wrapGpu(be, outB, bytes, p) : null };
  }
  if (!(be instanceof CpuBackend)) throw new DTypeError(`${op}: unsupported backend ${be.name}`);
  const r = rounder(p.dtype);
  const LR = r(s.lr), MU = r(s.momentum), OMD = r(s.omd), WD = r(s.wd);
  const P = cpuData(p, op), G = cpuData(grad, op), B0 = momentum && !first ? cpuData(buf0!, op) : null;
  const outP = allocHost(p.dtype, n);
  const outB = momentum ? allocHost(p.dtype, n) : null;
  for (let i = 0; i < n; i++) {
    let d = G[i];
    if (h.maximize) d = r(d * -1);
    const w = P[i];
    if (h.weightDecay !== 0) d = r(d + r(w * WD));
    if (outB) {
      const b = B0 ? r(r(B0[i] * MU) + r(d * OMD)) : d;
      outB[i] = b;
      d = h.nesterov ? r(d + r(b * MU)) : b;
    }
    outP[i] = r(w - r(d * LR));
  }
  return { param: wrapCpu(be, outP, p), momentumBuffer: outB ? wrapCpu(be, outB, p) : null };
}

function gpu(be: WebGPUBackend, bytes: number): GPUBuffer {
  return be.allocBuffer(bytes, 'fused optimiser update');
}

/** AMSGrad's running max, exactly as the unfused update computes it. */
const maxOf = (a: Tensor, b: Tensor): Tensor => maximum(a, b);
/** First AMSGrad step: the running max is v itself (a view, as the unfused `detach(v)`). */
const viewOf = (t: Tensor): Tensor => detach(t);
