/**
 * Reverse-mode autodiff: accumulation for reused tensors, broadcasting in backward, `.grad`
 * accumulation across backward() calls, noGrad, detach, valueAndGrad, second derivatives
 * (grad(grad f), Hessian-vector products) against float64 finite differences on the CPU, and
 * WebGPU gradients against the CPU reference.
 */
import { describe, expect, it } from 'vitest';
import {
  type Tensor,
  add, cast, defineOp, detach, exp, fromHost, gelu, grad, grads, lgamma, log, logSoftmax, matmul, memory, mul, noGrad,
  powScalar, runOp, sigmoid, softmax, softplus, sub, sum, tanh, tidy, valueAndGrad,
} from '../node.js';
import { allocHost } from '../engine/dtype.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { Rng, TOL, compareBackends, host, rand } from './helpers/compare.js';
import { gradcheck, hvpcheck, secondDerivativeCheck } from './helpers/gradcheck.js';

const f64 = (data: number[], shape: number[]) => fromHost(data, shape, 'float64', cpu);
const arr = async (t: Tensor) => Array.from(await t.data());

describe('first derivatives', () => {
  it('a tensor used several times accumulates its gradient (x·x + x → 2x + 1)', async () => {
    const x = f64([0.5, -1, 2, 3], [4]);
    const g = grad((t: Tensor) => add(mul(t, t), t).sum())(x);
    expect(await arr(g)).toEqual([2, -1, 5, 7]);
    await gradcheck((t) => add(mul(t, t), t), [host([0.5, -1, 2, 3], [4], 'float64')], { label: 'x*x+x' });
    // the same tensor on both sides of several ops, and through a diamond
    await gradcheck((t) => mul(exp(t), sub(t, mul(t, t))).sum(), [rand(new Rng(1), [5], 'float64')], { label: 'diamond' });
  });

  it('broadcasting is undone in backward: gradients have the input shapes', async () => {
    const rng = new Rng(2);
    const a = rand(rng, [3, 1], 'float64');
    const b = rand(rng, [1, 4], 'float64');
    const c = rand(rng, [], 'float64');
    const d = rand(rng, [2, 3, 4], 'float64');
    const f = (ta: Tensor, tb: Tensor, tc: Tensor, td: Tensor) => mul(add(mul(ta, tb), tc), td);
    const gs = await gradcheck(f, [a, b, c, d], { label: 'broadcast chain' });
    expect(gs.map((g) => g.length)).toEqual([3, 4, 1, 24]);
    // explicit values: d/db Σ (a + b) over [3,4] = 3 for each of b's 4 entries
    const [, gb] = grads((ta: Tensor, tb: Tensor) => add(ta, tb).sum(), [0, 1])(f64(a.data, a.shape), f64(b.data, b.shape));
    expect(gb!.shape).toEqual([1, 4]);
    expect(await arr(gb!)).toEqual([3, 3, 3, 3]);
  });

  it('backward() accumulates into .grad across calls', async () => {
    const x = f64([1, -2, 3], [3]).requireGrad();
    mul(x, x).sum().backward();
    expect(await arr(x.grad!)).toEqual([2, -4, 6]);
    mul(x, 3).sum().backward();
    expect(await arr(x.grad!)).toEqual([5, -1, 9]);
    // a leaf used twice within one backward also accumulates
    const w = f64([2], []).requireGrad();
    add(mul(w, x), mul(w, w)).sum().backward();
    expect(await arr(w.grad!)).toEqual([1 - 2 + 3 + 3 * 4]);
    x.dispose();
    w.dispose();
  });

  it('noGrad records nothing; detach cuts the graph', async () => {
    const x = f64([0.5, 2], [2]).requireGrad();
    const y = noGrad(() => mul(x, x));
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBeNull();
    const d = detach(x);
    expect(d.requiresGrad).toBe(false);
    expect(await arr(d)).toEqual([0.5, 2]);
    // d/dx [x · stop(x)] = stop(x), not 2x
    const g = grad((t: Tensor) => mul(t, detach(t)).sum())(x);
    expect(await arr(g)).toEqual([0.5, 2]);
    // recording resumes after noGrad
    const z = mul(x, x);
    expect(z.requiresGrad).toBe(true);
    expect(() => noGrad(() => mul(x, x)).backward()).toThrow();
  });

  it('valueAndGrad returns the value and gradients for several arguments', async () => {
    const a = f64([1, 2], [2]);
    const b = f64([3, -1], [2]);
    const { value, grads: [ga, gb] } = valueAndGrad((s: Tensor, t: Tensor) => sum(mul(mul(s, s), t)), { argnums: [0, 1] })(a, b);
    expect(await value.item()).toBe(1 * 3 + 4 * -1);
    expect(await arr(ga!)).toEqual([6, -4]);
    expect(await arr(gb!)).toEqual([1, 4]);
    // argnums selects; non-selected arguments are constants
    const { grads: only } = valueAndGrad((s: Tensor, t: Tensor) => sum(mul(s, t)), { argnums: [1] })(a, b);
    expect(only.length).toBe(1);
    expect(await arr(only[0]!)).toEqual([1, 2]);
  });

  it('gradients handed out for several inputs can be disposed independently', async () => {
    const [ga, gb] = grads((s: Tensor, t: Tensor) => add(s, t).sum(), [0, 1])(f64([1, 2], [2]), f64([3, 4], [2]));
    ga!.dispose();
    expect(await arr(gb!)).toEqual([1, 1]);
    gb!.dispose();
  });

  it('integer inputs get no gradient path but do not break the graph', async () => {
    const rng = new Rng(3);
    await gradcheck((x, i) => mul(x, cast(i, 'float64')), [rand(rng, [2, 3], 'float64'), rand(rng, [3], 'int32')], { label: 'x * float(int)' });
  });

  it('the checker itself rejects a wrong derivative', async () => {
    const WRONG = defineOp<object>({
      name: 'test_wrong_square',
      infer: ([x]) => ({ shape: [...x!.shape], dtype: x!.dtype }),
      cpu([x], _a, out) {
        const r = allocHost(out.dtype, x!.data.length);
        for (let i = 0; i < r.length; i++) r[i] = x!.data[i]! * x!.data[i]!;
        return r;
      },
      webgpu() {
        throw new Error('cpu only');
      },
      grad: (dy, [x]) => [mul(dy, mul(x!, 2.001))], // off by 0.05%
    });
    await expect(gradcheck((x) => runOp(WRONG, [x], {}), [host([0.5, 1.5], [2], 'float64')])).rejects.toThrow(/central differences/);
  });
});

describe('second derivatives vs finite differences of the gradient (float64, CPU)', () => {
  it('grad(grad(f)) for scalar functions', async () => {
    for (const x0 of [-1.3, 0.2, 0.9]) {
      const d2 = await secondDerivativeCheck(tanh, x0, { label: 'tanh' });
      const t = Math.tanh(x0);
      expect(d2).toBeCloseTo(-2 * t * (1 - t * t), 10);
      await secondDerivativeCheck(sigmoid, x0, { label: 'sigmoid' });
      await secondDerivativeCheck(gelu, x0, { label: 'gelu' });
      await secondDerivativeCheck(softplus, x0, { label: 'softplus' });
      await secondDerivativeCheck((x) => mul(exp(x), x), x0, { label: 'x·eˣ' });
      await secondDerivativeCheck((x) => powScalar(x, 3), x0, { label: 'x³' });
    }
    for (const x0 of [0.4, 2.5]) {
      await secondDerivativeCheck(log, x0, { label: 'log' });
      await secondDerivativeCheck(lgamma, x0, { label: 'lgamma' });
    }
    // third derivative through three nested grads
    const x = f64([0.3], []);
    const d3 = grad(grad(grad(tanh)))(x);
    const t = Math.tanh(0.3);
    expect(await d3.item()).toBeCloseTo(-2 * (1 - t * t) * (1 - 3 * t * t), 10);
  });

  it('Hessian-vector products of tanh and elementwise compositions', async () => {
    const rng = new Rng(10);
    await hvpcheck((x) => tanh(x), [rand(rng, [2, 3], 'float64')], { label: 'Σ P·tanh(x)' });
    await hvpcheck((x) => mul(sigmoid(x), softplus(x)), [rand(rng, [5], 'float64')], { label: 'σ(x)·softplus(x)' });
    await hvpcheck((x) => softmax(x, -1), [rand(rng, [2, 4], 'float64')], { label: 'softmax' });
  });

  it('softmax cross-entropy −Σ onehot·logSoftmax(z): gradient softmax − onehot, HVP', async () => {
    const rng = new Rng(11);
    const z = rand(rng, [3, 5], 'float64', { lo: -3, hi: 3 });
    const labels = [1, 4, 0];
    const onehot = host(z.data.map((_, i) => (labels[Math.floor(i / 5)] === i % 5 ? 1 : 0)), [3, 5], 'float64');
    const ce = (t: Tensor, y: Tensor) => mul(sum(mul(y, logSoftmax(t, -1))), -1);
    const [g] = await gradcheck(ce, [z, onehot], { argnums: [0], label: 'cross-entropy' });
    // closed form
    const sm = Float64Array.from(await softmax(f64(z.data, z.shape), -1).data());
    expect(Array.from(g!).map((v, i) => v - (sm[i]! - onehot.data[i]!)).every((d) => Math.abs(d) < 1e-12)).toBe(true);
    await hvpcheck(ce, [z, onehot], { argnum: 0, directions: 3, label: 'cross-entropy HVP' });
  });

  it('matmul chain tanh(x@W1)@W2: gradients and HVPs w.r.t. x and W1', async () => {
    const rng = new Rng(12);
    const x = rand(rng, [4, 3], 'float64', { lo: -1, hi: 1 });
    const W1 = rand(rng, [3, 5], 'float64', { lo: -1, hi: 1 });
    const W2 = rand(rng, [5, 2], 'float64', { lo: -1, hi: 1 });
    const f = (a: Tensor, b: Tensor, c: Tensor) => matmul(tanh(matmul(a, b)), c);
    await gradcheck(f, [x, W1, W2], { label: 'mlp' });
    await hvpcheck(f, [x, W1, W2], { argnum: 1, label: 'mlp HVP wrt W1' });
    await hvpcheck(f, [x, W1, W2], { argnum: 0, label: 'mlp HVP wrt x' });
    // with transposes and batch broadcasting
    const xb = rand(rng, [2, 3, 4], 'float64', { lo: -1, hi: 1 });
    const g = (a: Tensor, b: Tensor, c: Tensor) => matmul(tanh(matmul(a, b, { transposeA: true })), c, { transposeB: true });
    await gradcheck(g, [xb, rand(rng, [3, 5], 'float64'), rand(rng, [2, 5], 'float64')], { label: 'batched mlp with transposes' });
    await hvpcheck(g, [xb, rand(rng, [3, 5], 'float64'), rand(rng, [2, 5], 'float64')], { argnum: 1, label: 'batched mlp HVP' });
  });

  it('HVP equals the full Hessian times v (Hessian built column by column)', async () => {
    // f(x) = Σ tanh(x)·x²: Hessian is diagonal, H_ii = d²/dx² [tanh(x) x²]
    const xs = [0.3, -0.7, 1.1];
    const v = [1, -2, 0.5];
    const x = f64(xs, [3]);
    const V = f64(v, [3]);
    const f = (t: Tensor) => sum(mul(tanh(t), mul(t, t)));
    const hv = grad((t: Tensor) => sum(mul(grad(f)(t), V)))(x);
    const h2 = (a: number) => {
      const t = Math.tanh(a);
      const s = 1 - t * t;
      return -2 * t * s * a * a + 4 * s * a + 2 * t;
    };
    const got = await arr(hv);
    xs.forEach((a, i) => expect(got[i]).toBeCloseTo(h2(a) * v[i]!, 12));
  });
});

describe('WebGPU gradients vs the CPU reference (float32)', () => {
  it('an MLP with softmax cross-entropy: gradients w.r.t. every parameter', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(20);
    const x = rand(rng, [6, 5], 'float32', { lo: -1, hi: 1 });
    const W1 = rand(rng, [5, 7], 'float32', { lo: -1, hi: 1 });
    const b1 = rand(rng, [7], 'float32', { lo: -1, hi: 1 });
    const W2 = rand(rng, [7, 3], 'float32', { lo: -1, hi: 1 });
    const y = host(Array.from({ length: 18 }, (_, i) => (i % 3 === Math.floor(i / 3) % 3 ? 1 : 0)), [6, 3]);
    const loss = (a: Tensor, w1: Tensor, bb: Tensor, w2: Tensor, t: Tensor) => mul(sum(mul(t, logSoftmax(matmul(tanh(add(matmul(a, w1), bb)), w2), -1))), -1 / 6);
    for (const k of [0, 1, 2, 3]) {
      await compareBackends(cpu, gpu, (...ts) => grads(loss, [k])(...ts)[0]!, [x, W1, b1, W2, y], TOL.compositeReduction(7), `d loss / d arg ${k}`);
    }
    // and a Hessian-vector product on the GPU
    const v = rand(rng, [5, 7], 'float32');
    await compareBackends(
      cpu, gpu,
      (a, w1, bb, w2, t, vv) => grad((w: Tensor) => sum(mul(grad((u: Tensor) => loss(a, u, bb, w2, t))(w), vv)))(w1),
      [x, W1, b1, W2, y, v], TOL.compositeReduction(7), 'HVP w.r.t. W1',
    );
  });

  it('no tensors leak from grad / valueAndGrad / backward on WebGPU', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const x = fromHost([0.1, -0.3, 0.7, 2], [2, 2], 'float32', gpu);
    const before = memory().liveTensors;
    for (let i = 0; i < 5; i++) {
      tidy(() => {
        grad((t: Tensor) => sum(logSoftmax(matmul(t, t), -1)))(x);
        valueAndGrad((t: Tensor) => sum(mul(tanh(t), t)))(x);
        grad((t: Tensor) => sum(mul(grad((u: Tensor) => sum(tanh(u)))(t), t)))(x);
      });
    }
    expect(memory().liveTensors).toBe(before);
    x.dispose();
  });
});
