// Runs in Chromium. Imports the browser bundle and exposes `runDubitoCase(input)` to the test:
// y = sum(tanh(A @ B)) and its gradients dA, dB, on the WebGPU backend, with both `.backward()`
// and `valueAndGrad`, plus a few checks of the adapter, tidy/memory() and typed errors.
import * as dubito from './dubito.js';

async function runDubitoCase({ a, b, m, k, n }) {
  if (!('gpu' in navigator)) return { error: 'navigator.gpu is missing (WebGPU not enabled)' };
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return { error: 'navigator.gpu.requestAdapter() returned null' };
  const info = adapter.info ?? {};
  const adapterInfo = { vendor: info.vendor ?? '', architecture: info.architecture ?? '', description: info.description ?? '', isFallbackAdapter: info.isFallbackAdapter ?? null };

  const be = await dubito.init({ backend: 'webgpu' });
  const live0 = dubito.memory().liveTensors;

  const A = dubito.tensor(a, [m, k]).requireGrad();
  const B = dubito.tensor(b, [k, n]).requireGrad();
  const y = dubito.tidy(() => {
    const out = A.matmul(B).tanh().sum();
    out.backward();
    return out;
  });
  const result = {
    backend: be.name,
    adapterInfo,
    y: await y.item(),
    dA: Array.from(await A.grad.data()),
    dB: Array.from(await B.grad.data()),
  };

  // The same gradients through the functional API (on detached copies: no nesting).
  const vg = dubito.tidy(() => {
    const { value, grads } = dubito.valueAndGrad((x, w) => dubito.sum(dubito.tanh(dubito.matmul(x, w))), { argnums: [0, 1] })(A.detach(), B.detach());
    return [value, ...grads];
  });
  result.vgY = await vg[0].item();
  result.vgdA = Array.from(await vg[1].data());
  result.vgdB = Array.from(await vg[2].data());

  // Typed errors cross the bundle boundary intact.
  try {
    dubito.tidy(() => dubito.matmul(A, A));
    result.shapeError = 'no error thrown';
  } catch (e) {
    result.shapeError = e instanceof dubito.ShapeError ? `ShapeError: ${e.message}` : `wrong error: ${e}`;
  }

  dubito.dispose([y, vg, A, B]);
  result.leakedTensors = dubito.memory().liveTensors - live0;
  result.memory = dubito.memory();
  return result;
}

window.runDubitoCase = runDubitoCase;
window.dubitoReady = true;
document.getElementById('status').textContent = 'ready';
