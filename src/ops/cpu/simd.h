// Single-threaded SIMD row kernels (Highway, runtime dispatch to the best
// target this CPU has). ops_cpu.cc spreads them over the thread pool.
#pragma once

#include <cstdint>
#include <vector>

namespace dllm::cpu {

void RmsNormRow(const float* x, const float* w, int64_t C, float eps, float* y);
void RopeRow(float* v, int64_t half, const float* cos, const float* sin);
void SwiGLU(const float* gate, const float* up, int64_t n, float* out);
void Add(float* y, const float* x, int64_t n);
// Attention for a few queries (decoding), where a BLAS call's packing costs
// more than the product: out[j] = dot(q, keys + j * stride) over d for
// j < n, and out[0, d) = sum_j p[j] * (values + j * stride).
void DotRows(const float* q, const float* keys, int64_t stride, int64_t n,
             int64_t d, float* out);
void WeightedRowSum(const float* p, const float* values, int64_t stride,
                    int64_t n, int64_t d, float* out);
void Bf16ToF32(const uint16_t* src, int64_t n, float* dst);
void F16ToF32(const uint16_t* src, int64_t n, float* dst);
// Softmax in place over row[0, n) scaled by `scale` first: row =
// softmax(scale*row). Returns the log normaliser of the scaled row.
float ScaledSoftmax(float* row, int64_t n, float scale);

// Softmax statistics of one row: argmax, and out = {max, second max,
// log-sum-exp, entropy}.
void RowStats(const float* x, int64_t n, int32_t* argmax, int32_t* ties,
              float* out);

// Testing: the Highway targets compiled in and available on this CPU, and a
// way to force one (0 restores the best).
std::vector<int64_t> SimdTargets();
void ForceSimdTarget(int64_t target);
const char* SimdTargetName(int64_t target);

}  // namespace dllm::cpu
