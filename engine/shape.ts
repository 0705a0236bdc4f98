import { ArgumentError, IndexError, ShapeError, fmtShape } from './errors.js';

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major (C-contiguous) strides in elements. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function checkShape(op: string, shape: Shape): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ArgumentError(`${op}: invalid shape ${fmtShape(shape)} (dims must be non-negative integers)`);
  }
}

/** NumPy broadcasting of several shapes. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i];
      if (out[o] === 1) out[o] = d;
      else if (d !== 1 && d !== out[o]) {
        throw new ShapeError(`${op}: shapes ${shapes.map(fmtShape).join(' and ')} cannot be broadcast together (dim ${o}: ${out[o]} vs ${d})`);
      }
    }
  }
  return out;
}

/**
 * Strides (in elements) for reading an input of `inShape` as if it had the broadcast shape
 * `outShape`: broadcast dims get stride 0.
 */
export function broadcastStrides(inShape: Shape, outShape: Shape): number[] {
  const st = stridesOf(inShape);
  const out = new Array<number>(outShape.length).fill(0);
  const off = outShape.length - inShape.length;
  for (let i = 0; i < inShape.length; i++) out[off + i] = inShape[i] === 1 ? 0 : st[i];
  return out;
}

/** Normalises one axis (negative counts from the end) or throws an IndexError naming the op. */
export function normAxis(op: string, axis: number, rank: number): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new IndexError(`${op}: axis ${axis} is out of range for a tensor of rank ${rank} (expected -${rank} <= axis < ${rank})`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Normalises a set of axes (undefined = all), sorted, duplicates rejected. */
export function normAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((a) => normAxis(op, a, rank)).sort((x, y) => x - y);
  for (let i = 1; i < out.length; i++) {
    if (out[i] === out[i - 1]) throw new IndexError(`${op}: axis ${out[i]} given twice`);
  }
  return out;
}

/** Shape after reducing `axes` (sorted, normalised). */
export function reducedShape(shape: Shape, axes: readonly number[], keepDims: boolean): number[] {
  const out: number[] = [];
  for (let i = 0; i < shape.length; i++) {
    if (axes.includes(i)) {
      if (keepDims) out.push(1);
    } else out.push(shape[i]);
  }
  return out;
}

/** Resolves a reshape target with at most one -1. */
export function resolveReshape(op: string, from: Shape, to: readonly number[]): number[] {
  const n = sizeOf(from);
  let unknown = -1;
  let known = 1;
  for (let i = 0; i < to.length; i++) {
    const d = to[i];
    if (d === -1) {
      if (unknown >= 0) throw new ShapeError(`${op}: target shape ${fmtShape(to)} has more than one -1`);
      unknown = i;
    } else if (!Number.isInteger(d) || d < 0) {
      throw new ShapeError(`${op}: invalid target shape ${fmtShape(to)}`);
    } else known *= d;
  }
  const out = [...to];
  if (unknown >= 0) {
    if (known === 0 || n % known !== 0) throw new ShapeError(`${op}: cannot reshape ${fmtShape(from)} (${n} elements) to ${fmtShape(to)}`);
    out[unknown] = n / known;
  }
  if (sizeOf(out) !== n) throw new ShapeError(`${op}: cannot reshape ${fmtShape(from)} (${n} elements) to ${fmtShape(to)} (${sizeOf(out)} elements)`);
  return out;
}
