// The quantized matmul's kernels (y = x w^T, w in a ggml block format, x
// fp32), one set per SIMD target, all computing the same integers:
//
//  1. Each activation row is quantized once per call to int8 (values in
//     [-127, 127], round to nearest even) in blocks of B = 32 (for Q8_0 and
//     Q4_0 weights, like ggml's Q8_0 but with an fp32 scale) or B = 256
//     (for Q4_K and Q6_K, like ggml's Q8_K: fp32 scale, sums of 16). Every
//     target's quantizer gives the same bytes (same float ops, same
//     rounding), so the targets differ only in how they add.
//  2. Per weight block, an exact integer dot product of the stored integer
//     values with the activation's (sub-block scales applied in integers
//     for the K types), then one fp32 multiply-add by the two scales.
//
// So every target's result equals the scalar kernel's up to the order of
// the fp32 additions of the per-block products. The dispatcher
// (quant_matmul.cc) picks the best target this CPU has; tests force each.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/dtype.h"

namespace dllm::cpu {

// Kernel paths of the quantized matmul, worst to best.
enum class QuantTarget : int {
  kScalar = 0,      // portable C++
  kAvx2 = 1,        // AVX2 + FMA + F16C: maddubs / madd
  kAvx512 = 2,      // AVX-512 F/BW/VL: the same on 512-bit vectors
  kAvx512Vnni = 3,  // AVX-512 VNNI: vpdpbusd / vpdpwssd
};

// The targets this CPU (and OS) can run, best first; kScalar always.
std::vector<QuantTarget> QuantTargets();
// Testing: run every quantized matmul on `t` (which must be in
// QuantTargets()) until ResetQuantTarget().
void ForceQuantTarget(QuantTarget t);
void ResetQuantTarget();
QuantTarget ActiveQuantTarget();
const char* QuantTargetName(QuantTarget t);

namespace quant {

// Activation block size for weights of type t: 32 or 256.
inline int64_t ActBlock(DType t) { return DTypeBlock(t) == 256 ? 256 : 32; }

// Quantized activation rows (one buffer per matmul call), row m at:
//   q     + m * K        int8 values (K)
//   d     + m * K / B    fp32 scales, one per block of B
//   d8    + m * K / 4    (B = 32) each block's scale repeated 8 times, so a
//                        16-lane vector holds the scales of 2 blocks
//   bsums + m * K / 16   (B = 256) sums of 16 consecutive values
//   corr  + m * K / 4    (B = 32) -corr_off * (sums of 4 consecutive
//                        values): the start of an unsigned x signed dot
//                        product whose unsigned side is w + corr_off (Q8_0
//                        made unsigned: 128; Q4_0's stored nibbles: 8)
struct Act {
  int8_t* q = nullptr;
  float* d = nullptr;
  float* d8 = nullptr;
  int16_t* bsums = nullptr;
  int32_t* corr = nullptr;
  int64_t K = 0, B = 32;
  int32_t corr_off = 0;

  const int8_t* Q(int64_t m) const { return q + m * K; }
  const float* D(int64_t m) const { return d + m * (K / B); }
  const float* D8(int64_t m) const { return d8 + m * (K / 4); }
  const int16_t* BSums(int64_t m) const { return bsums + m * (K / 16); }
  const int32_t* Corr(int64_t m) const { return corr + m * (K / 4); }
};

// Quantizes row m of an activation buffer from x (K floats).
using QuantizeActFn = void (*)(const float* x, const Act& a, int64_t m);

// One tile of outputs: y[r * ldy + c] = dot(activation row m0 + r, weight
// row c) for r < R, c < C (the kernel writes, never adds). w points at the
// tile's first weight row; rows are w_stride bytes apart.
struct Tile {
  const uint8_t* w = nullptr;
  size_t w_stride = 0;
  int C = 1;
  const Act* act = nullptr;
  int64_t m0 = 0;
  int R = 1;
  float* y = nullptr;
  int64_t ldy = 0;
};

// The tile shapes a kernel takes for a weight type: (rows, cols), (rows,
// 1), (1, cols1) and (1, 1). Decoding (one row of x) wants cols1 = 1: the
// weight rows are then read in memory order, one stream the hardware
// prefetcher follows; interleaving several short rows defeats it (a third
// of the bandwidth, measured).
struct TileShape {
  int rows = 1, cols = 1, cols1 = 1;
};

// Decoding (a tile of one weight row) reads a slice's rows in memory order,
// one stream: each kernel asks for the lines kDecodeAheadBytes past what it
// loads, into L2. On an Intel Xeon host (AVX-512, 2 threads) that made the
// from-memory decoding matmuls 1.3-2.9x faster (bench quant --rows 1) and
// the 12 x 768 Q8_0 decoding step 6.4-6.8 -> 4.0-4.9 ms; 2 KB ahead gave
// 4.8-5.0 ms, 8 KB as 4 KB, and into L1 no better.
constexpr size_t kDecodeAheadBytes = 4096;
inline void PrefetchDecodeAhead(const uint8_t* at, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64)
    __builtin_prefetch(at + kDecodeAheadBytes + o, /*rw=*/0, /*locality=*/2);
}

struct Kernel {
  QuantTarget target;
  QuantizeActFn quantize_act;
  void (*tile)(DType t, const Tile& tile);
  TileShape (*shape)(DType t);
};

// Each target's kernel (defined in quant_<target>.cc). Only call one that
// QuantTargets() lists.
const Kernel& ScalarKernel();
const Kernel& Avx2Kernel();
const Kernel& Avx512Kernel();
const Kernel& Avx512VnniKernel();

// The scalar activation quantizer (the definition every target matches),
// and the AVX2 one (also used by the AVX-512 kernels).
void QuantizeActScalar(const float* x, const Act& a, int64_t m);
void QuantizeActAvx2(const float* x, const Act& a, int64_t m);

}  // namespace quant
}  // namespace dllm::cpu
