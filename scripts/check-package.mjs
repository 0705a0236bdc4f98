#!/usr/bin/env node
// Checks the built package (run `npm run build` first) the way a user would consume it: from a
// temp project with node_modules/dubito → this repo, it
//   1. imports 'dubito' in Node (dist/node/index.js) and runs a tiny CPU computation,
//   2. resolves 'dubito/browser' and the `browser` condition to dist/browser/dubito.js,
//   3. type-checks a consumer file against dist/types through the exports map (tsc, nodenext).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(join(tmpdir(), 'dubito-pkg-'));
const run = (args, what) => {
  const r = spawnSync(args[0], args.slice(1), { cwd: dir, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR || '/tmp' } });
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  return r.stdout.trim();
};
try {
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules/dubito'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
  writeFileSync(join(dir, 'use.mjs'), `
import { init, tensor, shutdown } from 'dubito';
await init({ backend: 'cpu' });
const y = tensor([1, 2, 3]).mul(2).sum();
console.log('node import ok:', await y.item());
shutdown();
`);
  console.log(run([process.execPath, 'use.mjs'], 'node import of dubito'));
  writeFileSync(join(dir, 'resolve.mjs'), `
import { fileURLToPath } from 'node:url';
console.log(fileURLToPath(import.meta.resolve('dubito/browser')));
`);
  const browserPath = run([process.execPath, 'resolve.mjs'], "resolve 'dubito/browser'");
  if (!browserPath.endsWith('dist/browser/dubito.js')) throw new Error(`'dubito/browser' resolved to ${browserPath}`);
  const viaCondition = run([process.execPath, '--conditions=browser', 'resolve.mjs'], 'resolve with --conditions=browser');
  if (!viaCondition.endsWith('dist/browser/dubito.js')) throw new Error(`browser condition resolved to ${viaCondition}`);
  console.log(`browser entry ok: ${browserPath}`);
  writeFileSync(join(dir, 'use.ts'), `
import { init, tensor, shutdown, ShapeError, type Tensor } from 'dubito';
import * as browser from 'dubito/browser';
const t: Tensor = tensor([1, 2]);
const p: Promise<unknown> = init({ backend: 'cpu' });
const e: ShapeError | null = null;
const f: typeof browser.matmul = browser.matmul;
shutdown();
export { t, p, e, f };
`);
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: true, types: [], lib: ['es2022', 'dom'], typeRoots: [join(root, 'node_modules/@types'), join(root, 'node_modules/@webgpu')] },
    files: ['use.ts'],
  }));
  run([process.execPath, join(root, 'node_modules/typescript/bin/tsc'), '-p', '.'], 'tsc against dist/types');
  console.log('types ok: dubito and dubito/browser type-check through the exports map');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
