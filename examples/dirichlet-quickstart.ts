/**
 * A prior network trained with outliers, next to an outlier-exposure softmax net, on a 2-D toy
 * problem (CPU, a few seconds): three Gaussian blobs are the classes, points on a ring of radius
 * 6–8 are the TRAINING outliers (flat target β = 1 for the prior net, CE to uniform for the OE
 * net), and the TEST out-of-distribution points lie elsewhere (a ring of radius 12–16), so the
 * detectors are never scored on the outliers they were trained on. Prints one AUROC / FPR95 row
 * per Dirichlet measure and per softmax score (the protocol of the `dirichlet` eval group, in
 * small), and the accuracy of both nets.
 *
 *   node scripts/run-ts.mjs examples/dirichlet-quickstart.ts
 */
import {
  Adam, Linear, PriorNetwork, ReLU, Sequential, type Tensor, dirichletDetector, energyDetector, evaluateDetectors, init, manualSeed, mspDetector,
  noGrad, outlierExposureLoss, priorNetworkLoss, shutdown, tensor, tidy,
} from '../node.js';
import { rng } from './toy-random.js';


const rand = rng(1);
const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
const blobs = (n: number) => {
  const xs: number[] = [];
  const ys: number[] = [];
  for (let i = 0; i < n; i++) {
    const k = i % 3;
    const t = Math.PI / 2 + (2 * Math.PI * k) / 3;
    xs.push(3 * Math.cos(t) + 0.7 * gauss(), 3 * Math.sin(t) + 0.7 * gauss());
    ys.push(k);
  }
  return { x: tensor(xs, [n, 2]), y: tensor(ys, [n], { dtype: 'int32' }) };
};
const ring = (n: number, r0: number, r1: number) => tensor(Array.from({ length: n }, () => {
  const r = r0 + (r1 - r0) * rand();
  const t = 2 * Math.PI * rand();
  return [r * Math.cos(t), r * Math.sin(t)];
}).flat(), [n, 2]);

await init({ backend: 'cpu' });
manualSeed(0);
const train = blobs(450);
const outliers = ring(150, 6, 8); // training outliers
const test = blobs(300);
const farAway = ring(300, 12, 16); // test OOD: not the training outliers
const mlp = () => new Sequential(new Linear(2, 32), new ReLU(), new Linear(32, 32), new ReLU(), new Linear(32, 3));

// The prior network: α = exp(clamp(z)); KL(Dir(β) ‖ Dir(α)) with β = 1 + 100·onehot(y) on the
// inliers and the flat β = 1 on the outliers (rows flagged in `ood`).
const body = mlp();
const priorNet = new PriorNetwork(body);
const xAll = tensor([...await train.x.data(), ...await outliers.data()], [600, 2]);
const yAll = tensor([...await train.y.data(), ...new Array<number>(150).fill(0)], [600], { dtype: 'int32' });
const ood = tensor([...new Array<number>(450).fill(0), ...new Array<number>(150).fill(1)], [600]);
const optP = new Adam(body.parameters(), { lr: 1e-2 });
// The outlier-exposure net: CE on the inliers + 0.5·CE to uniform on the outliers.
const oeNet = mlp();
const optO = new Adam(oeNet.parameters(), { lr: 1e-2 });
for (let step = 0; step < 400; step++) {
  tidy(() => {
    optP.zeroGrad();
    priorNetworkLoss(priorNet.alpha(xAll), yAll, { ood, targetConcentration: 100 }).backward();
    optP.step();
    optO.zeroGrad();
    outlierExposureLoss(oeNet.forward(train.x), train.y, oeNet.forward(outliers), { lambda: 0.5 }).backward();
    optO.step();
  });
}

const detectors = [
  dirichletDetector(priorNet, { measure: 'vacuity' }), // K/α₀
  dirichletDetector(priorNet, { measure: 'precision' }), // −α₀
  dirichletDetector(priorNet, { measure: 'mutualInformation' }),
  dirichletDetector(priorNet, { measure: 'differentialEntropy' }),
  dirichletDetector(priorNet, { measure: 'maxProbability' }), // −max_k α_k/α₀
  mspDetector(oeNet, { name: 'OE net: MSP' }),
  energyDetector(oeNet, { name: 'OE net: energy' }),
];
const table = await evaluateDetectors(detectors, { inDist: test.x, outDist: farAway }); // OOD = positive
console.log(table.format());

const acc = async (logits: Tensor) => {
  const pred = Array.from(await logits.argmax(-1).data());
  const y = await test.y.data();
  return pred.filter((p, i) => p === y[i]).length / y.length;
};
console.log(`test accuracy: prior net ${await acc(noGrad(() => priorNet.alpha(test.x)))}, OE net ${await acc(noGrad(() => oeNet.forward(test.x)))}`);
shutdown();
