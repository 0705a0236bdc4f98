/**
 * explain/ against PyTorch: golden values from scripts/gen-explain-fixtures.py (float64, every
 * method written out from its definition in torch, VOICE as a Python loop over inputs and
 * contrast classes). CPU float64 must agree to ~1e-9; WebGPU float32 within float32 error.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  type Backend, type Tensor, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, contrastCam, counterfactualCam,
  dispose, fromHost, gradCam, memory, saliency, setBackend, tidy, voice,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';
import { settleGarbage } from './helpers/settle-garbage.js';

setBackend(cpu);

interface HostT { shape: number[]; data: number[] }
interface Golden {
  layer: string;
  state_dict: Record<string, HostT>;
  x: HostT;
  logits: number[][];
  pred: number[];
  runner_up: number[];
  explicit_target: number[];
  explicit_contrast: number[];
  gradcam_raw: number[][][];
  gradcam: number[][][];
  gradcam_target: number[][][];
  counterfactual: number[][][];
  contrastcam: number[][][];
  contrastcam_q: number[][][];
  voice: { contrast: number[][]; maps: number[][][][]; uncertainty: number[][][]; snr: number[]; iou: number[] };
  saliency: { gradient: number[]; gradient_x_input: number[]; guided: number[]; ig_steps: number; ig: number[]; ig_delta: number[] };
}

const G = JSON.parse(readFileSync(new URL('./fixtures/explain/golden.json', import.meta.url), 'utf8')) as Golden;
const flat = (v: unknown): number[] => (Array.isArray(v) ? v.flatMap(flat) : [v as number]);

async function build(backend: Backend, dtype: 'float32' | 'float64'): Promise<{ net: Sequential; x: Tensor }> {
  // Built on the target backend inside tidy (parameters are kept; any temporaries of the
  // initialisers are freed now rather than by the garbage-collection safety net, which would make
  // the leak count below drift when it runs mid-test).
  setBackend(backend);
  const net = tidy(() => new Sequential(
    new Conv2d(1, 3, 3, { padding: 1 }), new ReLU(), new MaxPool2d(2), new Conv2d(3, 4, 3, { padding: 1 }), new ReLU(), new Flatten(),
    new Linear(64, 10), new ReLU(), new Linear(10, 5),
  ));
  setBackend(cpu);
  if (dtype === 'float64') await net.to('float64');
  const sd = Object.fromEntries(Object.entries(G.state_dict).map(([k, v]) => [k, fromHost(v.data, v.shape, dtype, backend)]));
  net.loadStateDict(sd);
  dispose(Object.values(sd));
  net.eval();
  return { net, x: fromHost(G.x.data, G.x.shape, dtype, backend) };
}

function close(got: ArrayLike<number>, want: readonly number[], atol: number, rtol: number, label: string): void {
  expect(got.length, label).toBe(want.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]) / (atol + rtol * Math.abs(want[i]));
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  expect(worst, `${label}: worst at ${at}: got ${got[at]}, want ${want[at]}`).toBeLessThanOrEqual(1);
}

async function checkAll(backend: Backend, dtype: 'float32' | 'float64', atol: number, rtol: number): Promise<void> {
  const { net, x } = await build(backend, dtype);
  await settleGarbage();
  const before = memory().liveTensors;
  const layer = G.layer;
  const run = async (label: string, p: Promise<Tensor>, want: unknown) => {
    const t = await p;
    close(await t.data(), flat(want), atol, rtol, label);
    t.dispose();
  };
  await run('gradCam (layer resolution, raw)', gradCam(net, x, { layer, upsample: false, normalize: false }), G.gradcam_raw);
  await run('gradCam', gradCam(net, x, { layer }), G.gradcam);
  await run('gradCam explicit target', gradCam(net, x, { layer, target: G.explicit_target }), G.gradcam_target);
  await run('counterfactualCam', counterfactualCam(net, x, { layer }), G.counterfactual);
  await run('contrastCam (runner-up)', contrastCam(net, x, { layer }), G.contrastcam);
  await run('contrastCam explicit Q', contrastCam(net, x, { layer: net.at(4), contrast: G.explicit_contrast }), G.contrastcam_q);
  await run('saliency gradient', saliency(net, x, { method: 'gradient' }), G.saliency.gradient);
  await run('saliency gradient × input', saliency(net, x, { method: 'gradientXInput' }), G.saliency.gradient_x_input);
  await run('saliency guided backprop', saliency(net, x, { method: 'guidedBackprop' }), G.saliency.guided);
  await run('integrated gradients', saliency(net, x, { method: 'integratedGradients', steps: G.saliency.ig_steps, rule: 'middle' }), G.saliency.ig);

  const v = await voice(net, x, { layer });
  expect(Array.from(await v.prediction.data())).toEqual(G.pred);
  expect(Array.from(await v.contrastClasses.data())).toEqual(flat(G.voice.contrast));
  close(await v.maps.data(), flat(G.voice.maps), atol, rtol, 'voice maps');
  close(await v.explanation.data(), flat(G.gradcam), atol, rtol, 'voice explanation');
  close(await v.uncertainty.data(), flat(G.voice.uncertainty), atol * 10, rtol * 10, 'voice uncertainty (variance of normalised maps, renormalised)');
  close(await v.snr.data(), G.voice.snr, atol * 10, rtol * 10, 'voice snr');
  // IoU counts pixels above 0.1: the counts are exact (no pixel sits within rounding of the
  // threshold here); the ratio is rounded once to the dtype.
  close(await v.iou.data(), G.voice.iou, 0, dtype === 'float64' ? 1e-14 : 2 ** -23, 'voice iou');
  dispose(Object.values(v));
  expect(memory().liveTensors - before, 'no tensors leaked').toBe(0);
  x.dispose();
  net.dispose();
}

describe('explain vs PyTorch (scripts/gen-explain-fixtures.py)', () => {
  it('fixture sanity: the logits match (CPU float64)', async () => {
    const { net, x } = await build(cpu, 'float64');
    const z = net.forward(x);
    close(await z.data(), flat(G.logits), 1e-12, 1e-12, 'logits');
    z.dispose();
    x.dispose();
    net.dispose();
  });

  // float64 on both sides. The layer-resolution maps and the gradients agree to ~1e-15; the
  // upsampled maps differ by up to ~1e-7 because dubito's upsampleBilinear2d rounds its scale
  // in/out (here 4/9) to float32 on every backend (so CPU and WebGPU sample the same source
  // points), while PyTorch's float64 kernel uses the double 4/9: source coordinates move by up to
  // 9·2^-24 ≈ 5e-7 px. 1e-6 covers that and is still 5 orders below a wrong formula.
  it('every method matches on the CPU reference (float64)', async () => {
    await checkAll(cpu, 'float64', 1e-6, 1e-6);
  });

  // float32 on WebGPU vs float64 PyTorch: the activations and gradients carry ~1e-7 relative
  // error through two convolutions and two linear layers (a few hundred terms), and the
  // normalisation divides by the map's range (≥ ~0.1 here), so 2e-4 absolute is a few hundred
  // float32 ULPs — far below what a wrong formula gives (errors of order 0.1–1).
  it('every method matches on WebGPU (float32)', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    await checkAll(gpu, 'float32', 2e-4, 2e-4);
  });
});
