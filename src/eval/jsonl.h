// JSON Lines files, plain or gzip-compressed (HumanEval ships as .jsonl.gz).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dllm::eval {

struct JsonLine {
  int64_t line;  // 1-based, for error messages
  nlohmann::json value;
};

// Every non-blank line of `path` parsed as JSON. dllm::Error names the file
// and the line of the first line that is not JSON, and a missing file.
std::vector<JsonLine> ReadJsonLines(const std::string& path);

}  // namespace dllm::eval
