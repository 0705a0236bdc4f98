// Shapes and strides reach kernels as `Shape` (generated: array<vec4<u32>, MAX_RANK / 4>, one u32
// per dim, 16-byte aligned as uniform arrays must be). `dim(v, d)` reads dim d.
fn dim(v: Shape, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}
