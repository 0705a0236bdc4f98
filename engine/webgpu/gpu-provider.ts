/**
 * Where the `GPU` object comes from. In browsers it is `navigator.gpu`; in Node the entry point
 * `dubito` (node build) registers the `webgpu` package's Dawn binding via `setGpuProvider`.
 * Keeping this indirection here means nothing under engine/ imports a Node-only module.
 */
export type GpuProvider = () => GPU | undefined | Promise<GPU | undefined>;

let provider: GpuProvider = () => (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;

export function setGpuProvider(p: GpuProvider): void {
  provider = p;
}

export async function getGpu(): Promise<GPU | undefined> {
  return provider();
}
