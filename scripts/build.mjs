#!/usr/bin/env node
// Builds the distributable package with esbuild and tsc:
//   dist/browser/dubito.js  browser ESM bundle of index.ts (WGSL inlined, no Node built-ins)
//   dist/node/index.js      Node ESM bundle of node.ts (npm dependencies, incl. `webgpu`, external)
//   dist/types/**.d.ts      declarations (tsc --emitDeclarationOnly)
//
// Usage: node scripts/build.mjs [--browser] [--node] [--types] [--out-browser FILE]
//   With no target flag all three are built. `--out-browser` writes the browser bundle elsewhere
//   (the browser test uses it to build into a temp dir without touching dist/).
// The browser build FAILS if a Node-only module (node:*, a Node built-in, `webgpu`, platform/)
// is reachable from index.ts, or if the output contains `require(` or a `node:` import.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const rel = (p) => relative(root, p) || '.';

/** Modules that must never reach the browser bundle. */
const nodeOnly = new Set([...builtinModules, 'webgpu']);

const noNodeModules = {
  name: 'no-node-modules',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      const spec = args.path;
      const bare = spec.startsWith('node:') ? spec.slice(5) : spec;
      const top = bare.split('/')[0];
      if (spec.startsWith('node:') || nodeOnly.has(bare) || nodeOnly.has(top)) {
        return { errors: [{ text: `Node-only module "${spec}" imported by ${rel(args.importer)}: the browser entry (index.ts) must stay free of Node modules` }] };
      }
      if (/[\\/]platform[\\/]/.test(resolve(args.resolveDir, spec)) && spec.startsWith('.')) {
        return { errors: [{ text: `"${spec}" (platform/, Node-only) imported by ${rel(args.importer)} into the browser bundle` }] };
      }
      return undefined;
    });
  },
};

/** Throws if the browser bundle text contains CommonJS `require(` or `node:` imports. */
export function checkBrowserBundle(file) {
  const text = readFileSync(file, 'utf8');
  const problems = [];
  const req = text.match(/(?<![\w$.])require\s*\(/);
  if (req) problems.push(`contains \`require(\` at offset ${req.index}`);
  const nodeImport = text.match(/\b(?:from|import)\s*\(?\s*["']node:[^"']*["']/);
  if (nodeImport) problems.push(`imports a Node built-in (${nodeImport[0]})`);
  if (problems.length) throw new Error(`browser bundle ${rel(file)}: ${problems.join('; ')}`);
  return text.length;
}

/**
 * The browser ESM bundle (no Node modules: the plugin, the input check and the text check all
 * enforce it). `entry` / `minify` serve the demo page (scripts/demo-web.mjs) with the same rules.
 */
export async function buildBrowser(outfile = join(root, 'dist/browser/dubito.js'), { entry = 'index.ts', minify = false } = {}) {
  const res = await build({
    absWorkingDir: root,
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    loader: { '.wgsl': 'text' },
    sourcemap: true,
    metafile: true,
    minify,
    logLevel: 'warning',
    plugins: [noNodeModules],
  });
  const bad = Object.keys(res.metafile.inputs).filter((p) => /(^|\/)(platform\/|node_modules\/webgpu\/)/.test(p));
  if (bad.length) throw new Error(`browser bundle ${rel(outfile)} pulls in Node-only inputs: ${bad.join(', ')}`);
  const size = checkBrowserBundle(outfile);
  return { outfile, size, inputs: Object.keys(res.metafile.inputs).length };
}

export async function buildNode(outfile = join(root, 'dist/node/index.js')) {
  await build({
    absWorkingDir: root,
    entryPoints: ['node.ts'],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    loader: { '.wgsl': 'text' },
    // `webgpu` (native dawn.node) and `wgsl_reflect` are dependencies: resolved at run time.
    packages: 'external',
    sourcemap: true,
    logLevel: 'warning',
  });
  const text = readFileSync(outfile, 'utf8');
  if (!/from\s*["']webgpu["']/.test(text)) throw new Error('node bundle: expected `webgpu` to stay an external import');
  return { outfile, size: text.length };
}

export function buildTypes(outDir = join(root, 'dist/types')) {
  // A throw-away tsconfig that compiles only the two entry points (and what they import).
  const cacheDir = join(root, '.cache');
  mkdirSync(cacheDir, { recursive: true });
  const cfg = join(cacheDir, 'tsconfig.types.json');
  writeFileSync(cfg, JSON.stringify({
    extends: '../tsconfig.json',
    compilerOptions: { rootDir: '..', outDir: rel(outDir) === '.' ? '..' : `../${rel(outDir)}`, declaration: true, emitDeclarationOnly: true, noEmit: false },
    files: ['../index.ts', '../node.ts', '../kernels/wgsl-types.d.ts', '../kernels/wgsl-reflect-module.d.ts'],
    include: [],
  }, null, 2));
  rmSync(outDir, { recursive: true, force: true });
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', cfg], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`tsc --emitDeclarationOnly failed (exit ${r.status})`);
  for (const f of ['index.d.ts', 'node.d.ts']) readFileSync(join(outDir, f)); // must exist
  return { outDir };
}

async function main(argv) {
  const flags = new Set(argv.filter((a) => a.startsWith('--')));
  const outIdx = argv.indexOf('--out-browser');
  const outBrowser = outIdx >= 0 ? resolve(argv[outIdx + 1]) : undefined;
  const all = !flags.has('--browser') && !flags.has('--node') && !flags.has('--types');
  const step = async (name, fn) => {
    const t0 = performance.now();
    const r = await fn();
    const what = r.outfile ? `${rel(r.outfile)} (${(r.size / 1024).toFixed(0)} KiB)` : rel(r.outDir);
    console.log(`build ${name}: ${what} in ${((performance.now() - t0) / 1000).toFixed(2)}s`);
  };
  if (all || flags.has('--browser')) await step('browser', () => buildBrowser(outBrowser));
  if (all || flags.has('--node')) await step('node', () => buildNode());
  if (all || flags.has('--types')) await step('types', () => buildTypes());
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(`build failed: ${e instanceof Error ? e.message : e}`);
    process.exit(1);
  });
}
