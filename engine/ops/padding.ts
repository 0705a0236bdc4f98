import { ArgumentError, fmtShape } from '../errors.js';
import { type Tensor, fromHost } from '../tensor.js';
import { composite } from './autograd.js';
import { indexSelect } from './shape-ops.js';

/** The padding modes of `pad` (PyTorch `F.pad` modes). */
export type PadMode = 'constant' | 'reflect' | 'replicate' | 'circular';

export interface PadOptions {
  /**
   * 'constant' (default): fill with `value`. 'reflect': mirror without repeating the edge
   * (`[a b c]` padded by 2 → `c b [a b c] b a`; each pad must be < the dim's size).
   * 'replicate': repeat the edge (`a a [a b c] c c`; the dim must be non-empty). 'circular':
   * wrap around (`b c [a b c] a b`; each pad must be <= the dim's size).
   */
  mode?: PadMode;
  /** Fill value of 'constant' mode (default 0). */
  value?: number;
}

/** Source index along a dim of size n for output position i (input starts at `before`). */
function sourceIndex(mode: Exclude<PadMode, 'constant'>, i: number, before: number, n: number): number {
  const j = i - before;
  if (j >= 0 && j < n) return j;
  if (mode === 'replicate') return j < 0 ? 0 : n - 1;
  if (mode === 'circular') return ((j % n) + n) % n;
  return j < 0 ? -j : 2 * (n - 1) - j; // reflect (one reflection suffices: pad < n)
}

/**
 * reflect / replicate / circular padding, composed of one `indexSelect` per padded dim with a
 * host-built index list, so it runs on every backend and its gradient (a deterministic
 * scatter-add) sums the contributions of every copy of an input element. `pads` are already
 * normalised to one non-negative [before, after] pair per dim.
 */
export function padWithMode(x: Tensor, pads: readonly [number, number][], mode: Exclude<PadMode, 'constant'>): Tensor {
  pads.forEach(([b, e], d) => {
    const n = x.shape[d];
    if (b === 0 && e === 0) return;
    const bad = mode === 'reflect' ? b >= n || e >= n : mode === 'circular' ? b > n || e > n : n === 0;
    if (bad) {
      const need = mode === 'reflect' ? `each pad < ${n}` : mode === 'circular' ? `each pad <= ${n}` : 'a non-empty dim';
      throw new ArgumentError(`pad: ${mode} padding [${b}, ${e}] of dim ${d} of ${fmtShape(x.shape)} needs ${need}`);
    }
  });
  return composite(() => {
    let y = x;
    pads.forEach(([b, e], d) => {
      if (b === 0 && e === 0) return;
      const n = x.shape[d];
      const idx = new Int32Array(n + b + e);
      for (let i = 0; i < idx.length; i++) idx[i] = sourceIndex(mode, i, b, n);
      y = indexSelect(y, d, fromHost(idx, [idx.length], 'int32', x.backend));
    });
    return y;
  });
}
