#include "eval/jsonl.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "dllm/error.h"

namespace dllm::eval {
namespace {

// The whole file, decompressed when it is gzip (zlib reads other files as
// they are).
std::string ReadMaybeGzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  DLLM_CHECK(f, path, ": cannot open (", std::strerror(errno), ")");
  std::string data;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) data.append(buf, size_t(n));
  int err = Z_OK;
  const char* msg = n < 0 ? gzerror(f, &err) : nullptr;
  const std::string what = msg ? msg : "";
  gzclose(f);
  DLLM_CHECK(n == 0, path, ": cannot read (", what, ")");
  return data;
}

}  // namespace

std::vector<JsonLine> ReadJsonLines(const std::string& path) {
  const std::string data = ReadMaybeGzip(path);
  std::vector<JsonLine> lines;
  size_t pos = 0;
  for (int64_t line = 1; pos < data.size(); ++line) {
    size_t end = data.find('\n', pos);
    if (end == std::string::npos) end = data.size();
    const std::string text = data.substr(pos, end - pos);
    pos = end + 1;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      lines.push_back({line, nlohmann::json::parse(text)});
    } catch (const nlohmann::json::parse_error& e) {
      Fail(path, ":", line, ": not JSON (", e.what(), ")");
    }
    DLLM_CHECK(lines.back().value.is_object(), path, ":", line,
               ": expected a JSON object, got ",
               lines.back().value.type_name());
  }
  return lines;
}

}  // namespace dllm::eval
