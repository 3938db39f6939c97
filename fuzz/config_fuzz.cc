// libFuzzer: config.json parsing must reject any text cleanly.
#include <cstddef>
#include <cstdint>
#include <string>

#include "dllm/config.h"
#include "dllm/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    dllm::ModelConfig c = dllm::ParseModelConfig(
        std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    (void)dllm::ModelConfigToJson(c);
    (void)c.NumParams();
  } catch (const dllm::Error&) {
  }
  return 0;
}
