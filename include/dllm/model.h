// Public API: load a model and run the transformer forward.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dllm/config.h"

namespace dllm {

struct Weights;
class TensorStore;

// One forward call over B sequences of T tokens each (right-padded).
struct ForwardBatch {
  int64_t B = 1, T = 0;
  const int32_t* ids = nullptr;  // (B, T)
  const uint8_t* key_mask =
      nullptr;  // (B, T): 1 = real token; nullptr = all real
  const int32_t* positions =
      nullptr;  // (B, T) RoPE positions; nullptr = 0..T-1
  // Flat indices b*T + t of the rows whose logits are wanted, in output
  // order; nullptr with n_rows < 0 means every row.
  const int32_t* rows = nullptr;
  int64_t n_rows = -1;
};

// Summary of one stored tensor, for `dllm info`.
struct TensorInfo {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
};

class Model {
 public:
  // Loads a Hugging Face folder: config.json + model.safetensors (or shards
  // with model.safetensors.index.json). Weights stay mmapped; matrices are
  // used in their stored dtype (F32, BF16, F16). Every tensor's presence and
  // shape is checked against the config.
  static std::unique_ptr<Model> Load(const std::string& dir);
  ~Model();

  const ModelConfig& config() const { return config_; }
  const std::string& dir() const { return dir_; }
  std::vector<TensorInfo> Tensors() const;
  size_t file_bytes() const;          // bytes of the weight files
  std::string weights_dtype() const;  // dtype of the matrices ("BF16", ...)

  // Writes raw logits (no shift) of the requested rows: (n_rows, vocab).
  // Token ids are checked against the vocabulary. Not thread-safe: one
  // forward at a time per Model (it reuses its activation buffers).
  void Forward(const ForwardBatch& batch, float* logits);

  // Bytes of activation buffers the last Forward used.
  size_t activation_bytes() const;

 private:
  Model();
  struct Scratch;
  ModelConfig config_;
  std::string dir_;
  std::unique_ptr<TensorStore> store_;
  std::unique_ptr<Weights> weights_;
  std::vector<std::vector<float>> owned_;  // norms and biases converted to f32
  std::unique_ptr<Scratch> scratch_;
};

// `dllm init`: writes a random-weight model folder (config.json +
// model.safetensors) for tests and benchmarks. dtype: "F32", "BF16" or "F16".
void InitRandomModel(const ModelConfig& config, const std::string& dir,
                     const std::string& dtype, uint64_t seed,
                     float init_std = 0.02f);

}  // namespace dllm
