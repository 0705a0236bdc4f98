// The batched-GEMM contract shared by the float (matmul.wgsl) and int32 (matmul_int.wgsl)
// kernels: out[z] = op(A[z]) x op(B[z]), [M, K] x [K, N] per batch entry z.
struct Params {
  M: u32,
  N: u32,
  K: u32,
  batch: u32,
  a_batch_stride: u32, // elements; 0 = broadcast A over the batch
  b_batch_stride: u32, // elements; 0 = broadcast B over the batch
}

override TRANS_A: bool = false; // A stored [K, M]
override TRANS_B: bool = false; // B stored [N, K]
