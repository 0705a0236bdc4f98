/** Node entry point: everything in `index.ts`, with WebGPU provided by the `webgpu` package. */
import { installNodeWebGPU, releaseNodeWebGPU } from './platform/node-webgpu.js';
import { installNodeAsyncScopes } from './platform/node-async-scope.js';
import { shutdown as shutdownEngine } from './engine/device.js';

installNodeWebGPU();
installNodeAsyncScopes();

export * from './index.js';

/** Destroys devices and releases Dawn so the Node process can exit. */
export function shutdown(): void {
  shutdownEngine();
  releaseNodeWebGPU();
}
export * from './nn/data/mnist.js';
export * from './nn/serialize/safetensors-node.js';
