// Process-wide runtime settings.
#pragma once

namespace dllm {

// Threads for every kernel (one pool; BLAS never starts its own). 0 = one
// per core. Call before heavy work.
void SetNumThreads(int n);
int NumThreads();

}  // namespace dllm
