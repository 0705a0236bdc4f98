// Fills `out[0..n)` with random numbers from stream (seed, offset); composed with the philox and
// grid preludes. One invocation per element at `grid_index` (a dispatch may be 2-D when
// n / WG_1D > 65535).
//
// kind 0 (uniform):   out = low + f32(f32(high - low) * u),  u = rand_uniform_from_bits(w)
// kind 1 (normal):    out = low + f32(high * z)  (low = mean, high = std; 0 and 1 give z itself)
// kind 2 (bernoulli): out = 1.0 where u < p, else 0.0
// Bit-identical to randomUniform / randomNormal / randomBernoulli in engine/random/philox.ts.
// Params are packed by field name (engine/webgpu/kernel-source.ts).

// Params (generated from PHILOX_STREAM in engine/ops/random.ts): n, seed_lo, seed_hi, offset_lo,
// offset_hi, then kind, p, low, high.

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<uniform> params: Params;

// Called by the `elementwise` prelude's entry point for each i < params.n.
fn element(i: u32) {
  let w = rand_block_for_element(i, vec2<u32>(params.seed_lo, params.seed_hi),
                                 vec2<u32>(params.offset_lo, params.offset_hi));
  let j = i & 3u;
  // A run-time zero the compiler cannot see through (n < 2^31 always: a storage binding holds
  // fewer than 2^30 f32s); it keeps the scaling products from being fused into an FMA.
  let zero = params.n >> 31u;
  var v: f32;
  if (params.kind == 1u) {
    let base = j & 2u;
    let z = rand_normal_from_bits(w[base], w[base + 1u], (j & 1u) == 1u);
    v = params.low + rand_opaque_f32(params.high * z, zero);
  } else {
    let u = rand_uniform_from_bits(w[j]);
    if (params.kind == 2u) {
      v = select(0.0, 1.0, u < params.p);
    } else {
      v = params.low + rand_opaque_f32((params.high - params.low) * u, zero);
    }
  }
  out[i] = v;
}
