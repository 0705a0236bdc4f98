import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DTypeError, FormatError, ArgumentError, type Backend, type Tensor, conv2d, conv2dBiasAct, fromHost, maxPool2d, setBackend, tidy } from '../node.js';
import {
  decodeSafetensors,
  encodeSafetensors,
  encodeSafetensorsSync,
  entryToTensor,
  readSafetensorsHeader,
  type SafetensorsEntry,
} from '../nn/serialize/safetensors.js';
import { loadSafetensors, saveSafetensors } from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

const tmp = mkdtempSync(join(tmpdir(), 'dubito-st-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Builds a file from a header (object or raw JSON text) and a data buffer. */
function file(header: unknown, data: Uint8Array | number = 0, opts: { lengthField?: bigint } = {}): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const buf = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + buf.length);
  new DataView(out.buffer).setBigUint64(0, opts.lengthField ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(buf, 8 + json.length);
  return out;
}

function expectFormatError(bytes: Uint8Array, message: RegExp): void {
  let err: unknown;
  try {
    decodeSafetensors(bytes);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FormatError);
  expect((err as Error).message).toMatch(message);
}

describe('safetensors round trips', () => {
  it('round-trips every writable dtype, scalars, zero-size tensors and metadata', () => {
    const input = {
      w: { dtype: 'F32' as const, shape: [2, 3], data: new Float32Array([1.5, -2, 3.25, 1e-30, -0, Infinity]) },
      d: { dtype: 'F64' as const, shape: [3], data: [Math.PI, -1e300, 5e-324] },
      i: { dtype: 'I32' as const, shape: [2, 2], data: [-2147483648, 2147483647, 0, -7] },
      u: { dtype: 'U8' as const, shape: [5], data: [0, 1, 127, 128, 255] },
      b: { dtype: 'BOOL' as const, shape: [3], data: [1, 0, 1] },
      s: { dtype: 'F32' as const, shape: [], data: [42] },
      z: { dtype: 'F32' as const, shape: [0, 4], data: [] },
      'name with spaces/é': { dtype: 'float32' as const, shape: [1], data: [7] },
    };
    const bytes = encodeSafetensorsSync(input, { framework: 'dubito', note: 'ünïcode' });
    // header length + header is a multiple of 8, so every tensor is aligned
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const header = readSafetensorsHeader(bytes);
    for (const [name, t] of Object.entries(header.tensors)) {
      const size = { F64: 8, F32: 4, I32: 4, U8: 1, BOOL: 1 }[t.dtype as 'F32'];
      expect(t.dataOffsets[0] % size, name).toBe(0);
    }
    const out = decodeSafetensors(bytes);
    expect(out.metadata).toEqual({ framework: 'dubito', note: 'ünïcode' });
    expect(Object.keys(out.tensors).sort()).toEqual(Object.keys(input).sort());
    for (const [name, t] of Object.entries(input)) {
      const e = out.tensors[name];
      expect(e.shape, name).toEqual(t.shape);
      const dt = t.dtype === 'float32' ? 'F32' : t.dtype;
      expect(e.dtype, name).toBe(dt);
      expect(e.stored, name).toBe(dt);
      expect(Array.from(e.data), name).toEqual(Array.from(t.data));
    }
    expect(out.tensors.w.data).toBeInstanceOf(Float32Array);
    expect(out.tensors.d.data).toBeInstanceOf(Float64Array);
    expect(out.tensors.i.data).toBeInstanceOf(Int32Array);
    expect(out.tensors.u.data).toBeInstanceOf(Uint8Array);
    expect(out.tensors.b.data).toBeInstanceOf(Uint8Array);
    expect(Object.is(out.tensors.w.data[4], -0)).toBe(true);
    // decoded arrays are copies, not views of the input
    bytes.fill(0, bytes.length - 20);
    expect(Array.from(out.tensors.u.data)).toEqual([0, 1, 127, 128, 255]);
  });

  it('round-trips an empty file and re-encodes decoded entries byte for byte', () => {
    const empty = encodeSafetensorsSync({});
    expect(decodeSafetensors(empty)).toEqual({ tensors: {}, metadata: {} });
    const bytes = encodeSafetensorsSync({ a: { dtype: 'I32', shape: [2], data: [1, 2] }, b: { dtype: 'F64', shape: [1], data: [0.1] } }, { k: 'v' });
    const dec = decodeSafetensors(bytes.buffer.slice(0) as ArrayBuffer);
    expect(encodeSafetensorsSync(dec.tensors, dec.metadata)).toEqual(bytes);
  });

  it('decodes from an unaligned Uint8Array view', () => {
    const bytes = encodeSafetensorsSync({ a: { dtype: 'F32', shape: [3], data: [1, 2, 3] } });
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    expect(Array.from(decodeSafetensors(shifted.subarray(3)).tensors.a.data)).toEqual([1, 2, 3]);
  });

  it('encodes dubito tensors (any backend) and decodes back to tensors', async () => {
    setBackend(cpu);
    const t = {
      f: fromHost([1, 2, 3, 4, 5, 6], [2, 3], 'float32'),
      g: fromHost([0.1, 0.2], [2], 'float64'),
      i: fromHost([-1, 5], [2], 'int32'),
      m: fromHost([1, 0, 0, 1], [2, 2], 'bool'),
    };
    const bytes = await encodeSafetensors(t, { from: 'tensors' });
    const dec = decodeSafetensors(bytes);
    expect(dec.tensors.f).toMatchObject({ dtype: 'F32', shape: [2, 3] });
    expect(dec.tensors.g.dtype).toBe('F64');
    expect(dec.tensors.m).toMatchObject({ dtype: 'BOOL', shape: [2, 2] });
    for (const [name, src] of Object.entries(t)) {
      const back = entryToTensor(dec.tensors[name], cpu);
      expect(back.dtype).toBe(src.dtype);
      expect(await back.toArray()).toEqual(await src.toArray());
      back.dispose();
      src.dispose();
    }
    const u8 = entryToTensor({ dtype: 'U8', shape: [2], data: new Uint8Array([3, 250]), stored: 'U8' }, cpu);
    expect(u8.dtype).toBe('int32');
    expect(await u8.toArray()).toEqual([3, 250]);
    u8.dispose();
  });

  it('saves and loads files', async () => {
    const path = join(tmp, 'sub', 'model.safetensors');
    await saveSafetensors(path, { x: { dtype: 'F32', shape: [2], data: [1, 2] } }, { a: 'b' });
    const dec = await loadSafetensors(path);
    expect(Array.from(dec.tensors.x.data)).toEqual([1, 2]);
    expect(dec.metadata).toEqual({ a: 'b' });
    const bad = join(tmp, 'bad.safetensors');
    await saveSafetensors(bad, {});
    const raw = readFileSync(bad);
    raw[8] = 0x5b; // '[': no longer an object
    const { writeFileSync } = await import('node:fs');
    writeFileSync(bad, raw);
    await expect(loadSafetensors(bad)).rejects.toThrow(/bad\.safetensors: safetensors: the header must be a JSON object/);
  });

  it('rejects bad inputs to the encoder with typed errors', async () => {
    expect(() => encodeSafetensorsSync({ a: { dtype: 'F16' as 'F32', shape: [1], data: [1] } })).toThrow(DTypeError);
    expect(() => encodeSafetensorsSync({ a: { dtype: 'F32', shape: [2], data: [1] } })).toThrow(/1 values do not fill shape \[2\]/);
    expect(() => encodeSafetensorsSync({ a: { dtype: 'F32', shape: [-1], data: [] } })).toThrow(ArgumentError);
    expect(() => encodeSafetensorsSync({ a: { dtype: 'I32', shape: [1], data: [1.5] } })).toThrow(/I32 value 1.5/);
    expect(() => encodeSafetensorsSync({ a: { dtype: 'I32', shape: [1], data: [2 ** 31] } })).toThrow(ArgumentError);
    expect(() => encodeSafetensorsSync({ a: { dtype: 'U8', shape: [1], data: [256] } })).toThrow(/U8 value 256/);
    expect(() => encodeSafetensorsSync({ __metadata__: { dtype: 'F32', shape: [0], data: [] } })).toThrow(/reserved/);
    expect(() => encodeSafetensorsSync({}, { a: 1 as unknown as string })).toThrow(/metadata\["a"\] must be a string/);
  });
});

describe('safetensors reading of converted dtypes', () => {
  it('reads F16 (normals, subnormals, inf, nan, -0) as float32', () => {
    const bits = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x7c00, 0xfc00, 0x8000, 0x3555, 0x7e00];
    const data = new Uint8Array(new Uint16Array(bits).buffer);
    const out = decodeSafetensors(file({ h: { dtype: 'F16', shape: [10], data_offsets: [0, 20] } }, data)).tensors.h;
    expect(out.dtype).toBe('F32');
    expect(out.stored).toBe('F16');
    expect(out.data).toBeInstanceOf(Float32Array);
    const v = Array.from(out.data);
    expect(v.slice(0, 8)).toEqual([1, -2, 65504, 2 ** -24, 1023 * 2 ** -24, Infinity, -Infinity, -0]);
    expect(v[8]).toBe(Math.fround(0.333251953125));
    expect(v[9]).toBeNaN();
  });

  it('reads BF16 as float32', () => {
    const f = new Float32Array([1, -3.5, 1e30, Math.fround(0.1)]);
    const u = new Uint32Array(f.buffer);
    const bits = new Uint16Array(Array.from(u, (x) => x >>> 16));
    const out = decodeSafetensors(file({ b: { dtype: 'BF16', shape: [2, 2], data_offsets: [0, 8] } }, new Uint8Array(bits.buffer))).tensors.b;
    expect(out.dtype).toBe('F32');
    const expected = Array.from(u, (x) => new Float32Array(new Uint32Array([x & 0xffff0000]).buffer)[0]);
    expect(Array.from(out.data)).toEqual(expected);
    expect(out.data[0]).toBe(1);
    expect(out.data[1]).toBe(-3.5);
  });

  it('reads I64 as int32 with a range check, and the small integer types', () => {
    const ok = new BigInt64Array([-2147483648n, 2147483647n, 0n, -5n]);
    const e = decodeSafetensors(file({ i: { dtype: 'I64', shape: [4], data_offsets: [0, 32] } }, new Uint8Array(ok.buffer))).tensors.i;
    expect(e).toMatchObject({ dtype: 'I32', stored: 'I64', shape: [4] });
    expect(Array.from(e.data)).toEqual([-2147483648, 2147483647, 0, -5]);
    const big = new BigInt64Array([1n, 2147483648n]);
    expect(() => decodeSafetensors(file({ i: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, new Uint8Array(big.buffer)))).toThrow(
      /tensor "i": I64 value 2147483648 at flat index 1 does not fit in int32/,
    );
    expect(() => decodeSafetensors(file({ i: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(new BigInt64Array([-(2n ** 40n)]).buffer)))).toThrow(DTypeError);
    const small = decodeSafetensors(
      file(
        {
          a: { dtype: 'I16', shape: [2], data_offsets: [0, 4] },
          b: { dtype: 'U16', shape: [1], data_offsets: [4, 6] },
          c: { dtype: 'I8', shape: [2], data_offsets: [6, 8] },
        },
        new Uint8Array([0xff, 0xff, 0x00, 0x80, 0xff, 0xff, 0x80, 0x7f]),
      ),
    ).tensors;
    expect(Array.from(small.a.data)).toEqual([-1, -32768]);
    expect(Array.from(small.b.data)).toEqual([65535]);
    expect(Array.from(small.c.data)).toEqual([-128, 127]);
  });
});

describe('safetensors rejects malformed files with FormatError', () => {
  const one = (extra: Record<string, unknown> = {}, info: Record<string, unknown> = {}) =>
    file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8], ...info }, ...extra }, 8);

  it('accepts the well-formed baseline', () => {
    expect(decodeSafetensors(one()).tensors.a.shape).toEqual([2]);
  });

  it('file shorter than the length field', () => {
    expectFormatError(new Uint8Array(5), /5 bytes is too short/);
  });

  it('header length beyond the file', () => {
    expectFormatError(file({}, 0, { lengthField: 1000n }), /header length 1000 goes beyond the end of the file \(2 bytes/);
    expectFormatError(file({}, 0, { lengthField: 2n ** 63n }), /header length 9223372036854775808 goes beyond/);
  });

  it('invalid UTF-8 in the header', () => {
    const bytes = file('{"a\u0000":{}}');
    bytes[11] = 0xff;
    expectFormatError(bytes, /not valid UTF-8/);
  });

  it('invalid JSON', () => {
    expectFormatError(file('{"a": {"dtype": "F32",}}'), /invalid JSON header at character \d+/);
    expectFormatError(file('{"a": 1} x'), /trailing characters/);
    expectFormatError(file('{"a": "unterminated}'), /unterminated string/);
    expectFormatError(file('{"a":'), /invalid JSON header at character 5: unexpected end of header/);
    expectFormatError(file('{'), /header length 1 is too small/);
  });

  it('header not an object', () => {
    expectFormatError(file('[1, 2]'), /must be a JSON object starting with '\{'/);
    expectFormatError(file('"str"'), /must be a JSON object/);
    expectFormatError(file({ a: [1, 2] }), /tensor "a": expected an object \{dtype, shape, data_offsets\}/);
  });

  it('unknown or unsupported dtype', () => {
    expectFormatError(one({}, { dtype: 'F128' }), /tensor "a": unknown dtype "F128"/);
    expectFormatError(one({}, { dtype: 'F8_E4M3' }), /dtype F8_E4M3 is not supported by dubito/);
    expectFormatError(one({}, { dtype: 7 }), /dtype must be a string, got 7/);
  });

  it('shape entries that are not non-negative integers', () => {
    for (const shape of [[-2], [2.5], ['2'], 2, null, [2 ** 60]]) {
      expectFormatError(one({}, { shape }), /tensor "a": shape must be an array of non-negative integers/);
    }
  });

  it('data_offsets not [begin, end] integers with begin <= end', () => {
    for (const data_offsets of [[0], [0, 8, 9], [0, '8'], [0.5, 8], [-1, 8], 'x']) {
      expectFormatError(one({}, { data_offsets }), /tensor "a": data_offsets must be \[begin, end\] non-negative integers/);
    }
    expectFormatError(file({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, 8), /data_offsets \[8, 0\] has begin > end/);
  });

  it('data_offsets end beyond the buffer', () => {
    expectFormatError(file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 4), /tensor "a": data_offsets end 8 is beyond the 4-byte data buffer/);
  });

  it('byte span that does not match shape x dtype size', () => {
    expectFormatError(one({}, { shape: [3] }), /tensor "a": data_offsets \[0, 8\] span 8 bytes but shape \[3\] of F32 needs 12/);
    expectFormatError(one({}, { dtype: 'F64' }), /shape \[2\] of F64 needs 16/);
  });

  it('overlapping tensors', () => {
    const bytes = file(
      {
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
      },
      12,
    );
    expectFormatError(bytes, /tensors "a" \[0, 8\] and "b" \[4, 12\] overlap/);
    const dup = file(
      {
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      },
      8,
    );
    expectFormatError(dup, /overlap/);
  });

  it('gaps and unused trailing bytes', () => {
    const gap = file(
      {
        a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
        b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
      },
      12,
    );
    expectFormatError(gap, /bytes \[4, 8\) of the data buffer are not used by any tensor \(gap before "b"\)/);
    expectFormatError(file({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), /bytes \[0, 4\) of the data buffer are not used by any tensor \(gap before "a"\)/);
    expectFormatError(file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 6), /bytes \[4, 6\) at the end of the data buffer are not used/);
    expectFormatError(file({}, 3), /bytes \[0, 3\) at the end/);
  });

  it('duplicate keys (tensor names, metadata keys and fields)', () => {
    expectFormatError(
      file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4),
      /duplicate key "a"/,
    );
    expectFormatError(file('{"__metadata__":{"k":"1","k":"2"}}'), /duplicate key "k"/);
    expectFormatError(file('{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4), /duplicate key "dtype"/);
  });

  it('non-string metadata values and malformed metadata', () => {
    expectFormatError(one({ __metadata__: { epoch: 3 } }), /__metadata__\["epoch"\] must be a string, got 3/);
    expectFormatError(one({ __metadata__: { a: null } }), /__metadata__\["a"\] must be a string, got null/);
    expectFormatError(one({ __metadata__: ['x'] }), /__metadata__ must be an object of strings/);
  });

  it('unexpected fields and non-0/1 BOOL bytes', () => {
    expectFormatError(one({}, { extra: 1 }), /tensor "a": unexpected field "extra"/);
    expectFormatError(file({ m: { dtype: 'BOOL', shape: [2], data_offsets: [0, 2] } }, new Uint8Array([1, 2])), /BOOL byte 2 at flat index 1/);
  });

  it('accepts space-padded headers and zero-size tensors between tensors, but not inside one', () => {
    for (const at of [0, 8]) {
      const bytes = file(`{"z":{"dtype":"F32","shape":[0],"data_offsets":[${at},${at}]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}    `, 8);
      const out = decodeSafetensors(bytes).tensors;
      expect(out.z.shape).toEqual([0]);
      expect(out.a.data.length).toBe(2);
    }
    expectFormatError(file({ z: { dtype: 'F32', shape: [0], data_offsets: [4, 4] }, a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 8), /"a" \[0, 8\] and "z" \[4, 4\] overlap/);
  });
});

// -------------------------------------------------------------------------------------------
// PyTorch parity: LeNet-5 exported by scripts/export-lenet-fixture.py
// -------------------------------------------------------------------------------------------

const FIXTURES = join(import.meta.dirname, 'fixtures');
const EXPECTED_PARAMS: Record<string, number[]> = {
  'features.0.weight': [6, 1, 5, 5],
  'features.0.bias': [6],
  'features.3.weight': [16, 6, 5, 5],
  'features.3.bias': [16],
  'classifier.0.weight': [120, 400],
  'classifier.0.bias': [120],
  'classifier.2.weight': [84, 120],
  'classifier.2.bias': [84],
  'classifier.5.weight': [10, 84],
  'classifier.5.bias': [10],
};

/**
 * Max abs error vs PyTorch's float32 CPU results (|logits| <= ~0.3, |features| <= ~1 here).
 * Measured: host float64 and engine CPU ~1.5e-7, WebGPU (lavapipe) ~1.5e-7; the WebGPU bound
 * leaves room for other summation orders / FMA on real GPUs.
 */
const TOL = { hostF64: 2e-6, cpu: 2e-6, webgpu: 1e-5 };

function loadFixtures() {
  const params = decodeSafetensors(readFileSync(join(FIXTURES, 'lenet.safetensors'))).tensors;
  const io = decodeSafetensors(readFileSync(join(FIXTURES, 'lenet-io.safetensors'))).tensors;
  return { params, io };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Host float64 reference: conv2d (cross-correlation) + bias. x [N,C,H,W]. */
function conv2dHost(x: Float64Array, [n, c, h, w]: number[], wt: SafetensorsEntry, b: SafetensorsEntry, pad: number) {
  const [o, , k] = wt.shape;
  const oh = h + 2 * pad - k + 1;
  const ow = w + 2 * pad - k + 1;
  const out = new Float64Array(n * o * oh * ow);
  for (let ni = 0; ni < n; ni++)
    for (let oi = 0; oi < o; oi++)
      for (let y = 0; y < oh; y++)
        for (let xx = 0; xx < ow; xx++) {
          let s = b.data[oi];
          for (let ci = 0; ci < c; ci++)
            for (let ky = 0; ky < k; ky++)
              for (let kx = 0; kx < k; kx++) {
                const iy = y + ky - pad;
                const ix = xx + kx - pad;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                s += x[((ni * c + ci) * h + iy) * w + ix] * wt.data[((oi * c + ci) * k + ky) * k + kx];
              }
          out[((ni * o + oi) * oh + y) * ow + xx] = s;
        }
  return { data: out, shape: [n, o, oh, ow] };
}

function reluPoolHost(x: Float64Array, [n, c, h, w]: number[]) {
  const out = new Float64Array(n * c * (h / 2) * (w / 2));
  let i = 0;
  for (let p = 0; p < n * c; p++)
    for (let y = 0; y < h / 2; y++)
      for (let xx = 0; xx < w / 2; xx++) {
        let m = 0; // relu then max == max(0, max)
        for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) m = Math.max(m, x[(p * h + 2 * y + dy) * w + 2 * xx + dx]);
        out[i++] = m;
      }
  return { data: out, shape: [n, c, h / 2, w / 2] };
}

function linearHost(x: Float64Array, n: number, wt: SafetensorsEntry, b: SafetensorsEntry, relu: boolean): Float64Array {
  const [o, inF] = wt.shape;
  const out = new Float64Array(n * o);
  for (let r = 0; r < n; r++)
    for (let j = 0; j < o; j++) {
      let s = b.data[j];
      for (let k = 0; k < inF; k++) s += x[r * inF + k] * wt.data[j * inF + k];
      out[r * o + j] = relu ? Math.max(0, s) : s;
    }
  return out;
}

/**
 * A convolution as a dense matrix M [C*H*W, O*OH*OW] so that conv(x) = x.flatten(1) @ M (+ bias),
 * which lets the parity test run on the engine with matmul only (no conv2d op needed).
 */
function convMatrix(wt: SafetensorsEntry, [c, h, w]: number[], pad: number): { m: Float32Array; rows: number; cols: number; oh: number; ow: number } {
  const [o, , k] = wt.shape;
  const oh = h + 2 * pad - k + 1;
  const ow = w + 2 * pad - k + 1;
  const rows = c * h * w;
  const cols = o * oh * ow;
  const m = new Float32Array(rows * cols);
  for (let oi = 0; oi < o; oi++)
    for (let y = 0; y < oh; y++)
      for (let xx = 0; xx < ow; xx++) {
        const col = (oi * oh + y) * ow + xx;
        for (let ci = 0; ci < c; ci++)
          for (let ky = 0; ky < k; ky++)
            for (let kx = 0; kx < k; kx++) {
              const iy = y + ky - pad;
              const ix = xx + kx - pad;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              m[((ci * h + iy) * w + ix) * cols + col] = wt.data[((oi * c + ci) * k + ky) * k + kx];
            }
      }
  return { m, rows, cols, oh, ow };
}

/** LeNet-5 forward with engine ops available today: matmul, add, relu, reshape, max. */
async function lenetWithMatmulConv(be: Backend, params: Record<string, SafetensorsEntry>, input: SafetensorsEntry) {
  const p = (name: string) => params[name];
  const c1 = convMatrix(p('features.0.weight'), [1, 28, 28], 2);
  const c2 = convMatrix(p('features.3.weight'), [6, 14, 14], 0);
  const expandBias = (b: SafetensorsEntry, per: number) => Float32Array.from({ length: b.data.length * per }, (_, i) => b.data[Math.floor(i / per)]);
  const n = input.shape[0];
  return tidy(() => {
    const t = (data: ArrayLike<number>, shape: number[]) => fromHost(data, shape, 'float32', be);
    const pool = (x: Tensor, c: number, h: number, w: number) => x.reshape([n, c, h / 2, 2, w / 2, 2]).max([3, 5]);
    const x = t(input.data, [n, 784]);
    const a1 = x.matmul(t(c1.m, [c1.rows, c1.cols])).add(t(expandBias(p('features.0.bias'), 28 * 28), [c1.cols])).relu();
    const p1 = pool(a1, 6, 28, 28); // [n,6,14,14]
    const a2 = p1.reshape([n, 6 * 14 * 14]).matmul(t(c2.m, [c2.rows, c2.cols])).add(t(expandBias(p('features.3.bias'), 100), [c2.cols])).relu();
    const feats = pool(a2, 16, 10, 10); // [n,16,5,5]
    const lin = (h: Tensor, name: string) => h.matmul(t(p(`${name}.weight`).data, p(`${name}.weight`).shape), { transposeB: true }).add(t(p(`${name}.bias`).data, p(`${name}.bias`).shape));
    const h1 = lin(feats.reshape([n, 400]), 'classifier.0').relu();
    const h2 = lin(h1, 'classifier.2').relu();
    const logits = lin(h2, 'classifier.5');
    return { feats, logits };
  });
}

/** LeNet-5 forward with the engine's conv2d / maxPool2d (optionally the fused conv+bias+relu). */
function lenetWithConvOps(be: Backend, params: Record<string, SafetensorsEntry>, input: SafetensorsEntry, fused: boolean) {
  return tidy(() => {
    const p = (name: string) => entryToTensor(params[name], be);
    const conv = (x: Tensor, layer: string, padding: number) =>
      fused ? conv2dBiasAct(x, p(`${layer}.weight`), p(`${layer}.bias`), { padding }, 'relu') : conv2d(x, p(`${layer}.weight`), p(`${layer}.bias`), { padding }).relu();
    const x = entryToTensor(input, be);
    const f1 = maxPool2d(conv(x, 'features.0', 2), { kernelSize: 2 });
    const feats = maxPool2d(conv(f1, 'features.3', 0), { kernelSize: 2 });
    const lin = (h: Tensor, name: string) => h.matmul(p(`${name}.weight`), { transposeB: true }).add(p(`${name}.bias`));
    const h1 = lin(feats.flatten(1), 'classifier.0').relu();
    const h2 = lin(h1, 'classifier.2').relu();
    const logits = lin(h2, 'classifier.5');
    return { feats, logits };
  });
}

describe('LeNet-5 PyTorch parity fixture', () => {
  it('has the documented names, shapes and dtypes', () => {
    const { params, io } = loadFixtures();
    expect(Object.keys(params).sort()).toEqual(Object.keys(EXPECTED_PARAMS).sort());
    for (const [name, shape] of Object.entries(EXPECTED_PARAMS)) {
      expect(params[name].shape, name).toEqual(shape);
      expect(params[name].stored, name).toBe('F32');
      expect(params[name].data.every((v) => Number.isFinite(v)), name).toBe(true);
    }
    expect(io.input.shape).toEqual([4, 1, 28, 28]);
    expect(io.features.shape).toEqual([4, 16, 5, 5]);
    expect(io.logits.shape).toEqual([4, 10]);
    const meta = readSafetensorsHeader(readFileSync(join(FIXTURES, 'lenet.safetensors'))).metadata;
    expect(meta.format).toBe('pt');
    expect(meta.names.split(',')).toEqual(Object.keys(EXPECTED_PARAMS));
  });

  it('float64 host reference reproduces the PyTorch logits', () => {
    const { params: p, io } = loadFixtures();
    const x = Float64Array.from(io.input.data);
    const a1 = conv2dHost(x, [4, 1, 28, 28], p['features.0.weight'], p['features.0.bias'], 2);
    const p1 = reluPoolHost(a1.data, a1.shape);
    const a2 = conv2dHost(p1.data, p1.shape, p['features.3.weight'], p['features.3.bias'], 0);
    const feats = reluPoolHost(a2.data, a2.shape);
    expect(maxAbsDiff(feats.data, io.features.data)).toBeLessThan(TOL.hostF64);
    const h1 = linearHost(feats.data, 4, p['classifier.0.weight'], p['classifier.0.bias'], true);
    const h2 = linearHost(h1, 4, p['classifier.2.weight'], p['classifier.2.bias'], true);
    const logits = linearHost(h2, 4, p['classifier.5.weight'], p['classifier.5.bias'], false);
    expect(maxAbsDiff(logits, io.logits.data)).toBeLessThan(TOL.hostF64);
  });

  for (const which of ['cpu', 'webgpu'] as const) {
    it(`engine ops (matmul-as-conv, reshape+max pooling) match PyTorch on ${which}`, async (ctx) => {
      const be = which === 'cpu' ? cpu : await requireWebGPU(ctx);
      const { params, io } = loadFixtures();
      const { feats, logits } = await lenetWithMatmulConv(be, params, io.input);
      expect(maxAbsDiff(await feats.data(), io.features.data)).toBeLessThan(TOL[which]);
      expect(maxAbsDiff(await logits.data(), io.logits.data)).toBeLessThan(TOL[which]);
      // argmax agrees too
      const am = Array.from(await logits.argmax(1).data());
      const ref = [0, 1, 2, 3].map((r) => {
        const row = Array.from(io.logits.data.slice(r * 10, r * 10 + 10));
        return row.indexOf(Math.max(...row));
      });
      expect(am).toEqual(ref);
      feats.dispose();
      logits.dispose();
    });

    for (const fused of [false, true]) {
      it(`engine conv2d${fused ? 'BiasAct' : ''} + maxPool2d match PyTorch on ${which}`, async (ctx) => {
        const be = which === 'cpu' ? cpu : await requireWebGPU(ctx);
        const { params, io } = loadFixtures();
        const { feats, logits } = lenetWithConvOps(be, params, io.input, fused);
        expect(feats.shape).toEqual([4, 16, 5, 5]);
        expect(logits.shape).toEqual([4, 10]);
        expect(maxAbsDiff(await feats.data(), io.features.data)).toBeLessThan(TOL[which]);
        expect(maxAbsDiff(await logits.data(), io.logits.data)).toBeLessThan(TOL[which]);
        feats.dispose();
        logits.dispose();
      });
    }
  }
});
