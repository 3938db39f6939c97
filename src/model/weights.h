// The tensor list: every weight of the transformer, named once with its
// shape. Loading, saving, init and (later) the optimizer and GPU upload walk
// this one list (DESIGN.md "One tensor list per model").
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "dllm/config.h"
#include "ops/ops.h"

namespace dllm {

// A weight: a view into a mapped file or into memory the model owns.
struct Tensor {
  DType dtype = DType::kF32;
  void* data = nullptr;
  std::vector<int64_t> shape;

  bool empty() const { return data == nullptr; }
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  const float* f32() const { return static_cast<const float*>(data); }
  ops::Matrix matrix() const {
    return {dtype, data, shape[0], shape.size() > 1 ? shape[1] : 1};
  }
};

struct LayerWeights {
  Tensor attn_norm;     // (C)
  Tensor wq;            // (n_heads*hd, C)
  Tensor wk, wv;        // (n_kv_heads*hd, C)
  Tensor bq;            // (n_heads*hd), only with qkv_bias
  Tensor bk, bv;        // (n_kv_heads*hd), only with qkv_bias
  Tensor wo;            // (C, n_heads*hd)
  Tensor ffn_norm;      // (C)
  Tensor w_gate, w_up;  // (d_ff, C): down(silu(gate x) * up x)
  Tensor w_down;        // (C, d_ff)
};

struct Weights {
  Tensor embed;                      // (V, C)
  std::vector<LayerWeights> layers;  // n_layers
  Tensor final_norm;                 // (C)
  Tensor lm_head;                    // (V, C); empty when tied to embed
};

// What a tensor is for, so that visitors can treat norms and biases (kept in
// fp32) apart from matrices (used in their stored dtype).
enum class TensorRole { kMatrix, kNorm, kBias, kEmbedding };

using TensorVisitor = std::function<void(const std::string& name,
                                         const std::vector<int64_t>& shape,
                                         TensorRole role, Tensor& t)>;

// One name table per file format: the names of the architecture's published
// Hugging Face checkpoints (LLaDA's, or Qwen2's for Dream), or llama.cpp's
// GGUF names (token_embd.weight, blk.N.attn_q.weight, ..., output.weight),
// which are the same for every architecture.
enum class NameTable { kHf, kGguf };

// Names of the embedding and of the untied output head in the architecture's
// checkpoints (the head is stored only when untied, or tied but duplicated).
std::string EmbeddingName(const ModelConfig& c,
                          NameTable names = NameTable::kHf);
std::string OutputHeadName(const ModelConfig& c,
                           NameTable names = NameTable::kHf);

// Visits every tensor the config calls for, in one fixed order, named by
// `names`.
void ForEachTensor(const ModelConfig& c, Weights& w, const TensorVisitor& visit,
                   NameTable names = NameTable::kHf);

// The number of heads whose rows a tensor holds when it feeds RoPE (wq, bq:
// n_heads; wk, bk: n_kv_heads), else 0: the tensors whose rows llama.cpp
// reorders for its interleaved RoPE (model/gguf_model.h).
int RopeHeads(const ModelConfig& c, const Weights& w, const Tensor& t);

}  // namespace dllm
