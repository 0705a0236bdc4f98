/**
 * Dirichlet losses (uncertainty/dirichlet.ts): exact values against closed forms in float64
 * (integer and half-integer arguments, where lnΓ and ψ are finite sums: lnΓ(n) = ln (n−1)!,
 * ψ(n) = −γ + H_{n−1}, ψ(n + ½) = −γ − 2 ln 2 + Σ_{k≤n} 2/(2k − 1)), float64 gradient checks
 * through lgamma/digamma, typed errors, device NaN poisoning, and no leaks.
 */
import { describe, expect, it } from 'vitest';
import {
  ArgumentError, IndexError, type Tensor, dirichletKl, dirichletTarget, evidentialAlpha, evidentialAnnealing, evidentialLoss,
  memory, outlierExposureLoss, priorNetworkAlpha, priorNetworkLoss, PriorNetwork, tensor, tidy, dirichletDetector,
} from '../node.js';
import { gradcheck } from './helpers/gradcheck.js';
import { host } from './helpers/compare.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

const GAMMA = 0.5772156649015329;
const H = (n: number): number => { let s = 0; for (let k = 1; k <= n; k++) s += 1 / k; return s; };
/** lnΓ(n) for integer n ≥ 1 or n = m + ½. */
function lnG(x: number): number {
  if (Number.isInteger(x)) { let s = 0; for (let k = 2; k < x; k++) s += Math.log(k); return s; }
  const m = x - 0.5; // Γ(m + ½) = (2m)! √π / (4^m m!)
  let s = 0.5 * Math.log(Math.PI);
  for (let k = 1; k <= m; k++) s += Math.log(k - 0.5);
  return s;
}
function psi(x: number): number {
  if (Number.isInteger(x)) return -GAMMA + H(x - 1);
  const m = x - 0.5;
  let s = -GAMMA - 2 * Math.LN2;
  for (let k = 1; k <= m; k++) s += 2 / (2 * k - 1);
  return s;
}
/** KL(Dir(a) ‖ Dir(b)) from the closed-form pieces. */
function kl(a: number[], b: number[]): number {
  const a0 = a.reduce((p, v) => p + v, 0);
  const b0 = b.reduce((p, v) => p + v, 0);
  let s = lnG(a0) - lnG(b0);
  for (let k = 0; k < a.length; k++) s += lnG(b[k]!) - lnG(a[k]!) + (a[k]! - b[k]!) * (psi(a[k]!) - psi(a0));
  return s;
}

async function vals(t: Tensor): Promise<number[]> {
  const d = Array.from(await t.data());
  t.dispose();
  return d;
}
const f64 = (v: number[][]) => tensor(v, { dtype: 'float64', backend: cpu });
const i32 = (v: number[]) => tensor(v, { dtype: 'int32', backend: cpu });
function close(got: number[], want: number[], tol = 1e-12): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `index ${i}: got ${got[i]}, want ${want[i]}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(want[i]!)));
}

describe('closed-form references', () => {
  it('the helper closed forms agree with hand values', () => {
    // KL(Dir(2,3,1) ‖ Dir(1,1,1)) = ln 30 + (1 − H5) + 2(H2 − H5) = ln 30 − 171/60
    expect(kl([2, 3, 1], [1, 1, 1])).toBeCloseTo(Math.log(30) - 171 / 60, 14);
    expect(lnG(2.5)).toBeCloseTo(Math.log(0.75 * Math.sqrt(Math.PI)), 14);
    expect(psi(0.5)).toBeCloseTo(-GAMMA - 2 * Math.LN2, 14);
  });
});

describe('dirichletKl', () => {
  it('matches the closed form (integer and half-integer α, β) and is 0 for α = β', async () => {
    const A = [[2, 3, 1], [0.5, 1.5, 4], [7, 7, 7]];
    const B = [[1, 1, 1], [2.5, 1, 0.5], [7, 7, 7]];
    const got = await vals(tidy(() => dirichletKl(f64(A), f64(B))));
    close(got, [Math.log(30) - 171 / 60, kl(A[1]!, B[1]!), 0], 1e-13);
    expect(got[0]).toBeCloseTo(0.5511973816621555, 14);
  });
  it('broadcasts a [1, K] target', async () => {
    const got = await vals(tidy(() => dirichletKl(f64([[2, 3, 1], [1, 1, 1]]), f64([[1, 1, 1]]))));
    close(got, [kl([2, 3, 1], [1, 1, 1]), 0], 1e-13);
  });
  it('throws a typed error for non-positive α and mismatched shapes', () => {
    expect(() => tidy(() => dirichletKl(f64([[1, 0, 2]]), f64([[1, 1, 1]])))).toThrow(ArgumentError);
    expect(() => tidy(() => dirichletKl(f64([[1, 0, 2]]), f64([[1, 1, 1]])))).toThrow(/dirichletKl: alpha \[1,3\] must have positive entries.*row 0 has minimum 0/);
    expect(() => tidy(() => dirichletKl(f64([[1, 1, 2]]), f64([[1, -1, 1]])))).toThrow(/beta/);
    expect(() => tidy(() => dirichletKl(f64([[1, 2]]), f64([[1, 1, 1]])))).toThrow(/beta \[1,3\] must be \[B, K\] or \[1, K\]/);
  });
});

describe('priorNetworkLoss', () => {
  const alpha = [[2, 3, 1], [1, 1, 1], [0.5, 2.5, 1]];
  const y = [0, 2, 1];
  const target = (k: number, c: number, K = 3) => Array.from({ length: K }, (_, j) => (j === k ? 1 + c : 1));
  it('forward KL(Dir(β) ‖ Dir(α)) with β = 1 + 100·onehot, per row and mean', async () => {
    const want = alpha.map((a, i) => kl(target(y[i]!, 100), a));
    close(await vals(tidy(() => priorNetworkLoss(f64(alpha), i32(y), { reduction: 'none' }))), want, 1e-13);
    close(await vals(tidy(() => priorNetworkLoss(f64(alpha), i32(y)))), [want.reduce((p, v) => p + v, 0) / 3], 1e-13);
    close(await vals(tidy(() => priorNetworkLoss(f64(alpha), i32(y), { reduction: 'sum' }))), [want.reduce((p, v) => p + v, 0)], 1e-13);
  });
  it('reverse KL(Dir(α) ‖ Dir(β)), a custom target concentration, and flat targets for OOD rows', async () => {
    const ood = tensor([false, true, false], { dtype: 'bool', backend: cpu });
    const want = [kl(alpha[0]!, target(0, 10)), kl(alpha[1]!, [1, 1, 1]), kl(alpha[2]!, target(1, 10))];
    close(await vals(tidy(() => priorNetworkLoss(f64(alpha), i32(y), { divergence: 'reverse', targetConcentration: 10, ood, reduction: 'none' }))), want, 1e-13);
    const w = [want[0]!, 0.25 * want[1]!, want[2]!];
    close(await vals(tidy(() => priorNetworkLoss(f64(alpha), i32(y), { divergence: 'reverse', targetConcentration: 10, ood, oodWeight: 0.25, reduction: 'none' }))), w, 1e-13);
    ood.dispose();
  });
  it('dirichletTarget builds β', async () => {
    const ood = tensor([0, 1], { dtype: 'float64', backend: cpu });
    close(await vals(tidy(() => dirichletTarget(i32([2, 0]), 3, { targetConcentration: 5, ood, dtype: 'float64' }))), [1, 1, 6, 1, 1, 1]);
    ood.dispose();
  });
  it('gradient through the exp head, lgamma and digamma (float64 central differences)', async () => {
    const z = host([0.3, -1.2, 2.0, 0.1, 0.4, -0.5], [2, 3], 'float64');
    for (const divergence of ['forward', 'reverse'] as const) {
      await gradcheck((t) => priorNetworkLoss(priorNetworkAlpha(t, { clamp: null }), i32([1, 2]), { divergence, targetConcentration: 20 }), [z], { label: `priorNetworkLoss ${divergence}` });
    }
    await gradcheck((a, b) => dirichletKl(a, b), [host([2, 3, 0.7, 1.1, 0.4, 5], [2, 3], 'float64'), host([1.5, 0.8, 2, 3, 1, 1], [2, 3], 'float64')], { label: 'dirichletKl' });
  });
  it('typed errors: non-positive α, targets outside [0, K), bad shapes and options', () => {
    expect(() => tidy(() => priorNetworkLoss(f64([[1, 2, -0.5]]), i32([0])))).toThrow(ArgumentError);
    expect(() => tidy(() => priorNetworkLoss(f64([[1, 2, NaN]]), i32([0])))).toThrow(/positive entries/);
    expect(() => tidy(() => priorNetworkLoss(f64([[1, 2, 3]]), i32([3])))).toThrow(IndexError);
    expect(() => tidy(() => priorNetworkLoss(f64([[1, 2, 3]]), i32([-1])))).toThrow(/priorNetworkLoss: class index -1.*expected 0 <= class index < 3/);
    expect(() => tidy(() => priorNetworkLoss(f64([[1, 2, 3]]), i32([0, 1])))).toThrow(/target \[2\] must be \[B\] = \[1\]/);
    expect(() => tidy(() => priorNetworkLoss(f64([[1, 2, 3]]), i32([0]), { targetConcentration: 0 }))).toThrow(ArgumentError);
    expect(() => tidy(() => priorNetworkLoss(f64([[1, 2, 3]]), i32([0]), { divergence: 'sideways' as 'forward' }))).toThrow(/divergence/);
  });
});

describe('heads', () => {
  it('exp head clamps z to [−10, 10] (gradient 0 outside), evidential heads add 1', async () => {
    close(await vals(tidy(() => priorNetworkAlpha(f64([[0, 20, -30]])))), [1, Math.exp(10), Math.exp(-10)]);
    close(await vals(tidy(() => evidentialAlpha(f64([[0, -2, 3]]), 'relu'))), [1, 1, 4]);
    close(await vals(tidy(() => evidentialAlpha(f64([[0, -2, 3]])))), [1 + Math.LN2, 1 + Math.log1p(Math.exp(-2)), 1 + Math.log1p(Math.exp(3))]);
    close(await vals(tidy(() => evidentialAlpha(f64([[0, 1]]), 'exp'))), [2, 1 + Math.E]);
    expect(() => priorNetworkAlpha(f64([[0, 1]]), { clamp: [1, 0] })).toThrow(ArgumentError);
  });
  it('PriorNetwork wraps a body and feeds dirichletDetector', async () => {
    const net = new PriorNetwork((x: Tensor) => x, { head: 'softplus' });
    const got = await vals(tidy(() => net.alpha(f64([[0, 0]]))));
    close(got, [1 + Math.LN2, 1 + Math.LN2]);
    const det = dirichletDetector(net, { measure: 'vacuity', concentration: 'alpha' });
    close(await vals(tidy(() => det.score(f64([[0, 0], [30, 30]])))), [2 / (2 + 2 * Math.LN2), 2 / (2 + 2 * (30 + Math.log1p(Math.exp(-30))))], 1e-12);
  });
});

describe('evidentialLoss (Sensoy et al. 2018)', () => {
  const A = [[2, 3, 1]];
  it('expected cross-entropy, log and MSE forms against hand values', async () => {
    close(await vals(tidy(() => evidentialLoss(f64(A), i32([1]))) ), [137 / 60 - 3 / 2]);
    close(await vals(tidy(() => evidentialLoss(f64(A), i32([1]), { kind: 'log' }))), [Math.LN2]);
    close(await vals(tidy(() => evidentialLoss(f64(A), i32([1]), { kind: 'mse' }))), [10 / 21]);
  });
  it('adds λ·KL(Dir(α̃) ‖ Dir(1)) on the misleading evidence α̃ = y + (1 − y)⊙α', async () => {
    // α̃ = [2, 1, 1]: KL = ln Γ(4) − ln Γ(3) + (ψ(2) − ψ(4)) = ln 3 − 5/6
    close(await vals(tidy(() => evidentialLoss(f64(A), i32([1]), { klWeight: 0.3 }))), [47 / 60 + 0.3 * (Math.log(3) - 5 / 6)]);
    const rows = await vals(tidy(() => evidentialLoss(f64([[2, 3, 1], [1, 1, 4]]), i32([1, 2]), { kind: 'mse', klWeight: 1, reduction: 'none' })));
    // row 2: p = [1/6, 1/6, 2/3], y = e_2: (1/36 + 1/36 + 1/9) + (5/36 + 5/36 + 2/9)/7; α̃ = [1, 1, 1] → KL 0
    close(rows, [10 / 21 + Math.log(3) - 5 / 6, 6 / 36 + 18 / 36 / 7]);
    expect(kl([2, 1, 1], [1, 1, 1])).toBeCloseTo(Math.log(3) - 5 / 6, 14);
  });
  it('annealing schedule min(1, t/10)', () => {
    expect(evidentialAnnealing(0)).toBe(0);
    expect(evidentialAnnealing(3)).toBeCloseTo(0.3, 15);
    expect(evidentialAnnealing(25)).toBe(1);
    expect(evidentialAnnealing(2, 4)).toBe(0.5);
    expect(() => evidentialAnnealing(1, 0)).toThrow(ArgumentError);
  });
  it('gradients of every form through the softplus head (float64 central differences)', async () => {
    const z = host([0.3, -1.2, 2.0, 0.1, 0.4, -0.5], [2, 3], 'float64');
    for (const kind of ['ce', 'log', 'mse'] as const) {
      await gradcheck((t) => evidentialLoss(evidentialAlpha(t), i32([1, 0]), { kind, klWeight: 0.7 }), [z], { label: `evidentialLoss ${kind}` });
    }
  });
  it('typed errors', () => {
    expect(() => tidy(() => evidentialLoss(f64([[0, 1, 1]]), i32([0])))).toThrow(ArgumentError);
    expect(() => tidy(() => evidentialLoss(f64([[1, 1, 1]]), i32([5])))).toThrow(IndexError);
    expect(() => tidy(() => evidentialLoss(f64([[1, 1, 1]]), i32([0]), { klWeight: -1 }))).toThrow(/klWeight/);
    expect(() => tidy(() => evidentialLoss(f64([[1, 1, 1]]), i32([0]), { kind: 'hinge' as 'ce' }))).toThrow(/kind/);
  });
});

describe('outlierExposureLoss (Hendrycks et al. 2019)', () => {
  it('CE on inliers + λ·CE to uniform on outliers', async () => {
    const zin = f64([[0, Math.LN2, Math.log(3)], [0, 0, 0]]);
    const zout = f64([[0, Math.log(3), 0]]);
    // inliers: target 2 → ln 6 − ln 3 = ln 2; target 0 → ln 3. outlier: ln 5 − ln 3 / 3.
    const want = (Math.LN2 + Math.log(3)) / 2 + 0.5 * (Math.log(5) - Math.log(3) / 3);
    close(await vals(tidy(() => outlierExposureLoss(zin, i32([2, 0]), zout))), [want]);
    close(await vals(tidy(() => outlierExposureLoss(zin, i32([2, 0]), zout, { lambda: 2 }))), [want + 1.5 * (Math.log(5) - Math.log(3) / 3)]);
    zin.dispose(); zout.dispose();
  });
  it('gradient (float64) and typed errors', async () => {
    await gradcheck((a, b) => outlierExposureLoss(a, i32([1, 0]), b), [host([0.3, -1.2, 2.0, 0.1, 0.4, -0.5], [2, 3], 'float64'), host([1, 2, 3], [1, 3], 'float64')], { label: 'outlierExposureLoss' });
    expect(() => tidy(() => outlierExposureLoss(f64([[1, 1, 1]]), i32([3]), f64([[1, 1, 1]])))).toThrow(IndexError);
    expect(() => tidy(() => outlierExposureLoss(f64([[1, 1, 1]]), i32([0]), f64([[1, 1]])))).toThrow(/logitsOut \[1,2\] must have the K = 3/);
  });
});

describe('leaks and the device path', () => {
  it('frees every intermediate', () => {
    const a = f64([[2, 3, 1], [1, 2, 1]]);
    const y = i32([0, 1]);
    const before = memory().liveTensors;
    for (const f of [() => priorNetworkLoss(a, y), () => priorNetworkLoss(a, y, { divergence: 'reverse', ood: y }), () => evidentialLoss(a, y, { kind: 'mse', klWeight: 1 }), () => dirichletKl(a, a), () => outlierExposureLoss(a, y, a)]) {
      const out = f();
      expect(memory().liveTensors).toBe(before + 1);
      out.dispose();
    }
    expect(memory().liveTensors).toBe(before);
    a.dispose(); y.dispose();
  });
  it('WebGPU agrees with the CPU and poisons rows it cannot check on the host with NaN', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const A = [[2, 3, 1], [1, 0, 1], [0.5, 2.5, 1]];
    const aG = tensor(A, { dtype: 'float32', backend: gpu });
    const yG = tensor([0, 1, 7], { dtype: 'int32', backend: gpu });
    const got = await vals(tidy(() => priorNetworkLoss(aG, yG, { reduction: 'none' })));
    expect(got[0]).toBeCloseTo(kl([101, 1, 1], A[0]!), 3);
    expect(got[1]).toBeNaN();
    expect(got[2]).toBeNaN();
    const ev = await vals(tidy(() => evidentialLoss(aG, yG, { reduction: 'none', klWeight: 0.5 })));
    expect(ev[0]).toBeCloseTo(psi(6) - psi(2) + 0.5 * kl([1, 3, 1], [1, 1, 1]), 5);
    expect(ev[1]).toBeNaN();
    expect(ev[2]).toBeNaN();
    aG.dispose(); yG.dispose();
  });
});
