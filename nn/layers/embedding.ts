import {
  ArgumentError, DTypeError, ShapeError, type Tensor, composite, detach, eq, fmtShape, fromHost, indexSelect, noGrad, tidy, unsqueeze, where,
} from '../../engine/index.js';
import { type ParamInitOptions, normalInit } from '../init.js';
import { checkIndicesOnHost } from '../labels.js';
import { Module, parameter } from '../module.js';

export interface EmbeddingOptions {
  /**
   * Row whose output gets no gradient (PyTorch padding_idx): its output is still
   * weight[paddingIdx] (initialised to zeros by the layer), but it is never updated by training.
   * Negative values count from the end.
   */
  paddingIdx?: number | null;
}

function normPadding(op: string, p: number | null | undefined, num: number): number | null {
  if (p === undefined || p === null) return null;
  if (!Number.isInteger(p) || p < -num || p >= num) throw new ArgumentError(`${op}: paddingIdx must be an integer in [${-num}, ${num}), got ${p}`);
  return p < 0 ? p + num : p;
}

/**
 * Embedding lookup (torch.nn.functional.embedding): out = weight[indices], shape
 * indices.shape + [embeddingDim], for int32 `indices` of any shape and `weight`
 * [numEmbeddings, embeddingDim]. Composed of `indexSelect` (gradient: a deterministic
 * scatter-add into the used rows).
 *
 * Indices outside [0, numEmbeddings) throw an IndexError naming the first bad index and its
 * position when the values are known on the host (CPU backend, DataLoader batches on any backend).
 * For int32 tensors computed on WebGPU the lookup kernel flags bad indices on the device and the
 * IndexError (naming 'embedding') is raised at the next read of the backend, with no extra
 * readback. Not supported: max_norm, scale_grad_by_freq,
 * sparse gradients.
 */
export function embedding(indices: Tensor, weight: Tensor, opts: EmbeddingOptions = {}): Tensor {
  const op = 'embedding';
  if (indices.dtype !== 'int32') throw new DTypeError(`${op}: indices must be int32, got ${indices.dtype} ${fmtShape(indices.shape)}`);
  if (weight.rank !== 2) throw new ShapeError(`${op}: weight must be [numEmbeddings, embeddingDim], got ${fmtShape(weight.shape)}`);
  const num = weight.shape[0];
  const pad = normPadding(op, opts.paddingIdx, num);
  checkIndicesOnHost(op, 'index', indices, num, `weight ${fmtShape(weight.shape)} with ${num} embeddings`);
  return composite(() => {
    const flat = indices.rank === 0 ? unsqueeze(indices, 0) : indices;
    let out = indexSelect(weight, 0, flat, { op });
    if (indices.rank === 0) out = out.reshape([weight.shape[1]]);
    if (pad !== null) out = where(unsqueeze(eq(indices, pad), -1), detach(out), out);
    return out;
  });
}

export interface EmbeddingLayerOptions extends EmbeddingOptions, ParamInitOptions {
  /** Initial weight [numEmbeddings, embeddingDim] (taken over; default N(0, 1) with a zero padding row). */
  weight?: Tensor;
  /** Do not train the weight (default false; `fromPretrained` defaults to true). */
  freeze?: boolean;
}

/**
 * torch.nn.Embedding(numEmbeddings, embeddingDim): a lookup table `weight`
 * [numEmbeddings, embeddingDim] (stateDict key `weight`, as PyTorch), initialised N(0, 1) with
 * the `paddingIdx` row set to zero. forward(indices int32 [*]) → [*, embeddingDim]; see
 * {@link embedding} for index validation and the padding row's gradient.
 */
export class Embedding extends Module<[Tensor], Tensor> {
  weight: Tensor;
  readonly paddingIdx: number | null;

  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, opts: EmbeddingLayerOptions = {}) {
    super();
    for (const [k, v] of [['numEmbeddings', numEmbeddings], ['embeddingDim', embeddingDim]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new ArgumentError(`Embedding: ${k} must be a positive integer, got ${v}`);
    }
    this.paddingIdx = normPadding('Embedding', opts.paddingIdx, numEmbeddings);
    let w: Tensor;
    if (opts.weight) {
      if (opts.weight.rank !== 2 || opts.weight.shape[0] !== numEmbeddings || opts.weight.shape[1] !== embeddingDim) {
        throw new ShapeError(`Embedding: weight ${fmtShape(opts.weight.shape)} must be [numEmbeddings, embeddingDim] = [${numEmbeddings},${embeddingDim}]`);
      }
      w = opts.weight;
    } else {
      const pad = this.paddingIdx;
      w = tidy(() => noGrad(() => {
        const r = normalInit([numEmbeddings, embeddingDim], 0, 1, opts);
        if (pad === null) return r;
        const rows = new Uint8Array(numEmbeddings).fill(1);
        rows[pad] = 0;
        return where(fromHost(rows, [numEmbeddings, 1], 'bool', r.backend), r, 0);
      }));
    }
    this.weight = parameter(w, !(opts.freeze ?? false));
  }

  /** torch.nn.Embedding.from_pretrained: wraps `weight` (frozen by default). */
  static fromPretrained(weight: Tensor, opts: EmbeddingOptions & { freeze?: boolean } = {}): Embedding {
    if (weight.rank !== 2) throw new ShapeError(`Embedding.fromPretrained: weight must be [numEmbeddings, embeddingDim], got ${fmtShape(weight.shape)}`);
    return new Embedding(weight.shape[0], weight.shape[1], { ...opts, weight, freeze: opts.freeze ?? true });
  }

  forward(indices: Tensor): Tensor {
    try {
      return embedding(indices, this.weight, { paddingIdx: this.paddingIdx });
    } catch (e) {
      if (e instanceof Error && /^embedding:/.test(e.message)) e.message = e.message.replace(/^embedding:/, `Embedding(${this.numEmbeddings}, ${this.embeddingDim}):`);
      throw e;
    }
  }

  override extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}${this.paddingIdx !== null ? `, paddingIdx=${this.paddingIdx}` : ''}`;
  }
}
