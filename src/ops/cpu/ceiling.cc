#include "dllm/ceiling.h"

#include <cblas.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "base/rng.h"
#include "base/thread_pool.h"
#include "dllm/timer.h"
#include "ops/cpu/matmul.h"
#include "ops/ops.h"

namespace dllm {

SgemmCeiling MeasureSgemm(int64_t M, int64_t N, int64_t K, int threads,
                          double min_seconds) {
  std::vector<float> a(size_t(M * K)), b(size_t(N * K)), c(size_t(M * N));
  for (size_t i = 0; i < a.size(); ++i)
    a[i] = float(RandomUniform(1, 0, i) - 0.5);
  for (size_t i = 0; i < b.size(); ++i)
    b[i] = float(RandomUniform(1, 1, i) - 0.5);
  const double flops = 2.0 * double(M) * double(N) * double(K);
  SgemmCeiling out{};
  // OpenBLAS with its own threads.
  openblas_set_num_threads(threads);
  auto blas = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(M), int(N), int(K),
                1.0f, a.data(), int(K), b.data(), int(K), 0.0f, c.data(),
                int(N));
  };
  blas();  // warm up
  int reps = 0;
  Timer t;
  do {
    blas();
    ++reps;
  } while (t.Seconds() < min_seconds);
  out.gflops_blas_threads = flops * reps / t.Seconds() / 1e9;
  openblas_set_num_threads(1);
  // Our pool, as the model's matmuls run.
  SetThreads(threads);
  ops::Matrix w{DType::kF32, b.data(), N, K};
  ops::MatMulWT(a.data(), M, w, c.data());
  reps = 0;
  t.Reset();
  do {
    ops::MatMulWT(a.data(), M, w, c.data());
    ++reps;
  } while (t.Seconds() < min_seconds);
  out.gflops_pool = flops * reps / t.Seconds() / 1e9;
  return out;
}

double MeasureFmaPeak(int threads, double seconds) {
  SetThreads(threads);
  // The best of three rounds: on a shared host one round can find a core
  // taken by another guest (two threads once summed to 97 GFLOP/s where one
  // alone ran at 92), which would make every ratio to this peak overstate.
  std::vector<double> per(size_t(Pool().size()), 0.0);
  double best = 0;
  for (int round = 0; round < 3; ++round) {
    Pool().Run(per.size(), [&](size_t i, int) {
      per[i] = cpu::MeasureFmaGflops(seconds / 3);
    });
    double sum = 0;
    for (double g : per) sum += g;
    best = std::max(best, sum);
  }
  return best;
}

double MeasureCopyBandwidth(int64_t bytes, double min_seconds) {
  std::vector<char> src(size_t(bytes), 1), dst(size_t(bytes), 0);
  std::memcpy(dst.data(), src.data(), size_t(bytes));
  int reps = 0;
  Timer t;
  do {
    std::memcpy(dst.data(), src.data(), size_t(bytes));
    ++reps;
  } while (t.Seconds() < min_seconds);
  return 2.0 * double(bytes) * reps / t.Seconds() / 1e9;
}

double MeasureReadBandwidth(int threads, int64_t bytes, double min_seconds) {
  SetThreads(threads);
  const size_t words = size_t(bytes) / sizeof(uint64_t);
  std::vector<uint64_t> buf(words, 1);
  const size_t nt = Pool().size();
  std::vector<uint64_t> sums(nt, 0);
  auto pass = [&] {
    Pool().Run(nt, [&](size_t i, int) {
      const size_t b = words * i / nt, e = words * (i + 1) / nt;
      // Four chains: the loads, not the adds, are the limit.
      uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      size_t j = b;
      for (; j + 4 <= e; j += 4)
        a0 += buf[j], a1 += buf[j + 1], a2 += buf[j + 2], a3 += buf[j + 3];
      for (; j < e; ++j) a0 += buf[j];
      sums[i] += a0 + a1 + a2 + a3;
    });
  };
  pass();  // faults the pages in
  int reps = 0;
  Timer t;
  do {
    pass();
    ++reps;
  } while (t.Seconds() < min_seconds);
  const double secs = t.Seconds();
  volatile uint64_t sink = sums[0];  // keep the sums alive
  (void)sink;
  return double(words * sizeof(uint64_t)) * reps / secs / 1e9;
}

int64_t PeakRssBytes() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return int64_t(ru.ru_maxrss) * 1024;
}

}  // namespace dllm
