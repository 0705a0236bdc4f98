/// <reference types="@webgpu/types" preserve="true" />
/**
 * dubito — a WebGPU tensor engine with reverse-mode autodiff and hand-written WGSL kernels,
 * and an uncertainty and explainability toolkit on top. This entry point has no Node-only
 * imports (browser bundle); `node.ts` adds Node's WebGPU provider.
 *
 * The reference above makes the WebGPU types (`GPUBuffer`, `GPUDevice`, ...) that the public
 * declarations use available to consumers: `@webgpu/types` is installed with the `webgpu`
 * dependency.
 */
export * from './engine/index.js';
export * from './uncertainty/index.js';
export * from './explain/index.js';
export * from './nn/index.js';
export * from './nn/serialize/safetensors.js';
