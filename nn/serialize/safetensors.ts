/**
 * safetensors (https://github.com/huggingface/safetensors) encoding and decoding, browser-safe:
 * everything here works on `Uint8Array`/`ArrayBuffer` (file helpers live in
 * `platform/node-safetensors.ts`, exported from `node.ts`).
 *
 * Layout: an 8-byte little-endian u64 `N`, then `N` bytes of UTF-8 JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": { str: str } }`, then the
 * byte buffer; offsets are relative to the start of the byte buffer, which must be fully covered
 * by the tensors (no gaps, no overlaps, no trailing bytes). All values are little-endian.
 *
 * Decoding is strict and throws {@link FormatError} naming the problem (and the tensor). Decoded
 * entries are converted to one of the writable dtypes: F16/BF16 -> F32, I64/I16/I8/U16/U32 -> I32
 * (with a range check), so `decode(encode(x))` returns `x` for every writable dtype and
 * `entry.stored` keeps the dtype that was in the file.
 */
import {
  ArgumentError, type Backend, type DType, DTypeError, fmtShape, fromHost, type Tensor,
} from '../../engine/index.js';
import { FormatError } from '../errors.js';

/** The dtypes of the safetensors spec that dubito can read. */
export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U32' | 'U16' | 'U8' | 'BOOL';

/** The dtypes dubito writes (and that decoded entries are converted to). */
export type WritableDType = 'F64' | 'F32' | 'I32' | 'U8' | 'BOOL';

/** Host data per writable dtype. */
export type SafetensorsData = Float64Array | Float32Array | Int32Array | Uint8Array;

/** One decoded tensor. `data` is a fresh copy (never a view into the input bytes). */
export interface SafetensorsEntry {
  /** F32 for F32/F16/BF16, F64, I32 for all integer types except U8, U8, BOOL (0/1 bytes). */
  dtype: WritableDType;
  shape: number[];
  data: SafetensorsData;
  /** The dtype stored in the file. */
  stored: SafetensorsDType;
}

/** One tensor to encode. `dtype` is a safetensors name or a dubito dtype (float32 -> F32, ...). */
export interface SafetensorsInput {
  dtype: WritableDType | DType;
  shape: readonly number[];
  data: ArrayLike<number>;
}

/**
 * A decoded file. Both records have no prototype (`Object.create(null)`), so any tensor name,
 * `__proto__` and `constructor` included, is an ordinary key.
 */
export interface DecodedSafetensors {
  tensors: Record<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

/** Bytes per element of every supported dtype. */
export const SAFETENSORS_DTYPE_SIZE: Readonly<Record<SafetensorsDType, number>> = Object.freeze({
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U32: 4, U16: 2, U8: 1, BOOL: 1,
});

/** dtypes of the spec that dubito knows but cannot convert (named in the error message). */
const KNOWN_UNSUPPORTED = new Set(['U64', 'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F6_E2M3', 'F6_E3M2', 'F4', 'C64']);

/** The safetensors reference implementation caps the header at 100 MB. */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

// ---------------------------------------------------------------------------------------------
// Strict JSON (duplicate keys are an error; JSON.parse would keep the last silently)
// ---------------------------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function parseStrictJson(text: string): Json {
  let i = 0;
  const fail = (what: string): never => {
    throw new FormatError(`safetensors: invalid JSON header at character ${i}: ${what}`);
  };
  const ws = () => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const str = (): string => {
    const start = i;
    i++; // opening quote
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        try {
          return JSON.parse(text.slice(start, i)) as string;
        } catch {
          i = start;
          return fail('malformed string');
        }
      }
      if (c === 0x5c) i += 2;
      else if (c < 0x20) return fail('control character in string');
      else i++;
    }
    return fail('unterminated string');
  };
  const value = (depth: number): Json => {
    if (depth > 64) fail('nesting deeper than 64 levels');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: { [k: string]: Json } = Object.create(null);
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a string key');
        const key = str();
        if (seen.has(key)) throw new FormatError(`safetensors: duplicate key ${JSON.stringify(key)} in the JSON header`);
        seen.add(key);
        ws();
        if (text[i] !== ':') fail(`expected ':' after key ${JSON.stringify(key)}`);
        i++;
        obj[key] = value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        return fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const arr: Json[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        return fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (m) {
      i += m[0].length;
      return Number(m[0]);
    }
    for (const [lit, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(lit, i)) {
        i += lit.length;
        return v;
      }
    }
    return fail(c === undefined ? 'unexpected end of header' : `unexpected character ${JSON.stringify(c)}`);
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail('trailing characters after the JSON value');
  return v;
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isPlainObject(v: Json | undefined): v is { [k: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: Json | undefined): string {
  const s = JSON.stringify(v);
  return s === undefined ? 'undefined' : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Half-precision bits to a JS number (exact). */
export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

interface HeaderEntry {
  name: string;
  stored: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

/** Parses and validates the header; returns entries sorted by offset, and the byte-buffer start. */
function readHeader(bytes: Uint8Array): { entries: HeaderEntry[]; metadata: Record<string, string>; dataStart: number } {
  if (bytes.length < 8) throw new FormatError(`safetensors: ${bytes.length} bytes is too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = view.getBigUint64(0, true);
  const avail = bytes.length - 8;
  if (n64 > BigInt(avail)) throw new FormatError(`safetensors: header length ${n64} goes beyond the end of the file (${avail} bytes after the length field)`);
  const n = Number(n64);
  if (n > MAX_HEADER_BYTES) throw new FormatError(`safetensors: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2) throw new FormatError(`safetensors: header length ${n} is too small for a JSON object`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    throw new FormatError(`safetensors: the ${n}-byte header is not valid UTF-8`);
  }
  if (text[0] !== '{') throw new FormatError(`safetensors: the header must be a JSON object starting with '{', got ${JSON.stringify(text.slice(0, 20))}`);
  const header = parseStrictJson(text);
  if (!isPlainObject(header)) throw new FormatError(`safetensors: the header is not a JSON object`);

  const dataStart = 8 + n;
  const bufLen = bytes.length - dataStart;
  const metadata: Record<string, string> = Object.create(null);
  const entries: HeaderEntry[] = [];
  for (const name of Object.keys(header)) {
    const info = header[name];
    if (name === METADATA_KEY) {
      if (!isPlainObject(info)) throw new FormatError(`safetensors: __metadata__ must be an object of strings, got ${describe(info)}`);
      for (const k of Object.keys(info)) {
        if (typeof info[k] !== 'string') throw new FormatError(`safetensors: __metadata__[${JSON.stringify(k)}] must be a string, got ${describe(info[k])}`);
        metadata[k] = info[k] as string;
      }
      continue;
    }
    const where = `tensor ${JSON.stringify(name)}`;
    if (!isPlainObject(info)) throw new FormatError(`safetensors: ${where}: expected an object {dtype, shape, data_offsets}, got ${describe(info)}`);
    for (const k of Object.keys(info)) {
      if (k !== 'dtype' && k !== 'shape' && k !== 'data_offsets') throw new FormatError(`safetensors: ${where}: unexpected field ${JSON.stringify(k)}`);
    }
    const dt = info.dtype;
    if (typeof dt !== 'string') throw new FormatError(`safetensors: ${where}: dtype must be a string, got ${describe(dt)}`);
    if (!Object.prototype.hasOwnProperty.call(SAFETENSORS_DTYPE_SIZE, dt)) {
      if (KNOWN_UNSUPPORTED.has(dt)) throw new FormatError(`safetensors: ${where}: dtype ${dt} is not supported by dubito (supported: ${Object.keys(SAFETENSORS_DTYPE_SIZE).join(', ')})`);
      throw new FormatError(`safetensors: ${where}: unknown dtype ${JSON.stringify(dt)}`);
    }
    const stored = dt as SafetensorsDType;
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
      throw new FormatError(`safetensors: ${where}: shape must be an array of non-negative integers, got ${describe(shape)}`);
    }
    const offs = info.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
      throw new FormatError(`safetensors: ${where}: data_offsets must be [begin, end] non-negative integers, got ${describe(offs)}`);
    }
    const [begin, end] = offs as number[];
    if (begin > end) throw new FormatError(`safetensors: ${where}: data_offsets [${begin}, ${end}] has begin > end`);
    if (end > bufLen) throw new FormatError(`safetensors: ${where}: data_offsets end ${end} is beyond the ${bufLen}-byte data buffer`);
    let count = 1;
    for (const d of shape as number[]) count *= d;
    const expected = count * SAFETENSORS_DTYPE_SIZE[stored];
    if (!Number.isSafeInteger(expected) || end - begin !== expected) {
      throw new FormatError(`safetensors: ${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but shape ${fmtShape(shape as number[])} of ${stored} needs ${expected}`);
    }
    entries.push({ name, stored, shape: shape as number[], begin, end });
  }

  // The byte buffer must be covered exactly: sorted by offsets, each tensor starts where the
  // previous ended, the last ends at the end of the file.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: HeaderEntry | null = null;
  for (const e of entries) {
    if (e.begin < pos) throw new FormatError(`safetensors: tensors ${JSON.stringify(prev!.name)} [${prev!.begin}, ${prev!.end}] and ${JSON.stringify(e.name)} [${e.begin}, ${e.end}] overlap`);
    if (e.begin > pos) throw new FormatError(`safetensors: bytes [${pos}, ${e.begin}) of the data buffer are not used by any tensor (gap before ${JSON.stringify(e.name)})`);
    pos = e.end;
    if (e.end > e.begin || prev === null) prev = e;
  }
  if (pos !== bufLen) throw new FormatError(`safetensors: bytes [${pos}, ${bufLen}) at the end of the data buffer are not used by any tensor`);
  return { entries, metadata, dataStart };
}

function convert(bytes: Uint8Array, e: HeaderEntry, start: number): SafetensorsEntry {
  const n = (e.end - e.begin) / SAFETENSORS_DTYPE_SIZE[e.stored];
  const off = start + e.begin;
  const raw = bytes.subarray(off, off + (e.end - e.begin));
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const copy = (): ArrayBuffer => {
    const c = new Uint8Array(raw.length); // aligned, owned copy
    c.set(raw);
    return c.buffer;
  };
  const where = `safetensors: tensor ${JSON.stringify(e.name)}`;
  const toI32 = (get: (i: number) => number | bigint): Int32Array => {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const v = get(i);
      if (v < -2147483648 || v > 2147483647) throw new DTypeError(`${where}: ${e.stored} value ${v} at flat index ${i} does not fit in int32`);
      out[i] = Number(v);
    }
    return out;
  };
  let dtype: WritableDType;
  let data: SafetensorsData;
  switch (e.stored) {
    case 'F32':
      dtype = 'F32';
      if (LITTLE_ENDIAN) data = new Float32Array(copy());
      else { data = new Float32Array(n); for (let i = 0; i < n; i++) data[i] = view.getFloat32(i * 4, true); }
      break;
    case 'F64':
      dtype = 'F64';
      if (LITTLE_ENDIAN) data = new Float64Array(copy());
      else { data = new Float64Array(n); for (let i = 0; i < n; i++) data[i] = view.getFloat64(i * 8, true); }
      break;
    case 'F16':
      dtype = 'F32';
      data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = f16ToNumber(view.getUint16(i * 2, true));
      break;
    case 'BF16': {
      dtype = 'F32';
      const bits = new Uint32Array(n);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      data = new Float32Array(bits.buffer); // same native byte order as the Uint32Array
      break;
    }
    case 'I32':
      dtype = 'I32';
      if (LITTLE_ENDIAN) data = new Int32Array(copy());
      else { data = new Int32Array(n); for (let i = 0; i < n; i++) data[i] = view.getInt32(i * 4, true); }
      break;
    case 'I64':
      dtype = 'I32';
      data = toI32((i) => view.getBigInt64(i * 8, true));
      break;
    case 'U32':
      dtype = 'I32';
      data = toI32((i) => view.getUint32(i * 4, true));
      break;
    case 'I16':
      dtype = 'I32';
      data = toI32((i) => view.getInt16(i * 2, true));
      break;
    case 'U16':
      dtype = 'I32';
      data = toI32((i) => view.getUint16(i * 2, true));
      break;
    case 'I8':
      dtype = 'I32';
      data = toI32((i) => view.getInt8(i));
      break;
    case 'U8':
      dtype = 'U8';
      data = new Uint8Array(copy());
      break;
    case 'BOOL':
      dtype = 'BOOL';
      data = new Uint8Array(copy());
      for (let i = 0; i < n; i++) {
        if (data[i] > 1) throw new FormatError(`${where}: BOOL byte ${data[i]} at flat index ${i} is neither 0 nor 1`);
      }
      break;
  }
  return { dtype, shape: [...e.shape], data, stored: e.stored };
}

function asBytes(input: Uint8Array | ArrayBuffer): Uint8Array {
  // A plain Uint8Array view: Node's Buffer overrides slice() to return a view, not a copy.
  if (input instanceof Uint8Array) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  throw new ArgumentError(`safetensors: expected a Uint8Array or ArrayBuffer, got ${Object.prototype.toString.call(input)}`);
}

/** Reads only the header: names, dtypes, shapes, offsets and metadata (validated like a full decode). */
export function readSafetensorsHeader(input: Uint8Array | ArrayBuffer): {
  tensors: Record<string, { dtype: SafetensorsDType; shape: number[]; dataOffsets: [number, number] }>;
  metadata: Record<string, string>;
  /** Byte offset of the data buffer in the file (8 + header length). */
  dataStart: number;
} {
  const { entries, metadata, dataStart } = readHeader(asBytes(input));
  const tensors: Record<string, { dtype: SafetensorsDType; shape: number[]; dataOffsets: [number, number] }> = Object.create(null);
  for (const e of entries) tensors[e.name] = { dtype: e.stored, shape: [...e.shape], dataOffsets: [e.begin, e.end] };
  return { tensors, metadata, dataStart };
}

/**
 * Decodes a safetensors file. Throws {@link FormatError} for anything that breaks the format
 * and {@link DTypeError} when an integer does not fit in int32.
 */
export function decodeSafetensors(input: Uint8Array | ArrayBuffer): DecodedSafetensors {
  const bytes = asBytes(input);
  const { entries, metadata, dataStart } = readHeader(bytes);
  const tensors: Record<string, SafetensorsEntry> = Object.create(null);
  // Keep the header's names in a stable (sorted) order, independent of offsets.
  for (const e of [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    tensors[e.name] = convert(bytes, e, dataStart);
  }
  return { tensors, metadata };
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

const DUBITO_TO_ST: Record<DType, WritableDType> = { float32: 'F32', float64: 'F64', int32: 'I32', bool: 'BOOL' };
const WRITABLE_SIZE: Record<WritableDType, number> = { F64: 8, F32: 4, I32: 4, U8: 1, BOOL: 1 };

function writableDType(name: string, dt: string): WritableDType {
  if (dt in DUBITO_TO_ST) return DUBITO_TO_ST[dt as DType];
  if (dt in WRITABLE_SIZE) return dt as WritableDType;
  throw new DTypeError(`encodeSafetensors: tensor ${JSON.stringify(name)}: cannot write dtype ${JSON.stringify(dt)} (writable: F32, F64, I32, U8, BOOL or float32, float64, int32, bool)`);
}

function isTensorLike(v: unknown): v is Tensor {
  return typeof v === 'object' && v !== null && typeof (v as Tensor).data === 'function' && Array.isArray((v as Tensor).shape) && typeof (v as Tensor).dtype === 'string';
}

interface Prepared {
  name: string;
  dtype: WritableDType;
  shape: number[];
  bytes: Uint8Array;
}

function prepare(name: string, t: SafetensorsInput): Prepared {
  const where = `encodeSafetensors: tensor ${JSON.stringify(name)}`;
  if (typeof t !== 'object' || t === null) throw new ArgumentError(`${where}: expected {dtype, shape, data}, got ${String(t)}`);
  const dtype = writableDType(name, String(t.dtype));
  if (!Array.isArray(t.shape)) throw new ArgumentError(`${where}: shape must be an array of non-negative integers, got ${String(t.shape)}`);
  const shape = [...t.shape];
  for (const d of shape) if (!Number.isSafeInteger(d) || d < 0) throw new ArgumentError(`${where}: invalid shape ${fmtShape(shape)} (dims must be non-negative integers)`);
  let n = 1;
  for (const d of shape) n *= d;
  const data = t.data;
  if (!data || typeof data.length !== 'number') throw new ArgumentError(`${where}: data must be an array-like of numbers`);
  if (data.length !== n) throw new ArgumentError(`${where}: ${data.length} values do not fill shape ${fmtShape(shape)} (${n} elements)`);
  let arr: SafetensorsData;
  switch (dtype) {
    case 'F32': arr = data instanceof Float32Array ? data : Float32Array.from(data); break;
    case 'F64': arr = data instanceof Float64Array ? data : Float64Array.from(data); break;
    case 'I32':
      if (!(data instanceof Int32Array)) {
        for (let i = 0; i < n; i++) {
          const v = data[i];
          if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) throw new ArgumentError(`${where}: I32 value ${v} at flat index ${i} is not an int32`);
        }
      }
      arr = data instanceof Int32Array ? data : Int32Array.from(data);
      break;
    case 'U8':
      if (!(data instanceof Uint8Array)) {
        for (let i = 0; i < n; i++) {
          const v = data[i];
          if (!Number.isInteger(v) || v < 0 || v > 255) throw new ArgumentError(`${where}: U8 value ${v} at flat index ${i} is not in 0..255`);
        }
      }
      arr = data instanceof Uint8Array ? data : Uint8Array.from(data);
      break;
    case 'BOOL': {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = data[i] ? 1 : 0;
      arr = b;
      break;
    }
  }
  let bytes: Uint8Array;
  if (LITTLE_ENDIAN || arr.BYTES_PER_ELEMENT === 1) {
    bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
  } else {
    bytes = new Uint8Array(arr.byteLength);
    const dv = new DataView(bytes.buffer);
    for (let i = 0; i < n; i++) {
      if (dtype === 'F32') dv.setFloat32(i * 4, arr[i], true);
      else if (dtype === 'F64') dv.setFloat64(i * 8, arr[i], true);
      else dv.setInt32(i * 4, arr[i], true);
    }
  }
  return { name, dtype, shape, bytes };
}

function checkMetadata(metadata: Record<string, string> | undefined): Record<string, string> | undefined {
  if (metadata === undefined) return undefined;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) throw new ArgumentError(`encodeSafetensors: metadata must be an object of strings`);
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new ArgumentError(`encodeSafetensors: metadata[${JSON.stringify(k)}] must be a string, got ${typeof v}`);
  }
  return metadata;
}

/**
 * Encodes host tensors. Tensors are laid out by element size (largest first) then name, so every
 * tensor starts at an offset aligned to its element size; the header is padded with spaces so
 * the byte buffer starts at a multiple of 8.
 */
export function encodeSafetensorsSync(tensors: Record<string, SafetensorsInput>, metadata?: Record<string, string>): Uint8Array {
  if (typeof tensors !== 'object' || tensors === null) throw new ArgumentError('encodeSafetensors: expected a record of tensors');
  const meta = checkMetadata(metadata);
  const prepared: Prepared[] = [];
  for (const name of Object.keys(tensors)) {
    if (name === METADATA_KEY) throw new ArgumentError(`encodeSafetensors: the name ${METADATA_KEY} is reserved for metadata`);
    prepared.push(prepare(name, tensors[name]));
  }
  prepared.sort((a, b) => WRITABLE_SIZE[b.dtype] - WRITABLE_SIZE[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = Object.create(null);
  if (meta && Object.keys(meta).length > 0) header[METADATA_KEY] = meta;
  let pos = 0;
  for (const p of prepared) {
    header[p.name] = { dtype: p.dtype, shape: p.shape, data_offsets: [pos, pos + p.bytes.length] };
    pos += p.bytes.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil((8 + json.length) / 8) * 8 - 8;
  if (padded !== json.length) {
    const j = new Uint8Array(padded).fill(0x20);
    j.set(json);
    json = j;
  }
  const out = new Uint8Array(8 + json.length + pos);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let off = 8 + json.length;
  for (const p of prepared) {
    out.set(p.bytes, off);
    off += p.bytes.length;
  }
  return out;
}

/**
 * Encodes host tensors (`{dtype, shape, data}`) or dubito {@link Tensor}s (read back with
 * `data()`, on any backend) into safetensors bytes.
 */
export async function encodeSafetensors(tensors: Record<string, SafetensorsInput | Tensor>, metadata?: Record<string, string>): Promise<Uint8Array> {
  if (typeof tensors !== 'object' || tensors === null) throw new ArgumentError('encodeSafetensors: expected a record of tensors');
  const host: Record<string, SafetensorsInput> = Object.create(null);
  for (const name of Object.keys(tensors)) {
    const t = tensors[name];
    if (isTensorLike(t)) host[name] = { dtype: t.dtype, shape: [...t.shape], data: await t.data() };
    else host[name] = t;
  }
  return encodeSafetensorsSync(host, metadata);
}

/** The dubito dtype a decoded entry becomes as a tensor (U8 widens to int32). */
export function entryDType(e: SafetensorsEntry): DType {
  switch (e.dtype) {
    case 'F32': return 'float32';
    case 'F64': return 'float64';
    case 'BOOL': return 'bool';
    default: return 'int32';
  }
}

/** Creates a tensor from a decoded entry on `backend` (default: the current backend). */
export function entryToTensor(e: SafetensorsEntry, backend?: Backend): Tensor {
  return fromHost(e.data, e.shape, entryDType(e), backend);
}

/** Creates tensors for every decoded entry (dispose them, or create them inside `tidy`). */
export function safetensorsToTensors(decoded: DecodedSafetensors, backend?: Backend): Record<string, Tensor> {
  const out: Record<string, Tensor> = Object.create(null);
  for (const [name, e] of Object.entries(decoded.tensors)) out[name] = entryToTensor(e, backend);
  return out;
}
