/**
 * The `guards` eval group (README "Generative guards"): the notes' two generative rejection rules
 * on the shipped MNIST split (8000 train / 1000 held-out / 1000 test) and Fashion-MNIST.
 *
 * 1. VAE-loss guard: a fully connected VAE trained on MNIST-train; thresholds on the held-out
 *    MNIST losses at the maximum and at the 95th percentile; FPR on MNIST-test and the fraction
 *    of Fashion-MNIST accepted. Keys `vaeGuard.{fprMax,acceptedMax,fpr95,accepted95}`.
 * 2. WGAN-GP + inverter δz: G and D trained with the gradient penalty, then I; δz of the cached
 *    eval LeNet on held-out / test / Fashion inputs; threshold at the 5th percentile of held-out
 *    δz (5% FPR). Keys `wganInverter.{fpr,accepted,deltaZ:{min,q1,median,mean,q3,max}}`.
 *
 * Models are cached under .cache/dubito/eval/ in files named by a hash of their recipe (which
 * includes a hash of this file's text), so a rerun only scores. A PNG grid of G's samples and of
 * G(I(x)) reconstructions is written to `<outDir>/`.
 *
 * Standalone: `node scripts/run-ts.mjs examples/eval-guards.ts [--vae-epochs N] [--wgan-steps N] ...`
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  Adam, type Backend, DeltaZDetector, type ImageSet, type Module, VAE, VaeLossDetector, WganCritic, WganGenerator, WganInverter,
  calibrateThreshold, criticLoss, encodePng, generatorLoss, imageGrid, inputImage, inverterLoss, keep, loadSafetensors, manualSeed,
  noGrad, normal, rejectionRate, safetensorsToTensors, saveSafetensors, scaleNearest, scoreAll, tensor, tidy, vaeLoss, type Tensor,
} from '../node.js';
import { checkpointDir } from './eval-models.js';
import { permutation } from './mnist-training.js';

export interface GuardsConfig {
  vaeEpochs: number;
  wganSteps: number;
  nCritic: number;
  inverterSteps: number;
  dzCandidates: number;
  dzSteps: number;
  dzRadius: number;
  /** Inputs per set (held-out, test, Fashion) for δz. */
  dzN: number;
}

export const DEFAULT_GUARDS: GuardsConfig = {
  vaeEpochs: 30, wganSteps: 200, nCritic: 3, inverterSteps: 200, dzCandidates: 16, dzSteps: 16, dzRadius: 0.25, dzN: 500,
};

function codeHash(): string {
  const f = resolve('examples', 'eval-guards.ts');
  return createHash('sha256').update(existsSync(f) ? readFileSync(f, 'utf8') : 'bundled').digest('hex').slice(0, 12);
}
function hashOf(v: unknown): string {
  return createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 16);
}

function batchOf(set: ImageSet, idx: ArrayLike<number>, backend: Backend): Tensor {
  const x = new Float32Array(idx.length * 784);
  for (let i = 0; i < idx.length; i++) x.set(set.images.subarray(idx[i] * 784, (idx[i] + 1) * 784), i * 784);
  return tensor(x, [idx.length, 1, 28, 28], { backend });
}
function head(set: ImageSet, n: number, backend: Backend): Tensor {
  const m = Math.min(n, set.count);
  return tensor(set.images.subarray(0, m * 784), [m, 1, 28, 28], { backend });
}

async function loadInto(path: string, modules: Record<string, Module>, backend: Backend, recipe: string): Promise<Record<string, unknown> | null> {
  if (!existsSync(path)) return null;
  const file = await loadSafetensors(path);
  if (file.metadata.recipe !== recipe) return null;
  const all = safetensorsToTensors(file, backend);
  tidy(() => {
    for (const [prefix, m] of Object.entries(modules)) {
      const sd: Record<string, Tensor> = {};
      for (const [k, t] of Object.entries(all)) if (k.startsWith(`${prefix}.`)) sd[k.slice(prefix.length + 1)] = t;
      m.loadStateDict(sd);
    }
  });
  for (const t of Object.values(all)) t.dispose();
  return JSON.parse(file.metadata.training ?? '{}') as Record<string, unknown>;
}
async function saveModules(path: string, modules: Record<string, Module>, recipe: string, training: unknown): Promise<void> {
  const sd: Record<string, Tensor> = {};
  for (const [prefix, m] of Object.entries(modules)) for (const [k, t] of Object.entries(m.stateDict())) sd[`${prefix}.${k}`] = t;
  await saveSafetensors(path, sd, { recipe, training: JSON.stringify(training) });
  for (const t of Object.values(sd)) t.dispose();
}

function summary(v: Float64Array): { min: number; q1: number; median: number; mean: number; q3: number; max: number } {
  const s = Float64Array.from(v).sort();
  const q = (p: number) => {
    const h = (s.length - 1) * p;
    const lo = Math.floor(h);
    const hi = Math.ceil(h);
    return s[lo] + (s[hi] - s[lo]) * (h - lo);
  };
  let m = 0;
  for (const x of s) m += x;
  return { min: s[0], q1: q(0.25), median: q(0.5), mean: m / s.length, q3: q(0.75), max: s[s.length - 1] };
}

export interface GuardsContext {
  backend: Backend;
  train: ImageSet;
  val: ImageSet;
  test: ImageSet;
  fashion: ImageSet;
  classifier: (x: Tensor) => Tensor;
  outDir: string;
  retrain: boolean;
  config?: Partial<GuardsConfig>;
  log: (s: string) => void;
}

export async function evalGuards(ctx: GuardsContext) {
  const cfg = { ...DEFAULT_GUARDS, ...(ctx.config ?? {}) };
  const { backend, train, val, test, fashion, log } = ctx;
  mkdirSync(ctx.outDir, { recursive: true });
  const code = codeHash();
  const times: Record<string, number> = {};

  // ---------------------------------------------------------------- VAE
  const vaeRecipe = JSON.stringify({ kind: 'vae', hidden: 400, latent: 20, epochs: cfg.vaeEpochs, batch: 128, lr: 1e-3, seed: 0, train: train.count, code });
  const vaePath = join(checkpointDir(), `vae-${hashOf(vaeRecipe)}.safetensors`);
  manualSeed(0);
  const vae = new VAE({ hidden: 400, latent: 20 });
  let t0 = performance.now();
  let vaeMeta = ctx.retrain ? null : await loadInto(vaePath, { vae }, backend, vaeRecipe);
  if (!vaeMeta) {
    log(`VAE: training ${cfg.vaeEpochs} epochs on ${train.count} MNIST images (batch 128, Adam 1e-3, ${backend.name})`);
    vae.train();
    const opt = new Adam(vae.parameters(), { lr: 1e-3 });
    const B = 128;
    const steps = Math.floor(train.count / B);
    const history: number[] = [];
    for (let e = 0; e < cfg.vaeEpochs; e++) {
      const perm = permutation(train.count, 1000, e * 1_000_000);
      const losses: Tensor[] = [];
      for (let s = 0; s < steps; s++) {
        const l = tidy(() => {
          opt.zeroGrad();
          const x = batchOf(train, perm.subarray(s * B, (s + 1) * B), backend);
          const loss = vaeLoss(vae.forward(x, { sample: true }), x);
          loss.backward();
          opt.step();
          return loss;
        });
        losses.push(keep(l));
      }
      const vals = await Promise.all(losses.map((l) => l.data()));
      for (const l of losses) l.dispose();
      history.push(vals.reduce((a, v) => a + v[0], 0) / vals.length);
      log(`  VAE epoch ${e + 1}/${cfg.vaeEpochs}: loss ${history[e].toFixed(2)} nats  (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
    vaeMeta = { seconds: (performance.now() - t0) / 1000, history };
    await saveModules(vaePath, { vae }, vaeRecipe, vaeMeta);
  }
  vae.eval();
  times.vaeTrain = Number(vaeMeta.seconds ?? NaN);
  t0 = performance.now();
  const vaeDet = new VaeLossDetector(vae);
  const xsVal = head(val, val.count, backend);
  const xsTest = head(test, test.count, backend);
  const xsFashion = head(fashion, fashion.count, backend);
  const [sVal, sTest, sFashion] = [await scoreAll(vaeDet, xsVal), await scoreAll(vaeDet, xsTest), await scoreAll(vaeDet, xsFashion)];
  const tauMax = calibrateThreshold(sVal, 0);
  const tau95 = calibrateThreshold(sVal, 0.05);
  const vaeGuard = {
    fprMax: rejectionRate(sTest, tauMax), acceptedMax: 1 - rejectionRate(sFashion, tauMax),
    fpr95: rejectionRate(sTest, tau95), accepted95: 1 - rejectionRate(sFashion, tau95),
  };
  times.vaeScore = (performance.now() - t0) / 1000;
  log(`VAE guard: τ_max ${tauMax.toFixed(1)}, τ_95 ${tau95.toFixed(1)} nats; FPR/accepted at max ${(vaeGuard.fprMax * 100).toFixed(2)}% / ${(vaeGuard.acceptedMax * 100).toFixed(2)}%, at p95 ${(vaeGuard.fpr95 * 100).toFixed(2)}% / ${(vaeGuard.accepted95 * 100).toFixed(2)}%`);

  // ---------------------------------------------------------------- WGAN-GP + inverter
  const L = 64;
  const ganRecipe = JSON.stringify({ kind: 'wgan-gp', latent: L, width: 16, steps: cfg.wganSteps, nCritic: cfg.nCritic, batch: 64, lr: 1e-4, betas: [0.5, 0.9], lambda: 10, invSteps: cfg.inverterSteps, invLr: 1e-3, invLambda: 0.1, seed: 0, train: train.count, code });
  const ganPath = join(checkpointDir(), `wgan-${hashOf(ganRecipe)}.safetensors`);
  manualSeed(1);
  const G = new WganGenerator({ latent: L });
  const D = new WganCritic();
  const I = new WganInverter({ latent: L });
  t0 = performance.now();
  let ganMeta = ctx.retrain ? null : await loadInto(ganPath, { G, D, I }, backend, ganRecipe);
  if (!ganMeta) {
    const B = 64;
    log(`WGAN-GP: ${cfg.wganSteps} generator steps × ${cfg.nCritic} critic steps (batch ${B}, Adam 1e-4 β (0.5, 0.9), λ 10, ${backend.name})`);
    const oG = new Adam(G.parameters(), { lr: 1e-4, betas: [0.5, 0.9] });
    const oD = new Adam(D.parameters(), { lr: 1e-4, betas: [0.5, 0.9] });
    const perm = permutation(train.count, 2000, 0);
    let cursor = 0;
    const nextReal = () => {
      if (cursor + B > train.count) cursor = 0;
      const idx = perm.subarray(cursor, cursor + B);
      cursor += B;
      return batchOf(train, idx, backend);
    };
    const wHistory: number[] = [];
    for (let s = 0; s < cfg.wganSteps; s++) {
      let dl: Tensor | null = null;
      for (let c = 0; c < cfg.nCritic; c++) {
        dl?.dispose();
        dl = keep(tidy(() => {
          oD.zeroGrad();
          const real = nextReal();
          const fake = noGrad(() => G.forward(normal([B, L], { backend })));
          const loss = criticLoss((x) => D.forward(x), real, fake);
          loss.backward();
          oD.step();
          return loss.detach();
        }));
      }
      tidy(() => {
        oG.zeroGrad();
        generatorLoss((x) => D.forward(x), G.forward(normal([B, L], { backend }))).backward();
        oG.step();
        D.zeroGrad();
      });
      if (s % 25 === 24 || s === cfg.wganSteps - 1) {
        const v = (await dl!.data())[0];
        wHistory.push(v);
        log(`  WGAN step ${s + 1}/${cfg.wganSteps}: critic loss ${v.toFixed(3)}  (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
      }
      dl!.dispose();
    }
    const ganSeconds = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    log(`inverter: ${cfg.inverterSteps} steps (batch ${B}, Adam 1e-3, λ 0.1)`);
    const oI = new Adam(I.parameters(), { lr: 1e-3 });
    const iHistory: number[] = [];
    G.eval();
    for (let s = 0; s < cfg.inverterSteps; s++) {
      const l = tidy(() => {
        oI.zeroGrad();
        const x = nextReal();
        const loss = inverterLoss((z) => G.forward(z), (x) => I.forward(x), x, normal([B, L], { backend }));
        loss.backward();
        oI.step();
        G.zeroGrad();
        return loss.detach();
      });
      if (s % 50 === 49 || s === cfg.inverterSteps - 1) {
        iHistory.push((await l.data())[0]);
        log(`  inverter step ${s + 1}/${cfg.inverterSteps}: loss ${iHistory[iHistory.length - 1].toFixed(4)}  (${((performance.now() - t1) / 1000).toFixed(0)} s)`);
      }
      l.dispose();
    }
    ganMeta = { ganSeconds, inverterSeconds: (performance.now() - t1) / 1000, criticLoss: wHistory, inverterLoss: iHistory };
    await saveModules(ganPath, { G, D, I }, ganRecipe, ganMeta);
  }
  G.eval();
  I.eval();
  times.wganTrain = Number(ganMeta.ganSeconds ?? NaN);
  times.inverterTrain = Number(ganMeta.inverterSeconds ?? NaN);

  // samples and reconstructions as PNG grids
  {
    const imgs = tidy(() => noGrad(() => G.forward(normal([64, L], { backend, seed: 7, offset: 0 }))));
    const px = await imgs.data();
    imgs.dispose();
    const cells = Array.from({ length: 64 }, (_, i) => scaleNearest(inputImage(px.subarray(i * 784, (i + 1) * 784), 28, 28), 2));
    writeFileSync(join(ctx.outDir, 'wgan-samples.png'), encodePng(imageGrid(cells, { columns: 8, padding: 2 })));
    const x = head(test, 16, backend);
    const rec = tidy(() => noGrad(() => G.forward(I.forward(x))));
    const [a, b] = [await x.data(), await rec.data()];
    x.dispose();
    rec.dispose();
    const pairs = [] as ReturnType<typeof inputImage>[];
    for (let i = 0; i < 16; i++) pairs.push(scaleNearest(inputImage(a.subarray(i * 784, (i + 1) * 784), 28, 28), 2), scaleNearest(inputImage(b.subarray(i * 784, (i + 1) * 784), 28, 28), 2));
    writeFileSync(join(ctx.outDir, 'inverter-reconstructions.png'), encodePng(imageGrid(pairs, { columns: 8, padding: 2 })));
  }

  t0 = performance.now();
  const dz = new DeltaZDetector(G, I, ctx.classifier, { candidates: cfg.dzCandidates, steps: cfg.dzSteps, radiusStep: cfg.dzRadius, seed: 0 });
  const dzBatch = 100;
  const dzScores = async (set: ImageSet) => {
    const x = head(set, cfg.dzN, backend);
    try {
      return await scoreAll(dz, x, dzBatch);
    } finally {
      x.dispose();
    }
  };
  const dVal = await dzScores(val);
  const dTest = await dzScores(test);
  const dFashion = await dzScores(fashion);
  const tauDz = calibrateThreshold(dVal, 0.05); // on −δz: reject when δz < −τ (the 5th percentile of held-out δz)
  const deltaTest = dTest.map((s) => -s);
  const notFound = deltaTest.filter((d) => !Number.isFinite(d)).length;
  const wganInverter = {
    fpr: rejectionRate(dTest, tauDz),
    accepted: 1 - rejectionRate(dFashion, tauDz),
    deltaZ: summary(deltaTest),
  };
  times.deltaZ = (performance.now() - t0) / 1000;
  log(`δz guard: threshold δz < ${(-tauDz).toFixed(3)}; FPR ${(wganInverter.fpr * 100).toFixed(2)}%, Fashion accepted ${(wganInverter.accepted * 100).toFixed(2)}%; δz on ${deltaTest.length} test inputs: ${JSON.stringify(wganInverter.deltaZ)} (${notFound} without a flip within ${cfg.dzSteps * cfg.dzRadius})`);
  for (const t of [xsVal, xsTest, xsFashion]) t.dispose();
  for (const m of [vae, G, D, I]) m.dispose();
  const detail = { config: cfg, times, vaeGuard, tauMax, tau95, wganInverter, tauDeltaZ: -tauDz, notFound, vaeTraining: vaeMeta, ganTraining: ganMeta };
  writeFileSync(join(ctx.outDir, 'guards.json'), JSON.stringify(detail, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2));
  return { results: { vaeGuard, wganInverter }, times, detail };
}

/** `--vae-epochs N --wgan-steps N --n-critic N --inverter-steps N --dz-candidates K --dz-steps T --dz-radius Δr --dz-n N`. */
export function guardsConfigFromArgv(argv: readonly string[]): Partial<GuardsConfig> {
  const flags: [string, keyof GuardsConfig][] = [
    ['vae-epochs', 'vaeEpochs'], ['wgan-steps', 'wganSteps'], ['n-critic', 'nCritic'], ['inverter-steps', 'inverterSteps'],
    ['dz-candidates', 'dzCandidates'], ['dz-steps', 'dzSteps'], ['dz-radius', 'dzRadius'], ['dz-n', 'dzN'],
  ];
  const out: Partial<GuardsConfig> = {};
  for (const [flag, key] of flags) {
    const i = argv.indexOf(`--${flag}`);
    if (i >= 0) {
      const v = Number(argv[i + 1]);
      if (!(v > 0)) throw new Error(`eval guards: --${flag} needs a positive number, got ${argv[i + 1]}`);
      out[key] = v;
    }
  }
  return out;
}
