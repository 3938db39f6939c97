// The unit of work of a group of matmuls (ops::MatMulWTGroup and its
// quantized twin): rows [n0, n1) of weight i, taken by whichever thread is
// free.
#pragma once

#include <cstdint>
#include <vector>

namespace dllm::ops {

struct WeightSlice {
  int i;
  int64_t n0, n1;
};

// The calling thread's list, emptied. Pool tasks must reach it through the
// reference: a thread_local named inside a task would be the worker's own.
inline std::vector<WeightSlice>& CallerSliceList() {
  thread_local std::vector<WeightSlice> list;
  list.clear();
  return list;
}

}  // namespace dllm::ops
