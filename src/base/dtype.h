// Element types of stored tensors: plain scalars, and the block-quantized
// formats of GGUF (ggml), where a row is a run of fixed-size blocks, each
// holding its own scale(s) and `DTypeBlock` packed values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace dllm {

enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kI32,
  kI64,
  kU8,
  kI8,
  // ggml block formats (layouts in ops/quant.h).
  kQ8_0,  // 32 values: f16 scale, 32 x int8                 (34 bytes)
  kQ4_0,  // 32 values: f16 scale, 16 bytes of 4-bit values  (18 bytes)
  kQ4_K,  // 256 values: 8 sub-blocks with 6-bit scales/mins (144 bytes)
  kQ6_K,  // 256 values: 16 sub-blocks with int8 scales      (210 bytes)
};

inline bool IsQuantized(DType t) {
  return t == DType::kQ8_0 || t == DType::kQ4_0 || t == DType::kQ4_K ||
         t == DType::kQ6_K;
}

// Values per block: 1 for scalar types.
inline int64_t DTypeBlock(DType t) {
  switch (t) {
    case DType::kQ8_0:
    case DType::kQ4_0:
      return 32;
    case DType::kQ4_K:
    case DType::kQ6_K:
      return 256;
    default:
      return 1;
  }
}

// Bytes per block (the element size for scalar types).
inline size_t DTypeBlockBytes(DType t) {
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
    case DType::kQ8_0:
      return 34;
    case DType::kQ4_0:
      return 18;
    case DType::kQ4_K:
      return 144;
    case DType::kQ6_K:
      return 210;
  }
  return 0;
}

// Bytes of one element of a scalar type; 0 for block formats (use
// DTypeBytes, which takes a count).
inline size_t DTypeSize(DType t) {
  return IsQuantized(t) ? 0 : DTypeBlockBytes(t);
}

// Bytes of n values; n must be a multiple of DTypeBlock(t) (callers check
// with DTypeBlock first: a row of a quantized matrix is whole blocks).
inline size_t DTypeBytes(DType t, int64_t n) {
  return size_t(n / DTypeBlock(t)) * DTypeBlockBytes(t);
}

// Names as safetensors and ggml spell them ("F32", "BF16", "Q8_0", ...).
const char* DTypeName(DType t);
// Parses a dtype name (any of DTypeName's); returns false if unknown.
// Formats that cannot hold block types (safetensors) reject them after.
bool ParseDType(const std::string& name, DType* out);

}  // namespace dllm
