// Batched matmul: out[z] = act(A[z] x B[z] + bias), row-major, any M/N/K.
//
// Tiling (see kernels/matmul-plan.ts):
//   workgroup 8x8 invocations computes a 64x64 output tile (BM = BN = 64);
//   each invocation owns an 8x8 register block (8 rows x two vec4 columns).
//   K is walked in slabs of BK = 32: the workgroup stages A[64x32] and B[32x64]
//   in workgroup memory (2 x 8 KiB = 16 KiB, exactly the WebGPU default limit),
//   zero-padded outside the matrix, then every invocation reads its operands
//   back as vec4 (A along k, B along n).
//
// Why this shape on lavapipe/llvmpipe: every non-constant-offset storage load is
// executed lane by lane with a bounds check (~7 cycles per lane per component),
// while a vec4 workgroup-memory load costs about a quarter of that per
// component. Staging each global element once per workgroup and reusing it from
// workgroup memory with an 8x8 register block minimises the expensive loads;
// one barrier pair per 32-deep slab keeps barrier cost small.
// On discrete GPUs this is the classic shared-memory tiled GEMM.

// Params, TRANS_A and TRANS_B come from the `matmul` prelude.

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

override HAS_BIAS: bool = false; // bias[n] added before the activation
override ACT: u32 = 0u;          // 0 = identity, 1 = relu

const TM: u32 = 8u;   // rows per invocation
const TN: u32 = 8u;   // columns per invocation (2 x vec4)
const WG_X: u32 = 8u;
const WG_Y: u32 = 8u;
const BM: u32 = 64u;  // TM * WG_Y
const BN: u32 = 64u;  // TN * WG_X
const BK: u32 = 32u;
const NT: u32 = 64u;  // WG_X * WG_Y

// sA[m][k] (row of 32 k values = 8 vec4), sB[k][n] (row of 64 n values = 16 vec4)
var<workgroup> sA: array<vec4<f32>, 512>; // BM * BK / 4
var<workgroup> sB: array<vec4<f32>, 512>; // BK * BN / 4

// Element (m, k) of this batch item's A, 0 outside [0,M) x [0,K).
fn loadA(base: u32, m: u32, k: u32) -> f32 {
  let inside = m < params.M && k < params.K;
  var idx = base + m * params.K + k;
  if (TRANS_A) { idx = base + k * params.M + m; }
  return select(0.0, a[select(0u, idx, inside)], inside);
}

// Element (k, n) of this batch item's B, 0 outside [0,K) x [0,N).
fn loadB(base: u32, k: u32, n: u32) -> f32 {
  let inside = k < params.K && n < params.N;
  var idx = base + k * params.N + n;
  if (TRANS_B) { idx = base + n * params.K + k; }
  return select(0.0, b[select(0u, idx, inside)], inside);
}

fn epilogue(v: f32, n: u32) -> f32 {
  var r = v;
  if (HAS_BIAS) { r = r + bias[n]; }
  if (ACT == 1u) { r = select(r, 0.0, r < 0.0); } // relu; NaN stays NaN
  return r;
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let z = wg.z;
  let aBase = z * params.a_batch_stride;
  let bBase = z * params.b_batch_stride;
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;
  let tr = lid.y * TM;          // first tile row of this invocation
  let tc4 = lid.x * (TN / 4u);  // first vec4 column of this invocation in sB

  var acc: array<array<vec4<f32>, 2>, 8>;
  for (var i = 0u; i < TM; i++) {
    acc[i][0] = vec4<f32>(0.0);
    acc[i][1] = vec4<f32>(0.0);
  }

  for (var k0 = 0u; k0 < K; k0 += BK) {
    // Stage the A slab (64 x 32) and B slab (32 x 64); 8 vec4 per invocation each.
    for (var e = li; e < BM * BK / 4u; e += NT) {
      let r = m0 + e / (BK / 4u);
      let c = k0 + (e % (BK / 4u)) * 4u;
      sA[e] = vec4<f32>(loadA(aBase, r, c), loadA(aBase, r, c + 1u),
                        loadA(aBase, r, c + 2u), loadA(aBase, r, c + 3u));
    }
    for (var e = li; e < BK * BN / 4u; e += NT) {
      let r = k0 + e / (BN / 4u);
      let c = n0 + (e % (BN / 4u)) * 4u;
      sB[e] = vec4<f32>(loadB(bBase, r, c), loadB(bBase, r, c + 1u),
                        loadB(bBase, r, c + 2u), loadB(bBase, r, c + 3u));
    }
    workgroupBarrier();

    for (var kk = 0u; kk < BK; kk += 4u) {
      let bRow = kk * (BN / 4u) + tc4;
      let b00 = sB[bRow];
      let b01 = sB[bRow + 1u];
      let b10 = sB[bRow + BN / 4u];
      let b11 = sB[bRow + BN / 4u + 1u];
      let b20 = sB[bRow + 2u * (BN / 4u)];
      let b21 = sB[bRow + 2u * (BN / 4u) + 1u];
      let b30 = sB[bRow + 3u * (BN / 4u)];
      let b31 = sB[bRow + 3u * (BN / 4u) + 1u];
      for (var i = 0u; i < TM; i++) {
        let av = sA[(tr + i) * (BK / 4u) + kk / 4u];
        var c0 = acc[i][0];
        var c1 = acc[i][1];
        c0 = fma(vec4<f32>(av.x), b00, c0);
        c1 = fma(vec4<f32>(av.x), b01, c1);
        c0 = fma(vec4<f32>(av.y), b10, c0);
        c1 = fma(vec4<f32>(av.y), b11, c1);
        c0 = fma(vec4<f32>(av.z), b20, c0);
        c1 = fma(vec4<f32>(av.z), b21, c1);
        c0 = fma(vec4<f32>(av.w), b30, c0);
        c1 = fma(vec4<f32>(av.w), b31, c1);
        acc[i][0] = c0;
        acc[i][1] = c1;
      }
    }
    workgroupBarrier();
  }

  let outBase = z * M * N;
  let nBase = n0 + lid.x * TN;
  for (var i = 0u; i < TM; i++) {
    let m = m0 + tr + i;
    if (m < M) {
      let rowBase = outBase + m * N;
      for (var j = 0u; j < TN; j++) {
        let n = nBase + j;
        if (n < N) {
          out[rowBase + n] = epilogue(acc[i][j / 4u][j % 4u], n);
        }
      }
    }
  }
}
