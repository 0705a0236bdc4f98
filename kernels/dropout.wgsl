// Inverted dropout with a counter-based, row-aligned mask. The input is viewed as rows of
// `row_len` elements (row = one sample). Element j of row r uses Philox block
// offset + r·⌈row_len/4⌉ + ⌊j/4⌋, word j mod 4, of stream `seed`: every row starts on a fresh
// block, so rows t·B..t·B+B−1 of a (T·B)-row MC-dropout batch get exactly the masks a separate
// pass over B rows at offset + t·B·⌈row_len/4⌉ would get. The element is dropped when that
// uniform is < p, otherwise scaled by `scale` = f32(1/(1−p)).
// Composed with the philox and grid preludes. Bit-identical to the CPU reference.
// Params (generated from PHILOX_STREAM in engine/ops/random.ts): n, seed_lo, seed_hi, offset_lo,
// offset_hi, then p, scale, row_len.

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

// Called by the `elementwise` prelude's entry point for each i < params.n.
fn element(i: u32) {
  let row = i / params.row_len;
  let j = i - row * params.row_len;
  let add = row * ((params.row_len + 3u) / 4u) + (j >> 2u);
  let lo = params.offset_lo + add;
  let hi = params.offset_hi + select(0u, 1u, lo < add);
  let w = philox4x32_10(vec4<u32>(lo, hi, 0u, 0u), vec2<u32>(params.seed_lo, params.seed_hi));
  let u = rand_uniform_from_bits(w[j & 3u]);
  out[i] = select(0.0, x[i] * params.scale, u >= params.p);
}
