/**
 * riskReport (uncertainty/report/risk-report.ts) on a tiny fixed conv net (seeded weights, CPU
 * reference): every section is present, and every number equals what the individual function
 * returns on the same inputs (fitTemperature, reliabilityDiagram / nll / brier, evaluateDetectors,
 * calibrateThreshold / rejectionRate, aurc / auprError, per-group accuracy); the extraSections
 * hook lands in the results; ensembles and plain functions work; bad input is a typed error;
 * nothing leaks.
 */
import { describe, expect, it } from 'vitest';
import {
  type Tensor, ArgumentError, Conv2d, DeepEnsemble, Dropout, Flatten, Linear, ReLU, Sequential, ShapeError, aurc, auprError, brier,
  calibrateThreshold, confidenceAndCorrect, defaultReportDetectors, evaluateDetectors, fitTemperature, manualSeed, memory, nll,
  reliabilityDiagram, rejectionRate, riskReport, scoreAll, setBackend, softmaxRows, tensor, tidy, uniform,
} from '../node.js';
import { cpu } from './helpers/backends.js';

function net(seed: number): Sequential {
  manualSeed(seed);
  return new Sequential(new Conv2d(1, 3, 3, { padding: 1 }), new ReLU(), new Flatten(), new Dropout(0.3), new Linear(3 * 6 * 6, 3));
}

/** The fixed model and data: labels are the model's own argmax with every 4th one shifted (so it errs). */
async function fixture() {
  setBackend(cpu);
  const model = tidy(() => net(3)).eval();
  manualSeed(11);
  const xs = tidy(() => [uniform([48, 1, 6, 6]), uniform([40, 1, 6, 6]), uniform([30, 1, 6, 6]).mul(3).sub(1)]);
  const labelsOf = async (x: Tensor, offset: number) => {
    const z = tidy(() => model.forward(x).argmax(-1));
    const p = Array.from(await z.data());
    z.dispose();
    return Int32Array.from(p, (v, i) => ((i + offset) % 4 === 0 ? (v + 1) % 3 : v));
  };
  const yHeld = await labelsOf(xs[0], 1);
  const yTest = await labelsOf(xs[1], 0);
  const groups = Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? 'b' : 'a'));
  return { model, held: { x: xs[0], y: yHeld }, test: { x: xs[1], y: yTest }, ood: xs[2], groups };
}

async function hostLogits(f: (x: Tensor) => Tensor, x: Tensor): Promise<Float64Array> {
  const z = tidy(() => f(x));
  const d = Float64Array.from(await z.data());
  z.dispose();
  return d;
}

describe('riskReport', () => {
  it('has every section and the individual functions\' numbers', { timeout: 60_000 }, async () => {
    const f = await fixture();
    const before = memory().liveTensors;
    const r = await riskReport(f.model, {
      train: f.held, heldOut: f.held, test: f.test, ood: { noise: f.ood }, groups: f.groups,
    }, {
      mcSamples: 8, seed: 5, explain: { layer: '1', perKind: 2 },
      extraSections: [(ctx) => ({ id: 'conformal', title: 'Conformal', markdown: 'stub', html: '<p>stub</p>', numbers: { classes: ctx.numClasses, temperature: ctx.temperature } })],
    });
    expect(memory().liveTensors - before).toBe(0);
    expect(r.sections.map((s) => s.id)).toEqual(['summary', 'calibration', 'ood', 'failure', 'groups', 'explanations', 'conformal']);
    for (const s of r.sections) {
      expect(r.markdown).toContain(`## ${s.title}`);
      expect(r.html).toContain(`<section id="${s.id}">`);
    }
    expect(r.html).toContain('<svg');
    expect(r.html).not.toContain('NaN');
    expect(Object.keys(r.files()).sort()).toEqual(['index.html', 'index.md', 'results.json']);
    expect(JSON.parse(r.resultsJson)).toEqual(JSON.parse(JSON.stringify(r.results)));

    // calibration = fitTemperature on held-out logits, metrics of softmax(z) / softmax(z/T) on test
    const zHeld = await hostLogits((x) => f.model.forward(x), f.held.x);
    const zTest = await hostLogits((x) => f.model.forward(x), f.test.x);
    const ts = await fitTemperature(zHeld, f.held.y, { numClasses: 3 });
    expect(r.calibration!.temperature.temperature).toBeCloseTo(ts.temperature, 12);
    for (const [which, beta] of [['before', 1], ['after', 1 / ts.temperature]] as const) {
      const p = softmaxRows(zTest, 3, beta);
      const { confidence, correct } = confidenceAndCorrect(p, f.test.y, { numClasses: 3 });
      const d = reliabilityDiagram(confidence, correct, { bins: 15 });
      const c = r.calibration![which];
      expect(c.ece).toBeCloseTo(d.ece, 12);
      expect(c.mce).toBeCloseTo(d.mce, 12);
      expect(c.nll).toBeCloseTo(nll(p, f.test.y, { numClasses: 3 }), 12);
      expect(c.brier).toBeCloseTo(brier(p, f.test.y, { numClasses: 3 }), 12);
      expect(c.accuracy).toBeCloseTo(correct.reduce((a, v) => a + v, 0) / 40, 12);
      expect(r.results[`calibration.${which}.ece`]).toBe(c.ece);
      if (which === 'after') {
        // failure prediction with the temperature-scaled confidence
        const row = r.failure!.rows[0];
        expect(row.aurc).toBeCloseTo(aurc(confidence, correct), 12);
        expect(row.auprError).toBeCloseTo(auprError(confidence, correct), 12);
        // per-group accuracy
        for (const g of ['a', 'b']) {
          const idx = f.groups.map((v, i) => (v === g ? i : -1)).filter((i) => i >= 0);
          const acc = idx.reduce((a, i) => a + correct[i], 0) / idx.length;
          const gr = r.groups!.rows.find((x) => x.group === g)!;
          expect(gr.count).toBe(idx.length);
          expect(gr.accuracy).toBeCloseTo(acc, 12);
        }
      }
    }

    // OOD table = evaluateDetectors on fresh detectors with the same settings; guard = calibrateThreshold
    const detectors = defaultReportDetectors(f.model, { mcSamples: 8, seed: 5 });
    expect(r.detectors).toEqual(detectors.map((d) => d.name));
    expect(r.detectors).toEqual(['MSP', 'max-logit', 'entropy', 'energy (T=1)', 'MC predictive entropy', 'MC mutual information', 'MC variation ratio']);
    const table = await evaluateDetectors(detectors, { inDist: f.test.x, outDist: f.ood });
    for (const row of table.rows) {
      const got = r.ood!.sets.noise.rows.find((x) => x.name === row.name)!;
      expect(got.auroc).toBeCloseTo(row.auroc, 12);
      expect(got.auprIn).toBeCloseTo(row.auprIn, 12);
      expect(got.auprOut).toBeCloseTo(row.auprOut, 12);
      expect(got.fpr95).toBeCloseTo(row.fpr95, 12);
      expect(r.results[`ood.noise.${row.name}.auroc`]).toBe(got.auroc);
      // failure prediction with confidence = −score
      const fr = r.failure!.rows.find((x) => x.name === row.name)!;
      const { correct } = confidenceAndCorrect(softmaxRows(zTest, 3), f.test.y, { numClasses: 3 });
      expect(fr.aurc).toBeCloseTo(aurc(row.scores.inDist.map((s) => -s), correct), 12);
    }
    const energy = detectors.find((d) => d.name === 'energy (T=1)')!;
    const heldScores = await scoreAll(energy, f.held.x);
    const tau = calibrateThreshold(heldScores, 0.05);
    expect(r.ood!.guard.detector).toBe('energy (T=1)');
    expect(r.ood!.guard.threshold).toBe(tau);
    expect(r.ood!.guard.realisedFpr).toBe(rejectionRate(heldScores, tau));
    expect(r.ood!.sets.noise.guardRejected).toBe(rejectionRate(table.get('energy (T=1)')!.scores.outDist, tau));
    // the raw scores it exposes are the detectors' own (same settings, same batches)
    expect(Object.keys(r.scores.heldOut)).toEqual(r.detectors);
    expect(Array.from(r.scores.heldOut['energy (T=1)'])).toEqual(Array.from(heldScores));
    for (const row of table.rows) {
      expect(Array.from(r.scores.test[row.name]), row.name).toEqual(Array.from(row.scores.inDist));
      expect(Array.from(r.scores.ood.noise[row.name]), row.name).toEqual(Array.from(row.scores.outDist));
    }

    // explanation gallery: 2 most uncertain, up to 2 confidently wrong, 2 most OOD-looking, each with 3 PNGs
    const kinds = r.explanations!.items.map((i) => i.kind);
    expect(kinds.filter((k) => k === 'most uncertain')).toHaveLength(2);
    expect(kinds.filter((k) => k === 'confidently wrong')).toHaveLength(2);
    expect(kinds.filter((k) => k === 'most OOD-looking')).toHaveLength(2);
    for (const it of r.explanations!.items) for (const src of Object.values(it.images)) expect(src).toMatch(/^data:image\/png;base64,iVBOR/);
    const wrong = r.explanations!.items.filter((i) => i.kind === 'confidently wrong');
    for (const w of wrong) expect(w.prediction).not.toBe(w.label);

    // the hook's numbers and the summary
    expect(r.results['conformal.classes']).toBe(3);
    expect(r.results['conformal.temperature']).toBe(r.calibration!.temperature.temperature);
    expect(r.summary).toMatch(/over|under/);
    expect(r.summary).toContain('of the noise set');
    for (const t of [f.held.x, f.test.x, f.ood]) t.dispose();
    f.model.dispose();
  });

  it('takes a DeepEnsemble and a plain function; sections can be chosen', { timeout: 60_000 }, async () => {
    const f = await fixture();
    const ens = new DeepEnsemble([f.model, tidy(() => net(4)).eval()]);
    const before = memory().liveTensors;
    const r = await riskReport(ens, { heldOut: f.held, test: f.test, ood: f.ood }, { sections: ['ood'] });
    expect(r.detectors).toEqual(['MSP', 'max-logit', 'entropy', 'energy (T=1)', 'ensemble predictive entropy', 'ensemble mutual information', 'ensemble mean energy']);
    expect(r.sections.map((s) => s.id)).toEqual(['summary', 'ood']);
    expect(r.calibration).toBeNull();
    expect(Object.keys(r.ood!.sets)).toEqual(['OOD']);
    const fnModel = (x: Tensor) => f.model.forward(x);
    const r2 = await riskReport(fnModel, { heldOut: f.held, test: f.test });
    expect(r2.detectors).toEqual(['MSP', 'max-logit', 'entropy', 'energy (T=1)']);
    expect(r2.ood).toBeNull();
    expect(r2.explanations).toBeNull();
    expect(r2.sections.map((s) => s.id)).toEqual(['summary', 'calibration', 'failure']);
    ens.dispose();
    expect(memory().liveTensors - before).toBe(0);
    for (const t of [f.held.x, f.test.x, f.ood]) t.dispose();
  });

  it('rejects bad input with typed errors', async () => {
    const f = await fixture();
    await expect(riskReport(f.model, { test: f.test } as never)).rejects.toThrow(ArgumentError);
    await expect(riskReport(f.model, { heldOut: f.held, test: { x: f.test.x, y: [0, 1] } })).rejects.toThrow(/test\.y has 2 labels but test\.x has 40 rows/);
    await expect(riskReport(f.model, { heldOut: f.held, test: f.test, groups: ['a'] })).rejects.toThrow(ShapeError);
    await expect(riskReport(f.model, { heldOut: f.held, test: f.test }, { fpr: 1.5 })).rejects.toThrow(/fpr must be in \[0, 1\)/);
    await expect(riskReport(f.model, { heldOut: f.held, test: f.test }, { guardDetector: 'nope' })).rejects.toThrow(/guardDetector 'nope'/);
    await expect(riskReport(tensor([1]) as never, { heldOut: f.held, test: f.test })).rejects.toThrow(ArgumentError);
    for (const t of [f.held.x, f.test.x, f.ood]) t.dispose();
  });
});
