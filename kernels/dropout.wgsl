// Inverted dropout with a counter-based mask: element i is dropped when the Philox uniform of
// stream (seed, offset) at index i is < p, otherwise scaled by `scale` = f32(1/(1−p)).
// Requires kernels/philox.wgsl prepended. Bit-identical to the CPU reference (a single
// correctly rounded f32 multiply per element).
struct Params {
  n: u32,
  seed_lo: u32,
  seed_hi: u32,
  offset_lo: u32,
  offset_hi: u32,
  p: f32,
  scale: f32,
  _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * (nwg.x * 64u);
  if (i >= params.n) { return; }
  let w = rand_block_for_element(i, vec2<u32>(params.seed_lo, params.seed_hi),
                                 vec2<u32>(params.offset_lo, params.offset_hi));
  let u = rand_uniform_from_bits(w[i & 3u]);
  out[i] = select(0.0, x[i] * params.scale, u >= params.p);
}
