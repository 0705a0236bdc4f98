// The strided copy of kernels/strided-copy.wgsl for patterns whose collapsed rank exceeds
// MAX_RANK: the geometry comes from a storage buffer instead of the uniform, so any rank works in
// one dispatch. geom = [shape (rank), strides (rank), out_strides (rank, only with OUT_STRIDED)].
// Prelude gives T (storage type).
override OUT_STRIDED: bool = false;

struct Params {
  n: u32,
  rank: u32,
  offset: u32,
  out_offset: u32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> out: array<T>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> geom: array<u32>;

// Called by the `elementwise` prelude's entry point for each i < params.n.
fn element(i: u32) {
  let r = params.rank;
  var rem = i;
  var src = params.offset;
  var dst = params.out_offset;
  for (var d = i32(r) - 1; d >= 0; d--) {
    let s = geom[u32(d)];
    let c = rem % s;
    src += c * geom[r + u32(d)];
    if (OUT_STRIDED) {
      dst += c * geom[2u * r + u32(d)];
    }
    rem = rem / s;
  }
  if (OUT_STRIDED) {
    out[dst] = x[src];
  } else {
    out[i] = x[src];
  }
}
