#include "model/rope.h"

#include <cmath>

#include "formats/tensor_store.h"

namespace dllm {

void FillRopeTable(const ModelConfig& c, int64_t from, int64_t to, float* cos_t,
                   float* sin_t) {
  const int64_t half = c.head_dim / 2;
  const float theta = float(c.rope_theta);
  for (int64_t i = 0; i < half; ++i) {
    float inv = 1.0f / std::pow(theta, float(2 * i) / float(c.head_dim));
    for (int64_t p = from; p < to; ++p) {
      float a = float(p) * inv;
      cos_t[p * half + i] = std::cos(a);
      sin_t[p * half + i] = std::sin(a);
    }
  }
}

void MatchStoredSwitches(ModelConfig& c, const TensorStore& store,
                         NameTable names) {
  if (c.arch == Arch::kDream)
    c.qkv_bias =
        store.Find(names == NameTable::kGguf
                       ? "blk.0.attn_q.bias"
                       : "model.layers.0.self_attn.q_proj.bias") != nullptr;
}

}  // namespace dllm
