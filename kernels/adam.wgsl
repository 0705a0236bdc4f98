// Fused Adam / AdamW update: one invocation per element reads p, grad, m, v (and vmax for
// AMSGrad) and writes the new parameter, first and second moments. Same f32 operations, in
// the same order, as the unfused op-by-op update in nn/optim/adam.ts (each line below is one
// op there), so results match it.
override FIRST: bool = false;     // no moments yet (first step): m = (1−β₁)d, v = (1−β₂)d²
override AMSGRAD: bool = false;   // use max(vmax, v) in the denominator (vmax given unless FIRST)
override MAXIMIZE: bool = false;  // d = −grad
override WD_MODE: u32 = 0u;       // 0 none, 1 L2 (d += wd·p), 2 decoupled (p ← p·(1 − lr·wd))

struct Params {
  n: u32,
  b1: f32,
  omb1: f32,
  b2: f32,
  omb2: f32,
  sqrt_bc2: f32,
  eps: f32,
  lr_bc1: f32,
  wd: f32,
  decay: f32,
}

@group(0) @binding(0) var<storage, read> p: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> m0: array<f32>;
@group(0) @binding(3) var<storage, read> v0: array<f32>;
@group(0) @binding(4) var<storage, read> vmax0: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_p: array<f32>;
@group(0) @binding(6) var<storage, read_write> out_m: array<f32>;
@group(0) @binding(7) var<storage, read_write> out_v: array<f32>;
@group(0) @binding(8) var<uniform> params: Params;

@compute @workgroup_size(WG_1D)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  if (i >= params.n) { return; }
  var d = grad[i];
  if (MAXIMIZE) { d = d * -1.0; }
  var w = p[i];
  if (WD_MODE == 1u) { d = d + w * params.wd; }
  if (WD_MODE == 2u) { w = w * params.decay; }
  let dd = d * d;
  var m: f32;
  var v: f32;
  if (FIRST) {
    m = d * params.omb1;
    v = dd * params.omb2;
  } else {
    m = m0[i] * params.b1 + d * params.omb1;
    v = v0[i] * params.b2 + dd * params.omb2;
  }
  out_m[i] = m;
  out_v[i] = v;
  var vu = v;
  if (AMSGRAD && !FIRST) {
    let a = vmax0[i];
    vu = select(max(a, v), a + v, is_nan_f32(a) || is_nan_f32(v));  // NaN propagates, as `maximum`
  }
  let denom = sqrt(vu) / params.sqrt_bc2 + params.eps;
  out_p[i] = w - (m / denom) * params.lr_bc1;
}
