/**
 * The one table of numbers that TypeScript and WGSL share. Nothing here is typed twice: the
 * kernel-source builder (kernel-source.ts) turns these entries into `const` lines of a generated
 * WGSL prelude (`const MAX_RANK: u32 = 8u;`, `const OP_ADD: u32 = 0u;`, ...), and the TS side
 * reads the same objects (op codes for `override OP`, workgroup sizes for `grid1D`).
 */

/** Largest rank of a shape/stride array passed to a kernel (after collapsing dims). A multiple of 4. */
export const MAX_RANK = 8;

/** Invocations per workgroup of the 1-D kernels (`grid_index`, `grid1D`). */
export const WG_1D = 64;

/** Largest workgroup count in one dispatch dimension that every adapter supports. */
export const MAX_WORKGROUPS_PER_DIM = 65535;

/** Op codes of kernels/unary.wgsl (`override OP`, `case OP_<NAME>`). */
export const UNARY_OPS = {
  neg: 0, exp: 1, log: 2, log1p: 3, sqrt: 4, rsqrt: 5, abs: 6, sign: 7, relu: 8, leakyRelu: 9, gelu: 10,
  sigmoid: 11, tanh: 12, softplus: 13, lgamma: 14, digamma: 15, trigamma: 16, powScalar: 17, square: 18,
  erf: 19, identity: 20, reciprocal: 21,
} as const;

/** Op codes of kernels/binary.wgsl. */
export const BINARY_OPS = {
  add: 0, sub: 1, mul: 2, div: 3, pow: 4, maximum: 5, minimum: 6,
  eq: 7, ne: 8, lt: 9, le: 10, gt: 11, ge: 12, reluGrad: 13,
} as const;

/** Op codes of kernels/reduce.wgsl (the arg-reductions are the codes ≥ `argmax`). */
export const REDUCE_OPS = { sum: 0, max: 1, min: 2, argmax: 3, argmin: 4 } as const;

/** Constants every composed kernel gets. */
export const SHARED_CONSTANTS: Readonly<Record<string, number>> = { MAX_RANK, WG_1D };

/** `leakyRelu` → `LEAKY_RELU`: the WGSL spelling of a table key. */
export function constName(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}
