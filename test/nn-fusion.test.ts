import { afterEach, describe, expect, it, vi } from 'vitest';
import { Conv2d, Linear, ReLU, Sequential, Flatten, WebGPUBackend, manualSeed, minimum, relu, setBackend, uniform, type Tensor } from '../node.js';
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

describe('Sequential fuses only layers that declare themselves fusable', () => {
  afterEach(() => vi.restoreAllMocks());

  /** Values of `t` as a plain array. */
  const values = async (t: Tensor) => Array.from(await t.data());

  it('a Linear subclass that overrides forward runs its own forward before a ReLU', async () => {
    setBackend(cpu);
    manualSeed(11);
    let calls = 0;
    class DoubledLinear extends Linear {
      override forward(x: Tensor): Tensor {
        calls++;
        return super.forward(x).mul(2);
      }
    }
    const lin = new DoubledLinear(3, 4);
    const m = new Sequential(lin, new ReLU());
    const x = uniform([5, 3], { seed: 2, low: -1, high: 1 });
    const got = await values(m.forward(x));
    expect(calls).toBe(1);
    expect(got).toEqual(await values(relu(lin.forward(x))));
    expect(got).not.toEqual(await values(relu(Linear.prototype.forward.call(lin, x))));
  });

  it('a Conv2d subclass that overrides forward runs its own forward before a ReLU', async () => {
    setBackend(cpu);
    manualSeed(12);
    let calls = 0;
    class ShiftedConv extends Conv2d {
      override forward(x: Tensor): Tensor {
        calls++;
        return super.forward(x).sub(0.25);
      }
    }
    const conv = new ShiftedConv(2, 3, 3, { padding: 1 });
    const m = new Sequential(conv, new ReLU());
    const x = uniform([2, 2, 4, 4], { seed: 4, low: -1, high: 1 });
    const got = await values(m.forward(x));
    expect(calls).toBe(1);
    expect(got).toEqual(await values(relu(conv.forward(x))));
  });

  it('an instance whose forward was replaced is not fused', async () => {
    setBackend(cpu);
    manualSeed(13);
    const lin = new Linear(3, 2);
    let calls = 0;
    const own = lin.forward.bind(lin);
    lin.forward = (x: Tensor) => {
      calls++;
      return own(x).neg();
    };
    const x = uniform([4, 3], { seed: 5, low: -1, high: 1 });
    const got = await values(new Sequential(lin, new ReLU()).forward(x));
    expect(calls).toBe(1);
    expect(got).toEqual(await values(relu(own(x).neg())));
  });

  it('a ReLU subclass that overrides forward is not fused into the Linear', async () => {
    setBackend(cpu);
    manualSeed(14);
    let calls = 0;
    class ReLU6ish extends ReLU {
      override forward(x: Tensor): Tensor {
        calls++;
        return minimum(relu(x), 0.1);
      }
    }
    const lin = new Linear(3, 4);
    const x = uniform([6, 3], { seed: 6, low: -2, high: 2 });
    const got = await values(new Sequential(lin, new ReLU6ish()).forward(x));
    expect(calls).toBe(1);
    expect(got).toEqual(await values(minimum(relu(lin.forward(x)), 0.1)));
  });

  it('a subclass that keeps forward is still fused; one that overrides both uses its own fusedForward', async () => {
    setBackend(cpu);
    manualSeed(15);
    const spy = vi.spyOn(Linear.prototype, 'fusedForward');
    class PlainSub extends Linear {}
    const x = uniform([3, 3], { seed: 7, low: -1, high: 1 });
    const plain = new PlainSub(3, 2);
    expect(await values(new Sequential(plain, new ReLU()).forward(x))).toEqual(await values(relu(plain.forward(x))));
    expect(spy).toHaveBeenCalledTimes(1);

    let ownFused = 0;
    class Both extends Linear {
      override forward(x: Tensor): Tensor {
        return super.forward(x).mul(3);
      }
      override fusedForward(x: Tensor): Tensor | null {
        ownFused++;
        return relu(this.forward(x));
      }
    }
    const both = new Both(3, 2);
    expect(await values(new Sequential(both, new ReLU()).forward(x))).toEqual(await values(relu(both.forward(x))));
    expect(ownFused).toBe(1);
  });
});
