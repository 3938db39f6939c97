// Reading the user's lines in `dllm chat`: line editing and history through
// libedit (Debian's libedit-dev, BSD-licensed) when stdin is a terminal, a
// plain getline otherwise (pipes, tests).
#pragma once

#include <string>

struct editline;
struct history;

namespace dllm::cli {

class LineEditor {
 public:
  explicit LineEditor(const char* program);
  ~LineEditor();
  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;

  enum class Status { kLine, kEnd, kInterrupted };
  // Shows `prompt` and reads one line (without its newline). kEnd at the end
  // of input (Ctrl-D), kInterrupted when Ctrl-C is pressed at the prompt.
  Status Read(const std::string& prompt, std::string* line);
  // Remembers a line for the up/down arrows.
  void AddHistory(const std::string& line);

  // Ctrl-C: set by the SIGINT handler this class installs (without
  // SA_RESTART, so a blocked read returns); callers clear and test it.
  static volatile int interrupted;

 private:
  ::editline* el_ = nullptr;
  ::history* hist_ = nullptr;
  std::string prompt_;
  static const char* PromptOf(::editline* el);
};

}  // namespace dllm::cli
