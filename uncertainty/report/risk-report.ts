/**
 * `riskReport(model, data, options)`: the whole uncertainty picture of a classifier in one call,
 * built from the library's own functions (every number in it equals what the individual function
 * returns on the same inputs; test/risk-report.test.ts checks this):
 *
 * 1. calibration — accuracy, ECE / MCE (equal-width bins), NLL and Brier of softmax(z) on the
 *    test split, before and after temperature scaling (`fitTemperatureHost` on the held-out
 *    split, Guo et al. 2017), with reliability diagrams;
 * 2. OOD detection — every applicable {@link Detector} scored once on each split (`scoreAll`) and
 *    `oodMetrics` (AUROC, AUPR-In, AUPR-Out, FPR95; OOD positive, scores higher = more OOD: the
 *    numbers of `evaluateDetectors`) for test vs each OOD set, ROC curves and
 *    score histograms, and the rejection guard (`calibrateThreshold` on the held-out scores at
 *    `fpr`): the fraction of each OOD set it rejects;
 * 3. failure prediction — for the confidence max softmax(z/T) and for every detector
 *    (confidence = −score): AURC (Geifman et al. 2019), AUPR-Error (errors positive, Corbière et
 *    al. 2019), AUPR-Success and the risk–coverage curves, on the test split;
 * 4. per-group metrics (accuracy, ECE, NLL, Brier per group) when `data.groups` is given;
 * 5. an explanation gallery (Grad-CAM, and the VOICE uncertainty map) for the most uncertain,
 *    the most confidently wrong and the most OOD-looking inputs, when the model is a Module and
 *    `options.explain.layer` names a [B, C, h, w] layer;
 * 6. extra sections from `options.extraSections` hooks (e.g. conformal prediction), and a
 *    plain-language summary.
 *
 * The output carries every number (`report.calibration`, `report.ood`, ...), the flat
 * `results` (and `resultsJson`), a Markdown document and a standalone HTML document with the SVG
 * plots inline. Pure computation and string building: it runs in Node and in the browser.
 * Definitions: docs/methods.md, "Risk report".
 */
import {
  ArgumentError, fmtShape, log, mean, noGrad, ShapeError, slice, softmax, Tensor, tensor, tidy,
} from '../../engine/index.js';
import { Dropout, Module } from '../../nn/index.js';
import { gradCam, voice, heatmapOverlays, heatmapImages, inputImage, scaleNearest, encodePng, type LayerRef, type RGBImage } from '../../explain/index.js';
import { fitTemperatureHost, type TemperatureFit } from '../calibration.js';
import { type Detector, scoreAll } from '../detector.js';
import { energyDetector, entropyDetector, ensembleDetector, maxLogitDetector, mcDropoutDetector, mspDetector } from '../detectors.js';
import { DeepEnsemble } from '../ensemble.js';
import type { DetectorEvaluation } from '../evaluate.js';
import { calibrateThreshold, rejectionRate } from '../guard.js';
import { softmaxRows } from '../host.js';
import {
  auprError, auprSuccess, aurc, brier, confidenceAndCorrect, nll, oodMetrics, type ReliabilityDiagram, reliabilityDiagram, riskCoverageCurve, rocCurve,
} from '../metrics.js';
import { escapeMarkdownCell, fmt, markdownTable, pct } from './markdown.js';
import { escapeXml, histogramOverlay, linePlot, PALETTE, reliabilityBars } from './svg.js';

/** A classifier: a Module (logits [B, K]), a DeepEnsemble (mean of the members' softmax) or a function x → logits. */
export type ReportModel = Module | DeepEnsemble | ((x: Tensor) => Tensor);

/** Inputs [N, ...] with integer class labels [N]. */
export interface LabeledSet {
  x: Tensor;
  y: Tensor | ArrayLike<number>;
}

export interface RiskReportData {
  /** Training data: passed to `fit` of detectors that need it (e.g. Mahalanobis). Optional. */
  train?: LabeledSet;
  /** Held-out in-distribution data (not the training set): temperature scaling and the guard's threshold. */
  heldOut: LabeledSet;
  /** The test split every metric is reported on. */
  test: LabeledSet;
  /** Out-of-distribution sets: one tensor (named "OOD") or several by name. */
  ood?: Tensor | Record<string, Tensor>;
  /** A group label per test row (strings or numbers) for the per-group section. */
  groups?: ArrayLike<string | number>;
}

/** One section of the report: its numbers and its Markdown / HTML text. */
export interface ReportSection {
  /** Stable id, used as the prefix of its keys in `results` (e.g. 'conformal'). */
  id: string;
  title: string;
  markdown: string;
  /** An HTML fragment (no <html>/<body>). */
  html: string;
  /** Flat numbers merged into `results` as `<id>.<key>`. */
  numbers: Record<string, number | string | boolean | null>;
}

/** What an {@link RiskReportOptions.extraSections} hook receives. */
export interface RiskReportContext {
  model: ReportModel;
  /** The classifier as x → logits (log mean probabilities for an ensemble). */
  logitsFn: (x: Tensor) => Tensor;
  data: RiskReportData;
  numClasses: number;
  /** Host logits [N, K] of the held-out and test splits, row-major, and their labels. */
  heldOutLogits: Float64Array;
  heldOutLabels: Int32Array;
  testLogits: Float64Array;
  testLabels: Int32Array;
  temperature: number;
  options: RiskReportOptions;
}

/** A hook adding one section (return null to add none). */
export type ReportSectionHook = (ctx: RiskReportContext) => ReportSection | null | Promise<ReportSection | null>;

export type RiskReportSectionId = 'calibration' | 'ood' | 'failure' | 'groups' | 'explanations';

export interface RiskReportOptions {
  /** Report title (default "Risk report"). */
  title?: string;
  /**
   * The detectors (default: all that apply to the model — MSP, max-logit, entropy and energy on
   * the logits; MC dropout predictive entropy / mutual information / variation ratio for a Module
   * with Dropout; ensemble predictive entropy / mutual information / mean energy for a DeepEnsemble).
   */
  detectors?: Detector[];
  /** Added to the detectors (default or given), e.g. a MahalanobisDetector. */
  extraDetectors?: Detector[];
  /** Fit every detector that has `fit` on `data.train` when it is given (default true; false: they are fitted already). */
  fitDetectors?: boolean;
  /** Which sections (default all that apply). */
  sections?: RiskReportSectionId[];
  /** MC-dropout passes T (default 30) and the seed of their masks (default 0). */
  mcSamples?: number;
  seed?: number;
  /** Guard: held-out false-positive rate (default 0.05) and the detector it uses (default the energy score, else the first). */
  fpr?: number;
  guardDetector?: string;
  /** Equal-width bins of ECE / MCE and the reliability diagrams (default 15). */
  bins?: number;
  /** Rows per forward (default 256). */
  batchSize?: number;
  /** The explanation gallery: the layer of Grad-CAM / VOICE, and inputs per kind (default 3). Off without a layer. */
  explain?: { layer: LayerRef; perKind?: number; scale?: number };
  /** Extra sections (e.g. conformal coverage), appended after the built-in ones. */
  extraSections?: ReportSectionHook[];
  /** Class names for the gallery captions. */
  classNames?: readonly string[];
  /** Called as each stage starts (a progress line or bar). */
  progress?: (stage: string, index: number, total: number) => void;
}

/** Calibration numbers of one predictive distribution on the test split. */
export interface CalibrationNumbers {
  accuracy: number;
  ece: number;
  mce: number;
  nll: number;
  brier: number;
  diagram: ReliabilityDiagram;
}

export interface OodRow {
  name: string;
  auroc: number;
  auprIn: number;
  auprOut: number;
  fpr95: number;
}

export interface OodSetResult {
  count: number;
  rows: OodRow[];
  /** The guard's share of this set rejected (score > threshold). */
  guardRejected: number;
}

export interface FailureRow {
  name: string;
  aurc: number;
  auprError: number;
  auprSuccess: number;
}

export interface GroupRow {
  group: string;
  count: number;
  accuracy: number;
  ece: number;
  nll: number;
  brier: number;
}

export interface GalleryItem {
  kind: 'most uncertain' | 'confidently wrong' | 'most OOD-looking';
  set: string;
  index: number;
  label: number | null;
  prediction: number;
  confidence: number;
  /** PNG data URLs: the input, its Grad-CAM overlay, its VOICE uncertainty map. */
  images: { input: string; gradCam: string; voice: string };
}

export interface RiskReport {
  title: string;
  numClasses: number;
  counts: { heldOut: number; test: number; ood: Record<string, number> };
  detectors: string[];
  calibration: { temperature: TemperatureFit; before: CalibrationNumbers; after: CalibrationNumbers } | null;
  ood: { sets: Record<string, OodSetResult>; guard: { detector: string; fpr: number; threshold: number; realisedFpr: number; testRejected: number } } | null;
  failure: { rows: FailureRow[] } | null;
  groups: { rows: GroupRow[] } | null;
  explanations: { layer: string; items: GalleryItem[] } | null;
  /**
   * Every detector's scores (float64, higher = more OOD, in row order) on the held-out split, the
   * test split and each OOD set, by detector name: for your own tables and thresholds (e.g.
   * `calibrateThreshold(scores.heldOut[name], fpr)` is the guard of any detector). The OOD sets
   * are scored only when the 'ood' section runs.
   */
  scores: { heldOut: Record<string, Float64Array>; test: Record<string, Float64Array>; ood: Record<string, Record<string, Float64Array>> };
  /** The extra sections' results (built-in sections are in the fields above). */
  extra: ReportSection[];
  /** One paragraph in plain language. */
  summary: string;
  sections: ReportSection[];
  markdown: string;
  html: string;
  /** Every number, flat (`calibration.after.ece`, `ood.<set>.<detector>.auroc`, ...). */
  results: Record<string, number | string | boolean | null>;
  resultsJson: string;
  seconds: number;
  /** The files of a report folder: index.html, index.md, results.json. */
  files(): Record<string, string>;
}

// ---------------------------------------------------------------------------------------------
// helpers

/** The classifier as x → logits (an ensemble: log of the mean member probability, which softmax maps back to it). */
export function reportLogitsFn(model: ReportModel): (x: Tensor) => Tensor {
  if (model instanceof DeepEnsemble) {
    return (x) => tidy(() => log(mean(softmax(model.forward(x), -1), 0).maximum(1e-30)));
  }
  if (model instanceof Module) return (x) => model.forward(x) as Tensor;
  if (typeof model === 'function') return model;
  throw new ArgumentError('riskReport: the model must be a Module, a DeepEnsemble or a function x => logits [B, K]');
}

async function hostLabels(what: string, y: Tensor | ArrayLike<number>, n: number): Promise<Int32Array> {
  const v = y instanceof Tensor ? await y.data() : y;
  if (v.length !== n) throw new ShapeError(`riskReport: ${what}.y has ${v.length} labels but ${what}.x has ${n} rows`);
  return Int32Array.from(v as ArrayLike<number>);
}

async function allLogits(fn: (x: Tensor) => Tensor, x: Tensor, batchSize: number, what: string): Promise<{ z: Float64Array; k: number }> {
  if (!(x instanceof Tensor) || x.rank < 1) throw new ArgumentError(`riskReport: ${what}.x must be a tensor [N, ...]`);
  const n = x.shape[0];
  let k = -1;
  const parts: Float32Array[] = [];
  for (let s = 0; s < n; s += batchSize) {
    const b = Math.min(batchSize, n - s);
    const z = noGrad(() => tidy(() => fn(b === n ? x : slice(x, [s, ...x.shape.slice(1).map(() => 0)], [b, ...x.shape.slice(1).map(() => -1)]))));
    try {
      if (z.rank !== 2 || z.shape[0] !== b) throw new ShapeError(`riskReport: the model must map ${what} [${b}, ...] to logits [${b}, K], got ${fmtShape(z.shape)}`);
      k = z.shape[1];
      parts.push((await z.data()) as Float32Array);
    } finally {
      z.dispose();
    }
  }
  const out = new Float64Array(n * Math.max(k, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return { z: out, k };
}

function calibrationOf(probs: Float64Array, labels: Int32Array, k: number, bins: number): CalibrationNumbers {
  const { confidence, correct } = confidenceAndCorrect(probs, labels, { numClasses: k });
  const diagram = reliabilityDiagram(confidence, correct, { bins });
  let acc = 0;
  for (const c of correct) acc += c;
  return { accuracy: acc / labels.length, ece: diagram.ece, mce: diagram.mce, nll: nll(probs, labels, { numClasses: k }), brier: brier(probs, labels, { numClasses: k }), diagram };
}

/** The detectors that apply to `model` by default (see {@link RiskReportOptions.detectors}). */
export function defaultReportDetectors(model: ReportModel, opts: { mcSamples?: number; seed?: number } = {}): Detector[] {
  const fn = reportLogitsFn(model);
  const out: Detector[] = [mspDetector(fn), maxLogitDetector(fn), entropyDetector(fn), energyDetector(fn)];
  if (model instanceof DeepEnsemble) {
    out.push(
      ensembleDetector(model, { measure: 'predictiveEntropy' }),
      ensembleDetector(model, { measure: 'mutualInformation' }),
      ensembleDetector(model, { measure: 'meanEnergy' }),
    );
  } else if (model instanceof Module && model.modules().some((d) => d instanceof Dropout && d.p > 0)) {
    const samples = opts.mcSamples ?? 30;
    const seed = opts.seed ?? 0;
    for (const measure of ['predictiveEntropy', 'mutualInformation', 'variationRatio'] as const) out.push(mcDropoutDetector(model, { samples, seed, measure }));
  }
  return out;
}

const svgBlock = (svg: string) => `<div class="plot">${svg}</div>`;
const htmlTable = (headers: string[], rows: (string | number)[][]) =>
  `<table><thead><tr>${headers.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${escapeXml(String(c))}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
const pngUrl = (img: RGBImage) => {
  const bytes = encodePng(img);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return `data:image/png;base64,${btoa(s)}`;
};
const topIndices = (values: ArrayLike<number>, count: number, keep: (i: number) => boolean = () => true): number[] => {
  const idx = Array.from({ length: values.length }, (_, i) => i).filter(keep);
  idx.sort((a, b) => (values[b] - values[a]) || (a - b));
  return idx.slice(0, count);
};

// ---------------------------------------------------------------------------------------------
// riskReport

/**
 * Runs every applicable method on `data` and returns {@link RiskReport}: all the numbers, the
 * flat `results`, Markdown and HTML. See the module comment for the sections and docs/methods.md
 * ("Risk report") for the definitions. The model should be in eval mode (MC dropout switches its
 * Dropout layers on only inside its own passes). Tensors in `data` stay the caller's.
 *
 * ```ts
 * const r = await riskReport(net, { heldOut: { x: xVal, y: yVal }, test: { x: xTest, y: yTest }, ood: { noise } });
 * console.log(r.summary);
 * writeFileSync('report.html', r.html);
 * ```
 */
export async function riskReport(model: ReportModel, data: RiskReportData, options: RiskReportOptions = {}): Promise<RiskReport> {
  const t0 = performance.now();
  if (!data || typeof data !== 'object' || !data.heldOut || !data.test) throw new ArgumentError('riskReport: data { heldOut: { x, y }, test: { x, y } } is required');
  const logitsFn = reportLogitsFn(model);
  const bs = options.batchSize ?? 256;
  const bins = options.bins ?? 15;
  const fpr = options.fpr ?? 0.05;
  if (!(fpr >= 0 && fpr < 1)) throw new ArgumentError(`riskReport: options.fpr must be in [0, 1), got ${fpr}`);
  const want = new Set<RiskReportSectionId>(options.sections ?? ['calibration', 'ood', 'failure', 'groups', 'explanations']);
  const oodSets: Record<string, Tensor> = data.ood instanceof Tensor ? { OOD: data.ood } : { ...(data.ood ?? {}) };
  const stages = ['logits', 'calibration', 'detectors', 'failure', 'groups', 'explanations', 'extra sections'];
  const step = (name: string) => options.progress?.(name, stages.indexOf(name), stages.length);

  step('logits');
  const nHeld = data.heldOut.x.shape[0];
  const nTest = data.test.x.shape[0];
  const held = await allLogits(logitsFn, data.heldOut.x, bs, 'heldOut');
  const test = await allLogits(logitsFn, data.test.x, bs, 'test');
  if (held.k !== test.k) throw new ShapeError(`riskReport: the model gives ${held.k} classes on heldOut but ${test.k} on test`);
  const k = test.k;
  const yHeld = await hostLabels('heldOut', data.heldOut.y, nHeld);
  const yTest = await hostLabels('test', data.test.y, nTest);
  if (data.groups && data.groups.length !== nTest) throw new ShapeError(`riskReport: data.groups has ${data.groups.length} entries but test has ${nTest} rows`);

  // calibration
  step('calibration');
  const temperature = fitTemperatureHost(held.z, k, yHeld);
  const T = temperature.temperature;
  const probsBefore = softmaxRows(test.z, k);
  const probsAfter = softmaxRows(test.z, k, 1 / T);
  const before = calibrationOf(probsBefore, yTest, k, bins);
  const after = calibrationOf(probsAfter, yTest, k, bins);
  const calibration = want.has('calibration') ? { temperature, before, after } : null;

  // detectors: scores on held-out, test and every OOD set
  step('detectors');
  const detectors = [...(options.detectors ?? defaultReportDetectors(model, options)), ...(options.extraDetectors ?? [])];
  // Detectors that learn from in-distribution data (those with fit) are fitted on data.train when it is given.
  if (data.train) {
    for (const d of detectors) {
      if (d.fit && options.fitDetectors !== false) await d.fit({ x: data.train.x, labels: data.train.y, numClasses: k, batchSize: bs });
    }
  }
  const heldScores = new Map<string, Float64Array>();
  const testScores = new Map<string, Float64Array>();
  for (const d of detectors) {
    heldScores.set(d.name, await scoreAll(d, data.heldOut.x, bs));
    testScores.set(d.name, await scoreAll(d, data.test.x, bs));
  }
  const guardName = options.guardDetector ?? (detectors.find((d) => d.name.startsWith('energy')) ?? detectors[0])?.name;
  if (guardName !== undefined && !heldScores.has(guardName)) throw new ArgumentError(`riskReport: options.guardDetector '${guardName}' is not one of the detectors (${detectors.map((d) => d.name).join(', ')})`);
  const threshold = guardName !== undefined ? calibrateThreshold(heldScores.get(guardName)!, fpr) : NaN;
  // Each detector scores every set once: the OOD tables reuse the test scores (oodMetrics on
  // the same score lists gives exactly what evaluateDetectors would).
  const oodScores: Record<string, Map<string, Float64Array>> = {};
  const oodTables: Record<string, { rows: DetectorEvaluation[]; get(name: string): DetectorEvaluation | undefined }> = {};
  let ood: RiskReport['ood'] = null;
  if (want.has('ood') && Object.keys(oodSets).length > 0 && detectors.length > 0) {
    const sets: Record<string, OodSetResult> = {};
    for (const [name, x] of Object.entries(oodSets)) {
      const scored = new Map<string, Float64Array>();
      for (const d of detectors) scored.set(d.name, await scoreAll(d, x, bs));
      oodScores[name] = scored;
      const rows: DetectorEvaluation[] = detectors.map((d) => {
        const inDist = testScores.get(d.name)!;
        const outDist = scored.get(d.name)!;
        return { name: d.name, detector: d, ...oodMetrics(inDist, outDist), scores: { inDist, outDist } };
      });
      oodTables[name] = { rows, get: (n) => rows.find((r) => r.name === n) };
      sets[name] = {
        count: x.shape[0],
        rows: rows.map((r) => ({ name: r.name, auroc: r.auroc, auprIn: r.auprIn, auprOut: r.auprOut, fpr95: r.fpr95 })),
        guardRejected: rejectionRate(scored.get(guardName!)!, threshold),
      };
    }
    ood = {
      sets,
      guard: { detector: guardName!, fpr, threshold, realisedFpr: rejectionRate(heldScores.get(guardName!)!, threshold), testRejected: rejectionRate(testScores.get(guardName!)!, threshold) },
    };
  }

  // failure prediction on the test split
  step('failure');
  const { confidence: confAfter, correct } = confidenceAndCorrect(probsAfter, yTest, { numClasses: k });
  const failureCurves: { name: string; confidence: Float64Array }[] = [{ name: 'max softmax (T-scaled)', confidence: confAfter }];
  for (const d of detectors) failureCurves.push({ name: d.name, confidence: testScores.get(d.name)!.map((s) => -s) });
  let failure: RiskReport['failure'] = null;
  const anyError = correct.some((c) => c === 0);
  const anyRight = correct.some((c) => c === 1);
  if (want.has('failure')) {
    failure = {
      rows: failureCurves.map((c) => ({
        name: c.name,
        aurc: aurc(c.confidence, correct),
        auprError: anyError && anyRight ? auprError(c.confidence, correct) : NaN,
        auprSuccess: anyError && anyRight ? auprSuccess(c.confidence, correct) : NaN,
      })),
    };
  }

  // per-group metrics
  step('groups');
  let groups: RiskReport['groups'] = null;
  if (want.has('groups') && data.groups) {
    const keys = [...new Set(Array.from(data.groups, String))].sort();
    groups = {
      rows: keys.map((g) => {
        const rows = Array.from({ length: nTest }, (_, i) => i).filter((i) => String(data.groups![i]) === g);
        const p = new Float64Array(rows.length * k);
        rows.forEach((r, j) => p.set(probsAfter.subarray(r * k, (r + 1) * k), j * k));
        const c = calibrationOf(p, Int32Array.from(rows, (r) => yTest[r]), k, bins);
        return { group: g, count: rows.length, accuracy: c.accuracy, ece: c.ece, nll: c.nll, brier: c.brier };
      }),
    };
  }

  // explanation gallery
  step('explanations');
  let explanations: RiskReport['explanations'] = null;
  if (want.has('explanations') && options.explain && model instanceof Module && data.test.x.rank === 4) {
    const per = options.explain.perKind ?? 3;
    const items: GalleryItem[] = [];
    const entropyScores = testScores.get('entropy') ?? Float64Array.from({ length: nTest }, (_, i) => -confAfter[i]);
    const picks: { kind: GalleryItem['kind']; set: string; x: Tensor; idx: number[]; labels: Int32Array | null; probs: Float64Array }[] = [];
    picks.push({ kind: 'most uncertain', set: 'test', x: data.test.x, idx: topIndices(entropyScores, per), labels: yTest, probs: probsAfter });
    picks.push({ kind: 'confidently wrong', set: 'test', x: data.test.x, idx: topIndices(confAfter, per, (i) => correct[i] === 0), labels: yTest, probs: probsAfter });
    const firstOod = Object.keys(oodSets)[0];
    if (firstOod !== undefined && guardName !== undefined) {
      const tab = oodTables[firstOod];
      const s = tab?.get(guardName)?.scores.outDist ?? (await scoreAll(detectors.find((d) => d.name === guardName)!, oodSets[firstOod], bs));
      const ozs = await allLogits(logitsFn, oodSets[firstOod], bs, `ood.${firstOod}`);
      picks.push({ kind: 'most OOD-looking', set: firstOod, x: oodSets[firstOod], idx: topIndices(s, per), labels: null, probs: softmaxRows(ozs.z, k, 1 / T) });
    }
    const scale = options.explain.scale ?? 3;
    for (const p of picks) {
      if (p.idx.length === 0) continue;
      const xb = tidy(() => p.x.indexSelect(0, tensor(p.idx, [p.idx.length], { dtype: 'int32', backend: p.x.backend })));
      try {
        const cam = await gradCam(model, xb, { layer: options.explain.layer });
        const v = await voice(model, xb, { layer: options.explain.layer });
        try {
          const overlays = await heatmapOverlays(xb, cam, { scale });
          const unc = await heatmapImages(v.uncertainty, { scale, colormap: 'viridis' });
          const xs = await xb.data();
          const [, C, H, W] = xb.shape;
          p.idx.forEach((row, j) => {
            const pr = p.probs.subarray(row * k, (row + 1) * k);
            let best = 0;
            for (let c = 1; c < k; c++) if (pr[c] > pr[best]) best = c;
            const px = xs.subarray(j * C * H * W, (j + 1) * C * H * W);
            items.push({
              kind: p.kind, set: p.set, index: row, label: p.labels ? p.labels[row] : null, prediction: best, confidence: pr[best],
              images: { input: pngUrl(scaleNearest(inputImage(px, W, H, { channels: C as 1 | 3 }), scale)), gradCam: pngUrl(overlays[j]), voice: pngUrl(unc[j]) },
            });
          });
        } finally {
          cam.dispose();
          for (const t of Object.values(v)) t.dispose();
        }
      } finally {
        xb.dispose();
      }
    }
    explanations = { layer: typeof options.explain.layer === 'string' ? options.explain.layer : (options.explain.layer.constructor?.name ?? 'module'), items };
  }

  // extra sections
  step('extra sections');
  const ctx: RiskReportContext = { model, logitsFn, data, numClasses: k, heldOutLogits: held.z, heldOutLabels: yHeld, testLogits: test.z, testLabels: yTest, temperature: T, options };
  const extra: ReportSection[] = [];
  for (const hook of options.extraSections ?? []) {
    const s = await hook(ctx);
    if (s) extra.push(s);
  }

  // summary
  const firstSet = ood ? Object.keys(ood.sets)[0] : undefined;
  const overconf = before.diagram;
  let confSum = 0;
  for (let b = 0; b < overconf.count.length; b++) if (overconf.count[b] > 0) confSum += overconf.count[b] * overconf.confidence[b];
  const meanConf = confSum / nTest;
  const gap = meanConf - before.accuracy;
  const bestOod = firstSet ? [...ood!.sets[firstSet].rows].sort((a, b) => b.auroc - a.auroc)[0] : undefined;
  const bestFail = failure ? [...failure.rows].sort((a, b) => a.aurc - b.aurc)[0] : undefined;
  const parts = [
    `On ${nTest} test inputs the model is ${pct(before.accuracy)} accurate and ${gap >= 0 ? 'over' : 'under'}-confident by ${pct(Math.abs(gap))} on average (mean confidence ${pct(meanConf)}); its ECE is ${pct(before.ece)}, ${pct(after.ece)} after temperature scaling (T = ${fmt(T, 3)}).`,
  ];
  if (ood && firstSet) {
    parts.push(`Rejecting at ${pct(fpr, 0)} FPR on held-out data with the ${ood.guard.detector} score filters ${pct(ood.sets[firstSet].guardRejected)} of the ${firstSet} set (${ood.sets[firstSet].count} inputs) and ${pct(ood.guard.testRejected)} of the test set.`);
    if (bestOod) parts.push(`The best OOD detector there is ${bestOod.name} (AUROC ${fmt(bestOod.auroc, 3)}, FPR95 ${pct(bestOod.fpr95)}).`);
  }
  if (bestFail) parts.push(`For catching the model's own errors, ${bestFail.name} ranks best (AURC ${fmt(bestFail.aurc, 4)}).`);
  if (groups && groups.rows.length > 1) {
    const worst = [...groups.rows].sort((a, b) => a.accuracy - b.accuracy)[0];
    parts.push(`The weakest group is "${worst.group}" (${pct(worst.accuracy)} accuracy, ${worst.count} inputs).`);
  }
  const summary = parts.join(' ');

  // sections, results
  const results: Record<string, number | string | boolean | null> = {
    'counts.heldOut': nHeld, 'counts.test': nTest, numClasses: k,
  };
  const sections: ReportSection[] = [{ id: 'summary', title: 'Summary', markdown: summary, html: `<p>${escapeXml(summary)}</p>`, numbers: {} }];
  if (calibration) {
    const rows = [['softmax(z)', before] as const, [`softmax(z / T), T = ${fmt(T, 3)}`, after] as const];
    const headers = ['predictive distribution', 'accuracy', 'ECE', 'MCE', 'NLL', 'Brier'];
    const cells = rows.map(([n, c]) => [n, pct(c.accuracy), pct(c.ece), pct(c.mce), fmt(c.nll), fmt(c.brier)]);
    const numbers: ReportSection['numbers'] = { temperature: T, nllHeldOutBefore: temperature.nllBefore, nllHeldOutAfter: temperature.nllAfter };
    for (const [id, c] of [['before', before], ['after', after]] as const) for (const key of ['accuracy', 'ece', 'mce', 'nll', 'brier'] as const) numbers[`${id}.${key}`] = c[key];
    const plots = [
      reliabilityBars({ title: 'Before temperature scaling', diagram: before.diagram, annotation: `ECE ${pct(before.ece)}` }),
      reliabilityBars({ title: `After, T = ${fmt(T, 3)}`, diagram: after.diagram, annotation: `ECE ${pct(after.ece)}` }),
    ];
    sections.push({
      id: 'calibration', title: 'Calibration', numbers,
      markdown: `Temperature fitted on the held-out split (${nHeld} inputs); metrics on the test split, ${bins} equal-width bins.\n\n${markdownTable(headers, cells)}`,
      html: `<p>Temperature fitted on the held-out split (${nHeld} inputs); metrics on the test split, ${bins} equal-width bins.</p>${htmlTable(headers, cells)}${plots.map(svgBlock).join('')}`,
    });
  }
  if (ood) {
    const headers = ['detector', 'AUROC', 'AUPR-In', 'AUPR-Out', 'FPR95'];
    let md = `Scores higher = more OOD; AUROC and AUPR-Out take OOD as positive, AUPR-In the in-distribution test split; FPR95 = share of OOD accepted at 95% TPR on the test split. Guard: ${ood.guard.detector}, threshold ${fmt(threshold, 4)} at ${pct(fpr, 0)} held-out FPR (realised ${pct(ood.guard.realisedFpr)}); it rejects ${pct(ood.guard.testRejected)} of the test split.\n`;
    let html = `<p>${escapeXml(md)}</p>`;
    const numbers: ReportSection['numbers'] = { 'guard.detector': ood.guard.detector, 'guard.threshold': threshold, 'guard.fpr': fpr, 'guard.realisedFpr': ood.guard.realisedFpr, 'guard.testRejected': ood.guard.testRejected };
    for (const [name, s] of Object.entries(ood.sets)) {
      const cells = s.rows.map((r) => [r.name, fmt(r.auroc), fmt(r.auprIn), fmt(r.auprOut), fmt(r.fpr95)]);
      md += `\n**${escapeMarkdownCell(name)}** (${s.count} inputs; the guard rejects ${pct(s.guardRejected)})\n\n${markdownTable(headers, cells)}\n`;
      for (const r of s.rows) for (const key of ['auroc', 'auprIn', 'auprOut', 'fpr95'] as const) numbers[`${name}.${r.name}.${key}`] = r[key];
      numbers[`${name}.guardRejected`] = s.guardRejected;
      const table = oodTables[name];
      const roc = linePlot({
        title: `ROC: test vs ${name}`, xLabel: 'false-positive rate', yLabel: 'true-positive rate', diagonal: true, xDomain: [0, 1], yDomain: [0, 1], legend: 'bottom-right',
        series: table.rows.map((r, i) => {
          const scores = Float64Array.from([...r.scores.inDist, ...r.scores.outDist]);
          const labels = Uint8Array.from({ length: scores.length }, (_, j) => (j < r.scores.inDist.length ? 0 : 1));
          const c = rocCurve(scores, labels, { positive: 1 });
          return { name: r.name, x: c.fpr, y: c.tpr, color: PALETTE[i % PALETTE.length] };
        }),
      });
      const hists = table.rows.slice(0, 8).map((r) => histogramOverlay({
        title: r.name, xLabel: 'score (higher = more OOD)', trim: true, width: 320, height: 220,
        groups: [{ name: 'test', values: r.scores.inDist, color: PALETTE[0] }, { name, values: r.scores.outDist, color: PALETTE[1] }],
      }));
      html += `<h3>${escapeXml(name)} (${s.count} inputs; the guard rejects ${pct(s.guardRejected)})</h3>${htmlTable(headers, cells)}${svgBlock(roc)}<div class="row">${hists.map(svgBlock).join('')}</div>`;
    }
    sections.push({ id: 'ood', title: 'Out-of-distribution detection', markdown: md, html, numbers });
  }
  if (failure) {
    const headers = ['confidence', 'AURC', 'AUPR-Error', 'AUPR-Success'];
    const cells = failure.rows.map((r) => [r.name, fmt(r.aurc), fmt(r.auprError), fmt(r.auprSuccess)]);
    const numbers: ReportSection['numbers'] = {};
    for (const r of failure.rows) for (const key of ['aurc', 'auprError', 'auprSuccess'] as const) numbers[`${r.name}.${key}`] = r[key];
    const rc = linePlot({
      title: 'Risk–coverage (test split)', xLabel: 'coverage', yLabel: 'selective risk (error rate)', xDomain: [0, 1], legend: 'top-left',
      series: failureCurves.slice(0, 8).map((c, i) => {
        const r = riskCoverageCurve(c.confidence, correct);
        return { name: c.name, x: r.coverage, y: r.risk, color: PALETTE[i % PALETTE.length] };
      }),
    });
    const intro = `Failure prediction on the test split (${nTest - correct.reduce((a, c) => a + c, 0)} errors): confidence = max softmax(z/T), or −score for a detector. AURC lower is better; AUPR-Error takes the errors as positive.`;
    sections.push({ id: 'failure', title: 'Failure prediction', numbers, markdown: `${intro}\n\n${markdownTable(headers, cells)}`, html: `<p>${escapeXml(intro)}</p>${htmlTable(headers, cells)}${svgBlock(rc)}` });
  }
  if (groups) {
    const headers = ['group', 'count', 'accuracy', 'ECE', 'NLL', 'Brier'];
    const cells = groups.rows.map((r) => [r.group, r.count, pct(r.accuracy), pct(r.ece), fmt(r.nll), fmt(r.brier)]);
    const numbers: ReportSection['numbers'] = {};
    for (const r of groups.rows) for (const key of ['count', 'accuracy', 'ece', 'nll', 'brier'] as const) numbers[`${r.group}.${key}`] = r[key];
    const intro = 'Per-group metrics on the test split (temperature-scaled probabilities).';
    sections.push({ id: 'groups', title: 'Per-group metrics', numbers, markdown: `${intro}\n\n${markdownTable(headers, cells)}`, html: `<p>${intro}</p>${htmlTable(headers, cells)}` });
  }
  if (explanations) {
    const name = (c: number | null) => (c === null ? '—' : options.classNames?.[c] ?? String(c));
    const rowsMd = explanations.items.map((it) => [it.kind, `${it.set} #${it.index}`, name(it.label), `${name(it.prediction)} (${pct(it.confidence, 1)})`]);
    const numbers: ReportSection['numbers'] = { count: explanations.items.length, layer: explanations.layer };
    const html = `<p>Grad-CAM of the predicted class and the VOICE uncertainty of that explanation (layer ${escapeXml(explanations.layer)}).</p><table class="gallery"><thead><tr><th>kind</th><th>input</th><th>label</th><th>prediction</th><th>image</th><th>Grad-CAM</th><th>VOICE</th></tr></thead><tbody>${explanations.items
      .map((it) => `<tr><td>${escapeXml(it.kind)}</td><td>${escapeXml(`${it.set} #${it.index}`)}</td><td>${escapeXml(name(it.label))}</td><td>${escapeXml(`${name(it.prediction)} (${pct(it.confidence, 1)})`)}</td><td><img src="${it.images.input}"></td><td><img src="${it.images.gradCam}"></td><td><img src="${it.images.voice}"></td></tr>`)
      .join('')}</tbody></table>`;
    sections.push({
      id: 'explanations', title: 'Explanation gallery', numbers,
      markdown: `Grad-CAM / VOICE images are in the HTML report (layer ${explanations.layer}).\n\n${markdownTable(['kind', 'input', 'label', 'prediction'], rowsMd)}`, html,
    });
  }
  sections.push(...extra);
  for (const s of sections) for (const [key, v] of Object.entries(s.numbers)) results[`${s.id}.${key}`] = typeof v === 'number' && !Number.isFinite(v) ? null : v;
  results.summary = summary;

  const title = options.title ?? 'Risk report';
  const markdown = `# ${title}\n\n${sections.map((s) => `## ${s.title}\n\n${s.markdown}\n`).join('\n')}`;
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${escapeXml(title)}</title><style>
body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.plot{display:inline-block;margin:4px}.row{display:flex;flex-wrap:wrap}.gallery img{image-rendering:pixelated}
</style></head><body><h1>${escapeXml(title)}</h1>${sections.map((s) => `<section id="${escapeXml(s.id)}"><h2>${escapeXml(s.title)}</h2>${s.html}</section>`).join('\n')}</body></html>\n`;
  const resultsJson = `${JSON.stringify(results, null, 2)}\n`;
  const seconds = (performance.now() - t0) / 1000;
  return {
    title, numClasses: k, counts: { heldOut: nHeld, test: nTest, ood: Object.fromEntries(Object.entries(oodSets).map(([n, x]) => [n, x.shape[0]])) },
    detectors: detectors.map((d) => d.name), calibration, ood, failure, groups, explanations, extra, summary, sections, markdown, html, results, resultsJson, seconds,
    scores: {
      heldOut: Object.fromEntries(heldScores), test: Object.fromEntries(testScores),
      ood: Object.fromEntries(Object.entries(oodScores).map(([n, m]) => [n, Object.fromEntries(m)])),
    },
    files: () => ({ 'index.html': html, 'index.md': markdown, 'results.json': resultsJson }),
  };
}
