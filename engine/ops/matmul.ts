import { MATMUL_KERNEL, planMatmul } from '../../kernels/matmul-plan.js';
import matmulIntWgsl from '../../kernels/matmul_int.wgsl';
import { kernelFamily } from '../webgpu/kernel-source.js';
import { type WebGPUBackend, grid1D } from '../webgpu/webgpu-backend.js';
import { allocHost, isFloat, promote } from '../dtype.js';
import { DTypeError, ShapeError, fmtShape } from '../errors.js';
import { type CpuArg, type GpuArg, defineOp } from '../op.js';
import { broadcastShapes, shapesEqual, sizeOf } from '../shape.js';
import { type Tensor, runOp } from '../tensor.js';
import { reluGrad, sumTo } from './binary.js';
import { sum } from './reduce.js';
import { broadcastTo } from './shape-ops.js';
import { composite } from './autograd.js';

export interface MatmulOptions {
  /** Treat the last two dims of `a` as transposed ([.., K, M] holds A) — no copy is made. */
  transposeA?: boolean;
  /** Treat the last two dims of `b` as transposed ([.., N, K] holds B). */
  transposeB?: boolean;
}

interface MatmulAttrs {
  transA: boolean;
  transB: boolean;
}


function dims(a: readonly number[], b: readonly number[], at: MatmulAttrs) {
  const M = at.transA ? a[a.length - 1] : a[a.length - 2];
  const Ka = at.transA ? a[a.length - 2] : a[a.length - 1];
  const Kb = at.transB ? b[b.length - 1] : b[b.length - 2];
  const N = at.transB ? b[b.length - 2] : b[b.length - 1];
  return { M, Ka, Kb, N };
}

/** Batch strides after broadcasting: the operand's full batch or 0 when it has batch size 1. */
function batchInfo(a: readonly number[], b: readonly number[]) {
  const batchShape = broadcastShapes('matmul', a.slice(0, -2), b.slice(0, -2));
  const batch = sizeOf(batchShape);
  const aBatch = sizeOf(a.slice(0, -2));
  const bBatch = sizeOf(b.slice(0, -2));
  return { batchShape, batch, aBatch, bBatch };
}

const MATMUL = defineOp<MatmulAttrs>({
  name: 'matmul',
  splitRows: ([a, b], at, out) => {
    const r = out.shape.length;
    if (r >= 3) {
      // Batched: chunk the leading batch dim of the operands that carry the full batch.
      const full = (t: { shape: readonly number[] }) => t.shape.length === r && t.shape[0] === out.shape[0] && sizeOf(t.shape.slice(0, -2)) === sizeOf(out.shape.slice(0, -2));
      return { inputs: [full(a), full(b)] };
    }
    // 2-D: rows of A make rows of the output; with Aᵀ (and B not transposed) dim 0 is the
    // contraction dim, so chunks are partial products that add up.
    if (!at.transA) return { inputs: [true, false] };
    if (!at.transB) return { inputs: [true, true], combine: 'sum' };
    return null;
  },
  infer([a, b], at) {
    if (a.rank < 2 || b.rank < 2) {
      throw new ShapeError(`matmul: both inputs need rank >= 2, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
    }
    const ints = a.dtype === 'int32' && b.dtype === 'int32';
    if (!ints && (!isFloat(a.dtype) || !isFloat(b.dtype))) {
      throw new DTypeError(`matmul: expected two float inputs or two int32 inputs, got ${a.dtype} ${fmtShape(a.shape)} and ${b.dtype} ${fmtShape(b.shape)} (cast one: PyTorch does not mix them either)`);
    }
    const { M, Ka, Kb, N } = dims(a.shape, b.shape, at);
    if (Ka !== Kb) {
      throw new ShapeError(`matmul: inner dims differ: ${fmtShape(a.shape)}${at.transA ? 'ᵀ' : ''} @ ${fmtShape(b.shape)}${at.transB ? 'ᵀ' : ''} (K = ${Ka} vs ${Kb})`);
    }
    const { batchShape, batch, aBatch, bBatch } = batchInfo(a.shape, b.shape);
    if ((aBatch !== 1 && aBatch !== batch) || (bBatch !== 1 && bBatch !== batch)) {
      throw new ShapeError(`matmul: internal: operands must be pre-broadcast (got ${fmtShape(a.shape)} and ${fmtShape(b.shape)})`);
    }
    return { shape: [...batchShape, M, N], dtype: promote(a.dtype, b.dtype) };
  },
  cpu([a, b], at, out) {
    if (out.dtype === 'int32') return matmulIntCpu(a, b, at);
    const { M, Ka: K, N } = dims(a.shape, b.shape, at);
    const { batch, aBatch, bBatch } = batchInfo(a.shape, b.shape);
    const r = allocHost(out.dtype, batch * M * N);
    const A = a.data;
    const B = b.data;
    // a(i,k) and b(k,j) honour the transpose flags; accumulate in float64.
    const sai = at.transA ? 1 : K, sak = at.transA ? M : 1;
    const sbk = at.transB ? 1 : N, sbj = at.transB ? K : 1;
    const row = new Float64Array(N);
    // Skipping a zero a(i,k) is exact only when b holds no inf/NaN (0·inf and 0·NaN are NaN).
    let skipZeros = true;
    for (let i = 0; i < B.length && skipZeros; i++) skipZeros = Number.isFinite(B[i]);
    for (let t = 0; t < batch; t++) {
      const ao = aBatch === 1 ? 0 : t * M * K;
      const bo = bBatch === 1 ? 0 : t * K * N;
      for (let i = 0; i < M; i++) {
        row.fill(0);
        for (let k = 0; k < K; k++) {
          const av = A[ao + i * sai + k * sak];
          if (av === 0 && skipZeros) continue;
          const bb = bo + k * sbk;
          for (let j = 0; j < N; j++) row[j] += av * B[bb + j * sbj];
        }
        r.set(row, t * M * N + i * N);
      }
    }
    return r;
  },
  webgpu: (gpu, [a, b], at, out) => (out.dtype === 'int32' ? matmulIntGpu(gpu, a, b, at, out) : matmulGpu(gpu, a, b, null, at, out, 0)),
  // Integer products have no gradient (int inputs cannot require one): the rule is for floats.
  grad(dy, [a, b], _out, at) {
    if (!isFloat(a.dtype)) return [null, null];
    // C = op(A) op(B). dA = dC op(B)ᵀ (or its transpose when A is stored transposed); same for B.
    let da: Tensor;
    let db: Tensor;
    if (!at.transA) da = matmulRaw(dy, b, false, !at.transB);
    else da = matmulRaw(b, dy, at.transB, true);
    if (!at.transB) db = matmulRaw(a, dy, !at.transA, false);
    else db = matmulRaw(dy, a, true, at.transA);
    return [sumTo(da, a.shape), sumTo(db, b.shape)];
  },
});

// ---- int32 matmul: wrapping two's-complement arithmetic on both backends ----
function matmulIntCpu(a: CpuArg, b: CpuArg, at: MatmulAttrs): Int32Array {
  const { M, Ka: K, N } = dims(a.shape, b.shape, at);
  const { batch, aBatch, bBatch } = batchInfo(a.shape, b.shape);
  const r = new Int32Array(batch * M * N);
  const A = a.data;
  const B = b.data;
  const sai = at.transA ? 1 : K, sak = at.transA ? M : 1;
  const sbk = at.transB ? 1 : N, sbj = at.transB ? K : 1;
  for (let t = 0; t < batch; t++) {
    const ao = aBatch === 1 ? 0 : t * M * K;
    const bo = bBatch === 1 ? 0 : t * K * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc = (acc + Math.imul(A[ao + i * sai + k * sak], B[bo + k * sbk + j * sbj])) | 0;
        r[t * M * N + i * N + j] = acc;
      }
    }
  }
  return r;
}

const MATMUL_INT = kernelFamily({ name: 'matmul_int', source: matmulIntWgsl, preludes: ['grid', 'matmul'] });

function matmulIntGpu(gpu: WebGPUBackend, a: GpuArg, b: GpuArg, at: MatmulAttrs, out: GpuArg): void {
  const { M, Ka: K, N } = dims(a.shape, b.shape, at);
  const { batch, aBatch, bBatch } = batchInfo(a.shape, b.shape);
  const n = batch * M * N;
  if (n >= 2 ** 32 || batch * M * K >= 2 ** 32 || batch * K * N >= 2 ** 32) throw new ShapeError(`matmul: int32 operands ${fmtShape(a.shape)} @ ${fmtShape(b.shape)} are too large for u32 indexing`);
  gpu.dispatch({
    kernel: MATMUL_INT.variant(),
    constants: { TRANS_A: at.transA, TRANS_B: at.transB },
    bindings: {
      a: a.buffer,
      b: b.buffer,
      out: out.buffer,
      params: { M, N, K, batch, a_batch_stride: aBatch === 1 ? 0 : M * K, b_batch_stride: bBatch === 1 ? 0 : K * N },
    },
    workgroups: grid1D(n),
  });
}

function matmulGpu(gpu: WebGPUBackend, a: GpuArg, b: GpuArg, bias: GpuArg | null, at: MatmulAttrs, out: GpuArg, act: 0 | 1): void {
  const { M, Ka: K, N } = dims(a.shape, b.shape, at);
  const { batch, aBatch, bBatch } = batchInfo(a.shape, b.shape);
  const plan = planMatmul(M, N, K, batch, at.transA, at.transB, { bias: bias !== null, act });
  const biasBuf = bias ? bias.buffer : gpu.allocBuffer(4, 'matmul');
  gpu.dispatch({
    kernel: MATMUL_KERNEL,
    entry: plan.entryPoint,
    constants: plan.constants,
    bindings: {
      a: a.buffer,
      b: b.buffer,
      bias: biasBuf,
      out: out.buffer,
      params: { M, N, K, batch, a_batch_stride: aBatch === 1 ? 0 : M * K, b_batch_stride: bBatch === 1 ? 0 : K * N },
    },
    workgroups: plan.workgroups,
  });
  if (!bias) gpu.freeBuffer(biasBuf);
}

function matmulRaw(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Tensor {
  // Broadcast leading dims so that each operand's batch is either 1 or the full batch.
  const batchShape = broadcastShapes('matmul', a.shape.slice(0, -2), b.shape.slice(0, -2));
  const full = sizeOf(batchShape);
  const fix = (t: Tensor) => {
    const tb = t.shape.slice(0, -2);
    if (sizeOf(tb) === 1 || (sizeOf(tb) === full && shapesEqual(tb, batchShape))) return t;
    return broadcastTo(t, [...batchShape, ...t.shape.slice(-2)]);
  };
  return runOp(MATMUL, [fix(a), fix(b)], { transA, transB });
}

/**
 * Batched matrix product with NumPy broadcasting over leading dims. 1-D operands are promoted
 * as in NumPy (a vector `a` becomes [1, K], a vector `b` becomes [K, 1]; the added dim is
 * removed from the result). Two float inputs give a float result (differentiable); two int32
 * inputs give int32 with wrapping two's-complement arithmetic (as PyTorch's int matmul and C's
 * int32 overflow), on both backends; mixing int and float is a DTypeError.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  return composite(() => {
    const va = a.rank === 1;
    const vb = b.rank === 1;
    const a2 = va ? a.reshape([1, a.shape[0]]) : a;
    const b2 = vb ? b.reshape([b.shape[0], 1]) : b;
    let r = matmulRaw(a2, b2, !!opts.transposeA && !va, !!opts.transposeB && !vb);
    if (va) r = r.squeeze(-2);
    if (vb) r = r.squeeze(-1);
    return r;
  });
}

interface LinearAttrs {
  act: 0 | 1;
}

const LINEAR = defineOp<LinearAttrs>({
  name: 'linear',
  splitRows: () => ({ inputs: [true, false, false] }),
  infer([x, w, bias], at) {
    if (x.rank !== 2 || w.rank !== 2 || bias.rank !== 1) {
      throw new ShapeError(`linear: expected x [M,K], weight [N,K], bias [N]; got ${fmtShape(x.shape)}, ${fmtShape(w.shape)}, ${fmtShape(bias.shape)}`);
    }
    if (x.shape[1] !== w.shape[1] || bias.shape[0] !== w.shape[0]) {
      throw new ShapeError(`linear: x ${fmtShape(x.shape)}, weight ${fmtShape(w.shape)} and bias ${fmtShape(bias.shape)} do not fit (x [M,K], weight [N,K], bias [N])`);
    }
    if (!isFloat(x.dtype) || x.dtype !== w.dtype || x.dtype !== bias.dtype) {
      throw new DTypeError(`linear: expected matching float dtypes, got ${x.dtype}, ${w.dtype}, ${bias.dtype}`);
    }
    void at;
    return { shape: [x.shape[0], w.shape[0]], dtype: x.dtype };
  },
  cpu([x, w, bias], at, out) {
    const r = MATMUL.cpu([x, w], { transA: false, transB: true }, out);
    const N = w.shape[0];
    for (let i = 0; i < r.length; i++) {
      const v = r[i] + bias.data[i % N];
      r[i] = at.act === 1 && v < 0 ? 0 : v;
    }
    return r;
  },
  webgpu: (gpu, [x, w, bias], at, out) => matmulGpu(gpu, x, w, bias, { transA: false, transB: true }, out, at.act),
  grad(dy, [x, w, bias], out, at) {
    const dz = at.act === 1 ? reluGrad(out, dy) : dy;
    return [matmulRaw(dz, w, false, false), matmulRaw(dz, x, true, false), sum(dz, 0)];
  },
});

/**
 * y = act(x·Wᵀ + b) in one kernel (bias and ReLU fused into the matmul epilogue), with
 * x [..., K], weight [N, K] (PyTorch Linear layout) and bias [N]. Leading dims of x are flattened.
 */
export function linear(x: Tensor, weight: Tensor, bias: Tensor, activation: 'none' | 'relu' = 'none'): Tensor {
  return composite(() => {
    const lead = x.shape.slice(0, -1);
    const x2 = x.rank === 2 ? x : x.reshape([-1, x.shape[x.rank - 1]]);
    const y = runOp(LINEAR, [x2, weight, bias], { act: activation === 'relu' ? 1 : 0 });
    return x.rank === 2 ? y : y.reshape([...lead, weight.shape[0]]);
  });
}
