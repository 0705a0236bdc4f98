/**
 * dubito quickstart: a tour of the engine and a tiny linear regression trained by gradient
 * descent. The README's code blocks are excerpts of this file (scripts/check-readme.mjs checks
 * that they stay in sync), and CI runs it.
 *
 *   npm run demo                      # backend 'auto': WebGPU if an adapter exists, else CPU
 *   npm run demo -- --backend=cpu     # or --backend=webgpu (fails without an adapter)
 */
import {
  init, tensor, zeros, tidy, noGrad, grad, valueAndGrad, memory, matmul, shutdown, dispose, manualSeed,
  ShapeError, DisposedTensorError, type BackendChoice, type Tensor,
  Sequential, Linear, ReLU, Dropout, Adam, DataLoader, fit, enableMCDropout, mcDropout, oodMetrics,
  mspDetector, energyDetector, mcDropoutDetector, evaluateDetectors, guard,
} from '../node.js';

const arg = process.argv.find((a) => a.startsWith('--backend='));
const choice = (arg ? arg.slice('--backend='.length) : 'auto') as BackendChoice;

// --- init ---
const backend = await init({ backend: choice }); // 'auto' | 'webgpu' | 'cpu'
console.log(`backend: ${backend.name}`);

// The tour runs inside an async `tidy`, so its tensors are all freed when it ends.
await tidy(async () => {
  // --- tensors and ops ---
  const a = tensor([[1, 2, 3], [4, 5, 6]]); // float32, shape [2,3]
  const b = tensor([10, 20, 30]);
  console.log(await a.add(b).mul(2).toArray()); // broadcasting: [[22,44,66],[28,50,72]]
  console.log(await a.matmul(a, { transposeB: true }).toArray()); // [[14,32],[32,77]]
  console.log(await a.sum(1).toArray(), await a.softmax(-1).argmax(-1).toArray()); // [6,15] [2,2]

  // --- tidy: every tensor created inside is freed, except the returned ones ---
  const before = memory().liveTensors;
  const norm = tidy(() => a.square().sum().sqrt()); // square and sum are disposed here
  console.log(await norm.item(), memory().liveTensors - before); // 9.539..., 1 (only `norm`)

  // --- grad / valueAndGrad: functional gradients ---
  const f = (x: Tensor) => x.mul(x).sum(); // f(x) = Σ x²
  console.log(await grad(f)(tensor([0.5, -1, 2])).data()); // ∇f = 2x = [1,-2,4]
  const fxy = (x: Tensor, y: Tensor) => x.mul(y).sum();
  const { value, grads } = valueAndGrad(fxy, { argnums: [0, 1] })(tensor([1, 2]), tensor([3, 4]));
  console.log(await value.item(), await grads[0].data(), await grads[1].data()); // 11 [3,4] [1,2]

  // --- errors: typed, and they name the op and the shapes ---
  try {
    matmul(tensor([[1, 2]]), tensor([[1, 2]]));
  } catch (e) {
    if (!(e instanceof ShapeError)) throw e;
    console.log(`${e.name}: ${e.message}`);
  }
  norm.dispose();
  await norm.data().catch((e) => console.log(e instanceof DisposedTensorError && `${e.name}: ${e.message}`));
});

// --- backward: a linear regression trained by gradient descent ---
// Data: y = X·[2, -1, 0.5] + 0.3 on 64 deterministic points in [-1, 1)³.
let seed = 1;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
const xs = Array.from({ length: 64 }, () => [rand(), rand(), rand()]);
const X = tensor(xs); // [64,3]
const Y = tensor(xs.map(([x0, x1, x2]) => [2 * x0 - x1 + 0.5 * x2 + 0.3])); // [64,1]

let w = zeros([3, 1]).requireGrad();
let bias = zeros([1]).requireGrad();
const lr = 0.2;
const live0 = memory().liveTensors; // X, Y, w, bias
for (let step = 0; step <= 300; step++) {
  const loss = tidy(() => {
    const l = X.matmul(w).add(bias).sub(Y).square().mean();
    l.backward(); // accumulates into w.grad and bias.grad
    return l;
  });
  // The update itself must not be recorded: noGrad. tidy frees the temporaries.
  const [w2, b2] = tidy(() => noGrad(() => [w.sub(w.grad!.mul(lr)), bias.sub(bias.grad!.mul(lr))]));
  w.dispose(); // also frees w.grad
  bias.dispose();
  w = w2.requireGrad();
  bias = b2.requireGrad();
  if (step % 100 === 0) console.log(`step ${step}: loss ${(await loss.item()).toExponential(3)}`);
  loss.dispose();
}
console.log('w', Array.from(await w.data(), (v) => +v.toFixed(3)), 'b', +(await bias.item()).toFixed(3));
console.log('memory()', memory()); // { backend, liveTensors, bytesInUse, bytesPooled }
if (memory().liveTensors !== live0) throw new Error(`leak: ${memory().liveTensors - live0} tensors`);

// --- nn + uncertainty: a small classifier that can say "I don't know" ---
manualSeed(0);
// Two Gaussian blobs in 2-D (class 0 around (-2, 0), class 1 around (2, 0)).
const pts = Array.from({ length: 256 }, (_, i) => [(i % 2 ? 2 : -2) + rand() * 0.8, rand() * 0.8]);
const labels = Int32Array.from(pts, (_, i) => i % 2);
const loader = new DataLoader(
  [{ data: pts.flat(), shape: [256, 2], dtype: 'float32' }, { data: labels, shape: [256], dtype: 'int32' }],
  { batchSize: 32, shuffle: true, seed: 0 },
);
const net = new Sequential(new Linear(2, 32), new ReLU(), new Dropout(0.2), new Linear(32, 2));
const history = await fit(net, loader, { epochs: 20, optimizer: new Adam(net.parameters(), { lr: 0.02 }), progress: false });
console.log(`final train accuracy ${history[history.length - 1].accuracy}`);

net.eval();
enableMCDropout(net); // dropout stays on at inference: T stochastic passes, run as ONE batch
const inDist = tensor(pts.slice(0, 64)); // points like the training data
const farAway = tensor(Array.from({ length: 64 }, () => [rand() * 3, 8 + rand() * 3])); // never seen
const mcIn = mcDropout(net, inDist, { samples: 30, seed: 1 });
const mcOut = mcDropout(net, farAway, { samples: 30, seed: 2 });
const scoreIn = await mcIn.predictiveEntropy.data(); // higher = more uncertain
const scoreOut = await mcOut.predictiveEntropy.data();
console.log('OOD detection by MC-dropout predictive entropy:', oodMetrics(scoreIn, scoreOut)); // { auroc, auprIn, auprOut, fpr95 }
enableMCDropout(net, false);

// --- the Detector protocol: every method behind score(x) → [B], higher = more OOD ---
const detectors = [mspDetector(net), energyDetector(net), mcDropoutDetector(net, { samples: 30, seed: 1 })];
const table = await evaluateDetectors(detectors, { inDist, outDist: farAway });
console.log(table.format()); // one row per detector: AUROC, AUPR-In, AUPR-Out, FPR95
const heldOut = tensor(Array.from({ length: 64 }, (_, i) => [(i % 2 ? 2 : -2) + rand() * 0.8, rand() * 0.8])); // fresh in-distribution points
const g = await guard(energyDetector(net), { fpr: 0.05, heldOut }); // threshold: at most 5% of heldOut rejected
const batch = g.apply(farAway); // { prediction, score, reliable }: tensors [B], one batched call
const accepted = Array.from(await batch.reliable.data()).filter(Boolean).length;
console.log(`guard: threshold ${g.threshold.toFixed(3)}, realised FPR ${g.realisedFpr}, accepts ${accepted} of ${farAway.shape[0]} far-away points`);
dispose([mcIn, mcOut, inDist, farAway, heldOut, batch]);
net.dispose();

// Destroys the devices so the Node process can exit (Dawn keeps it alive otherwise).
shutdown();
