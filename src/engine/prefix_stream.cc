#include "dllm/prefix_stream.h"

#include <algorithm>

namespace dllm {

std::string PrefixStreamer::Release(bool final) {
  if (stopped_ && pending_.empty()) return "";
  size_t cut = std::string::npos;  // where the earliest stop string starts
  for (const std::string& s : stop_)
    if (!s.empty()) cut = std::min(cut, pending_.find(s));
  size_t n = pending_.size();
  if (cut != std::string::npos) {
    n = cut;
    stopped_ = true;
  } else if (!final) {
    // Hold back a tail that a later token could complete into a stop
    // string, so no stop string is ever half shown.
    size_t hold = 0;
    for (const std::string& s : stop_)
      for (size_t k = std::min(s.size() - 1, pending_.size()); k > hold; --k)
        if (pending_.compare(pending_.size() - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
    n = pending_.size() - hold;
  }
  std::string out = pending_.substr(0, n);
  pending_ = stopped_ ? std::string() : pending_.substr(n);
  text_ += out;
  return out;
}

std::string PrefixStreamer::OnStep(const Canvas& c) {
  if (stopped_) return "";
  for (int i = c.prompt_len + int(emitted_); i < c.gen_end; ++i) {
    if (c.masked[size_t(i)]) break;
    int32_t t = c.ids[size_t(i)];
    if (std::find(eos_.begin(), eos_.end(), t) != eos_.end()) {
      // Nothing after an EOS is shown; what came before it is final.
      emitted_ = size_t(c.gen_end);
      pending_ += decoder_.Finish();
      std::string out = Release(/*final=*/true);
      stopped_ = true;
      return out;
    }
    pending_ += decoder_.Add(t);
    ++emitted_;
  }
  return Release(/*final=*/false);
}

std::string PrefixStreamer::Finish(const std::vector<int32_t>& tokens) {
  if (stopped_) return Release(/*final=*/true);
  for (size_t i = emitted_; i < tokens.size(); ++i)
    pending_ += decoder_.Add(tokens[i]);
  emitted_ = std::max(emitted_, tokens.size());
  pending_ += decoder_.Finish();
  std::string out = Release(/*final=*/true);
  stopped_ = true;
  return out;
}

}  // namespace dllm
