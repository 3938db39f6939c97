// The AVX-512 VNNI kernel of the quantized matmul (vpdpbusd, vpdpwssd); the
// code is quant_avx512-inl.h. Called only when the CPU has AVX-512 F, BW,
// VL and VNNI (and AVX2, FMA, F16C).
#define QK_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define QK_VNNI 1
#define QK_NAME avx512vnni
#include "ops/cpu/quant_avx512-inl.h"

#if defined(__x86_64__) || defined(__i386__)
namespace dllm::cpu::quant {

const Kernel& Avx512VnniKernel() {
  static const Kernel k{QuantTarget::kAvx512Vnni, QuantizeActAvx2,
                        avx512vnni::TileAll, avx512vnni::Shape};
  return k;
}

}  // namespace dllm::cpu::quant
#endif  // x86
