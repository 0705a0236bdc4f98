import unaryWgsl from '../../kernels/unary.wgsl';
import { type DType, allocHost, isFloat } from '../dtype.js';
import { ArgumentError } from '../errors.js';
import { type OpDef, defineOp, splitMatchingRows } from '../op.js';
import { erf, geluExact, powC99, digamma as digamma64, lgamma as lgamma64, trigamma as trigamma64 } from '../special.js';
import { type Tensor, runOp } from '../tensor.js';
import { grid1D } from '../webgpu/webgpu-backend.js';
import { UNARY_OPS } from '../webgpu/kernel-constants.js';
import { kernelFamily } from '../webgpu/kernel-source.js';
import { wgslStorageType } from './elementwise-util.js';
import { add, div, mul, sub, where, gt, reluGrad } from './binary.js';

interface UnaryAttrs {
  alpha: number;
}

type GradFn = (dy: Tensor, x: Tensor, out: Tensor, attrs: UnaryAttrs) => Tensor;

const UNARY = kernelFamily({ name: 'unary', source: unaryWgsl, preludes: ['elementwise', 'ieee', 'special'], opCodes: UNARY_OPS });

/**
 * Defines an elementwise unary op. `intOk` ops keep int32 inputs int32 (bool becomes int32);
 * the others compute in float and promote int/bool inputs to float32, as PyTorch does.
 */
function unary(name: Exclude<keyof typeof UNARY_OPS, 'identity'>, f: (v: number, a: number) => number, intOk: boolean, grad?: GradFn): OpDef<UnaryAttrs> {
  const code = UNARY_OPS[name];
  return defineOp<UnaryAttrs>({
    name,
    splitRows: splitMatchingRows,
    infer([x]) {
      const dtype: DType = isFloat(x.dtype) ? x.dtype : intOk ? 'int32' : 'float32';
      return { shape: [...x.shape], dtype };
    },
    cpu([x], attrs, out) {
      const n = x.data.length;
      const r = allocHost(out.dtype, n);
      const a = attrs.alpha;
      for (let i = 0; i < n; i++) r[i] = f(x.data[i], a);
      return r;
    },
    webgpu(gpu, [x], attrs, out) {
      const n = x.shape.reduce((p, d) => p * d, 1);
      const tc = out.dtype === 'int32' ? 'i32' : 'f32';
      gpu.dispatch({
        kernel: UNARY.variant({ types: { TA: wgslStorageType(x.dtype), TC: tc, TO: wgslStorageType(out.dtype) } }),
        constants: { OP: code },
        bindings: { x: x.buffer, out: out.buffer, params: { n, alpha: attrs.alpha } },
        workgroups: grid1D(n),
      });
    },
    // sign is piecewise constant: no gradient.
    ...(grad ? { grad: (dy: Tensor, [x]: readonly Tensor[], out: Tensor, attrs: UnaryAttrs) => [isFloat(x.dtype) ? grad(dy, x, out, attrs) : null] } : { notDifferentiable: true as const }),
  });
}

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const sigmoid64 = (v: number) => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));
const powIEEE = powC99;

const NEG = unary('neg', (v) => -v, true, (dy) => negT(dy));
const EXP = unary('exp', (v) => Math.exp(v), false, (dy, _x, out) => mul(dy, out));
const LOG = unary('log', (v) => Math.log(v), false, (dy, x) => div(dy, x));
const LOG1P = unary('log1p', (v) => Math.log1p(v), false, (dy, x) => div(dy, add(x, 1)));
const SQRT = unary('sqrt', (v) => Math.sqrt(v), false, (dy, _x, out) => div(mul(dy, 0.5), out));
const RSQRT = unary('rsqrt', (v) => 1 / Math.sqrt(v), false, (dy, x, out) => mul(dy, div(mul(out, -0.5), x)));
const ABS = unary('abs', (v) => Math.abs(v), true, (dy, x) => mul(dy, signT(x)));
const SIGN = unary('sign', (v) => (v > 0 ? 1 : v < 0 ? -1 : 0), true);
// relu(NaN) = NaN (PyTorch): NaN is never swallowed into 0.
const RELU = unary('relu', (v) => (v > 0 || Number.isNaN(v) ? v : 0), true, (dy, x) => reluGrad(x, dy));
const LEAKY = unary('leakyRelu', (v, a) => (v > 0 ? v : v * a), true, (dy, x, _o, at) => where(gt(x, 0), dy, mul(dy, at.alpha)));
const GELU = unary('gelu', geluExact, false, (dy, x) => {
  // d/dx [x Φ(x)] = Φ(x) + x φ(x), written with differentiable ops so gelu has second derivatives.
  const cdf = mul(add(erfT(mul(x, SQRT1_2)), 1), 0.5);
  const pdf = mul(expT(mul(mul(x, x), -0.5)), INV_SQRT_2PI);
  return mul(dy, add(cdf, mul(x, pdf)));
});
const SIGMOID = unary('sigmoid', sigmoid64, false, (dy, _x, out) => mul(dy, mul(out, sub(1, out))));
const TANH = unary('tanh', (v) => Math.tanh(v), false, (dy, _x, out) => mul(dy, sub(1, mul(out, out))));
const SOFTPLUS = unary('softplus', (v) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))), false, (dy, x) => mul(dy, sigmoidT(x)));
const LGAMMA = unary('lgamma', lgamma64, false, (dy, x) => mul(dy, digammaT(x)));
const DIGAMMA = unary('digamma', digamma64, false, (dy, x) => mul(dy, trigammaT(x)));
const TRIGAMMA = unary('trigamma', trigamma64, false, () => {
  throw new ArgumentError('trigamma: its derivative (tetragamma) is not implemented, so digamma has no third derivative');
});
const POWS = unary('powScalar', (v, p) => powIEEE(v, p), false, (dy, x, _o, at) =>
  at.alpha === 0 ? mul(dy, 0) : mul(dy, mul(powScalarT(x, at.alpha - 1), at.alpha)),
);
const SQUARE = unary('square', (v) => v * v, true, (dy, x) => mul(dy, mul(x, 2)));
const ERF = unary('erf', erf, false, (dy, x) => mul(dy, mul(expT(mul(mul(x, x), -1)), 2 / Math.sqrt(Math.PI))));
const RECIP = unary('reciprocal', (v) => 1 / v, false, (dy, _x, out) => mul(dy, negT(mul(out, out))));

const NONE: UnaryAttrs = { alpha: 0 };
function negT(x: Tensor): Tensor { return runOp(NEG, [x], NONE); }
function expT(x: Tensor): Tensor { return runOp(EXP, [x], NONE); }
function signT(x: Tensor): Tensor { return runOp(SIGN, [x], NONE); }
function erfT(x: Tensor): Tensor { return runOp(ERF, [x], NONE); }
function sigmoidT(x: Tensor): Tensor { return runOp(SIGMOID, [x], NONE); }
function digammaT(x: Tensor): Tensor { return runOp(DIGAMMA, [x], NONE); }
function trigammaT(x: Tensor): Tensor { return runOp(TRIGAMMA, [x], NONE); }
function powScalarT(x: Tensor, p: number): Tensor { return runOp(POWS, [x], { alpha: p }); }

function finiteScalar(op: string, name: string, v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ArgumentError(`${op}: ${name} must be a finite number, got ${v}`);
  return v;
}

/** −x. */
export const neg = negT;
/** eˣ. */
export const exp = expT;
/** Natural log (NaN for x < 0, −∞ at 0). */
export function log(x: Tensor): Tensor { return runOp(LOG, [x], NONE); }
/** log(1 + x), accurate for small |x|. */
export function log1p(x: Tensor): Tensor { return runOp(LOG1P, [x], NONE); }
export function sqrt(x: Tensor): Tensor { return runOp(SQRT, [x], NONE); }
/** 1/√x. */
export function rsqrt(x: Tensor): Tensor { return runOp(RSQRT, [x], NONE); }
export function abs(x: Tensor): Tensor { return runOp(ABS, [x], NONE); }
/** −1, 0 or 1 (gradient 0). */
export const sign = signT;
/** max(x, 0); relu(NaN) = NaN (PyTorch). The gradient at 0 (and at NaN) is taken as 0. */
export function relu(x: Tensor): Tensor { return runOp(RELU, [x], NONE); }
/** x for x > 0, αx otherwise. */
export function leakyRelu(x: Tensor, alpha = 0.01): Tensor { return runOp(LEAKY, [x], { alpha: finiteScalar('leakyRelu', 'alpha', alpha) }); }
/**
 * Exact GELU: x·Φ(x) = ½x(1 + erf(x/√2)) (PyTorch's default, not the tanh approximation),
 * computed as ½x·erfc(−x/√2) so the negative tail keeps its precision. gelu(+inf) = +inf,
 * gelu(NaN) = NaN. Deliberate difference from PyTorch: gelu(−inf) = −0, the limit of x·Φ(x),
 * where PyTorch's ½x(1 + erf(x/√2)) evaluates −inf·0 = NaN (an input of −inf is a well-defined
 * point of the function, not a missing value).
 */
export function gelu(x: Tensor): Tensor { return runOp(GELU, [x], NONE); }
/** 1/(1 + e⁻ˣ), computed without overflow. */
export const sigmoid = sigmoidT;
export function tanh(x: Tensor): Tensor { return runOp(TANH, [x], NONE); }
/** log(1 + eˣ) = max(x,0) + log1p(e^{−|x|}), stable for large |x|. */
export function softplus(x: Tensor): Tensor { return runOp(SOFTPLUS, [x], NONE); }
/** ln Γ(x) for x > 0 (relative error < 1e-5 in float32 on [1e-3, 1e4]). */
export function lgamma(x: Tensor): Tensor { return runOp(LGAMMA, [x], NONE); }
/** ψ(x) = d/dx ln Γ(x); ψ(+0) = −inf and ψ(−0) = +inf (PyTorch), NaN at −1, −2, … and −inf. */
export const digamma = digammaT;
/** ψ′(x) = d²/dx² ln Γ(x) (not itself differentiable). */
export const trigamma = trigammaT;
/** erf(x). */
export const erfOp = erfT;
/** x^p for a finite scalar exponent p (C99 pow semantics: negative x with integer p keeps the sign; 1^p = 1, x^0 = 1 also for NaN x). */
export function powScalar(x: Tensor, p: number): Tensor { return powScalarT(x, finiteScalar('pow', 'exponent', p)); }
/** x². */
export function square(x: Tensor): Tensor { return runOp(SQUARE, [x], NONE); }
/** 1/x. */
export function reciprocal(x: Tensor): Tensor { return runOp(RECIP, [x], NONE); }
