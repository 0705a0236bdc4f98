/**
 * A short tour of explain/ (the README's "Explanations" excerpt): trains a LeNet-5 for one quick
 * epoch on 2,000 MNIST digits, then explains 8 test digits with Grad-CAM, ContrastCAM, VOICE,
 * Integrated Gradients and a deletion curve, and writes a heatmap grid as a PNG.
 *   node scripts/run-ts.mjs examples/explain-quickstart.ts [out.png]
 */
import { writeFileSync } from 'node:fs';
import {
  LeNet5, contrastCam, deletionCurve, dispose, encodePng, fromHost, gradCam, heatmapOverlays, imageGrid, init, loadMnist,
  manualSeed, saliency, shutdown, voice,
} from '../node.js';
import { trainLeNet } from './mnist-training.js';

const backend = await init({ backend: 'auto' });
const { splits } = await loadMnist({ split: { train: 2000, test: 8 }, seed: 1 });
manualSeed(0);
const model = new LeNet5();
await trainLeNet(model, splits.train, null, { epochs: 1, batchSize: 32, lr: 3e-3, seed: 0, augment: { maxShift: 0 }, backend, log: () => {} });
model.eval();
const x = fromHost(splits.test.images, [8, 1, 28, 28], 'float32');

const layer = 'features.4'; // a module of the model, or its name in model.namedModules()
const cam = await gradCam(model, x, { layer }); // [8, 28, 28] in [0, 1]: why P?
const contrast = await contrastCam(model, x, { layer }); // why P, rather than the runner-up Q?
const v = await voice(model, x, { layer }); // ContrastCAMs for all Q ≠ P in one batched pass
console.log('VOICE IoU', await v.iou.data(), 'SNR', await v.snr.data()); // uncertainty of each explanation
const ig = await saliency(model, x, { method: 'integratedGradients', steps: 32 }); // [8, 1, 28, 28]
const { curve, auc } = await deletionCurve(model, x, cam); // lower AUC = better explanation
console.log('deletion AUC', await auc.data());
writeFileSync(process.argv[2] ?? 'gradcam.png', encodePng(imageGrid(await heatmapOverlays(x, cam, { scale: 4 }), { columns: 8 })));

dispose([x, cam, contrast, ig, curve, auc, ...Object.values(v)]);
model.dispose();
shutdown();
