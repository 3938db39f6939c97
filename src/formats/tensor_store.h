// All tensors of a model, whatever file format holds them: a safetensors
// file, the shards named by model.safetensors.index.json, or one GGUF file.
// Names are the file's own (Hugging Face names for safetensors, llama.cpp's
// for GGUF); the model layer's name tables map its tensor list onto them.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "formats/tensor.h"

namespace dllm {

class SafetensorsFile;
class GgufFile;

enum class TensorFormat { kSafetensors, kGguf };

class TensorStore {
 public:
  // `path` is a folder (model.safetensors or the index), a .safetensors file
  // or a GGUF file (by its .gguf name or its magic).
  static std::unique_ptr<TensorStore> Open(const std::string& path);
  ~TensorStore();

  const TensorView* Find(const std::string& name) const;  // nullptr if absent
  const std::vector<const TensorView*>& all() const { return all_; }
  size_t total_file_bytes() const;
  // Scans every float tensor for NaN and Inf, spread over the thread pool;
  // throws naming the file, the tensor and the first bad element. A model
  // with such weights produces garbage (or ids outside the vocabulary) far
  // from the cause, so loading is the place to say it. (Block-quantized
  // tensors are not scanned: their scales are f16 and cannot be checked
  // without decoding every block.)
  void CheckFinite() const;
  // Where tensors come from, for messages ("model.safetensors", the index or
  // the .gguf file).
  const std::string& origin() const { return origin_; }
  TensorFormat format() const { return format_; }
  // The GGUF file (metadata included) when format() is kGguf, else nullptr.
  const GgufFile* gguf() const { return gguf_.get(); }

 private:
  TensorStore();
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unique_ptr<GgufFile> gguf_;
  std::map<std::string, const TensorView*> by_name_;
  std::vector<const TensorView*> all_;
  std::vector<std::string> file_of_;  // path of the file holding all_[i]
  std::string origin_;
  TensorFormat format_ = TensorFormat::kSafetensors;
};

// True when `path` names a GGUF file: a regular file ending in .gguf or
// starting with the GGUF magic.
bool IsGgufPath(const std::string& path);

}  // namespace dllm
