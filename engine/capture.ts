/**
 * Record once, replay many: `recordReplay(fn, example)` runs `fn` once on the example inputs and, on
 * WebGPU, records the dispatch list it encodes — pipelines, bind groups, uniform buffers and the
 * buffers they bind. `run(...inputs)` then copies the new inputs into the recorded input buffers,
 * re-encodes the recorded dispatches without running the JS op graph again (no shape inference,
 * no kernel lookup, no bind-group creation), and returns fresh output tensors copied from the
 * recorded output buffers. Philox streams drawn from the global generator (dropout, random
 * draws) advance per run exactly as an eager call would: every recorded stream offset is shifted
 * by k·Δ on the k-th run, Δ being the blocks the recording consumed, and the generator advances
 * by Δ. Uniforms an op passes as a function ("live" uniforms, see `DispatchSpec.bindings`) are
 * re-evaluated before every run and their buffers rewritten when they changed. On the CPU
 * backend (no dispatches to save) `run` simply calls `fn` again.
 *
 * Scope: `fn` must be a function of its inputs and of tensors it reads. Tensors it reads but does
 * not list (e.g. frozen weights) are held, so their recorded storage is read at every run;
 * replacing such a tensor's storage later (`assign`) is not seen by a replay. Tensors `fn`
 * updates in place (`Tensor.assign`: parameters, optimiser state) must be listed in
 * `opts.state` (see {@link RecordOptions}); `recordStep` is the form that also returns the
 * recording call's results (a training step: the recording call is a real step).
 * Shapes and dtypes are fixed: `run` with a different shape or dtype throws a typed error.
 */
import { ArgumentError, DTypeError, DisposedTensorError, ShapeError, fmtShape } from './errors.js';
import { keep, tidy } from './memory.js';
import { advanceGenerator, generatorState } from './ops/random.js';
import { currentBackend, runtime } from './runtime.js';
import { Tensor, nextTensorId } from './tensor.js';
import { GpuStorage, type Recording, WebGPUBackend } from './webgpu/webgpu-backend.js';

export interface Replayable {
  /** Runs the captured computation on new inputs (same shapes and dtypes as the example). */
  run(...inputs: Tensor[]): Tensor[];
  /** Number of dispatches one run encodes (0 on the CPU backend). */
  readonly dispatches: number;
  /** Frees the recording (its buffers go back to the pool). */
  dispose(): void;
}

export interface RecordOptions {
  /**
   * Tensors `fn` may update in place with `Tensor.assign` (module parameters, optimiser
   * moments). On WebGPU each gets a buffer private to the recording ("home"), which the
   * recorded dispatches read: before every run the tensor's current value is copied into it
   * (so an eager change between runs — `loadStateDict`, a manual `assign` — is seen), and after
   * the run the tensor adopts a fresh copy of the value the recorded step produced. The Tensor
   * objects keep their identity; storages a user can see are never overwritten (views made
   * earlier keep their values, as with eager `assign`). An `assign` during the recording to a
   * tensor made before it and not listed here is an ArgumentError (a replay would not update it).
   */
  state?: readonly Tensor[];
}

/** What {@link recordStep} returns: the recording call's results and the replayable step. */
export interface RecordedStep {
  /** The results of the recording call (the caller owns them). */
  outputs: Tensor[];
  replay: Replayable;
}

type Fn = (...inputs: Tensor[]) => Tensor | Tensor[];

function signature(example: readonly Tensor[]) {
  const sig = example.map((t) => ({ shape: [...t.shape], dtype: t.dtype }));
  return (inputs: readonly Tensor[]) => {
    if (inputs.length !== sig.length) throw new ShapeError(`capture.run: expected ${sig.length} inputs, got ${inputs.length}`);
    inputs.forEach((t, i) => {
      const s = sig[i];
      if (t.shape.length !== s.shape.length || t.shape.some((d, k) => d !== s.shape[k])) {
        throw new ShapeError(`capture.run: input ${i} has shape ${fmtShape(t.shape)}, the capture was recorded with ${fmtShape(s.shape)} (record again for a new shape)`);
      }
      if (t.dtype !== s.dtype) throw new DTypeError(`capture.run: input ${i} has dtype ${t.dtype}, the capture was recorded with ${s.dtype}`);
    });
  };
}

function checkState(state: readonly Tensor[], example: readonly Tensor[], be: unknown): void {
  const seen = new Set<Tensor>();
  for (const t of state) {
    if (!(t instanceof Tensor)) throw new ArgumentError('capture: `state` must list tensors');
    if (t.isDisposed) throw new DisposedTensorError(`capture: state tensor #${t.id} ${fmtShape(t.shape)} was disposed`);
    if (t.backend !== be) throw new ArgumentError(`capture: state tensor #${t.id} ${fmtShape(t.shape)} lives on ${t.backend.name}, the inputs on another backend`);
    if (seen.has(t)) throw new ArgumentError(`capture: state tensor #${t.id} ${fmtShape(t.shape)} is listed twice`);
    if (example.includes(t)) throw new ArgumentError(`capture: state tensor #${t.id} ${fmtShape(t.shape)} is also an input`);
    seen.add(t);
  }
}

/**
 * Calls `fn` while watching `Tensor.assign`: tensors of `state` that were assigned are collected;
 * an assign to any other tensor made before the call is an ArgumentError (raised after the call).
 */
function watchAssigns(state: ReadonlySet<Tensor>, body: () => Tensor[]): { result: Tensor[]; assigned: Set<Tensor> } {
  const firstNew = nextTensorId();
  const assigned = new Set<Tensor>();
  let stray: Tensor | null = null;
  const prev = runtime.onAssign;
  runtime.onAssign = (t) => {
    if (state.has(t)) assigned.add(t);
    else if (t.id < firstNew && !stray) stray = t;
  };
  let result: Tensor[];
  try {
    result = body();
  } finally {
    runtime.onAssign = prev;
  }
  if (stray) {
    for (const o of result) o.dispose();
    const t: Tensor = stray;
    throw new ArgumentError(`capture: the recorded function updated tensor #${t.id} ${fmtShape(t.shape)} ${t.dtype} in place, which is not listed in \`state\` (a replay would not update it; list it in the state)`);
  }
  return { result, assigned };
}

/** Records `fn` on `example` (see the module comment) and returns a replayable capture. */
export function recordReplay(fn: Fn, example: readonly Tensor[], opts: RecordOptions = {}): Replayable {
  const { outputs, replay } = recordStep(fn, example, opts);
  for (const t of outputs) t.dispose();
  return replay;
}

/**
 * Runs `fn(...inputs)` once — for real: tensors listed in `opts.state` are updated as an eager
 * call would — while recording it, and returns its results with a {@link Replayable} that
 * repeats it on new inputs of the same shapes and dtypes. A training step:
 * `recordStep((x, y) => { ...forward, backward, optimiser update...; return loss }, [x, y],
 * { state: [...parameters, ...optimiserState] })`; `Optimizer.compile` wraps this.
 * On the CPU backend the call runs eagerly and `run` calls `fn` again.
 */
export function recordStep(fn: Fn, inputs: readonly Tensor[], opts: RecordOptions = {}): RecordedStep {
  const be = inputs.length ? inputs[0].backend : currentBackend();
  const check = signature(inputs);
  const state = opts.state ?? [];
  checkState(state, inputs, be);
  const stateSet = new Set(state);
  const call = (args: readonly Tensor[]) => tidy(() => {
    const r = fn(...args);
    const outs = Array.isArray(r) ? r : [r];
    for (const o of outs) if (stateSet.has(o)) throw new ArgumentError(`capture: the recorded function returned state tensor #${o.id} ${fmtShape(o.shape)}; return a copy (e.g. \`t.add(0)\`) instead`);
    return outs;
  });
  if (!(be instanceof WebGPUBackend)) {
    // The CPU backend has no dispatches to save: the recording call runs (and consumes its
    // random streams, and updates the state, as on WebGPU) and every run calls fn again.
    const outputs = watchAssigns(stateSet, () => call(inputs)).result;
    return { outputs, replay: { run: (...args) => (check(args), call(args)), dispatches: 0, dispose: () => {} } };
  }
  const gs = (t: Tensor) => t.storageFor('capture') as GpuStorage;
  /** A fresh storage holding a copy of `src` (encoded now, outside any recording). */
  const copyOf = (src: GpuStorage): GpuStorage => {
    const b = be.allocBuffer(src.bytes, 'capture');
    be.copyBuffer(src.buffer, 0, b, 0, src.bytes);
    return new GpuStorage(be, b, src.bytes);
  };
  /** `t` takes over storage `s` (its old storage is released when nothing else holds it). */
  const adopt = (t: Tensor, s: GpuStorage) => {
    const prev = runtime.onAssign;
    runtime.onAssign = null;
    try {
      t.assign(new Tensor(s, t.shape, t.dtype), 'capture');
    } finally {
      runtime.onAssign = prev;
    }
  };
  const unhold = (s: GpuStorage) => {
    if (--s.refs === 0) be.release(s);
  };
  // Recorded inputs: private copies, so the caller may dispose the examples.
  const ins = inputs.map((t) => keep(tidy(() => t.add(0).cast(t.dtype))));
  // State: each tensor moves to a private home storage (held by the capture) that the recording reads.
  const homes = state.map((t) => {
    const h = copyOf(gs(t));
    adopt(t, h);
    h.refs++;
    return h;
  });
  const g0 = generatorState().offset;
  const d0 = be.dispatchCount;
  be.beginRecording();
  let outs: Tensor[];
  let assigned: Set<Tensor>;
  try {
    ({ result: outs, assigned } = watchAssigns(stateSet, () => call(ins).map((t) => keep(t))));
  } catch (e) {
    be.releaseRecording(be.endRecording());
    for (const t of ins) t.dispose();
    for (const h of homes) unhold(h);
    throw e;
  }
  const rec: Recording = be.endRecording();
  const dispatches = be.dispatchCount - d0;
  const delta = generatorState().offset - g0;
  // Where each updated state tensor's new value lands (held: the recorded dispatches write it).
  const finals = state.map((t) => {
    if (!assigned.has(t)) return null;
    const f = gs(t);
    f.refs++;
    return f;
  });
  /** After the recording call or a run: every state tensor gets a fresh storage with its value. */
  const settle = () => state.forEach((t, i) => {
    const f = finals[i];
    if (f) adopt(t, copyOf(f));
  });
  // Unassigned state tensors still hold their home: give them a copy so the home stays private.
  state.forEach((t, i) => {
    if (!finals[i]) adopt(t, copyOf(homes[i]));
  });
  settle();
  const copyOut = (o: Tensor) => {
    const bytes = 4 * o.size;
    const b = be.allocBuffer(bytes, 'capture.run');
    be.copyBuffer(gs(o).buffer, 0, b, 0, bytes);
    return new Tensor(new GpuStorage(be, b, bytes), o.shape, o.dtype);
  };
  const outputs = outs.map(copyOut);
  let runs = 0;
  let disposed = false;
  return {
    outputs,
    replay: {
      dispatches,
      run(...args) {
        if (disposed) throw new ShapeError('capture.run: the capture was disposed');
        check(args);
        state.forEach((t) => {
          if (t.isDisposed) throw new DisposedTensorError(`capture.run: state tensor #${t.id} ${fmtShape(t.shape)} was disposed after the recording`);
        });
        runs++;
        ins.forEach((t, i) => {
          if (args[i] !== t) be.copyBuffer(gs(args[i]).buffer, 0, gs(t).buffer, 0, 4 * t.size);
        });
        state.forEach((t, i) => be.copyBuffer(gs(t).buffer, 0, homes[i].buffer, 0, homes[i].bytes));
        be.replayRecording(rec, runs * delta);
        advanceGenerator(delta);
        settle();
        return outs.map(copyOut);
      },
      dispose() {
        if (disposed) return;
        disposed = true;
        for (const t of [...ins, ...outs]) t.dispose();
        for (const h of homes) unhold(h);
        for (const f of finals) if (f) unhold(f);
        be.releaseRecording(rec);
      },
    },
  };
}
