// Shared types of the dubito-vs-TensorFlow.js benchmark (see bench/README.md).
import type * as TFModule from '@tensorflow/tfjs';
import type { Backend, Tensor } from '../node.js';

/** The TensorFlow.js union package, loaded at run time (after navigator.gpu is set). */
export type TF = typeof TFModule;
export type TfTensor = TFModule.Tensor;

/** Host data shared by both sides so that they compute on identical inputs. */
export interface HostTensor {
  data: Float32Array | Int32Array;
  shape: number[];
  dtype: 'float32' | 'int32';
}
export type Inputs = Record<string, HostTensor>;

export type RunMode = 'quick' | 'full';

/**
 * One benchmark row. `setup*` turn the shared host inputs into device tensors (run inside a
 * tidy scope; everything returned is disposed by the harness after the row). `run*` are called
 * inside tidy / tf.tidy and return the tensor(s) whose values are read back: the timed quantity
 * is "call run* → every output's data() resolved". The outputs of both sides are compared
 * element-wise before timing (see `check`).
 */
export interface Workload<D = any, T = any> {
  name: string;
  /** Family used for grouping and by --filter (matched together with the name). */
  group: string;
  /** Floating-point operations of one run, when meaningful (gives the GFLOP/s columns). */
  flops?: number;
  /** Number of library ops in one run (gives a µs/op note for dispatch-overhead rows). */
  ops?: number;
  /** Which runs include this row. */
  modes: readonly RunMode[];
  /**
   * TF.js runs on a subset of the inputs (too slow on the full size): its times are multiplied
   * by `factor` (linear extrapolation) before the speed-up is computed, and the row says so.
   */
  tfExtrapolate?: { factor: number; label: string };
  /** Also time dubito's CPU reference backend (keep to small sizes: it is plain JS). */
  cpuRef?: boolean;
  inputs(): Inputs;
  setupDubito(x: Inputs, backend: Backend): D;
  runDubito(s: D): Tensor | Tensor[];
  setupTf(tf: TF, x: Inputs): T;
  runTf(tf: TF, s: T): TfTensor | TfTensor[];
  /**
   * Agreement required between dubito (WebGPU) and TF.js (WebGPU), per output:
   * max|dubito − tfjs| ≤ rtol · max(max|tfjs|, 1e-6).
   */
  check: {
    rtol: number;
    /**
     * A different agreement statistic for rows whose outputs are not expected to match element by
     * element (stochastic rows, e.g. MC dropout with different masks): returns a value that must
     * be ≤ rtol. Receives both sides' outputs (TF.js already mapped by tfToDubitoLayout).
     */
    metric?: (dubito: HostArray[], tfjs: HostArray[]) => number;
    /** What `metric` measures (printed in the notes). */
    metricName?: string;
  };
  /**
   * Further cross-checks, run once after the first (checked) run and never timed: each pair of
   * functions is called on the setup state (after that run, e.g. after one training step) and
   * the outputs are compared element-wise as the main check does.
   */
  verify?: VerifyCheck<D, T>[];
  /** Frees what `setupDubito` made that a plain dispose of its result does not reach (modules, optimisers). */
  teardownDubito?: (s: D) => void;
  /** Same for TF.js (variables, optimisers). */
  teardownTf?: (tf: TF, s: T) => void;
  /**
   * Maps TF.js's outputs (host arrays, in run order) to dubito's layout before the check, e.g.
   * NHWC → NCHW. Runs on the host, outside the timed region.
   */
  tfToDubitoLayout?: (outs: Float32Array[]) => Float32Array[];
}

export type HostArray = Float32Array | Int32Array | Float64Array | Uint8Array;

export interface VerifyCheck<D = any, T = any> {
  name: string;
  rtol: number;
  dubito(s: D): Tensor | Tensor[];
  tf(tf: TF, s: T): TfTensor | TfTensor[];
  tfToDubitoLayout?: (outs: Float32Array[]) => Float32Array[];
}

/** A workload that cannot run yet: printed as a "not yet available" row, never timed. */
export interface Pending {
  name: string;
  group: string;
  modes: readonly RunMode[];
  /** What is missing (printed in the row). */
  todo: string;
}

export type Entry = Workload | Pending;

export function isPending(e: Entry): e is Pending {
  return (e as Pending).todo !== undefined;
}
