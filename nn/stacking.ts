/**
 * How a layer runs M ensemble members at once (the contract `DeepEnsemble` uses).
 *
 * A deep ensemble evaluates M members of one architecture in ONE batched pass. Each layer type
 * says how: a layer class implements {@link Stackable.stackMembers}, which receives the M
 * corresponding layers (one per member, same class) and returns a {@link StackedStep} — a
 * function from the stacked activation before the layer to the stacked activation after it.
 * Weights that the step needs in stacked form (e.g. the M weight matrices as one [M, out, in]
 * tensor) are built once in `stackMembers` and registered with `ctx.keep`, which keeps them
 * alive until the ensemble is refreshed or disposed. A user-defined layer joins an ensemble by
 * implementing the same method; nothing in the ensemble lists layer classes.
 *
 * Stacked layouts of an activation h:
 * - `'input'`: the shared input [B, ...] — no member-specific layer has run yet, so h is the
 *   same for every member. A layer that sees 'input' and is parameter-free may keep it.
 * - `'channels'`: [B, M·C, ...] — the members side by side in the channel dim (what a grouped
 *   convolution produces); member m owns channels m·C … m·C + C − 1.
 * - `'members'`: [M, B, ...] — a leading member axis (what a batched matmul produces).
 */
import { ArgumentError, type Tensor } from '../engine/index.js';
import type { Module } from './module.js';

export type StackedLayout = 'input' | 'channels' | 'members';

/** A stacked activation and its layout (see the module comment). */
export interface StackedActivation {
  h: Tensor;
  layout: StackedLayout;
}

/** One layer of the stacked forward: stacked activation in, stacked activation out. */
export type StackedStep = (a: StackedActivation) => StackedActivation;

/** What `stackMembers` gets besides the member layers. */
export interface StackContext {
  /** Number of members M. */
  readonly members: number;
  /** Keeps a stacked weight alive (it survives `tidy`) until the ensemble is refreshed; returns it. */
  keep(t: Tensor): Tensor;
  /**
   * Whether the stacked pass trains (`DeepEnsemble.trainer`): active dropout layers drop (with
   * each member's own mask rows), and parameters must come from {@link stackedParam}. Absent or
   * false for the inference pass.
   */
  readonly training?: boolean;
  /**
   * The members' parameter `name` of `layers` stacked on a leading member axis, [M, ...shape]
   * (`layers[m][name]` is row m). For inference a stack of the members' current values; for
   * training the trainable stacked tensor itself, so gradients reach it and the optimiser updates
   * all members at once. A layer that wants to be trainable in an ensemble reads its parameters
   * through this (views of it, such as `reshape`, are free and differentiable). Optional so that
   * hand-written contexts keep compiling; `DeepEnsemble` always provides it.
   */
  stackedParam?(layers: readonly Module[], name: string): Tensor;
}

/** `ctx.stackedParam`, or a typed error naming the layer when the context has none. */
export function stackedParamOf(ctx: StackContext, layers: readonly Module[], name: string): Tensor {
  if (!ctx.stackedParam) throw new ArgumentError(`${layers[0].constructor.name}.stackMembers: this StackContext provides no stackedParam`);
  return ctx.stackedParam(layers, name);
}

/** A layer that knows how to run M copies of itself at once. */
export interface Stackable {
  /**
   * Builds the stacked step for `layers` (the M members' instances of this layer, in member
   * order; `layers[0]` is typically `this`). Runs under `noGrad`. Throw an `ArgumentError` for a
   * configuration the stacked forward cannot run.
   */
  stackMembers(layers: readonly Module[], ctx: StackContext): StackedStep;
}

/** Whether `m` declares how it stacks (implements {@link Stackable}). */
export function isStackable(m: unknown): m is Stackable {
  return typeof m === 'object' && m !== null && typeof (m as Partial<Stackable>).stackMembers === 'function';
}

/** The step of a layer that does not change anything (eval-mode dropout). */
export const identityStep: StackedStep = (a) => a;

/**
 * The step of a parameter-free layer that acts per element or per channel and therefore runs
 * unchanged on any stacked layout (activations, pooling): `h ↦ forward(h)`, layout kept.
 */
export function elementwiseStep(forward: (h: Tensor) => Tensor): StackedStep {
  return ({ h, layout }) => ({ h: forward(h), layout });
}
