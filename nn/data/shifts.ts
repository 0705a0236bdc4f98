/**
 * Distribution-shift transforms for image batches [N, C, H, W] (values in [0, 1]), built from the
 * engine's own ops and seeded, to make covariate-shift and noise OOD sets from shipped data:
 *
 * - `invertImages(x)`: 1 − x (photometric inversion);
 * - `rotateImages(x, quarterTurns)`: rotation by 90°·q counter-clockwise (square images), exact
 *   pixel permutation: q = 1 is out[i][j] = x[j][W−1−i] (transpose, then reverse the rows);
 *   q = 2 reverses rows and columns;
 * - `rotateImagesBy(x, degrees)`: rotation by an arbitrary angle θ counter-clockwise about the
 *   image centre (c_y, c_x) = ((H−1)/2, (W−1)/2), bilinear sampling, zero fill: output pixel (i, j)
 *   reads the source at s_x = c_x + cos θ·(j − c_x) − sin θ·(i − c_y),
 *   s_y = c_y + sin θ·(j − c_x) + cos θ·(i − c_y) (θ = 90° gives `rotateImages(x, 1)`);
 * - `gaussianBlur(x, sigma)`: convolution with the normalised 2-D Gaussian
 *   g(u, v) ∝ exp(−(u² + v²)/(2σ²)), |u|, |v| ≤ r = ⌈3σ⌉, zero padding (dark borders, as MNIST);
 * - `contrastImages(x, factor)`: clip((x − m)·c + m, 0, 1) with m the mean of each image's
 *   channel over H×W and c = factor (c < 1 lowers the contrast; the ImageNet-C / MNIST-C
 *   "contrast" corruption);
 * - `gaussianNoiseImages(shape, { mean, std, seed })`: clip(𝒩(mean, std²), 0, 1);
 * - `uniformNoiseImages(shape, { seed })`: U[0, 1).
 * Noise comes from the Philox generator (`normal`, `uniform`), so a seed gives the same images on
 * every backend.
 */
import {
  ArgumentError, arange, composite, conv2d, fmtShape, fromHost, indexSelect, maximum, mean, minimum, normal, permute, reshape, ShapeError, type Tensor, uniform,
} from '../../engine/index.js';
import type { Backend } from '../../engine/index.js';

function checkImages(op: string, x: Tensor): void {
  if (x.rank !== 4) throw new ShapeError(`${op}: expected images [N, C, H, W], got ${fmtShape(x.shape)}`);
}

/** 1 − x. */
export function invertImages(x: Tensor): Tensor {
  checkImages('invertImages', x);
  return composite(() => x.neg().add(1));
}

function reverse(x: Tensor, axis: number): Tensor {
  const n = x.shape[axis];
  const idx = arange(n - 1, -1, -1, { dtype: 'int32', backend: x.backend });
  return indexSelect(x, axis, idx);
}

/** Rotation by 90°·quarterTurns counter-clockwise (quarterTurns mod 4; square images for odd turns). */
export function rotateImages(x: Tensor, quarterTurns: number): Tensor {
  checkImages('rotateImages', x);
  if (!Number.isInteger(quarterTurns)) throw new ArgumentError(`rotateImages: quarterTurns must be an integer, got ${quarterTurns}`);
  const q = ((quarterTurns % 4) + 4) % 4;
  if (q % 2 === 1 && x.shape[2] !== x.shape[3]) throw new ShapeError(`rotateImages: a ${q * 90}° rotation needs square images, got ${fmtShape(x.shape)}`);
  return composite(() => {
    if (q === 0) return x.add(0);
    if (q === 2) return reverse(reverse(x, 2), 3);
    const t = permute(x, [0, 1, 3, 2]);
    return q === 1 ? reverse(t, 2) : reverse(t, 3);
  });
}

/**
 * Bilinear taps of a rotation by `degrees` on an H×W grid: for every output pixel o (row-major)
 * and tap q ∈ {0..3}, the source pixel index[q·HW + o] and its weight[q·HW + o] (0, with index 0,
 * for a tap outside the image). Formula in the module comment.
 */
export function rotationTaps(h: number, w: number, degrees: number): { index: Int32Array; weight: Float64Array } {
  if (!Number.isFinite(degrees)) throw new ArgumentError(`rotationTaps: degrees must be finite, got ${degrees}`);
  const th = (degrees * Math.PI) / 180;
  const cos = Math.cos(th);
  const sin = Math.sin(th);
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  const hw = h * w;
  const index = new Int32Array(4 * hw);
  const weight = new Float64Array(4 * hw);
  for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) {
    const o = i * w + j;
    const sx = cx + cos * (j - cx) - sin * (i - cy);
    const sy = cy + sin * (j - cx) + cos * (i - cy);
    // snap values within rounding of an integer (cos 90° is 6e-17, not 0)
    const rx = Math.abs(sx - Math.round(sx)) < 1e-9 ? Math.round(sx) : sx;
    const ry = Math.abs(sy - Math.round(sy)) < 1e-9 ? Math.round(sy) : sy;
    const x0 = Math.floor(rx);
    const y0 = Math.floor(ry);
    const fx = rx - x0;
    const fy = ry - y0;
    for (let q = 0; q < 4; q++) {
      const xx = x0 + (q & 1);
      const yy = y0 + (q >> 1);
      const wq = ((q & 1) ? fx : 1 - fx) * ((q >> 1) ? fy : 1 - fy);
      if (xx < 0 || xx >= w || yy < 0 || yy >= h || wq === 0) continue;
      index[q * hw + o] = yy * w + xx;
      weight[q * hw + o] = wq;
    }
  }
  return { index, weight };
}

/**
 * Rotation by `degrees` counter-clockwise about the image centre, bilinear, zero fill (any H×W;
 * every image and channel alike): four gathers of the flattened images and a weighted sum.
 */
export function rotateImagesBy(x: Tensor, degrees: number): Tensor {
  checkImages('rotateImagesBy', x);
  if (!Number.isFinite(degrees)) throw new ArgumentError(`rotateImagesBy: degrees must be a finite number, got ${degrees}`);
  const [n, c, h, w] = x.shape;
  const hw = h * w;
  const { index, weight } = rotationTaps(h, w, degrees);
  const fdt = x.dtype === 'float64' ? 'float64' : 'float32';
  return composite(() => {
    const flat = reshape(x, [n * c, hw]);
    let out: Tensor | null = null;
    for (let q = 0; q < 4; q++) {
      const idx = fromHost(index.subarray(q * hw, (q + 1) * hw), [hw], 'int32', x.backend);
      const wt = fromHost(weight.subarray(q * hw, (q + 1) * hw), [1, hw], fdt, x.backend);
      const tap = indexSelect(flat, 1, idx).mul(wt);
      out = out ? out.add(tap) : tap;
    }
    return reshape(out as Tensor, [n, c, h, w]);
  });
}

/** clip((x − m)·factor + m, 0, 1), m the per-image, per-channel mean over H×W; factor ≥ 0. */
export function contrastImages(x: Tensor, factor: number): Tensor {
  checkImages('contrastImages', x);
  if (!(factor >= 0) || !Number.isFinite(factor)) throw new ArgumentError(`contrastImages: factor must be a finite number ≥ 0, got ${factor}`);
  return composite(() => {
    const m = mean(x, [2, 3], true);
    return minimum(maximum(x.sub(m).mul(factor).add(m), 0), 1);
  });
}

/** The normalised (2r+1)² Gaussian kernel, r = ⌈3σ⌉, row-major. */
export function gaussianKernel(sigma: number): { kernel: Float64Array; radius: number } {
  if (!(sigma > 0) || !Number.isFinite(sigma)) throw new ArgumentError(`gaussianKernel: sigma must be a finite positive number, got ${sigma}`);
  const r = Math.ceil(3 * sigma);
  const k = 2 * r + 1;
  const g = new Float64Array(k * k);
  let s = 0;
  for (let u = -r; u <= r; u++) for (let v = -r; v <= r; v++) {
    const w = Math.exp(-(u * u + v * v) / (2 * sigma * sigma));
    g[(u + r) * k + v + r] = w;
    s += w;
  }
  for (let i = 0; i < g.length; i++) g[i] /= s;
  return { kernel: g, radius: r };
}

/** Gaussian blur with standard deviation `sigma` pixels (zero padding; every channel alike). */
export function gaussianBlur(x: Tensor, sigma: number): Tensor {
  checkImages('gaussianBlur', x);
  const { kernel, radius } = gaussianKernel(sigma);
  const [n, c, h, w] = x.shape;
  const k = 2 * radius + 1;
  return composite(() => {
    const wt = fromHost(kernel, [1, 1, k, k], x.dtype === 'float64' ? 'float64' : 'float32', x.backend);
    const y = conv2d(reshape(x, [n * c, 1, h, w]), wt, null, { padding: radius });
    return reshape(y, [n, c, h, w]);
  });
}

export interface NoiseImageOptions {
  seed?: number;
  backend?: Backend;
}

/** clip(𝒩(mean, std²), 0, 1) images of `shape` (defaults mean 0.5, std 0.25). */
export function gaussianNoiseImages(shape: readonly number[], opts: NoiseImageOptions & { mean?: number; std?: number } = {}): Tensor {
  return composite(() => minimum(maximum(normal(shape, { mean: opts.mean ?? 0.5, std: opts.std ?? 0.25, seed: opts.seed ?? 0, backend: opts.backend }), 0), 1));
}

/** U[0, 1) images of `shape`. */
export function uniformNoiseImages(shape: readonly number[], opts: NoiseImageOptions = {}): Tensor {
  return uniform(shape, { seed: opts.seed ?? 0, backend: opts.backend });
}
