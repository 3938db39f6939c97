// Public API: committed-prefix streaming (DESIGN.md "Streaming a diffusion
// generation"). A diffusion step can change any masked position, so text is
// streamed as its prefix becomes final: after each step, the tokens of the
// generated span before the first position still masked, up to the first
// EOS, holding back incomplete UTF-8 and any text that may be the start of a
// stop string. The streamed pieces concatenate to exactly the final text, so
// streaming and non-streaming results agree.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dllm/generate.h"
#include "dllm/tokenizer.h"

namespace dllm {

class PrefixStreamer {
 public:
  // `stop`: strings that end the text (the first one found is cut, with
  // everything after it), e.g. "\n\n" or "</answer>".
  PrefixStreamer(const Tokenizer& tok, std::vector<int32_t> eos,
                 std::vector<std::string> stop = {})
      : decoder_(tok, /*skip_special=*/true),
        eos_(std::move(eos)),
        stop_(std::move(stop)) {}

  // The text that became final in `c` since the last call ("" if none).
  std::string OnStep(const Canvas& c);
  // The rest of `tokens` (the final result) and any held-back bytes.
  std::string Finish(const std::vector<int32_t>& tokens);
  // An EOS or a stop string was reached: nothing more will be emitted, so a
  // caller may cancel the generation.
  bool stopped() const { return stopped_; }
  // The whole text emitted so far.
  const std::string& text() const { return text_; }

 private:
  // Moves what is safe to show from pending_ to the result.
  std::string Release(bool final);

  StreamDecoder decoder_;
  std::vector<int32_t> eos_;
  std::vector<std::string> stop_;
  size_t emitted_ = 0;    // tokens of the generated span consumed
  bool stopped_ = false;  // an EOS or a stop string was reached
  std::string pending_;   // decoded, not yet emitted (may start a stop)
  std::string text_;      // emitted
};

}  // namespace dllm
