// The kernel-source builder (engine/webgpu/kernel-source.ts): uniform packing by field name from
// the reflected WGSL layout, the generated header, interning by content, and static checks that
// shared WGSL and shared numbers are written once. CPU only (wgsl_reflect parses on the host).
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { UniformError } from '../engine/errors.js';
import { BINARY_OPS, MAX_RANK, REDUCE_OPS, UNARY_OPS, WG_1D, constName } from '../engine/webgpu/kernel-constants.js';
import { kernelFamily, kernelFromSource, packUniforms, preludeSource } from '../engine/webgpu/kernel-source.js';

const BODY = `
struct Params {
  n: u32,
  alpha: f32,
  k: i32,
  shape: Shape,
  _pad: u32,
  t: u32,
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(WG_1D)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  out[gid.x] = f32(params.n) + params.alpha + f32(params.k) + f32(dim(params.shape, 0u)) + f32(params.t);
}
`;
const K = kernelFamily({ name: 'pack_test', source: BODY, preludes: ['shape'] }).variant();

describe('packUniforms', () => {
  it('writes each field at its reflected offset with its type (u32, f32, i32, arrays of vec4<u32>)', () => {
    const u = packUniforms(K, 'params', { n: 7, alpha: 0.1, k: -3, shape: [2, 3, 5, 7, 11], t: 0xffffffff });
    // Layout: n@0 alpha@4 k@8, shape (align 16) @16..48, _pad@48, t@52; size 64.
    expect(u.length).toBe(16);
    expect(u[0]).toBe(7);
    expect(new Float32Array(u.buffer)[1]).toBe(Math.fround(0.1));
    expect(new Int32Array(u.buffer)[2]).toBe(-3);
    expect(u[3]).toBe(0);
    expect(Array.from(u.slice(4, 12))).toEqual([2, 3, 5, 7, 11, 0, 0, 0]);
    expect(u[12]).toBe(0); // padding field left out: 0
    expect(u[13]).toBe(0xffffffff);
  });

  it('a missing field is a UniformError naming the kernel and the field', () => {
    expect(() => packUniforms(K, 'params', { n: 1, alpha: 0, k: 0, shape: [] })).toThrow(UniformError);
    expect(() => packUniforms(K, 'params', { n: 1, alpha: 0, k: 0, shape: [] })).toThrow(/kernel 'pack_test'.*'params\.t' was not given/);
  });

  it('an unknown field is a UniformError naming the kernel and the field', () => {
    const f = () => packUniforms(K, 'params', { n: 1, alpha: 0, k: 0, shape: [], t: 0, rank: 2 });
    expect(f).toThrow(UniformError);
    expect(f).toThrow(/kernel 'pack_test'.*no field 'rank'/);
  });

  it('an array longer than declared, or a value of the wrong kind, is a UniformError', () => {
    const long = () => packUniforms(K, 'params', { n: 1, alpha: 0, k: 0, shape: new Array(MAX_RANK + 1).fill(1), t: 0 });
    expect(long).toThrow(UniformError);
    expect(long).toThrow(/'params\.shape' holds at most 8 values, got 9/);
    expect(() => packUniforms(K, 'params', { n: [1], alpha: 0, k: 0, shape: [], t: 0 })).toThrow(/'params\.n' is a u32 scalar/);
    expect(() => packUniforms(K, 'params', { n: 1, alpha: 0, k: 0, shape: 3, t: 0 })).toThrow(/'params\.shape' is an array/);
  });

  it('an unknown binding is a UniformError', () => {
    expect(() => packUniforms(K, 'nope', {})).toThrow(/kernel 'pack_test': no uniform binding named 'nope'/);
  });

  it('a generated struct (TS field list) packs the same way', () => {
    const G = kernelFamily({
      name: 'gen_struct',
      source: '@group(0) @binding(0) var<uniform> p: Geo;\n@group(0) @binding(1) var<storage, read_write> o: array<i32>;\n@compute @workgroup_size(1) fn main() { o[0] = p.b + i32(p.a); }\n',
      structs: { Geo: [['a', 'u32'], ['b', 'i32'], ['c', 'f32']] },
    }).variant();
    const u = packUniforms(G, 'p', { a: 1, b: -1, c: 2.5 });
    expect(u[0]).toBe(1);
    expect(new Int32Array(u.buffer)[1]).toBe(-1);
    expect(new Float32Array(u.buffer)[2]).toBe(2.5);
  });
});

describe('kernel-source builder', () => {
  it('interns kernels by content and memoises variants', () => {
    const fam = kernelFamily({ name: 'intern_test', source: BODY, preludes: ['shape'] });
    const a = fam.variant({ types: { T: 'f32' } });
    expect(fam.variant({ types: { T: 'f32' } })).toBe(a);
    expect(fam.variant({ types: { T: 'i32' } })).not.toBe(a);
    // Same text under another family name: the same kernel (the cache key is the content).
    const other = kernelFamily({ name: 'intern_test_2', source: BODY, preludes: ['shape'] }).variant({ types: { T: 'f32' } });
    expect(other).toBe(a);
    expect(kernelFromSource('x', a.code)).toBe(a);
  });

  it('generates the shared constants, the Shape alias and the op codes from the TS table', () => {
    const src = kernelFamily({ name: 'hdr', source: '', opCodes: BINARY_OPS }).variant({ types: { TA: 'f32' }, consts: { OB: 4 } }).code;
    expect(src).toContain(`const MAX_RANK: u32 = ${MAX_RANK}u;`);
    expect(src).toContain(`const WG_1D: u32 = ${WG_1D}u;`);
    expect(src).toContain(`alias Shape = array<vec4<u32>, ${MAX_RANK / 4}>;`);
    for (const [k, v] of Object.entries(BINARY_OPS)) expect(src).toContain(`const OP_${constName(k)}: u32 = ${v}u;`);
    expect(src).toContain('alias TA = f32;');
    expect(src).toContain('const OB: u32 = 4u;');
  });

  it('includes prelude dependencies once, in order', () => {
    const src = preludeSource(['special', 'ieee']);
    expect(src.match(/fn is_nan_f32/g)).toHaveLength(1);
    expect(src.indexOf('fn is_nan_f32')).toBeLessThan(src.indexOf('fn lgamma_f32'));
  });
});

describe('kernels/ write shared WGSL and shared numbers once', () => {
  const dir = new URL('../kernels/', import.meta.url);
  const files = readdirSync(dir).filter((f) => f.endsWith('.wgsl'));
  const preludeFns = ['grid_index', 'dim', 'f32_from_bits', 'is_nan_f32', 'is_inf_f32', 'pow_f32', 'philox4x32_10'];

  it('no kernel file redefines a prelude function or spells the Shape type or the 1-D index by hand', () => {
    for (const f of files) {
      const src = readFileSync(new URL(f, dir), 'utf8');
      for (const fn of preludeFns) expect(src, `${f} defines ${fn}`).not.toMatch(new RegExp(`fn ${fn}\\s*\\(`));
      expect(src, `${f} spells array<vec4<u32>, 2>`).not.toContain('array<vec4<u32>, 2>');
      expect(src, `${f} computes the 1-D grid index by hand`).not.toMatch(/gid\.y \* \(?nwg\.x/);
      expect(src, `${f} has a literal workgroup size 64`).not.toMatch(/@workgroup_size\(64\b/);
    }
  });

  it('switch cases on OP use the generated OP_<NAME> constants, not numbers', () => {
    for (const f of ['unary.wgsl', 'binary.wgsl', 'reduce.wgsl']) {
      const src = readFileSync(new URL(f, dir), 'utf8');
      expect(src, f).not.toMatch(/case \d+u/);
      expect(src, f).toMatch(/case OP_/);
    }
    // Every table entry is used by its kernel (no stale codes).
    const use = (f: string, table: Record<string, number>) => {
      const src = readFileSync(new URL(f, dir), 'utf8');
      for (const k of Object.keys(table)) expect(src, `${f} OP_${constName(k)}`).toContain(`OP_${constName(k)}`);
    };
    use('unary.wgsl', UNARY_OPS);
    use('binary.wgsl', BINARY_OPS);
    use('reduce.wgsl', REDUCE_OPS);
  });
});
