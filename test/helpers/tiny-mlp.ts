// The fixed-weight 3 → 4 → 3 ReLU MLP shared by the exact-value tests of the gradient-based
// methods (gradient OOD, introspective features), and its float64 forward pass on the host.
import { type Backend, Linear, ReLU, Sequential, fromHost, parameter } from '../../node.js';
import { cpu } from './backends.js';

export const W1 = [[0.5, -0.3, 0.8], [-0.6, 0.2, 0.4], [0.1, 0.9, -0.5], [0.7, -0.8, 0.3]];
export const b1 = [0.1, -0.2, 0.05, 0.3];
export const W2 = [[0.4, -0.7, 0.2, 0.6], [-0.3, 0.5, 0.8, -0.1], [0.9, 0.1, -0.4, 0.2]];
export const b2 = [0.05, -0.1, 0.2];

/** Sequential(Linear(3, 4), ReLU, Linear(4, 3)) with the weights above, on `be` in `dtype`. */
export function tinyMlp(dtype: 'float32' | 'float64', be: Backend = cpu): Sequential {
  const l1 = new Linear(3, 4);
  const l2 = new Linear(4, 3);
  l1.weight = parameter(fromHost(W1.flat(), [4, 3], dtype, be));
  l1.bias = parameter(fromHost(b1, [4], dtype, be));
  l2.weight = parameter(fromHost(W2.flat(), [3, 4], dtype, be));
  l2.bias = parameter(fromHost(b2, [3], dtype, be));
  return new Sequential(l1, new ReLU(), l2);
}

/** The network's forward pass in float64: pre-activations, hidden activations and logits. */
export function tinyMlpForward(x: readonly number[]): { pre: number[]; h: number[]; z: number[] } {
  const pre = W1.map((w, i) => w.reduce((s, v, j) => s + v * x[j], b1[i]));
  const h = pre.map((v) => Math.max(v, 0));
  const z = W2.map((w, i) => w.reduce((s, v, j) => s + v * h[j], b2[i]));
  return { pre, h, z };
}
