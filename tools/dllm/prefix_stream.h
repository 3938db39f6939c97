// Committed-prefix streaming (DESIGN.md "Streaming a diffusion generation"):
// after each step, emit the newly final prefix of the generated span, i.e.
// the tokens before the first position still masked, up to the first EOS,
// holding back incomplete UTF-8.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "dllm/generate.h"
#include "tokenizer/tokenizer.h"

namespace dllm::cli {

class PrefixStreamer {
 public:
  PrefixStreamer(const Tokenizer& tok, std::vector<int32_t> eos, FILE* out)
      : decoder_(tok, /*skip_special=*/true), eos_(std::move(eos)), out_(out) {}

  // Emits what became final in sequence `seq` of this step.
  void OnStep(const Canvas& c);
  // Emits the rest of `tokens` (the final result) and any held-back bytes.
  void Finish(const std::vector<int32_t>& tokens);

 private:
  StreamDecoder decoder_;
  std::vector<int32_t> eos_;
  FILE* out_;
  size_t emitted_ = 0;    // tokens of the generated span already emitted
  bool stopped_ = false;  // an EOS was reached
};

}  // namespace dllm::cli
