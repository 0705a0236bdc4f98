/**
 * The `report` group of `npm run eval`: `riskReport` on the MNIST / Fashion-MNIST protocol with
 * the cached eval LeNet-5 — temperature and guard threshold from MNIST-val (1,000), metrics on
 * MNIST-test (1,000), Fashion-MNIST (2,000) as the OOD set, the default detectors (MSP,
 * max-logit, entropy, energy, MC dropout T = 50), the Grad-CAM / VOICE gallery at `features.4`.
 * Writes index.html, index.md and results.json into `<out>/report/` and returns the flat keys
 * prefixed `report.` (e.g. `report.calibration.after.ece`, `report.ood.Fashion-MNIST.<detector>.auroc`).
 *
 * Progress: one line per stage (`\r`-updated with elapsed time and ETA on a TTY, plain lines otherwise).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Backend, type ImageSet, type LeNet5, MNIST_CLASS_NAMES, imageSetToTensors, riskReport } from '../node.js';

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

/** A stage line: `\r`-rewritten with elapsed time and ETA on a TTY, one plain line per stage otherwise. */
export function stagePrinter(what: string): (stage: string, i: number, n: number) => void {
  const t0 = performance.now();
  const tty = typeof process !== 'undefined' && process.stdout.isTTY;
  return (stage, i, n) => {
    const s = (performance.now() - t0) / 1000;
    const eta = i > 0 ? ` ETA ${((s / i) * (n - i)).toFixed(0)} s` : '';
    const line = `  ${what} [${'#'.repeat(i)}${'.'.repeat(n - i)}] ${i}/${n} ${stage} (${s.toFixed(1)} s${eta})`;
    if (tty) process.stdout.write(`\r\x1b[K${line}${i === n - 1 ? '\n' : ''}`);
    else console.log(line);
  };
}

export async function runReportEval(o: ReportEvalOptions): Promise<Record<string, number | string | boolean | null>> {
  const held = imageSetToTensors(o.val, { backend: o.backend });
  const test = imageSetToTensors(o.test, { backend: o.backend });
  const ood = imageSetToTensors(o.fashion, { backend: o.backend });
  try {
    const r = await riskReport(o.model, {
      heldOut: held, test, ood: { 'Fashion-MNIST': ood.x },
    }, {
      title: 'Risk report: LeNet-5, MNIST vs Fashion-MNIST', mcSamples: o.mcSamples ?? 50, seed: 0,
      explain: { layer: 'features.4', perKind: 4 }, classNames: MNIST_CLASS_NAMES, progress: stagePrinter('riskReport'),
    });
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
