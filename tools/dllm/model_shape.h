// The model-shape options shared by `dllm train` and `dllm bench train`.
#pragma once

#include "args.h"
#include "dllm/config.h"

namespace dllm::cli {

struct ShapeDefaults {
  const char* layers;
  const char* d_model;
  const char* heads;
};

// --layers --d-model --heads --kv-heads --ffn --rope-theta --tied
void AddShapeOptions(Args& a, const ShapeDefaults& d);
// A LLaDA-layout config of that shape (vocabulary and ids left to the
// caller); throws a clear error for shapes that cannot work.
void ReadShape(const Args& a, ModelConfig* c);

}  // namespace dllm::cli
