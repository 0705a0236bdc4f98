/**
 * The feature-space detectors in a few lines (the README's "Feature-space detectors and
 * intervals" excerpt): class-clustered random features stand in for a network's penultimate
 * layer; kNN, GMM and ViM are fitted (the feature norm needs no fit) on them and evaluated against shifted features,
 * with a 95% bootstrap interval per AUROC.
 *   node scripts/run-ts.mjs examples/feature-detectors-quickstart.ts
 */
import {
  FeatureNormDetector, GmmDetector, KnnDetector, Linear, VimDetector, bootstrapOodMetrics, dispose, evaluateDetectors, init, manualSeed, normal, randint,
  shutdown, type Tensor,
} from '../node.js';

await init({ backend: 'auto' });
manualSeed(0);
const labels = randint(0, 4, [400]);
const centres = normal([4, 16], { std: 3, seed: 1 });
const feats = (y: Tensor, seed: number) => centres.indexSelect(0, y).add(normal([y.shape[0], 16], { seed }));
const train = feats(labels, 2);
const inDist = feats(randint(0, 4, [200]), 3);
const outDist = normal([200, 16], { std: 4, seed: 4 }); // features of "unknown" inputs
const head = new Linear(16, 4); // stands in for the trained last layer

const detectors = [
  await new KnnDetector({ k: 5 }).fit({ x: train }),
  await new GmmDetector().fit({ x: train, labels }),
  await new VimDetector({ weight: head.weight, bias: head.bias!, principalDim: 8 }).fit({ x: train }),
  new FeatureNormDetector({ direction: 'largeIsOod' }),
];
const table = await evaluateDetectors(detectors, { inDist, outDist });
console.log(table.format());
for (const row of table.rows) {
  const ci = bootstrapOodMetrics(row.scores.inDist, row.scores.outDist, { resamples: 500, seed: 0 });
  console.log(`${row.name}: AUROC ${ci.auroc.value.toFixed(4)} [${ci.auroc.lo.toFixed(4)}, ${ci.auroc.hi.toFixed(4)}]`);
}

for (const d of detectors) (d as { dispose?: () => void }).dispose?.();
dispose([labels, centres, train, inDist, outDist]);
head.dispose();
shutdown();
