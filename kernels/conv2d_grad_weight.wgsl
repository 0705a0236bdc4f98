// Gradient of conv2d with respect to its weight, NCHW, no im2col:
//
//   dw[o, c, kh, kw] = Σ_{n, ho, wo} dy[n, o, ho, wo] · x[n, g·Cg + c, ho·sh − pt + kh·dh, wo·sw − pl + kw·dw]
//
// A GEMM of shape (Og) × (R = Cg·kH·kW) per group with a long reduction K = N·Ho·Wo, so K is split:
// workgroup_id.z picks a range of `rowsPerSplit` output rows (n, ho) and, when there are several
// splits, writes its partial block to slice z of a scratch buffer; `reduce_splits` then sums the
// slices (a second, cheap pass — no atomics, deterministic order).
//
// Register blocking: a workgroup owns OB output channels of one group (workgroup_id.y) and 64·RB
// columns r = (c, kh, kw) (workgroup_id.x); each invocation keeps an OB × RB accumulator block,
// columns strided by 64. Per output pixel the OB dy values are uniform across the workgroup
// (scalar loads on lavapipe, broadcasts on GPUs) and each invocation gathers RB input values;
// per output row the bounds test of each column's input row is computed once. No workgroup
// memory, no barriers: staging the dy block in workgroup memory as vec4 (one barrier pair per
// 512 pixels) was measured 1.4-1.7× slower in CPU time on lavapipe for the LeNet and ResNet
// shapes. The prelude defines `const OB: u32` and `const RB: u32`.

struct Params {
  N: u32, C: u32, H: u32, W: u32,
  O: u32, Ho: u32, Wo: u32, Cg: u32,
  Og: u32, kH: u32, kW: u32, oBlocks: u32,
  sh: i32, sw: i32, dh: i32, dw: i32,
  pt: i32, pl: i32, R: u32, rowsPerSplit: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

const WG: u32 = 64u;
// PS > 1 (few columns, e.g. conv1's 1·5·5 = 25): the workgroup's lanes split into PS groups of
// CW = 64/PS columns; group k takes the output pixels wo ≡ k (mod PS) and the groups' partial
// sums are added through workgroup memory at the end, so lanes are not left idle. The prelude
// defines `const PS: u32` (a power of two).
const CW: u32 = WG / PS;
const RED: u32 = select(1u, WG * OB * RB, PS > 1u);
var<workgroup> red: array<f32, RED>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let H = i32(params.H);
  let W = i32(params.W);
  let HW = params.H * params.W;
  let Ho = params.Ho;
  let Wo = params.Wo;
  let HoWo = Ho * Wo;
  let Cg = params.Cg;
  let Og = params.Og;
  let R = params.R;
  let kW = params.kW;
  let kHW = params.kH * kW;
  let g = wid.y / params.oBlocks;
  let o0 = (wid.y % params.oBlocks) * OB;
  let col = li % CW;
  let sub = li / CW;
  let r0 = wid.x * (CW * RB) + col;

  // Per column r = (c, kh, kw): channel offset and dilated tap offsets.
  var xoff: array<u32, RB>;
  var khd: array<i32, RB>;
  var kwd: array<i32, RB>;
  for (var j = 0u; j < RB; j++) {
    let r = min(r0 + j * CW, R - 1u);
    let c = r / kHW;
    let t = r - c * kHW;
    let kh = t / kW;
    let kw = t - kh * kW;
    xoff[j] = (g * Cg + c) * HW;
    khd[j] = i32(kh) * params.dh;
    kwd[j] = i32(kw) * params.dw;
  }
  var dyo: array<u32, OB>;
  for (var i = 0u; i < OB; i++) {
    dyo[i] = (g * Og + min(o0 + i, Og - 1u)) * HoWo;
  }

  var acc: array<f32, OB * RB>;
  let rows = params.N * Ho;
  let rowStart = wid.z * params.rowsPerSplit;
  let rowEnd = min(rowStart + params.rowsPerSplit, rows);
  for (var row = rowStart; row < rowEnd; row++) {
    let n = row / Ho;
    let ho = row - n * Ho;
    let ihb = i32(ho) * params.sh - params.pt;
    let xn = n * params.C * HW;
    let dyn = n * params.O * HoWo + ho * Wo;
    var rb: array<u32, RB>;
    var rok: array<bool, RB>;
    for (var j = 0u; j < RB; j++) {
      let ih = ihb + khd[j];
      rok[j] = ih >= 0 && ih < H;
      rb[j] = xn + xoff[j] + u32(ih * W);
    }
    for (var wo = sub; wo < Wo; wo += PS) {
      let iwb = i32(wo) * params.sw - params.pl;
      var xv: array<f32, RB>;
      for (var j = 0u; j < RB; j++) {
        let iw = iwb + kwd[j];
        let ok = rok[j] && iw >= 0 && iw < W;
        xv[j] = select(0.0, x[select(0u, rb[j] + u32(iw), ok)], ok);
      }
      for (var i = 0u; i < OB; i++) {
        let dv = dy[dyn + dyo[i] + wo];
        for (var j = 0u; j < RB; j++) {
          acc[i * RB + j] += dv * xv[j];
        }
      }
    }
  }

  if (PS > 1u) {
    for (var k = 0u; k < OB * RB; k++) {
      red[k * WG + li] = acc[k];
    }
    workgroupBarrier();
    if (sub == 0u) {
      for (var k = 0u; k < OB * RB; k++) {
        var s = acc[k];
        for (var q = 1u; q < PS; q++) {
          s += red[k * WG + q * CW + col];
        }
        acc[k] = s;
      }
    }
  }
  if (sub == 0u) {
    let base = wid.z * params.O * R;
    for (var i = 0u; i < OB; i++) {
      let o = o0 + i;
      if (o < Og) {
        let orow = base + (g * Og + o) * R;
        for (var j = 0u; j < RB; j++) {
          let r = r0 + j * CW;
          if (r < R) { out[orow + r] = acc[i * RB + j]; }
        }
      }
    }
  }
}

// ---- second pass when K was split: dwout[i] = Σ_s part[s·total + i] ----
struct ReduceParams {
  total: u32,
  splits: u32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(5) var<storage, read> part: array<f32>;
@group(0) @binding(6) var<storage, read_write> dwout: array<f32>;
@group(0) @binding(7) var<uniform> rparams: ReduceParams;

@compute @workgroup_size(64, 1, 1)
fn reduce_splits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= rparams.total) { return; }
  var s = 0.0;
  for (var k = 0u; k < rparams.splits; k++) {
    s += part[k * rparams.total + i];
  }
  dwout[i] = s;
}
