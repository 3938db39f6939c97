// libFuzzer: tokenizer.json parsing must reject any text cleanly (dllm::Error,
// no crash), and whatever loads must encode and decode without crashing.
#include <cstddef>
#include <cstdint>
#include <string>

#include "dllm/error.h"
#include "dllm/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    dllm::Tokenizer tok = dllm::Tokenizer::FromJson(text, "fuzz");
    for (const char* s :
         {"Hello world!", " \n\t 123 ü 你好 <s></s>", "\xff\xfe"}) {
      std::vector<int32_t> ids = tok.Encode(s);
      (void)tok.Decode(ids);
      (void)tok.Decode(ids, true);
    }
    (void)tok.Encode(text.substr(0, 256));
  } catch (const dllm::Error&) {
  }
  return 0;
}
