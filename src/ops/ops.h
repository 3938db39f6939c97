// Kernels that know nothing of models. This header is the backend-neutral
// interface the model calls; ops/cpu implements it today (Highway SIMD for
// elementwise work, OpenBLAS sgemm for matmuls, all on the one thread pool),
// ops/ref holds the plain scalar twins that tests use as the oracle.
// Activations are fp32, row-major; accumulation is fp32.
#pragma once

#include <algorithm>
#include <cstdint>

#include "base/dtype.h"
#include "dllm/row_stats.h"

namespace dllm::ops {

// A weight matrix as stored: (rows, cols) row-major, F32, BF16 or F16, used
// in place (nothing converted ahead of time).
struct Matrix {
  DType dtype = DType::kF32;
  const void* data = nullptr;
  int64_t rows = 0;  // N: output features
  int64_t cols = 0;  // K: input features
};

// Shape of one attention call. q: (B, T, n_heads*head_dim); k, v:
// (B, keys(), n_kv_heads*head_dim); out like q. Query head h reads kv head
// h / (n_heads / n_kv_heads). Query i sits at key index q_offset + i, so a
// block of queries can attend to cached keys (a KV cache: the keys of the
// prompt and of finished blocks, then the block's own). What a query at key
// index p sees is the keys j with Visible(p, j), minus the keys that
// key_mask hides: all of them (bidirectional), up to itself (causal), or up
// to the end of its own block (block-causal: key j is visible when
// j / block <= p / block; causal is block 1). These are a prefix of the
// keys, [0, VisibleEnd(p)).
//
// bd_half = H > 0 is BD3-LM's training mask over the concatenation
// [x_t ; x_0] of a noisy and a clean copy of H tokens (T = keys() = 2H,
// q_offset 0, block > 0, not causal). With b the block of p within its
// half: a noisy query (p < H) sees the noisy keys of its own block b and
// the clean keys of blocks < b; a clean query (p >= H) sees the clean keys
// of blocks <= b (block-causal). Not a prefix: the keys a query sees lie in
// [VisibleBegin(p), VisibleEnd(p)), with Visible(p, j) deciding inside it.
struct AttentionShape {
  int64_t B = 1, T = 1, n_heads = 1, n_kv_heads = 1, head_dim = 1;
  bool causal = false;
  int64_t block = 0;     // block-causal block size; 0 = off
  int64_t Tk = 0;        // keys per sequence; 0 = T (queries are the keys)
  int64_t q_offset = 0;  // key index of query 0
  int64_t bd_half = 0;   // BD3-LM [x_t ; x_0] mask with halves of H; 0 = off

  int64_t keys() const { return Tk > 0 ? Tk : T; }
  int64_t VisibleBegin(int64_t p) const {
    if (bd_half <= 0) return 0;
    return p < bd_half ? p / block * block : bd_half;
  }
  int64_t VisibleEnd(int64_t p) const {
    if (bd_half > 0) {
      const int64_t H = bd_half;
      if (p >= H) return H + std::min(((p - H) / block + 1) * block, H);
      const int64_t b = p / block;  // clean blocks < b lie past the noisy half
      return b > 0 ? H + b * block : std::min(block, H);
    }
    int64_t end = keys();
    if (causal && p + 1 < end) end = p + 1;
    if (block > 0 && (p / block + 1) * block < end)
      end = (p / block + 1) * block;
    return end;
  }
  bool Visible(int64_t p, int64_t j) const {
    if (bd_half > 0) {
      const int64_t H = bd_half;
      if (p >= H) return j >= H && (j - H) / block <= (p - H) / block;
      return j < H ? j / block == p / block : (j - H) / block < p / block;
    }
    return j < VisibleEnd(p);
  }
};

// y (M, N) = x (M, K) * w^T (+ bias (N) if given).
void MatMulWT(const float* x, int64_t M, const Matrix& w, float* y,
              const float* bias = nullptr);

// One product of a group that reads the same x (q, k and v; gate and up).
struct MatMulOut {
  const Matrix* w = nullptr;
  float* y = nullptr;
  const float* bias = nullptr;
};
// y_i = x * w_i^T (+ bias_i) for each of outs[0..n): equal to n MatMulWT
// calls, but x is packed once and the group shares one parallel pass (one
// wait for the threads instead of n).
void MatMulWTGroup(const float* x, int64_t M, const MatMulOut* outs, int n);

// y (M, C) = x / sqrt(mean(x^2) + eps) * weight, per row. y may alias x.
void RmsNorm(const float* x, const float* weight, int64_t M, int64_t C,
             float eps, float* y);

// Rotary embedding, rotate-half form, in place on x (T rows of n_heads heads,
// rows `row_stride` floats apart). cos/sin: (T, head_dim/2), already gathered
// for each row's position.
void Rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim,
          int64_t row_stride, const float* cos, const float* sin);

// Softmax attention with scale 1/sqrt(head_dim). key_mask (B, keys()): 1 =
// key may be attended to; nullptr = all. A query with no visible key gets
// zeros.
void Attention(const float* q, const float* k, const float* v,
               const AttentionShape& s, const uint8_t* key_mask, float* out);

// out (n) = silu(gate) * up. out may alias gate or up.
void SwiGLU(const float* gate, const float* up, int64_t n, float* out);

// y += x.
void AddInPlace(float* y, const float* x, int64_t n);

// Converts n stored values (F32, BF16 or F16) to fp32.
void ToF32(DType dtype, const void* src, int64_t n, float* dst);

// In-place softmax of one row; returns log of the normaliser (logsumexp).
float SoftmaxInPlace(float* x, int64_t n);

}  // namespace dllm::ops

namespace dllm::ops {

// Fused reductions over one row of logits, for samplers: never a full sort
// (the struct is public: dllm/row_stats.h).
using ::dllm::RowStats;

// Stats of softmax(x). Values of -inf are allowed (banned tokens).
RowStats ComputeRowStats(const float* x, int64_t n);

}  // namespace dllm::ops

// Backward passes (training). Gradients are accumulated with +=, as in
// llm.c; shapes as in the forward functions above.
namespace dllm::ops {

// For y = x w^T + b: dx (M, K) += dy w; dw (N, K) += dy^T x; db (N) += sum
// of dy's rows. w must be F32. Any of dx, dw, db may be null.
void MatMulBackward(const float* x, int64_t M, const Matrix& w, const float* dy,
                    float* dx, float* dw, float* db);

// For y = rmsnorm(x) * weight: dx (M, C) += ..., dweight (C) += ...
void RmsNormBackward(const float* x, const float* weight, int64_t M, int64_t C,
                     float eps, const float* dy, float* dx, float* dweight);

// dq, dk, dv += gradients of Attention() given dout; recomputes the
// probabilities instead of storing them. Queries must be the keys (Tk = 0
// or T, q_offset = 0); causal, block-causal and bd_half masks are supported.
void AttentionBackward(const float* q, const float* k, const float* v,
                       const AttentionShape& s, const uint8_t* key_mask,
                       const float* dout, float* dq, float* dk, float* dv);

// For out = silu(gate) * up: dgate += ..., dup += ...
void SwiGLUBackward(const float* gate, const float* up, const float* dout,
                    int64_t n, float* dgate, float* dup);

// Cross-entropy of `rows` rows of logits (rows, V) against `targets`, each
// row's loss multiplied by weights[r]. Returns the weighted sum of losses;
// overwrites the logits with their gradient (softmax - onehot) * weight.
double CrossEntropyForwardBackward(float* logits, int64_t rows, int64_t V,
                                   const int32_t* targets,
                                   const float* weights);

}  // namespace dllm::ops
