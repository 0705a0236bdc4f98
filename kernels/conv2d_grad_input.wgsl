// Gradient of conv2d with respect to its input (= a transposed convolution), NCHW, no col2im:
//
//   dx[n, c, h, w] = Σ_{o ∈ group, kh, kw} dy[n, o, ho, wo] · w[o, c − g·Cg, kh, kw]
//     where ho = (h + pt − kh·dh) / sh and wo = (w + pl − kw·dw) / sw are exact integer
//     quotients inside [0, Ho) × [0, Wo).
//
// The same kernel is conv-transpose2d's forward pass (dy := its input, w := its weight).
//
// Stride phases: only taps with kh·dh ≡ h + pt (mod sh) contribute to row h. Pixels are split into
// sh·sw phase classes (workgroup_id.z) by ((h + pt) mod sh, (w + pl) mod sw); inside one class the
// set of contributing taps is the same for every pixel, so the tap test is uniform and no work is
// spent on taps that miss (a naive masked loop wastes (sh·sw − 1)/(sh·sw) of it).
//
// Register blocking as in conv2d.wgsl: a workgroup owns CB input channels of one group
// (workgroup_id.y) and 64·PB pixels of one phase class (workgroup_id.x); each invocation keeps a
// CB × PB accumulator block. Per tap the dy offsets and bounds tests of the PB pixels are computed
// once; the loop over the Og output channels then does PB dy loads and CB uniform weight loads.
// No workgroup memory, no barriers. The prelude defines `const CB: u32` and `const PB: u32`.

struct Params {
  N: u32, C: u32, H: u32, W: u32,
  O: u32, Ho: u32, Wo: u32, Cg: u32,
  Og: u32, kH: u32, kW: u32, cBlocks: u32,
  sh: i32, sw: i32, dh: i32, dw: i32,
  pt: i32, pl: i32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

const WG: u32 = 64u;

fn pmod(a: i32, m: i32) -> i32 {
  let r = a % m;
  return select(r, r + m, r < 0);
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let sh = params.sh;
  let sw = params.sw;
  let H = i32(params.H);
  let W = i32(params.W);
  let Ho = i32(params.Ho);
  let Wo = i32(params.Wo);
  // Phase class: pixels with (h + pt) mod sh == rh and (w + pl) mod sw == rw.
  let rh = i32(wid.z) / sw;
  let rw = i32(wid.z) % sw;
  let h0 = pmod(rh - params.pt, sh); // first row of the class
  let w0 = pmod(rw - params.pl, sw);
  let Hc = select(0, (H - h0 + sh - 1) / sh, H > h0);
  let Wc = select(0, (W - w0 + sw - 1) / sw, W > w0);
  let HcWc = u32(Hc * Wc);
  let NP = params.N * HcWc;
  if (wid.x * (WG * PB) >= NP) { return; } // uniform: this class has fewer pixels than the grid

  let HW = params.H * params.W;
  let HoWo = params.Ho * params.Wo;
  let Cg = params.Cg;
  let Og = params.Og;
  let kW = params.kW;
  let kHW = params.kH * kW;
  let g = wid.y / params.cBlocks;
  let c0 = (wid.y % params.cBlocks) * CB;
  let pix0 = wid.x * (WG * PB) + li;

  var dyb: array<u32, PB>; // dy base: image n, first output channel of group g
  var qa: array<i32, PB>;  // row index inside the class (h = h0 + qa·sh)
  var qb: array<i32, PB>;
  var xo: array<u32, PB>;  // dx offset of (n, g·Cg, h, w)
  for (var j = 0u; j < PB; j++) {
    let p = min(pix0 + j * WG, NP - 1u);
    let n = p / HcWc;
    let r = p - n * HcWc;
    let a = r / u32(Wc);
    let b = r - a * u32(Wc);
    let h = u32(h0) + a * u32(sh);
    let ww = u32(w0) + b * u32(sw);
    dyb[j] = (n * params.O + g * Og) * HoWo;
    qa[j] = i32(a);
    qb[j] = i32(b);
    xo[j] = (n * params.C + g * Cg) * HW + h * params.W + ww;
  }
  var cw: array<u32, CB>;
  for (var i = 0u; i < CB; i++) {
    cw[i] = min(c0 + i, Cg - 1u) * kHW;
  }

  var acc: array<f32, CB * PB>;
  for (var kh = 0u; kh < params.kH; kh++) {
    let th = rh - i32(kh) * params.dh;
    if (pmod(th, sh) != 0) { continue; }
    // ho = (h + pt − kh·dh) / sh = qa + (h0 + pt − kh·dh) / sh, an exact division.
    let qh = (h0 + params.pt - i32(kh) * params.dh) / sh;
    for (var kw = 0u; kw < kW; kw++) {
      let tw = rw - i32(kw) * params.dw;
      if (pmod(tw, sw) != 0) { continue; }
      let qw = (w0 + params.pl - i32(kw) * params.dw) / sw;
      var idx: array<u32, PB>;
      var ok: array<bool, PB>;
      for (var j = 0u; j < PB; j++) {
        let ho = qa[j] + qh;
        let wo = qb[j] + qw;
        ok[j] = ho >= 0 && ho < Ho && wo >= 0 && wo < Wo;
        idx[j] = select(0u, dyb[j] + u32(ho * Wo + wo), ok[j]);
      }
      let tap = kh * kW + kw;
      for (var o = 0u; o < Og; o++) {
        var dv: array<f32, PB>;
        let oo = o * HoWo;
        for (var j = 0u; j < PB; j++) {
          dv[j] = select(0.0, dy[idx[j] + oo], ok[j]);
        }
        let wrow = (g * Og + o) * Cg * kHW + tap;
        for (var i = 0u; i < CB; i++) {
          let wv = w[wrow + cw[i]];
          for (var j = 0u; j < PB; j++) {
            acc[i * PB + j] += wv * dv[j];
          }
        }
      }
    }
  }

  for (var i = 0u; i < CB; i++) {
    let c = c0 + i;
    if (c < Cg) {
      for (var j = 0u; j < PB; j++) {
        if (pix0 + j * WG < NP) {
          out[xo[j] + c * HW] = acc[i * PB + j];
        }
      }
    }
  }
}
