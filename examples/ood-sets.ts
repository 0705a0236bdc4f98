/**
 * The OOD sets of the eval (examples/eval-recipes.ts), all from shipped data and the library's
 * own ops (nn/data/shifts.ts), seeded:
 * - fashion: Fashion-MNIST test images (far / semantic shift);
 * - gaussian: clip(𝒩(0.5, 0.25²), 0, 1) noise images, Philox seed 101;
 * - uniform: U[0, 1) noise images, Philox seed 102;
 * - inverted: 1 − x of MNIST-test images (near / covariate);
 * - rot90, rot180: MNIST-test rotated by 90° / 180° (exact pixel permutations);
 * - blur: MNIST-test blurred with a Gaussian of σ = 2.5 px (radius 8, zero padding).
 * The derived sets use the first `count` MNIST-test images (default 1,000), the noise sets
 * `count` images; Fashion uses its first `count` images (default all).
 */
import {
  type Backend, type ImageSet, type Tensor, gaussianBlur, gaussianNoiseImages, invertImages, keep, rotateImages, slice, tensor, tidy, uniformNoiseImages,
} from '../node.js';

export type OodSetName = 'fashion' | 'gaussian' | 'uniform' | 'inverted' | 'rot90' | 'rot180' | 'blur';

export const OOD_SET_INFO: Record<OodSetName, { short: string; how: string }> = {
  fashion: { short: 'Fashion', how: 'Fashion-MNIST test images (far, semantic)' },
  gaussian: { short: 'Gaussian', how: 'clip(𝒩(0.5, 0.25²), 0, 1) per pixel, Philox seed 101' },
  uniform: { short: 'Uniform', how: 'U[0, 1) per pixel, Philox seed 102' },
  inverted: { short: 'Inverted', how: '1 − x of MNIST-test' },
  rot90: { short: 'Rot 90°', how: 'MNIST-test rotated 90° counter-clockwise' },
  rot180: { short: 'Rot 180°', how: 'MNIST-test rotated 180°' },
  blur: { short: 'Blur σ=2.5', how: 'MNIST-test convolved with a Gaussian, σ = 2.5 px (radius 8)' },
};

export const BLUR_SIGMA = 2.5;

export function buildOodSets(o: { mnistTest: Tensor; fashion: ImageSet; count?: number; backend: Backend }): Record<OodSetName, Tensor> {
  const nM = Math.min(o.count ?? 1000, o.mnistTest.shape[0]);
  const nF = Math.min(o.count ?? o.fashion.count, o.fashion.count);
  return tidy(() => {
    const m = nM === o.mnistTest.shape[0] ? o.mnistTest : slice(o.mnistTest, [0, 0, 0, 0], [nM, -1, -1, -1]);
    const sets: Record<OodSetName, Tensor> = {
      fashion: tensor(o.fashion.images.subarray(0, nF * 784), [nF, 1, 28, 28], { backend: o.backend }),
      gaussian: gaussianNoiseImages([nM, 1, 28, 28], { seed: 101, backend: o.backend }),
      uniform: uniformNoiseImages([nM, 1, 28, 28], { seed: 102, backend: o.backend }),
      inverted: invertImages(m),
      rot90: rotateImages(m, 1),
      rot180: rotateImages(m, 2),
      blur: gaussianBlur(m, BLUR_SIGMA),
    };
    for (const t of Object.values(sets)) keep(t);
    return sets;
  });
}
