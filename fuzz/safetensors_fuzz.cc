// libFuzzer: the safetensors parser must reject any byte string cleanly
// (dllm::Error) and never read outside the buffer.
#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "dllm/error.h"
#include "formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<dllm::TensorView> tensors;
  std::map<std::string, std::string> meta;
  try {
    dllm::ParseSafetensors(data, size, "fuzz", &tensors, &meta);
    // Touch every byte each view claims, so ASan sees any bad range.
    volatile uint8_t sink = 0;
    for (const auto& t : tensors)
      for (size_t i = 0; i < t.nbytes; ++i) sink ^= t.data[i];
  } catch (const dllm::Error&) {
  }
  return 0;
}
