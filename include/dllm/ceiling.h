// The machine's own ceilings, measured in the same process as a benchmark so
// that results are reported as ratios (absolute times drift on shared
// machines).
#pragma once

#include <cstdint>

namespace dllm {

struct SgemmCeiling {
  double gflops_blas_threads;  // one sgemm with OpenBLAS's own threads
  double
      gflops_pool;  // the same work split over our pool (as the model runs it)
  double best() const {
    return gflops_blas_threads > gflops_pool ? gflops_blas_threads
                                             : gflops_pool;
  }
};

// Times C (M, N) = A (M, K) * B^T for at least `min_seconds` each way.
SgemmCeiling MeasureSgemm(int64_t M, int64_t N, int64_t K, int threads,
                          double min_seconds = 0.5);

// The fp32 FMA peak of `threads` threads running at once on the best SIMD
// target this CPU has (independent FMA chains, no memory traffic), in
// GFLOP/s: the roof a compute-bound kernel is measured against.
double MeasureFmaPeak(int threads, double seconds = 0.3);

// Memory copy bandwidth in GB/s (bytes read + written), single thread.
double MeasureCopyBandwidth(int64_t bytes = 256 << 20,
                            double min_seconds = 0.3);

// Memory read bandwidth in GB/s of `threads` threads each summing its
// slice of one large buffer: the roof of a memory-bound decoding step.
double MeasureReadBandwidth(int threads, int64_t bytes = int64_t(512) << 20,
                            double min_seconds = 0.3);

// Peak resident set size of this process so far, in bytes.
int64_t PeakRssBytes();

}  // namespace dllm
