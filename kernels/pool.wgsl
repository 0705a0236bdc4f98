// 2-D pooling and bilinear upsampling in NCHW, float32. Tensors are viewed as P = N·C planes of
// H×W (input) and OH×OW (output). Backward entries are deterministic gathers: each invocation
// owns one input-gradient element and loops over the outputs whose window can contain it (no
// atomics), summing in output order.
//
//   max_argmax:    out_idx[p,oh,ow] = h·W + w of the first maximum in the (dilated) window,
//                  padding excluded; −1 if the window holds no input element. A NaN wins
//                  (the first one in window order), so NaN propagates as in PyTorch.
//   plane_gather:  out[p,j] = x[p, idx[p,j]] (0 where idx < 0)             (maxPool2d values)
//   max_backward:  out[p,q] = Σ_{j: idx[p,j] = q} x[p,j]                    (x = dy)
//   avg_fwd:       out = window sum / divisor    (ADAPTIVE: PyTorch adaptive bins)
//   avg_bwd:       out[p,h,w] = Σ_{windows ∋ (h,w)} x[p,o] / divisor(o)    (x = dy)
//   bilinear_fwd / bilinear_bwd: PyTorch upsample_bilinear2d (align_corners or half-pixel).
override ADAPTIVE: bool = false;
// max_backward when windows do not overlap (stride = kernel, no padding, no dilation): input
// (h, w) can only be in window (h/sh, w/sw), so one comparison replaces the window search.
override DISJOINT: bool = false;

struct Params {
  n: u32,
  H: i32,
  W: i32,
  OH: i32,
  OW: i32,
  kh: i32,
  kw: i32,
  sh: i32,
  sw: i32,
  ph: i32,
  pw: i32,
  dh: i32,
  dw: i32,
  include_pad: u32,
  align_corners: u32,
  scale_h: f32,
  scale_w: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> out_idx: array<i32>;
@group(0) @binding(4) var<uniform> params: Params;

fn floor_div(a: i32, b: i32) -> i32 {
  if (a >= 0) { return a / b; }
  return -((-a + b - 1) / b);
}

fn ceil_div(a: i32, b: i32) -> i32 {
  return -floor_div(-a, b);
}

// Output position (p, o1, o0) of flat index i over [P, n1, n0].
fn unravel(i: u32, n1: i32, n0: i32) -> vec3<i32> {
  let a = i32(i % u32(n0));
  let t = i / u32(n0);
  return vec3<i32>(i32(t / u32(n1)), i32(t % u32(n1)), a);
}

@compute @workgroup_size(WG_1D)
fn max_argmax(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  if (i >= params.n) { return; }
  let c = unravel(i, params.OH, params.OW);
  let base = u32(c.x) * u32(params.H * params.W);
  var best_i = -1;
  var best_v = 0.0;
  for (var a = 0; a < params.kh; a++) {
    let h = c.y * params.sh - params.ph + a * params.dh;
    if (h < 0 || h >= params.H) { continue; }
    for (var b = 0; b < params.kw; b++) {
      let w = c.z * params.sw - params.pw + b * params.dw;
      if (w < 0 || w >= params.W) { continue; }
      let q = h * params.W + w;
      let v = x[base + u32(q)];
      if (best_i < 0 || (!is_nan_f32(best_v) && (v > best_v || is_nan_f32(v)))) {
        best_v = v;
        best_i = q;
      }
    }
  }
  out_idx[i] = best_i;
}

@compute @workgroup_size(WG_1D)
fn plane_gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  if (i >= params.n) { return; }
  let p = i / u32(params.OH * params.OW);
  let q = idx[i];
  if (q >= 0) {
    out[i] = x[p * u32(params.H * params.W) + u32(q)];
  } else {
    out[i] = 0.0;
  }
}

@compute @workgroup_size(WG_1D)
fn max_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  if (i >= params.n) { return; }
  let c = unravel(i, params.H, params.W);
  let target_q = c.y * params.W + c.z;
  if (DISJOINT) {
    let oh = c.y / params.sh;
    let ow = c.z / params.sw;
    var v = 0.0;
    if (oh < params.OH && ow < params.OW) {
      let o = u32((c.x * params.OH + oh) * params.OW + ow);
      if (idx[o] == target_q) { v = x[o]; }
    }
    out[i] = v;
    return;
  }
  let oh0 = max(0, ceil_div(c.y + params.ph - params.dh * (params.kh - 1), params.sh));
  let oh1 = min(params.OH - 1, floor_div(c.y + params.ph, params.sh));
  let ow0 = max(0, ceil_div(c.z + params.pw - params.dw * (params.kw - 1), params.sw));
  let ow1 = min(params.OW - 1, floor_div(c.z + params.pw, params.sw));
  let base = c.x * params.OH * params.OW;
  var acc = 0.0;
  for (var oh = oh0; oh <= oh1; oh++) {
    for (var ow = ow0; ow <= ow1; ow++) {
      let o = u32(base + oh * params.OW + ow);
      if (idx[o] == target_q) {
        acc += x[o];
      }
    }
  }
  out[i] = acc;
}

// Window of output position o along one axis: (start, end) clamped to the input, and the
// count-include-pad pool size (PyTorch avg_pool2d) in z.
fn window(o: i32, size: i32, osize: i32, k: i32, s: i32, p: i32) -> vec3<i32> {
  if (ADAPTIVE) {
    let st = (o * size) / osize;
    let en = ((o + 1) * size + osize - 1) / osize;
    return vec3<i32>(st, en, en - st);
  }
  let st = o * s - p;
  let en = min(st + k, size + p);
  return vec3<i32>(max(st, 0), min(en, size), en - st);
}

fn divisor(wh: vec3<i32>, ww: vec3<i32>) -> f32 {
  if (params.include_pad != 0u && !ADAPTIVE) {
    return f32(wh.z * ww.z);
  }
  return f32((wh.y - wh.x) * (ww.y - ww.x));
}

@compute @workgroup_size(WG_1D)
fn avg_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  if (i >= params.n) { return; }
  let c = unravel(i, params.OH, params.OW);
  let wh = window(c.y, params.H, params.OH, params.kh, params.sh, params.ph);
  let ww = window(c.z, params.W, params.OW, params.kw, params.sw, params.pw);
  let base = c.x * params.H * params.W;
  var acc = 0.0;
  for (var h = wh.x; h < wh.y; h++) {
    for (var w = ww.x; w < ww.y; w++) {
      acc += x[u32(base + h * params.W + w)];
    }
  }
  let d = divisor(wh, ww);
  out[i] = select(0.0, acc / d, d > 0.0);
}

// Output positions along one axis whose window may contain input position h (a superset).
fn candidates(h: i32, size: i32, osize: i32, k: i32, s: i32, p: i32) -> vec2<i32> {
  if (ADAPTIVE) {
    return vec2<i32>(max(0, (h * osize) / size), min(osize - 1, ((h + 1) * osize + size - 1) / size - 1));
  }
  return vec2<i32>(max(0, ceil_div(h + p - k + 1, s)), min(osize - 1, floor_div(h + p, s)));
}

@compute @workgroup_size(WG_1D)
fn avg_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  if (i >= params.n) { return; }
  let c = unravel(i, params.H, params.W);
  let rh = candidates(c.y, params.H, params.OH, params.kh, params.sh, params.ph);
  let rw = candidates(c.z, params.W, params.OW, params.kw, params.sw, params.pw);
  let base = c.x * params.OH * params.OW;
  var acc = 0.0;
  for (var oh = rh.x; oh <= rh.y; oh++) {
    let wh = window(oh, params.H, params.OH, params.kh, params.sh, params.ph);
    if (c.y < wh.x || c.y >= wh.y) { continue; }
    for (var ow = rw.x; ow <= rw.y; ow++) {
      let ww = window(ow, params.W, params.OW, params.kw, params.sw, params.pw);
      if (c.z < ww.x || c.z >= ww.y) { continue; }
      let d = divisor(wh, ww);
      if (d > 0.0) {
        acc += x[u32(base + oh * params.OW + ow)] / d;
      }
    }
  }
  out[i] = acc;
}

struct Lerp {
  i0: i32,
  i1: i32,
  l0: f32,
  l1: f32,
}

// PyTorch area_pixel_compute_source_index + the two taps and their weights.
fn lerp_at(o: i32, scale: f32, size: i32) -> Lerp {
  var src: f32;
  if (params.align_corners != 0u) {
    src = scale * f32(o);
  } else {
    src = max(scale * (f32(o) + 0.5) - 0.5, 0.0);
  }
  let i0 = min(i32(floor(src)), size - 1);
  let l1 = src - f32(i0);
  return Lerp(i0, i0 + select(0, 1, i0 < size - 1), 1.0 - l1, l1);
}

fn tap_weight(l: Lerp, h: i32) -> f32 {
  return select(0.0, l.l0, l.i0 == h) + select(0.0, l.l1, l.i1 == h);
}

@compute @workgroup_size(WG_1D)
fn bilinear_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  if (i >= params.n) { return; }
  let c = unravel(i, params.OH, params.OW);
  let lh = lerp_at(c.y, params.scale_h, params.H);
  let lw = lerp_at(c.z, params.scale_w, params.W);
  let base = c.x * params.H * params.W;
  let r0 = base + lh.i0 * params.W;
  let r1 = base + lh.i1 * params.W;
  out[i] = lh.l0 * (lw.l0 * x[u32(r0 + lw.i0)] + lw.l1 * x[u32(r0 + lw.i1)])
         + lh.l1 * (lw.l0 * x[u32(r1 + lw.i0)] + lw.l1 * x[u32(r1 + lw.i1)]);
}

// Output positions along one axis that may tap input position h (a superset; exact weights
// are recomputed inside the loop).
fn bilinear_candidates(h: i32, scale: f32, osize: i32) -> vec2<i32> {
  if (scale <= 0.0) {
    return vec2<i32>(0, osize - 1);
  }
  var lo: f32;
  var hi: f32;
  if (params.align_corners != 0u) {
    lo = (f32(h) - 1.0) / scale;
    hi = (f32(h) + 1.0) / scale;
  } else {
    lo = (f32(h) - 0.5) / scale - 0.5;
    hi = (f32(h) + 1.5) / scale - 0.5;
  }
  return vec2<i32>(max(0, i32(floor(lo)) - 1), min(osize - 1, i32(ceil(hi)) + 1));
}

@compute @workgroup_size(WG_1D)
fn bilinear_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  if (i >= params.n) { return; }
  let c = unravel(i, params.H, params.W);
  let rh = bilinear_candidates(c.y, params.scale_h, params.OH);
  let rw = bilinear_candidates(c.z, params.scale_w, params.OW);
  let base = c.x * params.OH * params.OW;
  var acc = 0.0;
  for (var oh = rh.x; oh <= rh.y; oh++) {
    let wh = tap_weight(lerp_at(oh, params.scale_h, params.H), c.y);
    if (wh == 0.0) { continue; }
    var row = 0.0;
    for (var ow = rw.x; ow <= rw.y; ow++) {
      let ww = tap_weight(lerp_at(ow, params.scale_w, params.W), c.z);
      row += ww * x[u32(base + oh * params.OW + ow)];
    }
    acc += wh * row;
  }
  out[i] = acc;
}
