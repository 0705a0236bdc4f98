/**
 * Record once, replay many: a whole training step (forward, backward, Adam) compiled with
 * `Optimizer.compile`, and a fixed-shape inference pass recorded with `recordReplay`. On WebGPU
 * the replays re-encode the recorded dispatches without running the JS op graph; on the CPU
 * backend every call runs eagerly (same results). The README's "Replaying a training step"
 * section quotes this file.
 *
 *   node scripts/run-ts.mjs examples/replay-quickstart.ts [--backend=cpu|webgpu|auto]
 */
import {
  init, shutdown, tensor, tidy, noGrad, manualSeed, memory, recordReplay, type BackendChoice,
  LeNet5, Adam, StepLR, crossEntropy,
} from '../node.js';

const arg = process.argv.find((a) => a.startsWith('--backend='));
const backend = await init({ backend: (arg ? arg.slice('--backend='.length) : 'auto') as BackendChoice });
console.log(`backend: ${backend.name}`);
manualSeed(0);

// A fixed batch of 64 random 28×28 "images" with labels (the shapes a compiled step is tied to).
const x = tensor(Float32Array.from({ length: 64 * 784 }, (_, i) => ((i * 7919) % 1000) / 1000), [64, 1, 28, 28]);
const y = tensor(Int32Array.from({ length: 64 }, (_, i) => i % 10), [64], { dtype: 'int32' });

const model = new LeNet5({ dropout: 0.25 });
const opt = new Adam(model.parameters(), { lr: 1e-3 });
const sched = new StepLR(opt, 10, 0.5);
// Call 1 runs eagerly (it creates Adam's moments), call 2 is recorded, later calls replay it:
// parameters and moments are updated in place, the learning rate and Adam's bias corrections
// are re-read at every step, dropout masks follow the global generator as eager steps would.
const step = opt.compile((input, labels) => crossEntropy(model.forward(input), labels), { model });
let live = 0;
for (let i = 0; i < 30; i++) {
  if (i === 2) live = memory().liveTensors; // the optimiser state exists from here on
  const loss = step.step(x, y); // one training step; the loss is ours to dispose
  if (i % 10 === 9) console.log(`step ${i + 1}: loss ${(await loss.item()).toFixed(4)}, lr ${sched.getLastLr()[0]}, replayed: ${step.recorded} (${step.dispatches} dispatches)`);
  loss.dispose();
  sched.step(); // honoured by the next replay
}
console.log(`live tensors grew by ${memory().liveTensors - live} over 28 steps`); // 0
step.dispose();

// Inference: record a fixed-shape pass once, replay it on new inputs of the same shape.
model.eval();
const predict = recordReplay((input) => noGrad(() => model.forward(input).softmax(-1)), [x]);
const [probs] = predict.run(x);
console.log(`probabilities ${probs.shape}, row sums ${(await tidy(() => probs.sum(-1).mean()).item()).toFixed(4)}`);
probs.dispose();
predict.dispose();

opt.dispose();
model.dispose();
x.dispose();
y.dispose();
shutdown();
