/**
 * The browser bundle in a real browser: builds dist-style `dubito.js` (scripts/build.mjs) into a
 * temp dir, serves it with test/browser/ from a local node:http server, opens it in Debian's
 * Chromium (headless, WebGPU on lavapipe) through playwright-core, and checks y = Σ tanh(A·B)
 * and its gradients against values derived by hand in float64 here.
 *
 * Chromium: /usr/bin/chromium (or $CHROMIUM_PATH). Missing → fails under CI, skipped locally.
 * playwright-core never downloads a browser; we only ever pass it an executablePath.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchChromium } from './helpers/chromium.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pageDir = join(root, 'test/browser');
let tmp = '';
let bundle = '';
let server: Server | undefined;
let baseUrl = '';
let browser: Browser | undefined;

function serve(): Promise<string> {
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.map': 'application/json' };
  const files: Record<string, string> = {
    '/': join(pageDir, 'index.html'),
    '/index.html': join(pageDir, 'index.html'),
    '/main.js': join(pageDir, 'main.js'),
    '/dubito.js': bundle,
    '/dubito.js.map': `${bundle}.map`,
  };
  server = createServer((req, res) => {
    const file = files[new URL(req.url ?? '/', 'http://x').pathname];
    if (!file || !existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(readFileSync(file));
  });
  return new Promise((ok, fail) => {
    server!.once('error', fail);
    server!.listen(0, '127.0.0.1', () => ok(`http://127.0.0.1:${(server!.address() as AddressInfo).port}`));
  });
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'dubito-browser-'));
  bundle = join(tmp, 'dubito.js');
  // Same code path as `npm run build` (including its Node-module guard), into a private dir so
  // that concurrent test runs never race on dist/.
  const r = spawnSync(process.execPath, [join(root, 'scripts/build.mjs'), '--browser', '--out-browser', bundle], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`browser build failed:\n${r.stdout}\n${r.stderr}`);
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('browser bundle', () => {
  it('has no require( or node: imports and no Node-only modules', () => {
    const text = readFileSync(bundle, 'utf8');
    expect(text).not.toMatch(/(?<![\w$.])require\s*\(/);
    expect(text).not.toMatch(/["']node:[\w/]*["']/);
    expect(text).not.toMatch(/from\s*["'](?:webgpu|fs|path|os|child_process|module|url)["']/);
    expect(text).toMatch(/export\s*\{/); // an ES module
  });

  it('runs matmul + backward on WebGPU in headless Chromium', { timeout: 180_000 }, async (ctx) => {
    browser = await launchChromium(ctx, 'the browser test');
    baseUrl = await serve();
    const page = await browser.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await page.goto(`${baseUrl}/index.html`);
    try {
      await page.waitForFunction(() => (window as unknown as { dubitoReady?: boolean }).dubitoReady === true, undefined, { timeout: 30_000 });
    } catch (e) {
      throw new Error(`page did not load the bundle: ${e}\n${logs.join('\n')}`);
    }

    // A: 5x7, B: 7x3 (not multiples of any tile size), deterministic values in about [-0.9, 0.9].
    const m = 5, k = 7, n = 3;
    const a = Array.from({ length: m * k }, (_, i) => Math.sin(1.3 * i + 0.2) * 0.9);
    const b = Array.from({ length: k * n }, (_, i) => Math.cos(0.7 * i - 0.4) * 0.8);
    const input = { a, b, m, k, n };
    type CaseResult = {
      error?: string; backend: string; adapterInfo: { vendor: string; architecture: string; description: string };
      y: number; dA: number[]; dB: number[]; vgY: number; vgdA: number[]; vgdB: number[];
      shapeError: string; leakedTensors: number; memory: { backend: string; liveTensors: number };
    };
    let r: CaseResult;
    try {
      r = await page.evaluate(
        (inp) => (window as unknown as { runDubitoCase: (x: typeof inp) => Promise<CaseResult> }).runDubitoCase(inp),
        input,
      );
    } catch (e) {
      throw new Error(`runDubitoCase threw: ${e}\n${logs.join('\n')}`);
    }
    expect(r.error, logs.join('\n')).toBeUndefined();
    console.log(`[browser] adapter ${JSON.stringify(r.adapterInfo)}; memory ${JSON.stringify(r.memory)}`);
    expect(r.backend).toBe('webgpu');

    // Hand-derived reference in float64: Z = A·B, y = Σ tanh(Z), G = 1 - tanh(Z)², dA = G·Bᵀ, dB = Aᵀ·G.
    const G: number[] = [];
    let y = 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let z = 0;
        for (let p = 0; p < k; p++) z += a[i * k + p] * b[p * n + j];
        const t = Math.tanh(z);
        y += t;
        G.push(1 - t * t);
      }
    }
    const dA = Array.from({ length: m * k }, (_, idx) => {
      const i = Math.floor(idx / k), p = idx % k;
      let s = 0;
      for (let j = 0; j < n; j++) s += G[i * n + j] * b[p * n + j];
      return s;
    });
    const dB = Array.from({ length: k * n }, (_, idx) => {
      const p = Math.floor(idx / n), j = idx % n;
      let s = 0;
      for (let i = 0; i < m; i++) s += a[i * k + p] * G[i * n + j];
      return s;
    });

    const close = (got: number[], want: number[], what: string) => {
      expect(got.length, what).toBe(want.length);
      const err = Math.max(...got.map((g, i) => Math.abs(g - want[i]) / Math.max(1, Math.abs(want[i]))));
      expect(err, `${what}: max rel err ${err}\n got ${got}\nwant ${want}`).toBeLessThan(1e-5);
    };
    close([r.y], [y], 'y');
    close(r.dA, dA, 'dA');
    close(r.dB, dB, 'dB');
    close([r.vgY], [y], 'valueAndGrad value');
    close(r.vgdA, dA, 'valueAndGrad dA');
    close(r.vgdB, dB, 'valueAndGrad dB');
    expect(r.shapeError).toMatch(/^ShapeError: matmul/);
    expect(r.leakedTensors).toBe(0);
    expect(logs.filter((l) => l.startsWith('pageerror'))).toEqual([]);
  });
});
