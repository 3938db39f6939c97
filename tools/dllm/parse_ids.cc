#include "parse_ids.h"

#include <cctype>
#include <cstdlib>

#include "args.h"

namespace dllm::cli {

std::vector<int32_t> ParseIdList(const std::string& text,
                                 const std::string& option) {
  std::vector<int32_t> out;
  size_t i = 0;
  while (i < text.size()) {
    if (std::isspace(static_cast<unsigned char>(text[i])) || text[i] == ',') {
      ++i;
      continue;
    }
    size_t j = i;
    if (text[j] == '-') ++j;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j])))
      ++j;
    std::string tok = text.substr(i, j - i);
    DLLM_USAGE_CHECK(!tok.empty() && tok != "-" &&
                         (j == text.size() ||
                          std::isspace(static_cast<unsigned char>(text[j])) ||
                          text[j] == ','),
                     option,
                     ": expected integers separated by spaces or commas, got '",
                     text, "'");
    long long v = std::strtoll(tok.c_str(), nullptr, 10);
    DLLM_USAGE_CHECK(tok.size() <= 11 && v >= INT32_MIN && v <= INT32_MAX,
                     option, ": value ", tok, " is out of range");
    out.push_back(int32_t(v));
    i = j;
  }
  return out;
}

}  // namespace dllm::cli
