/**
 * A short tour of the generative guards (the README's "Generative guards" excerpt), on random
 * data with untrained toy-sized networks — it shows the calls, not the numbers (those come from
 * `npm run eval -- --only guards`).
 *   node scripts/run-ts.mjs examples/guards-quickstart.ts
 */
import {
  Adam, DeltaZDetector, Linear, NotReliableClassification, VAE, VaeLossDetector, WganCritic, WganGenerator, WganInverter, conditionalClassifier,
  criticLoss, dispose, guard, init, manualSeed, normal, shutdown, tidy, uniform, vaeLoss,
} from '../node.js';

await init({ backend: 'auto' });
manualSeed(0);
const x = uniform([32, 1, 28, 28]); // stand-in for MNIST images in [0, 1]
const heldOut = uniform([64, 1, 28, 28]);
const classifier = new Linear(784, 10);
const f = (t: typeof x) => classifier.forward(t.reshape([t.shape[0], 784]));

// VAE-loss guard: train with the negative ELBO, score = per-sample loss (higher = less reliable)
const vae = new VAE({ hidden: 64, latent: 8 });
const opt = new Adam(vae.parameters(), { lr: 1e-3 });
tidy(() => {
  opt.zeroGrad();
  vaeLoss(vae.forward(x, { sample: true }), x).backward();
  opt.step();
});
const vaeGuard = await guard(new VaeLossDetector(vae), { fpr: 0.05, heldOut });
const cc = conditionalClassifier(f, vaeGuard);
try {
  console.log('prediction', await cc.classify(x.slice([0, 0, 0, 0], [1, -1, -1, -1])));
} catch (e) {
  if (e instanceof NotReliableClassification) console.log('rejected: score', e.score, '> τ', e.threshold, '(prediction', e.prediction, ')');
  else throw e;
}
const batch = await cc.classifyBatch(x); // non-throwing: predictions, scores, reliable flags
console.log('accepted', batch.reliable.filter(Boolean).length, 'of', batch.reliable.length);

// WGAN-GP: the critic loss includes λ·(‖∇D(x̂)‖ − 1)² (double backward)
const G = new WganGenerator({ latent: 16, width: 4 });
const D = new WganCritic({ width: 4 });
const I = new WganInverter({ latent: 16, width: 4 });
const loss = tidy(() => criticLoss((t) => D.forward(t), x, G.forward(normal([32, 16]))));
console.log('critic loss', (await loss.data())[0]);

// δz: the smallest latent step that flips f's decision (score = −δz), batched over inputs × candidates
const dz = new DeltaZDetector(G, I, f, { candidates: 8, steps: 4, radiusStep: 0.5, seed: 0 });
const dzGuard = conditionalClassifier(f, dz);
await dzGuard.calibrate(heldOut, { fpr: 0.05 });
console.log('δz', await dz.deltaZ(x.slice([0, 0, 0, 0], [4, -1, -1, -1])).toArray());

dispose([x, heldOut, loss]);
for (const m of [classifier, vae, G, D, I]) m.dispose();
shutdown();
