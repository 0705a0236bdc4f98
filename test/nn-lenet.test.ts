import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type Backend, DeepEnsemble, LeNet5, decodeSafetensors, safetensorsToTensors, setBackend } from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

const weights = decodeSafetensors(readFileSync(new URL('./fixtures/lenet.safetensors', import.meta.url)));
const io = decodeSafetensors(readFileSync(new URL('./fixtures/lenet-io.safetensors', import.meta.url)));

async function parity(be: Backend) {
  setBackend(be);
  const model = new LeNet5();
  model.loadStateDict(safetensorsToTensors(weights, be));
  model.eval();
  const x = safetensorsToTensors(io, be).input;
  const got = await model.forward(x).data();
  const want = io.tensors.logits.data;
  let maxErr = 0;
  for (let i = 0; i < want.length; i++) maxErr = Math.max(maxErr, Math.abs(got[i] - want[i]));
  return { model, x, maxErr };
}

describe('LeNet5 loads a PyTorch-trained state dict and reproduces its logits', () => {
  it('cpu', async () => {
    const { maxErr } = await parity(cpu);
    // float32 reference arithmetic vs PyTorch's float32 (different summation order): ~1e-7 seen.
    expect(maxErr).toBeLessThan(2e-6);
  });

  it('webgpu (also through the fused Sequential path and a stacked ensemble of two copies)', async (ctx) => {
    const gpu = await requireWebGPU(ctx);
    const { model, x, maxErr } = await parity(gpu);
    expect(maxErr).toBeLessThan(1e-5);
    const twin = new LeNet5();
    twin.loadStateDict(model.stateDict());
    const ens = new DeepEnsemble([model, twin]).eval();
    const stacked = await ens.forward(x).data();
    const want = io.tensors.logits.data;
    for (let m = 0; m < 2; m++) for (let i = 0; i < want.length; i++) expect(Math.abs(stacked[m * want.length + i] - want[i])).toBeLessThan(1e-5);
  });
});
