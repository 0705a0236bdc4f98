/**
 * Checkpointed LeNet training for `npm run eval`: every model is described by a recipe (data
 * split, epochs, optimiser, augmentation, seeds); its weights are cached as safetensors under
 * `.cache/dubito/eval/` in a file named by a hash of that recipe, so a second run loads instead
 * of training, and changing any recipe field (e.g. `--epochs`) trains a fresh model.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  type Backend, type ImageSet, LeNet5, loadSafetensors, manualSeed, safetensorsToTensors, saveSafetensors, tidy,
} from '../node.js';
import { MNIST_SPLIT, gatherBatch, permutation, trainLeNet, trainLeNetEnsemble } from './mnist-training.js';
import { trainRecipe } from './train-recipes.js';

/**
 * Fingerprint of the training code: a hash of examples/mnist-training.ts's source text when it
 * is reachable from the working directory (the same in every entry point's bundle, so the eval
 * groups and the explain/gradients scripts share checkpoints), else of the bundled functions'
 * text (which esbuild may rename per bundle).
 */
function codeFingerprint(kind: string, fns: ((...a: never[]) => unknown)[]): string {
  const file = resolve('examples', 'mnist-training.ts');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : fns.map((f) => f.toString()).join('\n');
  return createHash('sha256').update(`${kind}\n${text}`).digest('hex').slice(0, 12);
}

/** Everything that determines a trained model (bump `version` when the training code changes meaningfully). */
export interface Recipe {
  version: 1;
  model: 'LeNet5';
  dropout: number;
  data: { name: 'mnist'; split: typeof MNIST_SPLIT; splitSeed: number };
  epochs: number;
  batchSize: number;
  optimizer: 'adam';
  lr: number;
  schedule: 'cosine';
  /** Random affine augmentation passed to `trainLeNet` (as the demo: ±12°, ±10% scale, ±2 px). */
  augment: { maxShift: number; maxRotate: number; maxScale: number };
  /**
   * Fingerprint of the training code actually run (`trainLeNet`, `gatherBatch`, `permutation`
   * as bundled), so that an edit to examples/mnist-training.ts never reuses a stale checkpoint.
   */
  code: string;
  /** manualSeed before construction: initialisation and the training dropout masks. */
  initSeed: number;
  /** Shuffling (permutation stream `dataSeed`) and shift augmentation (stream `dataSeed + 1`). */
  dataSeed: number;
  /**
   * 'stacked': trained with the other ensemble members in one stacked step per batch
   * (`trainLeNetEnsemble`; same data order and augmentation as alone, dropout rows from the
   * global generator). Absent: trained alone by `trainLeNet`.
   */
  trainer?: 'stacked';
}

/** The recipe of an ensemble member trained stacked (its own code fingerprint). */
export function stackedMemberRecipe(epochs: number, seed: number): Recipe {
  return {
    ...baseRecipe(epochs, seed),
    trainer: 'stacked',
    code: codeFingerprint('stacked', [trainLeNetEnsemble, gatherBatch, permutation]),
  };
}

export function baseRecipe(epochs: number, seed: number): Recipe {
  return {
    version: 1,
    model: 'LeNet5',
    dropout: 0.3,
    data: { name: 'mnist', split: MNIST_SPLIT, splitSeed: 0 },
    epochs,
    batchSize: 64,
    optimizer: 'adam',
    lr: 2e-3,
    schedule: 'cosine',
    augment: { maxShift: 2, maxRotate: 12, maxScale: 0.1 },
    code: codeFingerprint('single', [trainLeNet, gatherBatch, permutation]),
    initSeed: seed,
    dataSeed: seed,
  };
}

/** Stable JSON (sorted keys) so the hash does not depend on property order. */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export function recipeHash(r: Recipe): string {
  return createHash('sha256').update(stableJson(r)).digest('hex').slice(0, 16);
}

export function checkpointDir(): string {
  return resolve(process.env.DUBITO_CACHE_DIR ?? join(process.cwd(), '.cache', 'dubito'), 'eval');
}

export interface TrainedModel {
  model: LeNet5;
  recipe: Recipe;
  path: string;
  cached: boolean;
  /** Training wall time in seconds (from the checkpoint's metadata when cached). */
  trainSeconds: number;
  /** Per-epoch history (from the metadata when cached). */
  history: { epoch: number; loss: number; valAcc: number | null; seconds: number }[];
}

type History = TrainedModel['history'];

/** A fresh LeNet-5 initialised from `seed` (the global generator is reseeded first). */
export function freshLeNet(seed: number, dropout: number): LeNet5 {
  manualSeed(seed);
  return new LeNet5({ dropout });
}

/**
 * Loads the checkpoint at `path` into `make()` if its metadata `recipe` equals `key`; null when
 * there is none or it is unusable (said in the log, the half-loaded model freed), so the caller
 * trains a fresh one.
 */
export async function loadCheckpoint(
  path: string, key: string, make: () => LeNet5, backend: Backend, log: (s: string) => void,
): Promise<{ model: LeNet5; trainSeconds: number; history: History } | null> {
  if (!existsSync(path)) return null;
  const model = make();
  try {
    const file = await loadSafetensors(path);
    if (file.metadata.recipe !== key) throw new Error('recipe in the metadata does not match');
    tidy(() => {
      model.loadStateDict(safetensorsToTensors(file, backend));
    });
    model.eval();
    const meta = JSON.parse(file.metadata.training ?? '{}') as { seconds?: number; history?: History };
    return { model, trainSeconds: meta.seconds ?? NaN, history: meta.history ?? [] };
  } catch (e) {
    log(`  checkpoint ${path} unusable (${e instanceof Error ? e.message : String(e)}); retraining`);
    model.dispose();
    return null;
  }
}

/** Saves a trained model with its recipe key and training record in the metadata. */
export async function saveCheckpoint(path: string, model: LeNet5, key: string, training: Record<string, unknown>): Promise<void> {
  const sd = model.stateDict();
  await saveSafetensors(path, sd, { recipe: key, training: JSON.stringify(training) });
  for (const t of Object.values(sd)) t.dispose();
}

const recipePath = (recipe: Recipe): string => join(checkpointDir(), `lenet5-${recipeHash(recipe)}.safetensors`);

/** The cached checkpoint of `recipe`, or null. */
export async function loadCached(recipe: Recipe, backend: Backend, log: (s: string) => void): Promise<TrainedModel | null> {
  const path = recipePath(recipe);
  const c = await loadCheckpoint(path, stableJson(recipe), () => freshLeNet(recipe.initSeed, recipe.dropout), backend, log);
  return c && { ...c, recipe, path, cached: true };
}

/**
 * Loads the ensemble members' checkpoints (recipes from {@link stackedMemberRecipe}), or trains
 * ALL members together with `trainLeNetEnsemble` (one stacked step per batch) when any is
 * missing, and saves each. `trainSeconds` of each member is the shared stacked training time.
 */
export async function obtainEnsemble(
  recipes: Recipe[], train: ImageSet, val: ImageSet, backend: Backend, opts: { retrain: boolean; log: (s: string) => void },
): Promise<TrainedModel[]> {
  if (!opts.retrain) {
    const cached = await Promise.all(recipes.map((r) => loadCached(r, backend, opts.log)));
    if (cached.every((c) => c !== null)) return cached as TrainedModel[];
    for (const c of cached) c?.model.dispose();
  }
  const r0 = recipes[0];
  if (recipes.some((r) => r.epochs !== r0.epochs || r.batchSize !== r0.batchSize || r.lr !== r0.lr || r.dropout !== r0.dropout)) {
    throw new Error('obtainEnsemble: members must share epochs, batch size, lr and dropout to train stacked');
  }
  const models = recipes.map((r) => freshLeNet(r.initSeed, r.dropout));
  const t0 = performance.now();
  const { histories } = await trainLeNetEnsemble(models, train, val, {
    epochs: r0.epochs, batchSize: r0.batchSize, lr: r0.lr, seeds: recipes.map((r) => r.dataSeed), augment: r0.augment, backend, log: opts.log,
  });
  const seconds = (performance.now() - t0) / 1000;
  const out: TrainedModel[] = [];
  for (let m = 0; m < models.length; m++) {
    const model = models[m].eval();
    const path = recipePath(recipes[m]);
    await saveCheckpoint(path, model, stableJson(recipes[m]), { seconds, history: histories[m], stackedWith: recipes.length });
    out.push({ model, recipe: recipes[m], path, cached: false, trainSeconds: seconds, history: histories[m] });
  }
  return out;
}

/**
 * Loads the checkpoint for `recipe` or trains it (and saves it) with `trainLeNet`, the demo's
 * training loop. `retrain` ignores an existing checkpoint.
 */
export async function obtainModel(
  recipe: Recipe, train: ImageSet, val: ImageSet, backend: Backend, opts: { retrain: boolean; log: (s: string) => void },
): Promise<TrainedModel> {
  if (!opts.retrain) {
    const cached = await loadCached(recipe, backend, opts.log);
    if (cached) return cached;
  }
  const path = recipePath(recipe);
  const model = freshLeNet(recipe.initSeed, recipe.dropout);
  const t0 = performance.now();
  const { history } = await trainLeNet(model, train, val, {
    epochs: recipe.epochs, batchSize: recipe.batchSize, lr: recipe.lr, seed: recipe.dataSeed, augment: recipe.augment, backend, log: opts.log,
  });
  const seconds = (performance.now() - t0) / 1000;
  model.eval();
  await saveCheckpoint(path, model, stableJson(recipe), { seconds, history });
  return { model, recipe, path, cached: false, trainSeconds: seconds, history };
}

// ---------------------------------------------------------------------------------------------
// the recipe comparison (examples/eval-recipes.ts): named recipes, trained by examples/train-recipes.ts

/** A named training recipe of the comparison; the checkpoint is keyed by (spec, seed, code). */
export interface RecipeSpec {
  /** Key in results.json: `recipes.<id>.*`. */
  id: string;
  /** One line for the report. */
  label: string;
  dropout: number;
  epochs: number;
  batchSize: number;
  optimizer: 'sgd' | 'adam';
  lr: number;
  momentum: number;
  /** L2 weight decay (omitted = 0; omitted from the checkpoint key, so older keys stay valid). */
  weightDecay?: number;
  augment: { maxShift: number; maxRotate?: number; maxScale?: number } | null;
}

/**
 * The recipes compared by the eval:
 * - `plain`: SGD lr 0.05, momentum 0.9, cosine decay, 10 epochs, no augmentation, dropout 0.5;
 * - `augmented`: the demo's recipe (Adam 2e-3, cosine, 12 epochs, dropout 0.3, random affine
 *   augmentation ±12°, ±10% scale, ±2 px) — trained by `trainLeNet` and shared with the rest of
 *   the eval (`baseRecipe`), so its seed-0 checkpoint is the eval's single model;
 * - `shift`: plain SGD as `plain` but 15 epochs and ±2 px shifts only (a middle ground: the
 *   geometric augmentation that the rotated/scaled variants lack).
 * - `decay`: SGD as `plain` with L2 weight decay 5e-4, 30 epochs, ±2 px shifts and no dropout —
 *   the kind of recipe OpenOOD trains its LeNet with (SGD + weight decay, a long schedule). On
 *   this split it is the most accurate recipe and the one whose logit scores (max-logit, energy)
 *   separate Fashion-MNIST best (README, "Measured").
 * - `decay-affine`: `decay` with the `augmented` recipe's random affine augmentation (±12°,
 *   ±10% scale, ±2 px): the most accurate recipe of the comparison, and with weight decay the
 *   augmentation no longer costs OOD separation (README, "Measured").
 */
export const RECIPES: RecipeSpec[] = [
  { id: 'plain', label: 'SGD 0.05 (momentum 0.9, cosine), 10 epochs, no augmentation, dropout 0.5', dropout: 0.5, epochs: 10, batchSize: 64, optimizer: 'sgd', lr: 0.05, momentum: 0.9, augment: null },
  { id: 'augmented', label: 'Adam 2e-3 (cosine), 12 epochs, random affine ±12° / ±10% / ±2 px, dropout 0.3', dropout: 0.3, epochs: 12, batchSize: 64, optimizer: 'adam', lr: 2e-3, momentum: 0, augment: { maxShift: 2, maxRotate: 12, maxScale: 0.1 } },
  { id: 'shift', label: 'SGD 0.05 (momentum 0.9, cosine), 15 epochs, ±2 px shifts, dropout 0.5', dropout: 0.5, epochs: 15, batchSize: 64, optimizer: 'sgd', lr: 0.05, momentum: 0.9, augment: { maxShift: 2 } },
  { id: 'decay', label: 'SGD 0.05 (momentum 0.9, cosine), weight decay 5e-4, 30 epochs, ±2 px shifts, no dropout', dropout: 0, epochs: 30, batchSize: 64, optimizer: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 5e-4, augment: { maxShift: 2 } },
  { id: 'decay-affine', label: 'SGD 0.05 (momentum 0.9, cosine), weight decay 5e-4, 30 epochs, random affine ±12° / ±10% / ±2 px, no dropout', dropout: 0, epochs: 30, batchSize: 64, optimizer: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 5e-4, augment: { maxShift: 2, maxRotate: 12, maxScale: 0.1 } },
];

function recipeCode(): string {
  const file = resolve('examples', 'train-recipes.ts');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : trainRecipe.toString();
  const base = resolve('examples', 'mnist-training.ts');
  return createHash('sha256').update(`recipe\n${text}\n${existsSync(base) ? readFileSync(base, 'utf8') : ''}`).digest('hex').slice(0, 12);
}

/**
 * Loads or trains the model of `spec` with training seed `seed` (init and data order). The
 * `augmented` recipe is the eval's `baseRecipe` (the same checkpoints as the ood group's single
 * model); the others train with `trainRecipe`.
 */
export async function obtainRecipeModel(
  spec: RecipeSpec, seed: number, train: ImageSet, val: ImageSet, backend: Backend, opts: { retrain: boolean; log: (s: string) => void },
): Promise<TrainedModel> {
  if (spec.id === 'augmented') return obtainModel(baseRecipe(spec.epochs, seed), train, val, backend, opts);
  const key = { kind: 'recipe-v1', spec, seed, split: MNIST_SPLIT, code: recipeCode() };
  const path = join(checkpointDir(), `lenet5-${spec.id}-${createHash('sha256').update(stableJson(key)).digest('hex').slice(0, 16)}.safetensors`);
  const recipe: Recipe = { ...baseRecipe(spec.epochs, seed), dropout: spec.dropout, lr: spec.lr, batchSize: spec.batchSize, code: key.code };
  if (!opts.retrain) {
    const cached = await loadCheckpoint(path, stableJson(key), () => freshLeNet(seed, spec.dropout), backend, opts.log);
    if (cached) return { ...cached, recipe, path, cached: true };
  }
  const model = freshLeNet(seed, spec.dropout);
  const t0 = performance.now();
  const { history } = await trainRecipe(model, train, val, { ...spec, seed, backend, log: opts.log });
  const seconds = (performance.now() - t0) / 1000;
  model.eval();
  await saveCheckpoint(path, model, stableJson(key), { seconds, history });
  return { model, recipe, path, cached: false, trainSeconds: seconds, history };
}
