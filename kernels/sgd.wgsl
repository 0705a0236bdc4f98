// Fused SGD (momentum, dampening, Nesterov, L2 weight decay) update: writes the new parameter
// and momentum buffer in one pass, with the f32 operations of the op-by-op update in
// nn/optim/sgd.ts in the same order.
override FIRST: bool = false;     // no momentum buffer yet: buf = d
override MOMENTUM: bool = false;
override NESTEROV: bool = false;
override MAXIMIZE: bool = false;
override WEIGHT_DECAY: bool = false;

struct Params {
  n: u32,
  lr: f32,
  momentum: f32,
  omd: f32,
  wd: f32,
}

@group(0) @binding(0) var<storage, read> p: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> buf0: array<f32>;
@group(0) @binding(3) var<storage, read_write> out_p: array<f32>;
@group(0) @binding(4) var<storage, read_write> out_buf: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

@compute @workgroup_size(WG_1D)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  if (i >= params.n) { return; }
  var d = grad[i];
  if (MAXIMIZE) { d = d * -1.0; }
  let w = p[i];
  if (WEIGHT_DECAY) { d = d + w * params.wd; }
  if (MOMENTUM) {
    var b: f32;
    if (FIRST) {
      b = d;
    } else {
      b = buf0[i] * params.momentum + d * params.omd;
    }
    out_buf[i] = b;
    if (NESTEROV) {
      d = d + b * params.momentum;
    } else {
      d = b;
    }
  }
  out_p[i] = w - d * params.lr;
}
