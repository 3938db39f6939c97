// dllm/quant_bench.h: timing the matmul on quantized and float weights, and
// the read bandwidth it is measured against.
#include "dllm/quant_bench.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "base/dtype.h"
#include "base/half.h"
#include "base/rng.h"
#include "base/thread_pool.h"
#include "dllm/error.h"
#include "dllm/timer.h"
#include "ops/cpu/quant_kernels.h"
#include "ops/ops.h"
#include "ops/quant.h"

namespace dllm {

namespace {

std::vector<float> RandomNormals(size_t n, uint64_t stream) {
  std::vector<float> v(n);
  ParallelFor(n, 1 << 16, [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; ++i) v[i] = float(RandomNormal(7, stream, i));
  });
  return v;
}

// w (N, K) stored as t.
std::vector<uint8_t> Store(DType t, const std::vector<float>& w, int64_t N,
                           int64_t K) {
  const size_t row = DTypeBytes(t, K);
  std::vector<uint8_t> out(row * size_t(N));
  ParallelFor(size_t(N), 16, [&](size_t b, size_t e, int) {
    for (size_t n = b; n < e; ++n) {
      const float* src = w.data() + n * size_t(K);
      uint8_t* dst = out.data() + n * row;
      if (IsQuantized(t)) {
        ops::QuantizeRow(t, src, K, dst);
      } else if (t == DType::kF32) {
        std::memcpy(dst, src, size_t(K) * 4);
      } else {
        uint16_t* h = reinterpret_cast<uint16_t*>(dst);
        for (int64_t k = 0; k < K; ++k)
          h[k] = t == DType::kF16 ? F32ToF16(src[k]) : F32ToBf16(src[k]);
      }
    }
  });
  return out;
}

double RelRms(const std::vector<float>& y, const std::vector<float>& ref) {
  double se = 0, sr = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double d = double(y[i]) - ref[i];
    se += d * d, sr += double(ref[i]) * ref[i];
  }
  return sr > 0 ? std::sqrt(se / sr) : 0.0;
}

// Forces a quantized kernel target for its lifetime.
struct ForcedTarget {
  explicit ForcedTarget(const std::string& name) {
    if (name.empty()) return;
    std::string known;
    for (cpu::QuantTarget t : cpu::QuantTargets()) {
      if (name == cpu::QuantTargetName(t)) {
        cpu::ForceQuantTarget(t);
        forced = true;
        return;
      }
      known += std::string(known.empty() ? "" : ", ") + cpu::QuantTargetName(t);
    }
    Fail("bench: unknown quantized kernel '", name,
         "'; this CPU runs: ", known);
  }
  ~ForcedTarget() {
    if (forced) cpu::ResetQuantTarget();
  }
  bool forced = false;
};

volatile uint64_t g_sink;

}  // namespace

std::vector<std::string> QuantKernelTargets() {
  std::vector<std::string> out;
  for (cpu::QuantTarget t : cpu::QuantTargets())
    out.push_back(cpu::QuantTargetName(t));
  return out;
}

MatMulBench BenchMatMul(const std::string& dtype, int64_t M, int64_t N,
                        int64_t K, const std::string& kernel,
                        double min_seconds, int64_t cold_bytes, int windows) {
  DType t;
  DLLM_CHECK(ParseDType(dtype, &t) && (IsQuantized(t) || t == DType::kF32 ||
                                       t == DType::kF16 || t == DType::kBF16),
             "bench: unknown weight dtype '", dtype,
             "' (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)");
  DLLM_CHECK(M >= 1 && N >= 1 && K >= 1, "bench: shapes must be positive");
  ops::CheckWholeBlocks(t, K, "bench: K");
  ForcedTarget forced(IsQuantized(t) ? kernel : "");

  const std::vector<float> w = RandomNormals(size_t(N * K), 1);
  const std::vector<float> x = RandomNormals(size_t(M * K), 2);
  const std::vector<uint8_t> one = Store(t, w, N, K);
  const size_t bytes = one.size();
  const int64_t copies =
      cold_bytes > 0 ? std::max<int64_t>(1, (cold_bytes + int64_t(bytes) - 1) /
                                                int64_t(bytes))
                     : 1;
  std::vector<uint8_t> all(bytes * size_t(copies));
  for (int64_t c = 0; c < copies; ++c)
    std::memcpy(all.data() + size_t(c) * bytes, one.data(), bytes);

  std::vector<float> y(size_t(M * N));
  auto call = [&](int64_t c) {
    ops::Matrix m{t, all.data() + size_t(c) * bytes, N, K};
    ops::MatMulWT(x.data(), M, m, y.data());
  };
  call(0);  // warm-up
  int64_t reps = 0, calls = 0;
  double sec = 1e300;
  for (int w = 0; w < std::max(windows, 1); ++w) {
    int64_t n = 0;
    Timer timer;
    do {
      call(calls++ % copies);
      ++n;
    } while (timer.Seconds() < min_seconds);
    const double per = timer.Seconds() / double(n);
    if (per < sec) sec = per, reps = n;
  }

  MatMulBench out;
  out.dtype = DTypeName(t);
  out.kernel =
      IsQuantized(t) ? cpu::QuantTargetName(cpu::ActiveQuantTarget()) : "float";
  out.M = M, out.N = N, out.K = K;
  out.weight_bytes = double(bytes);
  out.copies = copies;
  out.reps = reps;
  out.ms = sec * 1e3;
  out.gbps = double(bytes) / sec / 1e9;
  out.gflops = 2.0 * double(M) * double(N) * double(K) / sec / 1e9;

  // Accuracy on copy 0.
  call(0);
  std::vector<float> ref(y.size());
  ops::MatMulWT(x.data(), M, ops::Matrix{DType::kF32, w.data(), N, K},
                ref.data());
  out.rel_err = RelRms(y, ref);
  if (IsQuantized(t)) {
    std::vector<float> deq(w.size());
    ops::ToF32(t, one.data(), N * K, deq.data());
    ops::MatMulWT(x.data(), M, ops::Matrix{DType::kF32, deq.data(), N, K},
                  ref.data());
    out.rel_err_act = RelRms(y, ref);
  }
  return out;
}

double MeasureReadBandwidth(int64_t bytes, double min_seconds) {
  const size_t n = size_t(std::max<int64_t>(bytes, 1 << 20) / 8);
  std::vector<uint64_t> buf(n);
  ParallelFor(n, 1 << 16, [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; ++i) buf[i] = i;
  });
  const size_t nt = size_t(Pool().size());
  std::vector<uint64_t> sums(nt);
  auto pass = [&] {
    Pool().Run(nt, [&](size_t task, int) {
      const size_t b = n * task / nt, e = n * (task + 1) / nt;
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      size_t i = b;
      for (; i + 4 <= e; i += 4)
        s0 += buf[i], s1 += buf[i + 1], s2 += buf[i + 2], s3 += buf[i + 3];
      for (; i < e; ++i) s0 += buf[i];
      sums[task] = s0 + s1 + s2 + s3;
    });
    for (uint64_t s : sums) g_sink = g_sink + s;
  };
  pass();  // warm-up
  int64_t reps = 0;
  Timer timer;
  do {
    pass();
    ++reps;
  } while (timer.Seconds() < min_seconds);
  return double(n * 8) * double(reps) / timer.Seconds() / 1e9;
}

}  // namespace dllm
