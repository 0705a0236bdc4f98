/**
 * The `bayes` eval group (`npm run eval -- --only bayes`): the Bayesian toolbox's figures and numbers.
 *
 * 1. Bayesian linear regression, the three observations (blr-observations.svg): linear features
 *    on one cluster (the predictive variance is smallest at the barycentre and grows
 *    quadratically away from it), on two separated clusters (it grows less), and Gaussian RBF
 *    features (far from the data it falls back to the noise 1/β).
 * 2. Logistic regression on two 2-D Gaussian blobs, MAP vs Laplace (logreg-map-vs-laplace.svg):
 *    the predictive entropy of the MAP model is constant along lines parallel to the decision
 *    boundary; the Laplace (full GGN, probit) one also grows away from the data.
 * 3. Two moons (generated, seeded), a 2-32-32-2 ReLU network as a deterministic net, with MC
 *    dropout, as Bayes-by-backprop VI, and with a last-layer and a full-network Laplace
 *    (two-moons.svg labelled; two-moons.png the raw panels side by side): predictive entropy maps.
 * 4. Last-layer Laplace on the cached eval LeNet-5 (MNIST 8k train): test NLL / ECE and the
 *    MNIST-vs-Fashion AUROC of the predictive entropy, against the MAP network.
 *
 * Everything but (4) is trained here on the CPU reference backend (tiny full-batch models are
 * faster there than on lavapipe) and seeded. Keys: `bayes.blr.*`, `bayes.logreg.*`,
 * `bayes.moons.<method>.*`, `laplace.{nll,ece,auroc,priorPrecision}` and `laplace.map.{nll,ece,auroc}`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Adam, type Backend, Dropout, Linear, type Module, ReLU, Sequential, type Tensor, crossEntropy, bceWithLogits, ece, enableMCDropout, getBackend, cpuBackend,
  concat, intTensor, manualSeed, mcDropout, noGrad, oodMetrics, randomNormal, randomUniform, setBackend, softmax, summarizeSamples, tensor, tidy,
  type ImageSet, loadFashionMnist, imageSetToTensors, colorize, encodePng, imageGrid, scaleNearest, type RGBImage, report,
  BayesianLinearRegression, gaussianBasis, Laplace, LinearVariational, elboLoss, variationalProbs,
} from '../node.js';
import { baseRecipe, obtainModel } from './eval-models.js';
import { loadDemoData } from './mnist-training.js';

const { formatTick, linePlot, niceTicks, panelGrid, escapeXml } = report;

export type BayesResults = Record<string, number | number[] | null>;

export interface EvalBayesOptions {
  outDir: string;
  /** The backend of the LeNet part (the toy models always train on the CPU reference). */
  backend: Backend;
  epochs?: number;
  retrain?: boolean;
  /** A smoke run: few training steps (for checking the pipeline, not the figures). */
  quick?: boolean;
  /** Which parts to run (default all): 'blr', 'logreg', 'moons', 'mnist'. */
  parts?: readonly ('blr' | 'logreg' | 'moons' | 'mnist')[];
  log?: (line: string) => void;
}

// ------------------------------------------------------------------------------ data

/** Two interleaving half circles (scikit-learn's make_moons) with Gaussian noise, seeded Philox. */
export function twoMoons(n: number, noise: number, seed: number): { x: Float32Array; y: Int32Array } {
  const u = randomUniform(n, seed, 0);
  const e = randomNormal(2 * n, seed, 1 << 20);
  const x = new Float32Array(2 * n);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const t = Math.PI * u[i];
    const c = i % 2;
    y[i] = c;
    x[2 * i] = (c === 0 ? Math.cos(t) : 1 - Math.cos(t)) + noise * e[2 * i];
    x[2 * i + 1] = (c === 0 ? Math.sin(t) : 0.5 - Math.sin(t)) + noise * e[2 * i + 1];
  }
  return { x, y };
}

interface Domain {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

/** Grid points, row 0 at the top (y1), as [gh·gw, 2]. */
function gridPoints(d: Domain, gw: number, gh: number): Float32Array {
  const g = new Float32Array(gw * gh * 2);
  for (let r = 0; r < gh; r++) {
    for (let c = 0; c < gw; c++) {
      const i = r * gw + c;
      g[2 * i] = d.x0 + ((c + 0.5) / gw) * (d.x1 - d.x0);
      g[2 * i + 1] = d.y1 - ((r + 0.5) / gh) * (d.y1 - d.y0);
    }
  }
  return g;
}

// ------------------------------------------------------------------------------ figures

const base64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const px = (v: number) => Math.round(v * 10) / 10;

interface Points {
  x: ArrayLike<number>;
  y: ArrayLike<number>;
}

/** The map as an image with the training points drawn in (white: class 0, orange: class 1). */
function mapImage(values: ArrayLike<number>, vmax: number, gw: number, gh: number, d: Domain, pts: Points, scale: number): RGBImage {
  const img = scaleNearest(colorize(Array.from(values, (v) => v / vmax), gw, gh, 'viridis'), scale);
  const W = img.width;
  const H = img.height;
  for (let i = 0; i < pts.y.length; i++) {
    const cx = Math.round(((pts.x[2 * i] - d.x0) / (d.x1 - d.x0)) * W);
    const cy = Math.round(((d.y1 - pts.x[2 * i + 1]) / (d.y1 - d.y0)) * H);
    const col = pts.y[i] === 0 ? [255, 255, 255] : [255, 127, 14];
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const xx = cx + dx;
        const yy = cy + dy;
        if (xx < 0 || yy < 0 || xx >= W || yy >= H) continue;
        const o = (yy * W + xx) * 3;
        const edge = Math.abs(dx) + Math.abs(dy) === 2;
        img.data[o] = edge ? 0 : col[0];
        img.data[o + 1] = edge ? 0 : col[1];
        img.data[o + 2] = edge ? 0 : col[2];
      }
    }
  }
  return img;
}

/** One labelled map panel: title, axes with ticks, the image, a colour bar from 0 to vmax. */
function mapPanel(title: string, img: RGBImage, d: Domain, vmax: number, barLabel: string): string {
  const L = 44;
  const T = 28;
  const w = img.width;
  const h = img.height;
  const W = L + w + 70;
  const H = T + h + 40;
  const X = (v: number) => L + ((v - d.x0) / (d.x1 - d.x0)) * w;
  const Y = (v: number) => T + ((d.y1 - v) / (d.y1 - d.y0)) * h;
  let s = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="11">\n`;
  s += `<rect width="${W}" height="${H}" fill="#ffffff"/>\n`;
  s += `<text x="${px(L + w / 2)}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(title)}</text>\n`;
  s += `<image x="${L}" y="${T}" width="${w}" height="${h}" preserveAspectRatio="none" href="data:image/png;base64,${base64(encodePng(img))}"/>\n`;
  s += `<rect x="${L}" y="${T}" width="${w}" height="${h}" fill="none" stroke="#333"/>\n`;
  for (const t of niceTicks(d.x0, d.x1, 6)) {
    if (t < d.x0 || t > d.x1) continue;
    s += `<line x1="${px(X(t))}" y1="${T + h}" x2="${px(X(t))}" y2="${T + h + 4}" stroke="#333"/><text x="${px(X(t))}" y="${T + h + 16}" text-anchor="middle">${formatTick(t)}</text>\n`;
  }
  for (const t of niceTicks(d.y0, d.y1, 5)) {
    if (t < d.y0 || t > d.y1) continue;
    s += `<line x1="${L - 4}" y1="${px(Y(t))}" x2="${L}" y2="${px(Y(t))}" stroke="#333"/><text x="${L - 6}" y="${px(Y(t))}" text-anchor="end" dominant-baseline="middle">${formatTick(t)}</text>\n`;
  }
  s += `<text x="${px(L + w / 2)}" y="${H - 6}" text-anchor="middle">x₁</text><text x="12" y="${px(T + h / 2)}" text-anchor="middle">x₂</text>\n`;
  const bx = L + w + 14;
  const steps = 32;
  for (let i = 0; i < steps; i++) {
    const v = 1 - (i + 0.5) / steps;
    const c = colorize([v], 1, 1, 'viridis').data;
    s += `<rect x="${bx}" y="${px(T + (i * h) / steps)}" width="12" height="${px(h / steps + 0.6)}" fill="rgb(${c[0]},${c[1]},${c[2]})"/>`;
  }
  s += `\n<rect x="${bx}" y="${T}" width="12" height="${h}" fill="none" stroke="#333"/>`;
  s += `<text x="${bx + 16}" y="${T + 8}">${formatTick(vmax)}</text><text x="${bx + 16}" y="${T + h}">0</text>`;
  s += `<text x="${bx + 30}" y="${px(T + h / 2)}" text-anchor="middle" transform="rotate(90 ${bx + 30} ${px(T + h / 2)})">${escapeXml(barLabel)}</text>\n`;
  return `${s}</svg>\n`;
}

/** Data points drawn on top of a linePlot (same frame as uncertainty/report/svg.ts: margins 58/14/30/46). */
function withPoints(svg: string, width: number, height: number, xd: [number, number], yd: [number, number], xs: number[], ys: number[]): string {
  const X = (v: number) => 58 + ((v - xd[0]) / (xd[1] - xd[0])) * (width - 72);
  const Y = (v: number) => height - 46 - ((v - yd[0]) / (yd[1] - yd[0])) * (height - 76);
  const dots = xs.map((x, i) => `<circle cx="${px(X(x))}" cy="${px(Y(ys[i]))}" r="3.2" fill="#000000"/>`).join('');
  return svg.replace(/<\/svg>\s*$/, `${dots}\n</svg>\n`);
}

// ------------------------------------------------------------------------------ 1. BLR

function blrFigure(outDir: string, results: BayesResults): void {
  const beta = 25;
  const grid = Array.from({ length: 321 }, (_, i) => -8 + i * 0.05);
  const panels: string[] = [];
  const sdPanels: string[] = [];
  const W = 420;
  const H = 320;
  const draw = (title: string, blr: BayesianLinearRegression, xs: number[], ys: number[], yd: [number, number]) => {
    const p = blr.predict(grid);
    const sd = Array.from(p.variance, Math.sqrt);
    const svg = linePlot({
      title, xLabel: 'x', yLabel: 'y', width: W, height: H, xDomain: [-8, 8], yDomain: yd, legend: 'bottom-left',
      series: [
        { name: 'predictive mean', x: grid, y: p.mean, color: '#1f77b4' },
        { name: 'mean ± 2σ(x)', x: grid, y: p.mean.map((m, i) => m + 2 * sd[i]), color: '#d62728', dash: '5 3' },
        { name: '', x: grid, y: p.mean.map((m, i) => m - 2 * sd[i]), color: '#d62728', dash: '5 3' },
        { name: 'noise ± 2/√β', x: grid, y: p.mean.map((m) => m + 2 / Math.sqrt(beta)), color: '#999999', dash: '2 3', strokeWidth: 1 },
        { name: '', x: grid, y: p.mean.map((m) => m - 2 / Math.sqrt(beta)), color: '#999999', dash: '2 3', strokeWidth: 1 },
      ],
    }).replace(/<g class="legend">[\s\S]*?<\/g>/, (g) => g.replace(/<line[^>]*\/><text[^>]*><\/text>\n/g, '')); // drop the unnamed twins
    panels.push(withPoints(svg, W, H, [-8, 8], yd, xs, ys));
    const sdMax = 1;
    const sdSvg = linePlot({
      title: `${title}: σ(x)`, xLabel: 'x', yLabel: 'predictive sd σ(x)', width: W, height: H, xDomain: [-8, 8], yDomain: [0, sdMax], legend: 'top-right',
      series: [
        { name: 'σ(x) = √(1/β + φᵀΣφ)', x: grid, y: sd.map((v) => Math.min(v, sdMax)), color: '#d62728' },
        { name: 'noise 1/√β', x: grid, y: grid.map(() => 1 / Math.sqrt(beta)), color: '#999999', dash: '2 3' },
      ],
    });
    sdPanels.push(withPoints(sdSvg, W, H, [-8, 8], [0, sdMax], xs, xs.map(() => 0.02)));
    return p;
  };
  // (a) linear features, one cluster.
  const xa = [0.5, 1, 1.5, 2.5, 3, 4.5];
  const ya = xa.map((x, i) => 1 - 0.5 * x + 0.2 * Math.sin(7 * i));
  const a = new BayesianLinearRegression({ alpha: 1e-2, beta }).fit(xa, ya);
  const pa = draw('linear features, one cluster', a, xa, ya, [-8, 8]);
  let imin = 0;
  for (let i = 1; i < grid.length; i++) if (pa.variance[i] < pa.variance[imin]) imin = i;
  results['bayes.blr.linear.barycentre'] = xa.reduce((s, v) => s + v, 0) / xa.length;
  results['bayes.blr.linear.argminVariance'] = grid[imin];
  results['bayes.blr.linear.sdAt8'] = Math.sqrt(a.predict([8]).variance[0]);
  // (b) linear features, two separated clusters.
  const xb = [-5, -4.5, -4, 4, 4.5, 5];
  const yb = xb.map((x, i) => 1 - 0.5 * x + 0.2 * Math.sin(7 * i));
  const b = new BayesianLinearRegression({ alpha: 1e-2, beta }).fit(xb, yb);
  draw('linear features, two clusters', b, xb, yb, [-8, 8]);
  results['bayes.blr.twoClusters.sdAt8'] = Math.sqrt(b.predict([8]).variance[0]);
  // (c) Gaussian RBF features.
  const centres = Array.from({ length: 9 }, (_, i) => -2 + i * 0.5);
  const xc = Array.from({ length: 12 }, (_, i) => -2 + (4 * i) / 11);
  const yc = xc.map((x) => Math.sin(1.5 * x));
  const c = new BayesianLinearRegression({ alpha: 1, beta, basis: gaussianBasis(centres, 0.5) }).fit(xc, yc);
  draw('Gaussian RBF features (9 centres in [−2, 2])', c, xc, yc, [-3, 3]);
  results['bayes.blr.gaussian.sdAt8'] = Math.sqrt(c.predict([8]).variance[0]);
  results['bayes.blr.noiseSd'] = 1 / Math.sqrt(beta);
  writeFileSync(join(outDir, 'blr-observations.svg'), panelGrid([...panels, ...sdPanels], { columns: 3, title: `Bayesian linear regression: predictive mean ± 2σ (α = 0.01 / 1, β = ${beta})` }));
}

// ------------------------------------------------------------------------------ training helpers

async function trainFullBatch(model: Module, loss: () => Tensor, steps: number, lr: number, weightDecay = 0): Promise<number> {
  const opt = new Adam(model.parameters(), { lr, weightDecay });
  let last = NaN;
  for (let s = 0; s < steps; s++) {
    const l = tidy(() => {
      opt.zeroGrad();
      const v = loss();
      v.backward();
      opt.step();
      return v.detach();
    });
    if (s === steps - 1) last = await l.item();
    l.dispose();
  }
  return last;
}

/** Binary entropy (nats) of p = P(class 1), or the entropy of rows of a [M, K] probability array. */
function entropies(probs: ArrayLike<number>, k: number): Float64Array {
  const m = probs.length / k;
  const h = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    let s = 0;
    for (let j = 0; j < k; j++) {
      const p = probs[i * k + j];
      if (p > 0) s -= p * Math.log(p);
    }
    h[i] = s;
  }
  return h;
}

// ------------------------------------------------------------------------------ 2. logistic regression

async function logregFigure(outDir: string, results: BayesResults): Promise<void> {
  const n = 200;
  const e = randomNormal(2 * n, 77, 0);
  const xs = new Float32Array(2 * n);
  const ys = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 2;
    ys[i] = c;
    xs[2 * i] = (c ? 1.2 : -1.2) + 0.7 * e[2 * i];
    xs[2 * i + 1] = (c ? 0.6 : -0.6) + 0.7 * e[2 * i + 1];
  }
  const x = tensor(Array.from(xs), [n, 2]);
  const y = tensor(Array.from(ys), [n]);
  const delta = 1;
  manualSeed(1);
  const model = new Linear(2, 1);
  // MAP: minimise (Σ BCE + δ/2‖θ‖²)/N (Adam's coupled weight decay δ/N).
  await trainFullBatch(model, () => bceWithLogits(model.forward(x).reshape([n]), y), 1500, 0.05, delta / n);
  const la = await Laplace.fit(model, x, y, { likelihood: 'binary', priorPrecision: delta });
  const d: Domain = { x0: -8, x1: 8, y0: -8, y1: 8 };
  const gw = 96;
  const gh = 96;
  const g = tensor(Array.from(gridPoints(d, gw, gh)), [gw * gh, 2]);
  const pMap = await noGrad(() => tidy(() => { const f = model.forward(g); return softmax(concat([f.mul(0), f], 1), -1); })).data();
  const pr = la.predict(g);
  const pLap = await pr.probs.data();
  const hMap = entropies(pMap, 2);
  const hLap = entropies(pLap, 2);
  const pts = { x: xs, y: Int32Array.from(ys) };
  const ln2 = Math.log(2);
  const panels = [
    mapPanel('MAP: predictive entropy', mapImage(hMap, ln2, gw, gh, d, pts, 3), d, ln2, 'entropy (nats)'),
    mapPanel('Laplace (full GGN, probit): entropy', mapImage(hLap, ln2, gw, gh, d, pts, 3), d, ln2, 'entropy (nats)'),
  ];
  writeFileSync(join(outDir, 'logreg-map-vs-laplace.svg'), panelGrid(panels, { columns: 2, title: 'Logistic regression on two blobs: MAP vs Laplace' }));
  // Far along the boundary (x = (−6, 6)) vs near the data at the boundary (x = (0, 0)).
  const at = (h: Float64Array, px0: number, py0: number) => {
    const c = Math.min(gw - 1, Math.floor(((px0 - d.x0) / (d.x1 - d.x0)) * gw));
    const r = Math.min(gh - 1, Math.floor(((d.y1 - py0) / (d.y1 - d.y0)) * gh));
    return h[r * gw + c];
  };
  results['bayes.logreg.map.entropyFar'] = at(hMap, 7, -7);
  results['bayes.logreg.laplace.entropyFar'] = at(hLap, 7, -7);
  results['bayes.logreg.map.entropyNear'] = at(hMap, 1.2, 0.6);
  results['bayes.logreg.laplace.entropyNear'] = at(hLap, 1.2, 0.6);
  [pr.probs, pr.fMean, pr.fCov, g, x, y].forEach((t) => t.dispose());
  la.dispose();
}

// ------------------------------------------------------------------------------ 3. two moons

async function moonsFigure(outDir: string, results: BayesResults, log: (m: string) => void, quick = false): Promise<void> {
  const N = 300;
  const H = 32;
  const data = twoMoons(N, 0.12, 2024);
  const x = tensor(Array.from(data.x), [N, 2]);
  const y = intTensor(Array.from(data.y), [N]);
  const d: Domain = { x0: -3.5, x1: 4.5, y0: -3, y1: 3.5 };
  const gw = 100;
  const gh = 82;
  const g = tensor(Array.from(gridPoints(d, gw, gh)), [gw * gh, 2]);
  const ln2 = Math.log(2);
  const maps: { title: string; key: string; h: Float64Array; acc: number }[] = [];
  const accuracy = async (probs: Tensor) => {
    const p = await probs.data();
    let c = 0;
    for (let i = 0; i < N; i++) c += (p[2 * i + 1] > p[2 * i] ? 1 : 0) === data.y[i] ? 1 : 0;
    return c / N;
  };
  const steps = quick ? 50 : 1500;
  const lr = 0.01;
  const wd = 1e-3; // Adam weight decay on the mean loss: prior precision δ = wd·N on the summed NLL

  // Deterministic.
  let t0 = performance.now();
  manualSeed(10);
  const det = new Sequential(new Linear(2, H), new ReLU(), new Linear(H, H), new ReLU(), new Linear(H, 2));
  await trainFullBatch(det, () => crossEntropy(det.forward(x), y), steps, lr, wd);
  det.eval();
  const pDet = noGrad(() => softmax(det.forward(g), -1));
  const pDetTrain = noGrad(() => softmax(det.forward(x), -1));
  maps.push({ title: 'deterministic (softmax)', key: 'deterministic', h: entropies(await pDet.data(), 2), acc: await accuracy(pDetTrain) });
  log(`moons: deterministic trained in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // MC dropout.
  t0 = performance.now();
  manualSeed(11);
  const mcd = new Sequential(new Linear(2, H), new ReLU(), new Dropout(0.2), new Linear(H, H), new ReLU(), new Dropout(0.2), new Linear(H, 2));
  await trainFullBatch(mcd, () => crossEntropy(mcd.forward(x), y), steps, lr, wd);
  mcd.eval();
  enableMCDropout(mcd);
  const sMcd = mcDropout(mcd, g, { samples: 50, seed: 5 });
  const sMcdTrain = mcDropout(mcd, x, { samples: 50, seed: 5 });
  maps.push({ title: 'MC dropout (p = 0.2, T = 50)', key: 'mcDropout', h: Float64Array.from(await sMcd.predictiveEntropy.data()), acc: await accuracy(sMcdTrain.mean) });
  log(`moons: MC dropout in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // Variational (Bayes by backprop).
  t0 = performance.now();
  manualSeed(12);
  const vi = new Sequential(new LinearVariational(2, H), new ReLU(), new LinearVariational(H, H), new ReLU(), new LinearVariational(H, 2));
  await trainFullBatch(vi, () => elboLoss(crossEntropy(vi.forward(x), y), vi, N), 2 * steps, lr);
  vi.eval();
  const sVi = summarizeSamples(variationalProbs(vi, g, { samples: 50, seed: 6 }));
  const sViTrain = summarizeSamples(variationalProbs(vi, x, { samples: 50, seed: 6 }));
  maps.push({ title: 'variational (Bayes by backprop, T = 50)', key: 'variational', h: Float64Array.from(await sVi.predictiveEntropy.data()), acc: await accuracy(sViTrain.mean) });
  log(`moons: VI in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // Last-layer Laplace on the deterministic net (Kristiadi et al. 2020), δ by marginal likelihood.
  t0 = performance.now();
  const kids = det.children();
  const body = new Sequential(...kids.slice(0, -1));
  const head = kids[kids.length - 1];
  const ll = await Laplace.fit(head, x, y, { likelihood: 'classification', features: (z) => body.forward(z) });
  const dLL = await ll.optimizePriorPrecision();
  const pLL = ll.predict(g);
  const pLLTrain = ll.predict(x);
  maps.push({ title: `last-layer Laplace (δ = ${formatTick(dLL)}, probit)`, key: 'laplaceLastLayer', h: entropies(await pLL.probs.data(), 2), acc: await accuracy(pLLTrain.probs) });
  results['bayes.moons.laplaceLastLayer.priorPrecision'] = dLL;
  log(`moons: last-layer Laplace in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // Full-network Laplace (GGN, P = 1218, full covariance) on the same net.
  t0 = performance.now();
  const full = await Laplace.fit(det, x, y, { likelihood: 'classification' });
  const dFull = await full.optimizePriorPrecision({ grid: Array.from({ length: 13 }, (_, i) => 10 ** (-2 + i / 3)) });
  const pFull = full.predict(g);
  const pFullTrain = full.predict(x);
  maps.push({ title: `full Laplace, GGN (δ = ${formatTick(dFull)}, probit)`, key: 'laplaceFull', h: entropies(await pFull.probs.data(), 2), acc: await accuracy(pFullTrain.probs) });
  results['bayes.moons.laplaceFull.priorPrecision'] = dFull;
  results['bayes.moons.laplaceFull.parameters'] = full.size;
  log(`moons: full Laplace in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const pts = { x: data.x, y: data.y };
  const imgs = maps.map((m) => mapImage(m.h, ln2, gw, gh, d, pts, 3));
  writeFileSync(join(outDir, 'two-moons.png'), encodePng(imageGrid(imgs, { columns: imgs.length, padding: 6, background: [255, 255, 255] })));
  writeFileSync(join(outDir, 'two-moons.svg'), panelGrid(maps.map((m, i) => mapPanel(m.title, imgs[i], d, ln2, 'predictive entropy (nats)')), { columns: 3, title: 'Two moons (300 points, σ = 0.12): predictive entropy of a 2-32-32-2 ReLU net' }));
  // Entropy far from the data (the corner region |x| large) and on the training points.
  const farIdx: number[] = [];
  const gp = gridPoints(d, gw, gh);
  for (let i = 0; i < gw * gh; i++) if (gp[2 * i] < -2.5 || gp[2 * i] > 3.5 || gp[2 * i + 1] > 2.5 || gp[2 * i + 1] < -2) farIdx.push(i);
  for (const m of maps) {
    results[`bayes.moons.${m.key}.trainAccuracy`] = m.acc;
    results[`bayes.moons.${m.key}.meanEntropyFar`] = farIdx.reduce((s, i) => s + m.h[i], 0) / farIdx.length;
  }
  for (const t of [x, y, g, pDet, pDetTrain, pLL.probs, pLL.fMean, pLL.fCov, pLLTrain.probs, pLLTrain.fMean, pLLTrain.fCov, pFull.probs, pFull.fMean, pFull.fCov, pFullTrain.probs, pFullTrain.fMean, pFullTrain.fCov]) t.dispose();
  for (const s of [sMcd, sMcdTrain, sVi, sViTrain]) for (const t of Object.values(s)) (t as Tensor).dispose();
  ll.dispose();
  full.dispose();
}

// ------------------------------------------------------------------------------ 4. MNIST last-layer Laplace

async function features(model: { penultimate(x: Tensor): Tensor }, set: ImageSet, batch = 500): Promise<Tensor> {
  const { x } = imageSetToTensors(set);
  const parts: Tensor[] = [];
  for (let s = 0; s < set.count; s += batch) parts.push(noGrad(() => tidy(() => model.penultimate(x.slice([s], [Math.min(batch, set.count - s)])))));
  x.dispose();
  const f = parts.length === 1 ? parts[0] : concat(parts, 0);
  const host = await f.data();
  const shape = [...f.shape];
  parts.forEach((p) => p.dispose());
  if (parts.length > 1) f.dispose();
  // The Laplace linear algebra is small (P = 850): run it on the CPU reference.
  return tensor(Array.from(host), shape, { backend: cpuBackend() });
}

async function mnistLaplace(opts: EvalBayesOptions, results: BayesResults): Promise<void> {
  const log = opts.log ?? console.log;
  const mnist = await loadDemoData(0);
  const fashion = await loadFashionMnist({ split: { test: 2000, tune: 500 }, seed: 0, log });
  const { train, val, test } = mnist.splits;
  const trained = await obtainModel(baseRecipe(opts.epochs ?? 12, 0), train, val, opts.backend, { retrain: opts.retrain ?? false, log });
  const net = trained.model;
  net.eval();
  let t0 = performance.now();
  const fTrain = await features(net, train);
  const fVal = await features(net, val);
  const fTest = await features(net, test);
  const fOod = await features(net, fashion.splits.test);
  log(`mnist: penultimate features in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const prev = getBackend();
  setBackend(cpuBackend());
  try {
    // The head, copied to the CPU backend.
    const src = net.classifier.at(-1) as Linear;
    const head = new Linear(src.inFeatures, src.outFeatures);
    const w = await src.weight.data();
    const b = await src.bias!.data();
    head.loadStateDict({ weight: tensor(Array.from(w), [...src.weight.shape]), bias: tensor(Array.from(b), [...src.bias!.shape]) });
    const yTrain = intTensor(Array.from(train.labels));
    const yVal = intTensor(Array.from(val.labels));
    t0 = performance.now();
    const la = await Laplace.fit(head, fTrain, yTrain, { likelihood: 'classification', batchSize: 500 });
    const tFit = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const delta = await la.optimizePriorPrecision({ method: 'val-nll', xVal: fVal, yVal, grid: Array.from({ length: 13 }, (_, i) => 10 ** (-1 + i / 3)) });
    const tTune = (performance.now() - t0) / 1000;
    log(`mnist: last-layer Laplace fit ${tFit.toFixed(1)} s, prior precision ${delta} (val NLL) in ${tTune.toFixed(1)} s`);
    const metricsOf = async (pIn: ArrayLike<number>, pOut: ArrayLike<number>, prefix: string) => {
      const K = 10;
      const n = test.count;
      const conf = new Float64Array(n);
      const correct = new Uint8Array(n);
      let nll = 0;
      for (let i = 0; i < n; i++) {
        let best = 0;
        for (let k = 1; k < K; k++) if (pIn[i * K + k] > pIn[i * K + best]) best = k;
        conf[i] = pIn[i * K + best];
        correct[i] = best === test.labels[i] ? 1 : 0;
        nll -= Math.log(Math.max(pIn[i * K + test.labels[i]], 1e-12));
      }
      results[`${prefix}.nll`] = nll / n;
      results[`${prefix}.ece`] = ece(conf, correct);
      results[`${prefix}.accuracy`] = correct.reduce((a, c) => a + c, 0) / n;
      results[`${prefix}.auroc`] = oodMetrics(entropies(pIn, K), entropies(pOut, K)).auroc;
    };
    const mapIn = await noGrad(() => softmax(head.forward(fTest), -1)).data();
    const mapOut = await noGrad(() => softmax(head.forward(fOod), -1)).data();
    await metricsOf(mapIn, mapOut, 'laplace.map');
    t0 = performance.now();
    const pIn = la.predict(fTest);
    const pOut = la.predict(fOod);
    await metricsOf(await pIn.probs.data(), await pOut.probs.data(), 'laplace');
    const mcIn = la.predict(fTest, { method: 'mc', samples: 100, seed: 3 });
    const mcOut = la.predict(fOod, { method: 'mc', samples: 100, seed: 3 });
    await metricsOf(await mcIn.probs.data(), await mcOut.probs.data(), 'laplace.mc');
    results['laplace.predictSeconds'] = (performance.now() - t0) / 1000;
    results['laplace.priorPrecision'] = delta;
    results['laplace.fitSeconds'] = tFit;
    results['laplace.parameters'] = la.size;
    for (const p of [pIn, pOut, mcIn, mcOut]) for (const t of Object.values(p)) (t as Tensor | undefined)?.dispose();
    la.dispose();
    [yTrain, yVal].forEach((t) => t.dispose());
  } finally {
    if (prev) setBackend(prev);
    [fTrain, fVal, fTest, fOod].forEach((t) => t.dispose());
  }
}

// ------------------------------------------------------------------------------ entry

export async function evalBayes(opts: EvalBayesOptions): Promise<BayesResults> {
  const log = opts.log ?? console.log;
  mkdirSync(opts.outDir, { recursive: true });
  const results: BayesResults = {};
  const want = (p: 'blr' | 'logreg' | 'moons' | 'mnist') => !opts.parts || opts.parts.includes(p);
  const prev = getBackend();
  setBackend(cpuBackend());
  try {
    let t0 = performance.now();
    if (want('blr')) {
      blrFigure(opts.outDir, results);
      log(`blr figure in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    t0 = performance.now();
    if (want('logreg')) {
      await logregFigure(opts.outDir, results);
      log(`logistic regression figure in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    t0 = performance.now();
    if (want('moons')) {
      await moonsFigure(opts.outDir, results, log, opts.quick);
      results['bayes.moons.seconds'] = (performance.now() - t0) / 1000;
    }
  } finally {
    if (prev) setBackend(prev);
  }
  if (want('mnist')) await mnistLaplace(opts, results);
  log(`figures: ${join(opts.outDir, 'two-moons.svg')} (+ .png), blr-observations.svg, logreg-map-vs-laplace.svg`);
  return results;
}

// Run directly: node scripts/run-ts.mjs examples/eval-bayes.ts [--parts blr,logreg,moons,mnist] [--out DIR]
if (process.argv[1] && /eval-bayes\.(ts|js|mjs)$/.test(process.argv[1])) {
  const { init, shutdown } = await import('../node.js');
  const backend = await init({ backend: 'auto' });
  const i = process.argv.indexOf('--out');
  const outDir = i >= 0 ? process.argv[i + 1] : join(process.cwd(), '.cache', 'dubito', 'reports', 'bayes');
  const j = process.argv.indexOf('--parts');
  const parts = j >= 0 ? (process.argv[j + 1].split(',') as ('blr' | 'logreg' | 'moons' | 'mnist')[]) : undefined;
  const r = await evalBayes({ outDir, backend, parts, quick: process.argv.includes('--quick') });
  console.log(JSON.stringify(r, null, 2));
  shutdown();
}

