// Element types of stored tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace dllm {

enum class DType : uint8_t { kF32, kF16, kBF16, kI32, kI64, kU8, kI8 };

inline size_t DTypeSize(DType t) {
  switch (t) {
    case DType::kF32:
      return 4;
    case DType::kF16:
      return 2;
    case DType::kBF16:
      return 2;
    case DType::kI32:
      return 4;
    case DType::kI64:
      return 8;
    case DType::kU8:
      return 1;
    case DType::kI8:
      return 1;
  }
  return 0;
}

// Names as safetensors spells them ("F32", "BF16", ...).
const char* DTypeName(DType t);
// Parses a safetensors dtype name; returns false if unknown.
bool ParseDType(const std::string& name, DType* out);

}  // namespace dllm
