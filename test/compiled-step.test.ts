// A whole training step recorded and replayed (Optimizer.compile → engine/capture.ts recordStep):
// forward + backward + fused optimiser update, parameters and optimiser state updated in place,
// per-step uniforms (Adam's bias corrections, the learning rate) re-read per replay, dropout
// streams continuing the global generator.
//
// * k compiled steps of a small conv net with dropout equal k eager steps bit for bit — weights,
//   optimiser state, losses and the generator position — with Adam (a StepLR decay between
//   steps) and with SGD (momentum, dampening, weight decay); on WebGPU the steps after the
//   second are replays (fewer JS ops: `recorded`, dispatch count per step = the recording's).
// * loadStateDict between replays (state tensors replaced) is seen: the step records again.
// * Another input shape or dtype → ShapeError / DTypeError; train/eval switch or a parameter
//   added after compiling → ArgumentError.
// * No leak: live tensors and pooled GPU bytes in use flat over many replays, back to the start
//   after dispose.
// * recordStep / recordReplay with `state`: an in-place update is replayed; an in-place update
//   of a tensor not listed is an ArgumentError.
import { describe, expect, it } from 'vitest';
import {
  Adam, ArgumentError, type Backend, Conv2d, DTypeError, Dropout, Flatten, Linear, MaxPool2d, type Optimizer, ReLU, SGD, Sequential, ShapeError, StepLR,
  type Tensor, WebGPUBackend, crossEntropy, dispose, dropout, manualSeed, memory, parameter, recordReplay, recordStep, setBackend, tensor, tidy,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { values } from './helpers/compare.js';

const B = 7;
const STEPS = 6;

async function makeNet(be: Backend): Promise<Sequential> {
  setBackend(cpu);
  manualSeed(3);
  const net = new Sequential(new Conv2d(1, 4, 3), new ReLU(), new MaxPool2d(2), new Flatten(), new Dropout(0.5), new Linear(36, 5));
  await net.to(be);
  setBackend(be);
  return net;
}

function batches(be: Backend): { x: Tensor; y: Tensor }[] {
  return Array.from({ length: STEPS }, (_, k) => ({
    x: tensor(Float32Array.from(values(B * 64, 100 + k, -1, 1)), [B, 1, 8, 8], { backend: be }),
    y: tensor(Int32Array.from({ length: B }, (_, i) => (i * 3 + k) % 5), [B], { dtype: 'int32', backend: be }),
  }));
}

type MakeOpt = (net: Sequential) => Optimizer<{ lr: number }>;

async function snapshot(net: Sequential, opt: Optimizer<{ lr: number }>): Promise<Record<string, number[] | number>> {
  const out: Record<string, number[] | number> = {};
  for (const [name, p] of net.namedParameters()) {
    out[name] = Array.from(await p.data());
    const st = opt.state.get(p) ?? {};
    for (const [k, v] of Object.entries(st)) out[`${name}.${k}`] = typeof v === 'number' ? v : Array.from(await v.data());
  }
  return out;
}

/** Runs STEPS steps (eager or compiled), a StepLR decay after every second step; returns weights, state, losses and the next dropout draw. */
async function train(be: Backend, makeOpt: MakeOpt, compiled: boolean) {
  const net = await makeNet(be);
  net.train();
  const opt = makeOpt(net);
  const sched = new StepLR(opt, 2, 0.5);
  const data = batches(be);
  const lossFn = (x: Tensor, y: Tensor) => crossEntropy(net.forward(x), y);
  const step = compiled ? opt.compile(lossFn, { model: net }) : null;
  manualSeed(11);
  const losses: number[] = [];
  const perStep: number[] = [];
  for (const [k, { x, y }] of data.entries()) {
    const d0 = be instanceof WebGPUBackend ? be.dispatchCount : 0;
    let loss: Tensor;
    if (step) loss = step.step(x, y);
    else {
      loss = tidy(() => {
        opt.zeroGrad();
        const l = lossFn(x, y);
        l.backward();
        opt.step();
        opt.zeroGrad();
        return l.detach();
      });
    }
    perStep.push(be instanceof WebGPUBackend ? be.dispatchCount - d0 : 0);
    losses.push(...(await loss.data()));
    loss.dispose();
    if (k % 2 === 1) sched.step();
    if (step && be instanceof WebGPUBackend) expect(step.recorded).toBe(k >= 1);
  }
  const probe = tensor(Float32Array.from(values(40, 9)), [4, 10], { backend: be });
  const next = dropout(probe, 0.5);
  const snap = await snapshot(net, opt);
  const nextDraw = Array.from(await next.data());
  const dispatches = step?.dispatches ?? 0;
  step?.dispose();
  dispose([probe, next, ...data.flatMap((d) => [d.x, d.y])]);
  opt.dispose();
  net.dispose();
  return { snap, losses, nextDraw, perStep, dispatches };
}

const OPTIMISERS: [string, MakeOpt][] = [
  ['Adam', (net) => new Adam(net.parameters(), { lr: 1e-2, weightDecay: 1e-3 })],
  ['SGD momentum + dampening + weight decay', (net) => new SGD(net.parameters(), { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 1e-3 })],
];

async function equalsEager(be: Backend) {
  for (const [name, make] of OPTIMISERS) {
    const eager = await train(be, make, false);
    const comp = await train(be, make, true);
    // The same kernels on the same data: identical bits (the CPU runs the compiled step eagerly).
    expect(comp.losses, name).toEqual(eager.losses);
    expect(Object.keys(comp.snap).sort(), name).toEqual(Object.keys(eager.snap).sort());
    for (const k of Object.keys(eager.snap)) expect(comp.snap[k], `${name} ${k}`).toEqual(eager.snap[k]);
    expect(comp.nextDraw, `${name}: the generator ends where the eager steps leave it`).toEqual(eager.nextDraw);
    if (be instanceof WebGPUBackend) {
      expect(comp.dispatches).toBeGreaterThan(0);
      // Replayed steps encode exactly the recorded dispatches.
      for (const n of comp.perStep.slice(2)) expect(n).toBe(comp.dispatches);
    }
  }
}

async function errorsAndLeaks(be: Backend) {
  const net = await makeNet(be);
  const opt = new Adam(net.parameters(), { lr: 1e-2 });
  const step = opt.compile((x: Tensor, y: Tensor) => crossEntropy(net.forward(x), y), { model: net });
  const data = batches(be);
  const [{ x, y }, { x: x2, y: y2 }] = data;
  for (let k = 0; k < 3; k++) step.step(x, y).dispose();
  const live = memory().liveTensors;
  const bytes = be instanceof WebGPUBackend ? be.memoryInfo().bytesInUse : 0;
  for (let k = 0; k < 20; k++) step.step(k % 2 ? x : x2, k % 2 ? y : y2).dispose();
  expect(memory().liveTensors).toBe(live);
  if (be instanceof WebGPUBackend) {
    await be.sync();
    expect(be.memoryInfo().bytesInUse).toBe(bytes);
  }
  // Another batch size or label dtype: typed errors naming what was recorded.
  const small = tensor(new Float32Array(3 * 64), [3, 1, 8, 8], { backend: be });
  const ys = tensor(new Int32Array(3), [3], { dtype: 'int32', backend: be });
  expect(() => step.step(small, ys)).toThrow(ShapeError);
  expect(() => step.step(small, ys)).toThrow(/input 0 has shape \[3,1,8,8\], the step was compiled with \[7,1,8,8\]/);
  const yf = tensor(new Float32Array(B), [B], { backend: be });
  expect(() => step.step(x, yf)).toThrow(DTypeError);
  // Switching to eval mode after compiling.
  net.eval();
  expect(() => step.step(x, y)).toThrow(ArgumentError);
  expect(() => step.step(x, y)).toThrow(/Sequential was switched to eval mode after the step was compiled in train mode/);
  net.train();
  step.step(x, y).dispose();
  // Adding a parameter after compiling.
  const extra = parameter(tensor([1, 2], [2], { backend: be }));
  opt.paramGroups[0].params.push(extra);
  expect(() => step.step(x, y)).toThrow(ArgumentError);
  expect(() => step.step(x, y)).toThrow(/the parameters of group 0 changed since the step was compiled/);
  opt.paramGroups[0].params.pop();
  step.step(x, y).dispose();
  dispose([small, ys, yf, extra]);
  step.dispose();
  expect(() => step.step(x, y)).toThrow(ArgumentError);
  opt.dispose();
  net.dispose();
  dispose(data.flatMap((d) => [d.x, d.y]));
}

/** loadStateDict between replays replaces the state tensors: the compiled step records again and stays equal to eager. */
async function reloadState(be: Backend) {
  const run = async (compiled: boolean) => {
    const net = await makeNet(be);
    const opt = new SGD(net.parameters(), { lr: 0.1, momentum: 0.5 });
    const lossFn = (x: Tensor, y: Tensor) => crossEntropy(net.forward(x), y);
    const step = opt.compile(lossFn);
    const data = batches(be);
    manualSeed(5);
    for (const [k, { x, y }] of data.entries()) {
      if (k === 3) {
        const sd = opt.stateDict();
        opt.loadStateDict(sd);
        for (const s of Object.values(sd.state)) for (const v of Object.values(s)) if (typeof v !== 'number') v.dispose();
      }
      const l = compiled ? step.step(x, y) : tidy(() => {
        opt.zeroGrad();
        const loss = lossFn(x, y);
        loss.backward();
        opt.step();
        opt.zeroGrad();
        return loss.detach();
      });
      l.dispose();
    }
    const snap = await snapshot(net, opt);
    step.dispose();
    dispose(data.flatMap((d) => [d.x, d.y]));
    opt.dispose();
    net.dispose();
    return snap;
  };
  expect(await run(true)).toEqual(await run(false));
}

/** The engine-level form: an in-place update listed in `state` is replayed; one not listed is refused. */
async function engineState(be: Backend) {
  const live = memory().liveTensors;
  const w = tensor([1, 2, 3], [3], { backend: be });
  const x = tensor([0.5, -1, 2], [3], { backend: be });
  const f = (a: Tensor) => {
    w.assign(w.mul(a).add(1));
    return w.sum();
  };
  const { outputs, replay } = recordStep(f, [x], { state: [w] });
  expect(Array.from(await outputs[0].data())).toEqual([1.5 + -1 + 7]);
  const view = w.detach(); // a view made between runs keeps its values
  const [s2] = replay.run(x);
  expect(Array.from(await w.data())).toEqual([1.75, 2, 15]);
  expect(Array.from(await s2.data())).toEqual([18.75]);
  expect(Array.from(await view.data())).toEqual([1.5, -1, 7]);
  // An eager update between runs is seen by the next run.
  w.assign(tensor([0, 0, 0], [3], { backend: be }));
  replay.run(x)[0].dispose();
  expect(Array.from(await w.data())).toEqual([1, 1, 1]);
  dispose([...outputs, s2, view]);
  replay.dispose();
  expect(() => recordReplay(f, [x])).toThrow(ArgumentError);
  expect(() => recordReplay(f, [x])).toThrow(/updated tensor #\d+ \[3\] float32 in place, which is not listed in `state`/);
  dispose([w, x]);
  expect(memory().liveTensors).toBe(live);
}

describe('Optimizer.compile: a recorded training step', () => {
  it('cpu: compiled steps run eagerly and equal eager steps; the same errors; no leak', async () => {
    await equalsEager(cpu);
    await errorsAndLeaks(cpu);
    await reloadState(cpu);
    await engineState(cpu);
  });

  it('webgpu: replayed steps equal eager steps bit for bit; typed errors; live tensors and pooled bytes flat', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const before = gpu.memoryInfo().bytesInUse;
    const live = memory().liveTensors;
    await equalsEager(gpu);
    await errorsAndLeaks(gpu);
    await reloadState(gpu);
    await engineState(gpu);
    setBackend(cpu);
    await gpu.sync();
    expect(memory().liveTensors).toBe(live);
    expect(gpu.memoryInfo().bytesInUse).toBe(before);
  });
});
