// The op families. Each op is declared once (see engine/op.ts) in one of these files.
export * from './creation.js';
export * from './unary.js';
export * from './binary.js';
export * from './reduce.js';
export * from './shape-ops.js';
export * from './matmul.js';
export * from './conv.js';
export * from './autograd.js';
export * from './random.js';
export * from './pooling.js';
export * from './optim-kernels.js';
export * from './integer.js';
export { type PadMode, type PadOptions } from './padding.js';
export * from './interpolate.js';
