#include "dllm/runtime.h"

#include "base/thread_pool.h"

namespace dllm {

void SetNumThreads(int n) { SetThreads(n); }
int NumThreads() { return Pool().size(); }

}  // namespace dllm
