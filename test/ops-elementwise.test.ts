/**
 * Elementwise ops: every unary and binary op, `where` and `cast` on WebGPU against the CPU
 * reference (same seeded host inputs, tolerances from test/helpers/compare.ts), int32/bool
 * variants, domain edges (NaN/±inf positions must match), and gradients against float64
 * central differences on the CPU.
 */
import { describe, expect, it } from 'vitest';
import {
  type DType,
  type Tensor,
  abs, add, cast, digamma, fromHost, grad, grads, div, eq, erfOp, exp, ge, gelu, gt, le, leakyRelu, lgamma, log, log1p, lt,
  maximum, minimum, mul, ne, neg, pow, powScalar, reciprocal, relu, rsqrt, sigmoid, sign, softplus,
  sqrt, square, sub, tanh, trigamma, where,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { type HostTensor, type RandOptions, type Tol, Rng, TOL, compareBackends, fmt, host, rand, runOn } from './helpers/compare.js';
import { gradcheck } from './helpers/gradcheck.js';

const SHAPES: number[][] = [[], [1], [0], [7], [3, 65], [2, 0, 3], [2, 3, 1, 5]];
const BROADCAST_PAIRS: [number[], number[]][] = [
  [[3, 1], [1, 4]],
  [[5], [2, 3, 5]],
  [[], [4, 4]],
  [[2, 1, 3], [4, 1]],
  [[4, 4], []],
  [[2, 3, 1, 5], [3, 4, 1]],
];

/** Keeps inputs at least 0.05 away from a kink/pole at `at` (so FD and f32 rounding behave). */
const awayFrom = (...at: number[]) => (v: number) => at.some((a) => Math.abs(v - a) < 0.05);

interface UnaryCase {
  name: string;
  f: (x: Tensor) => Tensor;
  tol: Tol;
  /** Input range for the forward comparison. */
  domain: RandOptions;
  /** int32 input stays int32 (otherwise int/bool inputs are promoted to float32). */
  intKeeps: boolean;
  /** Input range for int32 variants (small, inside the op's domain). */
  intDomain?: RandOptions;
  /** Differentiable: checked against finite differences on this domain. */
  grad?: RandOptions;
}

const UNARY: UnaryCase[] = [
  { name: 'neg', f: neg, tol: TOL.arith, domain: {}, intKeeps: true, grad: {} },
  { name: 'exp', f: exp, tol: TOL.transcendental, domain: { lo: -5, hi: 5 }, intKeeps: false, grad: {} },
  { name: 'log', f: log, tol: TOL.transcendental, domain: { lo: 0.01, hi: 10 }, intKeeps: false, intDomain: { lo: 1, hi: 20 }, grad: { lo: 0.2, hi: 3 } },
  { name: 'log1p', f: log1p, tol: TOL.transcendental, domain: { lo: -0.9, hi: 5 }, intKeeps: false, intDomain: { lo: 0, hi: 20 }, grad: { lo: -0.5, hi: 3 } },
  { name: 'sqrt', f: sqrt, tol: TOL.divSqrt, domain: { lo: 0, hi: 10 }, intKeeps: false, intDomain: { lo: 0, hi: 50 }, grad: { lo: 0.2, hi: 3 } },
  { name: 'rsqrt', f: rsqrt, tol: TOL.divSqrt, domain: { lo: 0.01, hi: 10 }, intKeeps: false, intDomain: { lo: 1, hi: 50 }, grad: { lo: 0.2, hi: 3 } },
  { name: 'abs', f: abs, tol: TOL.arith, domain: {}, intKeeps: true, grad: { avoid: awayFrom(0) } },
  { name: 'sign', f: sign, tol: TOL.select, domain: { lo: -2, hi: 2 }, intKeeps: true },
  { name: 'relu', f: relu, tol: TOL.arith, domain: {}, intKeeps: true, grad: { avoid: awayFrom(0) } },
  { name: 'leakyRelu', f: (x) => leakyRelu(x, 0.1), tol: TOL.arith, domain: {}, intKeeps: true, intDomain: { lo: -50, hi: 50 }, grad: { avoid: awayFrom(0) } },
  { name: 'gelu', f: gelu, tol: TOL.special, domain: { lo: -5, hi: 5 }, intKeeps: false, grad: { lo: -3, hi: 3 } },
  { name: 'sigmoid', f: sigmoid, tol: TOL.transcendental, domain: { lo: -8, hi: 8 }, intKeeps: false, grad: { lo: -4, hi: 4 } },
  { name: 'tanh', f: tanh, tol: TOL.transcendental, domain: { lo: -4, hi: 4 }, intKeeps: false, grad: {} },
  { name: 'softplus', f: softplus, tol: TOL.transcendental, domain: { lo: -8, hi: 8 }, intKeeps: false, grad: { lo: -4, hi: 4 } },
  { name: 'lgamma', f: lgamma, tol: TOL.special, domain: { lo: 0.05, hi: 12 }, intKeeps: false, intDomain: { lo: 1, hi: 20 }, grad: { lo: 0.3, hi: 6 } },
  { name: 'digamma', f: digamma, tol: TOL.special, domain: { lo: 0.05, hi: 12 }, intKeeps: false, intDomain: { lo: 1, hi: 20 }, grad: { lo: 0.3, hi: 6 } },
  { name: 'powScalar(2.5)', f: (x) => powScalar(x, 2.5), tol: TOL.transcendental, domain: { lo: 0, hi: 4 }, intKeeps: false, intDomain: { lo: 0, hi: 10 }, grad: { lo: 0.2, hi: 3 } },
  { name: 'powScalar(-3)', f: (x) => powScalar(x, -3), tol: TOL.transcendental, domain: { lo: -3, hi: 3, avoid: awayFrom(0) }, intKeeps: false, intDomain: { lo: 1, hi: 5 }, grad: { lo: 0.5, hi: 2 } },
  { name: 'square', f: square, tol: TOL.arith, domain: {}, intKeeps: true, grad: {} },
  { name: 'reciprocal', f: reciprocal, tol: TOL.divSqrt, domain: { lo: -3, hi: 3, avoid: awayFrom(0) }, intKeeps: false, intDomain: { lo: 1, hi: 9 }, grad: { lo: 0.3, hi: 3 } },
  { name: 'erf', f: erfOp, tol: TOL.special, domain: { lo: -4, hi: 4 }, intKeeps: false, grad: {} },
];

describe('unary ops: WebGPU vs CPU', () => {
  for (const op of UNARY) {
    it(`${op.name} float32 on ${SHAPES.map(fmt).join(' ')}`, async (ctx) => {
      const gpu = await requireWebGPU(ctx);
      const rng = new Rng(11);
      for (const shape of SHAPES) {
        const { cpu: c } = await compareBackends(cpu, gpu, op.f, [rand(rng, shape, 'float32', op.domain)], op.tol, `${op.name} ${fmt(shape)}`);
        expect(c.dtype).toBe('float32');
        expect(c.shape).toEqual(shape);
      }
    });

    it(`${op.name} int32 and bool inputs`, async (ctx) => {
      const gpu = await requireWebGPU(ctx);
      const rng = new Rng(12);
      for (const dtype of ['int32', 'bool'] as DType[]) {
        for (const shape of [[7], [3, 65]]) {
          const input = rand(rng, shape, dtype, dtype === 'int32' ? (op.intDomain ?? { lo: -9, hi: 9 }) : {});
          const { cpu: c } = await compareBackends(cpu, gpu, op.f, [input], op.tol, `${op.name} ${dtype} ${fmt(shape)}`);
          expect(c.dtype, `${op.name}(${dtype}) dtype`).toBe(op.intKeeps ? 'int32' : 'float32');
        }
      }
    });
  }

  // Domain edges and IEEE specials: NaN / ±inf must land in the same positions on both backends.
  const SPECIALS = [0, -0, 1, -1, 0.5, -0.5, 2, 1e-30, -1e-30, 100, -100, Infinity, -Infinity, NaN];
  for (const op of UNARY.filter((o) => !['lgamma', 'digamma'].includes(o.name))) {
    it(`${op.name} on IEEE specials and domain edges`, async (ctx) => {
      const gpu = await requireWebGPU(ctx);
      await compareBackends(cpu, gpu, op.f, [host(SPECIALS, [SPECIALS.length])], op.tol, `${op.name} specials`);
    });
  }

  it('lgamma/digamma at poles and large arguments', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    // x > 0 is the documented domain; poles at 0 and large x must agree positionally.
    const xs = [1e-3, 0.5, 1, 2, 3, 10, 100, 1e4, Infinity, NaN];
    await compareBackends(cpu, gpu, lgamma, [host(xs, [xs.length])], TOL.special, 'lgamma edges');
    await compareBackends(cpu, gpu, digamma, [host(xs, [xs.length])], TOL.special, 'digamma edges');
  });

  it('trigamma: WebGPU vs CPU on its domain (odd length), at the pole and at large x', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(17);
    const r = rand(rng, [3, 67], 'float32', { lo: 0.05, hi: 30 });
    await compareBackends(cpu, gpu, trigamma, [r], TOL.special, 'trigamma');
    const xs = [1e-3, 0.5, 1, 2, 10, 1e4, Infinity, NaN];
    await compareBackends(cpu, gpu, trigamma, [host(xs, [xs.length])], TOL.special, 'trigamma edges');
    await compareBackends(cpu, gpu, trigamma, [host([], [0, 3])], TOL.special, 'trigamma empty');
  });

  it('documented domain-edge values', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const x = host([0, -1, -0], [3]);
    for (const be of [cpu, gpu]) {
      expect(Array.from((await runOn(be, log, [x])).data), `log on ${be.name}`).toEqual([-Infinity, NaN, -Infinity]);
      expect(Array.from((await runOn(be, sqrt, [x])).data), `sqrt on ${be.name}`).toEqual([0, NaN, -0]);
      expect(Array.from((await runOn(be, log1p, [host([-1], [1])])).data), `log1p(-1) on ${be.name}`).toEqual([-Infinity]);
      expect(Array.from((await runOn(be, reciprocal, [host([0, -0], [2])])).data), `1/±0 on ${be.name}`).toEqual([Infinity, -Infinity]);
    }
  });
});

describe('unary ops: gradients vs float64 finite differences (CPU)', () => {
  for (const op of UNARY.filter((o) => o.grad)) {
    it(`d ${op.name}`, async () => {
      const rng = new Rng(21);
      await gradcheck(op.f, [rand(rng, [2, 5], 'float64', op.grad)], { label: op.name });
      await gradcheck(op.f, [rand(rng, [], 'float64', op.grad)], { label: `${op.name} scalar` });
    });
  }
  it('sign contributes no gradient (d sign(x)·x = sign(x))', async () => {
    const g = grad((x: Tensor) => sign(x).mul(x).sum())(fromHost([1.5, -2], [2], 'float64', cpu));
    expect(Array.from(await g.data())).toEqual([1, -1]);
  });
});

// ------------------------------------------------------------------------------------ binary
interface BinaryCase {
  name: string;
  f: (a: Tensor, b: Tensor) => Tensor;
  tol: Tol;
  a: RandOptions;
  b: RandOptions;
  /** Draw from a small discrete set so ties/equalities occur. */
  discrete?: boolean;
  grad?: { a: RandOptions; b: RandOptions };
}

const BINARY: BinaryCase[] = [
  { name: 'add', f: add, tol: TOL.arith, a: {}, b: {}, grad: { a: {}, b: {} } },
  { name: 'sub', f: sub, tol: TOL.arith, a: {}, b: {}, grad: { a: {}, b: {} } },
  { name: 'mul', f: mul, tol: TOL.arith, a: {}, b: {}, grad: { a: {}, b: {} } },
  { name: 'div', f: div, tol: TOL.divSqrt, a: {}, b: { avoid: awayFrom(0) }, grad: { a: {}, b: { lo: 0.5, hi: 2 } } },
  { name: 'pow', f: pow, tol: TOL.transcendental, a: { lo: 0, hi: 3 }, b: { lo: -2, hi: 2 }, grad: { a: { lo: 0.3, hi: 2 }, b: { lo: -2, hi: 2 } } },
  { name: 'maximum', f: maximum, tol: TOL.arith, a: {}, b: {}, discrete: true, grad: { a: {}, b: {} } },
  { name: 'minimum', f: minimum, tol: TOL.arith, a: {}, b: {}, discrete: true, grad: { a: {}, b: {} } },
  { name: 'eq', f: eq, tol: TOL.exact, a: {}, b: {}, discrete: true },
  { name: 'ne', f: ne, tol: TOL.exact, a: {}, b: {}, discrete: true },
  { name: 'lt', f: lt, tol: TOL.exact, a: {}, b: {}, discrete: true },
  { name: 'le', f: le, tol: TOL.exact, a: {}, b: {}, discrete: true },
  { name: 'gt', f: gt, tol: TOL.exact, a: {}, b: {}, discrete: true },
  { name: 'ge', f: ge, tol: TOL.exact, a: {}, b: {}, discrete: true },
];

/** Random floats, or (discrete) halves in [−2, 2] so that ties are common. */
function operand(rng: Rng, shape: number[], dtype: DType, o: RandOptions, discrete: boolean): HostTensor {
  if (discrete && dtype === 'float32') {
    const h = rand(rng, shape, 'int32', { lo: -4, hi: 4 });
    return { ...h, data: h.data.map((v) => v / 2), dtype };
  }
  return rand(rng, shape, dtype, dtype === 'int32' ? { lo: -6, hi: 6 } : o);
}

const COMPARES = new Set(['eq', 'ne', 'lt', 'le', 'gt', 'ge']);

describe('binary ops: WebGPU vs CPU', () => {
  for (const op of BINARY) {
    it(`${op.name} float32, same shapes and broadcasting`, async (ctx) => {
      const gpu = await requireWebGPU(ctx);
      const rng = new Rng(31);
      const pairs: [number[], number[]][] = [...SHAPES.map((s): [number[], number[]] => [s, s]), ...BROADCAST_PAIRS, [[2, 0, 3], [3]], [[0], []]];
      for (const [sa, sb] of pairs) {
        const a = operand(rng, sa, 'float32', op.a, !!op.discrete);
        const b = operand(rng, sb, 'float32', op.b, !!op.discrete);
        const { cpu: c } = await compareBackends(cpu, gpu, op.f, [a, b], op.tol, `${op.name} ${fmt(sa)} ${fmt(sb)}`);
        expect(c.dtype).toBe(COMPARES.has(op.name) ? 'bool' : 'float32');
      }
    });

    it(`${op.name} int32, bool and mixed dtypes`, async (ctx) => {
      const gpu = await requireWebGPU(ctx);
      const rng = new Rng(32);
      const combos: [DType, DType, DType][] = [
        // a, b, expected result dtype (comparisons: bool)
        ['int32', 'int32', op.name === 'div' || op.name === 'pow' ? 'float32' : 'int32'],
        ['bool', 'bool', op.name === 'div' || op.name === 'pow' ? 'float32' : 'int32'],
        ['int32', 'float32', 'float32'],
        ['bool', 'int32', op.name === 'div' || op.name === 'pow' ? 'float32' : 'int32'],
      ];
      for (const [da, db, want] of combos) {
        for (const [sa, sb] of [[[7], [7]], [[3, 1], [1, 4]]] as [number[], number[]][]) {
          let a = operand(rng, sa, da, op.a, !!op.discrete);
          let b = operand(rng, sb, db, op.b, !!op.discrete);
          if (op.name === 'div') b = { ...b, data: b.data.map((v) => (v === 0 ? 3 : v)) };
          if (op.name === 'pow') a = { ...a, data: a.data.map((v) => Math.abs(v)) };
          const { cpu: c } = await compareBackends(cpu, gpu, op.f, [a, b], op.tol, `${op.name} ${da} ${fmt(sa)} ${db} ${fmt(sb)}`);
          expect(c.dtype, `${op.name}(${da}, ${db})`).toBe(COMPARES.has(op.name) ? 'bool' : want);
        }
      }
    });
  }

  it('IEEE specials on both sides (all pairs)', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const S = [0, -0, 1, -1, 2.5, -3, Infinity, -Infinity, NaN];
    const a = host(S, [S.length, 1]);
    const b = host(S, [1, S.length]);
    for (const op of BINARY) await compareBackends(cpu, gpu, op.f, [a, b], op.tol, `${op.name} specials`);
    // powScalar shares the IEEE special cases (exponents applied one at a time)
    for (const p of [-3, -2, -0.5, 0.5, 1, 2, 3]) await compareBackends(cpu, gpu, (x) => powScalar(x, p), [host(S, [S.length])], TOL.transcendental, `powScalar(${p}) specials`);
  });

  it('pow: negative bases with integer exponents, zero bases, NaN for fractional exponents', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const A = [-2, -1.5, -1, 0, -0, 0.5, 2, 3];
    const B = [-3, -2, -1, 0, 1, 2, 3, 0.5, -0.5];
    const { cpu: c } = await compareBackends(cpu, gpu, pow, [host(A, [A.length, 1]), host(B, [1, B.length])], TOL.transcendental, 'pow table');
    expect(c.data[0 * B.length + 2]).toBe(-0.5); // (−2)^−1
    expect(c.data[0 * B.length + 5]).toBe(4); // (−2)^2
    expect(c.data[0 * B.length + 7]).toBeNaN(); // (−2)^0.5
    expect(c.data[3 * B.length + 0]).toBe(Infinity); // 0^−3
  });

  it('division by zero gives ±inf and 0/0 gives NaN on both backends', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const { gpu: g } = await compareBackends(cpu, gpu, div, [host([1, -1, 0, 5], [4]), host([0, 0, 0, -0], [4])], TOL.divSqrt, 'div by zero');
    expect(Array.from(g.data)).toEqual([Infinity, -Infinity, NaN, -Infinity]);
  });

  it('number operands broadcast as 0-d tensors', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(33);
    const x = rand(rng, [3, 5]);
    await compareBackends(cpu, gpu, (t) => add(mul(t, 3), 1.5), [x], TOL.arith, 'x*3+1.5');
    await compareBackends(cpu, gpu, (t) => sub(2, div(1, t)), [x], TOL.divSqrt, '2-1/x');
    const i = rand(rng, [3, 5], 'int32');
    const { cpu: c } = await compareBackends(cpu, gpu, (t) => add(t, 2), [i], TOL.exact, 'int+2');
    expect(c.dtype).toBe('int32');
    const { cpu: c2 } = await compareBackends(cpu, gpu, (t) => mul(t, 0.5), [i], TOL.arith, 'int*0.5');
    expect(c2.dtype).toBe('float32');
  });
});

describe('where and cast: WebGPU vs CPU', () => {
  it('where with broadcasting of condition and both branches, all dtypes', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(41);
    const triples: [number[], number[], number[]][] = [
      [[7], [7], [7]],
      [[3, 1], [1, 4], []],
      [[2, 3, 5], [5], [3, 1]],
      [[], [2, 2], [2, 2]],
      [[0, 3], [3], [1]],
      [[2, 1, 3], [4, 1], [1, 1, 3]],
    ];
    for (const dtype of ['float32', 'int32', 'bool'] as DType[]) {
      for (const [sc, sa, sb] of triples) {
        const args = [rand(rng, sc, 'bool'), rand(rng, sa, dtype), rand(rng, sb, dtype)];
        const { cpu: c } = await compareBackends(cpu, gpu, where, args, TOL.exact, `where ${dtype} ${fmt(sc)} ${fmt(sa)} ${fmt(sb)}`);
        expect(c.dtype).toBe(dtype);
      }
    }
    // number branches
    await compareBackends(cpu, gpu, (c, a) => where(c, a, 0), [rand(rng, [3, 4], 'bool'), rand(rng, [4])], TOL.exact, 'where(c, a, 0)');
  });

  it('cast between all dtype pairs (float → int truncates toward zero, → bool is != 0)', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(42);
    const dtypes: DType[] = ['float32', 'int32', 'bool'];
    for (const from of dtypes) {
      for (const to of dtypes) {
        for (const shape of [[], [0], [7], [3, 65]]) {
          const h = rand(rng, shape, from, from === 'float32' ? { lo: -5, hi: 5 } : { lo: -3, hi: 3 });
          // sprinkle exact zeros so → bool sees both outcomes
          const x = { ...h, data: h.data.map((v, i) => (i % 3 === 0 ? 0 : v)) };
          const { cpu: c } = await compareBackends(cpu, gpu, (t) => cast(t, to), [x], TOL.exact, `cast ${from}→${to} ${fmt(shape)}`);
          expect(c.dtype).toBe(to);
        }
      }
    }
    const { gpu: g } = await compareBackends(cpu, gpu, (t) => cast(t, 'int32'), [host([-2.7, -0.5, 0.5, 2.7, 1e6 + 0.5], [5])], TOL.exact, 'trunc');
    expect(Array.from(g.data)).toEqual([-2, 0, 0, 2, 1000000]);
    // out of range saturates (WGSL semantics; the largest float32 below 2^31 is 2^31 − 128), NaN → 0
    const { gpu: gs } = await compareBackends(cpu, gpu, (t) => cast(t, 'int32'), [host([3e9, -3e9, NaN, Infinity, -Infinity, -2147483648], [6])], TOL.exact, 'saturation');
    expect(Array.from(gs.data)).toEqual([2147483520, -2147483648, 0, 2147483520, -2147483648, -2147483648]);
    const { gpu: gb } = await compareBackends(cpu, gpu, (t) => cast(t, 'bool'), [host([0, -0, NaN, 1e-30, -Infinity], [5])], TOL.exact, 'to bool');
    expect(Array.from(gb.data)).toEqual([0, 0, 1, 1, 1]);
  });
});

describe('binary ops, where, cast: gradients vs float64 finite differences (CPU)', () => {
  const PAIRS: [number[], number[]][] = [[[2, 3], [2, 3]], ...BROADCAST_PAIRS.slice(0, 4)];
  for (const op of BINARY.filter((o) => o.grad)) {
    it(`d ${op.name} (incl. broadcasting: gradients summed back to input shapes)`, async () => {
      const rng = new Rng(51);
      for (const [sa, sb] of PAIRS) {
        const a = rand(rng, sa, 'float64', op.grad!.a);
        let b = rand(rng, sb, 'float64', op.grad!.b);
        if (op.name === 'maximum' || op.name === 'minimum') {
          // keep |a − b| away from 0 at every broadcast pairing (the kink), by shifting b's range
          b = { ...b, data: b.data.map((v) => (v >= 0 ? v + 2.1 : v - 2.1)) };
        }
        await gradcheck(op.f, [a, b], { label: `${op.name} ${fmt(sa)} ${fmt(sb)}` });
      }
    });
  }

  it('maximum/minimum split the gradient evenly on ties', async () => {
    for (const f of [maximum, minimum]) {
      const [ga, gb] = grads((a: Tensor, b: Tensor) => f(a, b).sum(), [0, 1])(fromHost([1, 2, 3], [3], 'float64', cpu), fromHost([1, 0, 5], [3], 'float64', cpu));
      const wa = f === maximum ? [0.5, 1, 0] : [0.5, 0, 1];
      expect(Array.from(await ga!.data())).toEqual(wa);
      expect(Array.from(await gb!.data())).toEqual(wa.map((v) => 1 - v));
    }
  });

  it('d where (condition broadcast against both branches)', async () => {
    const rng = new Rng(52);
    const c = rand(rng, [3, 1], 'bool');
    await gradcheck((cc, a, b) => where(cc, a, b), [c, rand(rng, [1, 4], 'float64'), rand(rng, [3, 4], 'float64')], { label: 'where' });
    await gradcheck((cc, a) => where(cc, mul(a, a), 0), [rand(rng, [2, 3], 'bool'), rand(rng, [3], 'float64')], { label: 'where(c, a², 0)' });
  });

  it('d cast (float64 → float32 → float64 is the identity up to f32 rounding)', async () => {
    const rng = new Rng(53);
    // The function itself rounds to float32 (relative 6e-8 of |x| ≈ 2), so central differences
    // need a larger step: with eps 1e-3 the rounding contributes ≤ 2·1.2e-7/2e-3 ≈ 1.2e-4.
    await gradcheck((x) => mul(cast(cast(x, 'float32'), 'float64'), 3), [rand(rng, [2, 3], 'float64')], { eps: 1e-3, rtol: 5e-4, atol: 5e-4, label: 'cast' });
  });
});
