import { ArgumentError, DTypeError, ShapeError, fmtShape } from '../errors.js';
import { isFloat } from '../dtype.js';
import { type Tensor, fromHost } from '../tensor.js';
import { composite } from './autograd.js';
import { upsampleBilinear2d } from './pooling.js';
import { indexSelect, reshape } from './shape-ops.js';

export type InterpolateMode = 'nearest' | 'nearest-exact' | 'linear' | 'bilinear';

export interface InterpolateOptions {
  /** Output spatial size: one number for every spatial dim, or one per dim. Exactly one of size / scaleFactor. */
  size?: number | readonly number[];
  /** Multiplier of the spatial size: out = ⌊in·scaleFactor⌋ per dim (as PyTorch, in double precision). */
  scaleFactor?: number | readonly number[];
  /**
   * 'nearest' (default, PyTorch's legacy nearest: src = ⌊dst·scale⌋), 'nearest-exact'
   * (src = ⌊(dst + ½)·scale⌋), 'linear' (3-D input [N, C, L]) or 'bilinear' (4-D input).
   */
  mode?: InterpolateMode;
  /** Linear modes only: align the corner pixels' centres (default false: half-pixel centres). */
  alignCorners?: boolean;
  /**
   * With scaleFactor: map output to input coordinates with in/out (true) instead of 1/scaleFactor
   * (false, default, as PyTorch's recompute_scale_factor=None).
   */
  recomputeScaleFactor?: boolean;
}

function perDim(op: string, what: string, v: number | readonly number[], k: number, valid: (n: number) => boolean, expected: string): number[] {
  const arr = typeof v === 'number' ? new Array<number>(k).fill(v) : [...v];
  if (arr.length !== k || !arr.every((n) => typeof n === 'number' && valid(n))) {
    throw new ArgumentError(`${op}: ${what} must be ${expected}, or ${k} of them (one per spatial dim), got ${JSON.stringify(v)}`);
  }
  return arr;
}

/**
 * Resizes the spatial dims of [N, C, L], [N, C, H, W] or [N, C, D, H, W] (as PyTorch's
 * `F.interpolate`, where the first two dims are always batch and channels: a 3-D input is
 * [N, C, L], not an unbatched image).
 *
 * - Output size: `size`, or ⌊in·scaleFactor⌋ per dim.
 * - Source coordinates use scale = in/out when `size` is given (or with recomputeScaleFactor),
 *   else 1/scaleFactor, both rounded to float32 as PyTorch's kernels do.
 * - 'nearest' / 'nearest-exact' pick src = min(⌊dst·scale⌋, in − 1) resp. min(⌊(dst + ½)·scale⌋,
 *   in − 1) ('nearest' with PyTorch's CPU shortcuts: out = in is the identity, out = 2·in picks
 *   ⌊dst/2⌋; PyTorch's CUDA kernel has no shortcuts and can differ there), composed of one `indexSelect` per spatial dim (any rank, any backend; the gradient
 *   sums into the picked elements).
 * - 'bilinear' (4-D) and 'linear' (3-D) run the `upsampleBilinear2d` op (PyTorch's
 *   area_pixel_compute_source_index with alignCorners or half-pixel centres).
 *
 * Not supported: bicubic, trilinear, area and antialias.
 */
export function interpolate(x: Tensor, opts: InterpolateOptions): Tensor {
  const op = 'interpolate';
  const mode = opts.mode ?? 'nearest';
  if (!['nearest', 'nearest-exact', 'linear', 'bilinear'].includes(mode)) {
    throw new ArgumentError(`${op}: mode must be 'nearest', 'nearest-exact', 'linear' or 'bilinear', got ${JSON.stringify(mode)}`);
  }
  if (x.rank < 3 || x.rank > 5) throw new ShapeError(`${op}: expected [N, C, L], [N, C, H, W] or [N, C, D, H, W], got ${fmtShape(x.shape)}`);
  if (!isFloat(x.dtype) && mode !== 'nearest' && mode !== 'nearest-exact') throw new DTypeError(`${op}: ${mode} needs a float tensor, got ${x.dtype} ${fmtShape(x.shape)}`);
  if (mode === 'bilinear' && x.rank !== 4) throw new ShapeError(`${op}: mode 'bilinear' needs a 4-D input [N, C, H, W], got ${fmtShape(x.shape)}`);
  if (mode === 'linear' && x.rank !== 3) throw new ShapeError(`${op}: mode 'linear' needs a 3-D input [N, C, L], got ${fmtShape(x.shape)}`);
  const linear = mode === 'linear' || mode === 'bilinear';
  if (opts.alignCorners !== undefined && !linear) throw new ArgumentError(`${op}: alignCorners can only be set with the linear modes ('linear', 'bilinear'), got mode '${mode}'`);
  if ((opts.size === undefined) === (opts.scaleFactor === undefined)) throw new ArgumentError(`${op}: give exactly one of size and scaleFactor`);
  const k = x.rank - 2;
  const inSize = x.shape.slice(2);
  let outSize: number[];
  let scales: number[] | null = null;
  if (opts.size !== undefined) {
    outSize = perDim(op, 'size', opts.size, k, (n) => Number.isInteger(n) && n >= 1, 'a positive integer');
  } else {
    const sf = perDim(op, 'scaleFactor', opts.scaleFactor!, k, (n) => Number.isFinite(n) && n > 0, 'a positive finite number');
    outSize = inSize.map((n, d) => Math.floor(n * sf[d]));
    if (outSize.some((n) => n < 1)) throw new ShapeError(`${op}: scaleFactor ${JSON.stringify(opts.scaleFactor)} gives an empty output ${fmtShape(outSize)} for input ${fmtShape(x.shape)}`);
    if (!opts.recomputeScaleFactor) scales = sf;
  }
  if (inSize.some((n) => n === 0)) throw new ShapeError(`${op}: input ${fmtShape(x.shape)} has an empty spatial dim`);
  if (mode === 'bilinear') {
    return upsampleBilinear2d(x, [outSize[0], outSize[1]], { alignCorners: opts.alignCorners ?? false, scaleFactor: scales ? [scales[0], scales[1]] : undefined });
  }
  if (mode === 'linear') {
    return composite(() => {
      const [N, C, L] = x.shape;
      const y = upsampleBilinear2d(reshape(x, [N, C, 1, L]), [1, outSize[0]], { alignCorners: opts.alignCorners ?? false, scaleFactor: scales ? [1, scales[0]] : undefined });
      return reshape(y, [N, C, outSize[0]]);
    });
  }
  return composite(() => {
    let y = x;
    for (let d = 0; d < k; d++) {
      const n = inSize[d];
      const o = outSize[d];
      // PyTorch's CPU nearest_idx: same size → identity, double size → dst/2, else ⌊dst·scale⌋.
      if (o === n && (mode === 'nearest' || !scales)) continue;
      const scale = Math.fround(scales ? 1 / scales[d] : n / o);
      const idx = new Int32Array(o);
      for (let i = 0; i < o; i++) {
        if (mode === 'nearest') idx[i] = o === 2 * n ? i >> 1 : Math.min(Math.floor(Math.fround(i * scale)), n - 1);
        else idx[i] = Math.min(Math.floor(Math.fround((i + 0.5) * scale)), n - 1);
      }
      y = indexSelect(y, d + 2, fromHost(idx, [o], 'int32', x.backend));
    }
    return y;
  });
}
