import { describe, expect, it } from 'vitest';
import {
  type Backend, ArgumentError, DeviceError, BatchNorm2d, Conv2d, DeepEnsemble, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential, Tanh,
  enableMCDropout, manualSeed, mcDropout, mcDropoutLogits, setBackend, stack, tensor, uniform, type Tensor,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

function mlp(): Sequential {
  return new Sequential(new Linear(6, 16), new ReLU(), new Dropout(0.5), new Linear(16, 12), new Tanh(), new Dropout(0.3), new Linear(12, 3));
}

async function arr(t: Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

async function loopEqualsBatched(be: Backend) {
  setBackend(be);
  manualSeed(3);
  const model = mlp();
  model.eval();
  enableMCDropout(model);
  const x = uniform([4, 6], { seed: 9, low: -1, high: 1 });
  const T = 5;
  const batched = mcDropoutLogits(model, x, { samples: T, seed: 42 });
  expect(batched.shape).toEqual([T, 4, 3]);
  // The explicit T-loop: pass t uses the rows t·B.. of each layer's stream.
  const drops = model.modules().filter((m): m is Dropout => m instanceof Dropout);
  const loop: Tensor[] = [];
  for (let t = 0; t < T; t++) {
    drops.forEach((d, l) => d.setMaskStream({ seed: 42 + l * 2 ** 32, rowStart: t * 4 }));
    loop.push(model.forward(x));
  }
  drops.forEach((d) => d.setMaskStream(null));
  const chunked = mcDropoutLogits(model, x, { samples: T, seed: 42, maxRowsPerPass: 8 });
  return { batched: await arr(batched), loop: await arr(stack(loop, 0)), chunked: await arr(chunked) };
}

describe('MC dropout: T passes as one batched forward', () => {
  it('cpu: batched == explicit T-loop with the same streams == chunked', async () => {
    const r = await loopEqualsBatched(cpu);
    expect(r.batched).toEqual(r.loop);
    expect(r.chunked).toEqual(r.batched);
    // Passes really differ from each other (independent masks per row).
    expect(r.batched.slice(0, 12)).not.toEqual(r.batched.slice(12, 24));
  });

  it('webgpu: batched == explicit T-loop == chunked, and the masks match the CPU reference', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const g = await loopEqualsBatched(gpu);
    expect(g.batched).toEqual(g.loop);
    expect(g.chunked).toEqual(g.batched);
    const c = await loopEqualsBatched(cpu);
    g.batched.forEach((v, i) => expect(Math.abs(v - c.batched[i])).toBeLessThan(1e-5));
  });

  it('returns the MC summary scores with the documented shapes and ranges', async () => {
    setBackend(cpu);
    manualSeed(1);
    const model = mlp();
    model.eval();
    enableMCDropout(model);
    const r = mcDropout(model, uniform([7, 6], { seed: 2 }), { samples: 20, seed: 5 });
    expect(r.probs.shape).toEqual([20, 7, 3]);
    expect(r.mean.shape).toEqual([7, 3]);
    const mi = await arr(r.mutualInformation);
    const h = await arr(r.predictiveEntropy);
    const vr = await arr(r.variationRatio);
    mi.forEach((v, i) => {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(h[i] + 1e-6);
      expect(h[i]).toBeLessThanOrEqual(Math.log(3) + 1e-6);
    });
    vr.forEach((v) => expect(v >= 0 && v < 1).toBe(true));
  });

  it('halves the chunk when a pass would exceed the adapter buffer limit (same result)', async () => {
    setBackend(cpu);
    manualSeed(3);
    const model = mlp();
    model.eval();
    enableMCDropout(model);
    const x = uniform([4, 6], { seed: 9 });
    const want = await mcDropoutLogits(model, x, { samples: 6, seed: 7 }).data();
    // A stand-in for a device whose buffers hold at most 8 rows of activations.
    const forward = model.forward.bind(model);
    let refused = 0;
    model.forward = (t: Tensor) => {
      if (t.shape[0] > 8) {
        refused++;
        throw new DeviceError("linear: a buffer of 999 bytes exceeds this adapter's limit of 998 bytes (maxStorageBufferBindingSize)");
      }
      return forward(t);
    };
    const got = await mcDropoutLogits(model, x, { samples: 6, seed: 7 }).data();
    expect(refused).toBeGreaterThan(0);
    expect(Array.from(got)).toEqual(Array.from(want));
  });

  it('refuses a model without an active dropout layer', () => {
    setBackend(cpu);
    const model = mlp();
    model.eval();
    expect(() => mcDropout(model, uniform([2, 6]), { samples: 3 })).toThrow(ArgumentError);
    expect(() => mcDropout(model, uniform([2, 6]), { samples: 3 })).toThrow(/enableMCDropout/);
  });
});

function convNet(): Sequential {
  return new Sequential(
    new Conv2d(1, 4, 3, { padding: 1 }), new BatchNorm2d(4), new ReLU(), new MaxPool2d(2),
    new Conv2d(4, 6, 3), new ReLU(), new Flatten(), new Linear(6 * 2 * 2, 8), new ReLU(), new Dropout(0.5), new Linear(8, 5),
  );
}

async function ensembleCheck(be: Backend) {
  setBackend(be);
  const ens = DeepEnsemble.create(() => convNet(), 3, 10);
  // Give BatchNorm non-trivial running statistics so the stacked affine form is exercised.
  ens.members.forEach((m, i) => {
    const bn = m.modules().find((k): k is BatchNorm2d => k instanceof BatchNorm2d)!;
    bn.runningMean!.dispose();
    bn.runningVar!.dispose();
    (bn as { runningMean: Tensor | null }).runningMean = tensor([0.1 * i, -0.2, 0.3, 0]);
    (bn as { runningVar: Tensor | null }).runningVar = tensor([1, 2 + i, 0.5, 1.5]);
  });
  ens.eval();
  const x = uniform([2, 1, 8, 8], { seed: 4 });
  const stacked = ens.forward(x);
  const loop = ens.forwardLoop(x);
  expect(stacked.shape).toEqual([3, 2, 5]);
  const a = await arr(stacked);
  const b = await arr(loop);
  a.forEach((v, i) => expect(Math.abs(v - b[i])).toBeLessThan(1e-5 * (1 + Math.abs(b[i]))));
  const p = ens.predict(x);
  expect(p.probs.shape).toEqual([3, 2, 5]);
  return a;
}

describe('deep ensembles: all members in one stacked pass', () => {
  it('cpu: stacked forward equals the members run one by one', async () => {
    await ensembleCheck(cpu);
  });

  it('webgpu: stacked forward equals the members run one by one', async (ctx) => {
    await ensembleCheck(await requireWebGPU(ctx));
  });

  it('MLP members and Gaussian regression heads: aleatoric = mean of variances, epistemic = variance of means', async () => {
    setBackend(cpu);
    const ens = DeepEnsemble.create(() => new Sequential(new Linear(1, 8), new Tanh(), new Linear(8, 2)), 4, 0);
    ens.eval();
    const x = tensor([[-1], [0], [2]]);
    const out = await ens.forwardLoop(x).toArray() as number[][][];
    const r = ens.predictRegression(x);
    const [mean, ale, epi] = [await arr(r.mean), await arr(r.aleatoric), await arr(r.epistemic)];
    for (let b = 0; b < 3; b++) {
      const mus = out.map((m) => m[b][0]);
      const vars = out.map((m) => Math.exp(m[b][1]));
      const mu = mus.reduce((s, v) => s + v, 0) / 4;
      expect(mean[b]).toBeCloseTo(mu, 5);
      expect(ale[b]).toBeCloseTo(vars.reduce((s, v) => s + v, 0) / 4, 5);
      expect(epi[b]).toBeCloseTo(mus.reduce((s, v) => s + (v - mu) ** 2, 0) / 4, 5);
    }
  });
});
