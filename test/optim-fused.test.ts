// Fused optimiser ops (engine/ops/optim-kernels.ts, kernels/optim.wgsl) against the op-by-op
// updates they replace (test/helpers/optim-reference.ts; `fused = false` below), on both backends.
import { describe, expect, it } from 'vitest';
import {
  type Backend, type Tensor, Adam, AdamW, SGD, Optimizer, dispose, memory, parameter, reluGrad, where, gt, setBackend, tensor, tidy,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { Rng, bitsEqual, expectClose } from './helpers/compare.js';
import { OpByOpAdam, OpByOpAdamW, OpByOpSGD } from './helpers/optim-reference.js';

setBackend(cpu);

type Make = (ps: Tensor[], fused: boolean) => Optimizer<{ lr: number }>;

const ADAM_CASES: [string, Make][] = [
  ['Adam', (ps, fused) => new (fused ? Adam : OpByOpAdam)(ps, { lr: 0.01 })],
  ['Adam L2 + maximize', (ps, fused) => new (fused ? Adam : OpByOpAdam)(ps, { lr: 0.003, weightDecay: 0.05, maximize: true })],
  ['Adam amsgrad', (ps, fused) => new (fused ? Adam : OpByOpAdam)(ps, { lr: 0.02, betas: [0.8, 0.99], eps: 1e-6, amsgrad: true })],
  ['AdamW', (ps, fused) => new (fused ? AdamW : OpByOpAdamW)(ps, { lr: 0.01, weightDecay: 0.1 })],
  ['AdamW amsgrad', (ps, fused) => new (fused ? AdamW : OpByOpAdamW)(ps, { lr: 0.01, amsgrad: true })],
  ['SGD', (ps, fused) => new (fused ? SGD : OpByOpSGD)(ps, { lr: 0.1 })],
  ['SGD momentum + dampening + L2', (ps, fused) => new (fused ? SGD : OpByOpSGD)(ps, { lr: 0.05, momentum: 0.9, dampening: 0.2, weightDecay: 1e-3 })],
  ['SGD Nesterov + maximize', (ps, fused) => new (fused ? SGD : OpByOpSGD)(ps, { lr: 0.05, momentum: 0.8, nesterov: true, maximize: true })],
];

const SHAPES = [[7], [3, 65], [1], [0, 4], [130, 3]];

/** Runs `steps` steps with fixed pseudo-random gradients; returns parameters and state tensors' values. */
async function run(be: Backend, dtype: 'float32' | 'float64', make: Make, fused: boolean, steps: number) {
  setBackend(be);
  const rng = new Rng(42);
  const ps = SHAPES.map((s) => {
    const n = s.reduce((a, b) => a * b, 1);
    return parameter(tensor(Array.from({ length: n }, () => rng.uniform(-2, 2)), s, { dtype }));
  });
  const opt = make(ps, fused);
  const grads = Array.from({ length: steps }, () => ps.map((p) => Array.from({ length: p.size }, () => (rng.uniform(0, 1) < 0.1 ? 0 : rng.uniform(-3, 3)))));
  const live0 = memory().liveTensors;
  for (let t = 0; t < steps; t++) {
    opt.zeroGrad();
    ps.forEach((p, i) => (p.grad = tensor(grads[t][i], p.shape, { dtype })));
    opt.step();
  }
  const out: Record<string, number[]> = {};
  for (const [i, p] of ps.entries()) {
    out[`p${i}`] = Array.from(await p.data());
    const st = opt.state.get(p) ?? {};
    for (const [k, v] of Object.entries(st)) if (typeof v !== 'number') out[`p${i}.${k}`] = Array.from(await v.data());
  }
  opt.zeroGrad();
  const grew = memory().liveTensors - live0;
  opt.dispose();
  dispose(ps);
  setBackend(cpu);
  return { out, grew };
}

describe('fused optimiser updates', () => {
  for (const [name, make] of ADAM_CASES) {
    it(`${name}: CPU fused is bit-identical to the unfused update (float32 and float64)`, async () => {
      for (const dtype of ['float32', 'float64'] as const) {
        const a = await run(cpu, dtype, make, true, 4);
        const b = await run(cpu, dtype, make, false, 4);
        expect(Object.keys(a.out).sort()).toEqual(Object.keys(b.out).sort());
        for (const k of Object.keys(b.out)) {
          const arr = dtype === 'float32' ? Float32Array : Float64Array;
          expect(bitsEqual(arr.from(a.out[k]), arr.from(b.out[k])), `${name} ${dtype} ${k}`).toBe(true);
        }
        expect(a.grew).toBe(b.grew);
      }
    });

    it(`${name}: WebGPU fused matches WebGPU unfused and the CPU reference`, async (ctx) => {
      const gpu = await requireWebGPU(ctx);
      const f = await run(gpu, 'float32', make, true, 4);
      const u = await run(gpu, 'float32', make, false, 4);
      const c = await run(cpu, 'float32', make, true, 4);
      expect(Object.keys(f.out).sort()).toEqual(Object.keys(u.out).sort());
      let identical = true;
      for (const k of Object.keys(u.out)) {
        // Same f32 operations in the same order; allow an ulp in case the shader compiler contracts a·b + c into an FMA.
        expectClose(f.out[k], u.out[k], { rtol: 1e-6, atol: 1e-7, why: 'same f32 ops; FMA contraction at most' }, `${name} ${k} fused vs unfused`);
        expectClose(f.out[k], c.out[k], { rtol: 1e-5, atol: 1e-6, why: 'f32 sqrt/div a few ULP per step' }, `${name} ${k} gpu vs cpu`);
        identical &&= bitsEqual(Float32Array.from(f.out[k]), Float32Array.from(u.out[k]));
      }
      if (!identical) console.warn(`[optim-fused] ${name}: WebGPU fused differs from unfused in the last bits (FMA contraction)`);
      expect(f.grew).toBe(u.grew);
    });
  }

  it('one dispatch per parameter on WebGPU', async (ctx) => {
    const gpu = (await requireWebGPU(ctx)) as Backend & { dispatchCount: number };
    setBackend(gpu);
    const ps = [parameter(tensor([1, 2, 3])), parameter(tensor([[1, 2], [3, 4]]))];
    for (const make of [(q: Tensor[]) => new Adam(q, { lr: 0.1 }), (q: Tensor[]) => new SGD(q, { lr: 0.1, momentum: 0.9 })]) {
      const opt = make(ps);
      for (let t = 0; t < 2; t++) {
        opt.zeroGrad();
        ps.forEach((p) => (p.grad = tensor(new Array(p.size).fill(0.5), p.shape)));
        const before = gpu.dispatchCount;
        opt.step();
        expect(gpu.dispatchCount - before).toBe(ps.length);
      }
      opt.zeroGrad();
      opt.dispose();
    }
    dispose(ps);
    setBackend(cpu);
  });
});

describe('reluGrad', () => {
  it('equals where(gt(x, 0), dy, 0) on both backends, including NaN, ±0 and broadcasting', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const xs = [1, -1, 0, -0, NaN, Infinity, -Infinity, 2.5, 1e-30, -1e-30, 3, -3];
    const dys = [1, 2, NaN, 4, 5, 6, 7, -8, 9, 10, Infinity, -0];
    for (const be of [cpu, gpu]) {
      const got = tidy(() => {
        const x = tensor(xs, [3, 4], { backend: be });
        const dy = tensor(dys, [3, 4], { backend: be });
        return [reluGrad(x, dy), where(gt(x, 0), dy, 0), reluGrad(tensor([2], [1], { backend: be }), dy), reluGrad(x, tensor(5, [], { backend: be }))];
      });
      const [a, b, c, d] = await Promise.all(got.map((t) => t.data()));
      expect(bitsEqual(a, b)).toBe(true);
      expect(Array.from(c)).toEqual(dys.map((v) => (Object.is(v, -0) ? -0 : v)));
      expect(Array.from(d)).toEqual(xs.map((v) => (v > 0 ? 5 : 0)));
      dispose(got);
    }
  });
});
