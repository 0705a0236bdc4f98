/**
 * Weight initialisation after `torch.nn.init`, drawing from the global Philox generator
 * (`manualSeed(s)` makes it reproducible, and the same seed gives bit-identical tensors on the
 * CPU and WebGPU backends). Unlike PyTorch's in-place `init.xxx_(t)`, these return new tensors.
 */
import { type Backend, type DType, ArgumentError, type Tensor, cast, fmtShape, normal, uniform, ShapeError } from '../engine/index.js';

export interface ParamInitOptions {
  backend?: Backend;
  /** float32 (default) or float64 (CPU only; samples are drawn in float32 then widened). */
  dtype?: DType;
}

export type Nonlinearity = 'linear' | 'conv1d' | 'conv2d' | 'conv3d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';

/** torch.nn.init.calculate_gain. */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear': case 'conv1d': case 'conv2d': case 'conv3d': case 'sigmoid': return 1;
    case 'tanh': return 5 / 3;
    case 'relu': return Math.SQRT2;
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case 'selu': return 3 / 4;
    default: throw new ArgumentError(`calculateGain: unsupported nonlinearity '${nonlinearity as string}'`);
  }
}

/**
 * torch's `_calculate_fan_in_and_fan_out`: fan_in = shape[1]·receptive, fan_out = shape[0]·receptive
 * (receptive = product of dims after the first two). Note that for ConvTranspose weights
 * [in, out/groups, kh, kw] this makes fan_in = out/groups·kh·kw, exactly as PyTorch does.
 */
export function fanInAndFanOut(shape: readonly number[]): [number, number] {
  if (shape.length < 2) throw new ShapeError(`init: fan in and fan out need at least 2 dims, got ${fmtShape(shape)}`);
  const receptive = shape.slice(2).reduce((p, d) => p * d, 1);
  return [shape[1] * receptive, shape[0] * receptive];
}

function finish(t: Tensor, opts: ParamInitOptions): Tensor {
  const dtype = opts.dtype ?? 'float32';
  if (dtype === 'float32') return t;
  if (dtype !== 'float64') throw new ArgumentError(`init: dtype must be float32 or float64, got ${dtype}`);
  const r = cast(t, dtype);
  t.dispose();
  return r;
}

/** U(low, high). */
export function uniformInit(shape: readonly number[], low: number, high: number, opts: ParamInitOptions = {}): Tensor {
  return finish(uniform(shape, { low, high, backend: opts.backend }), opts);
}

/** N(mean, std²). */
export function normalInit(shape: readonly number[], mean: number, std: number, opts: ParamInitOptions = {}): Tensor {
  return finish(normal(shape, { mean, std, backend: opts.backend }), opts);
}

export interface KaimingOptions extends ParamInitOptions {
  /** Negative slope of the rectifier after this layer (leaky_relu only); default 0. */
  a?: number;
  mode?: 'fan_in' | 'fan_out';
  nonlinearity?: Nonlinearity;
}

/** torch.nn.init.kaiming_uniform_: U(−b, b) with b = gain·√(3 / fan). */
export function kaimingUniform(shape: readonly number[], opts: KaimingOptions = {}): Tensor {
  const [fanIn, fanOut] = fanInAndFanOut(shape);
  const fan = (opts.mode ?? 'fan_in') === 'fan_in' ? fanIn : fanOut;
  const gain = calculateGain(opts.nonlinearity ?? 'leaky_relu', opts.a ?? 0);
  const bound = fan === 0 ? 0 : gain * Math.sqrt(3 / fan);
  return uniformInit(shape, -bound, bound, opts);
}

/** torch.nn.init.kaiming_normal_: N(0, (gain/√fan)²). */
export function kaimingNormal(shape: readonly number[], opts: KaimingOptions = {}): Tensor {
  const [fanIn, fanOut] = fanInAndFanOut(shape);
  const fan = (opts.mode ?? 'fan_in') === 'fan_in' ? fanIn : fanOut;
  const gain = calculateGain(opts.nonlinearity ?? 'leaky_relu', opts.a ?? 0);
  return normalInit(shape, 0, fan === 0 ? 0 : gain / Math.sqrt(fan), opts);
}

/** torch.nn.init.xavier_uniform_: U(−b, b) with b = gain·√(6 / (fan_in + fan_out)). */
export function xavierUniform(shape: readonly number[], opts: ParamInitOptions & { gain?: number } = {}): Tensor {
  const [fanIn, fanOut] = fanInAndFanOut(shape);
  const bound = (opts.gain ?? 1) * Math.sqrt(6 / (fanIn + fanOut));
  return uniformInit(shape, -bound, bound, opts);
}

/** torch.nn.init.xavier_normal_: N(0, gain²·2 / (fan_in + fan_out)). */
export function xavierNormal(shape: readonly number[], opts: ParamInitOptions & { gain?: number } = {}): Tensor {
  const [fanIn, fanOut] = fanInAndFanOut(shape);
  return normalInit(shape, 0, (opts.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut)), opts);
}
