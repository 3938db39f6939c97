// A read-only memory map of a whole file (weights are used in place from it)
// and the atomic writer behind WriteFileAtomic (dllm/files.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "dllm/files.h"

namespace dllm {

class MappedFile {
 public:
  // Maps `path` read-only; throws dllm::Error naming the path on failure.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Streams a file into place atomically: bytes go to `path.tmp.PID`; Commit()
// fsyncs and renames it over `path`. Destroyed without Commit(), it removes
// the temporary file, so an interrupted save leaves the previous file intact.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void Write(const void* data, size_t size);
  void Commit();

 private:
  std::string path_, tmp_;
  int fd_ = -1;
};

}  // namespace dllm
