import {
  ArgumentError, ShapeError, type Tensor, add, composite, detach, fmtShape, flatten, gradients, maximum, mean, minimum, mul, noGrad, sqrt,
  square, sub, sum, tidy, uniform, withGrad,
} from '../../engine/index.js';
import { assignInPlace } from '../assign.js';
import { Module } from '../module.js';
import { Conv2d, ConvTranspose2d } from '../layers/conv.js';
import { Linear } from '../layers/linear.js';

/**
 * Networks of a WGAN on 28×28 single-channel images with the inverter of Zhao, Dua & Singh 2018
 * ("Generating natural adversarial examples"): a generator G: z → x, a critic D: x → ℝ and an
 * inverter I: x → z. Every spatial layer has stride 2; the four resolutions are 28 → 14 → 7 → 4 → 2
 * (kernel 4 / padding 1 halves 28 and 14, kernel 3 / padding 1 maps 7 → 4 and 4 → 2), and the
 * generator runs them backwards.
 */
export interface WganOptions {
  /** Latent dimension (default 64). */
  latent?: number;
  /** Channel width of the first conv (the widths double per layer: c, 2c, 4c, 8c; default 16). */
  width?: number;
}

function widths(opts: WganOptions, what: string): { L: number; c: number } {
  const L = opts.latent ?? 64;
  const c = opts.width ?? 16;
  for (const [k, v] of [['latent', L], ['width', c]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new ArgumentError(`${what}: ${k} must be a positive integer, got ${v}`);
  }
  return { L, c };
}

function checkImages(what: string, x: Tensor): void {
  if (x.rank !== 4 || x.shape[1] !== 1 || x.shape[2] !== 28 || x.shape[3] !== 28) {
    throw new ShapeError(`${what}: expected images [B, 1, 28, 28], got ${fmtShape(x.shape)}`);
  }
}

/** The four stride-2 convolutions shared by the critic and the inverter: [B, 1, 28, 28] → [B, 8c·2·2]. */
class ConvStack extends Module<[Tensor], Tensor> {
  readonly c1: Conv2d;
  readonly c2: Conv2d;
  readonly c3: Conv2d;
  readonly c4: Conv2d;
  constructor(c: number) {
    super();
    this.c1 = new Conv2d(1, c, 4, { stride: 2, padding: 1 }); // 28 → 14
    this.c2 = new Conv2d(c, 2 * c, 4, { stride: 2, padding: 1 }); // 14 → 7
    this.c3 = new Conv2d(2 * c, 4 * c, 3, { stride: 2, padding: 1 }); // 7 → 4
    this.c4 = new Conv2d(4 * c, 8 * c, 3, { stride: 2, padding: 1 }); // 4 → 2
  }
  forward(x: Tensor): Tensor {
    let h = x;
    for (const conv of [this.c1, this.c2, this.c3, this.c4]) h = conv.forward(h).leakyRelu(0.2);
    return flatten(h, 1);
  }
}

/** G: z [B, latent] → images [B, 1, 28, 28] in (0, 1): 1 FC + 4 transposed convs (stride 2, ReLU), sigmoid output. */
export class WganGenerator extends Module<[Tensor], Tensor> {
  readonly latent: number;
  readonly fc: Linear;
  readonly t1: ConvTranspose2d;
  readonly t2: ConvTranspose2d;
  readonly t3: ConvTranspose2d;
  readonly t4: ConvTranspose2d;
  private readonly c: number;
  constructor(opts: WganOptions = {}) {
    super();
    const { L, c } = widths(opts, 'WganGenerator');
    this.latent = L;
    this.c = c;
    this.fc = new Linear(L, 8 * c * 4);
    this.t1 = new ConvTranspose2d(8 * c, 4 * c, 4, { stride: 2, padding: 1 }); // 2 → 4
    this.t2 = new ConvTranspose2d(4 * c, 2 * c, 3, { stride: 2, padding: 1 }); // 4 → 7
    this.t3 = new ConvTranspose2d(2 * c, c, 4, { stride: 2, padding: 1 }); // 7 → 14
    this.t4 = new ConvTranspose2d(c, 1, 4, { stride: 2, padding: 1 }); // 14 → 28
  }
  forward(z: Tensor): Tensor {
    if (z.rank !== 2 || z.shape[1] !== this.latent) throw new ShapeError(`WganGenerator: expected latents [B, ${this.latent}], got ${fmtShape(z.shape)}`);
    let h = this.fc.forward(z).relu().reshape([z.shape[0], 8 * this.c, 2, 2]);
    h = this.t1.forward(h).relu();
    h = this.t2.forward(h).relu();
    h = this.t3.forward(h).relu();
    return this.t4.forward(h).sigmoid();
  }
}

/** D: images [B, 1, 28, 28] → [B] (unbounded Wasserstein critic): 4 convs (stride 2, LeakyReLU 0.2) + 1 FC. No normalisation layer (the gradient penalty is per sample). */
export class WganCritic extends Module<[Tensor], Tensor> {
  readonly convs: ConvStack;
  readonly fc: Linear;
  constructor(opts: WganOptions = {}) {
    super();
    const { c } = widths(opts, 'WganCritic');
    this.convs = new ConvStack(c);
    this.fc = new Linear(8 * c * 4, 1);
  }
  forward(x: Tensor): Tensor {
    checkImages('WganCritic', x);
    return this.fc.forward(this.convs.forward(x)).reshape([x.shape[0]]);
  }
}

/** I: images [B, 1, 28, 28] → latents [B, latent]: 4 convs (stride 2, LeakyReLU 0.2) + 2 FC. */
export class WganInverter extends Module<[Tensor], Tensor> {
  readonly latent: number;
  readonly convs: ConvStack;
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(opts: WganOptions = {}) {
    super();
    const { L, c } = widths(opts, 'WganInverter');
    this.latent = L;
    this.convs = new ConvStack(c);
    this.fc1 = new Linear(8 * c * 4, 8 * c);
    this.fc2 = new Linear(8 * c, L);
  }
  forward(x: Tensor): Tensor {
    checkImages('WganInverter', x);
    return this.fc2.forward(this.fc1.forward(this.convs.forward(x)).leakyRelu(0.2));
  }
}

/**
 * The WGAN-GP gradient penalty (Gulrajani et al. 2017): with x̂ = ε·x_real + (1 − ε)·x_fake,
 * ε ~ U(0, 1) per sample,
 *
 *   GP = E_x̂ (‖∇_x̂ D(x̂)‖₂ − 1)²,
 *
 * ∇_x̂ D computed WITH a recorded graph (double backward), so GP is differentiable w.r.t. the
 * critic's weights. `eps` [B] may be given (tests); otherwise it is drawn from the global Philox
 * generator. The norm is √(Σ g² + 1e-12) so its gradient stays finite at g = 0.
 */
export function gradientPenalty(critic: (x: Tensor) => Tensor, real: Tensor, fake: Tensor, opts: { eps?: Tensor } = {}): Tensor {
  if (real.rank < 2 || real.shape.join(',') !== fake.shape.join(',')) {
    throw new ShapeError(`gradientPenalty: real ${fmtShape(real.shape)} and fake ${fmtShape(fake.shape)} must be batches [B, ...] of the same shape`);
  }
  const B = real.shape[0];
  const e = opts.eps ?? uniform([B], { backend: real.backend });
  if (e.rank !== 1 || e.shape[0] !== B) throw new ShapeError(`gradientPenalty: eps must be [${B}], got ${fmtShape(e.shape)}`);
  return withGrad(() => {
    const eb = e.reshape([B, ...real.shape.slice(1).map(() => 1)]);
    const xHat = add(mul(detach(real), eb), mul(detach(fake), sub(1, eb)));
    xHat.requiresGrad = true;
    const d = critic(xHat);
    const [g] = gradients(sum(d), [xHat], undefined, true, 'gradientPenalty');
    const norm = sqrt(add(sum(square(flatten(g, 1)), 1), 1e-12));
    return mean(square(sub(norm, 1)));
  });
}

/**
 * The critic's WGAN-GP loss: E D(x_fake) − E D(x_real) + λ·GP (λ default 10; the critic
 * MINIMISES it, i.e. maximises the Wasserstein estimate E D(real) − E D(fake)). `real` and
 * `fake` are detached: this loss only trains the critic.
 */
export function criticLoss(critic: (x: Tensor) => Tensor, real: Tensor, fake: Tensor, opts: { lambda?: number; eps?: Tensor } = {}): Tensor {
  const lambda = opts.lambda ?? 10;
  if (!(lambda >= 0)) throw new ArgumentError(`criticLoss: lambda must be ≥ 0, got ${lambda}`);
  return withGrad(() => {
    const f = detach(fake);
    const r = detach(real);
    const w = sub(mean(critic(f)), mean(critic(r)));
    return lambda === 0 ? w : add(w, mul(gradientPenalty(critic, r, f, { eps: opts.eps }), lambda));
  });
}

/** The generator's WGAN loss −E D(G(z)) (what G minimises). */
export function generatorLoss(critic: (x: Tensor) => Tensor, fake: Tensor): Tensor {
  return composite(() => mean(critic(fake)).neg());
}

/**
 * Weight clipping of the original WGAN (Arjovsky et al. 2017), offered for comparison: clamps
 * every critic parameter to [−c, c] in place (c default 0.01). WGAN-GP (the default recipe)
 * does not need it.
 */
export function clipCriticWeights(critic: Module, c = 0.01): void {
  if (!(c > 0)) throw new ArgumentError(`clipCriticWeights: c must be > 0, got ${c}`);
  tidy(() => noGrad(() => {
    for (const p of critic.parameters()) assignInPlace(p, minimum(maximum(p, -c), c), 'clipCriticWeights');
  }));
}

/**
 * The inverter's loss (Zhao et al. 2018, as their code: mean squared errors):
 *
 *   L_I = mean ‖G(I(x)) − x‖² / D + λ · mean ‖z − I(G(z))‖² / d,
 *
 * D pixels and d latent dims per row (so each term is a per-element MSE). G is held fixed
 * (its parameters get gradients only if the caller lets them; train I with an optimiser over
 * I's parameters only). λ default 0.1.
 */
export function inverterLoss(generator: (z: Tensor) => Tensor, inverter: (x: Tensor) => Tensor, x: Tensor, z: Tensor, opts: { lambda?: number } = {}): Tensor {
  const lambda = opts.lambda ?? 0.1;
  if (!(lambda >= 0)) throw new ArgumentError(`inverterLoss: lambda must be ≥ 0, got ${lambda}`);
  return composite(() => {
    const rec = mean(square(sub(generator(inverter(x)), x)));
    const lat = mean(square(sub(inverter(detach(generator(z))), z)));
    return add(rec, mul(lat, lambda));
  });
}
