// libFuzzer: the GGUF parser must reject any byte string cleanly
// (dllm::Error) and never read outside the buffer; what it accepts goes on
// to the readers of its metadata (the model config and the tokenizer, as
// loading a .gguf model does).
#include <cstddef>
#include <cstdint>
#include <string>

#include "dllm/error.h"
#include "dllm/tokenizer.h"
#include "formats/gguf.h"
#include "model/gguf_model.h"
#include "tokenizer/gguf_vocab.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    dllm::GgufFile f(data, size, "fuzz");
    // Touch every byte each view claims, so ASan sees any bad range.
    volatile uint8_t sink = 0;
    for (const auto& t : f.tensors())
      for (size_t i = 0; i < t.nbytes; ++i) sink ^= t.data[i];
    for (const auto& kv : f.metadata()) (void)kv.second.Describe();
    try {
      (void)dllm::ConfigFromGguf(f);
    } catch (const dllm::Error&) {
    }
    if (dllm::GgufHasTokenizer(f)) {
      const std::string json = dllm::GgufTokenizerJson(f);
      dllm::Tokenizer tok = dllm::Tokenizer::FromJson(json, "fuzz");
      (void)tok.Encode("ROMEO: 3 33 caf\xC3\xA9 <|mask|>", true);
    }
  } catch (const dllm::Error&) {
  }
  return 0;
}
