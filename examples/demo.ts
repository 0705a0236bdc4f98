/**
 * `npm run demo`: trains LeNet-5 on the shipped MNIST digits (8,000 train / 1,000 val / 1,000
 * test, seeded) on WebGPU when an adapter exists (else the CPU reference, with a notice), prints
 * per-epoch progress and the test accuracy, then shows the motivating failure from the seed
 * notes: how often the same network is *confidently wrong* on Fashion-MNIST, which it has never
 * seen. Options: --epochs N, --lr X, --batch N, --shift PX, --rotate DEG, --scale FRAC, --dropout P, --backend webgpu|cpu,
 * --save PATH (safetensors of the weights), --estimate-only (on the CPU backend: print the
 * fallback notice with its time estimate, then exit).
 *
 * On the CPU reference backend (no WebGPU adapter, or --backend cpu) it first says so, times a
 * few training steps and prints how long the whole run will take, and the command that installs
 * lavapipe.
 */
import { LeNet5, init, manualSeed, memory, saveSafetensors, shutdown } from '../node.js';
import { cpuFallbackNotice, measureStepMs } from './cpu-fallback.js';
import { MNIST_SPLIT, confidentFraction, evaluateAccuracy, loadDemoData, loadFashion, trainLeNet } from './mnist-training.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1]) return process.argv[i + 1];
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  return eq ? eq.slice(name.length + 3) : fallback;
}

const t0 = performance.now();
const choice = arg('backend', 'auto') as 'auto' | 'webgpu' | 'cpu';
const backend = await init({ backend: choice });
console.log(`dubito demo — backend: ${backend.name} (${backend.adapterInfo.vendor} ${backend.adapterInfo.architecture})`);
const epochs = Number(arg('epochs', '30'));
const batchSize = Number(arg('batch', '64'));
if (backend.name === 'cpu') {
  const msPerStep = await measureStepMs(batchSize, backend, 2);
  const evalImages = MNIST_SPLIT.val * epochs + MNIST_SPLIT.test + 2000;
  console.log(cpuFallbackNotice({ forced: choice === 'cpu', msPerStep, epochs, stepsPerEpoch: Math.floor(MNIST_SPLIT.train / batchSize), evalImages, batchSize }));
  if (process.argv.includes('--estimate-only')) {
    shutdown();
    process.exit(0);
  }
}

console.log(`Loading MNIST (${MNIST_SPLIT.train} train / ${MNIST_SPLIT.val} val / ${MNIST_SPLIT.test} test, seed 0)…`);
const data = await loadDemoData(0);
const { train, val, test } = data.splits;

manualSeed(0);
const lr = Number(arg('lr', '2e-3'));
const augment = { maxShift: Number(arg('shift', '2')), maxRotate: Number(arg('rotate', '12')), maxScale: Number(arg('scale', '0.1')) };
const model = new LeNet5({ dropout: Number(arg('dropout', '0.3')) });
console.log(`Training LeNet-5 (${model.parameterCount()} parameters) for ${epochs} epochs, batch ${batchSize}, Adam ${lr} with cosine decay, random affine (±${augment.maxRotate}°, ±${augment.maxScale * 100}% scale, ±${augment.maxShift} px)…`);
const { msPerStep } = await trainLeNet(model, train, val, { epochs, batchSize, lr, seed: 0, augment, backend, log: console.log });

const { accuracy } = await evaluateAccuracy(model, test, 500, backend);
console.log(`\nTest accuracy: ${(accuracy * 100).toFixed(2)}% on ${test.count} held-out digits`);
console.log(`Train step (batch ${batchSize}, forward + backward + Adam, wall time incl. GPU): ${msPerStep.toFixed(1)} ms`);

console.log('\nThe motivating failure: Fashion-MNIST is not digits, yet…');
const fashion = await loadFashion(2000, 0);
const { probs } = await evaluateAccuracy(model, fashion, 500, backend);
const thresholds = [0.99, 0.95, 0.75];
const fr = confidentFraction(probs, thresholds);
for (let i = 0; i < thresholds.length; i++) {
  console.log(`  ${(fr[i] * 100).toFixed(1).padStart(5)}% of ${fashion.count} Fashion-MNIST images get max-softmax > ${thresholds[i]}`);
}
console.log('  …a softmax score alone cannot say "I don\'t know". See `npm run eval` for the uncertainty toolkit.');

const save = arg('save', '');
if (save) {
  await saveSafetensors(save, model.stateDict());
  console.log(`Saved weights to ${save}`);
}
const m = memory();
console.log(`\nMemory: ${m.liveTensors} live tensors, ${(m.bytesInUse / 1e6).toFixed(2)} MB in use, ${(m.bytesPooled / 1e6).toFixed(2)} MB pooled`);
console.log(`Wall time: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
shutdown();
