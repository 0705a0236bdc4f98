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
// MNIST / Fashion-MNIST: the browser-safe layout and splits, and the Node loaders with their file cache.
export { IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_PIXELS, NUM_CLASSES, MNIST_CLASS_NAMES, FASHION_MNIST_CLASS_NAMES, imageSetToTensors, type ImageDatasetName, type ImageSet } from './nn/data/mnist.js';
export * from './platform/node-mnist.js';
export * from './platform/node-safetensors.js';
