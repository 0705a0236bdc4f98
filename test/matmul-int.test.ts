// int32 matmul (issue 9 parity): wrapping two's-complement arithmetic on both backends, checked
// against a BigInt reference; WebGPU vs CPU on non-multiple-of-tile, batched, broadcast and
// transposed shapes; typed errors for mixed dtypes; not differentiable for int inputs.
import { describe, expect, it } from 'vitest';
import { DTypeError, type Tensor, grad, matmul, setBackend, tensor } from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { Rng, TOL, compareBackends, host, rand } from './helpers/compare.js';

/** Exact int32 product with wrap-around, from BigInt sums (independent of Math.imul). */
function refMatmul(a: number[], b: number[], M: number, K: number, N: number): number[] {
  const r: number[] = [];
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let acc = 0n;
      for (let k = 0; k < K; k++) acc += BigInt(a[i * K + k]) * BigInt(b[k * N + j]);
      r.push(Number(BigInt.asIntN(32, acc)));
    }
  }
  return r;
}

describe('int32 matmul', () => {
  it('CPU: exact wrapping arithmetic (as int32 overflow in C / PyTorch)', async () => {
    setBackend(cpu);
    const rng = new Rng(5);
    const M = 3, K = 4, N = 5;
    const a = rand(rng, [M, K], 'int32', { lo: -(2 ** 31), hi: 2 ** 31 - 1 }).data;
    const b = rand(rng, [K, N], 'int32', { lo: -(2 ** 31), hi: 2 ** 31 - 1 }).data;
    const got = await matmul(tensor(a, [M, K], { dtype: 'int32' }), tensor(b, [K, N], { dtype: 'int32' })).data();
    expect(got).toBeInstanceOf(Int32Array);
    expect(Array.from(got)).toEqual(refMatmul(a, b, M, K, N));
    const small = matmul(tensor([[1, 2], [3, 4]], undefined, { dtype: 'int32' }), tensor([[5], [6]], undefined, { dtype: 'int32' }));
    expect(small.dtype).toBe('int32');
    expect(await small.toArray()).toEqual([[17], [39]]);
    expect(await matmul(tensor([2 ** 30], [1, 1], { dtype: 'int32' }), tensor([4], [1, 1], { dtype: 'int32' })).item()).toBe(0); // 2^32 wraps to 0
  });

  it('typed errors: int and float mixed, bool', () => {
    setBackend(cpu);
    const i = tensor([[1, 2]], undefined, { dtype: 'int32' });
    const f = tensor([[1], [2]]);
    expect(() => matmul(i, f)).toThrow(DTypeError);
    expect(() => matmul(i, f)).toThrow(/matmul: expected two float inputs or two int32 inputs, got int32 \[1,2\] and float32 \[2,1\]/);
    expect(() => matmul(tensor([[1]], undefined, { dtype: 'bool' }), tensor([[1]], undefined, { dtype: 'bool' }))).toThrow(DTypeError);
  });

  it('not differentiable for int inputs; the float rule is unchanged', async () => {
    setBackend(cpu);
    const i = tensor([[1, 2], [3, 4]], undefined, { dtype: 'int32' });
    expect(() => grad((x: Tensor) => matmul(x, i).sum())(tensor([[1, 2], [3, 4]], undefined, { dtype: 'int32' }))).toThrow(DTypeError);
    // A float graph that uses an int matmul as a constant still differentiates.
    const w = tensor([[1, 0], [0, 1]]);
    const g = grad((x: Tensor) => matmul(x, w).mul(matmul(i, i).cast('float32')).sum())(tensor([[1, 1], [1, 1]]));
    expect(await g.toArray()).toEqual([[7, 10], [15, 22]]); // d/dx Σ (x·I) ⊙ C = C = i·i
  });

  it('WebGPU matches the CPU: tiles, size-1/empty dims, batches, broadcasting, transposes, overflow', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(11);
    const I = (shape: number[], lo = -50, hi = 50) => rand(rng, shape, 'int32', { lo, hi });
    const cases: [number[], number[], { transposeA?: boolean; transposeB?: boolean }?][] = [
      [[1, 1], [1, 1]],
      [[7, 13], [13, 5]],
      [[65, 70], [70, 67]],
      [[3, 0], [0, 4]],
      [[0, 3], [3, 2]],
      [[4, 9, 8], [4, 8, 3]],
      [[2, 1, 5, 6], [3, 6, 7]],
      [[13], [13, 4]],
      [[6, 13], [13]],
      [[9, 7], [6, 9], { transposeA: true, transposeB: true }],
      [[2, 7, 5], [2, 7, 3], { transposeA: true }],
    ];
    for (const [sa, sb, opts] of cases) {
      await compareBackends(cpu, gpu, (a, b) => matmul(a, b, opts), [I(sa), I(sb)], TOL.exact, `int matmul ${JSON.stringify([sa, sb, opts ?? {}])}`);
    }
    // Products that overflow int32 wrap identically.
    const big = I([5, 33], -(2 ** 31), 2 ** 31 - 1);
    const big2 = I([33, 6], -(2 ** 31), 2 ** 31 - 1);
    const r = await compareBackends(cpu, gpu, (a, b) => matmul(a, b), [big, big2], TOL.exact, 'int matmul overflow');
    expect(Array.from(r.gpu.data)).toEqual(refMatmul(big.data, big2.data, 5, 33, 6));
    await compareBackends(cpu, gpu, (a, b) => matmul(a, b), [host([2 ** 30, 3], [1, 2], 'int32'), host([4, 5], [2, 1], 'int32')], TOL.exact, 'wrap to 15');
  });
});
