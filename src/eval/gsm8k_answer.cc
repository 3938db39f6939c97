// GSM8K answer extraction: what lm-evaluation-harness and the GSM8K paper
// compare is a number, so both the reference ("#### 1,234") and the model's
// text are reduced to one, written without grouping commas or "$".
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "dllm/code_eval.h"

namespace dllm {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Every number in `s` in order, normalized: "-$1,234.50" -> "-1234.50".
// A '-' is a sign only when it touches the number (or its "$") and does not
// follow a word or a number ("5-3" is a subtraction); a '.' belongs to the
// number only with a digit after it (so a sentence's period does not).
std::vector<std::string> Numbers(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    if (!IsDigit(s[i])) {
      ++i;
      continue;
    }
    size_t start = i;
    if (start > 0 && s[start - 1] == '$') --start;
    bool negative = false;
    if (start > 0 && s[start - 1] == '-') {
      const char before = start > 1 ? s[start - 2] : ' ';
      negative = !std::isalnum(static_cast<unsigned char>(before)) &&
                 before != ')' && before != '.';
    }
    std::string n = negative ? "-" : "";
    while (i < s.size()) {
      if (IsDigit(s[i])) {
        n += s[i++];
      } else if (s[i] == ',' && i + 3 < s.size() && IsDigit(s[i + 1]) &&
                 IsDigit(s[i + 2]) && IsDigit(s[i + 3]) &&
                 (i + 4 >= s.size() || !IsDigit(s[i + 4]))) {
        ++i;  // a thousands separator: exactly three digits follow
      } else {
        break;
      }
    }
    if (i + 1 < s.size() && s[i] == '.' && IsDigit(s[i + 1])) {
      n += s[i++];
      while (i < s.size() && IsDigit(s[i])) n += s[i++];
    }
    out.push_back(n);
  }
  return out;
}

}  // namespace

std::string ExtractGsm8kAnswer(const std::string& text) {
  const size_t mark = text.rfind("####");
  if (mark != std::string::npos) {
    const std::vector<std::string> after = Numbers(text.substr(mark + 4));
    if (!after.empty()) return after.front();
  }
  const std::vector<std::string> all = Numbers(text);
  return all.empty() ? "" : all.back();
}

bool Gsm8kAnswersMatch(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return false;
  if (a == b) return true;
  char *ea, *eb;
  const double x = std::strtod(a.c_str(), &ea), y = std::strtod(b.c_str(), &eb);
  if (*ea || *eb) return false;
  return std::fabs(x - y) <= 1e-9 * std::max(1.0, std::fabs(y));
}

}  // namespace dllm
