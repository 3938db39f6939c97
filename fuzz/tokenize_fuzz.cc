// libFuzzer: encode arbitrary bytes. Checks decode(encode(x)) == x after the
// documented U+FFFD repair of invalid UTF-8, and that the streaming decoder
// gives the same text token by token. The tokenizer is trained at start-up
// (no files needed) unless DLLM_FUZZ_TOKENIZER names one.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "dllm/bpe_train.h"
#include "dllm/error.h"
#include "dllm/tokenizer.h"

namespace {

const dllm::Tokenizer& Tok() {
  static const dllm::Tokenizer tok = [] {
    if (const char* p = std::getenv("DLLM_FUZZ_TOKENIZER"))
      return dllm::Tokenizer::FromFile(p);
    dllm::BpeTrainOptions o;
    o.vocab_size = 600;
    o.special_tokens = {"<|endoftext|>", "<|mask|>"};
    std::string corpus;
    for (int i = 0; i < 50; ++i)
      corpus +=
          "The quick brown fox jumps over the lazy dog 0123456789. "
          "def f(x):\n    return x * 2\n  naïve café 你好世界 😀 \r\n";
    return dllm::Tokenizer::FromJson(dllm::TrainBpe({corpus}, o),
                                     "fuzz-trained");
  }();
  return tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const dllm::Tokenizer& tok = Tok();
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<int32_t> ids = tok.Encode(text);
  std::string back = tok.Decode(ids);
  bool normalizes = std::getenv("DLLM_FUZZ_TOKENIZER") != nullptr;
  if (!normalizes && back != dllm::SanitizeUtf8(text)) std::abort();
  dllm::StreamDecoder sd(tok);
  std::string streamed;
  for (int32_t id : ids) streamed += sd.Add(id);
  streamed += sd.Finish();
  if (streamed != back) std::abort();
  return 0;
}
