// Batched int32 matmul: out[z] = A[z] x B[z] with wrapping two's-complement arithmetic (WGSL i32
// `*` and `+` wrap, as Math.imul and `| 0` do on the CPU reference). One invocation per output
// element, looping over K: integer products are rare and small next to the float GEMM path.
// Params, TRANS_A and TRANS_B come from the `matmul` prelude.

@group(0) @binding(0) var<storage, read> a: array<i32>;
@group(0) @binding(1) var<storage, read> b: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<i32>;
@group(0) @binding(3) var<uniform> params: Params;


@compute @workgroup_size(WG_1D)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  let mn = params.M * params.N;
  if (i >= mn * params.batch) { return; }
  let z = i / mn;
  let r = i % mn;
  let m = r / params.N;
  let n = r % params.N;
  let aBase = z * params.a_batch_stride;
  let bBase = z * params.b_batch_stride;
  var acc: i32 = 0;
  for (var k = 0u; k < params.K; k++) {
    var ia = aBase + m * params.K + k;
    if (TRANS_A) { ia = aBase + k * params.M + m; }
    var ib = bBase + k * params.N + n;
    if (TRANS_B) { ib = bBase + n * params.K + k; }
    acc = acc + a[ia] * b[ib];
  }
  out[i] = acc;
}
