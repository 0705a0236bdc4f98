// Index-based gathers and their deterministic scatter-add adjoints (no atomics: each invocation
// owns one output element and loops over the index list, summing the matches in index order).
// Prelude gives T (storage type of x / out). Indices are i32; an index outside [0, dim) reads
// zero (gathers) or is dropped (scatters), so the GPU never reads or writes out of bounds, and is
// recorded with `flag_bad_index(params.check, ...)` (the `index_check` prelude): the backend then
// raises the CPU reference's IndexError at the next read.
//
// Entry points:
//   select_fwd:  out[o,k,i] = x[o, idx[k], i]                  (x viewed [outer, dim, inner])
//   select_bwd:  out[o,a,i] = Σ_{k: idx[k]=a} x[o,k,i]          (x viewed [outer, kdim, inner])
//   gather_fwd:  out[c] = x[c with c[axis] := idx[c]]           (out over idx shape s0; x strides s1)
//   gather_bwd:  out[c] = Σ_{j: idx[c, axis:=j] = c[axis]} x[c, axis:=j]
//                (out over x shape s0; idx/src strides s1, idx shape s2, kdim = idx.shape[axis])
//   one_hot:     out[m,d] = idx[m] == d ? 1 : 0                 (dim = depth)
//   validate:    flags the first idx[i] (i < n) outside [0, dim) other than `ignore` (no output)
struct Params {
  n: u32,
  rank: u32,
  axis: u32,
  dim: u32,
  kdim: u32,
  inner: u32,
  check: u32,
  ignore: i32,
  s0: Shape,
  s1: Shape,
  s2: Shape,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read> idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;
@group(0) @binding(3) var<uniform> params: Params;

fn in_range(a: i32, n: u32) -> bool {
  return a >= 0 && u32(a) < n;
}

@compute @workgroup_size(WG_1D)
fn select_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  if (i >= params.n) { return; }
  let ii = i % params.inner;
  let t = i / params.inner;
  let k = t % params.kdim;
  let o = t / params.kdim;
  let a = idx[k];
  if (in_range(a, params.dim)) {
    out[i] = x[(o * params.dim + u32(a)) * params.inner + ii];
  } else {
    out[i] = T(0);
    flag_bad_index(params.check, a, k);
  }
}

@compute @workgroup_size(WG_1D)
fn select_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  if (i >= params.n) { return; }
  let ii = i % params.inner;
  let t = i / params.inner;
  let a = i32(t % params.dim);
  let o = t / params.dim;
  var acc = T(0);
  for (var k = 0u; k < params.kdim; k++) {
    let v = idx[k];
    if (v == a) {
      acc += x[(o * params.kdim + k) * params.inner + ii];
    }
    // Invocation 0 visits every index once: it reports the first bad one.
    if (i == 0u && !in_range(v, params.dim)) {
      flag_bad_index(params.check, v, k);
    }
  }
  out[i] = acc;
}

@compute @workgroup_size(WG_1D)
fn gather_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  if (i >= params.n) { return; }
  var rem = i;
  var off = 0u;
  for (var d = i32(params.rank) - 1; d >= 0; d--) {
    let s = dim(params.s0, u32(d));
    let c = rem % s;
    rem = rem / s;
    if (u32(d) != params.axis) {
      off += c * dim(params.s1, u32(d));
    }
  }
  let a = idx[i];
  if (in_range(a, params.dim)) {
    out[i] = x[off + u32(a) * dim(params.s1, params.axis)];
  } else {
    out[i] = T(0);
    flag_bad_index(params.check, a, i);
  }
}

@compute @workgroup_size(WG_1D)
fn gather_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  if (i >= params.n) { return; }
  var rem = i;
  var off = 0u;
  var ca = 0u;
  var valid = true;
  for (var d = i32(params.rank) - 1; d >= 0; d--) {
    let s = dim(params.s0, u32(d));
    let c = rem % s;
    rem = rem / s;
    if (u32(d) == params.axis) {
      ca = c;
    } else {
      if (c >= dim(params.s2, u32(d))) { valid = false; }
      off += c * dim(params.s1, u32(d));
    }
  }
  var acc = T(0);
  if (valid) {
    let st = dim(params.s1, params.axis);
    let size = dim(params.s0, params.axis);
    for (var j = 0u; j < params.kdim; j++) {
      let o = off + j * st;
      let v = idx[o];
      if (v == i32(ca)) {
        acc += x[o];
      }
      // The invocations at coordinate 0 along the axis visit every index once between them.
      if (ca == 0u && !in_range(v, size)) {
        flag_bad_index(params.check, v, o);
      }
    }
  }
  out[i] = acc;
}

@compute @workgroup_size(WG_1D)
fn one_hot(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  if (i >= params.n) { return; }
  let d = i % params.dim;
  let m = i / params.dim;
  out[i] = select(T(0), T(1), idx[m] == i32(d));
}

@compute @workgroup_size(WG_1D)
fn validate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = grid_index(gid, nwg);
  if (i >= params.n) { return; }
  let v = idx[i];
  if (v != params.ignore && !in_range(v, params.dim)) {
    flag_bad_index(params.check, v, i);
  }
}
