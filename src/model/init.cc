// `dllm init`: random-weight model folders for tests and benchmarks.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"
#include "base/half.h"
#include "base/mmap_file.h"
#include "base/rng.h"
#include "dllm/model.h"
#include "formats/safetensors.h"
#include "model/weights.h"

namespace dllm {

void InitRandomModel(const ModelConfig& config, const std::string& dir,
                     const std::string& dtype_name, uint64_t seed,
                     float init_std) {
  DType dtype;
  DLLM_CHECK(ParseDType(dtype_name, &dtype) &&
                 (dtype == DType::kF32 || dtype == DType::kBF16 ||
                  dtype == DType::kF16),
             "init: dtype '", dtype_name,
             "' is not supported (expected F32, BF16 or F16)");
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    Fail(dir, ": cannot create folder: ", std::strerror(errno));

  // Collect the tensor list first; fill each tensor only when it is written,
  // so an 8B-shaped model never needs more than one tensor in memory.
  Weights w;
  struct Item {
    std::string name;
    std::vector<int64_t> shape;
    TensorRole role;
  };
  std::vector<Item> items;
  ForEachTensor(config, w,
                [&](const std::string& name, const std::vector<int64_t>& shape,
                    TensorRole role, Tensor&) {
                  items.push_back({name, shape, role});
                });
  std::vector<TensorToWrite> out;
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& it = items[i];
    TensorToWrite t;
    t.name = it.name;
    t.shape = it.shape;
    t.dtype = dtype;
    t.fill = [it, i, seed, dtype, init_std](void* dst) {
      int64_t n = 1;
      for (int64_t d : it.shape) n *= d;
      for (int64_t j = 0; j < n; ++j) {
        float v;
        if (it.role == TensorRole::kNorm)
          v = 1.0f;
        else if (it.role == TensorRole::kBias)
          v = 0.0f;
        else
          v = float(init_std * RandomNormal(seed, i, uint64_t(j)));
        if (dtype == DType::kF32)
          static_cast<float*>(dst)[j] = v;
        else if (dtype == DType::kBF16)
          static_cast<uint16_t*>(dst)[j] = F32ToBf16(v);
        else
          static_cast<uint16_t*>(dst)[j] = F32ToF16(v);
      }
    };
    out.push_back(std::move(t));
  }
  WriteSafetensors(dir + "/model.safetensors", out, {{"format", "pt"}});
  std::string cfg = ModelConfigToJson(config);
  WriteFileAtomic(dir + "/config.json", cfg.data(), cfg.size());
}

}  // namespace dllm
