// out[out_offset + Σ_d c_d · out_strides[d]] = x[offset + Σ_d c_d · strides[d]] where (c_d) is i
// unravelled over `shape`. With OUT_STRIDED = false the output is written contiguously
// (out[i]): permute/transpose, broadcastTo (stride 0) and slice (offset). With OUT_STRIDED the
// copy lands in a strided region of a larger output: concat and pad write each input there.
// Prelude gives T (storage type).
override OUT_STRIDED: bool = false;

struct Params {
  n: u32,
  rank: u32,
  offset: u32,
  out_offset: u32,
  shape: Shape,
  strides: Shape,
  out_strides: Shape,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> out: array<T>;
@group(0) @binding(2) var<uniform> params: Params;

// Called by the `elementwise` prelude's entry point for each i < params.n.
fn element(i: u32) {
  var rem = i;
  var src = params.offset;
  var dst = params.out_offset;
  for (var d = i32(params.rank) - 1; d >= 0; d--) {
    let s = dim(params.shape, u32(d));
    let c = rem % s;
    src += c * dim(params.strides, u32(d));
    if (OUT_STRIDED) {
      dst += c * dim(params.out_strides, u32(d));
    }
    rem = rem / s;
  }
  if (OUT_STRIDED) {
    out[dst] = x[src];
  } else {
    out[i] = x[src];
  }
}
