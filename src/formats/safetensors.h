// safetensors: 8-byte little-endian header length N, N bytes of JSON naming
// each tensor's dtype, shape and [begin, end) byte range in the data section
// that follows. Files are mmapped; tensors are views into the mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/mmap_file.h"
#include "formats/tensor.h"
// TensorStore (either format) used to live here; its users still include
// this header.
#include "formats/tensor_store.h"

namespace dllm {

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

// Writes a safetensors file atomically (temp file, fsync, rename), tensors in
// the given order, each data offset aligned to 64 bytes from the data start.
void WriteSafetensors(const std::string& path,
                      const std::vector<TensorToWrite>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace dllm
