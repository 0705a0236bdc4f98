// Correctness of kernels/matmul.wgsl on the real WebGPU device (Dawn via the `webgpu` package).
// Reference: float64 CPU loop. Tolerance per output element:
//   |gpu - ref| <= 1e-4 * sum_k |a_mk * b_kn| + 1e-30
// (f32 accumulation error grows like eps*sqrt(K)*sum|a||b|; 1e-4 covers K up to ~1e5 comfortably).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create, globals } from 'webgpu';
import { MATMUL_KERNEL, matmulParams, planMatmul } from '../kernels/matmul-plan';

Object.assign(globalThis, globals);

// The kernel as the engine composes it (generated header + the `matmul` prelude + matmul.wgsl).
const code = MATMUL_KERNEL.code;

let gpu: ReturnType<typeof create> | null = null;
let device: GPUDevice | null = null;
let bgl: GPUBindGroupLayout;
let module: GPUShaderModule;
const pipelines = new Map<string, GPUComputePipeline>();

beforeAll(async () => {
  process.env.XDG_RUNTIME_DIR ??= '/tmp/xdg';
  try {
    gpu = create([]);
    const adapter = await gpu.requestAdapter();
    if (adapter) device = await adapter.requestDevice();
  } catch (e) {
    console.warn('matmul-kernel: WebGPU unavailable:', e);
  }
  if (!device) {
    gpu = null;
    return;
  }
  module = device.createShaderModule({ code });
  const entries: GPUBindGroupLayoutEntry[] = [0, 1, 2, 3].map((binding) => ({
    binding,
    visibility: GPUShaderStage.COMPUTE,
    buffer: { type: binding === 3 ? 'storage' : 'read-only-storage' },
  }));
  entries.push({ binding: 4, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } });
  bgl = device.createBindGroupLayout({ entries });
});

afterAll(() => {
  device?.destroy();
  device = null;
  gpu = null;
});

function needDevice(ctx: { skip: (note?: string) => void }): GPUDevice {
  if (device) return device;
  if (process.env.CI) throw new Error('matmul-kernel: no WebGPU adapter available, but CI is set: failing instead of skipping');
  console.warn('matmul-kernel: no WebGPU adapter; skipping GPU test');
  ctx.skip('no WebGPU adapter');
  throw new Error('unreachable');
}

interface Case {
  M: number; N: number; K: number; batch?: number;
  transA?: boolean; transB?: boolean; bias?: boolean; relu?: boolean;
  aBroadcast?: boolean; bBroadcast?: boolean;
}

function rand(n: number, seed: number): Float32Array<ArrayBuffer> {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 * 2 - 1;
  }
  return out;
}

function storageBuffer(dev: GPUDevice, data: Float32Array<ArrayBuffer> | Uint32Array<ArrayBuffer>, usage: number): GPUBuffer {
  const size = Math.max(16, Math.ceil(data.byteLength / 4) * 4);
  const buf = dev.createBuffer({ size, usage: usage | GPUBufferUsage.COPY_DST });
  if (data.byteLength > 0) dev.queue.writeBuffer(buf, 0, data);
  return buf;
}

async function runCase(dev: GPUDevice, c: Case): Promise<void> {
  const { M, N, K } = c;
  const batch = c.batch ?? 1;
  const transA = c.transA ?? false, transB = c.transB ?? false;
  const aStride = c.aBroadcast ? 0 : M * K;
  const bStride = c.bBroadcast ? 0 : K * N;
  const A = rand(Math.max(1, (c.aBroadcast ? 1 : batch) * M * K), 1 + M * 7 + K);
  const B = rand(Math.max(1, (c.bBroadcast ? 1 : batch) * K * N), 2 + N * 13 + K);
  const bias = c.bias ? rand(N, 99) : new Float32Array([0]);

  const plan = planMatmul(M, N, K, batch, transA, transB, { bias: c.bias, act: c.relu ? 1 : 0 });
  const key = JSON.stringify(plan.constants);
  let pipeline = pipelines.get(key);
  if (!pipeline) {
    pipeline = dev.createComputePipeline({
      layout: dev.createPipelineLayout({ bindGroupLayouts: [bgl] }),
      compute: { module, entryPoint: plan.entryPoint, constants: plan.constants },
    });
    pipelines.set(key, pipeline);
  }
  const outLen = batch * M * N;
  const outBytes = Math.max(16, outLen * 4);
  const bufs = [
    storageBuffer(dev, A, GPUBufferUsage.STORAGE),
    storageBuffer(dev, B, GPUBufferUsage.STORAGE),
    storageBuffer(dev, bias, GPUBufferUsage.STORAGE),
    dev.createBuffer({ size: outBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST }),
    storageBuffer(dev, matmulParams(M, N, K, batch, aStride, bStride), GPUBufferUsage.UNIFORM),
  ];
  // Pre-fill the output with NaN so that unwritten elements are caught.
  dev.queue.writeBuffer(bufs[3], 0, new Float32Array(outBytes / 4).fill(NaN));
  const readback = dev.createBuffer({ size: outBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const bindGroup = dev.createBindGroup({
    layout: bgl,
    entries: bufs.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  dev.pushErrorScope('validation');
  const enc = dev.createCommandEncoder();
  const [wx, wy, wz] = plan.workgroups;
  if (wx * wy * wz > 0) {
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(wx, wy, wz);
    pass.end();
  }
  enc.copyBufferToBuffer(bufs[3], 0, readback, 0, outBytes);
  dev.queue.submit([enc.finish()]);
  const err = await dev.popErrorScope();
  expect(err?.message ?? null).toBeNull();
  await readback.mapAsync(GPUMapMode.READ);
  const got = new Float32Array(readback.getMappedRange().slice(0));
  readback.unmap();
  for (const b of [...bufs, readback]) b.destroy();

  let bad = 0;
  let firstBad = '';
  for (let z = 0; z < batch; z++) {
    const ao = z * aStride, bo = z * bStride;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let ref = 0, mag = 0;
        for (let k = 0; k < K; k++) {
          const av = transA ? A[ao + k * M + m] : A[ao + m * K + k];
          const bv = transB ? B[bo + n * K + k] : B[bo + k * N + n];
          ref += av * bv;
          mag += Math.abs(av * bv);
        }
        if (c.bias) { ref += bias[n]; mag += Math.abs(bias[n]); }
        if (c.relu) ref = Math.max(ref, 0);
        const g = got[z * M * N + m * N + n];
        const tol = 1e-4 * mag + 1e-30;
        if (!(Math.abs(g - ref) <= tol)) {
          if (bad++ === 0) firstBad = `z=${z} m=${m} n=${n}: got ${g}, want ${ref} (tol ${tol})`;
        }
      }
    }
  }
  expect(bad, firstBad).toBe(0);
}

const cases: [string, Case][] = [
  ['1x1x1', { M: 1, N: 1, K: 1 }],
  ['3x5x7', { M: 3, N: 5, K: 7 }],
  ['17x33x65', { M: 17, N: 33, K: 65 }],
  ['64x64x64', { M: 64, N: 64, K: 64 }],
  ['65x63x129', { M: 65, N: 63, K: 129 }],
  ['128x1x256 (M x N x K)', { M: 128, N: 1, K: 256 }],
  ['1x300x2', { M: 1, N: 300, K: 2 }],
  ['K=0 gives zeros', { M: 5, N: 7, K: 0 }],
  ['K=0 with bias+relu gives relu(bias)', { M: 5, N: 7, K: 0, bias: true, relu: true }],
  ['M=0 dispatches nothing', { M: 0, N: 7, K: 3 }],
  ['batch=3, A broadcast (a_batch_stride=0)', { M: 19, N: 23, K: 37, batch: 3, aBroadcast: true }],
  ['batch=3, B broadcast (b_batch_stride=0)', { M: 19, N: 23, K: 37, batch: 3, bBroadcast: true }],
  ['batch=2, no broadcast, 70x66x40', { M: 70, N: 66, K: 40, batch: 2 }],
  ['bias + relu epilogue', { M: 33, N: 70, K: 45, bias: true, relu: true }],
  ['bias only', { M: 9, N: 11, K: 13, bias: true }],
  ['relu only', { M: 9, N: 11, K: 13, relu: true }],
];
for (const transA of [false, true]) {
  for (const transB of [false, true]) {
    cases.push([`TRANS_A=${transA} TRANS_B=${transB} 37x29x43`, { M: 37, N: 29, K: 43, transA, transB }]);
    cases.push([`TRANS_A=${transA} TRANS_B=${transB} batch=2 bias 67x70x33`, { M: 67, N: 70, K: 33, batch: 2, transA, transB, bias: true }]);
  }
}

describe('kernels/matmul.wgsl', () => {
  for (const [name, c] of cases) {
    it(name, async (ctx) => {
      const dev = needDevice(ctx);
      await runCase(dev, c);
    });
  }
});

describe('planMatmul', () => {
  it('grid covers the output and folds batch into z', () => {
    expect(planMatmul(65, 130, 3, 4, false, true).workgroups).toEqual([3, 2, 4]);
    expect(planMatmul(65, 130, 3, 4, false, true).constants.TRANS_B).toBe(1);
  });
  it('empty outputs dispatch nothing', () => {
    expect(planMatmul(0, 5, 5, 1, false, false).workgroups).toEqual([0, 0, 0]);
    expect(planMatmul(5, 0, 5, 1, false, false).workgroups).toEqual([0, 0, 0]);
    expect(planMatmul(5, 5, 0, 1, false, false).workgroups).toEqual([1, 1, 1]);
  });
  it('rejects grids over 65535 per dimension', () => {
    expect(() => planMatmul(1, 1, 1, 70000, false, false)).toThrow(/65535/);
  });
});
