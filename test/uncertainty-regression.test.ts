import { describe, expect, it } from 'vitest';
import { DeepEnsemble, setBackend, tensor } from '../node.js';
import { CUBIC_TOY_Y_SCALE, cubicToyData, cubicToyNoise, gaussianMlp, trainGaussianRegressor } from '../examples/toy-regression.js';
import { cpu } from './helpers/backends.js';

// The 1-D toy of examples/toy-regression.ts: y = x³ with input-dependent noise, trained on x ∈ [−4, 4].
describe('aleatoric regression heads + ensemble epistemic variance (the x³ toy)', () => {
  it('learned variance tracks the noise; epistemic variance grows outside the training range', async () => {
    setBackend(cpu);
    const n = 300;
    const d = cubicToyData(n, 1);
    const x = tensor(d.x, [n, 1]);
    const y = tensor(d.y, [n, 1]);
    const ens = DeepEnsemble.create(() => gaussianMlp(32), 3, 100);
    for (const m of ens.members) await trainGaussianRegressor(m, x, y, { steps: 700, lr: 0.02 });
    ens.eval();

    const probe = [-3, -1, 1.5, 3, -7, 7];
    const r = ens.predictRegression(tensor(probe, [probe.length, 1]));
    const ale = Array.from(await r.aleatoric.data()).map((v) => Math.sqrt(v) * CUBIC_TOY_Y_SCALE);
    const epi = Array.from(await r.epistemic.data());
    const mean = Array.from(await r.mean.data()).map((v) => v * CUBIC_TOY_Y_SCALE);

    // The fit follows x³ inside the training range.
    for (const i of [0, 1, 3]) expect(Math.abs(mean[i] - probe[i] ** 3)).toBeLessThan(6);
    // Aleatoric σ is largest in the noisy region around x = 1.5 (true σ 15) and small at x = −3
    // (true σ ≈ 3): within a factor of two of the truth at both places.
    expect(ale[2]).toBeGreaterThan(2.5 * ale[0]);
    for (const i of [0, 2]) {
      expect(ale[i]).toBeGreaterThan(cubicToyNoise(probe[i]) / 2);
      expect(ale[i]).toBeLessThan(cubicToyNoise(probe[i]) * 2);
    }
    // Epistemic variance (disagreement between members) grows far outside [−4, 4].
    const inside = Math.max(epi[0], epi[1], epi[2], epi[3]);
    expect(epi[4]).toBeGreaterThan(5 * inside);
    expect(epi[5]).toBeGreaterThan(5 * inside);
  });
});
