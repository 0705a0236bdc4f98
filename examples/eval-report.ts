/**
 * The `report` group of `npm run eval`: `riskReport` on the MNIST / Fashion-MNIST protocol with
 * the cached eval LeNet-5 — temperature and guard threshold from MNIST-val (1,000), metrics on
 * MNIST-test (1,000), Fashion-MNIST (2,000) as the OOD set, the default detectors (MSP,
 * max-logit, entropy, energy, MC dropout T = 50), the Grad-CAM / VOICE gallery at `features.4`.
 * Writes index.html, index.md and results.json into `<out>/report/` and returns the flat keys
 * prefixed `report.` (e.g. `report.calibration.after.ece`, `report.ood.Fashion-MNIST.<detector>.auroc`).
 *
 * Progress: riskReport's stages on the shared progress display (cli/progress.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Backend, type ImageSet, type LeNet5, MNIST_CLASS_NAMES, imageSetToTensors, riskReport } from '../node.js';
import { type Progress, progress } from '../cli/progress.js';

export interface ReportEvalOptions {
  model: LeNet5;
  backend: Backend;
  val: ImageSet;
  test: ImageSet;
  fashion: ImageSet;
  outDir: string;
  mcSamples?: number;
  log?: (s: string) => void;
}

/**
 * riskReport's stage callback on the one progress display of the long runs (cli/progress.ts: a
 * bar with ETA on a TTY, a plain line per stage otherwise); `done()` closes it.
 */
export function stageProgress(what: string): { onStage: (stage: string, i: number, n: number) => void; done: () => void } {
  let bar: Progress | null = null;
  let at = 0;
  return {
    onStage(stage, i, n) {
      bar ??= progress(what, n, { plain: 'each' });
      bar.tick({ stage }, i - at);
      at = i;
    },
    done() {
      bar?.tick({}, 1);
      bar?.done();
    },
  };
}

export async function runReportEval(o: ReportEvalOptions): Promise<Record<string, number | string | boolean | null>> {
  const held = imageSetToTensors(o.val, { backend: o.backend });
  const test = imageSetToTensors(o.test, { backend: o.backend });
  const ood = imageSetToTensors(o.fashion, { backend: o.backend });
  const stages = stageProgress('riskReport');
  try {
    const r = await riskReport(o.model, {
      heldOut: held, test, ood: { 'Fashion-MNIST': ood.x },
    }, {
      title: 'Risk report: LeNet-5, MNIST vs Fashion-MNIST', mcSamples: o.mcSamples ?? 50, seed: 0,
      explain: { layer: 'features.4', perKind: 4 }, classNames: MNIST_CLASS_NAMES, progress: stages.onStage,
    });
    stages.done();
    mkdirSync(o.outDir, { recursive: true });
    for (const [name, text] of Object.entries(r.files())) writeFileSync(join(o.outDir, name), text);
    (o.log ?? console.log)(`${r.summary}\n  report: ${join(o.outDir, 'index.html')} (${r.seconds.toFixed(1)} s)`);
    const out: Record<string, number | string | boolean | null> = {};
    for (const [k, v] of Object.entries(r.results)) if (k !== 'summary') out[`report.${k}`] = v;
    out['report.seconds'] = r.seconds;
    return out;
  } finally {
    for (const t of [held.x, held.y, test.x, test.y, ood.x, ood.y]) t.dispose();
  }
}
