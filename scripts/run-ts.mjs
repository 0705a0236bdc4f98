#!/usr/bin/env node
// Runs a TypeScript entry point: bundles it with esbuild (platform node, WGSL as text, npm
// packages external, source maps) into .cache/run/ and runs it with node, forwarding the
// arguments, stdio and exit code.
// Usage: node scripts/run-ts.mjs <entry.ts> [args...]
import { build } from 'esbuild';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const [entryArg, ...args] = process.argv.slice(2);
if (!entryArg) {
  console.error('usage: node scripts/run-ts.mjs <entry.ts> [args...]');
  process.exit(2);
}
const entry = resolve(entryArg);
if (!existsSync(entry)) {
  console.error(`run-ts: ${entryArg} does not exist`);
  process.exit(2);
}

// One output file per entry (path-derived name), so several entries can be cached side by side.
const outDir = join(root, '.cache/run');
mkdirSync(outDir, { recursive: true });
const id = relative(root, entry).replace(/\.[cm]?tsx?$/, '').replace(/[^\w.-]+/g, '_') || basename(entry);
const outfile = join(outDir, `${id}.mjs`);

try {
  await build({
    absWorkingDir: root,
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    loader: { '.wgsl': 'text' },
    packages: 'external',
    sourcemap: 'linked',
    logLevel: 'error',
  });
} catch {
  // esbuild already printed the errors.
  process.exit(1);
}

const child = spawn(process.execPath, ['--enable-source-maps', outfile, ...args], {
  stdio: 'inherit',
  env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR || '/tmp' },
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => {
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
