// Public API: errors. Every failure on user input becomes a dllm::Error whose
// message names the file, the field and what was expected. Callers at the
// edge (CLI, server) catch it and print it; nothing aborts on bad input.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace dllm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Concatenates any streamable values: StrCat("tensor ", name, ": ", n).
template <typename... Args>
std::string StrCat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

// Throws dllm::Error with the concatenated message.
template <typename... Args>
[[noreturn]] void Fail(const Args&... args) {
  throw Error(StrCat(args...));
}

}  // namespace dllm

// Internal invariant (not for user input): reports file:line.
#define DLLM_ASSERT(cond)                                                 \
  do {                                                                    \
    if (!(cond))                                                          \
      ::dllm::Fail(__FILE__, ":", __LINE__, ": internal error: ", #cond); \
  } while (0)

// Check on user input with a message built from the remaining arguments.
#define DLLM_CHECK(cond, ...)               \
  do {                                      \
    if (!(cond)) ::dllm::Fail(__VA_ARGS__); \
  } while (0)
