// Our matmul kernels for y = x w^T with weights as stored (F32, F16, BF16),
// single-threaded per call; ops_cpu.cc spreads slices of w's rows over the
// thread pool. Two shapes of work:
//  - Gemv (M <= kGemvMaxRows rows of x): dot products straight off the
//    stored weight rows, converted in registers. Decoding one token (or a
//    few) is memory bound: this streams w once at full bandwidth.
//  - Gemm (more rows): x is packed once per call as x^T in panels of 16
//    columns (each panel K x 16 floats, row-major), then each
//    tile of 6 weight rows (converted to fp32 in an L1 buffer unless F32,
//    which is read in place) is broadcast against up to 4 vectors of x^T
//    columns: 24 fp32 accumulators on AVX-512. Packing x rather than w keeps
//    the large operand untouched and the small one transposed once.
#pragma once

#include <cstdint>

#include "base/dtype.h"

namespace dllm::cpu {

constexpr int64_t kGemvMaxRows = 4;

// Columns of x^T per panel.
constexpr int64_t kGemmPanel = 16;

// x^T's padded row count: M rounded up to whole panels (16, a multiple of
// every target's lane count), the extra columns zero.
inline int64_t GemmPaddedRows(int64_t M) {
  return (M + kGemmPanel - 1) / kGemmPanel * kGemmPanel;
}

// The panels of x^T (P = kGemmPanel):
// xT[(m / P) * K * P + k * P + m % P] = x[m * K + k] for k in [k0, k1),
// m < Mp (zero past M). xT should be 64-byte aligned.
void PackTransposed(const float* x, int64_t M, int64_t K, int64_t k0,
                    int64_t k1, int64_t Mp, float* xT);

// For n in [n0, n1) and m < M: y[m * ldy + n] = dot(x row m, w row n)
// (+ bias[n] when bias is set). w: (N, K) of `dt`, row-major.
void GemmSlice(const float* xT, int64_t M, int64_t Mp, int64_t K, DType dt,
               const void* w, int64_t n0, int64_t n1, float* y, int64_t ldy,
               const float* bias);
// The same from x itself (M, K), for M <= kGemvMaxRows.
void GemvSlice(const float* x, int64_t M, int64_t K, DType dt, const void* w,
               int64_t n0, int64_t n1, float* y, int64_t ldy,
               const float* bias);

// Sustained fp32 FMA throughput of one thread on the best SIMD target, in
// GFLOP/s (2 flops per lane per FMA), timed for about `seconds`.
double MeasureFmaGflops(double seconds);

}  // namespace dllm::cpu
