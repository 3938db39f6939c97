// Scalar reference twins of ops/ops.h: plain loops, double accumulation where
// it is cheap, no threads. Tests compare the fast kernels against these.
#pragma once

#include "ops/ops.h"

namespace dllm::ops::ref {

void MatMulWT(const float* x, int64_t M, const Matrix& w, float* y,
              const float* bias = nullptr);
void RmsNorm(const float* x, const float* weight, int64_t M, int64_t C,
             float eps, float* y);
void Rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim,
          int64_t row_stride, const float* cos, const float* sin);
void Attention(const float* q, const float* k, const float* v,
               const AttentionShape& s, const uint8_t* key_mask, float* out);
void SwiGLU(const float* gate, const float* up, int64_t n, float* out);
void AddInPlace(float* y, const float* x, int64_t n);
void ToF32(DType dtype, const void* src, int64_t n, float* dst);
float SoftmaxInPlace(float* x, int64_t n);

}  // namespace dllm::ops::ref

namespace dllm::ops::ref {
RowStats ComputeRowStats(const float* x, int64_t n);
}  // namespace dllm::ops::ref

namespace dllm::ops::ref {
void MatMulBackward(const float* x, int64_t M, const Matrix& w, const float* dy,
                    float* dx, float* dw, float* db);
void RmsNormBackward(const float* x, const float* weight, int64_t M, int64_t C,
                     float eps, const float* dy, float* dx, float* dweight);
void AttentionBackward(const float* q, const float* k, const float* v,
                       const AttentionShape& s, const uint8_t* key_mask,
                       const float* dout, float* dq, float* dk, float* dv);
void SwiGLUBackward(const float* gate, const float* up, const float* dout,
                    int64_t n, float* dgate, float* dup);
double CrossEntropyForwardBackward(float* logits, int64_t rows, int64_t V,
                                   const int32_t* targets,
                                   const float* weights);
}  // namespace dllm::ops::ref
