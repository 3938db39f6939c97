// Writing a model folder (config.json + model.safetensors, the layout of the
// architecture's published checkpoints) from any source of fp32 values.
#pragma once

#include <cstdint>
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
  int rope_heads = 0;  // RopeHeads: heads of a tensor that feeds RoPE, else 0
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// The tensor list of a config, in ForEachTensor order, named by `names`.
std::vector<TensorSpec> ListTensors(const ModelConfig& c,
                                    NameTable names = NameTable::kHf);

// Throws unless the file system holding `dir` has `bytes` free for a new
// file named `what` (a write that fails with ENOSPC after minutes and
// gigabytes is worse than a refusal up front).
void CheckFreeSpace(const std::string& dir, uint64_t bytes,
                    const std::string& what);

// Creates `dir` if needed, checks that the file system has room and writes
// config.json and model.safetensors (CheckFreeSpace) and writes them
// atomically. fill(i, dst) writes tensor i's numel() values as fp32; they are
// stored as `dtype` (F32, BF16 or F16), one tensor in memory at a time.
void WriteModelFolder(const ModelConfig& c, const std::string& dir, DType dtype,
                      const std::function<void(size_t i, float* dst)>& fill);

}  // namespace dllm
