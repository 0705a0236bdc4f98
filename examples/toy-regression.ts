/**
 * Example: a 1-D heteroscedastic regression toy for the Gaussian-NLL head (aleatoric variance) and
 * deep-ensemble (epistemic) variance; test/uncertainty-regression.test.ts trains on it. Not part of
 * the library: it uses only the package's public entry point.
 */
import { Adam, type Module, Sequential, Linear, Tanh, type Tensor, gaussianNllLoss, randomNormal, randomUniform, tidy } from '../index.js';

/**
 * The data: y = x³ plus noise whose scale depends on x, with training inputs in [−4, 4]. σ(x) = 3 + 12·exp(−(x − 1.5)²) puts a "boxed" high-noise region
 * around x = 1.5. Targets are divided by `yScale` (= 64) for training.
 */
export function cubicToyData(n: number, seed = 0, range: [number, number] = [-4, 4]): { x: Float32Array; y: Float32Array; sigma: Float32Array } {
  const u = randomUniform(n, seed, 0, range[0], range[1]);
  const z = randomNormal(n, seed, 1 << 20);
  const y = new Float32Array(n);
  const sigma = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    sigma[i] = cubicToyNoise(u[i]);
    y[i] = (u[i] ** 3 + sigma[i] * z[i]) / CUBIC_TOY_Y_SCALE;
  }
  return { x: u, y, sigma };
}

export const CUBIC_TOY_Y_SCALE = 64;

/** The true noise standard deviation of the toy at x (in original y units). */
export function cubicToyNoise(x: number): number {
  return 3 + 12 * Math.exp(-((x - 1.5) ** 2));
}

/** A small heteroscedastic MLP: x → (μ, log σ²). */
export function gaussianMlp(hidden = 32): Sequential {
  return new Sequential(new Linear(1, hidden), new Tanh(), new Linear(hidden, hidden), new Tanh(), new Linear(hidden, 2));
}

/** Trains a (μ, log σ²) model on full batches with the Gaussian NLL (Adam). Returns the final loss. */
export async function trainGaussianRegressor(model: Module, x: Tensor, y: Tensor, opts: { steps: number; lr?: number }): Promise<number> {
  const opt = new Adam(model.parameters(), { lr: opts.lr ?? 0.01 });
  let last = NaN;
  for (let s = 0; s < opts.steps; s++) {
    const loss = tidy(() => {
      opt.zeroGrad();
      const out = model.forward(x) as Tensor;
      const mu = out.slice([0, 0], [-1, 1]);
      const logVar = out.slice([0, 1], [-1, 1]);
      const l = gaussianNllLoss(mu, logVar, y);
      l.backward();
      opt.step();
      return l.detach();
    });
    if (s === opts.steps - 1) last = await loss.item();
    loss.dispose();
  }
  return last;
}
