export { Tensor, fromHost, runOp, type GradNode, type NestedArray } from './tensor.js';
// Attaches Tensor's op methods (x.add(y), x.sum(), ...): tensor.ts itself does not import the ops.
import './tensor-methods.js';
export * from './ops/index.js';
export { tidy, keep, dispose, memory, type MemoryReport } from './memory.js';
export { init, setBackend, getBackend, cpuBackend, webgpuBackend, shutdown, type InitOptions, type BackendChoice } from './device.js';
export { noGrad, withGrad, isRecording, setDebug, setAsyncScopeContext, type DebugOptions, type AsyncScopeContext, type Scope } from './runtime.js';
export * from './errors.js';
export type { DType, TypedArray } from './dtype.js';
export { DTYPES } from './dtype.js';
export type { Backend, MemoryInfo, Storage } from './backend.js';
export { WebGPUBackend, type KernelSource, type DispatchSpec } from './webgpu/webgpu-backend.js';
export { CpuBackend, type CpuStorage } from './cpu/cpu-backend.js';
export { setGpuProvider, type GpuProvider } from './webgpu/gpu-provider.js';
export { defineOp, registeredOps, type OpDef, type CpuArg, type GpuArg } from './op.js';
export { shapesEqual, sizeOf, type Shape } from './shape.js';
/**
 * Host-side Philox-4x32-10 streams: the same bits, uniforms and normals the device's random ops
 * draw for a `(seed, offset)`, as host arrays (for seeded shuffles, synthetic data and tests).
 */
export { randomBits, blocksFor, randomUniform, randomNormal } from './random/philox.js';
export { recordReplay, recordStep, type Replayable, type RecordOptions, type RecordedStep } from './capture.js';
/** Seeded host generator (mulberry32) for shuffles and per-batch draws that must not touch Philox state. */
export { mulberry32, shuffleWith } from './random/host-random.js';
