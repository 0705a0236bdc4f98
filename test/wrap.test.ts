import { describe, expect, it } from 'vitest';
import {
  ArgumentError, DeepEnsemble, fromHost, Dropout, LatentHistogram, Linear, NotFittedError, PriorNetwork, ReLU, Sequential, type Tensor,
  dirichletExpectedEntropy, dirichletMutualInformation, enableMCDropout, ensembleDetector, entropyScore, manualSeed, mcDropout, memory, setBackend, softmax, tidy, wrap,
} from '../node.js';
import { cpu } from './helpers/backends.js';
import { seeded } from './helpers/compare.js';

const input = (shape: number[], seed: number): Tensor => { const h = seeded(shape, seed); return fromHost(h.data, h.shape, h.dtype); };

setBackend(cpu);

function net(seed: number, p = 0): Sequential {
  manualSeed(seed);
  return new Sequential(new Linear(3, 8), new ReLU(), ...(p > 0 ? [new Dropout(p)] : []), new Linear(8, 4));
}

async function close(a: Tensor, b: Tensor, digits = 5): Promise<void> {
  const x = await a.data();
  const y = await b.data();
  expect(x.length).toBe(y.length);
  for (let i = 0; i < x.length; i++) expect(x[i]).toBeCloseTo(y[i], digits);
}

function disposeAll(r: object): void {
  for (const t of Object.values(r)) (t as Tensor).dispose();
}

describe('wrap', () => {
  const x = input([6, 3], 11);

  it('plain: prediction and probabilities; aleatoric = softmax entropy', async () => {
    const m = net(1).eval();
    const before = memory().liveTensors;
    const r = wrap(m, { aleatoric: true }).predict(x);
    expect(Object.keys(r).sort()).toEqual(['aleatoric', 'prediction', 'probs']);
    const ref = tidy(() => {
      const z = m.forward(x);
      return { p: softmax(z, -1), h: entropyScore(z), a: z.argmax(-1) };
    });
    await close(r.probs, ref.p);
    await close(r.aleatoric!, ref.h);
    expect(Array.from(await r.prediction.data())).toEqual(Array.from(await ref.a.data()));
    disposeAll(r);
    disposeAll(ref);
    expect(memory().liveTensors).toBe(before);
  });

  it("epistemic 'mcDropout' equals mcDropout's mutual information, aleatoric its expected entropy", async () => {
    const m = net(2, 0.3).eval();
    const r = wrap(m, { epistemic: 'mcDropout', aleatoric: true, samples: 16, seed: 5 }).predict(x);
    enableMCDropout(m);
    const mc = mcDropout(m, x, { samples: 16, seed: 5 });
    await close(r.epistemic!, mc.mutualInformation);
    await close(r.aleatoric!, tidy(() => mc.predictiveEntropy.sub(mc.mutualInformation)));
    await close(r.probs, mc.mean);
    expect(Array.from(await r.prediction.data())).toEqual(Array.from(await mc.prediction.data()));
  });

  it("epistemic 'ensemble' equals the ensemble detector's mutual information", async () => {
    const ens = new DeepEnsemble([net(3), net(4), net(5)]).eval();
    const r = wrap(ens, { epistemic: 'ensemble', aleatoric: true }).predict(x);
    await close(r.epistemic!, ensembleDetector(ens, { measure: 'mutualInformation' }).score(x));
    const pe = ensembleDetector(ens, { measure: 'predictiveEntropy' }).score(x);
    await close(r.aleatoric!, tidy(() => pe.sub(r.epistemic!)));
  });

  it("epistemic 'dirichlet' on a prior network: Dirichlet mutual information and expected entropy", async () => {
    const pn = new PriorNetwork(net(6).eval());
    const r = wrap(pn, { epistemic: 'dirichlet', aleatoric: true }).predict(x);
    const alpha = pn.alpha(x);
    await close(r.epistemic!, dirichletMutualInformation(alpha));
    await close(r.aleatoric!, dirichletExpectedEntropy(alpha));
    await close(r.probs, tidy(() => alpha.div(alpha.sum(-1, true))));
  });

  it("bias 'histogram': NotFittedError before fit, then the rarity of the features under the training histograms", async () => {
    const m = net(7).eval();
    const features = (t: Tensor) => t; // the raw 3-d inputs
    const w = wrap(m, { bias: 'histogram', bins: 4, alpha: 0.05, features });
    expect(w.fitted).toBe(false);
    expect(() => w.predict(x)).toThrow(NotFittedError);
    const train = input([40, 3], 12);
    await w.fit({ x: train }); // one batch: the identity features are the caller's tensor itself
    expect(w.fitted).toBe(true);
    expect(train.isDisposed).toBe(false);
    const before = memory().liveTensors;
    const r = w.predict(x);
    const want = LatentHistogram.fit(await train.data(), 3, { bins: 4 }).rarity(await x.data(), 0.05);
    const got = await r.bias!.data();
    for (let i = 0; i < 6; i++) expect(got[i]).toBeCloseTo(want[i], 5);
    disposeAll(r);
    // fitted batch by batch: the same histograms
    const w16 = await wrap(m, { bias: 'histogram', bins: 4, alpha: 0.05, features }).fit({ x: train, batchSize: 16 });
    const r16 = w16.predict(x);
    const got16 = await r16.bias!.data();
    for (let i = 0; i < 6; i++) expect(got16[i]).toBeCloseTo(want[i], 5);
    disposeAll(r16);
    expect(memory().liveTensors).toBe(before);
  });

  it('rejects unknown options, bad values and mismatched models with typed errors', () => {
    const m = net(8);
    const bad = [
      () => wrap(m, { bais: 'histogram' } as never),
      () => wrap(m, { bias: 'density' } as never),
      () => wrap(m, { epistemic: 'laplace' } as never),
      () => wrap(m, { aleatoric: 'yes' } as never),
      () => wrap(m, { epistemic: 'ensemble' }),
      () => wrap(m, { epistemic: 'mcDropout' }), // no dropout layer
      () => wrap(net(9, 0.2), { epistemic: 'mcDropout', samples: 1 }),
      () => wrap(m, { samples: 10 }),
      () => wrap(m, { bias: 'histogram', alpha: 0 }),
      () => wrap(m, { bias: 'histogram', alpha: -1 }),
      () => wrap(m, { bias: 'histogram', bins: 0 }),
      () => wrap(m, { alpha: 0.1 }),
      () => wrap(new DeepEnsemble([m])),
    ];
    for (const f of bad) expect(f).toThrow(ArgumentError);
    expect(() => wrap(m, { bais: 'histogram' } as never)).toThrow(/unknown option 'bais'/);
    expect(() => wrap(m, { bias: 'histogram', alpha: 0 })).toThrow(/alpha must be a finite number > 0/);
  });
});
