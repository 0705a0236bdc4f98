// NaN / Inf semantics (issue 9): IEEE / C99 / PyTorch behaviour on BOTH backends, and the one
// deliberate difference (gelu(−inf) = −0) pinned. NaN is never swallowed silently by an op.
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Backend, type Tensor, argmax, argmin, digamma, gelu, leakyRelu, logSoftmax, logsumexp, max, maxPool2d, maxPool2dWithIndices,
  conv2dBiasAct, linear, matmul, maximum, min, minimum, pow, powScalar, relu, setBackend, softmax, tensor,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

afterEach(() => {
  setBackend(cpu);
});

const NAN = Number.NaN;
const INF = Number.POSITIVE_INFINITY;

/** Runs `f` on both backends and returns the two results (values compared with Object.is for ±0 / NaN). */
async function onBoth(ctx: { skip: (note?: string) => void }, f: (be: Backend) => Tensor): Promise<[number[], number[]]> {
  const c = Array.from(await f(cpu).data());
  const gpu = await requireWebGPU(ctx);
  const g = Array.from(await f(gpu).data());
  return [c, g];
}

/** Same bits class: NaN ~ NaN, ±0 distinguished, finite values within a relative 1e-6. */
function same(got: number[], want: number[], label: string): void {
  expect(got.length, label).toBe(want.length);
  got.forEach((v, i) => {
    const w = want[i];
    const ok = Number.isNaN(w) ? Number.isNaN(v) : w === 0 ? Object.is(v, w) : !Number.isFinite(w) ? v === w : Math.abs(v - w) <= 1e-6 * Math.abs(w);
    expect(ok, `${label}[${i}]: got ${Object.is(v, -0) ? '-0' : v}, want ${Object.is(w, -0) ? '-0' : w}`).toBe(true);
  });
}

async function expectBoth(ctx: { skip: (note?: string) => void }, f: (be: Backend) => Tensor, want: number[], label: string): Promise<void> {
  const [c, g] = await onBoth(ctx, f);
  same(c, want, `${label} (cpu)`);
  same(g, want, `${label} (webgpu)`);
}

const t = (data: number[], be: Backend, shape = [data.length]) => tensor(data, shape, { backend: be });

describe('NaN / Inf semantics on both backends', () => {
  it('relu(NaN) = NaN; leakyRelu too', async (ctx) => {
    await expectBoth(ctx, (be) => relu(t([NAN, -1, 0, 2, -INF, INF], be)), [NAN, 0, 0, 2, 0, INF], 'relu');
    await expectBoth(ctx, (be) => leakyRelu(t([NAN, -2, 3], be), 0.5), [NAN, -1, 3], 'leakyRelu');
  });

  it('gelu: +inf → +inf, NaN → NaN, and (deliberately, the limit of x·Φ(x)) −inf → −0', async (ctx) => {
    await expectBoth(ctx, (be) => gelu(t([-INF, INF, NAN, 0], be)), [-0, INF, NAN, 0], 'gelu');
  });

  it('pow: C99 special cases (pow(1, y) = 1 incl. NaN, pow(−1, ±inf) = 1, pow(x, 0) = 1)', async (ctx) => {
    const b = [1, 1, 1, 1, -1, -1, NAN, NAN, 2, -8, 0, -0, NAN];
    const e = [NAN, INF, -INF, 3.5, INF, -INF, 0, -0, NAN, 1 / 3, -1, -1, 1];
    await expectBoth(ctx, (be) => pow(t(b, be), t(e, be)), [1, 1, 1, 1, 1, 1, 1, 1, NAN, NAN, INF, -INF, NAN], 'pow');
    await expectBoth(ctx, (be) => powScalar(t([1, NAN, -2, -0], be), 3), [1, NAN, -8, -0], 'powScalar');
    await expectBoth(ctx, (be) => powScalar(t([NAN], be), 0), [1], 'powScalar(NaN, 0)');
  });

  it('softmax / logSoftmax: a row with +inf or NaN is all NaN (PyTorch); logsumexp keeps +inf', async (ctx) => {
    const rows = [INF, 1, 2, 3, 0, NAN, 1, 2, 0, 1, 2, 3];
    const p = [0, 1, 2, 3].map((k) => Math.exp(k) / (1 + Math.E + Math.E ** 2 + Math.E ** 3));
    await expectBoth(ctx, (be) => softmax(t(rows, be, [3, 4]), 1), [NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, ...p], 'softmax');
    await expectBoth(ctx, (be) => logSoftmax(t(rows, be, [3, 4]), 1), [NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, ...p.map(Math.log)], 'logSoftmax');
    // Along axis 0 (columns) as well.
    await expectBoth(ctx, (be) => softmax(t([INF, 0, 1, 0], be, [2, 2]), 0), [NAN, 0.5, NAN, 0.5], 'softmax axis 0');
    await expectBoth(ctx, (be) => logsumexp(t([INF, 1, -INF, -INF], be, [2, 2]), [1]), [INF, -INF], 'logsumexp');
    // −inf entries are ordinary (probability 0).
    await expectBoth(ctx, (be) => softmax(t([-INF, 0], be, [1, 2]), 1), [0, 1], 'softmax -inf');
  });

  it('maxPool2d: a window holding a NaN gives NaN (the first NaN wins the index)', async (ctx) => {
    const x = [1, NAN, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, NAN, 14, 15, NAN];
    await expectBoth(ctx, (be) => maxPool2d(t(x, be, [1, 1, 4, 4]), { kernelSize: 2 }), [NAN, 8, NAN, NAN], 'maxPool2d');
    await expectBoth(ctx, (be) => maxPool2dWithIndices(t(x, be, [1, 1, 4, 4]), { kernelSize: 2 }).indices, [1, 7, 12, 15], 'maxPool2d indices');
    await expectBoth(ctx, (be) => maxPool2d(t([NAN, 1, 2, 3], be, [1, 1, 2, 2]), { kernelSize: 2 }), [NAN], 'first element NaN');
  });

  it('digamma(+0) = −inf, digamma(−0) = +inf (PyTorch); poles and −inf stay NaN', async (ctx) => {
    await expectBoth(ctx, (be) => digamma(t([0, -0, -1, -2, -INF, NAN, INF], be)), [-INF, INF, NAN, NAN, NAN, NAN, INF], 'digamma');
  });

  it('max / min reductions, maximum / minimum and argmax / argmin propagate NaN (first NaN index)', async (ctx) => {
    const x = [1, NAN, 5, NAN, 2, 3, -1, 4, 0];
    await expectBoth(ctx, (be) => max(t(x, be, [3, 3]), [1]), [NAN, NAN, 4], 'max');
    await expectBoth(ctx, (be) => min(t(x, be, [3, 3]), [1]), [NAN, NAN, -1], 'min');
    await expectBoth(ctx, (be) => max(t(x, be, [3, 3])), [NAN], 'max all');
    await expectBoth(ctx, (be) => argmax(t(x, be, [3, 3]), 1), [1, 0, 1], 'argmax');
    await expectBoth(ctx, (be) => argmin(t(x, be, [3, 3]), 1), [1, 0, 0], 'argmin');
    await expectBoth(ctx, (be) => argmax(t([1, NAN, NAN, 9], be), 0), [1], 'argmax first NaN');
    await expectBoth(ctx, (be) => maximum(t([NAN, 1, 2], be), t([0, NAN, 1], be)), [NAN, NAN, 2], 'maximum');
    await expectBoth(ctx, (be) => minimum(t([NAN, 1, 2], be), t([0, NAN, 1], be)), [NAN, NAN, 1], 'minimum');
  });

  it('the fused relu epilogues (linear, conv2dBiasAct) keep NaN too', async (ctx) => {
    // Row 0 of x holds a NaN: both outputs of that row are NaN; row 1 is finite (one output clamped to 0).
    // conv: out[i][j] = x[i][j] + x[i+1][j+1] + 0·(the other two): every window holding the NaN is NaN.
    await expectBoth(ctx, (be) => linear(t([NAN, 1, 2, -3], be, [2, 2]), t([1, 1, 1, 0], be, [2, 2]), t([0, 0], be), 'relu'), [NAN, NAN, 0, 2], 'linear relu');
    await expectBoth(
      ctx,
      (be) => conv2dBiasAct(t([1, NAN, 2, 3, -4, -5, 6, -7, 8], be, [1, 1, 3, 3]), t([1, 0, 0, 1], be, [1, 1, 2, 2]), t([0], be), {}, 'relu'),
      [NAN, NAN, 0, 4],
      'conv2dBiasAct relu',
    );
  });

  it('matmul: 0 · NaN and 0 · inf are NaN in the CPU reference too (no zero-skipping past a non-finite b)', async (ctx) => {
    await expectBoth(ctx, (be) => matmul(t([0, 1, 1, 0], be, [2, 2]), t([NAN, 2, 3, 4], be, [2, 2])), [NAN, 4, NAN, 2], 'matmul NaN');
    await expectBoth(ctx, (be) => matmul(t([0, 1], be, [1, 2]), t([INF, 1, 2, 3], be, [2, 2])), [NAN, 3], 'matmul inf');
  });
});
