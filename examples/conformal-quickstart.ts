/**
 * A short tour of conformal prediction and active learning (the README's "Conformal prediction
 * and active learning" excerpts): prediction sets with a coverage guarantee from softmax outputs,
 * conformal regression intervals, and acquisition scores from MC-dropout samples.
 *   node scripts/run-ts.mjs examples/conformal-quickstart.ts
 */
import {
  ConformalRegressor, SplitConformalClassifier, acquisitionScores, dispose, init, manualSeed, normal, selectTopK, setMetrics, shutdown,
  softmax, tensor,
} from '../node.js';

await init({ backend: 'auto' });
manualSeed(0);
// Stand-ins for a classifier's logits on held-out (calibration) and new data, K = 10; the true
// label is the argmax of the logits plus noise, so the classifier is right most of the time.
const logits = normal([700, 10], { std: 3 });
const labels = logits.add(normal([700, 10], { std: 2 })).argmax(-1);
const calProbs = softmax(logits.slice([0, 0], [500, 10]), -1);
const calLabels = labels.slice([0], [500]);
const testProbs = softmax(logits.slice([500, 0], [200, 10]), -1);
const testLabels = labels.slice([500], [200]);

// Sets that hold the true label with probability ≥ 90% (APS, randomised; 'lac' and 'raps' too)
const cp = await new SplitConformalClassifier({ alpha: 0.1, score: 'aps' }).calibrate(calProbs, calLabels);
const sets = cp.predictSets(testProbs); // bool [200, 10]
const { coverage, meanSize, minStratifiedCoverage } = await setMetrics(sets, testLabels);
console.log(`q̂ = ${cp.qhat.toFixed(4)}, coverage ${coverage}, mean size ${meanSize}, size-stratified ${minStratifiedCoverage}`);

// Regression: ŷ ± q̂ from absolute residuals ('cqr' takes [B, 2] quantile heads)
const yHat = normal([300]);
const y = yHat.add(normal([300], { std: 0.5 }));
const reg = await new ConformalRegressor({ alpha: 0.1 }).calibrate(yHat, y);
const { lower, upper } = reg.predictIntervals(tensor([0, 1, 2]));
console.log('intervals', await lower.data(), await upper.data());

// Active learning: acquisition scores from T MC-dropout probability samples [T, B, K]
const mcProbs = softmax(normal([20, 100, 10]), -1); // e.g. mcDropout(model, pool, { samples: 20 }).probs
const bald = acquisitionScores(mcProbs, 'bald'); // [100], higher = acquire first
const next = selectTopK(await bald.data(), 10); // the 10 pool indices to label next
console.log('acquire', Array.from(next));

dispose([logits, labels, calProbs, calLabels, testProbs, testLabels, sets, yHat, y, lower, upper, mcProbs, bald]);
shutdown();
