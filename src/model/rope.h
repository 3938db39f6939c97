// What inference (model.cc) and training (trainable.cc) must compute the same
// way: the RoPE tables and the switches read from the stored tensors.
#pragma once

#include <cstdint>

#include "dllm/config.h"
#include "model/weights.h"

namespace dllm {

class TensorStore;

// RoPE angles as the Hugging Face code computes them (float32 inverse
// frequencies and products), so long positions round the same way. Fills
// rows [from, to) of (positions, head_dim/2) cos and sin tables.
void FillRopeTable(const ModelConfig& c, int64_t from, int64_t to, float* cos_t,
                   float* sin_t);

// Switches that follow the files rather than config.json: Qwen2 (Dream)
// always has q/k/v biases, but checkpoints derived from it may not.
// `names` is the store's name table.
void MatchStoredSwitches(ModelConfig& c, const TensorStore& store,
                         NameTable names = NameTable::kHf);

}  // namespace dllm
