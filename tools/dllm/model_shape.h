// The model-shape options shared by `dllm train` and `dllm bench train`.
#pragma once

#include <string>
#include <vector>

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
// The shape options given on the command line ("--layers", ...), which a
// model continued from (--init-from, --resume) must agree with.
std::vector<std::string> GivenShapeOptions(const Args& a);

}  // namespace dllm::cli
