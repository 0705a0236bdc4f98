// Reductions over any set of axes. The engine splits the input index into a "kept" part
// (one per output element) and a "reduced" part, each given as collapsed shape + strides.
// Prelude gives TA (input storage type), TC (accumulator: f32 or i32), TO (output storage type).
// OP: one of the generated OP_SUM, OP_MAX, OP_MIN, OP_ARGMAX, OP_ARGMIN (REDUCE_OPS in
// engine/webgpu/kernel-constants.ts; arg ops return the first index on ties, counting in the
// row-major order of the reduced dims). WG_MODE: one WG_1D-wide workgroup per output (long
// reductions) instead of one invocation per output.
override OP: u32 = OP_SUM;
override WG_MODE: bool = false;

struct Params {
  n_out: u32,
  n_red: u32,
  kept_rank: u32,
  red_rank: u32,
  kept_shape: Shape,
  kept_strides: Shape,
  red_shape: Shape,
  red_strides: Shape,
}

@group(0) @binding(0) var<storage, read> x: array<TA>;
@group(0) @binding(1) var<storage, read_write> out: array<TO>;
@group(0) @binding(2) var<uniform> params: Params;

var<workgroup> s_val: array<TC, WG_1D>;
var<workgroup> s_idx: array<u32, WG_1D>;

fn kept_offset(o: u32) -> u32 {
  var rem = o;
  var off = 0u;
  for (var d = i32(params.kept_rank) - 1; d >= 0; d--) {
    let s = dim(params.kept_shape, u32(d));
    off += (rem % s) * dim(params.kept_strides, u32(d));
    rem = rem / s;
  }
  return off;
}

fn red_offset(r: u32) -> u32 {
  if (params.red_rank == 1u) {
    return r * params.red_strides[0][0];
  }
  var rem = r;
  var off = 0u;
  for (var d = i32(params.red_rank) - 1; d >= 0; d--) {
    let s = dim(params.red_shape, u32(d));
    off += (rem % s) * dim(params.red_strides, u32(d));
    rem = rem / s;
  }
  return off;
}

// Sum starts from 0; max/min/arg ops take the first element they see (tracked by best == NONE),
// so no type-specific sentinel is needed. Empty max/min reductions are rejected by the engine.
fn identity() -> TC {
  return TC(0);
}

fn is_nan_c(v: TC) -> bool {
  return is_nan_f32(f32(v));
}

// Combines (va, ia) with (vb, ib); ties keep the smaller index; NaN wins for max/min (and among
// several NaNs the first one), as on the CPU reference.
fn better(va: TC, ia: u32, vb: TC, ib: u32) -> bool {
  let na = is_nan_c(va);
  let nb = is_nan_c(vb);
  if (na || nb) {
    return nb && (!na || ib < ia);
  }
  switch OP {
    case OP_MAX, OP_ARGMAX: { return vb > va || (vb == va && ib < ia); }
    case OP_MIN, OP_ARGMIN: { return vb < va || (vb == va && ib < ia); }
    default: { return false; }
  }
}

fn write_out(o: u32, v: TC, idx: u32) {
  if (OP >= OP_ARGMAX) {
    out[o] = TO(idx);
  } else {
    out[o] = TO(v);
  }
}

@compute @workgroup_size(WG_1D)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (WG_MODE) {
    let o = wid.x + wid.y * nwg.x;
    if (o >= params.n_out) { return; }
    let base = kept_offset(o);
    var acc = identity();
    var best = 0xffffffffu;
    for (var r = lid.x; r < params.n_red; r += WG_1D) {
      let v = TC(x[base + red_offset(r)]);
      if (OP == OP_SUM) {
        acc += v;
      } else if (best == 0xffffffffu || better(acc, best, v, r)) {
        acc = v;
        best = r;
      }
    }
    s_val[lid.x] = acc;
    s_idx[lid.x] = best;
    workgroupBarrier();
    for (var stride = WG_1D / 2u; stride > 0u; stride >>= 1u) {
      if (lid.x < stride) {
        let vb = s_val[lid.x + stride];
        let ib = s_idx[lid.x + stride];
        if (OP == OP_SUM) {
          s_val[lid.x] += vb;
        } else if (ib != 0xffffffffu && (s_idx[lid.x] == 0xffffffffu || better(s_val[lid.x], s_idx[lid.x], vb, ib))) {
          s_val[lid.x] = vb;
          s_idx[lid.x] = ib;
        }
      }
      workgroupBarrier();
    }
    if (lid.x == 0u) {
      write_out(o, s_val[0], s_idx[0]);
    }
  } else {
    let o = grid_index(gid, nwg);
    if (o >= params.n_out) { return; }
    let base = kept_offset(o);
    var acc = identity();
    var best = 0xffffffffu;
    for (var r = 0u; r < params.n_red; r++) {
      let v = TC(x[base + red_offset(r)]);
      if (OP == OP_SUM) {
        acc += v;
      } else if (best == 0xffffffffu || better(acc, best, v, r)) {
        acc = v;
        best = r;
      }
    }
    write_out(o, acc, best);
  }
}
