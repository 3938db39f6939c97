// A compiled PCRE2 pattern (UTF + Unicode properties, JIT when available)
// used by the pre-tokenizer to split text the way Oniguruma does in the
// Hugging Face library.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dllm {

class Regex {
 public:
  // Compiles `pattern`; `literal` takes it as a plain string. Throws
  // dllm::Error naming `source` and the offset of a syntax error.
  Regex(const std::string& pattern, bool literal, const std::string& source);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the [start, end) byte offsets of all non-overlapping matches in
  // `s` (valid UTF-8), left to right. An empty match advances by one char.
  void FindAll(std::string_view s,
               std::vector<std::pair<uint32_t, uint32_t>>* out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
};

}  // namespace dllm
