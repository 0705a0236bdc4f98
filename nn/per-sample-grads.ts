/**
 * Per-sample weight gradients and their squared norms, from ONE batched forward and ONE batched
 * backward pass (no loop over samples).
 *
 * For a per-sample loss L_b (the loss function returns [B]) the backward pass of Σ_b L_b gives, at
 * every selected layer, the output gradient δ_b = ∂L_b/∂(layer output of sample b) — exact per
 * sample as long as samples do not interact in the forward pass (BatchNorm in training mode makes
 * them interact and is refused). With the layer inputs a_b captured by forward hooks:
 *
 *   Linear  y = a Wᵀ + b          ∇W_b = Σ_p δ_bp a_bpᵀ   (p runs over extra leading positions,
 *                                                          e.g. a sequence; one position for [B, in])
 *                                  ∇b_b = Σ_p δ_bp
 *   Conv2d  y = W ⊛ a + b          ∇W_b = the weight gradient of sample b alone: one grouped
 *                                          backward-weight convolution with the batch folded into
 *                                          the groups (input [1, B·Cin, H, W], output gradient
 *                                          [1, B·Cout, Ho, Wo], groups B·g) — exact, no unfold copy
 *                                  ∇b_b = Σ_{h,w} δ_b[:, h, w]
 *   ConvTranspose2d  y = Wᵀ ⊛ a + b  (the adjoint of the conv2d with weight W mapping y's shape to
 *                                  a's): ⟨δ, convT(a, W)⟩ = ⟨conv2d(δ, W), a⟩, so ∇W_b is the
 *                                  backward-weight convolution of that conv2d with δ_b as its
 *                                  input and a_b as its output gradient — the same grouped kernel,
 *                                  batch folded into the groups; ∇b_b = Σ_{h,w} δ_b[:, h, w]
 *   BatchNorm1d/2d in eval mode (running statistics; samples do not interact):
 *                  y = γ·x̂ + β, x̂ = (a − μ_run)/√(σ²_run + ε)
 *                                  ∇γ_b = Σ_{positions} δ_b ⊙ x̂_b,  ∇β_b = Σ_{positions} δ_b
 *
 * Squared norms ({@link perSampleGradNorms}) avoid materialising [B, ...paramShape] where cheaper
 * ("ghost" norms, Goodfellow 2015; Li et al. 2022):
 *   Linear, one position:  ‖∇W_b‖² = ‖δ_b‖²·‖a_b‖²        (always; nothing of size out·in is built)
 *   Linear, T positions:   ‖∇W_b‖² = Σ_{p,q} (δ_bp·δ_bq)(a_bp·a_bq)  from two [B, T, T] Gram
 *                          matrices when 2·T² ≤ in·out, else materialise [B, out, in] and reduce
 *   Conv2d, ConvTranspose2d: materialise [B, ...weightShape] with the grouped kernel and reduce.
 *                          (The conv ghost norm needs the Gram matrix of the unfolded patches,
 *                          i.e. an unfold; the materialised gradient is B·|W| numbers, small for
 *                          the convolutions this library targets.)
 *
 *   BatchNorm:             [B, C] per-sample gradients are as small as the norms: materialised.
 *
 * Supported parameter owners: Linear, Conv2d, ConvTranspose2d (weight and bias) and BatchNorm1d /
 * BatchNorm2d in eval mode with running statistics (affine weight and bias). Any other layer
 * owning a selected parameter (LayerNorm, GroupNorm, Embedding, ...) raises an ArgumentError
 * naming it, and BatchNorm in training mode (or without running statistics, where it always
 * normalises with batch statistics) raises one saying why.
 */
import {
  ArgumentError,
  ShapeError,
  type Tensor,
  conv2dBackwardWeight,
  fmtShape,
  gradients,
  keep,
  detach,
  matmul,
  add,
  mul,
  rsqrt,
  square,
  concat,
  sub,
  stack,
  sum,
  tidy,
  withGrad,
} from '../engine/index.js';
import { Module } from './module.js';
import { Linear } from './layers/linear.js';
import { Conv2d, ConvTranspose2d } from './layers/conv.js';
import { BatchNorm1d, BatchNorm2d } from './layers/batchnorm.js';

/** The layers with a per-sample gradient rule. */
type SupportedLayer = Linear | Conv2d | ConvTranspose2d | BatchNorm1d | BatchNorm2d;
const isSupported = (m: Module | undefined): m is SupportedLayer =>
  m instanceof Linear || m instanceof Conv2d || m instanceof ConvTranspose2d || m instanceof BatchNorm1d || m instanceof BatchNorm2d;

/** A per-sample loss: maps the model output (and optional targets) to a loss per row, shape [B]. */
export type PerSampleLoss = (output: Tensor, target?: Tensor) => Tensor;

export interface PerSampleOptions {
  /**
   * The parameters to differentiate, by dotted name (`'classifier.0.weight'`) or as the parameter
   * tensors themselves. Default: every parameter of the model (all must belong to Linear / Conv2d).
   */
  params?: readonly (string | Tensor)[];
}

/** One selected layer with what the passes captured. */
interface Site {
  name: string;
  module: SupportedLayer;
  wanted: { weight?: string; bias?: string };
  a: Tensor | null;
  dy: Tensor | null;
  calls: number;
}

/** Which layer owns each selected parameter; throws for unknown names and unsupported owners. */
function selectSites(caller: string, model: Module, opts: PerSampleOptions): Site[] {
  const named = model.namedParameters();
  const byName = new Map(named);
  const byTensor = new Map(named.map(([n, t]) => [t, n] as const));
  let names: string[];
  if (opts.params) {
    if (opts.params.length === 0) throw new ArgumentError(`${caller}: params is empty; pass parameter names or tensors, or omit it for every parameter`);
    names = opts.params.map((p, i) => {
      const n = typeof p === 'string' ? (byName.has(p) ? p : undefined) : byTensor.get(p);
      if (n === undefined) {
        throw new ArgumentError(`${caller}: params[${i}] ${typeof p === 'string' ? `'${p}'` : 'tensor'} is not a parameter of the model (known: ${named.map(([k]) => k).join(', ')})`);
      }
      return n;
    });
  } else names = named.map(([n]) => n);
  const sites = new Map<Module, Site>();
  const modules = model.namedModules();
  for (const n of names) {
    const dot = n.lastIndexOf('.');
    const prefix = dot < 0 ? '' : n.slice(0, dot);
    const leaf = n.slice(dot + 1);
    const owner = modules.find(([p]) => p === prefix)?.[1];
    if (!isSupported(owner)) {
      const kind = owner ? owner.constructor.name : 'unknown';
      throw new ArgumentError(`${caller}: parameter '${n}' belongs to ${kind} '${prefix}', which has no per-sample gradient rule (supported: Linear, Conv2d, ConvTranspose2d, BatchNorm1d/2d in eval mode); select other parameters with { params }`);
    }
    if ((owner instanceof BatchNorm1d || owner instanceof BatchNorm2d) && (!owner.runningMean || !owner.runningVar)) {
      throw new ArgumentError(`${caller}: ${owner.constructor.name} '${prefix}' has no running statistics (trackRunningStats: false), so it normalises every batch with the batch's own statistics and the samples interact; per-sample gradients are not defined for it`);
    }
    if (leaf !== 'weight' && leaf !== 'bias') throw new ArgumentError(`${caller}: parameter '${n}' of ${owner.constructor.name} '${prefix}' is neither its weight nor its bias`);
    let s = sites.get(owner);
    if (!s) sites.set(owner, (s = { name: prefix, module: owner, wanted: {}, a: null, dy: null, calls: 0 }));
    s.wanted[leaf] = n;
  }
  return [...sites.values()];
}

function checkNoInteraction(caller: string, model: Module): void {
  for (const [n, m] of model.namedModules()) {
    if ((m instanceof BatchNorm1d || m instanceof BatchNorm2d) && m.training) {
      throw new ArgumentError(`${caller}: ${m.constructor.name} '${n}' is in training mode, where batch statistics make the samples interact and per-sample gradients are not defined; call model.eval() first`);
    }
  }
}

/**
 * Runs one forward and one backward of Σ_b L_b with hooks on the selected layers and calls
 * `use(sites)` while the captured inputs and output gradients are alive. Everything captured is
 * freed and the hooks removed afterwards, also on error.
 */
function withCaptured<T>(caller: string, model: Module, lossFn: PerSampleLoss, x: Tensor, y: Tensor | undefined, opts: PerSampleOptions, use: (sites: Site[], B: number) => T): T {
  if (!(model instanceof Module)) throw new ArgumentError(`${caller}: the model must be a Module (its Linear / Conv2d layers are hooked)`);
  if (x.rank < 1 || x.shape[0] < 1) throw new ShapeError(`${caller}: x must have a batch dim of at least one row, got ${fmtShape(x.shape)}`);
  checkNoInteraction(caller, model);
  const sites = selectSites(caller, model, opts);
  const B = x.shape[0];
  const handles: { remove(): void }[] = [];
  const restore: [Tensor, boolean][] = [];
  try {
    for (const s of sites) {
      for (const p of [s.module.weight, s.module.bias]) if (p) { restore.push([p, p.requiresGrad]); p.requiresGrad = true; }
      handles.push(s.module.registerForwardHook((_m, inputs) => {
        s.calls++;
        const a = inputs[0] as Tensor;
        s.a?.dispose();
        s.a = keep(detach(a));
      }));
      handles.push(s.module.registerBackwardHook((_m, dy) => {
        s.dy?.dispose();
        s.dy = keep(detach(dy));
      }));
    }
    tidy(() => withGrad(() => {
      const out = model.forward(x) as Tensor;
      const loss = lossFn(out, y);
      if (loss.rank !== 1 || loss.shape[0] !== B) {
        throw new ShapeError(`${caller}: the loss must return one value per sample, shape [${B}], got ${fmtShape(loss.shape)} (use reduction 'none')`);
      }
      const targets = sites.flatMap((s) => [s.module.weight, s.module.bias].filter((p): p is Tensor => !!p));
      gradients(sum(loss), targets).forEach((g) => g.dispose());
    }));
    for (const s of sites) {
      if (s.calls !== 1) {
        throw new ArgumentError(`${caller}: layer '${s.name}' ran ${s.calls} times in one forward pass; per-sample gradients need every selected layer to run exactly once`);
      }
      if (!s.dy) throw new ArgumentError(`${caller}: layer '${s.name}' is not reachable from the loss (no gradient flowed into its output); select other parameters with { params }`);
      if (s.a!.shape[0] !== B || s.dy.shape[0] !== B) {
        throw new ShapeError(`${caller}: layer '${s.name}' saw input ${fmtShape(s.a!.shape)} and output gradient ${fmtShape(s.dy.shape)}; the leading dim must be the batch (${B})`);
      }
    }
    return use(sites, B);
  } finally {
    for (const h of handles) h.remove();
    for (const [p, r] of restore) p.requiresGrad = r;
    for (const s of sites) { s.a?.dispose(); s.dy?.dispose(); }
  }
}

/** What {@link withLayerGradients} hands over for one selected layer (valid only during the call). */
export interface LayerGradients {
  /** The layer's dotted name. */
  name: string;
  module: SupportedLayer;
  /** The layer's input a, [B, ...]. */
  input: Tensor;
  /** ∂(Σ_b L_b)/∂(layer output) = per-sample output gradients δ_b, [B, ...]. */
  outputGrad: Tensor;
}

/**
 * The building block of the per-sample functions: one forward and one backward of Σ_b L_b with
 * hooks on the layers owning the selected parameters; `use` receives each layer's
 * input and output gradient (freed, with the hooks, when `use` returns). Same checks and errors
 * as {@link perSampleGrads}.
 */
export function withLayerGradients<T>(model: Module, lossFn: PerSampleLoss, x: Tensor, y: Tensor | undefined, opts: PerSampleOptions, use: (layers: LayerGradients[]) => T, caller = 'withLayerGradients'): T {
  return withCaptured(caller, model, lossFn, x, y, opts, (sites) => use(sites.map((s) => ({ name: s.name, module: s.module, input: s.a!, outputGrad: s.dy! }))));
}

/** Linear: input [B, T, in] and output gradient [B, T, out] (T = 1 for a plain [B, in] input). */
function linearViews(s: Site, B: number): { A: Tensor; D: Tensor } {
  const m = s.module as Linear;
  return { A: s.a!.reshape([B, -1, m.inFeatures]), D: s.dy!.reshape([B, -1, m.outFeatures]) };
}

/**
 * The per-sample conv2d backward-weight of `x` [B, Cx, H, W] against `dy` [B, Cy, Ho, Wo] in one
 * dispatch: the batch folded into the channels and the groups (B·groups), so sample b only meets
 * sample b. Returns [B, ...weightShape] (weightShape = [Cy, Cx/groups, kH, kW] as the kernel sees it).
 */
function foldedBackwardWeight(x: Tensor, dy: Tensor, B: number, weightShape: readonly number[], m: { stride: Conv2d['stride']; padding: Conv2d['padding']; dilation: Conv2d['dilation']; groups: number }): Tensor {
  const [, Cx, H, W] = x.shape;
  const [, Cy, Ho, Wo] = dy.shape;
  const g = conv2dBackwardWeight(x.reshape([1, B * Cx, H, W]), dy.reshape([1, B * Cy, Ho, Wo]), [B * Cy, weightShape[1], weightShape[2], weightShape[3]], {
    stride: m.stride, padding: m.padding, dilation: m.dilation, groups: B * m.groups,
  });
  return g.reshape([B, ...weightShape]);
}

function convWeightGrads(s: Site, B: number): Tensor {
  const m = s.module as Conv2d;
  if (s.a!.rank !== 4) throw new ShapeError(`perSampleGrads: Conv2d '${s.name}' needs a batched input [B, C, H, W], got ${fmtShape(s.a!.shape)}`);
  return foldedBackwardWeight(s.a!, s.dy!, B, m.weight.shape, m);
}

/** ConvTranspose2d: ∇W_b = backward-weight of the adjoint conv2d (δ_b as input, a_b as its output gradient). */
function convTransposeWeightGrads(s: Site, B: number): Tensor {
  const m = s.module as ConvTranspose2d;
  if (s.a!.rank !== 4) throw new ShapeError(`perSampleGrads: ConvTranspose2d '${s.name}' needs a batched input [B, C, H, W], got ${fmtShape(s.a!.shape)}`);
  // weight [Cin, Cout/g, kH, kW]: the adjoint conv maps dy (Cout channels) to a (Cin channels)
  return foldedBackwardWeight(s.dy!, s.a!, B, m.weight.shape, m);
}

/** BatchNorm (eval): the normalised input x̂ and the non-channel axes of a [B, C, ...] input. */
function batchNormParts(s: Site): { xhat: Tensor; axes: number[] } {
  const m = s.module as BatchNorm1d | BatchNorm2d;
  const a = s.a!;
  const bshape = a.shape.map((d, i) => (i === 1 ? d : 1));
  const xhat = mul(sub(a, m.runningMean!.reshape(bshape)), rsqrt(add(m.runningVar!.reshape(bshape), m.eps)));
  return { xhat, axes: a.shape.map((_, i) => i).filter((i) => i > 1) };
}

/** Per-sample [B, ...paramShape] gradients of one selected layer, as name → tensor. */
function siteGrads(s: Site, B: number): [string, Tensor][] {
  const wn = s.wanted.weight;
  const bn = s.wanted.bias;
  const out: [string, Tensor][] = [];
  const m = s.module;
  if (m instanceof Linear) {
    const { A, D } = linearViews(s, B);
    if (wn) out.push([wn, matmul(D, A, { transposeA: true })]);
    if (bn) out.push([bn, sum(D, 1)]);
  } else if (m instanceof Conv2d || m instanceof ConvTranspose2d) {
    if (wn) out.push([wn, m instanceof Conv2d ? convWeightGrads(s, B) : convTransposeWeightGrads(s, B)]);
    if (bn) out.push([bn, sum(s.dy!, [2, 3])]);
  } else {
    const { xhat, axes } = batchNormParts(s);
    // [B, C] input (BatchNorm1d on vectors): nothing to reduce; a view with its own lifetime.
    const reduce = (t: Tensor) => (axes.length ? sum(t, axes) : detach(t));
    if (wn) out.push([wn, reduce(mul(s.dy!, xhat))]);
    if (bn) out.push([bn, reduce(s.dy!)]);
  }
  return out;
}

/**
 * Per-sample gradients of `lossFn(model(x), y)` (one loss value per row) w.r.t. the selected
 * parameters (Linear, Conv2d, ConvTranspose2d, eval-mode BatchNorm): for each parameter name a tensor [B, ...paramShape] whose row b is
 * ∂L_b/∂θ (formulas in the module comment). One forward, one backward, batched kernels.
 * Throws ArgumentError for unsupported layers, BatchNorm in training mode, layers not reached
 * by the loss or run more than once; ShapeError for a loss that is not [B].
 */
export function perSampleGrads(model: Module, lossFn: PerSampleLoss, x: Tensor, y?: Tensor, opts: PerSampleOptions = {}): Record<string, Tensor> {
  return withCaptured('perSampleGrads', model, lossFn, x, y, opts, (sites, B) => {
    const out: Record<string, Tensor> = {};
    for (const s of sites) for (const [name, g] of tidy(() => siteGrads(s, B))) out[name] = g;
    return out;
  });
}

/** How {@link perSampleGradNorms} computed one parameter's norms. */
export type NormMethod = 'ghost' | 'materialised';

export interface PerSampleNorms {
  /** Parameter names, one per column of `norms`. */
  names: string[];
  /** [B, L]: squared L2 norm of each sample's gradient for each parameter tensor. */
  norms: Tensor;
  /** Per column: 'ghost' (no [B, ...paramShape] tensor built) or 'materialised'. */
  methods: NormMethod[];
}

/**
 * Squared L2 norms ‖∂L_b/∂θ_l‖² of the per-sample gradients, [B, L] (columns in `names` order),
 * without building [B, ...paramShape] where a ghost norm is cheaper; the rule is in the module
 * comment (Linear with one position: always ghost; Linear with T positions: ghost when
 * 2·T² ≤ in·out; Conv2d / ConvTranspose2d: materialised by the grouped kernel, then reduced;
 * BatchNorm: its [B, C] gradients, reduced). Same errors as
 * {@link perSampleGrads}.
 */
export function perSampleGradNorms(model: Module, lossFn: PerSampleLoss, x: Tensor, y?: Tensor, opts: PerSampleOptions = {}): PerSampleNorms {
  return withCaptured('perSampleGradNorms', model, lossFn, x, y, opts, (sites, B) => {
    const names: string[] = [];
    const methods: NormMethod[] = [];
    const norms = tidy(() => {
      const cols: Tensor[] = [];
      for (const s of sites) {
        const wn = s.wanted.weight;
        const bn = s.wanted.bias;
        if (s.module instanceof Linear) {
          const { A, D } = linearViews(s, B);
          const T = A.shape[1];
          if (wn) {
            names.push(wn);
            if (T === 1) {
              cols.push(mul(sum(square(D), [1, 2]), sum(square(A), [1, 2])));
              methods.push('ghost');
            } else if (2 * T * T <= s.module.inFeatures * s.module.outFeatures) {
              const ga = matmul(A, A, { transposeB: true });
              const gd = matmul(D, D, { transposeB: true });
              cols.push(sum(mul(ga, gd), [1, 2]));
              methods.push('ghost');
            } else {
              cols.push(sum(square(matmul(D, A, { transposeA: true })), [1, 2]));
              methods.push('materialised');
            }
          }
          if (bn) {
            names.push(bn);
            cols.push(sum(square(sum(D, 1)), 1));
            methods.push(T === 1 ? 'ghost' : 'materialised');
          }
        } else {
          for (const [name, g] of siteGrads(s, B)) {
            names.push(name);
            cols.push(sum(square(g), g.shape.map((_, i) => i).slice(1)));
            methods.push('materialised');
          }
        }
      }
      return stack(cols, 1);
    });
    return { names, norms, methods };
  });
}

export interface PerSampleUnitNorms {
  /** Parameter names, in column order; parameter `names[i]` owns columns `offsets[i] .. offsets[i + 1] − 1`. */
  names: string[];
  /** Column offsets of each parameter (length names.length + 1; the last one is U). */
  offsets: number[];
  /** [B, U]: squared L2 norm of each sample's gradient, per slice along each parameter's first axis. */
  norms: Tensor;
}

/**
 * Squared norms of the per-sample gradients per UNIT, [B, U]: for each selected parameter θ of
 * shape [n, ...], the n values ‖∂L_b/∂θ[j]‖² (j along θ's first axis: a Linear's output rows, a
 * Conv2d's output channels, a ConvTranspose2d's input channels, the elements of a bias or a
 * BatchNorm affine vector). Summing a parameter's columns gives its column of
 * {@link perSampleGradNorms}. Linear with one position: ‖∂L_b/∂W[j]‖² = δ_bj²·‖a_b‖² (ghost, no
 * [B, out, in]); everything else is materialised as in {@link perSampleGrads} and reduced.
 * Same errors as {@link perSampleGrads}.
 */
export function perSampleGradUnitNorms(model: Module, lossFn: PerSampleLoss, x: Tensor, y?: Tensor, opts: PerSampleOptions = {}): PerSampleUnitNorms {
  return withCaptured('perSampleGradUnitNorms', model, lossFn, x, y, opts, (sites, B) => {
    const names: string[] = [];
    const offsets = [0];
    const norms = tidy(() => {
      const cols: Tensor[] = [];
      const push = (name: string, t: Tensor) => {
        names.push(name);
        cols.push(t);
        offsets.push(offsets[offsets.length - 1] + t.shape[1]);
      };
      for (const s of sites) {
        if (s.module instanceof Linear && linearViews(s, B).A.shape[1] === 1) {
          const { A, D } = linearViews(s, B);
          const d2 = square(D.reshape([B, -1]));
          if (s.wanted.weight) push(s.wanted.weight, mul(d2, sum(square(A.reshape([B, -1])), 1, true)));
          if (s.wanted.bias) push(s.wanted.bias, d2);
          continue;
        }
        for (const [name, g] of siteGrads(s, B)) push(name, g.rank > 2 ? sum(square(g), g.shape.map((_, i) => i).slice(2)) : square(g));
      }
      return concat(cols, 1);
    });
    return { names, offsets, norms };
  });
}
