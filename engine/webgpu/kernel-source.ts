// The one kernel-source builder: composes a kernel's WGSL from a generated header (the shared
// constants of kernel-constants.ts, op codes, type aliases, specialisation constants, uniform
// structs declared in TS), the prelude files it declares, and its own file; interns the result
// by content; and packs uniform structs by field name from wgsl_reflect's reflection of it.
// The runtime class comes from the ESM build; its type from the package's own declarations, so
// the shipped .d.ts files name a module that a consumer's TypeScript resolves.
import { WgslReflect as WgslReflectImpl } from 'wgsl_reflect/wgsl_reflect.module.js';
import type { WgslReflect } from 'wgsl_reflect';
import elementwiseWgsl from '../../kernels/prelude/elementwise.wgsl';
import gridWgsl from '../../kernels/prelude/grid.wgsl';
import ieeeWgsl from '../../kernels/prelude/ieee.wgsl';
import indexCheckWgsl from '../../kernels/prelude/index-check.wgsl';
import matmulPreludeWgsl from '../../kernels/prelude/matmul.wgsl';
import philoxWgsl from '../../kernels/prelude/philox.wgsl';
import shapeWgsl from '../../kernels/prelude/shape.wgsl';
import specialWgsl from '../../kernels/prelude/special.wgsl';
import { KernelCompileError, UniformError } from '../errors.js';
import { MAX_RANK, SHARED_CONSTANTS, constName } from './kernel-constants.js';

/** A WGSL kernel as text: a name (for messages and labels) and its complete source. */
export interface KernelSource {
  readonly name: string;
  readonly code: string;
}

/**
 * Shared WGSL snippets under kernels/prelude/, each included at most once per kernel, in this
 * order (a prelude may use the ones listed before it):
 * - `grid`: `grid_index(gid, nwg)`, the linear index of a 1-D dispatch folded into y by `grid1D`.
 * - `elementwise`: the entry point `main` of a one-invocation-per-element kernel: calls the
 *   kernel's `fn element(i: u32)` for every i < params.n (needs `grid`).
 * - `shape`: `dim(v: Shape, d)`, component d of a packed shape/stride array.
 * - `ieee`: `f32_from_bits`, `is_nan_f32`, `pow_f32` (JS Math.pow semantics).
 * - `special`: lgamma/digamma/trigamma/erf/erfc in f32 (needs `ieee`).
 * - `philox`: Philox-4x32-10 counter-based random bits and their uniform/normal transforms.
 * - `matmul`: the batched-GEMM `Params` struct and the TRANS_A / TRANS_B overrides.
 * - `index_check`: the `err_flag` binding and `flag_bad_index(check, value, position)`, the
 *   device-side IndexError record (see `WebGPUBackend.indexCheck`).
 */
export type PreludeName = 'grid' | 'elementwise' | 'shape' | 'ieee' | 'special' | 'philox' | 'matmul' | 'index_check';

const PRELUDES: Record<PreludeName, { code: string; needs: PreludeName[] }> = {
  grid: { code: gridWgsl, needs: [] },
  elementwise: { code: elementwiseWgsl, needs: ['grid'] },
  shape: { code: shapeWgsl, needs: [] },
  ieee: { code: ieeeWgsl, needs: [] },
  special: { code: specialWgsl, needs: ['ieee'] },
  philox: { code: philoxWgsl, needs: [] },
  matmul: { code: matmulPreludeWgsl, needs: [] },
  index_check: { code: indexCheckWgsl, needs: [] },
};
const PRELUDE_ORDER: PreludeName[] = ['grid', 'elementwise', 'shape', 'ieee', 'special', 'philox', 'matmul', 'index_check'];

/** A uniform struct field declared in TS: `[name, wgslType]` (4-byte scalars, or `Shape`). */
export type StructField = readonly [string, 'u32' | 'i32' | 'f32' | 'Shape'];

export interface KernelFamilyDef {
  /** Family name; variants are named `<name>_<types>_<consts>`. */
  readonly name: string;
  /** The kernel's own WGSL (a file under kernels/). */
  readonly source: string;
  /** Shared snippets it uses (dependencies are added). */
  readonly preludes?: readonly PreludeName[];
  /** Op-code table (kernel-constants.ts) emitted as `const OP_<NAME>: u32 = <code>u;`. */
  readonly opCodes?: Readonly<Record<string, number>>;
  /** Uniform structs generated from TS field lists (shared layouts such as the conv geometry). */
  readonly structs?: Readonly<Record<string, readonly StructField[]>>;
}

/** A specialisation of a family: `alias` types and `const NAME: u32` values. */
export interface KernelVariant {
  readonly types?: Readonly<Record<string, string>>;
  readonly consts?: Readonly<Record<string, number>>;
}

/** Values of a uniform struct's fields by name: numbers for scalars, number arrays for arrays. */
export type UniformValues = Readonly<Record<string, number | readonly number[]>>;

interface UniformField {
  readonly name: string;
  /** Word offset of the field (scalars) or of its first element (arrays). */
  readonly offset: number;
  readonly kind: 'u32' | 'i32' | 'f32';
  /** Arrays: number of scalar components it holds; scalars: 0. */
  readonly length: number;
  /** Arrays: components per element and words between elements. */
  readonly comps: number;
  readonly strideWords: number;
}

interface UniformLayout {
  readonly words: number;
  readonly fields: readonly UniformField[];
}

let nextKernelId = 1;

/**
 * A composed kernel. Instances are interned by source text (`kernelFromSource`), so a kernel's
 * identity is its content: the backend caches pipelines by `id` (+ entry and constants), and the
 * reflection and uniform layouts computed here are computed once per distinct source.
 */
export class Kernel implements KernelSource {
  readonly id = nextKernelId++;
  private reflection: WgslReflect | null = null;
  private readonly layouts = new Map<string, UniformLayout>();

  constructor(
    readonly name: string,
    readonly code: string,
  ) {}

  /** wgsl_reflect's view of the source (parsed once; a parse failure is a KernelCompileError). */
  reflect(): WgslReflect {
    if (!this.reflection) {
      try {
        this.reflection = new WgslReflectImpl(this.code);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        const m = /line[: ]+(\d+)/i.exec(msg);
        throw new KernelCompileError(this.name, m ? Number(m[1]) : undefined, msg);
      }
    }
    return this.reflection;
  }

  /** The field offsets of the uniform struct bound as `binding` (computed once). */
  uniformLayout(binding: string): UniformLayout {
    let l = this.layouts.get(binding);
    if (!l) {
      l = reflectLayout(this, binding);
      this.layouts.set(binding, l);
    }
    return l;
  }
}

const interned = new Map<string, Kernel>();

/** The kernel with this source text (one object per distinct text). */
export function kernelFromSource(name: string, code: string): Kernel {
  let k = interned.get(code);
  if (!k) interned.set(code, (k = new Kernel(name, code)));
  return k;
}

/** Interns a plain `{ name, code }` (e.g. a test's hand-written kernel). */
export function asKernel(k: KernelSource): Kernel {
  return k instanceof Kernel ? k : kernelFromSource(k.name, k.code);
}

/** The generated header: shared constants, the `Shape` alias, op codes, aliases, constants, structs. */
function header(def: KernelFamilyDef, v: KernelVariant): string {
  const lines: string[] = [];
  for (const [k, n] of Object.entries(SHARED_CONSTANTS)) lines.push(`const ${k}: u32 = ${n}u;`);
  lines.push(`alias Shape = array<vec4<u32>, ${MAX_RANK / 4}>;`);
  for (const [k, n] of Object.entries(def.opCodes ?? {})) lines.push(`const OP_${constName(k)}: u32 = ${n}u;`);
  for (const [k, t] of Object.entries(v.types ?? {})) lines.push(`alias ${k} = ${t};`);
  for (const [k, n] of Object.entries(v.consts ?? {})) lines.push(`const ${k}: u32 = ${n}u;`);
  for (const [s, fields] of Object.entries(def.structs ?? {})) {
    lines.push(`struct ${s} {`, ...fields.map(([f, t]) => `  ${f}: ${t},`), '}');
  }
  return lines.join('\n') + '\n';
}

/** The prelude files `names` need, dependencies first, each once. */
function preludeCode(names: readonly PreludeName[]): string {
  const want = new Set<PreludeName>();
  const add = (n: PreludeName) => {
    if (want.has(n)) return;
    for (const d of PRELUDES[n].needs) add(d);
    want.add(n);
  };
  names.forEach(add);
  return PRELUDE_ORDER.filter((n) => want.has(n)).map((n) => PRELUDES[n].code).join('\n');
}

/** Composes the full source of a family variant (pure; `KernelFamily.variant` memoises it). */
export function composeKernelSource(def: KernelFamilyDef, v: KernelVariant = {}): string {
  return header(def, v) + preludeCode(def.preludes ?? []) + '\n' + def.source;
}

/** A kernel file and what it needs; `variant()` gives the composed, interned kernel. */
export class KernelFamily {
  private readonly variants = new Map<string, Kernel>();
  constructor(readonly def: KernelFamilyDef) {}

  /** The kernel specialised with `types` / `consts` (memoised per specialisation). */
  variant(v: KernelVariant = {}): Kernel {
    const key = variantKey(v);
    let k = this.variants.get(key);
    if (!k) {
      k = kernelFromSource(key ? `${this.def.name}_${key}` : this.def.name, composeKernelSource(this.def, v));
      this.variants.set(key, k);
    }
    return k;
  }
}

function variantKey(v: KernelVariant): string {
  let key = '';
  if (v.types) for (const k in v.types) key += (key ? '_' : '') + v.types[k];
  if (v.consts) for (const k in v.consts) key += (key ? '_' : '') + k + v.consts[k];
  return key;
}

/** Declares a kernel family (see {@link KernelFamilyDef}). */
export function kernelFamily(def: KernelFamilyDef): KernelFamily {
  return new KernelFamily(def);
}

/** WGSL text of the preludes `names` (with their dependencies) after the generated shared header, for tests that build their own kernels. */
export function preludeSource(names: readonly PreludeName[]): string {
  return composeKernelSource({ name: 'prelude', source: '', preludes: names });
}

// ---- uniforms by name ----

function reflectLayout(kernel: Kernel, binding: string): UniformLayout {
  const r = kernel.reflect();
  const u = r.uniforms.find((x) => x.name === binding);
  if (!u) throw new UniformError(`kernel '${kernel.name}': no uniform binding named '${binding}'`);
  const st = u.type as unknown as { name: string; size: number; members?: ReflectMember[] };
  if (!st.members) throw new UniformError(`kernel '${kernel.name}': uniform '${binding}' is a ${st.name}, not a struct`);
  const fields: UniformField[] = [];
  for (const m of st.members) {
    const t = m.type;
    if (isScalar(t.name)) {
      fields.push({ name: m.name, offset: m.offset / 4, kind: t.name, length: 0, comps: 1, strideWords: 1 });
      continue;
    }
    if (t.name === 'array' && t.format && t.count) {
      const f = t.format;
      const comps = isScalar(f.name) ? 1 : /^vec([234])$/.exec(f.name) ? Number(f.name[3]) : 0;
      const kind = comps === 1 ? f.name : f.format?.name;
      if (comps && kind && isScalar(kind)) {
        fields.push({ name: m.name, offset: m.offset / 4, kind, length: t.count * comps, comps, strideWords: (t.stride ?? 16) / 4 });
        continue;
      }
    }
    throw new UniformError(`kernel '${kernel.name}': uniform field '${binding}.${m.name}' has a type the packer does not support (scalars u32/i32/f32 and arrays of them or of their vec2/3/4)`);
  }
  return { words: Math.max(4, Math.ceil(st.size / 16) * 4), fields };
}

interface ReflectType {
  name: string;
  format?: ReflectType;
  count?: number;
  stride?: number;
}
interface ReflectMember {
  name: string;
  offset: number;
  type: ReflectType;
}

function isScalar(t: string | undefined): t is 'u32' | 'i32' | 'f32' {
  return t === 'u32' || t === 'i32' || t === 'f32';
}

/**
 * The bytes of the uniform struct bound as `binding` in `kernel`, from its fields by name.
 * Every field must be given except padding fields (names starting with `_`, written as 0);
 * arrays may be shorter than declared (the rest is 0). A missing, unknown or ill-typed field, or
 * an array longer than declared, is a {@link UniformError} naming the kernel and the field.
 */
export function packUniforms(kernel: Kernel, binding: string, values: UniformValues): Uint32Array {
  const L = kernel.uniformLayout(binding);
  const buf = new ArrayBuffer(L.words * 4);
  const u = new Uint32Array(buf);
  let i32: Int32Array | null = null;
  let f32: Float32Array | null = null;
  let used = 0;
  for (const f of L.fields) {
    const v = values[f.name];
    if (v === undefined) {
      if (f.name.startsWith('_')) continue;
      throw new UniformError(`kernel '${kernel.name}': uniform field '${binding}.${f.name}' was not given`);
    }
    used++;
    const view = f.kind === 'u32' ? u : f.kind === 'i32' ? (i32 ??= new Int32Array(buf)) : (f32 ??= new Float32Array(buf));
    if (f.length === 0) {
      if (typeof v !== 'number') throw new UniformError(`kernel '${kernel.name}': uniform field '${binding}.${f.name}' is a ${f.kind} scalar, got ${Array.isArray(v) ? 'an array' : typeof v}`);
      view[f.offset] = v;
    } else {
      if (!Array.isArray(v)) throw new UniformError(`kernel '${kernel.name}': uniform field '${binding}.${f.name}' is an array of ${f.length} ${f.kind}, got ${typeof v}`);
      if (v.length > f.length) throw new UniformError(`kernel '${kernel.name}': uniform field '${binding}.${f.name}' holds at most ${f.length} values, got ${v.length}`);
      for (let k = 0; k < v.length; k++) view[f.offset + Math.floor(k / f.comps) * f.strideWords + (k % f.comps)] = v[k];
    }
  }
  if (used !== Object.keys(values).length) {
    const known = new Set(L.fields.map((f) => f.name));
    const extra = Object.keys(values).filter((k) => !known.has(k));
    throw new UniformError(`kernel '${kernel.name}': uniform '${binding}' has no field${extra.length > 1 ? 's' : ''} ${extra.map((e) => `'${e}'`).join(', ')} (fields: ${[...known].join(', ')})`);
  }
  return u;
}
