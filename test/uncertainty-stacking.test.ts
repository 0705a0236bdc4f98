/**
 * Layers declare how they stack (nn/stacking.ts): a user-defined layer joins a DeepEnsemble by
 * implementing stackMembers; layers that do not, or subclasses that override forward but inherit
 * the stacking, are refused with a typed error. The public Dropout mask-stream API. The host
 * float64 helpers of uncertainty/host.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  type Backend, type StackContext, type StackedStep, type Tensor, ArgumentError, DeepEnsemble, Dropout, Linear, Module, ReLU, Sequential, ShapeError,
  classIndexLabels, dispose, dropout, manualSeed, memory, noGrad, parameter, rowLogsumexp, setBackend, softmaxRows, stack, tensor, tidy, uniform,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

/** A user-defined layer: y = x ⊙ s with a learnable per-feature scale s [F]. */
class Scale extends Module<[Tensor], Tensor> {
  s: Tensor;
  constructor(readonly features: number, seed: number) {
    super();
    this.s = parameter(uniform([features], { seed, low: 0.5, high: 1.5 }));
  }

  forward(x: Tensor): Tensor {
    return x.mul(this.s);
  }

  /** Stacked: the M scales as [M, 1, F] against activations [M, B, F]. */
  stackMembers(layers: readonly Module[], ctx: StackContext): StackedStep {
    const sM = ctx.keep(stack((layers as readonly Scale[]).map((l) => l.s.reshape([1, -1])), 0));
    return ({ h, layout }) => {
      if (layout === 'channels') throw new ShapeError('Scale: needs [M, B, F] activations');
      // On the shared input [B, F] the broadcast gives [M, B, F] directly.
      return { h: h.mul(sM), layout: 'members' };
    };
  }
}

/** Does not declare how it stacks. */
class Shift extends Module<[Tensor], Tensor> {
  forward(x: Tensor): Tensor {
    return x.add(1);
  }
}

/** Overrides forward but inherits Linear's stacking: must be refused. */
class NoisyLinear extends Linear {
  override forward(x: Tensor): Tensor {
    return super.forward(x).add(0.5);
  }
}

async function userLayerJoins(be: Backend): Promise<{ stacked: number[]; loop: number[] }> {
  setBackend(be);
  const ens = tidy(() => DeepEnsemble.create((i) => new Sequential(new Scale(4, 100 + i), new Linear(4, 6), new ReLU(), new Scale(6, 200 + i), new Linear(6, 3)), 3, 5).eval());
  const x = uniform([5, 4], { seed: 1, low: -1, high: 1 });
  const stacked = ens.forward(x);
  expect(stacked.shape).toEqual([3, 5, 3]);
  const loop = ens.forwardLoop(x);
  const r = { stacked: Array.from(await stacked.data()), loop: Array.from(await loop.data()) };
  ens.dispose();
  for (const m of ens.members) dispose(m.parameters());
  dispose([x, stacked, loop]);
  return r;
}

describe('DeepEnsemble: layers declare how they stack', () => {
  it('cpu: a user-defined layer joins the stacked forward (= members one by one)', async () => {
    const { stacked, loop } = await userLayerJoins(cpu);
    stacked.forEach((v, i) => expect(Math.abs(v - loop[i])).toBeLessThan(1e-5));
    // The members really differ (each has its own scales and weights).
    expect(stacked.slice(0, 15)).not.toEqual(stacked.slice(15, 30));
  });

  it('webgpu: the same', async (ctx) => {
    const { stacked, loop } = await userLayerJoins(await requireWebGPU(ctx));
    stacked.forEach((v, i) => expect(Math.abs(v - loop[i])).toBeLessThan(1e-5));
  });

  it('a layer without stackMembers, or one that overrides forward but inherits it, is a typed error', () => {
    setBackend(cpu);
    const x = tensor([[1, 2]]);
    const a = tidy(() => DeepEnsemble.create(() => new Sequential(new Linear(2, 2), new Shift()), 2));
    const before = memory().liveTensors;
    expect(() => a.forward(x)).toThrow(ArgumentError);
    expect(() => a.forward(x)).toThrow(/layer 1 \(Shift\).*does not implement stackMembers/);
    expect(memory().liveTensors).toBe(before); // the Linear's stacked weights were freed again
    const b = tidy(() => DeepEnsemble.create(() => new Sequential(new NoisyLinear(2, 2)), 2));
    expect(() => b.forward(x)).toThrow(/NoisyLinear\) overrides forward but inherits stackMembers from Linear/);
    for (const e of [a, b]) for (const m of e.members) dispose(m.parameters());
    x.dispose();
  });

  it('an ensemble of one member never frees the member\'s own weights', async () => {
    setBackend(cpu);
    const ens = tidy(() => DeepEnsemble.create(() => new Sequential(new Linear(3, 2)), 1).eval());
    const x = tensor([[1, 2, 3]]);
    const before = memory().liveTensors;
    const y = ens.forward(x);
    ens.dispose();
    expect(memory().liveTensors).toBe(before + 1); // only y
    const lin = ens.members[0] as Sequential;
    const ref = tidy(() => noGrad(() => lin.forward(x))); // would throw DisposedTensorError if the weight had been freed
    expect(Array.from(await y.data())).toEqual(Array.from(await ref.data()));
    dispose([y, ref, x, lin.parameters()]);
  });
});

describe('Dropout mask-stream API', () => {
  it('setMaskStream fixes the masks (= the dropout op with that stream), rowStart shifts rows, null restores the generator', async () => {
    setBackend(cpu);
    const d = new Dropout(0.5);
    d.train();
    const x = tidy(() => uniform([6, 8], { seed: 2 }).add(1));
    expect(d.setMaskStream({ seed: 77 })).toBe(d);
    expect(d.maskStream).toEqual({ seed: 77 });
    const y1 = d.forward(x);
    const ref = dropout(x, 0.5, { seed: 77 });
    expect(Array.from(await y1.data())).toEqual(Array.from(await ref.data()));
    // rowStart r: the first row gets the mask of row r of the stream.
    const tail = x.slice([2, 0], [4, 8]);
    d.setMaskStream({ seed: 77, rowStart: 2 });
    const y2 = d.forward(tail);
    expect(Array.from(await y2.data())).toEqual(Array.from(await y1.data()).slice(16));
    // The stream object is copied: mutating the argument later changes nothing.
    const s = { seed: 5 };
    d.setMaskStream(s);
    s.seed = 6;
    expect(d.maskStream).toEqual({ seed: 5 });
    // null: back to the global generator, so two forwards differ.
    d.setMaskStream(null);
    expect(d.maskStream).toBeNull();
    manualSeed(1);
    const a = d.forward(x);
    const b = d.forward(x);
    expect(Array.from(await a.data())).not.toEqual(Array.from(await b.data()));
    // The deprecated `stream` accessor still reads and writes the same state.
    d.stream = { seed: 77 };
    expect(d.maskStream).toEqual({ seed: 77 });
    dispose([x, y1, ref, tail, y2, a, b]);
  });

  it('bad streams are typed errors', () => {
    const d = new Dropout(0.3);
    expect(() => d.setMaskStream({ seed: -1 })).toThrow(ArgumentError);
    expect(() => d.setMaskStream({ seed: 1.5 })).toThrow(/seed/);
    expect(() => d.setMaskStream({ seed: 1, rowStart: -2 })).toThrow(/rowStart/);
    expect(() => d.setMaskStream({ seed: 1, offset: NaN })).toThrow(/offset/);
    expect(d.maskStream).toBeNull();
  });
});

describe('host float64 helpers (uncertainty/host.ts)', () => {
  it('rowLogsumexp and softmaxRows: stable for large logits, β scaling', () => {
    expect(rowLogsumexp([0, 0, 0], 0, 3)).toBeCloseTo(Math.log(3), 15);
    expect(rowLogsumexp([9, 1000, 1001], 1, 2)).toBeCloseTo(1001 + Math.log1p(Math.exp(-1)), 12);
    expect(rowLogsumexp([1, 2], 0, 2, 0.5)).toBeCloseTo(Math.log(Math.exp(0.5) + Math.exp(1)), 15);
    // exp(z − lse) with lse ≈ 1001.3: its last bit (≈ 1e-13 absolute) bounds the accuracy to ~1e-13.
    const p = softmaxRows([1000, 1001, 0, 0], 2);
    expect(p[0]).toBeCloseTo(1 / (1 + Math.E), 12);
    expect(p[1]).toBeCloseTo(Math.E / (1 + Math.E), 12);
    expect([p[2], p[3]]).toEqual([0.5, 0.5]);
    const t = softmaxRows([2, 4], 2, 1 / 2); // temperature 2
    expect(t[1]).toBeCloseTo(Math.E / (1 + Math.E), 15);
    expect(() => softmaxRows([1, 2, 3], 2)).toThrow(ShapeError);
  });

  it('classIndexLabels: integers in [0, k), the caller\'s error type', () => {
    expect(Array.from(classIndexLabels('f', [0, 2, 1], 3))).toEqual([0, 2, 1]);
    expect(() => classIndexLabels('f', [0, 3], 3)).toThrow(/f: labels\[1\] = 3 is not a class index in \[0, 3\)/);
    expect(() => classIndexLabels('f', [0.5], 3)).toThrow(ArgumentError);
    class Mine extends Error {
      constructor(message: string, readonly problem: string) {
        super(message);
      }
    }
    let e: unknown;
    try {
      classIndexLabels('g', [NaN], 2, (m, problem) => new Mine(m, problem));
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(Mine);
    expect((e as Mine).problem).toBe('nan');
  });
});
