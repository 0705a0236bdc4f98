/**
 * Distribution-shift transforms for image batches [N, C, H, W] (values in [0, 1]), built from the
 * engine's own ops and seeded, to make covariate-shift and noise OOD sets from shipped data:
 *
 * - `invertImages(x)`: 1 − x (photometric inversion);
 * - `rotateImages(x, quarterTurns)`: rotation by 90°·q counter-clockwise (square images), exact
 *   pixel permutation: q = 1 is out[i][j] = x[j][W−1−i] (transpose, then reverse the rows);
 *   q = 2 reverses rows and columns;
 * - `gaussianBlur(x, sigma)`: convolution with the normalised 2-D Gaussian
 *   g(u, v) ∝ exp(−(u² + v²)/(2σ²)), |u|, |v| ≤ r = ⌈3σ⌉, zero padding (dark borders, as MNIST);
 * - `gaussianNoiseImages(shape, { mean, std, seed })`: clip(𝒩(mean, std²), 0, 1);
 * - `uniformNoiseImages(shape, { seed })`: U[0, 1).
 * Noise comes from the Philox generator (`normal`, `uniform`), so a seed gives the same images on
 * every backend.
 */
import {
  ArgumentError, arange, composite, conv2d, fmtShape, fromHost, indexSelect, maximum, minimum, normal, permute, reshape, ShapeError, type Tensor, uniform,
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
