// dtype conversion. Prelude gives TA (input storage) and TO (output storage).
// TO_BOOL: output is bool (u32 0/1), true where the input is non-zero.
// Otherwise: numeric conversion (float -> int truncates toward zero, saturating; NaN -> 0).
override TO_BOOL: bool = false;

struct Params {
  n: u32,
}

@group(0) @binding(0) var<storage, read> x: array<TA>;
@group(0) @binding(1) var<storage, read_write> out: array<TO>;
@group(0) @binding(2) var<uniform> params: Params;

// Called by the `elementwise` prelude's entry point for each i < params.n.
fn element(i: u32) {
  let v = x[i];
  if (TO_BOOL) {
    out[i] = TO(select(1u, 0u, v == TA(0)));  // NaN -> true (`!=` may compile to an ordered compare)
  } else {
    // float -> int: WGSL truncates and saturates; NaN is implementation-defined, so pin it to 0.
    let nan = is_nan_f32(f32(v));
    out[i] = select(TO(v), TO(0), nan);
  }
}
