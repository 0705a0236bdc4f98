// The linear index of a 1-D dispatch: `grid1D(n)` folds workgroup counts above 65535 into y, so
// invocation (x, y) handles element x + y · (num_workgroups.x · WG_1D). Kernels using it declare
// `@compute @workgroup_size(WG_1D)`.
fn grid_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG_1D;
}
