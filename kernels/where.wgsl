// where(cond, a, b) with broadcasting: out = cond != 0 ? a : b. Prelude gives T (storage type of a, b, out).
struct Params {
  n: u32,
  rank: u32,
  shape: Shape,
  c_strides: Shape,
  a_strides: Shape,
  b_strides: Shape,
}

@group(0) @binding(0) var<storage, read> cond: array<u32>;
@group(0) @binding(1) var<storage, read> a: array<T>;
@group(0) @binding(2) var<storage, read> b: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;
@group(0) @binding(4) var<uniform> params: Params;

// Called by the `elementwise` prelude's entry point for each i < params.n.
fn element(i: u32) {
  var ic = 0u;
  var ia = 0u;
  var ib = 0u;
  var rem = i;
  for (var d = i32(params.rank) - 1; d >= 0; d--) {
    let s = dim(params.shape, u32(d));
    let c = rem % s;
    rem = rem / s;
    ic += c * dim(params.c_strides, u32(d));
    ia += c * dim(params.a_strides, u32(d));
    ib += c * dim(params.b_strides, u32(d));
  }
  out[i] = select(b[ib], a[ia], cond[ic] != 0u);
}
