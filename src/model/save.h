// Writing a model folder (config.json + model.safetensors, the layout of the
// architecture's published checkpoints) from any source of fp32 values.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "dllm/config.h"
#include "model/weights.h"

namespace dllm {

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  TensorRole role;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// The tensor list of a config, in ForEachTensor order.
std::vector<TensorSpec> ListTensors(const ModelConfig& c);

// Creates `dir` if needed and writes config.json and model.safetensors
// atomically. fill(i, dst) writes tensor i's numel() values as fp32; they are
// stored as `dtype` (F32, BF16 or F16), one tensor in memory at a time.
void WriteModelFolder(const ModelConfig& c, const std::string& dir, DType dtype,
                      const std::function<void(size_t i, float* dst)>& fill);

}  // namespace dllm
