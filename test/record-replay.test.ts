// Record once, replay many (engine/capture.ts `recordReplay`, WebGPUBackend.beginRecording …
// replayRecording): on WebGPU the dispatch list of one call is recorded and re-encoded on new
// inputs without running the JS op graph; on the CPU backend `run` calls the function again.
//
// * Replayed results equal the eager function on the same new inputs (an elementwise chain
//   with scalars, a reduction and a matmul with a held weight; several outputs).
// * Dropout from the global generator: run k gives exactly the mask of the k-th eager call after
//   the recording, and the generator ends where the eager calls leave it.
// * One run encodes the recorded number of dispatches; a different shape or dtype is a typed
//   error; no tensors or pooled buffers leak after dispose.
import { describe, expect, it } from 'vitest';
import {
  type Backend, DTypeError, ShapeError, type Tensor, WebGPUBackend, add, dropout, manualSeed, matmul, memory, mul, recordReplay, relu, sum, tensor, tidy,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { values } from './helpers/compare.js';

/** Deterministic float32 values in [-1, 1) (the shared seeded generator of test/helpers/compare.ts). */
const rnd = (n: number, seed: number): Float32Array => Float32Array.from(values(n, seed, -1, 1));

async function suite(be: Backend) {
  const live = memory().liveTensors;
  const w = tensor(rnd(20 * 7, 3), [20, 7], { backend: be });
  const f = (x: Tensor) => {
    let h = x;
    for (let i = 0; i < 10; i++) h = relu(add(mul(h, 1.01), 0.001 * i));
    const y = matmul(h, w);
    return [y, sum(y, 1)];
  };
  const ex = tensor(rnd(33 * 20, 1), [33, 20], { backend: be });
  const rec = recordReplay(f, [ex]);
  ex.dispose();
  for (let k = 0; k < 3; k++) {
    const x = tensor(rnd(33 * 20, 10 + k), [33, 20], { backend: be });
    const d0 = be instanceof WebGPUBackend ? be.dispatchCount : 0;
    const got = rec.run(x);
    if (be instanceof WebGPUBackend) expect(be.dispatchCount - d0).toBe(rec.dispatches);
    const want = tidy(() => f(x));
    for (let o = 0; o < 2; o++) expect(Array.from(await got[o].data())).toEqual(Array.from(await want[o].data()));
    for (const t of [x, ...got, ...want]) t.dispose();
  }
  // Typed errors for a new shape or dtype.
  const wrong = tensor(rnd(32 * 20, 1), [32, 20], { backend: be });
  expect(() => rec.run(wrong)).toThrow(ShapeError);
  expect(() => rec.run(wrong)).toThrow(/input 0 has shape \[32,20\], the capture was recorded with \[33,20\]/);
  const int = tensor(new Int32Array(33 * 20), [33, 20], { dtype: 'int32', backend: be });
  expect(() => rec.run(int)).toThrow(DTypeError);
  wrong.dispose();
  int.dispose();
  rec.dispose();
  w.dispose();
  expect(memory().liveTensors).toBe(live);
}

async function dropoutSuite(be: Backend) {
  const g = (x: Tensor) => dropout(mul(x, 2), 0.5);
  const xs = [0, 1, 2, 3].map((k) => tensor(rnd(17 * 9, 40 + k), [17, 9], { backend: be }));
  // Eager: the call at the recording's position, then three more calls, then one extra draw.
  manualSeed(77);
  const eager: Float32Array[] = [];
  for (const x of xs) {
    const y = tidy(() => g(x));
    eager.push(Float32Array.from(await y.data()));
    y.dispose();
  }
  const after = dropout(xs[0], 0.5);
  const afterWant = Array.from(await after.data());
  after.dispose();
  // Recorded: the recording consumes the first call's stream; runs continue the sequence.
  manualSeed(77);
  const rec = recordReplay(g, [xs[0]]);
  for (let k = 1; k < 4; k++) {
    const [y] = rec.run(xs[k]);
    expect(Array.from(await y.data())).toEqual(Array.from(eager[k]));
    y.dispose();
  }
  const next = dropout(xs[0], 0.5);
  expect(Array.from(await next.data())).toEqual(afterWant); // the generator advanced as eagerly
  next.dispose();
  rec.dispose();
  for (const x of xs) x.dispose();
}

describe('recordReplay: record once, replay many', () => {
  it('cpu: run re-runs the function (same results, same errors)', async () => {
    await suite(cpu);
    await dropoutSuite(cpu);
  });

  it('webgpu: replayed dispatches equal the eager results; no pooled-buffer growth across runs', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    await suite(gpu);
    await dropoutSuite(gpu);
    // Bytes in use return to where they were once everything is disposed.
    const before = gpu.memoryInfo().bytesInUse;
    const x = tensor(rnd(64, 1), [8, 8], { backend: gpu });
    const rec = recordReplay((a) => relu(add(a, 1)), [x]);
    for (let k = 0; k < 5; k++) rec.run(x)[0].dispose();
    rec.dispose();
    x.dispose();
    await gpu.sync();
    expect(gpu.memoryInfo().bytesInUse).toBe(before);
  });
});
