/**
 * Record once, replay many: `recordReplay(fn, example)` runs `fn` once on the example inputs and, on
 * WebGPU, records the dispatch list it encodes — pipelines, bind groups, uniform buffers and the
 * buffers they bind. `run(...inputs)` then copies the new inputs into the recorded input buffers,
 * re-encodes the recorded dispatches without running the JS op graph again (no shape inference,
 * no kernel lookup, no bind-group creation), and returns fresh output tensors copied from the
 * recorded output buffers. Philox streams drawn from the global generator (dropout, random
 * draws) advance per run exactly as an eager call would: every recorded stream offset is shifted
 * by k·Δ on the k-th run, Δ being the blocks the recording consumed, and the generator advances
 * by Δ. On the CPU backend (no dispatches to save) `run` simply calls `fn` again.
 *
 * Scope: `fn` must be a pure function of its inputs (and of tensors it reads but does not
 * replace, e.g. model weights: they are held, so their current contents are read at every run;
 * replacing a weight tensor's storage, as an optimiser step does, is not seen by a replay).
 * Shapes and dtypes are fixed: `run` with a different shape or dtype throws a typed error.
 */
import { DTypeError, ShapeError, fmtShape } from './errors.js';
import { keep, tidy } from './memory.js';
import { advanceGenerator, generatorState } from './ops/random.js';
import { currentBackend } from './runtime.js';
import { Tensor } from './tensor.js';
import { GpuStorage, type Recording, WebGPUBackend } from './webgpu/webgpu-backend.js';

export interface Replayable {
  /** Runs the captured computation on new inputs (same shapes and dtypes as the example). */
  run(...inputs: Tensor[]): Tensor[];
  /** Number of dispatches one run encodes (0 on the CPU backend). */
  readonly dispatches: number;
  /** Frees the recording (its buffers go back to the pool). */
  dispose(): void;
}

export function recordReplay(fn: (...inputs: Tensor[]) => Tensor | Tensor[], example: readonly Tensor[]): Replayable {
  const be = example.length ? example[0].backend : currentBackend();
  const sig = example.map((t) => ({ shape: [...t.shape], dtype: t.dtype }));
  const check = (inputs: readonly Tensor[]) => {
    if (inputs.length !== sig.length) throw new ShapeError(`capture.run: expected ${sig.length} inputs, got ${inputs.length}`);
    inputs.forEach((t, i) => {
      const s = sig[i];
      if (t.shape.length !== s.shape.length || t.shape.some((d, k) => d !== s.shape[k])) {
        throw new ShapeError(`capture.run: input ${i} has shape ${fmtShape(t.shape)}, the capture was recorded with ${fmtShape(s.shape)} (record again for a new shape)`);
      }
      if (t.dtype !== s.dtype) throw new DTypeError(`capture.run: input ${i} has dtype ${t.dtype}, the capture was recorded with ${s.dtype}`);
    });
  };
  const call = (inputs: readonly Tensor[]) => tidy(() => {
    const r = fn(...inputs);
    return Array.isArray(r) ? r : [r];
  });
  if (!(be instanceof WebGPUBackend)) {
    // The CPU backend has no dispatches to save: the recording call runs (and consumes its
    // random streams, as on WebGPU) and every run calls fn again.
    for (const t of call(example)) t.dispose();
    return { run: (...inputs) => (check(inputs), call(inputs)), dispatches: 0, dispose: () => {} };
  }
  // Recorded inputs: private copies, so the caller may dispose the examples.
  const ins = example.map((t) => keep(tidy(() => t.add(0).cast(t.dtype))));
  const g0 = generatorState().offset;
  const d0 = be.dispatchCount;
  be.beginRecording();
  let outs: Tensor[];
  let rec: Recording;
  try {
    outs = call(ins).map((t) => keep(t));
  } catch (e) {
    be.releaseRecording(be.endRecording());
    for (const t of ins) t.dispose();
    throw e;
  }
  rec = be.endRecording();
  const dispatches = be.dispatchCount - d0;
  const delta = generatorState().offset - g0;
  let runs = 0;
  let disposed = false;
  const buf = (t: Tensor) => (t.storageFor('capture') as GpuStorage).buffer;
  return {
    dispatches,
    run(...inputs) {
      if (disposed) throw new ShapeError('capture.run: the capture was disposed');
      check(inputs);
      runs++;
      ins.forEach((t, i) => {
        if (inputs[i] !== t) be.copyBuffer(buf(inputs[i]), 0, buf(t), 0, 4 * t.size);
      });
      be.replayRecording(rec, runs * delta);
      advanceGenerator(delta);
      return outs.map((o) => {
        const bytes = 4 * o.size;
        const b = be.allocBuffer(bytes, 'capture.run');
        be.copyBuffer(buf(o), 0, b, 0, bytes);
        return new Tensor(new GpuStorage(be, b, bytes), o.shape, o.dtype);
      });
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const t of [...ins, ...outs]) t.dispose();
      be.releaseRecording(rec);
    },
  };
}
