/**
 * `evaluateDetectors`: the OOD-detection table for any list of detectors on one in-distribution
 * and one out-of-distribution set — what `npm run eval` prints, in three lines on your data:
 *
 * ```ts
 * const detectors = [mspDetector(net), energyDetector(net), odinDetector(net, { temperature: 1000, epsilon: 0.001 })];
 * const table = await evaluateDetectors(detectors, { inDist: testImages, outDist: oodImages });
 * console.log(table.format());
 * ```
 *
 * Conventions (those of `oodMetrics`): scores are higher = more OOD. AUROC and AUPR-Out take OOD as
 * the positive class; AUPR-In takes in-distribution as positive with the negated score; FPR95 is
 * the fraction of OOD inputs ACCEPTED (scored as in-distribution) at the threshold that accepts
 * 95% of the in-distribution inputs.
 */
import { ArgumentError } from '../engine/index.js';
import { type Detector, type DetectorInput, isDetector, scoreAll } from './detector.js';
import { type OodReport, oodMetrics } from './metrics.js';

export interface EvaluateOptions {
  /** In-distribution inputs (a tensor [N, ...] or batches; see DetectorInput). */
  inDist: DetectorInput;
  /** Out-of-distribution inputs. */
  outDist: DetectorInput;
  /** Rows per batch when an input is one tensor (default 256). */
  batchSize?: number;
}

/** One row of the table: the detector's metrics and the raw scores they came from. */
export interface DetectorEvaluation extends OodReport {
  name: string;
  detector: Detector;
  /** The scores (float64, higher = more OOD) of the in- and out-of-distribution inputs, in order. */
  scores: { inDist: Float64Array; outDist: Float64Array };
}

/** The table returned by {@link evaluateDetectors}. */
export interface DetectorTable {
  rows: DetectorEvaluation[];
  /** The row of the detector named `name` (undefined if none). */
  get(name: string): DetectorEvaluation | undefined;
  /** A fixed-width text table: name, AUROC, AUPR-In, AUPR-Out, FPR95 (4 decimals). */
  format(): string;
}

function formatTable(rows: readonly DetectorEvaluation[]): string {
  const head = ['detector', 'AUROC', 'AUPR-In', 'AUPR-Out', 'FPR95'];
  const body = rows.map((r) => [r.name, r.auroc.toFixed(4), r.auprIn.toFixed(4), r.auprOut.toFixed(4), r.fpr95.toFixed(4)]);
  const widths = head.map((h, j) => Math.max(h.length, ...body.map((b) => b[j].length)));
  const line = (cells: string[]) => cells.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/**
 * Scores `inDist` and `outDist` with every detector (batch by batch, under `noGrad` where the
 * method allows; ODIN still takes its input gradient) and returns AUROC, AUPR-In, AUPR-Out and
 * FPR95 per detector, with the raw scores. Every detector sees the same inputs (each detector
 * iterates the sets once: pass tensors, arrays of batches or DataLoaders, not one-shot generators,
 * when there are several detectors).
 */
export async function evaluateDetectors(detectors: readonly Detector[], opts: EvaluateOptions): Promise<DetectorTable> {
  if (!Array.isArray(detectors) || detectors.length === 0) throw new ArgumentError('evaluateDetectors: expected a non-empty array of detectors');
  detectors.forEach((d, i) => {
    if (!isDetector(d)) throw new ArgumentError(`evaluateDetectors: detectors[${i}] is not a Detector (needs a string name and a score(x) method)`);
  });
  if (!opts || opts.inDist === undefined || opts.outDist === undefined) throw new ArgumentError('evaluateDetectors: options { inDist, outDist } are required');
  const bs = opts.batchSize ?? 256;
  const rows: DetectorEvaluation[] = [];
  for (const d of detectors) {
    const inDist = await scoreAll(d, opts.inDist, bs);
    const outDist = await scoreAll(d, opts.outDist, bs);
    rows.push({ name: d.name, detector: d, ...oodMetrics(inDist, outDist), scores: { inDist, outDist } });
  }
  return {
    rows,
    get: (name) => rows.find((r) => r.name === name),
    format: () => formatTable(rows),
  };
}
