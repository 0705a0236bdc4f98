import { describe, expect, it } from 'vitest';
import {
  type Tensor, ArgumentError, DTypeError, ShapeError, BackendMismatchError, Module, Sequential, Linear, ReLU, Dropout, BatchNorm1d, Tanh,
  capture, dispose, grad, keep, manualSeed, memory, parameter, setBackend, tensor, tidy, zeros, SGD, crossEntropy, noGrad,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { expectClose } from './helpers/compare.js';

setBackend(cpu);
const val = async (t: Tensor) => Array.from(await t.data());

class Net extends Module<[Tensor], Tensor> {
  features = new Sequential(new Linear(4, 8), new ReLU(), new Dropout(0.5), new Linear(8, 6));
  bn = new BatchNorm1d(6);
  head = new Linear(6, 3);
  scale = parameter(tensor([2]));
  forward(x: Tensor): Tensor {
    return this.head.forward(this.bn.forward(this.features.forward(x)).tanh()).mul(this.scale);
  }
}

describe('Module: registration, names, modes, state', () => {
  it('finds parameters, buffers and submodules by property assignment with PyTorch dotted names', () => {
    manualSeed(0);
    const net = new Net();
    expect(net.namedParameters().map(([n]) => n)).toEqual([
      'scale', 'features.0.weight', 'features.0.bias', 'features.3.weight', 'features.3.bias', 'bn.weight', 'bn.bias', 'head.weight', 'head.bias',
    ]);
    expect(net.namedBuffers().map(([n]) => n)).toEqual(['bn.runningMean', 'bn.runningVar', 'bn.numBatchesTracked']);
    expect(net.parameterCount()).toBe(1 + 32 + 8 + 48 + 6 + 6 + 6 + 18 + 3);
    expect(net.namedModules().map(([n]) => n)).toEqual(['', 'features', 'features.0', 'features.1', 'features.2', 'features.3', 'bn', 'head']);
    const sd = net.stateDict();
    expect(Object.keys(sd)).toEqual([
      'scale', 'features.0.weight', 'features.0.bias', 'features.3.weight', 'features.3.bias',
      'bn.weight', 'bn.bias', 'bn.runningMean', 'bn.runningVar', 'bn.numBatchesTracked', 'head.weight', 'head.bias',
    ]);
    expect(sd['features.0.weight'].shape).toEqual([8, 4]);
    dispose(sd);
    expect(net.parameters().every((p) => p.requiresGrad)).toBe(true);
    expect(String(net)).toContain('(features): Sequential');
    net.dispose();
  });

  it('explicit registration, shared parameters appear once, invalid names are rejected', () => {
    class Tied extends Module<[Tensor], Tensor> {
      a = new Linear(3, 3);
      b = new Linear(3, 3, { bias: false });
      /** Set by registerParameter (declared only for its type: no field initialiser). */
      declare gain: Tensor;
      constructor() {
        super();
        this.b.weight = this.a.weight;
        this.registerModule('extra', new Tanh());
        this.registerBuffer('counter', zeros([1]));
        this.registerParameter('gain', tensor([1, 1, 1]));
      }
      forward(x: Tensor) { return this.b.forward(this.a.forward(x)).mul(this.gain); }
    }
    const m = new Tied();
    expect(m.namedParameters().map(([n]) => n)).toEqual(['gain', 'a.weight', 'a.bias']);
    expect(Object.keys(tidy(() => m.stateDict()))).toContain('b.weight');
    expect(m.namedBuffers().map(([n]) => n)).toEqual(['counter']);
    expect(() => m.registerParameter('bad.name', tensor([1]))).toThrow(ArgumentError);
    expect(() => m.registerModule('forward', new Tanh())).toThrow(/shadow a method/);
    m.dispose();
  });

  it('train()/eval() recurse; parameters survive tidy; dispose frees everything', () => {
    const m0 = memory().liveTensors;
    const net = tidy(() => new Net());
    expect(memory().liveTensors).toBe(m0 + 12);
    expect(net.parameters().every((p) => !p.isDisposed)).toBe(true);
    net.eval();
    expect(net.modules().every((m) => !m.training)).toBe(true);
    net.train();
    expect(net.features.at(2).training).toBe(true);
    tidy(() => {
      const y = net.forward(tensor(new Array(20).fill(0).map((_, i) => Math.sin(i)), [5, 4]));
      y.sum().backward();
    });
    expect(net.parameters().every((p) => p.grad !== null)).toBe(true);
    net.zeroGrad();
    expect(net.parameters().every((p) => p.grad === null)).toBe(true);
    net.dispose();
    expect(memory().liveTensors).toBe(m0);
  });

  it('loadStateDict round-trips and checks keys, shapes and dtypes with typed errors naming the key', async () => {
    manualSeed(1);
    const a = new Net();
    manualSeed(2);
    const b = new Net();
    const x = tensor(new Array(12).fill(0).map((_, i) => i / 7 - 0.5), [3, 4]);
    a.eval();
    b.eval();
    const ya = await val(a.forward(x));
    expect(await val(b.forward(x))).not.toEqual(ya);
    const sd = a.stateDict();
    expect(b.loadStateDict(sd)).toEqual({ missingKeys: [], unexpectedKeys: [] });
    dispose(sd);
    expect(await val(b.forward(x))).toEqual(ya);

    const sd2 = a.stateDict();
    const bad = { ...sd2, 'head.weight': zeros([3, 5]) };
    expect(() => b.loadStateDict(bad)).toThrow(ShapeError);
    expect(() => b.loadStateDict(bad)).toThrow(/'head\.weight' has shape \[3,5\], the module expects \[3,6\]/);
    expect(() => b.loadStateDict({ ...sd2, 'bn.numBatchesTracked': zeros([]) })).toThrow(DTypeError);
    const { 'bn.bias': _drop, ...missing } = sd2;
    expect(() => b.loadStateDict(missing)).toThrow(/missing keys \[bn\.bias\]/);
    expect(() => b.loadStateDict({ ...sd2, extra: zeros([1]) })).toThrow(/unexpected keys \[extra\]/);
    expect(b.loadStateDict({ ...missing, extra: zeros([1]) }, { strict: false })).toEqual({ missingKeys: ['bn.bias'], unexpectedKeys: ['extra'] });
    dispose(sd2);
  });

  it('stateDict is a snapshot: later optimiser steps do not change it', async () => {
    const lin = new Linear(2, 2);
    const before = await val(lin.weight);
    const sd = lin.stateDict();
    const opt = new SGD(lin.parameters(), { lr: 0.5 });
    tidy(() => lin.forward(tensor([[1, 2]])).sum().backward());
    opt.step();
    expect(await val(sd.weight)).toEqual(before);
    expect(await val(lin.weight)).not.toEqual(before);
    dispose(sd);
    lin.dispose();
  });

  it('to(float64) casts parameters and buffers; to(backend) moves them in place', async (ctx) => {
    const net = new Net();
    await net.to('float64');
    expect(net.parameters().every((p) => p.dtype === 'float64' && p.requiresGrad)).toBe(true);
    expect(net.bn.runningMean!.dtype).toBe('float64');
    expect(net.bn.numBatchesTracked!.dtype).toBe('int32');
    net.dispose();

    const gpu = await requireWebGPU(ctx);
    setBackend(cpu);
    const m = new Net().eval();
    const x = tensor(new Array(12).fill(0).map((_, i) => Math.cos(i)), [3, 4]);
    const yc = await val(m.forward(x));
    const w = m.head.weight;
    await m.to(gpu);
    expect(m.head.weight).toBe(w);
    expect(m.parameters().every((p) => p.backend === gpu)).toBe(true);
    expect(() => m.forward(x)).toThrow(BackendMismatchError);
    const xg = await x.to(gpu);
    expectClose(await val(m.forward(xg)), yc, { rtol: 1e-5, atol: 1e-6, why: 'small f32 MLP' }, 'moved model');
    const cpuNet = new Net();
    const sd = m.stateDict();
    expect(() => cpuNet.loadStateDict(sd)).toThrow(BackendMismatchError);
    dispose(sd);
    m.dispose();
    cpuNet.dispose();
    setBackend(cpu);
  });
});

describe('Module hooks', () => {
  it('forward hooks capture activations and may replace the output; pre-hooks may replace inputs; remove() detaches', async () => {
    const lin = new Linear(3, 2);
    const seen: number[][] = [];
    const h = lin.registerForwardHook((_m, inputs, out) => {
      expect((inputs[0] as Tensor).shape).toEqual([1, 3]);
      seen.push((out as Tensor).shape as number[]);
    });
    const x = tensor([[1, 2, 3]]);
    const y = await val(lin.forward(x));
    expect(seen).toEqual([[1, 2]]);
    // abs(): x·0 is −0 for negative outputs, and toEqual tells −0 from +0.
    const r = lin.registerForwardHook((_m, _i, out) => (out as Tensor).mul(0).abs());
    expect(await val(lin.forward(x))).toEqual([0, 0]);
    r.remove();
    const p = lin.registerForwardPreHook((_m, inputs) => [(inputs[0] as Tensor).mul(2)]);
    const y2 = await val(lin.forward(x));
    p.remove();
    const b = await val(lin.bias!);
    expectClose(y2.map((v, i) => v - b[i]), y.map((v, i) => 2 * (v - b[i])), { rtol: 1e-6, atol: 1e-6, why: 'linear in x' }, 'prehook');
    h.remove();
    lin.forward(x);
    expect(seen.length).toBe(3);
    lin.dispose();
  });

  it('backward hooks receive d(loss)/d(output), equal to finite differences (float64)', async () => {
    manualSeed(5);
    const l1 = new Linear(3, 4);
    const l2 = new Linear(4, 2);
    await l1.to('float64');
    await l2.to('float64');
    const x = tensor([0.3, -1.2, 0.8, 1.5, 0.1, -0.4], [2, 3], { dtype: 'float64' });
    const loss = (delta?: { i: number; h: number }) =>
      noGrad(() => {
        const hk = delta ? l1.registerForwardHook((_m, _in, out) => {
          const d = new Array(8).fill(0);
          d[delta.i] = delta.h;
          return (out as Tensor).add(tensor(d, [2, 4], { dtype: 'float64' }));
        }) : null;
        const v = l2.forward(l1.forward(x).tanh()).square().sum();
        hk?.remove();
        return v;
      });
    let held: Tensor | null = null;
    const bh = l1.registerBackwardHook((_m, g) => {
      expect(g.shape).toEqual([2, 4]);
      held = keep(g.detach());
    });
    tidy(() => l2.forward(l1.forward(x).tanh()).square().sum().backward());
    bh.remove();
    const dy = await val(held!);
    const h = 1e-6;
    const fd: number[] = [];
    for (let i = 0; i < 8; i++) fd.push(((await loss({ i, h }).item()) - (await loss({ i, h: -h }).item())) / (2 * h));
    expectClose(dy!, fd, { rtol: 1e-6, atol: 1e-8, why: 'central FD, float64' }, 'output gradient');
    l1.dispose();
    l2.dispose();
  });

  it('capture(): activation + output gradient via backward() and grad(); per-sample Linear gradients sum to weight.grad', async () => {
    manualSeed(9);
    const lin = new Linear(3, 2);
    const model = new Sequential(lin, new ReLU(), new Linear(2, 2));
    const x = tensor([[1, 2, 3], [-1, 0.5, 2], [0.2, -0.3, 0.1]]);
    const t = tensor([0, 1, 1], [3], { dtype: 'int32' });
    const cap = capture(lin);
    const m0 = memory().liveTensors;
    tidy(() => crossEntropy(model.forward(x), t, { reduction: 'sum' }).backward());
    expect(cap.activation!.shape).toEqual([3, 2]);
    expect(cap.gradient!.shape).toEqual([3, 2]);
    // Per-sample weight gradient of a Linear layer: dy_iᵀ x_i; their sum is the batch gradient.
    const dy = await val(cap.gradient!);
    const xs = await val(x);
    const sumPer = new Array(6).fill(0);
    for (let i = 0; i < 3; i++) for (let o = 0; o < 2; o++) for (let k = 0; k < 3; k++) sumPer[o * 3 + k] += dy[i * 2 + o] * xs[i * 3 + k];
    expectClose(await val(lin.weight.grad!), sumPer, { rtol: 1e-5, atol: 1e-6, why: 'f32 sums of 3 terms' }, 'per-sample sum');
    // The hook also fires through the functional grad() API (ODIN-style input gradients).
    const gx = grad((xx: Tensor) => crossEntropy(model.forward(xx), t, { reduction: 'sum' }))(x);
    expect(gx.shape).toEqual([3, 3]);
    expectClose(await val(cap.gradient!), dy, { rtol: 1e-6, atol: 1e-7, why: 'same computation' }, 'grad() path');
    gx.dispose();
    // Held: the latest activation and gradient (older ones freed) and the 4 parameter grads.
    expect(memory().liveTensors).toBe(m0 + 6);
    cap.remove();
    expect(memory().liveTensors).toBe(m0 + 4);
    model.dispose();
    expect(memory().liveTensors).toBe(m0 - 4);
  });
});
