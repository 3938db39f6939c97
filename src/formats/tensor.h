// What every weight format shares: a stored tensor seen in place (a view into
// a mapped file) and a tensor to write, produced when its turn comes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/dtype.h"

namespace dllm {

// A stored tensor: a view into a mapped file (or any buffer). `shape` is
// row-major, the last dimension contiguous (a GGUF tensor's ne[] reversed).
// For block types (Q8_0, ...) a row of the last dimension is whole blocks.
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// Bytes of a tensor of `shape` stored as `dtype` (block types: whole blocks
// per row of the last dimension, which the caller has checked).
inline uint64_t TensorBytes(DType dtype, const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return DTypeBytes(dtype, static_cast<int64_t>(n));
}

// Index of the first NaN or Inf among n values of a float dtype (F32, BF16,
// F16), or -1 when all are finite (and for other dtypes, which cannot hold
// either). *is_nan tells which was found. Single-threaded.
int64_t FirstNonFinite(DType dtype, const uint8_t* data, int64_t n,
                       bool* is_nan);

// A tensor to write: `data` holds TensorBytes(dtype, shape) bytes, or, when
// data is null, `fill` writes them into a buffer when the tensor's turn comes
// (so huge models are written one tensor in memory at a time).
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  std::function<void(void* dst)> fill;
};

}  // namespace dllm
