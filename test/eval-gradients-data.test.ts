// The gradients eval's training-data builders: H's challenge set (noise + attacks of training
// images) and ConfidNet's shifted copies. Shapes, ranges, the ε-ball, no leaks and reproducible shifted copies.
import { describe, expect, it } from 'vitest';
import { LeNet5, fromHost, manualSeed, memory, setBackend, uniform } from '../node.js';
import { CHALLENGE_EPSILON, INTROSPECTIVE_FIT, challengeSet, fitIntrospective, shiftedCopies } from '../examples/eval-gradients.js';
import { introspectiveFeatures, type ImageSet, tensor } from '../node.js';
import { cpu } from './helpers/backends.js';

function setup() {
  const be = cpu;
  setBackend(be);
  manualSeed(3);
  const model = new LeNet5({ dropout: 0 }).eval();
  const x = uniform([16, 1, 28, 28], { low: 0, high: 1, seed: 9, backend: be });
  const y = fromHost(Array.from({ length: 16 }, (_, i) => i % 10), [16], 'int32', be);
  return { be, model, x, y };
}

describe('gradients eval: challenge data and shifted copies', () => {
  it("challengeSet 'attacks': n/2 noise rows in [0, 1], then one attacked copy per row inside the ε-ball", async () => {
    const { be, model, x, y } = setup();
    const before = memory().liveTensors;
    const ch = await challengeSet(model, x, y, 4, 'attacks', be);
    expect(ch.shape).toEqual([24, 1, 28, 28]);
    const a = await ch.data();
    const b = await x.data();
    for (const v of a) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
    }
    const off = 8 * 784;
    let moved = 0;
    for (let i = 0; i < b.length; i++) {
      const d = Math.abs(a[off + i] - b[i]);
      expect(d).toBeLessThanOrEqual(CHALLENGE_EPSILON[1] + 1e-6);
      if (d > 1e-3) moved++;
    }
    expect(moved).toBeGreaterThan(b.length / 2);
    ch.dispose();
    expect(memory().liveTensors).toBe(before);
  });

  it("challengeSet 'fgsm': n/2 noise rows and FGSM (ε = 0.1) of the first n/2 rows", async () => {
    const { be, model, x, y } = setup();
    const ch = await challengeSet(model, x, y, 4, 'fgsm', be);
    expect(ch.shape).toEqual([16, 1, 28, 28]);
    const a = await ch.data();
    const b = await x.data();
    for (let i = 0; i < 8 * 784; i++) {
      const d = Math.abs(a[8 * 784 + i] - b[i]);
      // FGSM moves every pixel by exactly ε unless clipped (or the gradient is exactly zero)
      expect(d).toBeLessThanOrEqual(0.1 + 1e-6);
    }
    ch.dispose();
  });

  it('shiftedCopies: same shape, values in [0, 1], reproducible, and different from the input', async () => {
    const { be, x } = setup();
    const before = memory().liveTensors;
    const s1 = await shiftedCopies(x, 4, be);
    const s2 = await shiftedCopies(x, 4, be);
    expect(s1.shape).toEqual(x.shape);
    const a = await s1.data();
    expect(Array.from(await s2.data())).toEqual(Array.from(a));
    const b = await x.data();
    let diff = 0;
    for (let i = 0; i < a.length; i++) {
      expect(a[i]).toBeGreaterThanOrEqual(0);
      expect(a[i]).toBeLessThanOrEqual(1 + 1e-6);
      diff += Math.abs(a[i] - b[i]);
    }
    // every batch of 4 rows is changed (rotation, blur, noise or contrast)
    for (let r = 0; r < 4; r++) {
      let d = 0;
      for (let i = r * 4 * 784; i < (r + 1) * 4 * 784; i++) d += Math.abs(a[i] - b[i]);
      expect(d / (4 * 784)).toBeGreaterThan(1e-3);
    }
    expect(diff).toBeGreaterThan(0);
    s1.dispose();
    s2.dispose();
    expect(memory().liveTensors).toBe(before);
  });

  it("fitIntrospective: H on the one-pass features with bias (K·(D + 1) = 850 for LeNet-5), no leaks", async () => {
    const { be, model } = setup();
    const n = 12;
    const images = new Float32Array(n * 784);
    for (let i = 0; i < images.length; i++) images[i] = ((i * 2654435761) % 1000) / 1000;
    const set = { images, labels: Int32Array.from({ length: n }, (_, i) => i % 10), count: n } as ImageSet;
    const before = memory().liveTensors;
    const intro = await fitIntrospective({ model, backend: be, train: set, test: set, fashion: set, introspectiveCopies: 1 }, model, 8);
    const x = tensor(images.subarray(0, 3 * 784), [3, 1, 28, 28], { backend: be });
    const f = introspectiveFeatures(model, x, { questions: INTROSPECTIVE_FIT.questions, bias: INTROSPECTIVE_FIT.bias });
    expect(f.shape).toEqual([3, 850]);
    const z = intro.logits(x);
    expect(z.shape).toEqual([3, 10]);
    for (const t of [x, f, z]) t.dispose();
    intro.h.dispose();
    expect(memory().liveTensors).toBe(before);
  });
});
