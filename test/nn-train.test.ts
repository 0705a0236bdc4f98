import { describe, expect, it, vi } from 'vitest';
import {
  type Backend, type Tensor, ArgumentError, ShapeError, DataLoader, Sequential, Linear, ReLU, Tanh, Dropout, Conv2d, MaxPool2d, Flatten, BatchNorm2d,
  Adam, SGD, StepLR, fit, evaluate, crossEntropy, bceWithLogits, manualSeed, memory, setBackend, tensor, tidy, keep, detach,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { Rng } from './helpers/compare.js';

setBackend(cpu);

/** Two interleaved noisy half-moons-like classes (not linearly separable): 96 points. */
function twoClass(n = 96) {
  const rng = new Rng(42);
  const x: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % 2;
    const t = Math.PI * rng.next();
    x.push(c ? 1 - Math.cos(t) + 0.1 * rng.normal() : Math.cos(t) + 0.1 * rng.normal());
    x.push(c ? 0.5 - Math.sin(t) + 0.1 * rng.normal() : Math.sin(t) + 0.1 * rng.normal());
    y.push(c);
  }
  return { x: { data: x, shape: [n, 2], dtype: 'float32' as const }, y: { data: y, shape: [n], dtype: 'int32' as const } };
}

describe('DataLoader', () => {
  const xs = { data: Array.from({ length: 20 }, (_, i) => i), shape: [10, 2], dtype: 'float32' as const };
  const ys = { data: Array.from({ length: 10 }, (_, i) => i), shape: [10], dtype: 'int32' as const };

  it('batches in order, with a short last batch or dropLast', async () => {
    const dl = new DataLoader([xs, ys], { batchSize: 4 });
    expect(dl.length).toBe(3);
    const got: number[][] = [];
    for (const [x, y] of dl) {
      got.push(Array.from(await y.data()));
      expect(x.shape).toEqual([y.shape[0], 2]);
      expect(Array.from(await x.data())).toEqual(Array.from(await y.data()).flatMap((i) => [2 * i, 2 * i + 1]));
      x.dispose();
      y.dispose();
    }
    expect(got).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    const dl2 = new DataLoader([xs, ys], { batchSize: 4, dropLast: true });
    const batches = [...dl2];
    expect(batches.map((b) => b[1].shape[0])).toEqual([4, 4]);
    batches.flat().forEach((t) => t.dispose());
    expect(() => new DataLoader([xs, { ...ys, shape: [9], data: ys.data.slice(1) }])).toThrow(ShapeError);
    expect(() => new DataLoader([xs], { batchSize: 0 })).toThrow(ArgumentError);
  });

  it('seeded shuffling: a permutation, different per epoch, reproducible, rows stay paired', async () => {
    const order = async (dl: DataLoader) => {
      const out: number[] = [];
      for (const [x, y] of dl) {
        const yv = Array.from(await y.data());
        expect(Array.from(await x.data())).toEqual(yv.flatMap((i) => [2 * i, 2 * i + 1]));
        out.push(...yv);
        x.dispose();
        y.dispose();
      }
      return out;
    };
    const a = new DataLoader([xs, ys], { batchSize: 3, shuffle: true, seed: 7 });
    const e1 = await order(a);
    const e2 = await order(a);
    expect([...e1].sort((p, q) => p - q)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(e1).not.toEqual(e2);
    expect(e1).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const b = new DataLoader([xs, ys], { batchSize: 5, shuffle: true, seed: 7 });
    expect(await order(b)).toEqual(e1);
    const src = [tensor(xs.data, xs.shape), tensor(ys.data, ys.shape, { dtype: 'int32' })];
    const c = await DataLoader.fromTensors(src, { batchSize: 10, shuffle: true, seed: 7 });
    src.forEach((t) => t.dispose());
    expect(await order(c)).toEqual(e1);
  });
});

async function trainMlp(be: Backend): Promise<{ history: number[]; acc: number }> {
  setBackend(be);
  manualSeed(0);
  const { x, y } = twoClass();
  const loader = new DataLoader([x, y], { batchSize: 32, shuffle: true, seed: 1 });
  const model = new Sequential(new Linear(2, 16), new Tanh(), new Dropout(0.1), new Linear(16, 16), new ReLU(), new Linear(16, 2));
  const optimizer = new Adam(model.parameters(), { lr: 0.05 });
  const m0 = memory().liveTensors;
  const history = await fit(model, loader, { epochs: 12, optimizer, lossFn: (o, t) => crossEntropy(o, t), progress: false });
  expect(memory().liveTensors - m0).toBe(optimizer.state.size * 2);
  const r = await evaluate(model, new DataLoader([x, y], { batchSize: 32 }));
  expect(model.training).toBe(true);
  optimizer.dispose();
  model.dispose();
  setBackend(cpu);
  return { history: history.map((h) => h.loss), acc: r.accuracy! };
}

function checkLearned({ history, acc }: { history: number[]; acc: number }): void {
  expect(history[history.length - 1], `losses ${history.map((v) => v.toFixed(3))}`).toBeLessThan(history[0] * 0.5);
  expect(acc, `losses ${history.map((v) => v.toFixed(3))}`).toBeGreaterThan(0.9);
}

describe('training smoke tests', () => {
  it('an MLP learns a synthetic 2-class problem on the CPU', async () => {
    checkLearned(await trainMlp(cpu));
  });

  it('an MLP learns a synthetic 2-class problem on WebGPU', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    checkLearned(await trainMlp(gpu));
  });

  it('fit: progress lines (non-TTY), onEpoch early stop, scheduler, validation, binary logits loss', async () => {
    manualSeed(3);
    const { x, y } = twoClass(32);
    const yf = { data: y.data, shape: [32, 1], dtype: 'float32' as const };
    const loader = new DataLoader([x, yf], { batchSize: 8 });
    const model = new Sequential(new Linear(2, 8), new Tanh(), new Linear(8, 1));
    const optimizer = new SGD(model.parameters(), { lr: 0.5, momentum: 0.9 });
    const scheduler = new StepLR(optimizer, 1, 0.5);
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const isTTY = process.stdout.isTTY;
    (process.stdout as { isTTY?: boolean }).isTTY = false;
    const seen: number[] = [];
    let lines: string[] = [];
    try {
      const h = await fit(model, loader, {
        epochs: 5, optimizer, scheduler, lossFn: bceWithLogits, validation: loader, clipGradNorm: 5,
        onEpoch: (info) => { seen.push(info.lr); return info.epoch < 3; },
      });
      expect(h.length).toBe(3);
      expect(h[0].accuracy).toBeUndefined();
      expect(Number.isFinite(h[2].valLoss!)).toBe(true);
      lines = log.mock.calls.map((c) => String(c[0]));
    } finally {
      (process.stdout as { isTTY?: boolean }).isTTY = isTTY;
      log.mockRestore();
    }
    expect(seen).toEqual([0.5, 0.25, 0.125]);
    expect(lines.length).toBe(3);
    expect(lines[0]).toMatch(/^epoch 1\/5 {2}loss \d\.\d{4} {2}val_loss \d\.\d{4}/);
    model.dispose();
    optimizer.dispose();
  });

  it('fit: onBatch sees every step\'s batch loss (equal to a hand-run step), early stop mid-epoch, no leaked tensors', async () => {
    setBackend(cpu);
    const { x, y } = twoClass(24);
    const loader = () => new DataLoader([x, y], { batchSize: 8 });
    const build = () => {
      manualSeed(5);
      const model = new Sequential(new Linear(2, 6), new Tanh(), new Linear(6, 2));
      return { model, optimizer: new SGD(model.parameters(), { lr: 0.3 }) };
    };
    // reference: the same steps by hand
    const ref = build();
    const want: number[] = [];
    for (const [bx, by] of loader()) {
      const l = tidy(() => {
        ref.optimizer.zeroGrad();
        const loss = crossEntropy(ref.model.forward(bx), by);
        loss.backward();
        ref.optimizer.step();
        return keep(detach(loss));
      });
      want.push(await l.item());
      for (const t of [l, bx, by]) t.dispose();
    }
    const run = build();
    const seen: { epoch: number; batch: number; batches: number; loss: number }[] = [];
    const before = memory().liveTensors;
    const h = await fit(run.model, loader(), {
      epochs: 3, optimizer: run.optimizer, progress: false,
      onBatch: (info) => { seen.push(info); return !(info.epoch === 2 && info.batch === 2); },
    });
    expect(memory().liveTensors).toBe(before);
    expect(seen.map((s) => [s.epoch, s.batch, s.batches])).toEqual([[1, 1, 3], [1, 2, 3], [1, 3, 3], [2, 1, 3], [2, 2, 3]]);
    seen.slice(0, 3).forEach((s, i) => expect(s.loss).toBe(want[i]));
    expect(h.length).toBe(2);
    // epoch 1's mean loss is the mean of its three batch losses (equal batch sizes)
    expect(h[0].loss).toBeCloseTo((want[0] + want[1] + want[2]) / 3, 6);
    for (const m of [ref, run]) {
      m.model.dispose();
      m.optimizer.dispose();
    }
  });

  it('a tiny CNN takes training steps on both backends and agrees', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const rng = new Rng(8);
    const xd = Array.from({ length: 4 * 1 * 6 * 6 }, () => rng.uniform(-1, 1));
    const yd = [0, 1, 2, 1];
    const losses: number[][] = [];
    for (const be of [cpu, gpu]) {
      setBackend(be);
      manualSeed(12);
      const model = new Sequential(new Conv2d(1, 4, 3, { padding: 1 }), new BatchNorm2d(4), new ReLU(), new MaxPool2d(2), new Flatten(), new Linear(36, 3));
      const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
      const x = tensor(xd, [4, 1, 6, 6]);
      const y = tensor(yd, [4], { dtype: 'int32' });
      const ls: number[] = [];
      for (let i = 0; i < 5; i++) {
        const l = tidy(() => {
          opt.zeroGrad();
          const loss = crossEntropy(model.forward(x), y);
          loss.backward();
          opt.step();
          return loss.detach();
        });
        ls.push(await l.item());
        l.dispose();
      }
      losses.push(ls);
      model.dispose();
      opt.dispose();
    }
    setBackend(cpu);
    expect(losses[0][4]).toBeLessThan(losses[0][0]);
    losses[1].forEach((v, i) => expect(v).toBeCloseTo(losses[0][i], 3));
  });
});
