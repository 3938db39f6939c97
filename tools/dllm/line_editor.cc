#include "line_editor.h"

#include <histedit.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>

namespace dllm::cli {

volatile int LineEditor::interrupted = 0;

namespace {
void OnSigint(int) { LineEditor::interrupted = 1; }
}  // namespace

LineEditor::LineEditor(const char* program) {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnSigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: Ctrl-C must end a blocked read
  sigaction(SIGINT, &sa, nullptr);
  if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) return;
  el_ = el_init(program, stdin, stdout, stderr);
  if (!el_) return;
  hist_ = history_init();
  HistEvent ev;
  history(hist_, &ev, H_SETSIZE, 1000);
  history(hist_, &ev, H_SETUNIQUE, 1);
  el_set(el_, EL_CLIENTDATA, this);
  el_set(el_, EL_PROMPT, &LineEditor::PromptOf);
  el_set(el_, EL_EDITOR, "emacs");
  el_set(el_, EL_HIST, history, hist_);
  el_set(el_, EL_SIGNAL, 1);  // restore the terminal around signals
  el_source(el_, nullptr);    // the user's ~/.editrc, if any
}

LineEditor::~LineEditor() {
  if (el_) el_end(el_);
  if (hist_) history_end(hist_);
}

const char* LineEditor::PromptOf(::editline* el) {
  void* self = nullptr;
  el_get(el, EL_CLIENTDATA, &self);
  return static_cast<LineEditor*>(self)->prompt_.c_str();
}

LineEditor::Status LineEditor::Read(const std::string& prompt,
                                    std::string* line) {
  interrupted = 0;
  if (!el_) {
    std::fputs(prompt.c_str(), stdout);
    std::fflush(stdout);
    if (!std::getline(std::cin, *line)) {
      if (interrupted) return Status::kInterrupted;
      return Status::kEnd;
    }
    return Status::kLine;
  }
  prompt_ = prompt;
  int n = 0;
  const char* s = el_gets(el_, &n);
  if (!s) return interrupted ? Status::kInterrupted : Status::kEnd;
  line->assign(s, size_t(n));
  while (!line->empty() && (line->back() == '\n' || line->back() == '\r'))
    line->pop_back();
  return Status::kLine;
}

void LineEditor::AddHistory(const std::string& line) {
  if (!hist_ || line.empty()) return;
  HistEvent ev;
  history(hist_, &ev, H_ENTER, line.c_str());
}

}  // namespace dllm::cli
