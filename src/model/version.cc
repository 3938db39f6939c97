// Lives in the model layer (the lowest that may reach the kernels' target
// list) so that front ends can report it through dllm/version.h.
#include "dllm/version.h"

#include <hwy/targets.h>

#include "ops/cpu/simd.h"

namespace dllm {

SimdInfo GetSimdInfo() {
  SimdInfo info;
  // HWY_TARGETS is the set this build compiled; lower bits are better ones.
  for (int64_t bits = HWY_TARGETS; bits != 0; bits &= bits - 1)
    info.compiled.push_back(cpu::SimdTargetName(bits & -bits));
  // SimdTargets() lists those this CPU supports, best first: dispatch picks
  // the first.
  const std::vector<int64_t> usable = cpu::SimdTargets();
  info.chosen = usable.empty() ? "none" : cpu::SimdTargetName(usable[0]);
  return info;
}

}  // namespace dllm
