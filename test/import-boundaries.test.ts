// The import boundaries (CONTRIBUTING.md, "Layout") hold on this tree, and the check that
// enforces them (scripts/check-imports.mjs, also a CI stage) catches each kind of violation.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const script = join(import.meta.dirname, '..', 'scripts', 'check-imports.mjs');
const run = (...args: string[]) => spawnSync(process.execPath, [script, ...args], { encoding: 'utf8' });

const tmp = mkdtempSync(join(tmpdir(), 'dubito-imports-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A tiny tree: the given files (path → source) plus a clean skeleton. */
function tree(name: string, files: Record<string, string>): string {
  const root = join(tmp, name);
  const all: Record<string, string> = {
    'index.ts': "export * from './engine/index.js';\nexport * from './nn/index.js';\n",
    'node.ts': "import './platform/node-webgpu.js';\nexport * from './index.js';\n",
    'engine/index.ts': "export { Tensor } from './tensor.js';\n",
    'engine/tensor.ts': 'export class Tensor {}\n',
    'nn/index.ts': "import { Tensor } from '../engine/index.js';\nexport const t = Tensor;\n",
    'platform/node-webgpu.ts': 'export {};\n',
    'examples/demo.ts': "import { t } from '../node.js';\nimport { helper } from './helper.js';\nexport { t, helper };\n",
    'examples/helper.ts': 'export const helper = 1;\n',
    ...files,
  };
  for (const [path, text] of Object.entries(all)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe('import boundaries', () => {
  it('this repository crosses none', () => {
    const r = run();
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/0 boundary violation/);
    expect(r.status).toBe(0);
  });

  it('a clean synthetic tree passes', () => {
    const r = run('--root', tree('clean', {}));
    expect(r.stdout).toMatch(/0 boundary violation/);
    expect(r.status).toBe(0);
  });

  const cases: [string, Record<string, string>, RegExp][] = [
    ['a deep engine import from nn/', { 'nn/layer.ts': "import { Tensor } from '../engine/tensor.js';\nexport { Tensor };\n" }, /nn\/layer\.ts:1: '\.\.\/engine\/tensor\.js' → engine\/tensor\.ts: deep import/],
    ['a type-only deep import from uncertainty/', { 'uncertainty/score.ts': "import type { Tensor } from '../engine/tensor.js';\nexport type T = Tensor;\n" }, /uncertainty\/score\.ts:1: .*deep import/],
    ['a multi-line deep import from explain/', { 'explain/saliency.ts': "import {\n  Tensor,\n} from '../engine/tensor.js';\nexport { Tensor };\n" }, /explain\/saliency\.ts:3: .*deep import/],
    ['a re-export from an engine internal', { 'nn/more.ts': "export * from '../engine/tensor.js';\n" }, /nn\/more\.ts:1: .*deep import/],
    ['a dynamic deep import', { 'nn/lazy.ts': "export const m = () => import('../engine/tensor.js');\n" }, /nn\/lazy\.ts:1: .*deep import/],
    ['an example reaching past the entry points', { 'examples/deep.ts': "import { t } from '../nn/index.js';\nexport { t };\n" }, /examples\/deep\.ts:1: .*entry points/],
    ['the engine importing nn/', { 'engine/bad.ts': "import { t } from '../nn/index.js';\nexport { t };\n" }, /engine\/bad\.ts:1: .*must not depend on nn\//],
    ['the engine importing the package entry', { 'engine/bad.ts': "export * from '../index.js';\n" }, /engine\/bad\.ts:1: .*must not depend on index\.ts/],
    ['nn/ importing uncertainty/', { 'nn/bad.ts': "import { u } from '../uncertainty/index.js';\nexport { u };\n", 'uncertainty/index.ts': 'export const u = 1;\n' }, /nn\/bad\.ts:1: .*nn\/ must not depend on uncertainty\//],
    ['browser-facing code importing platform/', { 'nn/io.ts': "import '../platform/node-webgpu.js';\n" }, /nn\/io\.ts:1: .*platform\/ \(Node-only\) is imported only by node\.ts/],
  ];
  for (const [what, files, message] of cases) {
    it(`fails on ${what}`, () => {
      const r = run('--root', tree(what.replace(/\W+/g, '-'), files));
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toMatch(/1 boundary violation/);
    });
  }

  it('--cycles: no runtime import cycle goes through engine/tensor.ts (the Tensor methods are attached from the ops side)', () => {
    const r = run('--cycles');
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n');
    const start = lines.findIndex((l) => l.startsWith('import cycles (runtime imports)'));
    const end = lines.findIndex((l, i) => i > start && l.startsWith('import cycles ('));
    expect(start).toBeGreaterThanOrEqual(0);
    expect(end).toBeGreaterThan(start);
    for (const c of lines.slice(start + 1, end)) expect(c).not.toMatch(/engine\/tensor\.ts/);
  });

  it('--cycles reports a cycle it is given', () => {
    const root = tree('cycle', {
      'engine/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
      'engine/b.ts': "import { a } from './a.js';\nexport const b = () => a;\n",
    });
    const r = run('--root', root, '--cycles');
    expect(r.stdout).toMatch(/runtime imports\): 1 strongly connected component\(s\), the largest has 2 files/);
    expect(r.stdout).toMatch(/2 files: engine\/a\.ts engine\/b\.ts/);
  });
});
