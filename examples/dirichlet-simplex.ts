/**
 * The three cases of a prior network on a 3-class toy problem, drawn on the simplex:
 *
 *   confident      — an input deep inside one class: Dir(α) sharp at that class's corner;
 *   data-uncertain — an input where the three classes overlap: Dir(α) sharp at the centre
 *                    (the classes are genuinely ambiguous, α₀ large);
 *   OOD            — an input far from all training data: Dir(α) flat (α ≈ 1, α₀ small).
 *
 * Data: three Gaussian blobs in 2-D (centres on a circle of radius 3, σ = 0.6) and an
 * ambiguous cluster at the origin (σ = 0.5) whose labels are the three classes in equal shares; training outliers on a ring of radius 7–11 with the flat target β = 1. A small MLP
 * with the exp head is trained with the REVERSE-KL prior-network loss (target precision 100;
 * Malinin & Gales 2019). Reverse KL matters for the middle case: where the labels are mixed, its
 * minimiser is the mixture of the targets' concentrations, Σ_y p(y)·β_y (sharp at the centre),
 * whereas the forward KL's is multimodal (α_k < 1, mass at the corners).
 * Writes dirichlet-simplex.svg (or the path given as the first argument). CPU, a few seconds.
 *
 *   node scripts/run-ts.mjs examples/dirichlet-simplex.ts [out.svg]
 */
import { writeFileSync } from 'node:fs';
import {
  Adam, Linear, ReLU, Sequential, PriorNetwork, type Tensor, cpuBackend, dirichletDifferentialEntropy, dirichletExpectedEntropy, dirichletMutualInformation,
  init, keep, manualSeed, priorNetworkLoss, report, tensor, tidy, vacuity,
} from '../node.js';
import { rng } from './toy-random.js';

const { panelGrid, simplexDensitySvg } = report;


export interface SimplexToyResult {
  svg: string;
  cases: { name: string; input: [number, number]; alpha: [number, number, number]; alpha0: number; mi: number; expectedEntropy: number; differentialEntropy: number; vacuity: number }[];
}

/** Trains the toy prior network and returns the SVG and the three cases' numbers. */
export async function dirichletSimplexToy(opts: { steps?: number; seed?: number } = {}): Promise<SimplexToyResult> {
  const be = cpuBackend();
  manualSeed(opts.seed ?? 0);
  const rand = rng(opts.seed ?? 0);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const perClass = 150;
  const nOod = 300;
  const xs: number[] = [];
  const ys: number[] = [];
  const ood: number[] = [];
  const centres = [0, 1, 2].map((k) => [3 * Math.cos(Math.PI / 2 + (2 * Math.PI * k) / 3), 3 * Math.sin(Math.PI / 2 + (2 * Math.PI * k) / 3)] as const);
  for (let k = 0; k < 3; k++) for (let i = 0; i < perClass; i++) { xs.push(centres[k]![0] + 0.6 * gauss(), centres[k]![1] + 0.6 * gauss()); ys.push(k); ood.push(0); }
  // The ambiguous region: a cluster at the origin whose labels cycle through the three classes.
  for (let i = 0; i < perClass; i++) { xs.push(0.5 * gauss(), 0.5 * gauss()); ys.push(i % 3); ood.push(0); }
  for (let i = 0; i < nOod; i++) {
    const r = 7 + 4 * rand();
    const t = 2 * Math.PI * rand();
    xs.push(r * Math.cos(t), r * Math.sin(t)); ys.push(0); ood.push(1);
  }
  const n = ys.length;
  const x = keep(tensor(xs, [n, 2], { backend: be }));
  const y = keep(tensor(ys, [n], { dtype: 'int32', backend: be }));
  const oodMask = keep(tensor(ood, [n], { backend: be }));
  const body = new Sequential(new Linear(2, 32), new ReLU(), new Linear(32, 32), new ReLU(), new Linear(32, 3));
  const net = new PriorNetwork(body);
  const opt = new Adam(body.parameters(), { lr: 1e-2 });
  const steps = opts.steps ?? 600;
  for (let s = 0; s < steps; s++) {
    tidy(() => {
      opt.zeroGrad();
      const l = priorNetworkLoss(net.alpha(x), y, { ood: oodMask, divergence: 'reverse' });
      l.backward();
      opt.step();
    });
  }
  const queries: [string, [number, number]][] = [
    ['confident', [centres[0]![0], centres[0]![1]]],
    ['data-uncertain', [0, 0]],
    ['out-of-distribution', [9 * Math.cos(1), 9 * Math.sin(1)]],
  ];
  const q = tensor(queries.flatMap(([, p]) => p), [3, 2], { backend: be });
  const [alpha, mi, ee, de, vac] = await Promise.all(tidy(() => {
    const a = net.alpha(q);
    return [a, dirichletMutualInformation(a), dirichletExpectedEntropy(a), dirichletDifferentialEntropy(a), vacuity(a)] as Tensor[];
  }).map(async (t) => { const d = Array.from(await t.data()); t.dispose(); return d; }));
  q.dispose(); x.dispose(); y.dispose(); oodMask.dispose(); body.dispose();
  const cases = queries.map(([name, input], i) => {
    const a = [alpha![3 * i]!, alpha![3 * i + 1]!, alpha![3 * i + 2]!] as [number, number, number];
    return { name, input, alpha: a, alpha0: a[0] + a[1] + a[2], mi: mi![i]!, expectedEntropy: ee![i]!, differentialEntropy: de![i]!, vacuity: vac![i]! };
  });
  const panels = cases.map((c) => simplexDensitySvg({
    alpha: c.alpha,
    title: `${c.name}: x = (${c.input.map((v) => v.toFixed(1)).join(', ')})`,
    caption: [
      `α = (${c.alpha.map((v) => v.toFixed(1)).join(', ')}), α₀ = ${c.alpha0.toFixed(1)}`,
      `MI = ${c.mi.toFixed(3)}, E[H] = ${c.expectedEntropy.toFixed(3)}`,
      `diff. entropy = ${c.differentialEntropy.toFixed(2)}, vacuity = ${c.vacuity.toFixed(3)}`,
    ],
  }));
  const svg = panelGrid(panels, { title: 'Prior network, 3-class toy: Dir(α) on the simplex (ring: mean α/α₀; shade: log-density)' });
  return { svg, cases };
}

const isMain = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('dirichlet-simplex.ts');
if (isMain) {
  await init({ backend: 'cpu' });
  const out = process.argv[2] ?? 'dirichlet-simplex.svg';
  const t0 = performance.now();
  const r = await dirichletSimplexToy();
  writeFileSync(out, r.svg);
  for (const c of r.cases) console.log(`${c.name.padEnd(20)} α = [${c.alpha.map((v) => v.toFixed(2)).join(', ')}]  α₀ = ${c.alpha0.toFixed(2)}  MI = ${c.mi.toFixed(4)}  E[H] = ${c.expectedEntropy.toFixed(4)}  DE = ${c.differentialEntropy.toFixed(3)}`);
  console.log(`wrote ${out} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}
