// Public API: the reductions over one row of logits that a deterministic
// sampler needs (greedy token, its probability, the top-2 margin, the
// entropy). A model on a GPU computes them there, so that only these come
// back to the host each step (Model::ForwardStats).
#pragma once

#include <cstdint>

namespace dllm {

// Of softmax(row), with -inf entries (banned tokens) taking no mass.
struct RowStats {
  int32_t argmax = 0;  // first index of the largest value
  float max = 0;       // largest value
  float second = 0;    // second-largest value: max again when max is tied,
                       // -inf for a row of one
  float log_norm = 0;  // log sum exp (softmax normaliser)
  float entropy = 0;   // -sum p log p, in nats
  int32_t ties = 1;    // how many entries equal max
};

}  // namespace dllm
