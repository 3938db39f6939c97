// safetensors: 8-byte little-endian header length N, N bytes of JSON naming
// each tensor's dtype, shape and [begin, end) byte range in the data section
// that follows. Files are mmapped; tensors are views into the mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/mmap_file.h"

namespace dllm {

// A stored tensor: a view into a mapped file (or any buffer).
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

// Index of the first NaN or Inf among n values of a float dtype (F32, BF16,
// F16), or -1 when all are finite (and for other dtypes, which cannot hold
// either). *is_nan tells which was found. Single-threaded.
int64_t FirstNonFinite(DType dtype, const uint8_t* data, int64_t n,
                       bool* is_nan);

// Largest JSON header we accept: real files have a few hundred KB at most.
constexpr uint64_t kMaxSafetensorsHeader = 100ull << 20;

// Parses and validates a whole safetensors image held in memory: header
// bounds, JSON, dtypes, shapes, offsets inside the data, no overlaps, no
// duplicate names, byte length = numel x dtype size. `origin` names the file
// in error messages. Views point into `data`.
void ParseSafetensors(const uint8_t* data, size_t size,
                      const std::string& origin,
                      std::vector<TensorView>* tensors,
                      std::map<std::string, std::string>* metadata);

// One mmapped safetensors file.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const {
    return metadata_;
  }
  const std::string& path() const { return file_.path(); }
  size_t file_size() const { return file_.size(); }

 private:
  MappedFile file_;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a model: one file, or the shards named by
// model.safetensors.index.json.
class TensorStore {
 public:
  // `path` is a folder (model.safetensors or the index) or a .safetensors file.
  static std::unique_ptr<TensorStore> Open(const std::string& path);

  const TensorView* Find(const std::string& name) const;  // nullptr if absent
  const std::vector<const TensorView*>& all() const { return all_; }
  size_t total_file_bytes() const;
  // Scans every float tensor for NaN and Inf, spread over the thread pool;
  // throws naming the file, the tensor and the first bad element. A model
  // with such weights produces garbage (or ids outside the vocabulary) far
  // from the cause, so loading is the place to say it.
  void CheckFinite() const;
  // Where tensors come from, for messages ("model.safetensors" or the index).
  const std::string& origin() const { return origin_; }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> by_name_;
  std::vector<const TensorView*> all_;
  std::string origin_;
};

// A tensor to write: `data` holds numel x DTypeSize(dtype) bytes, or, when
// data is null, `fill` writes them into a buffer when the tensor's turn comes
// (so huge models are written one tensor in memory at a time).
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  std::function<void(void* dst)> fill;
};

// Writes a safetensors file atomically (temp file, fsync, rename), tensors in
// the given order, each data offset aligned to 64 bytes from the data start.
void WriteSafetensors(const std::string& path,
                      const std::vector<TensorToWrite>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace dllm
