// ggml's block-quantized weight formats (the layouts GGUF files hold), as
// the ops layer sees them: a row of a quantized matrix is cols /
// DTypeBlock(t) blocks laid end to end; MatMulWT and ToF32 (ops.h) accept
// them directly. Layouts, all little-endian, f16 = IEEE half:
//   Q8_0 (32 values, 34 bytes): f16 d; int8 q[32];        x = d * q
//   Q4_0 (32 values, 18 bytes): f16 d; uint8 q[16];       x = d * (nib - 8),
//        value j < 16 in the low nibble of q[j], value j + 16 in its high one
//   Q4_K (256 values, 144 bytes): f16 d, dmin; uint8 scales[12]; uint8
//        q[128]; 8 sub-blocks of 32 with 6-bit scale and min: x = d * sc *
//        nib - dmin * m
//   Q6_K (256 values, 210 bytes): uint8 ql[128], qh[64]; int8 scales[16];
//        f16 d; 16 sub-blocks of 16: x = d * scale * (q6 - 32)
//
// Quantizing is the scalar reference (ops/ref/quant_ref.cc), bit for bit
// llama.cpp's quantize_row_*_ref; the matmul (ops/cpu/quant_*.cc) quantizes
// each activation row to 8 bits once per call and runs integer dot products
// per block on the best SIMD target this CPU has.
#pragma once

#include <cstdint>

#include "base/dtype.h"
#include "ops/ops.h"

namespace dllm::ops {

// Quantizes n floats (n a multiple of DTypeBlock(t)) into DTypeBytes(t, n)
// bytes at dst, rounding as llama.cpp's reference quantizers do, so a file
// we write quantizes like one llama-quantize writes. t is a block format.
void QuantizeRow(DType t, const float* x, int64_t n, void* dst);

// The inverse: n values (a multiple of DTypeBlock(t)) from DTypeBytes(t, n)
// bytes, computed as ggml's dequantize_row_* does (same products, same
// order), so the floats are the same bits.
void DequantizeRow(DType t, const void* src, int64_t n, float* dst);

// Fails with a message naming `what` unless n values of t are whole blocks.
void CheckWholeBlocks(DType t, int64_t n, const char* what);

// MatMulWT (ops.h) for a block-quantized w: y (M, N) = x (M, K) * w^T (+
// bias). K must be a multiple of DTypeBlock(w.dtype). Each row of x is
// quantized once to 8 bits (blocks of 32 with a float scale for Q8_0/Q4_0
// weights; blocks of 256 with a float scale and sums of 16 for the K types),
// so the result differs from the float matmul of the dequantized weights by
// at most sum_k |w_k| * d_k / 2, d_k the activation scale (max|x| / 127 over
// the block holding k), plus fp32 rounding.
void MatMulWTQuantized(const float* x, int64_t M, const Matrix& w, float* y,
                       const float* bias);

// MatMulWTGroup (ops.h) for weights of one block format and width: x is
// quantized once for all of them, and they share one parallel pass.
void MatMulWTQuantizedGroup(const float* x, int64_t M, const MatMulOut* outs,
                            int n);

}  // namespace dllm::ops
