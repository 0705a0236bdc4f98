#!/usr/bin/env node
// Checks the import boundaries of the source tree (CONTRIBUTING.md, "Layout"):
//   1. nn/, uncertainty/ and explain/ reach the engine only through engine/index.ts (its public API);
//   2. examples/ and bench/ use only the package's entry points (index.ts, node.ts), their own files
//      and cli/ (terminal plumbing they share: the progress display); cli/ itself imports no
//      repository file but the entry points;
//   3. engine/ never imports nn/, uncertainty/, explain/, platform/ or the package entry points;
//   4. nn/ never imports uncertainty/ or explain/ (the toolkit builds on nn, not the other way round);
//   5. platform/ (Node-only code) is imported only by node.ts and by platform/ itself, so nothing
//      the browser bundle contains can reach it.
// Every import form counts: `import`, `import type`, `export ... from`, side-effect imports and
// dynamic `import('...')` with a literal path. test/ and scripts/ are not checked (tests reach into
// internals on purpose).
//
// `node scripts/check-imports.mjs --cycles` also prints the strongly connected components of the
// runtime import graph (type-only imports left out, as they vanish when compiled), largest first.
// `--root DIR` checks another tree (the tests use it on a synthetic one).
// Exit status: 1 if any boundary is crossed, 0 otherwise.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const rootArg = process.argv.indexOf('--root');
const root = rootArg > 0 ? resolve(process.argv[rootArg + 1]) : resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE_DIRS = ['engine', 'nn', 'uncertainty', 'explain', 'platform', 'examples', 'bench', 'cli'];
const ENTRY_POINTS = ['index.ts', 'node.ts'];

const rel = (abs) => relative(root, abs).split(sep).join('/');
const top = (file) => (file.includes('/') ? file.slice(0, file.indexOf('/')) : file);

function walk(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The repository files a module imports: { target, typeOnly, line }. Packages and builtins are left out. */
function importsOf(abs) {
  const text = readFileSync(abs, 'utf8');
  const found = [];
  const lineAt = (i) => text.slice(0, i).split('\n').length;
  const patterns = [
    // import x from '...', import { a } from '...', import type { T } from '...', export * from '...'
    /(?:^|[\n;])\s*(import|export)\s+(type\s+)?([^'";]*?)\s+from\s+['"]([^'"]+)['"]/g,
    // import '...' (side effect)
    /(?:^|[\n;])\s*import\s+['"]([^'"]+)['"]/g,
    // import('...')
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const [k, re] of patterns.entries()) {
    for (const m of text.matchAll(re)) {
      const spec = k === 0 ? m[4] : m[1];
      if (!spec.startsWith('.')) continue;
      let typeOnly = false;
      if (k === 0) {
        const clause = m[3].trim();
        // `import type {...}`, or every named binding marked `type`
        typeOnly = Boolean(m[2]) || (/^\{[^}]*\}$/.test(clause) && clause.slice(1, -1).split(',').map((s) => s.trim()).filter(Boolean).every((s) => s.startsWith('type ')));
      }
      found.push({ spec, typeOnly, line: lineAt(m.index + m[0].indexOf(spec)) });
    }
  }
  const out = [];
  for (const f of found) {
    let target = resolve(dirname(abs), f.spec);
    if (target.endsWith('.js')) target = target.slice(0, -3) + '.ts';
    else if (!/\.[a-z]+$/.test(target)) target += existsSync(target + '.ts') ? '.ts' : '/index.ts';
    if (!target.endsWith('.ts')) continue; // .wgsl text, .json
    out.push({ target: rel(target), typeOnly: f.typeOnly, line: f.line, spec: f.spec });
  }
  return out;
}

const files = [...ENTRY_POINTS.map((f) => join(root, f)).filter(existsSync), ...SOURCE_DIRS.flatMap((d) => walk(join(root, d), []))];
const graph = new Map(files.map((abs) => [rel(abs), importsOf(abs)]));

/** The reason an import of `target` by `file` crosses a boundary, or null. */
function violation(file, target) {
  const from = top(file);
  const to = top(target);
  if (['nn', 'uncertainty', 'explain'].includes(from) && to === 'engine' && target !== 'engine/index.ts') {
    return 'deep import into the engine (import from engine/index.ts, exporting what is needed there)';
  }
  if ((from === 'examples' || from === 'bench') && to !== from && to !== 'cli' && !ENTRY_POINTS.includes(target)) {
    return `${from}/ uses only the package entry points (../index.js, ../node.js) and cli/`;
  }
  if (from === 'cli' && to !== 'cli' && !ENTRY_POINTS.includes(target)) {
    return 'cli/ imports only the package entry points';
  }
  if (from === 'engine' && (['nn', 'uncertainty', 'explain', 'platform'].includes(to) || ENTRY_POINTS.includes(target))) {
    return `the engine must not depend on ${to === target ? target : to + '/'}`;
  }
  if (from === 'nn' && (to === 'uncertainty' || to === 'explain')) return `nn/ must not depend on ${to}/`;
  if (to === 'platform' && file !== 'node.ts' && from !== 'platform') {
    return 'platform/ (Node-only) is imported only by node.ts';
  }
  return null;
}

const problems = [];
for (const [file, deps] of graph) {
  for (const d of deps) {
    const why = violation(file, d.target);
    if (why) problems.push(`${file}:${d.line}: '${d.spec}' → ${d.target}: ${why}`);
  }
}

/** Tarjan's strongly connected components (of more than one file) of `deps`, largest first. */
function cycles(deps) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const sccs = [];
  const strong = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of deps.get(v)) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const c = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1) sccs.push(c.sort());
    }
  };
  for (const v of deps.keys()) if (!idx.has(v)) strong(v);
  return sccs.sort((a, b) => b.length - a.length);
}

if (process.argv.includes('--cycles')) {
  for (const [label, keep] of [['runtime imports', (d) => !d.typeOnly], ['all imports, type-only included', () => true]]) {
    const sccs = cycles(new Map([...graph].map(([f, ds]) => [f, ds.filter((d) => keep(d) && graph.has(d.target)).map((d) => d.target)])));
    console.log(`import cycles (${label}): ${sccs.length} strongly connected component(s)${sccs.length ? `, the largest has ${sccs[0].length} files` : ''}`);
    for (const c of sccs) console.log(`  ${c.length} files: ${c.join(' ')}`);
  }
}

for (const p of problems) console.error(p);
console.log(`imports: ${graph.size} files checked, ${problems.length} boundary violation(s)`);
process.exit(problems.length ? 1 : 0);
