/**
 * A short tour of per-sample gradients (the README's "Gradients at inference" excerpt): a small
 * MLP on random data, per-sample gradients of every Linear weight and bias, and per-layer squared
 * gradient norms computed without materialising [B, out, in]; then the MNIST-C-style shifts of
 * the gradients eval (blur, rotation by an angle, contrast) on two random images.
 *   node scripts/run-ts.mjs examples/gradients-quickstart.ts
 */
import {
  Linear, ReLU, Sequential, contrastImages, crossEntropy, dispose, gaussianBlur, init, manualSeed, perSampleGradNorms, normal, perSampleGrads,
  randint, rotateImagesBy, shutdown, uniform, type Tensor,
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

// MNIST-C-style corruptions with the library's own ops, every image alike (severity 2 of the table)
const imgs = uniform([2, 1, 28, 28], { seed: 1 });
const shifted = [gaussianBlur(imgs, 1.5), rotateImagesBy(imgs, 35), contrastImages(imgs, 0.2)];
console.log(shifted.map((t) => `[${t.shape}]`).join(' '));

dispose([x, y, norms, imgs, ...shifted, ...Object.values(g)]);
net.dispose();
shutdown();
