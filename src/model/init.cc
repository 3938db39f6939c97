// `dllm init`: random-weight model folders for tests and benchmarks.
#include <cmath>

#include "base/rng.h"
#include "base/thread_pool.h"
#include "dllm/error.h"
#include "dllm/model.h"
#include "model/save.h"

namespace dllm {

void InitRandomModel(const ModelConfig& config, const std::string& dir,
                     const std::string& dtype_name, uint64_t seed,
                     float init_std) {
  DType dtype;
  DLLM_CHECK(ParseDType(dtype_name, &dtype), "init: dtype '", dtype_name,
             "' is not supported (expected F32, BF16 or F16)");
  DLLM_CHECK(std::isfinite(init_std) && init_std >= 0, "init: weight std ",
             init_std, " must be a finite number >= 0");
  const std::vector<TensorSpec> specs = ListTensors(config);
  // Each tensor is generated only when written, so an 8B-shaped model never
  // needs more than one tensor in memory.
  WriteModelFolder(config, dir, dtype, [&](size_t i, float* dst) {
    const TensorSpec& s = specs[i];
    // Counter-based draws: the same values on any number of threads (an
    // 8B-shaped model is 8e9 of them).
    ParallelFor(
        size_t(s.numel()), size_t(1) << 16, [&](size_t b, size_t e, int) {
          for (size_t j = b; j < e; ++j)
            dst[j] = s.role == TensorRole::kNorm ? 1.0f
                     : s.role == TensorRole::kBias
                         ? 0.0f
                         : float(init_std * RandomNormal(seed, i, uint64_t(j)));
        });
  });
}

}  // namespace dllm
