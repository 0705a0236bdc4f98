import { describe, expect, it } from 'vitest';
import {
  ArgumentError,
  BatchNorm1d,
  BatchNorm2d,
  Conv2d,
  ConvTranspose2d,
  Flatten,
  LayerNorm,
  LeNet5,
  Linear,
  ReLU,
  Sequential,
  ShapeError,
  type Backend,
  Module,
  type Tensor,
  crossEntropy,
  fromHost,
  gradients,
  manualSeed,
  memory,
  setBackend,
  slice,
  sum,
  tidy,
  perSampleGrads,
  perSampleGradNorms,
  perSampleGradUnitNorms,
} from '../node.js';
import { runtime } from '../engine/runtime.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { Rng } from './helpers/compare.js';

const ce = (out: Tensor, y?: Tensor) => crossEntropy(out, y!, { reduction: 'none' });

function input(rng: Rng, shape: number[], dtype: 'float32' | 'float64' = 'float64', backend: Backend = cpu): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng.normal();
  return fromHost(data, shape, dtype, backend);
}
function labels(rng: Rng, B: number, K: number, backend: Backend = cpu): Tensor {
  return fromHost(Int32Array.from({ length: B }, () => rng.int(0, K - 1)), [B], "int32", backend);
}

/** Odd channel counts, stride, padding, dilation and groups, then a Linear head. */
function convNet(): Module {
  return new Sequential(
    new Conv2d(3, 6, 3, { stride: 2, padding: 1 }), new ReLU(),
    new Conv2d(6, 4, 2, { dilation: 2, padding: 1, groups: 2 }), new ReLU(),
    new Flatten(), new Linear(64, 5),
  );
}

/**
 * ConvTranspose2d with stride, padding, outputPadding, groups and dilation, and BatchNorm2d/1d in
 * eval mode with non-trivial running statistics (a few training-mode passes on shifted inputs).
 */
function transposeNet(rng: Rng): Module {
  const model = new Sequential(
    new ConvTranspose2d(4, 6, 3, { stride: 2, padding: 1, outputPadding: 1, groups: 2 }), new BatchNorm2d(6), new ReLU(),
    new ConvTranspose2d(6, 3, 2, { dilation: 2 }), new ReLU(),
    new Flatten(), new Linear(3 * 10 * 10, 7), new BatchNorm1d(7), new Linear(7, 5),
  );
  for (let i = 0; i < 3; i++) tidy(() => void model.forward(input(rng, [6, 4, 4, 4], 'float32').mul(1.5).add(0.3)));
  return model.eval();
}

/** The reference: B single-sample backward passes. */
async function loopGrads(model: Module, x: Tensor, y: Tensor): Promise<Map<string, number[][]>> {
  const named = model.namedParameters();
  const out = new Map<string, number[][]>(named.map(([n]) => [n, []]));
  for (let b = 0; b < x.shape[0]; b++) {
    const gs = tidy(() => {
      const xb = slice(x, [b], [1, ...x.shape.slice(1)]);
      const yb = slice(y, [b], [1]);
      return gradients(sum(ce(model.forward(xb), yb)), named.map(([, t]) => t));
    });
    for (let i = 0; i < named.length; i++) {
      out.get(named[i][0])!.push(Array.from(await gs[i].data()));
      gs[i].dispose();
    }
  }
  return out;
}

function expectRel(got: ArrayLike<number>, want: ArrayLike<number>, rel: number, abs = 0): void {
  expect(got.length).toBe(want.length);
  let scale = 1e-30;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  expect(worst).toBeLessThanOrEqual(rel * scale + abs);
}

describe('perSampleGrads: equal to a loop of single-sample backward passes (float64 CPU)', () => {
  for (const B of [1, 5]) {
    it(`conv (stride/padding/dilation/groups, odd channels) + linear, B=${B}`, async () => {
      setBackend(cpu);
      manualSeed(11);
      const model = await convNet().to('float64');
      const rng = new Rng(3 + B);
      const x = input(rng, [B, 3, 7, 7]);
      const y = labels(rng, B, 5);
      const ref = await loopGrads(model, x, y);
      const before = memory().liveTensors;
      const g = perSampleGrads(model, ce, x, y);
      for (const [name, p] of model.namedParameters()) {
        expect(g[name].shape).toEqual([B, ...p.shape]);
        expectRel(await g[name].data(), ref.get(name)!.flat(), 1e-10);
        g[name].dispose();
      }
      expect(memory().liveTensors).toBe(before);
      const n = perSampleGradNorms(model, ce, x, y);
      expect(n.norms.shape).toEqual([B, n.names.length]);
      const nv = await n.norms.data();
      n.names.forEach((name, l) => {
        const want = ref.get(name)!.map((row) => row.reduce((s, v) => s + v * v, 0));
        expectRel(Array.from({ length: B }, (_, b) => nv[b * n.names.length + l]), want, 1e-10);
      });
      n.norms.dispose();
      expect(memory().liveTensors).toBe(before);
    });
  }

  it('linear on sequences [B, T, in]: ghost norm over positions equals the materialised one', async () => {
    setBackend(cpu);
    manualSeed(5);
    const lin = await new Linear(6, 4).to('float64');
    const model = new Sequential(lin);
    const rng = new Rng(9);
    const x = input(rng, [3, 2, 6]);
    const loss = (out: Tensor) => sum(out.mul(out), [1, 2]);
    const ref: number[][] = [];
    for (let b = 0; b < 3; b++) {
      const [gw] = tidy(() => gradients(sum(loss(model.forward(slice(x, [b], [1, 2, 6])))), [lin.weight]));
      ref.push(Array.from(await gw.data()));
      gw.dispose();
    }
    const g = perSampleGrads(model, loss, x);
    expectRel(await g['0.weight'].data(), ref.flat(), 1e-10);
    const n = perSampleGradNorms(model, loss, x, undefined, { params: ['0.weight'] });
    expect(n.methods).toEqual(['ghost']); // 2·T² = 8 ≤ 24
    expectRel(await n.norms.data(), ref.map((r) => r.reduce((s, v) => s + v * v, 0)), 1e-10);
  });

  for (const B of [1, 4]) {
    it(`ConvTranspose2d (stride, padding, outputPadding, dilation, groups) and eval-mode BatchNorm2d/1d, B=${B}`, async () => {
      setBackend(cpu);
      manualSeed(21);
      const model = await transposeNet(new Rng(40 + B)).to('float64');
      const rng = new Rng(50 + B);
      const x = input(rng, [B, 4, 4, 4]);
      const y = labels(rng, B, 5);
      const ref = await loopGrads(model, x, y);
      const before = memory().liveTensors;
      const g = perSampleGrads(model, ce, x, y);
      for (const [name, p] of model.namedParameters()) {
        expect(g[name].shape).toEqual([B, ...p.shape]);
        expectRel(await g[name].data(), ref.get(name)!.flat(), 1e-10);
        g[name].dispose();
      }
      const n = perSampleGradNorms(model, ce, x, y);
      const nv = await n.norms.data();
      n.names.forEach((name, l) => {
        const want = ref.get(name)!.map((row) => row.reduce((acc, v) => acc + v * v, 0));
        expectRel(Array.from({ length: B }, (_, b) => nv[b * n.names.length + l]), want, 1e-10);
      });
      n.norms.dispose();
      expect(memory().liveTensors).toBe(before);
    });
  }

  /** The reference unit norms: each sample's gradient of `name`, squared and summed per slice of its first axis. */
  function unitRef(ref: Map<string, number[][]>, name: string, units: number): number[][] {
    return ref.get(name)!.map((row) => {
      const per = row.length / units;
      return Array.from({ length: units }, (_, j) => row.slice(j * per, (j + 1) * per).reduce((a, v) => a + v * v, 0));
    });
  }

  for (const [label, make, xShape] of [
    ['conv + linear', () => convNet(), [3, 3, 7, 7]],
    ['ConvTranspose2d + eval-mode BatchNorm', () => transposeNet(new Rng(44)), [1, 4, 4, 4]],
  ] as [string, () => Module, number[]][]) {
    it(`perSampleGradUnitNorms (${label}): per first-axis slice, equal to the loop; sums give perSampleGradNorms`, async () => {
      setBackend(cpu);
      manualSeed(23);
      const model = await make().to('float64');
      const rng = new Rng(61);
      const x = input(rng, xShape);
      const B = xShape[0];
      const y = labels(rng, B, 5);
      const ref = await loopGrads(model, x, y);
      const before = memory().liveTensors;
      const u = perSampleGradUnitNorms(model, ce, x, y);
      const params = model.namedParameters();
      expect(u.names).toEqual(params.map(([n]) => n));
      expect(u.offsets).toEqual(params.reduce((o, [, p]) => [...o, o[o.length - 1] + p.shape[0]], [0]));
      const U = u.offsets[u.offsets.length - 1];
      expect(u.norms.shape).toEqual([B, U]);
      const uv = await u.norms.data();
      const t = perSampleGradNorms(model, ce, x, y);
      const tv = await t.norms.data();
      params.forEach(([name, p], i) => {
        const units = p.shape[0];
        const want = unitRef(ref, name, units);
        const got = Array.from({ length: B }, (_, b) => Array.from({ length: units }, (_, j) => uv[b * U + u.offsets[i] + j]));
        expectRel(got.flat(), want.flat(), 1e-10);
        const l = t.names.indexOf(name);
        expectRel(got.map((r) => r.reduce((a, v) => a + v, 0)), Array.from({ length: B }, (_, b) => tv[b * t.names.length + l]), 1e-10);
      });
      u.norms.dispose();
      t.norms.dispose();
      expect(memory().liveTensors).toBe(before);
    });
  }

  it('perSampleGradUnitNorms on sequences [B, T, in] (materialised) equals the loop', async () => {
    setBackend(cpu);
    manualSeed(5);
    const lin = await new Linear(6, 4).to('float64');
    const model = new Sequential(lin);
    const x = input(new Rng(9), [3, 2, 6]);
    const loss = (out: Tensor) => sum(out.mul(out), [1, 2]);
    const ref = new Map<string, number[][]>([['0.weight', []], ['0.bias', []]]);
    for (let b = 0; b < 3; b++) {
      const gs = tidy(() => gradients(sum(loss(model.forward(slice(x, [b], [1, 2, 6])))), [lin.weight, lin.bias!]));
      ref.get('0.weight')!.push(Array.from(await gs[0].data()));
      ref.get('0.bias')!.push(Array.from(await gs[1].data()));
      gs.forEach((g) => g.dispose());
    }
    const u = perSampleGradUnitNorms(model, loss, x);
    expect(u.offsets).toEqual([0, 4, 8]);
    const uv = await u.norms.data();
    const want = [unitRef(ref, '0.weight', 4), unitRef(ref, '0.bias', 4)];
    expectRel(uv, [0, 1, 2].flatMap((b) => [...want[0][b], ...want[1][b]]), 1e-10);
  });

  it('params selects a subset (names or tensors)', async () => {
    setBackend(cpu);
    manualSeed(1);
    const model = convNet();
    const x = input(new Rng(1), [2, 3, 7, 7], 'float32');
    const y = labels(new Rng(2), 2, 5);
    const lin = model.children()[5] as Linear;
    const g = perSampleGrads(model, ce, x, y, { params: [lin.weight, '0.bias'] });
    expect(Object.keys(g).sort()).toEqual(['0.bias', '5.weight']);
    expect(g['5.weight'].shape).toEqual([2, 5, 64]);
  });
});

describe('perSampleGrads: bad input', () => {
  it('BatchNorm in training mode, unsupported layers, a non-[B] loss, unknown params, unreachable layers', () => {
    setBackend(cpu);
    const x = input(new Rng(1), [2, 3, 4, 4], 'float32');
    const bn = new Sequential(new Conv2d(3, 2, 3), new BatchNorm2d(2), new Flatten(), new Linear(8, 2));
    expect(() => perSampleGrads(bn, (o) => sum(o, 1), x, undefined, { params: ['0.weight'] })).toThrow(/BatchNorm2d '1' is in training mode/);
    bn.eval();
    expect(() => perSampleGrads(bn, (o) => sum(o, 1), x, undefined, { params: ['0.weight', '3.bias'] })).not.toThrow();
    // Without running statistics BatchNorm always uses batch statistics: the samples interact.
    const noStats = new Sequential(new Conv2d(3, 2, 3), new BatchNorm2d(2, { trackRunningStats: false }), new Flatten(), new Linear(8, 2)).eval();
    expect(() => perSampleGrads(noStats, (o) => sum(o, 1), x)).toThrow(/BatchNorm2d '1' has no running statistics/);
    const ln = new Sequential(new Linear(4, 4), new LayerNorm([4]));
    expect(() => perSampleGrads(ln, (o) => sum(o, 1), input(new Rng(2), [2, 4], 'float32'))).toThrow(ArgumentError);
    const lin = new Sequential(new Linear(4, 3));
    const x2 = input(new Rng(3), [2, 4], 'float32');
    expect(() => perSampleGrads(lin, (o) => sum(o), x2)).toThrow(ShapeError);
    expect(() => perSampleGrads(lin, (o) => sum(o, 1), x2, undefined, { params: ['nope'] })).toThrow(/not a parameter/);
    // A layer that never runs, and one whose output does not reach the loss.
    const two = new TwoHeads();
    expect(() => perSampleGrads(two, (o) => sum(o, 1), x2, undefined, { params: ['side.weight'] })).toThrow(/ran 0 times/);
    expect(() => perSampleGrads(two, (o) => sum(o.detach(), 1), x2, undefined, { params: ['main.weight'] })).toThrow(/not reachable/);
  });
});

describe('perSampleGradNorms: memory on LeNet B=128', () => {
  it('builds no [B, out, in] tensor for the linear layers', async () => {
    setBackend(cpu);
    manualSeed(0);
    const model = new LeNet5().eval();
    const B = 128;
    const x = input(new Rng(4), [B, 1, 28, 28], 'float32');
    const y = labels(new Rng(5), B, 10);
    const be = runtime.backend!;
    const seen: number[][] = [];
    const orig = be.execute.bind(be);
    be.execute = (op, inputs, attrs, out) => {
      seen.push(out.shape);
      return orig(op, inputs, attrs, out);
    };
    let n;
    try {
      n = perSampleGradNorms(model, ce, x, y);
    } finally {
      be.execute = orig;
    }
    expect(n.norms.shape).toEqual([B, 10]);
    expect(n.methods.filter((_, i) => n.names[i].startsWith('classifier') && n.names[i].endsWith('weight'))).toEqual(['ghost', 'ghost', 'ghost']);
    const linearSizes = [[120, 400], [84, 120], [10, 84]].map(([o, i]) => B * o * i);
    const sizes = seen.map((s) => s.reduce((a, b) => a * b, 1));
    for (const big of linearSizes) expect(sizes.filter((s) => s === big)).toEqual([]);
    // Nothing of the size of the largest per-sample linear gradient ([128, 120, 400] = 6.1M) either.
    expect(Math.max(...sizes)).toBeLessThan(linearSizes[1]);
    // And the same norms as materialising the gradients.
    const g = perSampleGrads(model, ce, x, y, { params: ['classifier.0.weight'] });
    const want = await sum(g['classifier.0.weight'].square(), [1, 2]).data();
    const got = await n.norms.data();
    const col = n.names.indexOf('classifier.0.weight');
    expectRel(Array.from({ length: B }, (_, b) => got[b * 10 + col]), want, 1e-4);
  });
});

describe('perSampleGrads: WebGPU matches the CPU reference', () => {
  it('conv net, LeNet and the ConvTranspose2d + BatchNorm net, float32 tolerance', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    for (const make of [convNet, () => new LeNet5().eval(), () => transposeNet(new Rng(8))]) {
      setBackend(cpu);
      manualSeed(7);
      const model = make();
      const isLeNet = model instanceof LeNet5;
      const isTranspose = model.children()[0] instanceof ConvTranspose2d;
      const shape = isLeNet ? [3, 1, 28, 28] : isTranspose ? [3, 4, 4, 4] : [4, 3, 7, 7];
      const rng = new Rng(21);
      const xh = input(rng, shape, 'float32');
      const yh = labels(rng, shape[0], isLeNet ? 10 : 5);
      const want = perSampleGrads(model, ce, xh, yh);
      const wantN = perSampleGradNorms(model, ce, xh, yh);
      const wantData = new Map<string, Float32Array>();
      for (const [k, t] of Object.entries(want)) wantData.set(k, (await t.data()) as Float32Array);
      const wantNorms = await wantN.norms.data();
      const wantU = await perSampleGradUnitNorms(model, ce, xh, yh).norms.data();
      await model.to(gpu);
      setBackend(gpu);
      const x = await xh.to(gpu);
      const y = await yh.to(gpu);
      const got = perSampleGrads(model, ce, x, y);
      for (const [k, t] of Object.entries(got)) expectRel(await t.data(), wantData.get(k)!, 2e-4, 1e-6);
      const gotN = perSampleGradNorms(model, ce, x, y);
      expectRel(await gotN.norms.data(), wantNorms, 2e-4, 1e-6);
      const gotU = perSampleGradUnitNorms(model, ce, x, y);
      expectRel(await gotU.norms.data(), wantU, 2e-4, 1e-6);
      dispose([got, gotN.norms, gotU.norms, x, y]);
    }
  });
});

class TwoHeads extends Module<[Tensor], Tensor> {
  main = new Linear(4, 3);
  side = new Linear(4, 2);
  forward(x: Tensor): Tensor {
    return this.main.forward(x);
  }
}

function dispose(v: unknown[]): void {
  for (const t of v.flatMap((e) => (e && typeof e === 'object' && !('dispose' in e) ? Object.values(e) : [e]))) (t as Tensor).dispose();
}
