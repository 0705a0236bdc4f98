/**
 * A short tour of per-sample gradients (the README's "Gradients at inference" excerpt): a small
 * MLP on random data, per-sample gradients of every Linear weight and bias, and per-layer squared
 * gradient norms computed without materialising [B, out, in].
 *   node scripts/run-ts.mjs examples/gradients-quickstart.ts
 */
import {
  Linear, ReLU, Sequential, crossEntropy, dispose, init, manualSeed, perSampleGradNorms, normal, perSampleGrads, randint, shutdown,
  type Tensor,
} from '../node.js';

await init({ backend: 'auto' });
manualSeed(0);
const net = new Sequential(new Linear(8, 16), new ReLU(), new Linear(16, 3));
const x = normal([5, 8]);
const y = randint(0, 3, [5]);
const lossFn = (z: Tensor, y?: Tensor) => crossEntropy(z, y!, { reduction: 'none' });

// [B, ...paramShape] per sample, from ONE batched backward of Σ_b L_b (loss per row, [B])
const g = perSampleGrads(net, (z, y) => crossEntropy(z, y!, { reduction: 'none' }), x, y);
// [B, L] squared norms, "ghost" where cheaper (no [B, out, in] for Linear layers)
const { names, norms, methods } = perSampleGradNorms(net, lossFn, x, y, { params: ['2.weight'] });
console.log(Object.entries(g).map(([k, t]) => `${k} [${t.shape}]`).join(', '));
console.log(names, methods, await norms.toArray());

dispose([x, y, norms, ...Object.values(g)]);
net.dispose();
shutdown();
