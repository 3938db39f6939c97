// Backends by name. The CUDA one exists only in builds configured with
// -DDLLM_CUDA=ON (DLLM_HAVE_CUDA); elsewhere asking for it is a clear error.
#include "ops/backend.h"

#include <cstdlib>

#include "dllm/error.h"

namespace dllm::ops {
bool HaveCudaBackend() {
#ifdef DLLM_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Backend> MakeBackend(const std::string& device) {
  if (device == "cpu") return MakeCpuBackend();
  if (device == "cuda" || device.rfind("cuda:", 0) == 0) {
    int ordinal = 0;
    if (device.size() > 5) {
      const std::string n = device.substr(5);
      char* end = nullptr;
      const long v = std::strtol(n.c_str(), &end, 10);
      DLLM_CHECK(!n.empty() && *end == '\0' && v >= 0 && v < 1024, "--device '",
                 device,
                 "': expected cuda:N with N a device number, e.g. cuda:0");
      ordinal = int(v);
    }
#ifdef DLLM_HAVE_CUDA
    return cuda::MakeCudaBackend(ordinal);
#else
    (void)ordinal;
    Fail("--device ", device,
         ": this dllm was built without the CUDA backend; rebuild with "
         "`bash scripts/build.sh -DDLLM_CUDA=ON` (needs the CUDA toolkit at "
         "/usr/local/cuda), or use --device cpu");
#endif
  }
  Fail("--device '", device,
       "': unknown device (expected cpu, cuda or cuda:N)");
}

}  // namespace dllm::ops
