// Public API: small file helpers every front end needs. Writes are atomic, so
// nothing a user saved is ever left torn.
#pragma once

#include <cstddef>
#include <string>

namespace dllm {

// Reads a whole (small) file into a string; throws dllm::Error naming the
// path.
std::string ReadFileToString(const std::string& path);

// Writes `size` bytes to `path` atomically: a temporary file in the same
// folder, fsync, rename, fsync of the folder. A crash leaves either the old
// file or the new one, never a torn one.
void WriteFileAtomic(const std::string& path, const void* data, size_t size);

// True when `path` names an existing file or folder.
bool FileExists(const std::string& path);

}  // namespace dllm
