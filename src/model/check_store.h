// What loading checks about the stored tensors beyond binding each tensor the
// config calls for (presence, shape, dtype: model.cc): a file that disagrees
// with config.json must not be half-accepted, and weights that hold NaN or
// Inf must not reach a forward pass, where they surface far from the cause.
// Shared by inference (model.cc) and training, which load the same files.
#pragma once

#include "dllm/config.h"
#include "model/weights.h"

namespace dllm {

class TensorStore;

// Throws dllm::Error naming the tensor when
// - a stored tensor is not one the config uses (config.json with fewer layers
//   than the file, or from another model),
// - config.json ties the output head to the embedding but the file stores a
//   head that differs from it (an untied checkpoint: tying would silently
//   drop the head and print garbage). A stored head equal to the embedding
//   is accepted, as some exporters duplicate it,
// - a float tensor holds NaN or Inf (scanned on every thread).
// `names` is the store's name table (Hugging Face names for safetensors,
// llama.cpp's for GGUF).
void CheckStoredTensors(const ModelConfig& c, const TensorStore& store,
                        NameTable names = NameTable::kHf);

}  // namespace dllm
