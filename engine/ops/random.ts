import dropoutWgsl from '../../kernels/dropout.wgsl';
import randomFillWgsl from '../../kernels/random_fill.wgsl';
import type { Backend } from '../backend.js';
import { isFloat } from '../dtype.js';
import { ArgumentError, DTypeError, fmtShape } from '../errors.js';
import { type OpDef, defineOp } from '../op.js';
import { blocksFor, philox4x32_10, randomBernoulli, randomNormal, randomUniform, splitU53, uniformFromBits } from '../random/philox.js';
import { currentBackend } from '../runtime.js';
import { checkShape, sizeOf } from '../shape.js';
import { type Tensor, runOp } from '../tensor.js';
import { grid1D } from '../webgpu/webgpu-backend.js';
import { type StructField, kernelFamily } from '../webgpu/kernel-source.js';

/**
 * Counter-based randomness (Philox4x32-10, identical in TS and WGSL). Every draw is keyed by a
 * stream `(seed, offset)`; element i of a draw uses block `offset + ⌊i/4⌋`, word `i mod 4`
 * (see engine/random/philox.ts). A process-wide generator hands out non-overlapping streams:
 * `manualSeed(s)` resets it, and each draw of n elements advances the offset by ⌈n/4⌉ blocks.
 * Explicit `{ seed, offset }` options bypass the generator.
 */
const generator = { seed: 0, offset: 0 };

/** Resets the global generator (initialisation, dropout masks and sampling become reproducible). */
export function manualSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new ArgumentError(`manualSeed: seed must be an integer in [0, 2^53), got ${seed}`);
  generator.seed = seed;
  generator.offset = 0;
}

/** The global generator's current seed and next free block offset (for capture/replay). */
export function generatorState(): { seed: number; offset: number } {
  return { seed: generator.seed, offset: generator.offset };
}

/** Advances the global generator by `blocks` Philox blocks (a replayed capture consumed them). */
export function advanceGenerator(blocks: number): void {
  generator.offset += blocks;
}

/** Reserves a stream for `n` elements from the global generator. */
export function nextStream(n: number): { seed: number; offset: number } {
  const s = { seed: generator.seed, offset: generator.offset };
  generator.offset += Math.max(1, blocksFor(n));
  return s;
}

export interface RandomOptions {
  seed?: number;
  offset?: number;
  backend?: Backend;
}

interface FillAttrs {
  shape: number[];
  kind: 0 | 1 | 2;
  seed: number;
  offset: number;
  p: number;
  low: number;
  high: number;
}

/** The uniform fields of a Philox stream (element count, 64-bit seed and block offset as u32 pairs). */
const PHILOX_STREAM: readonly StructField[] = [['n', 'u32'], ['seed_lo', 'u32'], ['seed_hi', 'u32'], ['offset_lo', 'u32'], ['offset_hi', 'u32']];

/** kernels/random_fill.wgsl with the philox and elementwise preludes. */
export const RANDOM_FILL_KERNEL = kernelFamily({ name: 'random_fill', source: randomFillWgsl, preludes: ['elementwise', 'philox'], structs: { Params: [...PHILOX_STREAM, ['kind', 'u32'], ['p', 'f32'], ['low', 'f32'], ['high', 'f32']] } }).variant();

const RANDOM = defineOp<FillAttrs>({
  name: 'random',
  notDifferentiable: true, // random draws (no tensor inputs)
  infer: (_i, a) => ({ shape: [...a.shape], dtype: 'float32' }),
  cpu(_i, a, out) {
    const n = sizeOf(out.shape);
    if (a.kind === 0) return randomUniform(n, a.seed, a.offset, a.low, a.high);
    if (a.kind === 1) return randomNormal(n, a.seed, a.offset, a.low, a.high);
    return Float32Array.from(randomBernoulli(n, a.seed, a.offset, a.p));
  },
  webgpu(gpu, _i, a, out) {
    const n = sizeOf(out.shape);
    const [slo, shi] = splitU53(a.seed);
    const [olo, ohi] = splitU53(a.offset);
    gpu.dispatch({
      kernel: RANDOM_FILL_KERNEL,
      bindings: { out: out.buffer, params: { n, seed_lo: slo, seed_hi: shi, offset_lo: olo, offset_hi: ohi, kind: a.kind, p: a.p, low: a.low, high: a.high } },
      workgroups: grid1D(n),
    });
  },
});

function stream(opts: RandomOptions, n: number): { seed: number; offset: number } {
  if (opts.seed === undefined) {
    if (opts.offset !== undefined) throw new ArgumentError('random: `offset` given without `seed`');
    return nextStream(n);
  }
  return { seed: opts.seed, offset: opts.offset ?? 0 };
}

function draw(op: string, shape: readonly number[], kind: 0 | 1 | 2, p: number, low: number, high: number, opts: RandomOptions): Tensor {
  checkShape(op, shape);
  for (const [k, v] of [['p', p], ['low', low], ['high', high]] as const) {
    if (!Number.isFinite(v)) throw new ArgumentError(`${op}: ${k} must be finite, got ${v}`);
  }
  const s = stream(opts, sizeOf(shape));
  return runOp(RANDOM, [], { shape: [...shape], kind, seed: s.seed, offset: s.offset, p, low, high }, opts.backend ?? currentBackend());
}

/** Uniform samples in [low, high) (float32), bit-identical on both backends for the same stream. */
export function uniform(shape: readonly number[], opts: RandomOptions & { low?: number; high?: number } = {}): Tensor {
  return draw('uniform', shape, 0, 0, opts.low ?? 0, opts.high ?? 1, opts);
}

/** Normal samples (fixed-point Box–Muller, bit-identical on both backends). */
export function normal(shape: readonly number[], opts: RandomOptions & { mean?: number; std?: number } = {}): Tensor {
  return draw('normal', shape, 1, 0, opts.mean ?? 0, opts.std ?? 1, opts);
}

/** 1.0 with probability p, else 0.0 (float32). */
export function bernoulli(shape: readonly number[], p: number, opts: RandomOptions = {}): Tensor {
  if (!(p >= 0 && p <= 1)) throw new ArgumentError(`bernoulli: p must be in [0, 1], got ${p}`);
  return draw('bernoulli', shape, 2, p, 0, 1, opts);
}

// ---- dropout ----
interface DropoutAttrs {
  p: number;
  seed: number;
  offset: number;
  rowLen: number;
}

/** Philox blocks a row-aligned dropout mask over `rows` rows of `rowLen` elements consumes. */
export function dropoutBlocks(rows: number, rowLen: number): number {
  return rows * Math.ceil(rowLen / 4);
}

const DROPOUT_KERNEL = kernelFamily({ name: 'dropout', source: dropoutWgsl, preludes: ['elementwise', 'philox'], structs: { Params: [...PHILOX_STREAM, ['p', 'f32'], ['scale', 'f32'], ['row_len', 'u32']] } }).variant();

const DROPOUT: OpDef<DropoutAttrs> = defineOp<DropoutAttrs>({
  name: 'dropout',
  // Row-aligned mask: the chunk starting at row `start` continues the stream at that row.
  splitRows: ([x], a, out) =>
    out.shape.length >= 2 && out.shape[0] > 1 && a.rowLen * out.shape[0] === sizeOf(x.shape)
      ? { inputs: [true], attrs: (start) => ({ ...a, offset: a.offset + start * Math.ceil(a.rowLen / 4) }) }
      : null,
  infer([x]) {
    if (x.dtype !== 'float32' && x.dtype !== 'float64') throw new DTypeError(`dropout: expected a float tensor, got ${x.dtype} ${fmtShape(x.shape)}`);
    return { shape: [...x.shape], dtype: x.dtype };
  },
  cpu([x], a, out) {
    const n = x.data.length;
    const scale = Math.fround(1 / (1 - a.p));
    const r = out.dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
    const [k0, k1] = splitU53(a.seed);
    const perRow = Math.ceil(a.rowLen / 4);
    let w: number[] = [];
    for (let i = 0; i < n; i++) {
      const row = Math.floor(i / a.rowLen);
      const j = i - row * a.rowLen;
      if ((j & 3) === 0) {
        const [lo, hi] = splitU53(a.offset + row * perRow + (j >> 2));
        w = philox4x32_10(lo, hi, 0, 0, k0, k1);
      }
      r[i] = uniformFromBits(w[j & 3]) >= a.p ? x.data[i] * scale : 0;
    }
    return r;
  },
  webgpu(gpu, [x], a, out) {
    const n = sizeOf(out.shape);
    const [slo, shi] = splitU53(a.seed);
    const [olo, ohi] = splitU53(a.offset);
    gpu.dispatch({
      kernel: DROPOUT_KERNEL,
      bindings: {
        x: x.buffer,
        out: out.buffer,
        params: { n, seed_lo: slo, seed_hi: shi, offset_lo: olo, offset_hi: ohi, p: a.p, scale: Math.fround(1 / (1 - a.p)), row_len: a.rowLen },
      },
      workgroups: grid1D(n),
    });
  },
  // The mask is a fixed function of (seed, offset, index): the same op applied to dy is the gradient.
  grad: (dy, _x, _o, a): Tensor[] => [runOp(DROPOUT, [dy], a)],
});

/**
 * Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1−p).
 *
 * The mask is row-aligned: x is viewed as rows (one per index of the first dim; a 0-d or 1-d
 * tensor is one row) and element j of row r is dropped iff the Philox uniform at block
 * `offset + r·⌈rowLen/4⌉ + ⌊j/4⌋`, word j mod 4, of stream `seed` is < p. So the mask is
 * identical on both backends, and running T·B rows at once (MC dropout) gives each row exactly
 * the mask of a separate pass over B rows at `offset + t·B·⌈rowLen/4⌉` — batching and chunking
 * never change results. `rowStart` (with `seed`) starts the mask at that row of the stream, as if
 * `rowStart` rows had come before. Without `seed`, a stream is reserved from the global generator.
 */
export function dropout(x: Tensor, p: number, opts: { seed?: number; offset?: number; rowStart?: number } = {}): Tensor {
  if (!(p >= 0 && p < 1)) throw new ArgumentError(`dropout: p must be in [0, 1), got ${p}`);
  if (!isFloat(x.dtype)) throw new DTypeError(`dropout: expected a float tensor, got ${x.dtype} ${fmtShape(x.shape)}`);
  if (p === 0) return x;
  const rows = x.rank >= 2 ? x.shape[0] : 1;
  const rowLen = rows > 0 ? Math.max(1, x.size / rows) : 1;
  let s: { seed: number; offset: number };
  if (opts.seed === undefined) {
    if (opts.offset !== undefined) throw new ArgumentError('dropout: `offset` given without `seed`');
    s = { seed: generator.seed, offset: generator.offset };
    generator.offset += Math.max(1, dropoutBlocks(rows, rowLen));
  } else s = { seed: opts.seed, offset: (opts.offset ?? 0) + (opts.rowStart ?? 0) * Math.ceil(rowLen / 4) };
  return runOp(DROPOUT, [x], { p, seed: s.seed, offset: s.offset, rowLen });
}
