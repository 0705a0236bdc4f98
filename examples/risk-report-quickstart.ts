/**
 * `riskReport` on your own small model (the README's "In the browser" excerpt): a 2-D toy
 * classifier with dropout, trained for a few seconds on the CPU reference backend, then the whole
 * report — calibration, OOD table and guard, failure prediction, per-group metrics — as an HTML
 * file, Markdown and results.json.
 *   node scripts/run-ts.mjs examples/risk-report-quickstart.ts [out-dir]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Adam, DataLoader, Dropout, Linear, MahalanobisDetector, ReLU, Sequential, dispose, fit, init, manualSeed, normal, riskReport, shutdown, tensor, tidy,
} from '../node.js';

await init({ backend: 'cpu' });
manualSeed(0);
// three Gaussian blobs in 2-D (classes 0, 1, 2); OOD: points far from all of them
const blobs = (n: number, seed: number) => tidy(() => {
  manualSeed(seed);
  const y = Int32Array.from({ length: n }, (_, i) => i % 3);
  const centres = tensor(Array.from(y, (c) => [[2, 0], [-1, 1.7], [-1, -1.7]][c]).flat(), [n, 2]);
  return { x: centres.add(normal([n, 2], { std: 0.7 })), y: tensor(y, [n], { dtype: 'int32' }) };
});
const train = blobs(600, 1), heldOut = blobs(300, 2), test = blobs(300, 3);
const farAway = tidy(() => normal([200, 2], { std: 1 }).add(tensor([6, 6])));
const net = new Sequential(new Linear(2, 32), new ReLU(), new Dropout(0.2), new Linear(32, 3));
const loader = new DataLoader([{ data: await train.x.data(), shape: [600, 2], dtype: 'float32' }, { data: await train.y.data(), shape: [600], dtype: 'int32' }], { batchSize: 50, shuffle: true, seed: 0 });
await fit(net, loader, { epochs: 15, optimizer: new Adam(net.parameters(), { lr: 0.02 }), progress: false });
net.eval();

const groups = Array.from({ length: 300 }, (_, i) => (i % 2 ? 'site A' : 'site B')); // e.g. where each test input came from
const mahalanobis = new MahalanobisDetector({ features: (x) => net.children()[1].forward(net.children()[0].forward(x)) }); // fitted on `train` by riskReport
const report = await riskReport(net, { train, heldOut, test, ood: { farAway }, groups }, { fpr: 0.05, mcSamples: 30, extraDetectors: [mahalanobis], guardDetector: 'Mahalanobis' });
console.log(report.summary); // "the model is over-confident by …; rejecting at 5% FPR filters …% of the farAway set …"
console.log(report.ood!.sets.farAway.rows.map((r) => `${r.name}: AUROC ${r.auroc.toFixed(3)}`).join('\n'));
const dir = process.argv[2] ?? 'risk-report';
mkdirSync(dir, { recursive: true });
for (const [name, text] of Object.entries(report.files())) writeFileSync(join(dir, name), text); // index.html, index.md, results.json

dispose([train.x, train.y, heldOut.x, heldOut.y, test.x, test.y, farAway]);
net.dispose();
shutdown();
