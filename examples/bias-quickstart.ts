/**
 * A short tour of the bias tools (the README's "Bias and class imbalance" excerpt), on a small
 * synthetic 2-D problem so it runs in seconds on the CPU reference: class-balanced sampling,
 * DB-VAE latent-histogram weights and training, per-group metrics and the CAPSA-style wrapper.
 *   node scripts/run-ts.mjs examples/bias-quickstart.ts
 */
import {
  ClassBalancedSampler, DataLoader, DbVae, Linear, ReLU, Sequential, WeightedSampler, classBalancedWeights, groupMetrics, init, latentHistogramWeights,
  manualSeed, shutdown, softmax, tensor, tidy, trainDbVae, wrap,
} from '../node.js';

await init({ backend: 'cpu' });
manualSeed(0);
// 200 points in [0, 1]²; a rare "style" (group 1, 5%) lives near (0.85, 0.85); class = x0 + x1 > 1
const n = 200;
const x = new Float32Array(2 * n);
const y = new Int32Array(n);
const groups = new Int32Array(n);
for (let i = 0; i < n; i++) {
  const rare = i % 20 === 0;
  const u = ((i * 37) % 100) / 100;
  const v = ((i * 61) % 100) / 100;
  x[2 * i] = rare ? 0.8 + 0.1 * u : 0.7 * u;
  x[2 * i + 1] = rare ? 0.8 + 0.1 * v : 0.3 + 0.7 * v;
  y[i] = x[2 * i] + x[2 * i + 1] > 1 ? 1 : 0;
  groups[i] = rare ? 1 : 0;
}
const arrays = [{ data: x, shape: [n, 2], dtype: 'float32' as const }, { data: y, shape: [n], dtype: 'int32' as const }];

// imbalance remedies: draw by inverse group frequency, or equal counts per class in every batch
const weighted = new DataLoader(arrays, { batchSize: 32, sampler: new WeightedSampler(classBalancedWeights(groups), { seed: 1 }) });
const balanced = new DataLoader(arrays, { sampler: new ClassBalancedSampler(y, { perClass: 16, seed: 1 }) }); // batches of 2 × 16
console.log('batches:', weighted.length, balanced.length, 'of', balanced.batchSize);

// DB-VAE: W(x) ∝ Π_i 1/(Q̂_i(z_i(x)) + α) on the latent means, recomputed every epoch
const w = latentHistogramWeights([0, 0, 0, 1], 1, { bins: 2, alpha: 0.1 }); // [0.18, 0.18, 0.18, 0.45]: the lone value is drawn most
const model = new DbVae({ encoder: new Sequential(new Linear(2, 16), new ReLU()), features: 16, latentDim: 2, numClasses: 2, decoder: new Sequential(new Linear(2, 2)) });
await trainDbVae(model, { x: { data: x, shape: [n, 2] }, y }, { epochs: 20, alpha: 0.01, bins: 5, batchSize: 32, lr: 0.01, seed: 2 });

// per-group accuracy, ECE and NLL, and the worst group
const xt = tensor(Array.from(x)).reshape([n, 2]);
const probs = tidy(() => softmax(model.forward(xt), -1));
const gm = groupMetrics(await probs.data(), y, groups, { numClasses: 2, groupNames: { 0: 'common', 1: 'rare' } });
console.log(gm.groups.map((g) => `${g.name}: acc ${g.accuracy.toFixed(3)}`).join(', '), 'worst:', gm.worstGroup.name);

// CAPSA-style: the prediction with bias (feature-histogram rarity) and aleatoric estimates
const risk = await wrap(model, { bias: 'histogram', aleatoric: true, features: (t) => t }).fit({ x: xt }); // histograms of the raw inputs
const { prediction, bias, aleatoric } = risk.predict(xt); // tensors [B], higher = more risk
const b = Array.from(await bias!.data());
const meanBias = (g: number) => b.reduce((s, v, i) => s + (groups[i] === g ? v : 0), 0) / groups.filter((v) => v === g).length;
console.log('w', Array.from(w).map((v) => v.toFixed(2)), 'mean bias (rarity), common vs rare group:', meanBias(0).toFixed(2), meanBias(1).toFixed(2));

for (const t of [xt, probs, prediction, bias!, aleatoric!]) t.dispose();
model.dispose();
shutdown();
