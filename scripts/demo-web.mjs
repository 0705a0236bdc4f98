#!/usr/bin/env node
// `npm run demo:web`: builds the browser demo page (web/main.ts → <out>/main.js with esbuild, the
// same browser settings and Node-module guard as the library's browser bundle) and serves web/
// plus the build with sirv (a small static-file handler) on node:http, fully offline.
//
//   node scripts/demo-web.mjs [--port 8080] [--host 127.0.0.1] [--out DIR] [--build-only]
//
// Exports buildDemo(outDir) and serveDemo({ outDir, port, host }) for test/demo-web.test.ts.
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import sirv from 'sirv';
import { buildBrowser } from './build.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const webDir = join(root, 'web');

/** Bundles web/main.ts into `outDir`/main.js with the library's browser-bundle rules (minified). */
export async function buildDemo(outDir = join(root, '.cache', 'dubito', 'web')) {
  mkdirSync(outDir, { recursive: true });
  const outfile = join(outDir, 'main.js');
  await buildBrowser(outfile, { entry: join(webDir, 'main.ts'), minify: true });
  return { outfile, bytes: statSync(outfile).size };
}

/**
 * Serves web/ (page, models, data) with /main.js from `outDir`; resolves to { url, server }.
 * Two sirv handlers (no caching: `dev`), anything else is a plain 404.
 */
export function serveDemo({ outDir = join(root, '.cache', 'dubito', 'web'), port = 8080, host = '127.0.0.1' } = {}) {
  const bundle = sirv(outDir, { dev: true });
  const page = sirv(webDir, { dev: true });
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const notFound = () => res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}`);
    (path === '/main.js' || path === '/main.js.map' ? bundle : page)(req, res, notFound);
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => ok({ url: `http://${host}:${server.address().port}/`, server }));
  });
}

async function main() {
  const argv = process.argv.slice(2);
  const opt = (name, fallback) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] ? argv[i + 1] : fallback;
  };
  const outDir = resolve(opt('out', join(root, '.cache', 'dubito', 'web')));
  const t0 = performance.now();
  const { bytes } = await buildDemo(outDir);
  console.log(`built ${join(outDir, 'main.js')} (${(bytes / 1024).toFixed(0)} KiB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  for (const f of ['models/lenet5.safetensors', 'models/ensemble5.safetensors', 'data/examples.safetensors']) {
    if (!existsSync(join(webDir, f))) throw new Error(`web/${f} is missing (node scripts/run-ts.mjs examples/web-models.ts writes it)`);
  }
  if (argv.includes('--build-only')) return;
  const { url } = await serveDemo({ outDir, port: Number(opt('port', '8080')), host: opt('host', '127.0.0.1') });
  console.log(`dubito demo page: ${url}   (Ctrl-C to stop; works offline; add ?backend=cpu for the CPU reference backend)`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
