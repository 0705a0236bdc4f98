/**
 * Introspective learning (Prabhushankar & AlRegib, "Introspective learning: a two-stage approach
 * for inference in neural networks", NeurIPS 2022).
 *
 * Stage 1, introspective features: for every introspective class Q ∈ {1..K}, the gradient of
 * J(ŷ, onehot(Q)) — the cross-entropy of the prediction against label Q ("why P rather than Q")
 * — w.r.t. the last layer's weights W [K, D]. With z = W a + b the logits and p = softmax(z),
 *
 *   ∂J_Q/∂W = (p − e_Q) aᵀ ,
 *
 * so all K×B gradients come from one broadcast product (p_b − e_Q) ⊗ a_b, [B, K, K, D], with no
 * backward pass and no loop over Q or b. Each (b, Q) gradient is L2-normalised (it equals
 * (p_b − e_Q)/‖p_b − e_Q‖ ⊗ a_b/‖a_b‖) and the K of them are concatenated → features [B, K·K·D]
 * (`questions: 'each'`, the default).
 *
 * `questions: 'allOnes'` is the paper's one-pass form (its Sec. 4: the K questions asked at once
 * with the all-ones label 1_K): the gradient of Σ_Q J(ŷ, e_Q), which by linearity is
 *
 *   Σ_Q (p − e_Q) aᵀ = (K·p − 1) aᵀ ,  features [B, K·D] ,
 *
 * K times smaller; it keeps the "how far is p from every class" information in one matrix.
 * `bias: true` appends the bias gradient ∂J/∂b = (p − e_Q) (or K·p − 1): it is the weight
 * gradient of an input augmented with a constant 1, so D becomes D + 1 and, when normalising,
 * [a, 1] is normalised as a whole (the normalised gradient of [W | b]).
 *
 * Sign: the features are gradients, not scores; the detector's score below is higher = more
 * uncertain.
 *
 * Stage 2: a small MLP H on the features re-predicts the class ({@link IntrospectiveClassifier}).
 * As a detector, score = −max_k softmax(H(features))_k (the introspective MSP; higher = more
 * uncertain / more OOD).
 */
import {
  ArgumentError,
  ShapeError,
  Tensor,
  argmax,
  concat,
  fmtShape,
  fromHost,
  max,
  noGrad,
  softmax,
  sqrt,
  square,
  sum,
  tidy,
  detach,
  keep,
} from '../engine/index.js';
import { NotFittedError } from './errors.js';
import { Module } from '../nn/module.js';
import { Linear } from '../nn/layers/linear.js';
import { type Detector, type DetectorInput, type ScoredBatch, forEachBatch } from './detector.js';
import { type Stage2Options, Stage2Classifier } from './stage2.js';

export interface IntrospectiveOptions {
  /** Dotted name of the last layer (a Linear producing the logits); default: the last Linear. */
  layer?: string;
  /** L2-normalise each (sample, introspective class) gradient (default true). */
  normalize?: boolean;
  /**
   * 'each' (default): one gradient per introspective class Q, (p − e_Q)aᵀ → [B, K·K·D];
   * 'allOnes': the single gradient against the all-ones label, (K·p − 1)aᵀ → [B, K·D].
   */
  questions?: 'each' | 'allOnes';
  /** Append the last layer's bias gradient (its input gets a constant 1: D → D + 1; default false). */
  bias?: boolean;
}

function lastLinear(what: string, model: Module, layer?: string): Linear {
  if (!(model instanceof Module)) throw new ArgumentError(`${what}: the model must be a Module (its last Linear layer is hooked)`);
  const mods = model.namedModules();
  if (layer !== undefined) {
    const m = mods.find(([n]) => n === layer)?.[1];
    if (!(m instanceof Linear)) throw new ArgumentError(`${what}: layer '${layer}' is ${m ? `a ${m.constructor.name}` : 'not a module of the model'}; expected a Linear producing the logits`);
    return m;
  }
  const lins = mods.filter(([, m]) => m instanceof Linear);
  if (!lins.length) throw new ArgumentError(`${what}: the model has no Linear layer`);
  return lins[lins.length - 1][1] as Linear;
}

/**
 * Introspective features of `model` on x (formula in the module comment): [B, K·K·D'] for
 * `questions: 'each'`, [B, K·D'] for 'allOnes', D' = D (+1 with `bias`). One forward pass with a
 * hook on the last Linear (input a [B, D], logits z [B, K]).
 */
export function introspectiveFeatures(model: Module, x: Tensor, opts: IntrospectiveOptions = {}): Tensor {
  const lin = lastLinear('introspectiveFeatures', model, opts.layer);
  let a: Tensor | null = null;
  let z: Tensor | null = null;
  let calls = 0;
  const h = lin.registerForwardHook((_m, inputs, out) => {
    calls++;
    a?.dispose(); z?.dispose();
    a = keep(detach(inputs[0] as Tensor));
    z = keep(detach(out as Tensor));
  });
  try {
    tidy(() => noGrad(() => { model.forward(x); }));
    if (calls !== 1 || !a || !z) throw new ArgumentError(`introspectiveFeatures: the last Linear ran ${calls} times in one forward pass; expected exactly once`);
    const A = a as Tensor;
    const Z = z as Tensor;
    if (A.rank !== 2 || Z.rank !== 2) throw new ShapeError(`introspectiveFeatures: the last Linear must map [B, D] to logits [B, K], got ${fmtShape(A.shape)} → ${fmtShape(Z.shape)}`);
    const [B, D0] = A.shape;
    const K = Z.shape[1];
    const questions = opts.questions ?? 'each';
    if (questions !== 'each' && questions !== 'allOnes') throw new ArgumentError(`introspectiveFeatures: questions must be 'each' or 'allOnes', got ${String(questions)}`);
    return tidy(() => noGrad(() => {
      const p = softmax(Z, 1); // [B, K]
      const Q = questions === 'each' ? K : 1;
      let d: Tensor;
      if (questions === 'each') {
        const eye = fromHost(Array.from({ length: K * K }, (_, i) => (i % (K + 1) === 0 ? 1 : 0)), [1, K, K], Z.dtype, Z.backend);
        d = p.reshape([B, 1, K]).sub(eye); // [B, Q, K]: p_b − e_Q
      } else {
        d = p.mul(K).sub(1).reshape([B, 1, K]); // [B, 1, K]: K·p_b − 1 = Σ_Q (p_b − e_Q)
      }
      let av = opts.bias ? concat([A, fromHost(new Array(B).fill(1), [B, 1], A.dtype, A.backend)], 1) : A;
      const D = opts.bias ? D0 + 1 : D0;
      if (opts.normalize ?? true) {
        d = d.div(sqrt(sum(square(d), 2, true)).add(1e-12));
        av = av.div(sqrt(sum(square(av), 1, true)).add(1e-12));
      }
      return d.reshape([B, Q, K, 1]).mul(av.reshape([B, 1, 1, D])).reshape([B, Q * K * D]);
    }));
  } finally {
    h.remove();
    (a as Tensor | null)?.dispose();
    (z as Tensor | null)?.dispose();
  }
}

export interface IntrospectiveClassifierOptions extends IntrospectiveOptions {
  stage2?: Stage2Options;
  /** Rows per batch for feature extraction (default 128). */
  batchSize?: number;
  name?: string;
}

/**
 * Stage 2 of introspective learning: an MLP H trained on the introspective features of the
 * frozen network to re-predict the class. `logits(x)` = H(features(x)); as a {@link Detector},
 * score = −max_k softmax(H)_k (higher = more uncertain), `predict` = argmax of H.
 */
export class IntrospectiveClassifier implements Detector {
  readonly name: string;
  readonly h: Stage2Classifier;

  constructor(private readonly model: Module, private readonly opts: IntrospectiveClassifierOptions = {}) {
    lastLinear('IntrospectiveClassifier', model, opts.layer);
    this.name = opts.name ?? 'Introspective MSP';
    this.h = new Stage2Classifier({ hidden: 64, epochs: 20, lr: 1e-3, ...opts.stage2 });
  }

  /** Trains H on the features of `x` with class labels [N]. */
  async fit(data: { x: DetectorInput; labels: Tensor | ArrayLike<number>; numClasses?: number; batchSize?: number }): Promise<this> {
    const parts: Tensor[] = [];
    try {
      await forEachBatch(`${this.name}: fit`, data.x, data.batchSize ?? this.opts.batchSize ?? 128, (x) => introspectiveFeatures(this.model, x, this.opts), (f) => { parts.push(f.detach()); });
      const feats = concat(parts, 0);
      try {
        const y = data.labels instanceof Tensor ? await data.labels.data() : data.labels;
        let K = data.numClasses ?? 0;
        if (!K) for (let i = 0; i < y.length; i++) K = Math.max(K, y[i] + 1);
        await this.h.fit(feats, y, Math.max(K, 2));
      } finally {
        feats.dispose();
      }
    } finally {
      for (const t of parts) t.dispose();
    }
    return this;
  }

  /** H's logits [B, K]. */
  logits(x: Tensor): Tensor {
    if (!this.h.isFitted) throw new NotFittedError(`${this.name}: not fitted; call fit({ x, labels }) first`);
    return tidy(() => this.h.logits(introspectiveFeatures(this.model, x, this.opts)));
  }

  score(x: Tensor): Tensor {
    return tidy(() => max(softmax(this.logits(x), 1), 1).neg());
  }

  predict(x: Tensor): ScoredBatch {
    return tidy(() => {
      const z = this.logits(x);
      return { prediction: argmax(z, 1), score: max(softmax(z, 1), 1).neg() };
    });
  }
}
