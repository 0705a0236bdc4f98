/**
 * The plot and tables of the Gal-network active-learning runs, made from the measured curves in
 * one or more `results.json` files (the `active` eval group with `--active-model gal`), so runs
 * of different seeds or of different acquisition subsets combine without rerunning anything.
 *
 * Reads the keys `active.gal[.seed<S>].<acquisition>.{labels[], accuracy[]}` (no suffix = seed 0;
 * a later file overrides an earlier one key by key, as the eval's own merge does), prints one
 * markdown table of test error (%) per seed and one of the mean over the seeds, and writes an SVG
 * of the mean test error per acquisition against the number of labels. An acquisition is plotted
 * only if every seed has it with the same label counts, so the mean is over the same seeds for
 * every curve; `--seed S` keeps that seed only (its curves as measured, no mean).
 *
 *   node scripts/run-ts.mjs examples/plot-active-gal.ts [--svg docs/active-learning-gal.svg]
 *        [--seed S] [results.json ...]   (default .cache/dubito/reports/eval-latest/results.json)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { report } from '../node.js';

interface Curve { labels: number[]; accuracy: number[] }

const argv = process.argv.slice(2);
let svgPath: string | undefined;
let onlySeed: number | undefined;
const files: string[] = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--svg') svgPath = argv[++i];
  else if (argv[i] === '--seed') onlySeed = Number(argv[++i]);
  else files.push(argv[i]);
}
if (files.length === 0) files.push(join('.cache', 'dubito', 'reports', 'eval-latest', 'results.json'));

const merged: Record<string, unknown> = {};
for (const f of files) Object.assign(merged, JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>);

// seed → acquisition → curve
const bySeed = new Map<number, Map<string, Curve>>();
const key = /^active\.gal(?:\.seed(\d+))?\.([A-Za-z]+)\.(labels|accuracy)$/;
for (const [k, v] of Object.entries(merged)) {
  const m = key.exec(k);
  if (!m || !Array.isArray(v)) continue;
  const seed = m[1] ? Number(m[1]) : 0;
  if (onlySeed !== undefined && seed !== onlySeed) continue;
  const acq = bySeed.get(seed) ?? new Map<string, Curve>();
  bySeed.set(seed, acq);
  const c = acq.get(m[2]) ?? { labels: [], accuracy: [] };
  acq.set(m[2], c);
  c[m[3] as 'labels' | 'accuracy'] = v as number[];
}
if (bySeed.size === 0) throw new Error(`plot-active-gal: no active.gal.* curves${onlySeed === undefined ? '' : ` of seed ${onlySeed}`} in ${files.join(', ')}`);

const order = ['random', 'bald', 'variationRatio', 'maxEntropy', 'margin'];
const rank = (a: string) => (order.indexOf(a) < 0 ? order.length : order.indexOf(a));
const seeds = [...bySeed.keys()].sort((a, b) => a - b);
const err = (a: number) => (1 - a) * 100;

for (const s of seeds) {
  const acqs = [...bySeed.get(s)!.keys()].sort((a, b) => rank(a) - rank(b));
  const curves = bySeed.get(s)!;
  const labels = acqs.map((a) => curves.get(a)!.labels).reduce((l, m) => (m.length > l.length ? m : l));
  console.log(`\nseed ${s}: test error (%)\n`);
  console.log(report.markdownTable(
    ['labels', ...acqs],
    // an acquisition run for fewer rounds shows '–' after its last round
    labels.map((n, i) => [n, ...acqs.map((a) => (i < curves.get(a)!.accuracy.length ? err(curves.get(a)!.accuracy[i]).toFixed(1) : '–'))]),
    ['r', ...acqs.map(() => 'r' as const)],
  ));
}

// Acquisitions present for every seed with identical label counts.
const first = bySeed.get(seeds[0])!;
const common = [...first.keys()].filter((a) => seeds.every((s) => {
  const c = bySeed.get(s)!.get(a);
  return c !== undefined && c.labels.length === first.get(a)!.labels.length && c.labels.every((n, i) => n === first.get(a)!.labels[i]);
})).sort((a, b) => rank(a) - rank(b));
if (common.length === 0) throw new Error(`plot-active-gal: no acquisition is present for all seeds ${seeds.join(', ')}`);
const mean = new Map(common.map((a) => [a, first.get(a)!.labels.map((_, i) => seeds.reduce((t, s) => t + err(bySeed.get(s)!.get(a)!.accuracy[i]), 0) / seeds.length)]));
const labels = common.map((a) => first.get(a)!.labels).reduce((l, m) => (m.length > l.length ? m : l));
const seedWord = seeds.length === 1 ? `seed ${seeds[0]}` : `mean of seeds ${seeds.join(', ')}`;
if (seeds.length > 1) console.log(`\n${seedWord}: test error (%)\n\n${report.markdownTable(
  ['labels', ...common],
  labels.map((n, i) => [n, ...common.map((a) => (i < mean.get(a)!.length ? mean.get(a)![i].toFixed(1) : '–'))]),
  ['r', ...common.map(() => 'r' as const)],
)}`);

if (svgPath) {
  const svg = report.linePlot({
    title: `MNIST active learning, Gal et al. network (${seedWord})`,
    xLabel: 'labelled images', yLabel: 'test error (%)',
    series: common.map((a) => ({ name: a, x: first.get(a)!.labels, y: mean.get(a)!, dash: a === 'random' ? '6 4' : undefined })),
    legend: 'top-right',
  });
  writeFileSync(svgPath, svg);
  console.log(`\nwrote ${svgPath} (${common.join(', ')}; ${seedWord})`);
}
