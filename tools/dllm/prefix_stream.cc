#include "prefix_stream.h"

#include <algorithm>

namespace dllm::cli {

void PrefixStreamer::OnStep(const Canvas& c) {
  if (stopped_) return;
  std::string text;
  for (int i = c.prompt_len + int(emitted_); i < c.gen_end; ++i) {
    if (c.masked[size_t(i)]) break;
    int32_t t = c.ids[size_t(i)];
    if (std::find(eos_.begin(), eos_.end(), t) != eos_.end()) {
      stopped_ = true;
      break;
    }
    text += decoder_.Add(t);
    ++emitted_;
  }
  if (!text.empty()) {
    std::fputs(text.c_str(), out_);
    std::fflush(out_);
  }
}

void PrefixStreamer::Finish(const std::vector<int32_t>& tokens) {
  std::string text;
  for (size_t i = emitted_; i < tokens.size(); ++i)
    text += decoder_.Add(tokens[i]);
  emitted_ = std::max(emitted_, tokens.size());
  text += decoder_.Finish();
  std::fputs(text.c_str(), out_);
  std::fflush(out_);
}

}  // namespace dllm::cli
