/**
 * The explanation part of the eval: VOICE on LeNet-5 (MNIST test images the model gets right,
 * the ones it gets wrong, and Fashion-MNIST images it has never seen), deletion / insertion AUCs
 * per attribution method, the time of batched VOICE vs a loop over the contrast classes, and an
 * HTML gallery (input, prediction, Grad-CAM, ContrastCAM for the runner-up, VOICE map).
 *
 * `runExplainEval(opts)` is what `npm run eval` calls; run standalone with
 *   node scripts/run-ts.mjs examples/eval-explain.ts [--mnist N] [--fashion N] [--masking N] [--out DIR] [--backend B]
 * which trains or loads the eval's LeNet (examples/eval-models.ts, cached under .cache/dubito/eval/),
 * prints a table and writes into .cache/dubito/reports/eval-latest/explain/.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  type ImageSet, type Module, type Tensor, contrastCam, counterfactualCam, deletionCurve, dispose, encodePng,
  fromHost, galleryHtml, gradCam, heatmapImages, heatmapOverlays, imageGrid, inputImage, insertionCurve, attributionMap, memory,
  noGrad, normalizeMaps, saliency, scaleNearest, softmax, stack, tidy, uniform, variance, voice, type GalleryRow, type RGBImage,
} from '../node.js';

export interface ExplainEvalOptions {
  /** A trained classifier of [B, 1, 28, 28] images (the eval's LeNet-5), in eval mode. */
  model: Module;
  mnistTest: ImageSet;
  fashionTest: ImageSet;
  /** Folder for the PNGs, index.html and explain.json (created). */
  outDir: string;
  /** The CAM layer (default 'features.4': LeNet's second conv block after its ReLU, 16 × 10 × 10). */
  layer?: string;
  /** MNIST test images for VOICE (default: all of mnistTest). */
  mnistCount?: number;
  /** Fashion-MNIST images for VOICE (default 500). */
  fashionCount?: number;
  /** MNIST test images for the deletion / insertion curves (default 100). */
  maskingCount?: number;
  /** Steps of the deletion / insertion curves (default 20: 5% of the pixels per step). */
  maskingSteps?: number;
  /** Batch size (default 100). */
  batch?: number;
  log?: (line: string) => void;
}

const IMG = [1, 28, 28] as const;
const P = 28 * 28;

function batchTensor(set: ImageSet, start: number, count: number): Tensor {
  return fromHost(set.images.subarray(start * P, (start + count) * P), [count, ...IMG], 'float32');
}

const meanOf = (v: readonly number[]) => (v.length ? v.reduce((s, t) => s + t, 0) / v.length : NaN);

/** VOICE the slow way, for the timing comparison: one ContrastCAM pass per contrast class. */
async function voiceLoop(model: Module, x: Tensor, layer: string, K: number): Promise<Tensor> {
  const pT = tidy(() => noGrad(() => model.forward(x).argmax(-1)));
  const pred = await pT.data();
  pT.dispose();
  const maps: Tensor[] = [];
  for (let j = 1; j < K; j++) maps.push(await contrastCam(model, x, { layer, contrast: Int32Array.from(Array.from(pred, Number), (p) => (p + j) % K) }));
  const u = tidy(() => normalizeMaps(variance(stack(maps, 1), 1)));
  dispose(maps);
  return u;
}

interface VoiceStats { iou: number[]; snr: number[] }

export async function runExplainEval(opts: ExplainEvalOptions): Promise<Record<string, number>> {
  const log = opts.log ?? console.log;
  const model = opts.model;
  const layer = opts.layer ?? 'features.4';
  const batch = opts.batch ?? 100;
  const out = resolve(opts.outDir);
  mkdirSync(join(out, 'img'), { recursive: true });
  const live0 = memory().liveTensors;
  const numbers: Record<string, number> = {};
  const K = tidy(() => noGrad(() => model.forward(batchTensor(opts.mnistTest, 0, 1)).shape[1]));

  // ---------------------------------------------------------------- VOICE on MNIST and Fashion-MNIST
  const groups: Record<'correct' | 'incorrect' | 'fashion', VoiceStats> = {
    correct: { iou: [], snr: [] }, incorrect: { iou: [], snr: [] }, fashion: { iou: [], snr: [] },
  };
  const perImage: { set: 'mnist' | 'fashion'; index: number; label: number; pred: number; conf: number; iou: number; snr: number }[] = [];
  const t0 = performance.now();
  for (const [name, set, count] of [
    ['mnist', opts.mnistTest, Math.min(opts.mnistCount ?? opts.mnistTest.count, opts.mnistTest.count)],
    ['fashion', opts.fashionTest, Math.min(opts.fashionCount ?? 500, opts.fashionTest.count)],
  ] as const) {
    for (let s = 0; s < count; s += batch) {
      const n = Math.min(batch, count - s);
      const x = batchTensor(set, s, n);
      const v = await voice(model, x, { layer });
      const conf = tidy(() => noGrad(() => softmax(model.forward(x), -1).max(-1)));
      const [iou, snr, pred, c] = await Promise.all([v.iou.data(), v.snr.data(), v.prediction.data(), conf.data()]);
      for (let i = 0; i < n; i++) {
        const label = set.labels[s + i];
        const g = name === 'fashion' ? groups.fashion : pred[i] === label ? groups.correct : groups.incorrect;
        g.iou.push(iou[i]);
        g.snr.push(snr[i]);
        perImage.push({ set: name, index: s + i, label, pred: pred[i], conf: c[i], iou: iou[i], snr: snr[i] });
      }
      dispose([...Object.values(v), x, conf]);
    }
  }
  const voiceSeconds = (performance.now() - t0) / 1000;
  for (const g of ['correct', 'incorrect', 'fashion'] as const) {
    numbers[`explain.voice.iou.${g}`] = meanOf(groups[g].iou);
    numbers[`explain.voice.snr.${g}`] = meanOf(groups[g].snr);
    numbers[`explain.voice.n.${g}`] = groups[g].iou.length;
  }
  log(`  VOICE on ${perImage.length} images in ${voiceSeconds.toFixed(1)} s`);

  // ---------------------------------------------------------------- deletion / insertion per method
  const mCount = Math.min(opts.maskingCount ?? 100, opts.mnistTest.count);
  const steps = opts.maskingSteps ?? 20;
  const methods: [string, (x: Tensor) => Promise<Tensor>][] = [
    ['gradCam', (x) => gradCam(model, x, { layer })],
    ['counterfactualCam', (x) => counterfactualCam(model, x, { layer })],
    ['contrastCam', (x) => contrastCam(model, x, { layer })],
    ['voiceExplanation', async (x) => {
      const v = await voice(model, x, { layer });
      const e = v.explanation;
      dispose(Object.values(v).filter((t) => t !== e));
      return e;
    }],
    ['gradient', async (x) => mapOf(await saliency(model, x, { method: 'gradient' }))],
    ['gradientXInput', async (x) => mapOf(await saliency(model, x, { method: 'gradientXInput' }))],
    ['guidedBackprop', async (x) => mapOf(await saliency(model, x, { method: 'guidedBackprop' }))],
    ['smoothGrad', async (x) => mapOf(await saliency(model, x, { method: 'smoothGrad', samples: 16, seed: 7 }))],
    ['integratedGradients', async (x) => mapOf(await saliency(model, x, { method: 'integratedGradients', steps: 32 }))],
    ['random', async (x) => uniform([x.shape[0], 28, 28], { seed: 99 })],
  ];
  const t1 = performance.now();
  for (const [name, explain] of methods) {
    const del: number[] = [];
    const ins: number[] = [];
    for (let s = 0; s < mCount; s += batch) {
      const n = Math.min(batch, mCount - s);
      const x = batchTensor(opts.mnistTest, s, n);
      const maps = await explain(x);
      const d = await deletionCurve(model, x, maps, { steps });
      const i = await insertionCurve(model, x, maps, { steps });
      del.push(...(await d.auc.data()));
      ins.push(...(await i.auc.data()));
      dispose([x, maps, d.curve, d.auc, i.curve, i.auc]);
    }
    numbers[`explain.deletion.${name}.auc`] = meanOf(del);
    numbers[`explain.insertion.${name}.auc`] = meanOf(ins);
  }
  log(`  deletion / insertion curves (${methods.length} methods × ${mCount} images, ${steps} steps) in ${((performance.now() - t1) / 1000).toFixed(1)} s`);

  // ---------------------------------------------------------------- timing: batched vs loop over Q
  {
    const x = batchTensor(opts.mnistTest, 0, Math.min(100, opts.mnistTest.count));
    // Warm-up (pipelines compiled, pools filled) for both paths, then the median of 3 timed runs
    // each (every run ends with a read-back, so the GPU work is inside the timing).
    dispose(Object.values(await voice(model, x, { layer })));
    (await voiceLoop(model, x, layer, K)).dispose();
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
    const tb: number[] = [];
    const tl: number[] = [];
    for (let rep = 0; rep < 3; rep++) {
      let ta = performance.now();
      const vb = await voice(model, x, { layer });
      await vb.uncertainty.data();
      tb.push(performance.now() - ta);
      dispose(Object.values(vb));
      ta = performance.now();
      const ul = await voiceLoop(model, x, layer, K);
      await ul.data();
      tl.push(performance.now() - ta);
      ul.dispose();
    }
    numbers['explain.voice.time.batchedMs'] = median(tb);
    numbers['explain.voice.time.loopMs'] = median(tl);
    const v = await voice(model, x, { layer });
    const u = await voiceLoop(model, x, layer, K);
    const diff = tidy(() => v.uncertainty.sub(u).abs().max());
    numbers['explain.voice.time.maxAbsDiff'] = await diff.item();
    dispose([...Object.values(v), u, diff, x]);
  }

  // ---------------------------------------------------------------- gallery
  const pick = (pred: (r: (typeof perImage)[number]) => boolean, k: number) => perImage.filter(pred).slice(0, k);
  const chosen = [
    ...pick((r) => r.set === 'mnist' && r.pred === r.label, 6),
    ...pick((r) => r.set === 'mnist' && r.pred !== r.label, 6),
    ...pick((r) => r.set === 'fashion', 6),
  ];
  const FASHION = ['T-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'boot'];
  const hostImgs = new Float32Array(chosen.length * P);
  chosen.forEach((r, i) => hostImgs.set((r.set === 'mnist' ? opts.mnistTest : opts.fashionTest).images.subarray(r.index * P, (r.index + 1) * P), i * P));
  const gx = fromHost(hostImgs, [chosen.length, ...IMG], 'float32');
  const gc = await gradCam(model, gx, { layer });
  const cc = await contrastCam(model, gx, { layer });
  const v = await voice(model, gx, { layer });
  const logitsT = tidy(() => noGrad(() => model.forward(gx)));
  const logits = await logitsT.data();
  // The runner-up (second-highest logit), the class contrastCam contrasts with by default.
  const runner = chosen.map((_, i) => {
    const z: number[] = Array.from(logits.subarray(i * K, (i + 1) * K), Number);
    return z.map((_, k) => k).sort((a, b) => z[b] - z[a])[1];
  });
  const scale = 4;
  const inputs = chosen.map((_, i) => scaleNearest(inputImage(hostImgs.subarray(i * P, (i + 1) * P), 28, 28), scale));
  const gcImgs = await heatmapOverlays(gx, gc, { scale });
  const ccImgs = await heatmapOverlays(gx, cc, { scale });
  const uImgs = await heatmapImages(v.uncertainty, { scale });
  const eImgs = await heatmapOverlays(gx, v.explanation, { scale, colormap: 'viridis' });
  const write = (name: string, img: RGBImage) => {
    writeFileSync(join(out, 'img', name), encodePng(img));
    return `img/${name}`;
  };
  const rows: GalleryRow[] = chosen.map((r, i) => {
    const tag = `${r.set}-${r.index}`;
    const what = r.set === 'mnist' ? `MNIST #${r.index}, label ${r.label}` : `Fashion-MNIST #${r.index} (${FASHION[r.label]})`;
    return {
      title: `${what} → predicted ${r.pred} (p = ${r.conf.toFixed(2)})`,
      flagged: r.set === 'mnist' && r.pred !== r.label,
      cells: [
        { src: write(`${tag}-input.png`, inputs[i]), caption: 'input' },
        { src: write(`${tag}-gradcam.png`, gcImgs[i]), caption: `why ${r.pred}?` },
        { src: write(`${tag}-contrast.png`, ccImgs[i]), caption: `why ${r.pred}, not ${runner[i]}?` },
        { src: write(`${tag}-voice.png`, uImgs[i]), caption: `SNR ${r.snr.toFixed(2)} · IoU ${r.iou.toFixed(2)}` },
        { src: write(`${tag}-voice-explanation.png`, eImgs[i]), caption: 'explanation (viridis)' },
      ],
    };
  });
  writeFileSync(join(out, 'gradcam-grid.png'), encodePng(imageGrid(gcImgs, { columns: 6, padding: 4 })));
  writeFileSync(join(out, 'voice-grid.png'), encodePng(imageGrid(uImgs, { columns: 6, padding: 4 })));
  // The README's picture: input | Grad-CAM | ContrastCAM | VOICE for one correct, one wrong and one Fashion image.
  const firsts = [
    chosen.findIndex((r) => r.set === 'mnist' && r.pred === r.label),
    chosen.findIndex((r) => r.set === 'mnist' && r.pred !== r.label),
    chosen.findIndex((r) => r.set === 'fashion'),
  ].filter((i) => i >= 0);
  const strip = firsts.flatMap((i) => [inputs[i], gcImgs[i], ccImgs[i], uImgs[i]]);
  if (strip.length) writeFileSync(join(out, 'explain-strip.png'), encodePng(imageGrid(strip, { columns: 4, padding: 4 })));
  dispose([gx, gc, cc, ...Object.values(v), logitsT]);

  const f = (k: string, d = 3) => numbers[k].toFixed(d);
  const intro = `LeNet-5, CAM layer '${layer}'. VOICE mean IoU (uncertainty > 0.1 vs Grad-CAM > 0.1): correct MNIST ${f('explain.voice.iou.correct')} (n = ${numbers['explain.voice.n.correct']}), ` +
    `incorrect MNIST ${f('explain.voice.iou.incorrect')} (n = ${numbers['explain.voice.n.incorrect']}), Fashion-MNIST ${f('explain.voice.iou.fashion')} (n = ${numbers['explain.voice.n.fashion']}); ` +
    `mean SNR ${f('explain.voice.snr.correct')} / ${f('explain.voice.snr.incorrect')} / ${f('explain.voice.snr.fashion')}. Misclassified rows are shaded.`;
  writeFileSync(join(out, 'index.html'), galleryHtml({
    title: 'dubito — explanations and their uncertainty (VOICE)',
    intro,
    columns: ['input', 'Grad-CAM (why P?)', 'ContrastCAM (why P, not Q?)', 'VOICE uncertainty', 'Grad-CAM (viridis)'],
    rows,
  }));
  writeFileSync(join(out, 'explain.json'), JSON.stringify(numbers, null, 2) + '\n');
  const leaked = memory().liveTensors - live0;
  if (leaked > 0) log(`  warning: ${leaked} tensors still live after the explanation eval`);
  return numbers;
}

/** Attributions [B, 1, 28, 28] → normalised |attribution| maps [B, 28, 28]. */
function mapOf(attr: Tensor): Tensor {
  const m = attributionMap(attr);
  attr.dispose();
  return m;
}

/** Prints the numbers as a table. */
export function explainTable(n: Record<string, number>): string {
  const lines: string[] = [];
  lines.push('VOICE (mean over images)        IoU     SNR      n');
  for (const g of ['correct', 'incorrect', 'fashion'] as const) {
    lines.push(`  ${(g === 'fashion' ? 'Fashion-MNIST' : `MNIST ${g}`).padEnd(28)} ${n[`explain.voice.iou.${g}`].toFixed(3)}  ${n[`explain.voice.snr.${g}`].toFixed(3)}  ${String(n[`explain.voice.n.${g}`]).padStart(5)}`);
  }
  lines.push('Masking AUC (MNIST)             deletion ↓  insertion ↑');
  for (const k of Object.keys(n).filter((k) => k.startsWith('explain.deletion.'))) {
    const m = k.slice('explain.deletion.'.length, -'.auc'.length);
    lines.push(`  ${m.padEnd(28)} ${n[k].toFixed(3).padStart(8)}  ${n[`explain.insertion.${m}.auc`].toFixed(3).padStart(10)}`);
  }
  lines.push(`VOICE on 100 images: batched ${n['explain.voice.time.batchedMs'].toFixed(0)} ms, loop over Q ${n['explain.voice.time.loopMs'].toFixed(0)} ms ` +
    `(${(n['explain.voice.time.loopMs'] / n['explain.voice.time.batchedMs']).toFixed(1)}×; max |difference| ${n['explain.voice.time.maxAbsDiff'].toExponential(1)})`);
  return lines.join('\n');
}

// ------------------------------------------------------------------------------ standalone
if (/eval-explain\.(mjs|ts|js)$/.test(process.argv[1] ?? '')) {
  const { init, shutdown, loadFashionMnist } = await import('../node.js');
  const { loadDemoData } = await import('./mnist-training.js');
  const { baseRecipe, obtainModel } = await import('./eval-models.js');
  const arg = (name: string, fallback: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
  };
  const num = (name: string, fallback: number) => Number(arg(name, String(fallback)));
  const backend = await init({ backend: arg('backend', 'auto') as 'auto' | 'webgpu' | 'cpu' });
  console.log(`dubito explain eval — backend: ${backend.name}`);
  const mnist = await loadDemoData(0);
  const fashion = await loadFashionMnist({ split: { test: 2000, tune: 500 }, seed: 0 });
  // The eval's single model: 12 epochs, seed 0 (the same recipe, so the same checkpoint).
  const r = await obtainModel(baseRecipe(12, 0), mnist.splits.train, mnist.splits.val, backend, { retrain: false, log: console.log });
  console.log(`  model: ${r.cached ? 'loaded' : 'trained'} ${r.path}`);
  const outDir = resolve(arg('out', join(process.env.DUBITO_CACHE_DIR ?? join(process.cwd(), '.cache', 'dubito'), 'reports', 'eval-latest', 'explain')));
  const t = performance.now();
  const numbers = await runExplainEval({
    model: r.model, mnistTest: mnist.splits.test, fashionTest: fashion.splits.test, outDir,
    mnistCount: num('mnist', 1000), fashionCount: num('fashion', 500), maskingCount: num('masking', 100),
  });
  console.log(explainTable(numbers));
  console.log(`wrote ${outDir}/index.html (${((performance.now() - t) / 1000).toFixed(0)} s)`);
  r.model.dispose();
  shutdown();
}
