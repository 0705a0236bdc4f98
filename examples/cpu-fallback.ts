/**
 * What `npm run demo` says up front when it runs on the CPU reference backend (no WebGPU
 * adapter, or `--backend cpu`): that it does, how long the run will take at the chosen epochs
 * (a few training steps are timed and extrapolated) and the one command that installs
 * lavapipe (software Vulkan) so that WebGPU works on a headless Linux machine.
 */
import { type Backend, Adam, LeNet5, crossEntropy, dispose, randint, tidy, uniform } from '../node.js';

/** The command that installs the system dependencies (Mesa lavapipe, Chromium) of a checkout. */
export const LAVAPIPE_COMMAND = 'sudo bash .ci/install-system-deps.sh';

/**
 * Mean wall time (ms) of `steps` LeNet-5 training steps (forward + backward + Adam) on random
 * MNIST-shaped batches, after one warm-up step. The model and all tensors are freed afterwards.
 */
export async function measureStepMs(batchSize: number, backend: Backend, steps = 2): Promise<number> {
  const model = new LeNet5({ dropout: 0.3 });
  await model.to(backend);
  const opt = new Adam(model.parameters(), { lr: 1e-3 });
  const x = uniform([batchSize, 1, 28, 28], { seed: 12345, backend });
  const y = randint(0, 10, [batchSize], { seed: 54321, backend });
  const step = async () => {
    const l = tidy(() => {
      opt.zeroGrad();
      const loss = crossEntropy(model.forward(x), y);
      loss.backward();
      opt.step();
      return loss.detach();
    });
    await l.data();
    l.dispose();
  };
  try {
    await step();
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) await step();
    return (performance.now() - t0) / steps;
  } finally {
    x.dispose();
    y.dispose();
    opt.zeroGrad();
    dispose([...opt.state.values()]);
    model.dispose();
  }
}

export interface FallbackEstimate {
  /** True when the user asked for the CPU backend (`--backend cpu`), false when WebGPU was unavailable. */
  forced: boolean;
  msPerStep: number;
  epochs: number;
  stepsPerEpoch: number;
  /** Images only evaluated (validation every epoch, test, Fashion-MNIST), at about a third of a training step's cost per image. */
  evalImages: number;
  batchSize: number;
}

function fmtDuration(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** The up-front notice (several lines) for a demo run on the CPU reference backend. */
export function cpuFallbackNotice(e: FallbackEstimate): string {
  const trainS = (e.msPerStep * e.stepsPerEpoch * e.epochs) / 1000;
  const evalS = ((e.msPerStep / 3) * (e.evalImages / e.batchSize)) / 1000;
  const total = trainS + evalS;
  return [
    e.forced
      ? 'Running on the CPU reference backend (--backend cpu): plain TypeScript, much slower than WebGPU.'
      : 'No WebGPU adapter found: falling back to the CPU reference backend (plain TypeScript, much slower than WebGPU).',
    `Measured ${e.msPerStep.toFixed(0)} ms per training step (batch ${e.batchSize}); ${e.epochs} epochs × ${e.stepsPerEpoch} steps ` +
      `will take about ${fmtDuration(total)} (training ${fmtDuration(trainS)}, evaluation ${fmtDuration(evalS)}).`,
    `To run on WebGPU without a GPU, install lavapipe (software Vulkan): ${LAVAPIPE_COMMAND}`,
    'For a quick look instead: `npm run quickstart`, or `npm run demo -- --epochs 1`.',
  ].join('\n');
}
