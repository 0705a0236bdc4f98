// No dangling references: code, tests, bench and docs cite the repository's own documents
// (docs/methods.md, README.md sections, ...), never files outside it, and package.json `files`
// lists only paths that exist in the repository or that the build creates.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const DIRS = ['engine', 'kernels', 'nn', 'uncertainty', 'explain', 'platform', 'examples', 'bench', 'test', 'scripts', 'docs', '.ci'];
const TOP = ['index.ts', 'node.ts', 'README.md', 'CONTRIBUTING.md', 'package.json'];

function walk(dir: string, out: string[]): string[] {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'node_modules' || name === 'fixtures' || name === 'results') continue;
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.(ts|mjs|js|md|wgsl|json|html|sh)$/.test(name) || name === 'run') out.push(p);
  }
  return out;
}

const files = [...TOP.map((f) => join(root, f)), ...DIRS.flatMap((d) => walk(join(root, d), []))];
const self = join(root, 'test', 'references.test.ts');

describe('references', () => {
  it('no file cites documents outside the repository (METHODS.md, PLATFORM.md, DESIGN.md, shared/)', () => {
    const bad: string[] = [];
    for (const f of files) {
      if (f === self) continue;
      readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
        if (/\b(METHODS|PLATFORM|DESIGN)\.md\b|(^|[\s('"`])(\.\.\/)*shared\/[A-Za-z]/.test(line)) bad.push(`${relative(root, f)}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(bad).toEqual([]);
  });

  it('every docs/*.md that a file cites exists', () => {
    const missing: string[] = [];
    for (const f of files) {
      for (const m of readFileSync(f, 'utf8').matchAll(/\bdocs\/[\w.-]+\.md\b/g)) {
        if (!existsSync(join(root, m[0]))) missing.push(`${relative(root, f)}: ${m[0]}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('package.json `files` lists only what exists or the build creates (dist/)', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[] };
    const bad = pkg.files.filter((f) => !f.startsWith('dist/') && !existsSync(join(root, f)));
    expect(bad).toEqual([]);
    const build = readFileSync(join(root, 'scripts', 'build.mjs'), 'utf8');
    for (const f of pkg.files.filter((p) => p.startsWith('dist/'))) expect(build, `scripts/build.mjs writes ${f}`).toContain(f);
  });
});
