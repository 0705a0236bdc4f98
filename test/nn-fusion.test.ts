import { describe, expect, it } from 'vitest';
import { Conv2d, Linear, ReLU, Sequential, Flatten, WebGPUBackend, manualSeed, setBackend, uniform, type Tensor } from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

function net() {
  manualSeed(7);
  return new Sequential(new Conv2d(2, 4, 3, { padding: 1 }), new ReLU(), new Flatten(), new Linear(4 * 5 * 5, 6), new ReLU(), new Linear(6, 3));
}

function unfused(m: Sequential, x: Tensor): Tensor {
  let y = x;
  for (const k of m.children()) y = k.forward(y);
  return y;
}

describe('Sequential fuses Linear/Conv2d + ReLU into one kernel', () => {
  it('cpu: the fused forward equals the layer-by-layer forward, gradients too', async () => {
    setBackend(cpu);
    const m = net();
    const x = uniform([2, 2, 5, 5], { seed: 1, low: -1, high: 1 });
    expect(Array.from(await m.forward(x).data())).toEqual(Array.from(await unfused(m, x).data()));
    m.forward(x).sum().backward();
    const g1 = await m.parameters()[0].grad!.data();
    m.zeroGrad();
    unfused(m, x).sum().backward();
    const g2 = await m.parameters()[0].grad!.data();
    Array.from(g1).forEach((v, i) => expect(v).toBeCloseTo(g2[i], 6));
  });

  it('webgpu: fewer dispatches than unfused, same values', async (ctx) => {
    const gpu = (await requireWebGPU(ctx)) as WebGPUBackend;
    setBackend(gpu);
    const m = net();
    const x = uniform([2, 2, 5, 5], { seed: 1, low: -1, high: 1 });
    await m.forward(x).data();
    const d0 = gpu.dispatchCount;
    const fused = await m.forward(x).data();
    const d1 = gpu.dispatchCount;
    const plain = await unfused(m, x).data();
    const d2 = gpu.dispatchCount;
    expect(d1 - d0).toBeLessThan(d2 - d1);
    Array.from(fused).forEach((v, i) => expect(v).toBeCloseTo(plain[i], 5));
  });

  it('a hook on the Linear disables fusion so the hook sees the pre-activation output', async () => {
    setBackend(cpu);
    const m = net();
    const captured: Tensor[] = [];
    m.at(3).registerForwardHook((_m, _i, out) => {
      captured.push(out as Tensor);
    });
    const x = uniform([4, 2, 5, 5], { seed: 3, low: -1, high: 1 });
    m.forward(x);
    const pre = await captured[0].data();
    expect(Array.from(pre).some((v) => v < 0)).toBe(true);
  });
});
