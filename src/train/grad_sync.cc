#include "train/grad_sync.h"

#include "dllm/error.h"
#include "dllm/timer.h"

namespace dllm {

GradSync::GradSync(Comm& comm, float* grads, int64_t n, int64_t bucket_bytes)
    : comm_(comm),
      grads_(grads),
      n_(n),
      bucket_elems_(bucket_bytes / 4),
      lo_(n),
      hi_(n),
      overlap_(bucket_bytes > 0) {}

void GradSync::Send(int64_t lo, int64_t hi) {
  if (hi <= lo) return;
  Timer t;
  comm_.StartAllReduceSum(grads_ + lo, hi - lo);
  seconds_ += t.Seconds();
  sent_ += hi - lo;
  ++buckets_;
}

void GradSync::Ready(int64_t offset, int64_t count) {
  DLLM_ASSERT(offset >= 0 && count >= 0 && offset + count <= n_);
  if (!overlap_ || count == 0) return;
  if (offset + count != lo_) {
    // Not adjacent to the bucket being filled: send that one, start anew.
    Send(lo_, hi_);
    hi_ = offset + count;
  }
  lo_ = offset;
  if (hi_ - lo_ >= bucket_elems_) {
    Send(lo_, hi_);
    hi_ = lo_;
  }
  Timer t;
  comm_.Progress();  // lets the buckets already sent move on
  seconds_ += t.Seconds();
}

void GradSync::Finish() {
  Timer t;
  if (!overlap_) {
    comm_.AllReduceSum(grads_, n_);
    ++buckets_;
  } else {
    Send(lo_, hi_);
    comm_.WaitAll();
    // Ranges that Ready never saw would differ between ranks: a bug in the
    // backward's reports, caught here rather than as a silent divergence.
    DLLM_CHECK(sent_ == n_, "gradient sync: ", sent_, " of ", n_,
               " gradients were reported ready");
  }
  seconds_ += t.Seconds();
}

}  // namespace dllm
