// Fills the output with one value (given as raw bits so f32, i32 and u32 share the kernel).
struct Params {
  n: u32,
  bits: u32,
}

@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<uniform> params: Params;

// Called by the `elementwise` prelude's entry point for each i < params.n.
fn element(i: u32) {
  out[i] = params.bits;
}
