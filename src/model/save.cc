#include "model/save.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"
#include "base/half.h"
#include "base/mmap_file.h"
#include "formats/safetensors.h"

namespace dllm {

std::vector<TensorSpec> ListTensors(const ModelConfig& c) {
  std::vector<TensorSpec> out;
  Weights w;
  ForEachTensor(c, w,
                [&](const std::string& name, const std::vector<int64_t>& shape,
                    TensorRole role, Tensor&) {
                  out.push_back({name, shape, role});
                });
  return out;
}

void WriteModelFolder(const ModelConfig& c, const std::string& dir, DType dtype,
                      const std::function<void(size_t, float*)>& fill) {
  DLLM_CHECK(
      dtype == DType::kF32 || dtype == DType::kBF16 || dtype == DType::kF16,
      "cannot store model weights as ", DTypeName(dtype),
      " (expected F32, BF16 or F16)");
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    Fail(dir, ": cannot create folder: ", std::strerror(errno));
  const std::vector<TensorSpec> specs = ListTensors(c);
  std::vector<TensorToWrite> out;
  for (size_t i = 0; i < specs.size(); ++i) {
    TensorToWrite t;
    t.name = specs[i].name;
    t.shape = specs[i].shape;
    t.dtype = dtype;
    t.fill = [i, dtype, n = specs[i].numel(), &fill](void* dst) {
      if (dtype == DType::kF32) return fill(i, static_cast<float*>(dst));
      std::vector<float> tmp(static_cast<size_t>(n));
      fill(i, tmp.data());
      uint16_t* h = static_cast<uint16_t*>(dst);
      for (int64_t j = 0; j < n; ++j)
        h[j] = dtype == DType::kBF16 ? F32ToBf16(tmp[size_t(j)])
                                     : F32ToF16(tmp[size_t(j)]);
    };
    out.push_back(std::move(t));
  }
  WriteSafetensors(dir + "/model.safetensors", out, {{"format", "pt"}});
  const std::string cfg = ModelConfigToJson(c);
  WriteFileAtomic(dir + "/config.json", cfg.data(), cfg.size());
}

}  // namespace dllm
