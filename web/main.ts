/**
 * The browser demo page (`npm run demo:web`, served by scripts/demo-web.mjs): a LeNet-5 and a
 * 5-member ensemble shipped as safetensors (web/models/), a few hundred MNIST / Fashion-MNIST
 * images (web/data/examples.safetensors), a drawing pad, and live panels: class probabilities,
 * MC dropout (T = 50 in one batched pass), the ensemble's disagreement, the guard at 5% FPR,
 * Grad-CAM, ContrastCAM (runner-up) and the VOICE uncertainty map. Works offline; WebGPU when
 * the browser has it, else the CPU reference backend with a notice (or `?backend=cpu`).
 *
 * `window.dubitoDemo` exposes the state for the Playwright test (test/demo-web.test.ts).
 */
import {
  type DetectorGuard, type RGBImage, type RiskReportSectionId, type Tensor, DeepEnsemble, Dropout, LeNet5,
  contrastCam, decodeSafetensors, energyDetector, gradCam, guard, heatmapImages, heatmapOverlays, init, inputImage,
  mcDropout, memory, noGrad, riskReport, safetensorsToTensors, softmax, tensor, tidy, voice,
} from '../index.js';
import { TRAIN_IN_TAB, trainDemoLeNet } from './train-in-tab.js';

/** Settings of every live update (the Node side of the test uses the same). */
export const DEMO = { mcSamples: 50, mcSeed: 1234, fpr: 0.05, layer: 'features.4', dropout: 0.3 } as const;

const FASHION_MNIST_CLASS_NAMES = ['T-shirt/top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot'];

interface ImageSetU8 { images: Uint8Array; labels: Int32Array; count: number }

interface LiveNumbers {
  input: number[];
  probs: number[];
  prediction: number;
  runnerUp: number;
  mc: { predictiveEntropy: number; mutualInformation: number; variationRatio: number; prediction: number };
  ensemble: { predictiveEntropy: number; mutualInformation: number; variationRatio: number; prediction: number; members: number[] };
  guard: { score: number; threshold: number; reliable: boolean; detector: string };
  ms: number;
  source: string;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const state: {
  ready: boolean; error: string | null; backend: string; adapter: string; fallback: boolean; deviceLost: string | null;
  last: LiveNumbers | null; updates: number; timings: number[]; trained: boolean;
} = { ready: false, error: null, backend: '', adapter: '', fallback: false, deviceLost: null, last: null, updates: 0, timings: [], trained: false };

let be: Awaited<ReturnType<typeof init>>;
let lenet: LeNet5;
let ensemble: DeepEnsemble;
let theGuard: DetectorGuard;
let sets: Record<'mnistTest' | 'fashion' | 'mnistVal' | 'mnistTrain', ImageSetU8>;
let current: Float32Array = new Float32Array(784);
let source = 'empty';

function showError(msg: string) {
  state.error = msg;
  const el = $('error');
  el.hidden = false;
  el.textContent = msg;
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

function loadLeNet(tensors: Record<string, Tensor>, prefix: string): LeNet5 {
  const m = new LeNet5({ dropout: DEMO.dropout });
  const sd: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(tensors)) if (k.startsWith(prefix)) sd[k.slice(prefix.length)] = v;
  m.loadStateDict(sd);
  return m.eval();
}

const toX = (px: Float32Array, n = 1) => tensor(px, [n, 1, 28, 28], { backend: be });

function imageOf(set: ImageSetU8, i: number): Float32Array {
  const out = new Float32Array(784);
  for (let p = 0; p < 784; p++) out[p] = set.images[i * 784 + p] / 255;
  return out;
}

function setX(set: ImageSetU8, idx?: number, limit = set.count): Tensor {
  const n = idx === undefined ? Math.min(limit, set.count) : 1;
  const px = new Float32Array(n * 784);
  for (let i = 0; i < n * 784; i++) px[i] = set.images[(idx ?? 0) * 784 + i] / 255;
  return toX(px, n);
}

// ---------------------------------------------------------------------------------------------
// drawing: a 280×280 pad → the MNIST convention (the stroke's bounding box scaled into 20×20,
// centred by its centre of mass in 28×28, grey levels in [0, 1])

const pad = () => $<HTMLCanvasElement>('pad');
let drawing = false;
let lastPt: [number, number] | null = null;

function clearPad() {
  const ctx = pad().getContext('2d')!;
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, 280, 280);
}

function padToInput(): Float32Array {
  const c = pad();
  const img = c.getContext('2d')!.getImageData(0, 0, 280, 280).data;
  let x0 = 280, y0 = 280, x1 = -1, y1 = -1;
  for (let y = 0; y < 280; y++) for (let x = 0; x < 280; x++) {
    if (img[(y * 280 + x) * 4] > 20) {
      x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
    }
  }
  const out = new Float32Array(784);
  if (x1 < 0) return out;
  const w = x1 - x0 + 1, h = y1 - y0 + 1;
  const s = 20 / Math.max(w, h);
  const tmp = document.createElement('canvas');
  tmp.width = 28; tmp.height = 28;
  const t = tmp.getContext('2d')!;
  t.fillStyle = '#000';
  t.fillRect(0, 0, 28, 28);
  t.imageSmoothingEnabled = true;
  t.imageSmoothingQuality = 'high';
  t.drawImage(c, x0, y0, w, h, (28 - w * s) / 2, (28 - h * s) / 2, w * s, h * s);
  const d = t.getImageData(0, 0, 28, 28).data;
  let m = 0, mx = 0, my = 0;
  for (let i = 0; i < 784; i++) {
    const v = d[i * 4] / 255;
    m += v; mx += v * (i % 28); my += v * Math.floor(i / 28);
  }
  const dx = Math.round(13.5 - mx / m), dy = Math.round(13.5 - my / m);
  for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) {
    const sx = x - dx, sy = y - dy;
    if (sx >= 0 && sx < 28 && sy >= 0 && sy < 28) out[y * 28 + x] = d[(sy * 28 + sx) * 4] / 255;
  }
  return out;
}

function showInputOnPad(px: Float32Array) {
  const c = pad().getContext('2d')!;
  const tmp = document.createElement('canvas');
  tmp.width = 28; tmp.height = 28;
  putRgb(tmp, inputImage(px, 28, 28));
  c.imageSmoothingEnabled = false;
  c.drawImage(tmp, 0, 0, 280, 280);
}

function pointerPos(e: PointerEvent): [number, number] {
  const r = pad().getBoundingClientRect();
  return [((e.clientX - r.left) / r.width) * 280, ((e.clientY - r.top) / r.height) * 280];
}

function stroke(to: [number, number]) {
  const ctx = pad().getContext('2d')!;
  ctx.strokeStyle = '#fff';
  ctx.fillStyle = '#fff';
  ctx.lineWidth = 22;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  ctx.beginPath();
  const from = lastPt ?? to;
  ctx.moveTo(from[0], from[1]);
  ctx.lineTo(to[0], to[1]);
  ctx.stroke();
  lastPt = to;
}

function wirePad() {
  const c = pad();
  c.addEventListener('pointerdown', (e) => {
    if (source !== 'drawing') clearPad();
    source = 'drawing';
    drawing = true;
    lastPt = null;
    c.setPointerCapture(e.pointerId);
    stroke(pointerPos(e));
    e.preventDefault();
  });
  c.addEventListener('pointermove', (e) => {
    if (!drawing) return;
    stroke(pointerPos(e));
    current = padToInput();
    schedule();
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    lastPt = null;
    current = padToInput();
    schedule();
  };
  c.addEventListener('pointerup', end);
  c.addEventListener('pointercancel', end);
}

// ---------------------------------------------------------------------------------------------
// the live update: every number for the current input (at most one in flight; coalesced)

let running: Promise<void> | null = null;
let dirty = false;

function schedule() {
  dirty = true;
  if (!running) running = loop();
}

async function loop() {
  try {
    while (dirty) {
      dirty = false;
      await update(current.slice(), source);
    }
  } catch (e) {
    const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    showError(state.deviceLost ? `The WebGPU device was lost (${state.deviceLost}); reload the page, or open it with ?backend=cpu. (${msg})` : `update failed: ${msg}`);
  } finally {
    running = null;
  }
}

function putRgb(canvas: HTMLCanvasElement, img: RGBImage) {
  canvas.width = img.width;
  canvas.height = img.height;
  const ctx = canvas.getContext('2d')!;
  const out = ctx.createImageData(img.width, img.height);
  for (let i = 0; i < img.width * img.height; i++) {
    out.data[4 * i] = img.data[3 * i];
    out.data[4 * i + 1] = img.data[3 * i + 1];
    out.data[4 * i + 2] = img.data[3 * i + 2];
    out.data[4 * i + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
}

/** Every live number for one image, in Node or the browser alike (the Playwright test recomputes these in Node). */
export async function analyse(model: LeNet5, ens: DeepEnsemble, g: DetectorGuard, x: Tensor) {
  const [probs, mc, en, gd] = await (async () => {
    const p = tidy(() => noGrad(() => softmax(model.forward(x), -1)));
    const drops = model.modules().filter((d): d is Dropout => d instanceof Dropout);
    drops.forEach((d) => (d.stochasticAtInference = true));
    let s;
    try {
      s = mcDropout(model, x, { samples: DEMO.mcSamples, seed: DEMO.mcSeed });
    } finally {
      drops.forEach((d) => (d.stochasticAtInference = false));
    }
    const e = ens.predict(x);
    const gb = g.apply(x);
    return [p, s, e, gb] as const;
  })();
  const memberPred = tidy(() => en.probs.argmax(-1));
  const [pv, mcv, env, gs, gr, mp] = await Promise.all([
    probs.data(),
    Promise.all([mc.predictiveEntropy.data(), mc.mutualInformation.data(), mc.variationRatio.data(), mc.prediction.data()]),
    Promise.all([en.predictiveEntropy.data(), en.mutualInformation.data(), en.variationRatio.data(), en.prediction.data()]),
    gd.score.data(), gd.reliable.data(), memberPred.data(),
  ]);
  for (const t of [probs, memberPred, gd.score, gd.reliable, gd.prediction, ...Object.values(mc), ...Object.values(en)]) t?.dispose();
  const order = Array.from(pv.keys()).sort((a, b) => pv[b] - pv[a]);
  return {
    probs: Array.from(pv), prediction: order[0], runnerUp: order[1],
    mc: { predictiveEntropy: mcv[0][0], mutualInformation: mcv[1][0], variationRatio: mcv[2][0], prediction: mcv[3][0] },
    ensemble: { predictiveEntropy: env[0][0], mutualInformation: env[1][0], variationRatio: env[2][0], prediction: env[3][0], members: Array.from(mp) },
    guard: { score: gs[0], threshold: g.threshold, reliable: gr[0] !== 0, detector: g.detector.name },
  };
}

async function update(px: Float32Array, src: string) {
  const t0 = performance.now();
  const before = memory().liveTensors;
  const x = toX(px);
  try {
    const a = await analyse(lenet, ensemble, theGuard, x);
    const cam = await gradCam(lenet, x, { layer: DEMO.layer });
    const con = await contrastCam(lenet, x, { layer: DEMO.layer });
    const v = await voice(lenet, x, { layer: DEMO.layer });
    const [gi, ci, vi] = await Promise.all([heatmapOverlays(x, cam, { alpha: 0.55 }), heatmapOverlays(x, con, { alpha: 0.55 }), heatmapImages(v.uncertainty, { colormap: 'viridis' })]);
    cam.dispose();
    con.dispose();
    for (const t of Object.values(v)) t.dispose();
    const ms = performance.now() - t0;
    render({ ...a, input: Array.from(px), ms, source: src }, gi[0], ci[0], vi[0]);
  } finally {
    x.dispose();
  }
  const leaked = memory().liveTensors - before;
  if (leaked !== 0) console.warn(`dubito demo: ${leaked} tensors leaked by one update`);
}

const fmt3 = (v: number) => v.toFixed(3);

function render(n: LiveNumbers, gi: RGBImage, ci: RGBImage, vi: RGBImage) {
  state.last = n;
  state.updates++;
  state.timings.push(n.ms);
  $('probs').innerHTML = n.probs.map((p, k) =>
    `<div class="bar${k === n.prediction ? ' top' : ''}"><span>digit ${k}</span><div class="fill" style="width:${(p * 100).toFixed(1)}%"></div><span data-k="${k}">${(p * 100).toFixed(1)}%</span></div>`).join('');
  const reliable = n.guard.reliable;
  $('guard').innerHTML = `<div class="verdict ${reliable ? 'ok' : 'bad'}" id="verdict">${reliable ? `reliable: ${n.prediction}` : 'NOT RELIABLE'}</div>
    <table class="kv"><tr><td>${n.guard.detector} score</td><td id="guardScore">${fmt3(n.guard.score)}</td></tr>
    <tr><td>threshold (5% FPR on 500 MNIST-val)</td><td id="guardThreshold">${fmt3(n.guard.threshold)}</td></tr></table>`;
  $('mc').innerHTML = `<tr><td>predictive entropy</td><td id="mcEntropy">${fmt3(n.mc.predictiveEntropy)}</td></tr>
    <tr><td>mutual information</td><td id="mcMi">${fmt3(n.mc.mutualInformation)}</td></tr>
    <tr><td>variation ratio</td><td id="mcVr">${fmt3(n.mc.variationRatio)}</td></tr>
    <tr><td>mean prediction</td><td>${n.mc.prediction}</td></tr>`;
  $('ens').innerHTML = `<tr><td>mutual information (disagreement)</td><td id="ensMi">${fmt3(n.ensemble.mutualInformation)}</td></tr>
    <tr><td>variation ratio</td><td id="ensVr">${fmt3(n.ensemble.variationRatio)}</td></tr>
    <tr><td>predictive entropy</td><td id="ensEntropy">${fmt3(n.ensemble.predictiveEntropy)}</td></tr>
    <tr><td>members say</td><td id="ensMembers">${n.ensemble.members.join(' ')}</td></tr>`;
  putRgb($('inputView'), inputImage(Float32Array.from(n.input), 28, 28));
  putRgb($('gradcam'), gi);
  putRgb($('contrastcam'), ci);
  putRgb($('voice'), vi);
  $('gradcamCap').textContent = `Grad-CAM: why ${n.prediction}?`;
  $('contrastCap').textContent = `ContrastCAM: why ${n.prediction}, not ${n.runnerUp}?`;
  $('source').textContent = n.source;
  $('timing').textContent = `last update: ${n.ms.toFixed(0)} ms on ${state.backend} (probabilities, MC dropout T=${DEMO.mcSamples}, ensemble, guard, Grad-CAM, ContrastCAM, VOICE)`;
}

/** Loads example `i` of a shipped set into the pad and updates (returns when the panels show it). */
async function loadExample(kind: 'mnist' | 'fashion', i?: number) {
  const set = kind === 'mnist' ? sets.mnistTest : sets.fashion;
  const idx = i ?? Math.floor(Math.random() * set.count);
  current = imageOf(set, idx);
  source = kind === 'mnist' ? `MNIST-test #${idx} (label ${set.labels[idx]})` : `Fashion-MNIST #${idx} (a ${FASHION_MNIST_CLASS_NAMES[set.labels[idx]]}: not a digit)`;
  showInputOnPad(current);
  schedule();
  await settle();
}

async function settle() {
  while (running) await running;
}

// ---------------------------------------------------------------------------------------------
// training a LeNet in the tab (web/train-in-tab.ts: Adam 2e-3, batch 50, on the 1,000 shipped
// MNIST-train images, the library's DataLoader and fit)

async function trainInTab(epochs: number = TRAIN_IN_TAB.epochs) {
  const btn = $<HTMLButtonElement>('train');
  btn.disabled = true;
  const bar = $<HTMLProgressElement>('trainProgress');
  const text = $('trainText');
  const lossCanvas = $<HTMLCanvasElement>('loss');
  bar.hidden = false;
  lossCanvas.hidden = false;
  const t0 = performance.now();
  const shown: number[] = [];
  try {
    await settle();
    const { model, losses } = await trainDemoLeNet(sets.mnistTrain, {
      epochs,
      onStep: (step, steps, loss) => {
        shown.push(loss);
        const done = (step + 1) / steps;
        const elapsed = (performance.now() - t0) / 1000;
        bar.value = done;
        text.textContent = `step ${step + 1}/${steps}, loss ${loss.toFixed(3)}, ETA ${((elapsed / done) * (1 - done)).toFixed(0)} s`;
        drawLoss(lossCanvas, shown);
      },
    });
    // the trained model takes over the live panels; the guard is recalibrated for it
    lenet.dispose();
    lenet = model;
    await calibrateGuard();
    state.trained = true;
    const seconds = (performance.now() - t0) / 1000;
    text.textContent += ` — done in ${seconds.toFixed(1)} s; the panels now use this model`;
    schedule();
    await settle();
    return { losses, seconds, guardThreshold: theGuard.threshold };
  } finally {
    btn.disabled = false;
  }
}

function drawLoss(c: HTMLCanvasElement, losses: number[]) {
  const ctx = c.getContext('2d')!;
  ctx.clearRect(0, 0, c.width, c.height);
  const max = Math.max(...losses, 0.1);
  ctx.strokeStyle = '#1f77b4';
  ctx.beginPath();
  losses.forEach((l, i) => {
    const x = (i / Math.max(1, losses.length - 1)) * (c.width - 4) + 2;
    const y = c.height - 4 - (l / max) * (c.height - 8);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = '#555';
  ctx.fillText(`loss (max ${max.toFixed(2)})`, 4, 12);
}

async function calibrateGuard() {
  const val = setX(sets.mnistVal);
  try {
    theGuard = await guard(energyDetector(lenet), { fpr: DEMO.fpr, heldOut: val, classifier: lenet });
  } finally {
    val.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// the risk report, downloaded as HTML

/** riskReport on the shipped splits (MNIST-val held out, MNIST-test, Fashion-MNIST as OOD), in the tab. */
async function buildReport() {
  const text = $('reportText');
  text.textContent = 'computing…';
  // On the CPU reference backend the full report (500 held-out + 200 test + 200 Fashion images,
  // MC T = 20, the Grad-CAM / VOICE gallery) takes minutes in a tab: there it uses 200 held-out
  // images, T = 10 and no gallery.
  const cpu = be.name !== 'webgpu';
  const [nHeld, nTest, nOod] = [cpu ? Math.min(200, sets.mnistVal.count) : sets.mnistVal.count, sets.mnistTest.count, sets.fashion.count];
  const held = setX(sets.mnistVal, undefined, nHeld);
  const test = setX(sets.mnistTest, undefined, nTest);
  const ood = setX(sets.fashion, undefined, nOod);
  try {
    const r = await riskReport(lenet, {
      heldOut: { x: held, y: sets.mnistVal.labels.subarray(0, nHeld) }, test: { x: test, y: sets.mnistTest.labels.subarray(0, nTest) }, ood: { 'Fashion-MNIST': ood },
    }, {
      title: `Risk report: LeNet-5 on MNIST (shipped examples${cpu ? ', reduced for the CPU backend' : ''})`, mcSamples: cpu ? 10 : 20, batchSize: 50,
      ...(cpu ? { sections: ['calibration', 'ood', 'failure'] as RiskReportSectionId[] } : { explain: { layer: DEMO.layer, perKind: 3 } }),
      progress: (stage) => {
        text.textContent = `computing: ${stage}…`;
        console.info(`riskReport: ${stage}`);
      },
    });
    text.textContent = `${r.summary} (${r.seconds.toFixed(1)} s)`;
    return r;
  } finally {
    held.dispose();
    test.dispose();
    ood.dispose();
  }
}

async function downloadReport() {
  const r = await buildReport();
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([r.html], { type: 'text/html' }));
  a.download = 'dubito-risk-report.html';
  a.click();
  return { summary: r.summary, seconds: r.seconds };
}

// ---------------------------------------------------------------------------------------------
// start-up

async function main() {
  const want = new URLSearchParams(location.search).get('backend');
  const hasGpu = 'gpu' in navigator;
  be = await init({ backend: want === 'cpu' ? 'cpu' : 'auto' });
  state.backend = be.name;
  const info = be.adapterInfo;
  state.adapter = be.name === 'webgpu' ? [info.vendor, info.architecture, info.description].filter(Boolean).join(' / ') || 'WebGPU adapter' : 'CPU reference backend (TypeScript)';
  $('adapter').textContent = `running on ${be.name}: ${state.adapter}`;
  if (be.name !== 'webgpu') {
    state.fallback = true;
    const n = $('notice');
    n.hidden = false;
    n.textContent = want === 'cpu'
      ? 'CPU reference backend (requested with ?backend=cpu): every number is the same, updates are slower.'
      : `WebGPU is not available in this browser${hasGpu ? ' (no adapter)' : ''}: running on the CPU reference backend — same numbers, slower updates.`;
  }
  const dev = (be as { device?: GPUDevice }).device;
  dev?.lost.then((l) => {
    state.deviceLost = l.message || String(l.reason);
    showError(`The WebGPU device was lost (${state.deviceLost}). Reload the page, or open it with ?backend=cpu.`);
  });

  $('status').textContent = 'loading models…';
  const [m1, m5, ex] = await Promise.all([fetchBytes('models/lenet5.safetensors'), fetchBytes('models/ensemble5.safetensors'), fetchBytes('data/examples.safetensors')]);
  const t1 = safetensorsToTensors(decodeSafetensors(m1), be);
  lenet = loadLeNet(t1, '');
  const t5 = safetensorsToTensors(decodeSafetensors(m5), be);
  ensemble = new DeepEnsemble(Array.from({ length: 5 }, (_, i) => loadLeNet(t5, `m${i}.`))).eval();
  for (const t of [...Object.values(t1), ...Object.values(t5)]) t.dispose();
  // The ensemble stacks its members' weights on its first forward (kept until refresh()): do it now.
  tidy(() => noGrad(() => ensemble.forward(toX(new Float32Array(784)))));
  const dec = decodeSafetensors(ex).tensors;
  const get = (name: string): ImageSetU8 => ({ images: dec[`${name}.images`].data as Uint8Array, labels: dec[`${name}.labels`].data as Int32Array, count: dec[`${name}.labels`].shape[0] });
  sets = { mnistTest: get('mnistTest'), fashion: get('fashion'), mnistVal: get('mnistVal'), mnistTrain: get('mnistTrain') };
  await calibrateGuard();

  clearPad();
  wirePad();
  $('clear').onclick = () => {
    clearPad();
    source = 'drawing';
    current = new Float32Array(784);
    schedule();
  };
  $('mnist').onclick = () => void loadExample('mnist');
  $('fashion').onclick = () => void loadExample('fashion');
  $('train').onclick = () => void trainInTab().catch((e) => showError(`training failed: ${e}`));
  $('report').onclick = () => void downloadReport().catch((e) => showError(`report failed: ${e}`));
  $('status').textContent = '';
  await loadExample('mnist', 0);
  state.ready = true;
}

const api = {
  state, loadExample, settle, trainInTab, downloadReport,
  buildReport: async () => {
    const r = await buildReport();
    return { summary: r.summary, seconds: r.seconds, htmlBytes: r.html.length };
  },
  demo: DEMO, get guardThreshold() { return theGuard?.threshold; } };
(window as unknown as { dubitoDemo: typeof api }).dubitoDemo = api;
main().catch((e) => showError(`start-up failed: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`));
