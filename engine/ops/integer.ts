// Integer conveniences for PyTorch users: int tensors and uniform random integers.
import { ArgumentError } from '../errors.js';
import { tidy } from '../memory.js';
import type { Tensor } from '../tensor.js';
import { cast, minimum, add, mul } from './binary.js';
import { type CreateOptions, type Nested, tensor } from './creation.js';
import { type RandomOptions, uniform } from './random.js';

/**
 * An int32 tensor (class labels, indices): `intTensor([0, 2, 1])` is
 * `tensor([0, 2, 1], { dtype: 'int32' })`. Values are truncated toward zero; NaN, ±Infinity and
 * values outside the int32 range throw an ArgumentError.
 */
export function intTensor(values: Nested | ArrayLike<number>, shape?: readonly number[], opts: Omit<CreateOptions, 'dtype'> = {}): Tensor {
  return tensor(values, shape, { ...opts, dtype: 'int32' });
}

/**
 * Uniform random integers in [low, high) (int32), like `torch.randint(low, high, shape)`.
 * Built from one Philox uniform draw u ∈ [0, 1) as `low + min(⌊u·(high − low)⌋, high − low − 1)`,
 * so it is bit-identical on both backends for the same stream (seed/offset or `manualSeed`).
 * `high − low` must be at most 2^24 (float32 draws resolve 24 bits); bounds must be int32 integers.
 */
export function randint(low: number, high: number, shape: readonly number[], opts: RandomOptions = {}): Tensor {
  for (const [k, v] of [['low', low], ['high', high]] as const) {
    if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) throw new ArgumentError(`randint: ${k} must be an int32 integer, got ${v}`);
  }
  const range = high - low;
  if (!(range > 0)) throw new ArgumentError(`randint: expected low < high, got low = ${low}, high = ${high}`);
  if (range > 2 ** 24) throw new ArgumentError(`randint: high - low = ${range} is more than 2^24 (the float32 uniform draw it is made from resolves 24 bits)`);
  return tidy(() => {
    const u = uniform(shape, opts);
    const k = minimum(cast(mul(u, range), 'int32'), range - 1);
    return low === 0 ? k : add(k, low);
  });
}
