#!/usr/bin/env node
// Checks the package the way a user gets it (run `npm run build` first):
//   1. `npm pack` → the tarball is complete and minimal: LICENSE, README.md, package.json,
//      docs/methods.md and dist/ only; every path in `files` and in `exports` exists; every relative import of a
//      shipped .js / .d.ts file resolves to a shipped file (with an explicit extension).
//   2. A fresh consumer project (in a temp dir, nothing from this repo on its paths) runs
//      `npm install <tarball>` (from the npm cache when possible: --prefer-offline).
//   3. Node: `import ... from 'dubito'` and a tiny op on the CPU backend.
//   4. Types: `tsc` type-checks a consumer file importing 'dubito' and 'dubito/browser' with
//      skipLibCheck false, no typeRoots and no @types of this repo, once per moduleResolution
//      node16, nodenext and bundler. (tsc itself is this repo's compiler; it is only the tool.)
//   5. Browser: esbuild bundles a consumer entry for the browser; the bundle must come from
//      dist/browser (the `browser` condition) and contain no Node built-in or `webgpu` import.
// Exit status non-zero on the first failure, with the command's output.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(join(tmpdir(), 'dubito-pkg-'));
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR || '/tmp', npm_config_fund: 'false', npm_config_audit: 'false', npm_config_update_notifier: 'false' };
const run = (args, what, cwd) => {
  const r = spawnSync(args[0], args.slice(1), { cwd, encoding: 'utf8', env, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}):\n${r.stdout}${r.stderr}${r.error ? String(r.error) : ''}`);
  return r.stdout.trim();
};
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function walk(dir, base = dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, base, out);
    else out.push(posix.normalize(p.slice(base.length + 1).split('\\').join('/')));
  }
  return out;
}

try {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  for (const f of pkg.files ?? []) {
    if (!existsSync(join(root, f))) throw new Error(`package.json "files" lists ${f}, which does not exist (run npm run build first?)`);
  }

  // 1. Pack and inspect the tarball.
  const packDir = join(work, 'pack');
  mkdirSync(packDir);
  const packed = JSON.parse(run([npm, 'pack', '--json', '--pack-destination', packDir], 'npm pack', root));
  const tarball = join(packDir, packed[0].filename);
  const unpacked = join(work, 'unpacked');
  mkdirSync(unpacked);
  run(['tar', '-xzf', tarball, '-C', unpacked], 'tar -x');
  const pkgDir = join(unpacked, 'package');
  const shipped = new Set(walk(pkgDir));
  for (const must of ['LICENSE', 'README.md', 'package.json']) if (!shipped.has(must)) throw new Error(`the tarball lacks ${must}`);
  // docs/methods.md ships because the declarations' doc comments cite it.
  const extra = [...shipped].filter((f) => !['LICENSE', 'README.md', 'package.json', 'docs/methods.md'].includes(f) && !f.startsWith('dist/'));
  if (extra.length) throw new Error(`the tarball ships files outside dist/: ${extra.join(', ')}`);
  const exportTargets = [];
  const collectTargets = (v) => {
    if (typeof v === 'string') exportTargets.push(v);
    else if (v && typeof v === 'object') for (const x of Object.values(v)) collectTargets(x);
  };
  collectTargets(pkg.exports);
  collectTargets({ main: pkg.main, types: pkg.types });
  for (const t of exportTargets) {
    if (!shipped.has(posix.normalize(t))) throw new Error(`package.json points to ${t}, which the tarball does not contain`);
  }
  let checkedImports = 0;
  for (const f of shipped) {
    if (!/\.(d\.ts|js|mjs)$/.test(f)) continue;
    const text = readFileSync(join(pkgDir, f), 'utf8');
    const specs = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\/\/\/\s*<reference\s+path=)["']([^"']+)["']/g)].map((m) => m[1]);
    for (const spec of specs) {
      if (!spec.startsWith('.')) continue;
      checkedImports++;
      const target = posix.normalize(posix.join(posix.dirname(f), spec));
      const candidates = f.endsWith('.d.ts') ? [target.replace(/\.js$/, '.d.ts'), target] : [target];
      if (!/\.(js|mjs|d\.ts)$/.test(spec) || !candidates.some((c) => shipped.has(c))) {
        throw new Error(`${f} imports '${spec}', which is not a shipped file with an explicit extension (node16/nodenext consumers cannot resolve it)`);
      }
    }
  }
  console.log(`tarball ok: ${packed[0].filename}, ${shipped.size} files (${(packed[0].size / 1024).toFixed(0)} KiB packed), ${checkedImports} relative imports resolve inside it`);

  // 2. A fresh consumer installs the tarball.
  const app = join(work, 'consumer');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'module', private: true }));
  run([npm, 'install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock', tarball], 'npm install <tarball>', app);
  if (!existsSync(join(app, 'node_modules/dubito/dist/node/index.js'))) throw new Error('npm install did not install dubito');

  // 3. Node: import and run.
  writeFileSync(join(app, 'use.mjs'), `
import { init, tensor, shutdown } from 'dubito';
const be = await init({ backend: 'cpu' });
const y = tensor([1, 2, 3]).mul(2).sum();
console.log('node import ok:', await y.item(), be.name, be.adapterInfo.description);
shutdown();
`);
  const out = run([process.execPath, 'use.mjs'], 'node import of dubito', app);
  if (!/node import ok: 12 cpu/.test(out)) throw new Error(`unexpected output of the Node consumer: ${out}`);
  console.log(out);
  const resolveFile = (extra) =>
    run([process.execPath, ...extra, '--input-type=module', '-e', "import { fileURLToPath } from 'node:url'; console.log(fileURLToPath(import.meta.resolve('dubito/browser')), fileURLToPath(import.meta.resolve('dubito')));"], 'resolve dubito', app).split(' ');
  const [browserPath] = resolveFile([]);
  const [, viaCondition] = resolveFile(['--conditions=browser']);
  for (const p of [browserPath, viaCondition]) if (!p.endsWith('dist/browser/dubito.js')) throw new Error(`browser entry resolved to ${p}`);
  console.log('browser entry ok: dubito/browser and the browser condition resolve to dist/browser/dubito.js');

  // 4. Types, without skipLibCheck, for each moduleResolution.
  writeFileSync(join(app, 'use.ts'), `
import { init, tensor, intTensor, shutdown, tidy, ShapeError, AllocationError, type Tensor, type WebGPUBackend } from 'dubito';
import * as browser from 'dubito/browser';
export async function main(): Promise<string> {
  const be = await init({ backend: 'cpu' });
  const vendor: string = be.adapterInfo.vendor; // no cast needed
  const t: Tensor = tidy(() => tensor([1, 2]).add(intTensor([1, 2]).cast('float32')));
  const e: ShapeError | AllocationError | null = null;
  const f: typeof browser.matmul = browser.matmul;
  const gpu: WebGPUBackend | null = be.name === 'webgpu' ? be : null;
  shutdown();
  return \`\${vendor} \${t.shape} \${e} \${typeof f} \${gpu}\`;
}
`);
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  for (const [mod, res] of [['node16', 'node16'], ['nodenext', 'nodenext'], ['esnext', 'bundler']]) {
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { module: mod, moduleResolution: res, target: 'es2022', strict: true, noEmit: true, skipLibCheck: false },
      files: ['use.ts'],
    }, null, 2));
    run([process.execPath, tsc, '-p', '.'], `tsc (moduleResolution ${res}, skipLibCheck false)`, app);
    console.log(`types ok: moduleResolution ${res}, skipLibCheck false`);
  }

  // 5. Browser bundle through esbuild.
  writeFileSync(join(app, 'app.js'), `
import { init, tensor } from 'dubito';
const be = await init({ backend: 'cpu' });
console.log(be.name, await tensor([1, 2]).sum().item());
`);
  const { build } = await import(pathToFileURL(join(root, 'node_modules/esbuild/lib/main.js')).href);
  const res = await build({ absWorkingDir: app, entryPoints: ['app.js'], bundle: true, platform: 'browser', format: 'esm', target: 'es2022', write: false, metafile: true, logLevel: 'silent' });
  const inputs = Object.keys(res.metafile.inputs);
  if (!inputs.some((p) => p.endsWith('node_modules/dubito/dist/browser/dubito.js'))) throw new Error(`esbuild did not take dist/browser: inputs ${inputs.join(', ')}`);
  const text = res.outputFiles[0].text;
  if (/\bfrom\s*["'](node:|webgpu["'])/.test(text) || /(?<![\w$.])require\s*\(/.test(text)) throw new Error('the browser bundle imports a Node module');
  console.log(`browser bundle ok: esbuild bundled the consumer for the browser (${(text.length / 1024).toFixed(0)} KiB, from dist/browser)`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
