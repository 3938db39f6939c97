// The AVX-512 F/BW/VL kernel of the quantized matmul (maddubs + madd on
// 512-bit vectors); the code is quant_avx512-inl.h. Called only when the CPU
// has AVX-512 F, BW and VL (and AVX2, FMA, F16C).
#define QK_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl"
#define QK_VNNI 0
#define QK_NAME avx512
#include "ops/cpu/quant_avx512-inl.h"

#if defined(__x86_64__) || defined(__i386__)
namespace dllm::cpu::quant {

const Kernel& Avx512Kernel() {
  static const Kernel k{QuantTarget::kAvx512, QuantizeActAvx2, avx512::TileAll,
                        avx512::Shape};
  return k;
}

}  // namespace dllm::cpu::quant
#endif  // x86
