/**
 * A short tour of the Bayesian toolbox (the README's "Bayesian toolbox" excerpt): closed-form
 * Bayesian linear regression, a Laplace approximation of a small classifier, and a
 * Bayes-by-backprop network with its T-sample predictive in one batched pass. CPU, ~5 s.
 *   node scripts/run-ts.mjs examples/bayes-quickstart.ts
 */
import {
  Adam, BayesianLinearRegression, Laplace, Linear, LinearVariational, ReLU, Sequential, crossEntropy, dispose, elboLoss, gaussianBasis, init,
  intTensor, manualSeed, polynomialBasis, shutdown, summarizeSamples, tensor, tidy, variationalProbs,
} from '../node.js';

await init({ backend: 'cpu' });
manualSeed(0);

// Bayesian linear regression: Σ = (αI + βΦᵀΦ)⁻¹, μ = βΣΦᵀy, σ²(x) = 1/β + φ(x)ᵀΣφ(x)
const xs = [-1, -0.5, 0, 0.5, 1];
const noise = [0.03, -0.05, 0.02, 0.04, -0.03];
const ys = xs.map((x, i) => 2 * x * x - 0.5 + noise[i]);
const blr = new BayesianLinearRegression({ basis: polynomialBasis(2), alpha: 1, beta: 25 }).fit(xs, ys);
const { mean, variance } = blr.predict([0.25, 3]);
console.log(mean, variance); // the variance at x = 3 (far from the data) is much larger
const rbf = new BayesianLinearRegression({ basis: gaussianBasis([-1, 0, 1], 0.5), alpha: 1, beta: 25 }).fit(xs, ys);
console.log(rbf.predict([10]).variance[0]); // 1/β = 0.04 far away
blr.fitEvidence(xs, ys); // type-II ML estimates of α and β
console.log(blr.alpha, blr.beta, blr.logEvidence());

// Laplace around a trained classifier (here a linear softmax model on 4 points)
const x = tensor([[0, 1], [1, 0], [2, 2], [-1, -1]]);
const y = intTensor([0, 1, 1, 0]);
const net = new Linear(2, 2);
const sgd = new Adam(net.parameters(), { lr: 0.05, weightDecay: 0.25 }); // MAP with a Gaussian prior
for (let step = 0; step < 200; step++) tidy(() => { sgd.zeroGrad(); crossEntropy(net.forward(x), y).backward(); sgd.step(); });
const la = await Laplace.fit(net, x, y, { likelihood: 'classification', curvature: 'ggn', structure: 'full' });
await la.optimizePriorPrecision(); // marginal likelihood over a grid
const pred = la.predict(tensor([[0.5, 0.5], [10, -10]]), { method: 'probit' }); // or { method: 'mc', samples: 100 }
console.log(la.priorPrecision, await pred.probs.toArray());

// Bayes by backprop: w = μ + softplus(ρ)·ε, loss = NLL + KL/N, T-sample predictive in one pass
const vi = new Sequential(new LinearVariational(2, 16), new ReLU(), new LinearVariational(16, 2));
const opt = new Adam(vi.parameters(), { lr: 0.01 });
for (let step = 0; step < 200; step++) {
  tidy(() => {
    opt.zeroGrad();
    elboLoss(crossEntropy(vi.forward(x), y), vi, 4).backward();
    opt.step();
  });
}
const s = summarizeSamples(variationalProbs(vi, x, { samples: 20, seed: 1 }));
console.log(await s.mean.toArray(), await s.mutualInformation.toArray());

dispose([x, y, pred.probs, pred.fMean, pred.fCov, ...Object.values(s)]);
la.dispose();
shutdown();
