// Prelude `elementwise`: the entry point of a 1-D kernel with one invocation per element. The
// kernel declares a uniform `params` whose field `n` is the element count, and `fn element(i: u32)`.
@compute @workgroup_size(WG_1D)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  if (i < params.n) {
    element(i);
  }
}
