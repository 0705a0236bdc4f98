import { expect, it } from 'vitest';
import { tensor, setBackend, tidy, memory, grad } from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

it('smoke cpu', async () => {
  setBackend(cpu);
  const a = tensor([[1, 2, 3], [4, 5, 6]]);
  const b = tensor([10, 20, 30]);
  const c = a.add(b).mul(2);
  expect(await c.toArray()).toEqual([[22, 44, 66], [28, 50, 72]]);
  expect(await a.sum(1).toArray()).toEqual([6, 15]);
  expect(Array.from(await a.matmul(a, { transposeB: true }).data())).toEqual([14, 32, 32, 77]);
  const x = tensor([0.5, -1, 2]);
  const g = grad((x) => x.mul(x).sum())(x);
  expect(Array.from(await g.data())).toEqual([1, -2, 4]);
});

it('smoke webgpu', async (ctx) => {
  const gpu = await requireWebGPU(ctx);
  setBackend(gpu);
  const a = tensor([[1, 2, 3], [4, 5, 6]]);
  const b = tensor([10, 20, 30]);
  const c = a.add(b).mul(2);
  expect(await c.toArray()).toEqual([[22, 44, 66], [28, 50, 72]]);
  expect(await a.sum(1).toArray()).toEqual([6, 15]);
  expect(Array.from(await a.matmul(a, { transposeB: true }).data())).toEqual([14, 32, 32, 77]);
  expect(Array.from(await a.exp().log().data()).map((v) => Math.round(v * 1e4) / 1e4)).toEqual([1, 2, 3, 4, 5, 6]);
  const x = tensor([0.5, -1, 2]);
  const g = grad((x) => x.mul(x).sum())(x);
  expect(Array.from(await g.data())).toEqual([1, -2, 4]);
  const m0 = memory().liveTensors;
  for (let i = 0; i < 20; i++) tidy(() => { grad((x) => x.softmax().log().sum())(x); });
  for (let i = 0; i < 20; i++) grad((x) => x.softmax().log().sum())(x).dispose();
  expect(memory().liveTensors).toBe(m0);
  expect(await a.argmax(1).toArray()).toEqual([2, 2]);
  expect(Array.from(await a.softmax().sum(-1).data()).map((v) => Math.round(v * 1e5))).toEqual([1e5, 1e5]);
});
