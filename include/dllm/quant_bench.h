// Public API: timing the matmul on block-quantized (ggml Q8_0, Q4_0, Q4_K,
// Q6_K) and float weights, for `dllm bench quant`. Speeds are reported as
// weight bytes read per second, to set against the memory bandwidth measured
// in the same run (ceiling.h, and MeasureReadBandwidth here).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dllm {

struct MatMulBench {
  std::string dtype;   // "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K"
  std::string kernel;  // quantized kernel target ("avx512vnni", ...) or "float"
  int64_t M = 0, N = 0, K = 0;
  double weight_bytes = 0;  // one copy of the (N, K) weights as stored
  int64_t copies = 0;       // copies cycled through (1: cache-hot)
  int64_t reps = 0;         // timed calls in the fastest window
  double ms = 0;            // mean ms per call in that window
  double gbps = 0;          // weight_bytes / time per call, GB/s
  double gflops = 0;        // 2 M N K / time per call
  // RMS(y - y_ref) / RMS(y_ref) with y_ref the fp32 matmul of the weights
  // before quantization (all errors), and of the dequantized weights (the
  // activation quantization alone; 0 for float types).
  double rel_err = 0, rel_err_act = 0;
};

// Times y (M, N) = x (M, K) w^T through the engine's matmul, w random normal
// stored as `dtype`. kernel: a name from QuantKernelTargets() to force, or ""
// for the best. With cold_bytes > 0 the call cycles over enough copies of w
// to exceed cold_bytes, so every call reads its weights from memory, as a
// model's decoding step does; 0 reuses one copy (cache-hot when it fits).
// Times `windows` runs of at least min_seconds each after one warm-up call
// and reports the fastest window (on a shared machine the others lost time
// to other work).
MatMulBench BenchMatMul(const std::string& dtype, int64_t M, int64_t N,
                        int64_t K, const std::string& kernel = "",
                        double min_seconds = 0.3,
                        int64_t cold_bytes = int64_t(256) << 20,
                        int windows = 1);

// The quantized matmul's kernel targets this CPU runs, best first (always
// ending in "scalar").
std::vector<std::string> QuantKernelTargets();

// Memory read bandwidth in GB/s: every pool thread streams its slice of a
// `bytes` buffer (the access pattern of a decoding matmul).
double MeasureReadBandwidth(int64_t bytes = int64_t(256) << 20,
                            double min_seconds = 0.3);

}  // namespace dllm
