// Public API: what this build is, for `dllm --version` and bug reports.
#pragma once

#include <string>
#include <vector>

namespace dllm {

// The one place the version is defined (CMakeLists.txt's project() line is
// kept equal to it by hand).
inline constexpr const char* kVersion = "0.2.0";

// The SIMD targets compiled into the kernels (Highway names such as "AVX2",
// best first) and the one this CPU runs them with (the best compiled target
// it supports).
struct SimdInfo {
  std::vector<std::string> compiled;
  std::string chosen;
};
SimdInfo GetSimdInfo();

}  // namespace dllm
