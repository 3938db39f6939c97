// Data-parallel gradient sync: the ranges of gradients the backward pass
// finishes (output head, then each layer from the last, then the embedding:
// adjacent, in falling address order) are gathered into buckets of about
// `bucket_bytes`, and each full bucket is all-reduced while the backward pass
// goes on (PyTorch DDP's scheme). Finish() sends the rest and waits.
#pragma once

#include <cstdint>

#include "train/comm.h"

namespace dllm {

class GradSync {
 public:
  // bucket_bytes 0: no overlap, one all-reduce of everything in Finish().
  GradSync(Comm& comm, float* grads, int64_t n, int64_t bucket_bytes);
  // [offset, offset + count) of the gradients is final for this step.
  void Ready(int64_t offset, int64_t count);
  // Every gradient summed over the ranks (whatever Ready did not cover too).
  void Finish();
  // Seconds spent inside the communication calls, this step (Finish blocks
  // on what the overlap did not hide).
  double seconds() const { return seconds_; }
  int64_t buckets() const { return buckets_; }

 private:
  void Send(int64_t lo, int64_t hi);
  Comm& comm_;
  float* grads_;
  int64_t n_, bucket_elems_;
  int64_t lo_ = 0, hi_ = 0;  // the bucket being filled: [lo_, hi_)
  int64_t sent_ = 0;         // elements handed to the comm this step
  int64_t buckets_ = 0;
  double seconds_ = 0;
  bool overlap_;
};

}  // namespace dllm
