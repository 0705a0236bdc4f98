// Fused optimiser steps (ops `adamStep` and `sgdStep`, engine/ops/optim-kernels.ts): one
// invocation per element reads the parameter, its gradient and the optimiser state and writes
// the new parameter and state. The f32 operations and their order are those of the CPU
// reference in engine/ops/optim-kernels.ts, one line per rounding step there. The uniform structs
// AdamParams / SgdParams are generated from the TS field lists there (n, then the scalars).

// ---- Adam / AdamW (torch.optim.Adam / AdamW) ----
override FIRST: bool = false;     // no state yet (first step): m = (1−β₁)d, v = (1−β₂)d², buf = d
override AMSGRAD: bool = false;   // use max(vmax, v) in the denominator (vmax given unless FIRST)
override MAXIMIZE: bool = false;  // d = −grad
override WD_MODE: u32 = 0u;       // Adam: 0 none, 1 L2 (d += wd·p), 2 decoupled (p ← p·(1 − lr·wd))

@group(0) @binding(0) var<storage, read> p: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> m0: array<f32>;
@group(0) @binding(3) var<storage, read> v0: array<f32>;
@group(0) @binding(4) var<storage, read> vmax0: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_p: array<f32>;
@group(0) @binding(6) var<storage, read_write> out_m: array<f32>;
@group(0) @binding(7) var<storage, read_write> out_v: array<f32>;
@group(0) @binding(8) var<uniform> adam: AdamParams;

// The step direction: the gradient, negated when maximising.
fn direction(i: u32) -> f32 {
  var d = grad[i];
  if (MAXIMIZE) { d = d * -1.0; }
  return d;
}

@compute @workgroup_size(WG_1D)
fn adam_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  if (i >= adam.n) { return; }
  var d = direction(i);
  var w = p[i];
  if (WD_MODE == 1u) { d = d + w * adam.wd; }
  if (WD_MODE == 2u) { w = w * adam.decay; }
  let dd = d * d;
  var m: f32;
  var v: f32;
  if (FIRST) {
    m = d * adam.omb1;
    v = dd * adam.omb2;
  } else {
    m = m0[i] * adam.b1 + d * adam.omb1;
    v = v0[i] * adam.b2 + dd * adam.omb2;
  }
  out_m[i] = m;
  out_v[i] = v;
  var vu = v;
  if (AMSGRAD && !FIRST) {
    let a = vmax0[i];
    vu = select(max(a, v), a + v, is_nan_f32(a) || is_nan_f32(v));  // NaN propagates, as `maximum`
  }
  let denom = sqrt(vu) / adam.sqrt_bc2 + adam.eps;
  out_p[i] = w - (m / denom) * adam.lr_bc1;
}

// ---- SGD with momentum, dampening, Nesterov, L2 weight decay (torch.optim.SGD) ----
override MOMENTUM: bool = false;
override NESTEROV: bool = false;
override WEIGHT_DECAY: bool = false;

@group(0) @binding(9) var<storage, read> buf0: array<f32>;
@group(0) @binding(10) var<storage, read_write> out_buf: array<f32>;
@group(0) @binding(11) var<uniform> sgd: SgdParams;

@compute @workgroup_size(WG_1D)
fn sgd_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  if (i >= sgd.n) { return; }
  var d = direction(i);
  let w = p[i];
  if (WEIGHT_DECAY) { d = d + w * sgd.wd; }
  if (MOMENTUM) {
    var b: f32;
    if (FIRST) {
      b = d;
    } else {
      b = buf0[i] * sgd.momentum + d * sgd.omd;
    }
    out_buf[i] = b;
    if (NESTEROV) {
      d = d + b * sgd.momentum;
    } else {
      d = b;
    }
  }
  out_p[i] = w - d * sgd.lr;
}
