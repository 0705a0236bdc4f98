/**
 * Active learning on MNIST (the shape of Gal, Islam & Ghahramani 2017, Fig. 5.1: test error
 * against the number of labels acquired, BALD and variation ratio against random).
 *
 * Setup (sized for a 2-core machine; every number is an option): a pool of `pool` images drawn
 * (seeded) from the demo's 8,000 MNIST training images, the demo's 1,000 test images, a balanced
 * start set of 2 labels per class (20), k = 10 acquisitions per round. Every round retrains a
 * fresh LeNet-5 (dropout 0.5 before the last layer) from the same initialisation seed for `steps`
 * Adam steps (lr 2e-3, batches of min(32, labels) drawn epoch-wise from the labelled set, no
 * augmentation), then scores the unlabelled pool with T MC-dropout passes. LeNet-5's only dropout
 * sits before its last Linear layer, so the pool's penultimate features are computed once
 * (deterministic) and the T passes run through dropout + the last layer only — the same
 * distribution as T full passes, as one batched pass over the whole pool.
 *
 * `--model gal` uses instead the network of Gal, Islam & Ghahramani (2017) — conv 32@4×4, ReLU,
 * conv 32@4×4, ReLU, max-pool 2, dropout 0.25, dense 128, ReLU, dropout 0.5, dense 10 — whose
 * dropout after the convolutions makes the whole network stochastic: the pool is scored with T
 * full MC-dropout passes (`mcDropout`, chunked by `maxRowsPerPass`), still one batched
 * computation per chunk.
 *
 *   node scripts/run-ts.mjs examples/eval-active.ts [--rounds N] [--pool P] [--steps S] [--samples T]
 *        [--acquisitions bald,variationRatio,...] [--model lenet|gal] [--backend auto|webgpu|cpu]
 *
 * `evalActive(opts)` returns `results` keyed `active.<acquisition>.{labels, accuracy}` (arrays
 * per round) plus `active.config.*`, `active.<acquisition>.seconds` and
 * `active.<acquisition>.acquiredPerClass` (how many of each digit were acquired), writes `active.svg`
 * (test error vs labels) and `active.md` (the table) into `outDir`. With `--model gal` the prefix
 * is `active.gal`, and a seed S ≠ 0 adds `.seed<S>` (files `active-gal[-seed<S>].{svg,md}`).
 *
 * Every acquisition's run depends only on the seed, never on which other acquisitions are in the
 * list: the pool (seed 4242 + S), the start set (`balancedInitialSet` with seed S), the network's
 * initialisation (`manualSeed(1000 + S)` before every training), the batch order (77 + S, per
 * round) and the MC-dropout masks (9000 + round) are all re-seeded per training or per scoring.
 * So runs of different acquisition subsets give comparable curves (with the list `random, bald,
 * variationRatio, maxEntropy`, `random` reproduced the earlier `random, bald` run round for round
 * and `bald` its first six rounds, where that rerun was stopped for time), and `examples/plot-active-gal.ts` combines the curves of several `results.json` files
 * (per seed, and the mean over seeds) into the README's table and docs/active-learning-gal.svg.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  ACQUISITIONS, Adam, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, type Tensor, type Acquisition, type ActiveLearningResult, type Backend, type ImageSet, LeNet5, type Module, type PoolScorer, Sequential,
  accuracy, acquisitionScores, crossEntropy, enableMCDropout, indexSelect, init, manualSeed, mcDropout, noGrad, report, runActiveLearning, shutdown, tensor, tidy,
} from '../node.js';
import { evaluateAccuracy, loadDemoData, permutation, predictProbs } from './mnist-training.js';

export interface EvalActiveOptions {
  backend: Backend;
  train: ImageSet;
  test: ImageSet;
  acquisitions?: Acquisition[];
  pool?: number;
  rounds?: number;
  k?: number;
  initialPerClass?: number;
  steps?: number;
  samples?: number;
  seed?: number;
  /** 'lenet' (default: LeNet-5, dropout before the last layer) or 'gal' (Gal et al. 2017's network, dropout after the convolutions too). */
  model?: 'lenet' | 'gal';
  outDir?: string;
  log?: (line: string) => void;
}

/** Gal, Islam & Ghahramani (2017)'s MNIST network for Bayesian active learning. */
function galNet(): Sequential {
  return new Sequential(
    new Conv2d(1, 32, 4), new ReLU(), new Conv2d(32, 32, 4), new ReLU(), new MaxPool2d(2), new Dropout(0.25), new Flatten(),
    new Linear(32 * 11 * 11, 128), new ReLU(), new Dropout(0.5), new Linear(128, 10),
  );
}

function subset(set: ImageSet, idx: ArrayLike<number>): ImageSet {
  const images = new Float32Array(idx.length * 784);
  const labels = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    images.set(set.images.subarray(idx[i] * 784, (idx[i] + 1) * 784), i * 784);
    labels[i] = set.labels[idx[i]];
  }
  return { images, labels, count: idx.length, indices: Int32Array.from(idx, (j) => set.indices[j]) };
}

export async function evalActive(o: EvalActiveOptions): Promise<{ results: Record<string, number | number[]>; table: string; runs: ActiveLearningResult[] }> {
  const acquisitions = o.acquisitions ?? ['random', 'bald', 'variationRatio', 'maxEntropy', 'margin'];
  const P = o.pool ?? 2000;
  const rounds = o.rounds ?? 20;
  const k = o.k ?? 10;
  const initialPerClass = o.initialPerClass ?? 2;
  const steps = o.steps ?? 100;
  const T = o.samples ?? 20;
  const seed = o.seed ?? 0;
  const log = o.log ?? (() => {});
  const backend = o.backend;
  const pool = subset(o.train, permutation(o.train.count, 4242 + seed, 0).subarray(0, P));
  const poolX = tensor(pool.images, [P, 1, 28, 28], { backend });
  const poolY = tensor(pool.labels, [P], { dtype: 'int32', backend });

  const kind = o.model ?? 'lenet';
  const train = async (labelled: Int32Array, round: number): Promise<Module> => {
    manualSeed(1000 + seed); // the same initialisation every round and for every acquisition
    const model: Module = kind === 'gal' ? galNet() : new LeNet5({ dropout: 0.5 });
    const opt = new Adam(model.parameters(), { lr: 2e-3 });
    const N = labelled.length;
    const B = Math.min(32, N);
    const ids = tensor(labelled, [N], { dtype: 'int32', backend });
    model.train();
    let perm = permutation(N, 77 + seed, round * 1_000_000);
    let pos = 0;
    for (let s = 0; s < steps; s++) {
      if (pos + B > N) {
        perm = permutation(N, 77 + seed, round * 1_000_000 + s + 1);
        pos = 0;
      }
      const batch = perm.slice(pos, pos + B);
      pos += B;
      const loss = tidy(() => {
        opt.zeroGrad();
        const rows = indexSelect(ids, 0, tensor(batch, [B], { dtype: 'int32', backend }));
        const l = crossEntropy(model.forward(indexSelect(poolX, 0, rows)) as Tensor, indexSelect(poolY, 0, rows));
        l.backward();
        opt.step();
        return l.detach();
      });
      if (s % 10 === 9 || s === steps - 1) await loss.data(); // bounds the queue of submitted work
      loss.dispose();
    }
    ids.dispose();
    opt.dispose();
    model.eval();
    return model;
  };
  const evaluate = async (model: Module) => {
    if (model instanceof LeNet5) return (await evaluateAccuracy(model, o.test, 500, backend)).accuracy;
    model.eval();
    const probs = await predictProbs((x) => model.forward(x) as Tensor, o.test, 500, backend);
    return accuracy(probs, o.test.labels, { numClasses: 10 });
  };
  // Dropout + the last Linear layer: the only stochastic part of LeNet-5.
  const head = (model: LeNet5): Module => {
    const c = model.classifier.children();
    return new Sequential(model.dropout, c[c.length - 1]);
  };
  const score: PoolScorer<Module> = async (model, unlabelled, acquisition, round) => {
    enableMCDropout(model);
    const s = tidy(() => noGrad(() => {
      const x = indexSelect(poolX, 0, tensor(unlabelled, [unlabelled.length], { dtype: 'int32', backend }));
      const mc = model instanceof LeNet5
        ? mcDropout(head(model), model.penultimate(x), { samples: T, seed: 9000 + round })
        : mcDropout(model, x, { samples: T, seed: 9000 + round, maxRowsPerPass: 4000 });
      return acquisitionScores(mc.probs, acquisition);
    }));
    enableMCDropout(model, false);
    const host = await s.data();
    s.dispose();
    return host;
  };

  const results: Record<string, number | number[]> = {
    'active.config.pool': P, 'active.config.rounds': rounds, 'active.config.k': k, 'active.config.initial': initialPerClass * 10,
    'active.config.steps': steps, 'active.config.samples': T, 'active.config.test': o.test.count,
  };
  const prefix = `${kind === 'gal' ? 'active.gal' : 'active'}${seed ? `.seed${seed}` : ''}`;
  const runs: ActiveLearningResult[] = [];
  for (const acquisition of acquisitions) {
    const r = await runActiveLearning({
      poolLabels: pool.labels, numClasses: 10, initialPerClass, k, rounds, acquisition, seed,
      train, evaluate, score, dispose: (m) => m.dispose(), log: (l) => log(`  ${l}`),
    });
    log(`${acquisition}: ${r.seconds.toFixed(1)} s (pool scoring ${r.scoreSeconds.toFixed(1)} s)`);
    results[`${prefix}.${acquisition}.labels`] = r.labels;
    results[`${prefix}.${acquisition}.accuracy`] = r.accuracy;
    results[`${prefix}.${acquisition}.seconds`] = r.seconds;
    const perClass = new Array<number>(10).fill(0);
    for (const a of r.acquired) for (const i of a) perClass[pool.labels[i]]++;
    results[`${prefix}.${acquisition}.acquiredPerClass`] = perClass; // labels acquired per digit (start set excluded)
    runs.push(r);
  }
  poolX.dispose();
  poolY.dispose();

  const labels = runs[0].labels;
  const table = report.markdownTable(
    ['labels', ...runs.map((r) => `${r.acquisition} error %`)],
    labels.map((n, i) => [n, ...runs.map((r) => ((1 - r.accuracy[i]) * 100).toFixed(1))]),
    ['r', ...runs.map(() => 'r' as const)],
  );
  if (o.outDir) {
    mkdirSync(o.outDir, { recursive: true });
    const svg = report.linePlot({
      title: `MNIST active learning, ${kind === 'gal' ? 'Gal et al. network' : 'LeNet-5'} (pool ${P}, ${steps} Adam steps per round, T = ${T})`,
      xLabel: 'labelled images', yLabel: 'test error (%)',
      series: runs.map((r) => ({ name: r.acquisition, x: r.labels, y: r.accuracy.map((a) => (1 - a) * 100), dash: r.acquisition === 'random' ? '6 4' : undefined })),
      legend: 'top-right',
    });
    const stem = `${kind === 'gal' ? 'active-gal' : 'active'}${seed ? `-seed${seed}` : ''}`;
    writeFileSync(join(o.outDir, `${stem}.svg`), svg);
    const secs = runs.map((r) => `${r.acquisition} ${r.seconds.toFixed(0)} s`).join(', ');
    writeFileSync(join(o.outDir, `${stem}.md`), `# Active learning on MNIST (${kind === 'gal' ? 'Gal et al. 2017 network' : 'LeNet-5'})\n\npool ${P}, start ${initialPerClass * 10} labels, k = ${k}, ${rounds} rounds, ${steps} Adam steps per round, T = ${T} MC-dropout samples; time: ${secs}\n\n${table}\n`);
  }
  return { results, table, runs };
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

if (process.argv[1] && /eval-active/.test(process.argv[1])) {
  const backend = await init({ backend: arg('backend', 'auto') as 'auto' | 'webgpu' | 'cpu' });
  const { splits } = await loadDemoData(0);
  const acquisitions = arg('acquisitions', ACQUISITIONS.join(',')).split(',') as Acquisition[];
  const outDir = resolve(arg('out', join('.cache', 'dubito', 'reports', 'eval-latest', 'active')));
  const t0 = performance.now();
  const r = await evalActive({
    backend, train: splits.train, test: splits.test, acquisitions, outDir, log: console.log,
    pool: Number(arg('pool', '2000')), rounds: Number(arg('rounds', '20')), steps: Number(arg('steps', '100')), samples: Number(arg('samples', '20')),
    model: arg('model', 'lenet') as 'lenet' | 'gal',
  });
  console.log(r.table);
  for (const a of acquisitions) console.log(`${a}: acquired per digit ${JSON.stringify(r.results[`${arg('model', 'lenet') === 'gal' ? 'active.gal' : 'active'}.${a}.acquiredPerClass`])}`);
  console.log(`backend ${backend.name}; total ${((performance.now() - t0) / 1000).toFixed(1)} s; ${outDir}`);
  shutdown();
}
