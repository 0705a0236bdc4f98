/**
 * Pictures of explanations: colormaps, heatmap overlays on the input, grids, PNG files (encoded
 * by `fast-png`) and an HTML gallery page. Host-side (plain byte arrays), browser-safe: nothing
 * here touches the file system; write the returned bytes / text where you like.
 */
import { encode } from 'fast-png';
import { ArgumentError, ShapeError, type Tensor, fmtShape } from '../engine/index.js';

/** An 8-bit RGB image, row-major, `data.length = width · height · 3`. */
export interface RGBImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export type Colormap = 'jet' | 'viridis' | 'gray';

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

/** The 9-stop viridis ramp (matplotlib's, sampled at i/8), interpolated linearly. */
const VIRIDIS: readonly (readonly [number, number, number])[] = [
  [0x44, 0x01, 0x54], [0x47, 0x2d, 0x7b], [0x3b, 0x52, 0x8b], [0x2c, 0x72, 0x8e], [0x21, 0x91, 0x8c],
  [0x28, 0xae, 0x80], [0x5e, 0xc9, 0x62], [0xad, 0xdc, 0x30], [0xfd, 0xe7, 0x25],
];

/**
 * The colour of a value in [0, 1] (clipped; NaN → 0). `jet`: blue → cyan → yellow → red, the
 * classic piecewise-linear ramp r = 1.5 − |4v − 3|, g = 1.5 − |4v − 2|, b = 1.5 − |4v − 1|
 * (each clipped to [0, 1]). `viridis`: perceptually uniform dark purple → yellow.
 */
export function colormap(value: number, map: Colormap = 'jet'): [number, number, number] {
  const v = Number.isNaN(value) ? 0 : clamp01(value);
  if (map === 'gray') {
    const g = Math.round(v * 255);
    return [g, g, g];
  }
  if (map === 'jet') {
    const c = (o: number) => Math.round(255 * clamp01(1.5 - Math.abs(4 * v - o)));
    return [c(3), c(2), c(1)];
  }
  if (map === 'viridis') {
    const s = v * (VIRIDIS.length - 1);
    const i = Math.min(Math.floor(s), VIRIDIS.length - 2);
    const f = s - i;
    const a = VIRIDIS[i];
    const b = VIRIDIS[i + 1];
    return [0, 1, 2].map((k) => Math.round(a[k] + f * (b[k] - a[k]))) as [number, number, number];
  }
  throw new ArgumentError(`colormap: unknown colormap '${String(map)}' (expected jet, viridis or gray)`);
}

function checkSize(op: string, n: number, width: number, height: number, channels = 1): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ArgumentError(`${op}: width and height must be positive integers, got ${width}×${height}`);
  }
  if (n !== width * height * channels) throw new ShapeError(`${op}: ${n} values for a ${width}×${height}${channels > 1 ? `×${channels}` : ''} image`);
}

/** A map of values in [0, 1] ([H·W], row-major) as a colour image. */
export function colorize(values: ArrayLike<number>, width: number, height: number, map: Colormap = 'jet'): RGBImage {
  checkSize('colorize', values.length, width, height);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(colormap(values[i], map), 3 * i);
  return { width, height, data };
}

/**
 * An input image as RGB: `channels` = 1 (gray) or 3 (planar C×H×W, as tensors are), values mapped
 * linearly from [lo, hi] (default [0, 1]) to 0…255.
 */
export function inputImage(pixels: ArrayLike<number>, width: number, height: number, opts: { channels?: 1 | 3; range?: [number, number] } = {}): RGBImage {
  const C = opts.channels ?? 1;
  checkSize('inputImage', pixels.length, width, height, C);
  const [lo, hi] = opts.range ?? [0, 1];
  const P = width * height;
  const data = new Uint8Array(P * 3);
  for (let i = 0; i < P; i++) {
    for (let k = 0; k < 3; k++) data[3 * i + k] = Math.round(255 * clamp01((pixels[(C === 3 ? k * P : 0) + i] - lo) / (hi - lo || 1)));
  }
  return { width, height, data };
}

/** (1 − α)·base + α·top, pixel by pixel (same size). */
export function blend(base: RGBImage, top: RGBImage, alpha = 0.5): RGBImage {
  if (base.width !== top.width || base.height !== top.height) {
    throw new ShapeError(`blend: images differ in size (${base.width}×${base.height} vs ${top.width}×${top.height})`);
  }
  const data = new Uint8Array(base.data.length);
  for (let i = 0; i < data.length; i++) data[i] = Math.round((1 - alpha) * base.data[i] + alpha * top.data[i]);
  return { width: base.width, height: base.height, data };
}

/** Nearest-neighbour enlargement by an integer factor (small images such as MNIST stay crisp). */
export function scaleNearest(img: RGBImage, factor: number): RGBImage {
  if (!Number.isInteger(factor) || factor < 1) throw new ArgumentError(`scaleNearest: factor must be a positive integer, got ${factor}`);
  if (factor === 1) return img;
  const width = img.width * factor;
  const height = img.height * factor;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const sy = Math.floor(y / factor);
    for (let x = 0; x < width; x++) {
      const s = 3 * (sy * img.width + Math.floor(x / factor));
      data.set(img.data.subarray(s, s + 3), 3 * (y * width + x));
    }
  }
  return { width, height, data };
}

/** Images laid out in a grid, `columns` per row, separated by `padding` pixels of `background`. */
export function imageGrid(images: readonly RGBImage[], opts: { columns?: number; padding?: number; background?: [number, number, number] } = {}): RGBImage {
  if (!images.length) throw new ArgumentError('imageGrid: no images');
  const cols = Math.min(opts.columns ?? Math.ceil(Math.sqrt(images.length)), images.length);
  if (!Number.isInteger(cols) || cols < 1) throw new ArgumentError(`imageGrid: columns must be a positive integer, got ${opts.columns}`);
  const pad = opts.padding ?? 2;
  const bg = opts.background ?? [255, 255, 255];
  const cw = Math.max(...images.map((i) => i.width));
  const ch = Math.max(...images.map((i) => i.height));
  const rows = Math.ceil(images.length / cols);
  const width = cols * cw + (cols + 1) * pad;
  const height = rows * ch + (rows + 1) * pad;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(bg, 3 * i);
  images.forEach((img, n) => {
    const ox = pad + (n % cols) * (cw + pad);
    const oy = pad + Math.floor(n / cols) * (ch + pad);
    for (let y = 0; y < img.height; y++) {
      data.set(img.data.subarray(3 * y * img.width, 3 * (y + 1) * img.width), 3 * ((oy + y) * width + ox));
    }
  });
  return { width, height, data };
}

/** PNG bytes of an RGB image (8-bit, via fast-png). */
export function encodePng(img: RGBImage): Uint8Array {
  checkSize('encodePng', img.data.length, img.width, img.height, 3);
  return encode({ width: img.width, height: img.height, data: img.data, channels: 3, depth: 8 });
}

export interface OverlayOptions {
  colormap?: Colormap;
  /** Weight of the heatmap over the input (default 0.5). */
  alpha?: number;
  /** Nearest-neighbour enlargement (default 1). */
  scale?: number;
  /** Range of the input's pixel values (default [0, 1]). */
  range?: [number, number];
}

/**
 * Heatmap overlays for a batch: inputs x [B, C, H, W] (C = 1 or 3) and maps [B, H, W] in [0, 1]
 * (as the CAM functions return them) → B RGB images (input blended with the colorised map).
 * Reads both tensors once.
 */
export async function heatmapOverlays(x: Tensor, maps: Tensor, opts: OverlayOptions = {}): Promise<RGBImage[]> {
  if (x.rank !== 4 || (x.shape[1] !== 1 && x.shape[1] !== 3)) throw new ShapeError(`heatmapOverlays: expected images [B, 1 or 3, H, W], got ${fmtShape(x.shape)}`);
  const [B, C, H, W] = x.shape;
  if (maps.rank !== 3 || maps.shape[0] !== B || maps.shape[1] !== H || maps.shape[2] !== W) {
    throw new ShapeError(`heatmapOverlays: maps must be [${B}, ${H}, ${W}] for images ${fmtShape(x.shape)}, got ${fmtShape(maps.shape)}`);
  }
  const [xs, ms] = await Promise.all([x.data(), maps.data()]);
  const P = H * W;
  return Array.from({ length: B }, (_, b) => {
    const base = inputImage(xs.subarray(b * C * P, (b + 1) * C * P), W, H, { channels: C as 1 | 3, range: opts.range });
    const heat = colorize(ms.subarray(b * P, (b + 1) * P), W, H, opts.colormap ?? 'jet');
    return scaleNearest(blend(base, heat, opts.alpha ?? 0.5), opts.scale ?? 1);
  });
}

/** Colorised maps [B, H, W] in [0, 1] (no input underneath) → B RGB images. */
export async function heatmapImages(maps: Tensor, opts: { colormap?: Colormap; scale?: number } = {}): Promise<RGBImage[]> {
  if (maps.rank !== 3) throw new ShapeError(`heatmapImages: expected maps [B, H, W], got ${fmtShape(maps.shape)}`);
  const [B, H, W] = maps.shape;
  const ms = await maps.data();
  return Array.from({ length: B }, (_, b) => scaleNearest(colorize(ms.subarray(b * H * W, (b + 1) * H * W), W, H, opts.colormap ?? 'jet'), opts.scale ?? 1));
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export interface GalleryCell {
  /** Image URL (a relative file name, or a `data:image/png;base64,…` URL). */
  src: string;
  caption?: string;
}

export interface GalleryRow {
  /** Text of the row header (e.g. "#12 · label 3 · predicted 5 (0.81)"). */
  title: string;
  cells: GalleryCell[];
  /** Highlight the row (e.g. a misclassified input). */
  flagged?: boolean;
}

/** A self-contained HTML page: a table of explanation images, one row per input, one column per method. */
export function galleryHtml(opts: { title: string; intro?: string; columns: string[]; rows: GalleryRow[]; imageWidth?: number }): string {
  const w = opts.imageWidth ?? 112;
  const head = opts.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('');
  const body = opts.rows.map((r) => {
    const cells = r.cells.map((c) => `<td><img src="${escapeHtml(c.src)}" width="${w}" alt="${escapeHtml(c.caption ?? '')}">${c.caption ? `<div class="cap">${escapeHtml(c.caption)}</div>` : ''}</td>`).join('');
    return `<tr${r.flagged ? ' class="flag"' : ''}><th class="row">${escapeHtml(r.title)}</th>${cells}</tr>`;
  }).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(opts.title)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse}
th,td{padding:4px 8px;text-align:center;vertical-align:top}
th.row{text-align:left;font-weight:normal;max-width:180px}
tr.flag{background:#fdecea}
img{image-rendering:pixelated;display:block;margin:auto}
.cap{font-size:12px;color:#555}
</style></head><body>
<h1>${escapeHtml(opts.title)}</h1>
${opts.intro ? `<p>${escapeHtml(opts.intro)}</p>` : ''}
<table><thead><tr><th></th>${head}</tr></thead>
<tbody>
${body}
</tbody></table>
</body></html>
`;
}
