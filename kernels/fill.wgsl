// Fills the output with one value (given as raw bits so f32, i32 and u32 share the kernel).
struct Params {
  n: u32,
  bits: u32,
}

@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<uniform> params: Params;

@compute @workgroup_size(WG_1D)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  if (i >= params.n) { return; }
  out[i] = params.bits;
}
