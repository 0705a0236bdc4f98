// GFLOP/s of kernels/matmul.wgsl on the local WebGPU adapter.
// Usage: XDG_RUNTIME_DIR=/tmp/xdg node scripts/bench-matmul.mjs
// Time = submit -> result mapped (mapAsync) for one dispatch + readback copy; 1 warm-up, median of 5.
import { readFileSync } from 'node:fs';
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);

let gpu = create([]);
const adapter = await gpu.requestAdapter();
const device = await adapter.requestDevice({ requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxBufferSize: adapter.limits.maxBufferSize } });
const code = readFileSync(new URL('../kernels/matmul.wgsl', import.meta.url), 'utf8');
const bgl = device.createBindGroupLayout({ entries: [0, 1, 2, 3, 4].map((binding) => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: binding === 4 ? 'uniform' : binding === 3 ? 'storage' : 'read-only-storage' } })) });
const pipeline = device.createComputePipeline({ layout: device.createPipelineLayout({ bindGroupLayouts: [bgl] }), compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });

function buffer(data, usage) {
  const b = device.createBuffer({ size: Math.max(16, data.byteLength), usage: usage | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(b, 0, data);
  return b;
}

async function bench(M, N, K, batch = 1, reps = 5) {
  const A = new Float32Array(batch * M * K).map(() => Math.random() - 0.5);
  const B = new Float32Array(batch * K * N).map(() => Math.random() - 0.5);
  const outBytes = batch * M * N * 4;
  const bufs = [buffer(A, GPUBufferUsage.STORAGE), buffer(B, GPUBufferUsage.STORAGE), buffer(new Float32Array(4), GPUBufferUsage.STORAGE),
    device.createBuffer({ size: outBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC }),
    buffer(new Uint32Array([M, N, K, batch, M * K, K * N, 0, 0]), GPUBufferUsage.UNIFORM)];
  const rb = device.createBuffer({ size: outBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const bg = device.createBindGroup({ layout: bgl, entries: bufs.map((b, binding) => ({ binding, resource: { buffer: b } })) });
  const times = [];
  for (let r = 0; r <= reps; r++) {
    const t0 = performance.now();
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline); pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(Math.ceil(N / 64), Math.ceil(M / 64), batch);
    pass.end();
    enc.copyBufferToBuffer(bufs[3], 0, rb, 0, outBytes);
    device.queue.submit([enc.finish()]);
    await rb.mapAsync(GPUMapMode.READ);
    rb.unmap();
    if (r > 0) times.push(performance.now() - t0); // r = 0 is the warm-up
  }
  for (const b of [...bufs, rb]) b.destroy();
  times.sort((x, y) => x - y);
  const ms = times[times.length >> 1];
  return { ms, gflops: (2 * M * N * K * batch) / ms / 1e6 };
}

const shapes = [[256, 256, 256], [512, 512, 512], [1024, 1024, 1024], [2048, 2048, 2048, 1, 3], [4096, 4096, 64], [64, 64, 64, 8]];
for (const [M, N, K, batch = 1, reps = 5] of shapes) {
  const { ms, gflops } = await bench(M, N, K, batch, reps);
  console.log(`M=${M} N=${N} K=${K} batch=${batch}: ${ms.toFixed(2)} ms  ${gflops.toFixed(2)} GFLOP/s`);
}
device.destroy();
gpu = null;
