/**
 * ConfidNet (Corbière, Thome, Bar-Hen, Cord & Pérez, "Addressing failure prediction by learning
 * model confidence", NeurIPS 2019).
 *
 * A confidence head on the FROZEN classifier's penultimate features f(x): five Linear layers
 * D → h → h → h → h → 1 with ReLU between them (the `uncertainty1..5` branch of the LeNet
 * variant, h = 400 by default) and a sigmoid at the output, ĉ(x) = sigmoid(head(f(x))). It is
 * trained to regress the true-class probability
 *
 *   TCP(x, y) = softmax(z(x))_y ,     loss = mean_b (ĉ_b − TCP_b)²   ({@link confidNetLoss}),
 *
 * on the training set (the paper's choice; pass a held-out split as `fit`'s data to train on that
 * instead — the classifier then never saw the points whose TCP the head learns). Only the head is
 * trained; the classifier's features and logits are computed without gradient.
 * As a {@link Detector}: score = −ĉ (higher = more likely a failure / more uncertain).
 *
 * Model selection (the official code's protocol, `fit({ ..., val })`): after every epoch the head
 * is scored on a validation split the head is not trained on, and the weights of the best epoch
 * are kept — by AUPR-Error of −ĉ with the frozen classifier's errors positive (`selectBy:
 * 'auprError'`, the default, higher better) or by the validation MSE (`'loss'`, lower better).
 * Ties keep the earlier epoch. `valHistory` holds the per-epoch values, `selectedEpoch` the kept one.
 *
 * Phase 2 ({@link ConfidNet.fineTune}, the paper's second step): a trainable COPY of the
 * classifier's encoder (x → f(x)) is trained together with the head on the same loss, with the
 * copy in eval mode (dropout off, batch-norm statistics frozen), so ĉ(x) = sigmoid(head(f′(x)))
 * with the copy's features f′. The TCP targets — and thus which rows are errors — come from the
 * frozen classifier (`logits`), computed once before training; the classifier itself is never
 * updated, only the copy. After fine-tuning, `confidence`, `score` and `predict` use the copy's
 * features; the predictions stay the frozen classifier's argmax.
 *
 * Option `base: 'mcp'` (our variant, not in the paper): ĉ(x) = sigmoid(logit(MCP(x)) + head(f(x)))
 * with logit(MCP) = z_max − log Σ_{k ≠ argmax} exp z_k ({@link mcpLogit}, the log-odds of the
 * maximum softmax probability computed without rounding it to 1) and the head's last layer
 * initialised at zero, so the untrained head returns MCP exactly and training only learns a
 * correction to it. Meant for small held-out splits with few errors, where a head learned from
 * scratch does not even reach MCP's ranking.
 */
import {
  ArgumentError,
  ShapeError,
  Tensor,
  argmax,
  composite,
  concat,
  fmtShape,
  fromHost,
  gather,
  keep,
  manualSeed,
  max,
  mean,
  oneHot,
  logsumexp,
  zeros,
  noGrad,
  sigmoid,
  softmax,
  square,
  tidy,
} from '../engine/index.js';
import { NotFittedError } from './errors.js';
import { Module } from '../nn/module.js';
import { auprError } from './metrics.js';
import { releaseOptimizer, runMinibatchEpochs } from './minibatch.js';
import { Linear } from '../nn/layers/linear.js';
import { ReLU } from '../nn/layers/activation.js';
import { Sequential } from '../nn/layers/container.js';
import { Adam } from '../nn/optim/adam.js';
import { type Detector, type DetectorInput, type ModelLike, type ScoredBatch, asModelFn, forEachBatch } from './detector.js';

/**
 * ConfidNet's loss: mean_b (ĉ_b − softmax(z_b)_{y_b})² for confidences ĉ [B] (after the sigmoid),
 * logits z [B, K] and int32 labels y [B]. The TCP target carries no gradient.
 */
export function confidNetLoss(confidence: Tensor, logits: Tensor, labels: Tensor): Tensor {
  if (logits.rank !== 2) throw new ShapeError(`confidNetLoss: expected logits [B, K], got ${fmtShape(logits.shape)}`);
  const B = logits.shape[0];
  if (confidence.rank !== 1 || confidence.shape[0] !== B) throw new ShapeError(`confidNetLoss: expected confidences [${B}], got ${fmtShape(confidence.shape)}`);
  if (labels.rank !== 1 || labels.shape[0] !== B || labels.dtype !== 'int32') throw new ShapeError(`confidNetLoss: expected int32 labels [${B}], got ${labels.dtype} ${fmtShape(labels.shape)}`);
  return composite(() => {
    const tcp = noGrad(() => gather(softmax(logits, 1), labels.reshape([B, 1]), 1).reshape([B]));
    return mean(square(confidence.sub(tcp)));
  });
}

/**
 * logit(MCP) [B] for logits z [B, K] (K ≥ 2): log(p_max / (1 − p_max)) = z_max − logsumexp of the
 * other K − 1 logits, finite even where p_max rounds to 1.
 */
export function mcpLogit(logits: Tensor): Tensor {
  if (logits.rank !== 2 || logits.shape[1] < 2) throw new ShapeError(`mcpLogit: expected logits [B, K] with K ≥ 2, got ${fmtShape(logits.shape)}`);
  const [B, K] = logits.shape;
  return composite(() => {
    const others = logits.sub(oneHot(argmax(logits, 1), K, logits.dtype === 'float64' ? 'float64' : 'float32').mul(1e30));
    return max(logits, 1).sub(logsumexp(others, 1)).reshape([B]);
  });
}

export interface ConfidNetOptions {
  /** The frozen classifier's penultimate features, x → [B, D] (e.g. `(x) => lenet.penultimate(x)`). */
  features: ModelLike;
  /** The frozen classifier's logits, x → [B, K]. */
  logits: ModelLike;
  /** Hidden width of the head (default 400). */
  hidden?: number;
  /**
   * 'none' (default, the paper): ĉ = sigmoid(head(f)). 'mcp': ĉ = sigmoid(logit(MCP) + head(f)),
   * the head's last layer starting at zero (see the module comment).
   */
  base?: 'none' | 'mcp';
  name?: string;
}

/** A validation split for model selection: inputs and their class labels. */
export interface ConfidNetValidation {
  x: DetectorInput;
  labels: Tensor | ArrayLike<number>;
}

export interface ConfidNetFitOptions {
  /** Training inputs (the classifier's training set, or a held-out split). */
  x: DetectorInput;
  /** Their class labels [N]. */
  labels: Tensor | ArrayLike<number>;
  epochs?: number;
  /** Adam learning rate (default 1e-4). */
  lr?: number;
  batchSize?: number;
  seed?: number;
  /**
   * Model selection: score the head on this split after every epoch and keep the best epoch's
   * weights (see the module comment). The split must not be part of `x`.
   */
  val?: ConfidNetValidation;
  /**
   * The selection criterion with `val`: 'auprError' (default; AUPR-Error on the validation split,
   * needs at least one error and one correct prediction of the frozen classifier there) or 'loss'
   * (the validation MSE to TCP).
   */
  selectBy?: 'auprError' | 'loss';
}

/** The trainable copy of the classifier's encoder for {@link ConfidNet.fineTune}. */
export interface ConfidNetEncoder {
  /**
   * The copy as a module (e.g. a second LeNet5 loaded with the classifier's weights, or the copy
   * of its feature layers). All its parameters that require grad are trained; it is put in eval
   * mode. It must not share parameters with the classifier being judged.
   */
  module: Module;
  /** x → the copy's features [B, D], the same layer the head was fitted on (e.g. `(x) => copy.penultimate(x)`). */
  features: (x: Tensor) => Tensor;
}

export interface ConfidNetFineTuneOptions extends Omit<ConfidNetFitOptions, 'x' | 'val'> {
  /** Training images as ONE tensor [N, ...] (rows are gathered by index each step). */
  x: Tensor;
  /** Model selection as in `fit`, with the validation images as one tensor. */
  val?: { x: Tensor; labels: Tensor | ArrayLike<number> };
  encoder: ConfidNetEncoder;
  /** Adam learning rate of the head and the encoder copy (default 1e-5). */
  lr?: number;
}

/** Frozen-classifier quantities of a set of rows: TCP [N], logit(MCP) [N] (base 'mcp' only), correctness. */
interface Targets {
  tcp: Tensor;
  base: Tensor | null;
  correct: Uint8Array;
}

/** The ConfidNet head and its detector; see the module comment. */
export class ConfidNet implements Detector {
  readonly name: string;
  readonly head: Sequential;
  private readonly featureFn: (x: Tensor) => Tensor;
  private readonly logitFn: (x: Tensor) => Tensor;
  /** The fine-tuned encoder copy's features (set by fineTune); the frozen `features` before. */
  private encoderFn: ((x: Tensor) => Tensor) | null = null;
  private fitted = false;
  readonly base: 'none' | 'mcp';
  /** Mean training loss of the last epoch. */
  lastLoss = NaN;
  /** With `val`: the selection criterion after each epoch of the last fit / fineTune (empty without). */
  valHistory: number[] = [];
  /** The epoch (1-based) whose weights were kept by the last fit / fineTune (the last epoch without `val`). */
  selectedEpoch = 0;

  constructor(private readonly opts: ConfidNetOptions, inFeatures: number) {
    if (!Number.isInteger(inFeatures) || inFeatures < 1) throw new ArgumentError(`ConfidNet: inFeatures must be a positive integer, got ${inFeatures}`);
    const h = opts.hidden ?? 400;
    if (!Number.isInteger(h) || h < 1) throw new ArgumentError(`ConfidNet: hidden must be a positive integer, got ${h}`);
    this.name = opts.name ?? 'ConfidNet';
    this.featureFn = asModelFn(opts.features);
    this.logitFn = asModelFn(opts.logits);
    this.base = opts.base ?? 'none';
    if (this.base !== 'none' && this.base !== 'mcp') throw new ArgumentError(`ConfidNet: base must be 'none' or 'mcp', got '${String(this.base)}'`);
    this.head = new Sequential(
      new Linear(inFeatures, h), new ReLU(), new Linear(h, h), new ReLU(), new Linear(h, h), new ReLU(), new Linear(h, h), new ReLU(), new Linear(h, 1),
    );
    if (this.base === 'mcp') this.head.loadStateDict({ '8.weight': zeros([1, h]), '8.bias': zeros([1]) }, { strict: false });
  }

  /** Whether {@link fineTune} has run (confidences then use the encoder copy's features). */
  get isFineTuned(): boolean {
    return this.encoderFn !== null;
  }

  /**
   * ĉ = sigmoid(head(f) [+ baseLogit]) for penultimate features f [B, D] → [B]; `baseLogit` [B]
   * (logit(MCP), see {@link mcpLogit}) is required with `base: 'mcp'` and refused otherwise.
   */
  confidenceFromFeatures(f: Tensor, baseLogit?: Tensor): Tensor {
    if ((this.base === 'mcp') !== (baseLogit !== undefined)) {
      throw new ArgumentError(`${this.name}: confidenceFromFeatures: ${this.base === 'mcp' ? "base 'mcp' needs the logit(MCP) [B] of the rows" : "a base logit is only used with base 'mcp'"}`);
    }
    return composite(() => {
      const h = this.head.forward(f).reshape([f.shape[0]]);
      return sigmoid(baseLogit ? h.add(baseLogit) : h);
    });
  }

  /** Features the head reads: the fine-tuned copy's (with gradient) after fineTune, else the frozen classifier's (no gradient). */
  private headFeatures(x: Tensor): Tensor {
    return this.encoderFn ? this.encoderFn(x) : noGrad(() => this.featureFn(x));
  }

  /** ĉ(x) ∈ (0, 1), [B]: the predicted true-class probability. */
  confidence(x: Tensor): Tensor {
    return composite(() => {
      const f = this.headFeatures(x);
      return this.confidenceFromFeatures(f, this.base === 'mcp' ? noGrad(() => mcpLogit(this.logitFn(x))) : undefined);
    });
  }

  /**
   * The training loss on a batch, mean_b (ĉ(x_b) − TCP(x_b, y_b))² ({@link confidNetLoss}), with
   * TCP from the frozen classifier (no gradient) and ĉ from the head on the current features
   * (the encoder copy's after fineTune: the gradient then reaches the copy).
   */
  loss(x: Tensor, labels: Tensor): Tensor {
    return composite(() => confidNetLoss(this.confidence(x), noGrad(() => this.logitFn(x)), labels));
  }

  /**
   * Trains the head (Adam on {@link confidNetLoss}); the classifier stays frozen. With `val`, the
   * weights of the best epoch on it are kept (see the module comment).
   */
  async fit(data: ConfidNetFitOptions): Promise<this> {
    const bs = data.batchSize ?? 128;
    const selectBy = this.checkSelect('fit', data);
    const fit = await this.collect('fit', data.x, data.labels, bs);
    let val: (Targets & { F: Tensor }) | null = null;
    try {
      if (data.val) val = await this.collect('fit: val', data.val.x, data.val.labels, bs);
      if (val && selectBy === 'auprError') this.checkHasErrors('fit', val.correct);
      const { F, tcp: T, base: M } = fit;
      const N = F.shape[0];
      const be = F.backend;
      manualSeed(data.seed ?? 0);
      await this.head.to(be);
      const opt = new Adam(this.head.parameters(), { lr: data.lr ?? 1e-4 });
      const Fv = val?.F;
      await this.trainSelected(opt, [this.head], N, be, data, ((data.seed ?? 0) ^ 0x85ebca6b) >>> 0, (ix) => {
        opt.zeroGrad();
        const c = this.confidenceFromFeatures(F.indexSelect(0, ix), M ? M.indexSelect(0, ix) : undefined);
        const loss = mean(square(c.sub(T.indexSelect(0, ix))));
        loss.backward();
        opt.step();
        return loss;
      }, val && Fv ? { targets: val, selectBy, rows: Fv.shape[0], confidences: (s, n) => this.confidenceFromFeatures(Fv.slice([s], [n, Fv.shape[1]]), val!.base ? val!.base.slice([s], [n]) : undefined) } : null);
    } finally {
      for (const t of [fit.F, fit.tcp, fit.base, val?.F, val?.tcp, val?.base]) t?.dispose();
    }
    this.head.eval();
    this.fitted = true;
    return this;
  }

  /**
   * Phase 2 (Corbière et al. 2019, §3.3): fine-tunes a COPY of the classifier's encoder together
   * with the already fitted head, on the same MSE to TCP. The copy is put in eval mode (dropout
   * off); TCP (and logit(MCP) with base 'mcp') come from the frozen classifier, computed once, so
   * which rows are errors does not change; the classifier is never updated. With `val`, the best
   * epoch's head and copy are kept. Afterwards ĉ(x) = sigmoid(head(copy features(x))).
   */
  async fineTune(data: ConfidNetFineTuneOptions): Promise<this> {
    if (!this.fitted) throw new NotFittedError(`${this.name}: fineTune: fit the head first (phase 1: fit({ x, labels }))`);
    if (!(data.x instanceof Tensor)) throw new ArgumentError(`${this.name}: fineTune: x must be one tensor [N, ...] of training images`);
    if (data.val && !(data.val.x instanceof Tensor)) throw new ArgumentError(`${this.name}: fineTune: val.x must be one tensor [N, ...] of validation images`);
    const enc = data.encoder;
    if (!enc || !(enc.module instanceof Module) || typeof enc.features !== 'function') {
      throw new ArgumentError(`${this.name}: fineTune: encoder must be { module: Module (a trainable copy of the classifier's encoder), features: (x) => [B, D] }`);
    }
    const bs = data.batchSize ?? 128;
    const selectBy = this.checkSelect('fineTune', data);
    const X = data.x;
    const fit = await this.targets('fineTune', X, data.labels, bs);
    let val: Targets | null = null;
    try {
      if (data.val) val = await this.targets('fineTune: val', data.val.x, data.val.labels, bs);
      if (val && selectBy === 'auprError') this.checkHasErrors('fineTune', val.correct);
      const N = X.shape[0];
      const be = X.backend;
      manualSeed(data.seed ?? 0);
      enc.module.eval();
      this.head.eval();
      await this.head.to(be);
      await enc.module.to(be);
      const params = [...this.head.parameters(), ...enc.module.parameters().filter((p) => p.requiresGrad)];
      const opt = new Adam(params, { lr: data.lr ?? 1e-5 });
      const { tcp: T, base: M } = fit;
      const rest = X.shape.slice(1);
      const Xv = data.val?.x;
      await this.trainSelected(opt, [this.head, enc.module], N, be, data, ((data.seed ?? 0) ^ 0x27d4eb2f) >>> 0, (ix) => {
        opt.zeroGrad();
        const c = this.confidenceFromFeatures(enc.features(X.indexSelect(0, ix)), M ? M.indexSelect(0, ix) : undefined);
        const loss = mean(square(c.sub(T.indexSelect(0, ix))));
        loss.backward();
        opt.step();
        return loss;
      }, val && Xv ? { targets: val, selectBy, rows: Xv.shape[0], confidences: (s, n) => this.confidenceFromFeatures(enc.features(Xv.slice([s], [n, ...rest])), val!.base ? val!.base.slice([s], [n]) : undefined) } : null);
    } finally {
      for (const t of [fit.tcp, fit.base, val?.tcp, val?.base]) t?.dispose();
    }
    this.encoderFn = enc.features;
    return this;
  }

  private checkSelect(what: string, data: { val?: unknown; selectBy?: string; epochs?: number }): 'auprError' | 'loss' {
    const sel = data.selectBy ?? 'auprError';
    if (sel !== 'auprError' && sel !== 'loss') throw new ArgumentError(`${this.name}: ${what}: selectBy must be 'auprError' or 'loss', got '${String(sel)}'`);
    if (data.selectBy !== undefined && !data.val) throw new ArgumentError(`${this.name}: ${what}: selectBy needs a validation split (val: { x, labels })`);
    const e = data.epochs ?? 10;
    if (!Number.isInteger(e) || e < 1) throw new ArgumentError(`${this.name}: ${what}: epochs must be a positive integer, got ${data.epochs}`);
    return sel;
  }

  private checkHasErrors(what: string, correct: Uint8Array): void {
    let c = 0;
    for (const v of correct) c += v;
    if (c === 0 || c === correct.length) {
      throw new ArgumentError(`${this.name}: ${what}: selectBy 'auprError' needs errors and correct predictions of the classifier on val (it has ${correct.length - c} errors in ${correct.length} rows); use selectBy 'loss' or a larger split`);
    }
  }

  /**
   * The frozen classifier's TCP [N], logit(MCP) [N] (base 'mcp') and correctness of rows `x`,
   * batched, plus the frozen features [N, D] when `withFeatures`.
   */
  private async collect(what: string, x: DetectorInput, labels: Tensor | ArrayLike<number>, bs: number): Promise<Targets & { F: Tensor }> {
    const r = await this.gatherTargets(what, x, labels, bs, true);
    return r as Targets & { F: Tensor };
  }

  private targets(what: string, x: DetectorInput, labels: Tensor | ArrayLike<number>, bs: number): Promise<Targets> {
    return this.gatherTargets(what, x, labels, bs, false);
  }

  private async gatherTargets(what: string, x: DetectorInput, labels: Tensor | ArrayLike<number>, bs: number, withFeatures: boolean): Promise<Targets & { F?: Tensor }> {
    const feats: Tensor[] = [];
    const tcps: Tensor[] = [];
    const bases: Tensor[] = [];
    const preds: Tensor[] = [];
    const kept = new Set<Tensor>();
    const y = labels instanceof Tensor ? await labels.data() : labels;
    let row = 0;
    try {
      await forEachBatch(`${this.name}: ${what}`, x, bs, (xb) => tidy(() => noGrad(() => {
        const B = xb.shape[0];
        if (row + B > y.length) throw new ShapeError(`${this.name}: ${what}: ${y.length} labels for more input rows`);
        const lab = fromHost(Array.from({ length: B }, (_, i) => y[row + i]), [B, 1], 'int32', xb.backend);
        const z = this.logitFn(xb);
        tcps.push(keep(gather(softmax(z, 1), lab, 1).reshape([B])));
        if (this.base === 'mcp') bases.push(keep(mcpLogit(z)));
        preds.push(keep(argmax(z, 1)));
        row += B;
        // A view: the features may be the input batch itself (forEachBatch disposes what fn returns).
        return withFeatures ? this.featureFn(xb).detach() : z;
      })), (f) => { if (withFeatures) feats.push(f.detach()); });
      if (row !== y.length) throw new ShapeError(`${this.name}: ${what}: ${y.length} labels for ${row} input rows`);
      const correct = new Uint8Array(row);
      let at = 0;
      for (const p of preds) {
        const pv = await p.data();
        for (let i = 0; i < pv.length; i++, at++) correct[at] = pv[i] === y[at] ? 1 : 0;
      }
      const out = {
        tcp: concat(tcps, 0),
        base: bases.length ? concat(bases, 0) : null,
        correct,
        ...(withFeatures ? { F: concat(feats, 0) } : {}),
      };
      // concat of a single part may return that part itself: keep what is returned.
      kept.add(out.tcp).add(out.base ?? out.tcp).add(out.F ?? out.tcp);
      return out;
    } finally {
      for (const t of [...feats, ...tcps, ...bases, ...preds]) if (!kept.has(t)) t.dispose();
    }
  }

  /**
   * The shared loop ({@link runMinibatchEpochs}) with optional model selection: after each epoch
   * the criterion on the validation rows; the modules' weights of the best epoch are snapshotted
   * (state dicts are copy-free snapshots) and restored at the end.
   */
  private async trainSelected(
    opt: Adam, modules: Module[], N: number, be: Tensor['backend'], data: { epochs?: number; batchSize?: number }, shuffleSeed: number, step: (ix: Tensor) => Tensor,
    val: { targets: Targets; selectBy: 'auprError' | 'loss'; rows: number; confidences: (start: number, n: number) => Tensor } | null,
  ): Promise<void> {
    const epochs = data.epochs ?? 10;
    const bs = Math.min(data.batchSize ?? 128, N);
    this.valHistory = [];
    this.selectedEpoch = epochs;
    let best = NaN;
    let snapshot: Record<string, Tensor>[] | null = null;
    const dropSnapshot = () => {
      for (const d of snapshot ?? []) for (const t of Object.values(d)) t.dispose();
      snapshot = null;
    };
    try {
      this.lastLoss = await runMinibatchEpochs({
        rows: N, epochs, batchSize: bs, shuffleSeed, backend: be, step,
        afterEpoch: val ? async (e) => {
          const m = await this.criterion(val);
          this.valHistory.push(m);
          const better = val.selectBy === 'auprError' ? m > best : m < best;
          if (e === 0 || better) {
            best = m;
            this.selectedEpoch = e + 1;
            dropSnapshot();
            snapshot = modules.map((mod) => { const d = mod.stateDict(); for (const t of Object.values(d)) keep(t); return d; });
          }
        } : undefined,
      });
      if (snapshot) for (let i = 0; i < modules.length; i++) modules[i].loadStateDict(snapshot[i]);
    } finally {
      dropSnapshot();
      releaseOptimizer(opt);
    }
  }

  /** AUPR-Error of ĉ (errors positive) or the MSE to TCP on the validation rows, batched by `start, n`. */
  private async criterion(val: { targets: Targets; selectBy: 'auprError' | 'loss'; rows: number; confidences: (start: number, n: number) => Tensor }): Promise<number> {
    const n = val.rows;
    const c = new Float64Array(n);
    const chunk = 1024;
    for (let s = 0; s < n; s += chunk) {
      const m = Math.min(chunk, n - s);
      const t = tidy(() => noGrad(() => val.confidences(s, m)));
      try {
        c.set(await t.data(), s);
      } finally {
        t.dispose();
      }
    }
    if (val.selectBy === 'auprError') return auprError(c, val.targets.correct);
    const t = await val.targets.tcp.data();
    let sq = 0;
    for (let i = 0; i < n; i++) sq += (c[i] - t[i]) ** 2;
    return sq / n;
  }

  /** score = −ĉ(x), [B]: higher = more likely a misclassification. */
  score(x: Tensor): Tensor {
    if (!this.fitted) throw new NotFittedError(`${this.name}: not fitted; call fit({ x, labels }) first`);
    return composite(() => this.confidence(x).neg());
  }

  predict(x: Tensor): ScoredBatch {
    if (!this.fitted) throw new NotFittedError(`${this.name}: not fitted; call fit({ x, labels }) first`);
    return tidy(() => noGrad(() => {
      const z = this.logitFn(x);
      return { prediction: argmax(z, 1), score: this.confidenceFromFeatures(this.headFeatures(x), this.base === 'mcp' ? mcpLogit(z) : undefined).neg() };
    }));
  }
}
