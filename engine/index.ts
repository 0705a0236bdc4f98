export { Tensor, fromHost, runOp, type GradNode, type NestedArray } from './tensor.js';
// Attaches Tensor's op methods (x.add(y), x.sum(), ...): tensor.ts itself does not import the ops.
import './tensor-methods.js';
export * from './ops/index.js';
export { tidy, keep, dispose, memory, type MemoryReport } from './memory.js';
export { init, setBackend, getBackend, cpuBackend, webgpuBackend, shutdown, type InitOptions, type BackendChoice } from './device.js';
export { noGrad, withGrad, setDebug, setAsyncScopeContext, type DebugOptions, type AsyncScopeContext, type Scope } from './runtime.js';
export * from './errors.js';
export type { DType, TypedArray } from './dtype.js';
export { DTYPES } from './dtype.js';
export type { Backend, MemoryInfo } from './backend.js';
export { WebGPUBackend, type KernelSource, type DispatchSpec } from './webgpu/webgpu-backend.js';
export { CpuBackend } from './cpu/cpu-backend.js';
export { setGpuProvider, type GpuProvider } from './webgpu/gpu-provider.js';
export { defineOp, registeredOps, type OpDef, type CpuArg, type GpuArg } from './op.js';
