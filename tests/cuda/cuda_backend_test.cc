// The CUDA backend (src/ops/cuda) against the CPU one, kernel by kernel on
// random inputs of several shapes (odd sizes included), then whole models
// through the public API (Model::Load with device "cuda" against the CPU,
// and against the golden logits of tests/golden). Built as dllm_cuda_tests
// with -DDLLM_CUDA=ON and run by scripts/device_check.sh on a GPU machine;
// every test skips, saying why, where no CUDA backend can be made.
//
// Tolerances, and why:
//  - fp32 kernels (RmsNorm, Rope, SwiGLU, Attention, F32 matmuls through
//    cuBLASLt without TF32 or through our kernels): both sides round in
//    fp32, in different orders; about 1e-5 relative to the magnitude
//    involved (for a matmul: S = sum_k |x_k w_k|, the bound's usual scale).
//  - BF16/F16 matmuls: the CPU widens the weights to fp32 and keeps x in
//    fp32; cuBLASLt gets x rounded to the weights' type, each x_k off by at
//    most u |x_k| (unit roundoff u = 2^-8 for bf16's 8 significant bits,
//    2^-11 for f16's 11), so |y_gpu - y_cpu| <= u S + fp32 rounding. That
//    bound is what the test checks (our own kernel, for M <= 8, keeps x in
//    fp32 and lands well inside it).
//  - Q8_0/Q4_0: the GPU multiplies fp32 x by the dequantized weights (d * q
//    in fp32, as ops/ref does), so it matches the fp32 matmul of the
//    dequantized matrix to fp32 rounding; the CPU quantizes x to 8 bits per
//    block of 32, which ops/quant.h bounds by sum_k |w_k| d_k / 2 (d_k =
//    max |x| / 127 over k's block), checked too.
//  - Embed, GatherRows, RowStats' argmax/max/second: exact.
//  - Models: logits within 1e-4 (F32) or 2e-2 (BF16: x rounded to bf16 in
//    every matmul of every layer) of the largest |logit| of the row.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/half.h"
#include "base/mmap_file.h"
#include "dllm/model.h"
#include "ops/backend.h"
#include "ops/quant.h"
#include "test_util.h"

namespace dllm {
namespace {

using ops::AttentionShape;
using ops::Backend;
using ops::Matrix;

// The CUDA backend with DLLM_CUDA_GEMM = gemm_mode ("" = unset: auto), or
// null with the reason in *why.
std::unique_ptr<Backend> MakeCuda(std::string* why,
                                  const char* gemm_mode = "") {
  if (*gemm_mode)
    setenv("DLLM_CUDA_GEMM", gemm_mode, 1);
  else
    unsetenv("DLLM_CUDA_GEMM");
  try {
    auto be = ops::MakeBackend("cuda");
    unsetenv("DLLM_CUDA_GEMM");
    return be;
  } catch (const std::exception& e) {
    unsetenv("DLLM_CUDA_GEMM");
    *why = e.what();
    return nullptr;
  }
}

#define REQUIRE_CUDA(var)                                     \
  std::string why_##var;                                      \
  std::unique_ptr<Backend> var = MakeCuda(&why_##var);        \
  if (!var) GTEST_SKIP() << "no CUDA backend: " << why_##var; \
  do {                                                        \
  } while (0)

// A buffer of the CUDA backend holding a copy of host values.
class Dev {
 public:
  Dev(Backend& be, const std::vector<float>& host) : be_(be), n_(host.size()) {
    p_ = be.Alloc(n_ ? n_ : 1);
    if (n_) be.Upload(p_, host.data(), n_);
  }
  Dev(Backend& be, size_t n) : be_(be), n_(n) { p_ = be.Alloc(n ? n : 1); }
  ~Dev() { be_.Free(p_); }
  float* get() const { return p_; }
  std::vector<float> Get() const {
    std::vector<float> h(n_);
    if (n_) be_.Download(h.data(), p_, n_);
    return h;
  }

 private:
  Backend& be_;
  size_t n_;
  float* p_;
};

// Stored bytes of a (rows, cols) matrix of fp32 values in dtype t.
std::vector<uint8_t> Store(DType t, const std::vector<float>& v, int64_t rows,
                           int64_t cols) {
  std::vector<uint8_t> out(size_t(rows) * DTypeBytes(t, cols));
  if (t == DType::kF32) {
    std::memcpy(out.data(), v.data(), v.size() * 4);
  } else if (t == DType::kBF16 || t == DType::kF16) {
    auto* h = reinterpret_cast<uint16_t*>(out.data());
    for (size_t i = 0; i < v.size(); ++i)
      h[i] = t == DType::kBF16 ? F32ToBf16(v[i]) : F32ToF16(v[i]);
  } else {
    const size_t rb = DTypeBytes(t, cols);
    for (int64_t r = 0; r < rows; ++r)
      ops::QuantizeRow(t, v.data() + r * cols, cols, out.data() + r * rb);
  }
  return out;
}

// The fp32 values a stored matrix holds.
std::vector<float> Widen(DType t, const std::vector<uint8_t>& bytes,
                         int64_t rows, int64_t cols) {
  std::vector<float> out(size_t(rows * cols));
  const size_t rb = DTypeBytes(t, cols);
  for (int64_t r = 0; r < rows; ++r)
    ops::ToF32(t, bytes.data() + r * rb, cols, out.data() + r * cols);
  return out;
}

// ------------------------------------------------------------------ basics

TEST(CudaBackend, NameBuffersAndCopies) {
  REQUIRE_CUDA(be);
  EXPECT_EQ(be->name(), "cuda:0");
  EXPECT_FALSE(be->host_memory());
  std::printf("  %s\n", be->description().c_str());
  EXPECT_NE(be->description().find("SMs"), std::string::npos);
  Dev a(*be, std::vector<float>{1, 2, 3, 4, 5});
  be->Copy(a.get(), a.get() + 2, 3);  // overlapping, like memmove
  EXPECT_EQ(a.Get(), (std::vector<float>{3, 4, 5, 4, 5}));
  Dev b(*be, 5);
  be->Copy(b.get(), a.get(), 5);
  be->Synchronize();
  EXPECT_EQ(b.Get(), (std::vector<float>{3, 4, 5, 4, 5}));
  ops::Buffer buf;
  float* p = buf.Grow(*be, 10);
  EXPECT_NE(p, nullptr);
  EXPECT_EQ(buf.Grow(*be, 4), p);
  buf.Reset();
}

TEST(CudaBackend, MakeBackendErrors) {
  std::string why;
  if (!MakeCuda(&why)) GTEST_SKIP() << "no CUDA backend: " << why;
  try {
    ops::MakeBackend("cuda:1000");
    ADD_FAILURE() << "cuda:1000 should not exist";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("out of range"), std::string::npos)
        << e.what();
  }
}

TEST(CudaBackend, PlaceMatrixRejectsKQuants) {
  REQUIRE_CUDA(be);
  std::vector<uint8_t> bytes(DTypeBytes(DType::kQ4_K, 256) * 2);
  const Matrix m{DType::kQ4_K, bytes.data(), 2, 256};
  try {
    be->PlaceMatrix(m, "blocks.0.q_proj");
    ADD_FAILURE() << "Q4_K should be refused";
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("blocks.0.q_proj"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Q4_K"), std::string::npos) << msg;
    EXPECT_NE(msg.find("convert"), std::string::npos) << msg;
  }
  const size_t before = be->placed_bytes();
  std::vector<float> v = test::RandomVector(6, 1, 1);
  const Matrix f{DType::kF32, v.data(), 2, 3};
  const Matrix placed = be->PlaceMatrix(f, "w");
  EXPECT_EQ(placed.rows, 2);
  EXPECT_EQ(placed.cols, 3);
  EXPECT_NE(placed.data, f.data);
  EXPECT_EQ(be->placed_bytes(), before + 24);
  const float* pv = be->PlaceVector(v.data(), 6);
  std::vector<float> back(6);
  be->Download(back.data(), pv, 6);
  EXPECT_EQ(back, v);
}

TEST(CudaBackend, Bandwidth) {
  REQUIRE_CUDA(be);
  const double gbs = be->MeasureBandwidthGBs();
  std::printf("  device-to-device copy: %.0f GB/s (read + written)\n", gbs);
  EXPECT_TRUE(std::isfinite(gbs));
  EXPECT_GT(gbs, 0.0);
}

// ----------------------------------------------------------------- matmul

struct GemmCase {
  int64_t N, K;
};

// GPU matmul (in one GEMM mode) against the CPU for every dtype and shape.
void CheckMatMul(const char* mode, DType t,
                 const std::vector<GemmCase>& cases) {
  std::string why;
  auto be = MakeCuda(&why, mode);
  if (!be) GTEST_SKIP() << "no CUDA backend: " << why;
  Backend& cpu = ops::CpuBackend();
  const double u = t == DType::kBF16  ? std::ldexp(1.0, -8)
                   : t == DType::kF16 ? std::ldexp(1.0, -11)
                                      : 0.0;
  uint64_t seed = 11;
  for (const GemmCase& gc : cases)
    for (int64_t M : {1, 7, 32, 160})
      for (bool with_bias : {false, true}) {
        const int64_t N = gc.N, K = gc.K;
        ++seed;
        std::vector<float> x = test::RandomVector(size_t(M * K), seed, 1);
        std::vector<float> w32 =
            test::RandomVector(size_t(N * K), seed, 2, 0.5f);
        std::vector<float> bias = test::RandomVector(size_t(N), seed, 3);
        std::vector<uint8_t> stored = Store(t, w32, N, K);
        const Matrix host{t, stored.data(), N, K};
        // CPU: as stored.
        std::vector<float> y_cpu(size_t(M * N));
        cpu.MatMulWT(x.data(), M, host, y_cpu.data(),
                     with_bias ? bias.data() : nullptr);
        // Reference for the quantized case: fp32 matmul of the dequantized
        // weights (what the GPU computes).
        std::vector<float> wd = Widen(t, stored, N, K);
        std::vector<float> y_deq(size_t(M * N));
        cpu.MatMulWT(x.data(), M, Matrix{DType::kF32, wd.data(), N, K},
                     y_deq.data(), with_bias ? bias.data() : nullptr);
        // GPU.
        const Matrix placed = be->PlaceMatrix(host, "w");
        const float* bias_d =
            with_bias ? be->PlaceVector(bias.data(), N) : nullptr;
        Dev xd(*be, x), yd(*be, size_t(M * N));
        be->MatMulWT(xd.get(), M, placed, yd.get(), bias_d);
        std::vector<float> y = yd.Get();
        int bad = 0;
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) {
            double S = with_bias ? std::fabs(bias[n]) : 0.0, qbound = 0;
            for (int64_t k = 0; k < K; ++k)
              S += std::fabs(double(x[m * K + k]) * wd[n * K + k]);
            if (IsQuantized(t))
              for (int64_t k0 = 0; k0 < K; k0 += 32) {
                double amax = 0;
                for (int64_t k = k0; k < k0 + 32; ++k)
                  amax = std::max(amax, std::fabs(double(x[m * K + k])));
                for (int64_t k = k0; k < k0 + 32; ++k)
                  qbound += std::fabs(wd[n * K + k]) * amax / 127 / 2;
              }
            const double fp32_tol = 1e-5 * S + 1e-6;
            const size_t i = size_t(m * N + n);
            const double got = y[i];
            bool ok;
            if (IsQuantized(t)) {
              ok = std::fabs(got - y_deq[i]) <= fp32_tol &&
                   std::fabs(got - y_cpu[i]) <= qbound + fp32_tol + 1e-5;
            } else {
              ok = std::fabs(got - y_cpu[i]) <= u * S + fp32_tol;
            }
            if (!ok && ++bad <= 3)
              ADD_FAILURE()
                  << mode << " " << DTypeName(t) << " M=" << M << " N=" << N
                  << " K=" << K << " bias=" << with_bias << " at (" << m << ","
                  << n << "): gpu " << got << " cpu " << y_cpu[i]
                  << " dequantized fp32 " << y_deq[i] << " S " << S;
          }
      }
}

// K not a multiple of 32 (nor of 4, for the scalar fallback) for float types.
const std::vector<GemmCase> kFloatCases = {
    {33, 64}, {96, 67}, {17, 292}, {130, 4}, {5, 1}};
const std::vector<GemmCase> kQuantCases = {{33, 64}, {40, 320}, {7, 96}};

class CudaMatMul : public ::testing::TestWithParam<const char*> {};

TEST_P(CudaMatMul, F32) { CheckMatMul(GetParam(), DType::kF32, kFloatCases); }
TEST_P(CudaMatMul, BF16) { CheckMatMul(GetParam(), DType::kBF16, kFloatCases); }
TEST_P(CudaMatMul, F16) { CheckMatMul(GetParam(), DType::kF16, kFloatCases); }
TEST_P(CudaMatMul, Q8_0) { CheckMatMul(GetParam(), DType::kQ8_0, kQuantCases); }
TEST_P(CudaMatMul, Q4_0) { CheckMatMul(GetParam(), DType::kQ4_0, kQuantCases); }

// "" = the default choice; "lt" = cuBLASLt wherever it has an algorithm;
// "kernel" = our own kernels only.
INSTANTIATE_TEST_SUITE_P(Modes, CudaMatMul,
                         ::testing::Values("", "lt", "kernel"),
                         [](const auto& info) {
                           return std::string(*info.param ? info.param
                                                          : "auto");
                         });

// ------------------------------------------------------- row and elements

TEST(CudaBackend, RmsNorm) {
  REQUIRE_CUDA(be);
  for (int64_t M : {1, 7, 33})
    for (int64_t C : {1, 31, 4099}) {
      std::vector<float> x =
          test::RandomVector(size_t(M * C), uint64_t(C), 1, 3);
      std::vector<float> w = test::RandomVector(size_t(C), uint64_t(C), 2);
      std::vector<float> want(x.size());
      ops::CpuBackend().RmsNorm(x.data(), w.data(), M, C, 1e-5f, want.data());
      Dev xd(*be, x), wd(*be, w), yd(*be, x.size());
      be->RmsNorm(xd.get(), wd.get(), M, C, 1e-5f, yd.get());
      std::vector<float> y = yd.Get();
      be->RmsNorm(xd.get(), wd.get(), M, C, 1e-5f, xd.get());  // in place
      std::vector<float> y2 = xd.Get();
      for (size_t i = 0; i < y.size(); ++i) {
        ASSERT_NEAR(y[i], want[i], 2e-5 * std::fabs(want[i]) + 1e-6)
            << "M=" << M << " C=" << C << " i=" << i;
        ASSERT_EQ(y2[i], y[i]);
      }
    }
}

TEST(CudaBackend, Rope) {
  REQUIRE_CUDA(be);
  for (int64_t T : {1, 5, 17})
    for (int64_t hd : {8, 64, 128}) {
      const int64_t H = 3, stride = H * hd + 5, half = hd / 2;
      std::vector<float> x =
          test::RandomVector(size_t(T * stride), uint64_t(T * hd), 1);
      std::vector<float> ang =
          test::RandomVector(size_t(T * half), uint64_t(T * hd), 2, 3);
      std::vector<float> cs(ang.size()), sn(ang.size());
      for (size_t i = 0; i < ang.size(); ++i)
        cs[i] = std::cos(ang[i]), sn[i] = std::sin(ang[i]);
      std::vector<float> want = x;
      ops::CpuBackend().Rope(want.data(), T, H, hd, stride, cs.data(),
                             sn.data());
      Dev xd(*be, x), cd(*be, cs), sd(*be, sn);
      be->Rope(xd.get(), T, H, hd, stride, cd.get(), sd.get());
      std::vector<float> got = xd.Get();
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], want[i], 1e-6 * std::fabs(want[i]) + 1e-6)
            << "T=" << T << " hd=" << hd << " i=" << i;
    }
}

TEST(CudaBackend, SwiGLUAndAdd) {
  REQUIRE_CUDA(be);
  for (int64_t n : {1, 1000, 100003}) {
    std::vector<float> g = test::RandomVector(size_t(n), uint64_t(n), 1, 4);
    std::vector<float> u = test::RandomVector(size_t(n), uint64_t(n), 2);
    std::vector<float> want(static_cast<size_t>(n)), sum = u;
    ops::CpuBackend().SwiGLU(g.data(), u.data(), n, want.data());
    ops::CpuBackend().AddInPlace(sum.data(), g.data(), n);
    Dev gd(*be, g), ud(*be, u), od(*be, size_t(n));
    be->SwiGLU(gd.get(), ud.get(), n, od.get());
    std::vector<float> got = od.Get();
    be->AddInPlace(ud.get(), gd.get(), n);
    std::vector<float> got_sum = ud.Get();
    for (size_t i = 0; i < size_t(n); ++i) {
      ASSERT_NEAR(got[i], want[i], 1e-5 * std::fabs(want[i]) + 1e-6) << i;
      ASSERT_EQ(got_sum[i], sum[i]) << i;
    }
  }
}

TEST(CudaBackend, EmbedEveryDtypeAndGather) {
  REQUIRE_CUDA(be);
  const int64_t V = 37;
  const std::vector<int32_t> ids = {5, 0, 36, 5, 17};
  for (DType t :
       {DType::kF32, DType::kBF16, DType::kF16, DType::kQ8_0, DType::kQ4_0})
    for (int64_t C : {7, 64, 4096}) {
      if (IsQuantized(t) && C % 32) continue;
      std::vector<float> v = test::RandomVector(size_t(V * C), uint64_t(C), 1);
      std::vector<uint8_t> stored = Store(t, v, V, C);
      const Matrix host{t, stored.data(), V, C};
      const Matrix placed = be->PlaceMatrix(host, "wte");
      for (int64_t n : {int64_t(1), int64_t(ids.size())}) {
        std::vector<float> want(size_t(n * C));
        ops::CpuBackend().Embed(host, ids.data(), n, want.data());
        Dev xd(*be, size_t(n * C));
        be->Embed(placed, ids.data(), n, xd.get());
        EXPECT_EQ(xd.Get(), want) << DTypeName(t) << " C=" << C << " n=" << n;
      }
    }
  const int64_t W = 33;
  std::vector<float> x = test::RandomVector(size_t(10 * W), 3, 3);
  const std::vector<int32_t> rows = {9, 0, 4, 4};
  std::vector<float> want(rows.size() * W);
  ops::CpuBackend().GatherRows(x.data(), W, rows.data(), 4, want.data());
  Dev xd(*be, x), od(*be, want.size());
  be->GatherRows(xd.get(), W, rows.data(), 4, od.get());
  EXPECT_EQ(od.Get(), want);
}

TEST(CudaBackend, RowStatsWithBannedTokensAndTies) {
  REQUIRE_CUDA(be);
  for (int64_t V : {1, 2, 50, 1000, 50257}) {
    const int64_t n = 6;
    std::vector<float> x = test::RandomVector(size_t(n * V), uint64_t(V), 1, 3);
    if (V >= 2) {
      // Row 1: the max twice (second = max, argmax = the first).
      float mx = -1e30f;
      for (int64_t i = 0; i < V; ++i) mx = std::max(mx, x[size_t(V + i)]);
      x[size_t(V + V / 2)] = mx + 1;
      x[size_t(V + V - 1)] = mx + 1;
      // Row 2: banned tokens (-inf), among them index 0.
      for (int64_t i = 0; i < V; i += 3) x[size_t(2 * V + i)] = -INFINITY;
      // Row 3: one finite value, the rest banned.
      for (int64_t i = 0; i < V; ++i) x[size_t(3 * V + i)] = -INFINITY;
      x[size_t(3 * V + V - 1)] = 0.5f;
      // Row 4: all equal.
      for (int64_t i = 0; i < V; ++i) x[size_t(4 * V + i)] = 1.25f;
    }
    std::vector<ops::RowStats> want(static_cast<size_t>(n)),
        got(static_cast<size_t>(n));
    ops::CpuBackend().RowStatsRows(x.data(), n, V, want.data());
    Dev xd(*be, x);
    be->RowStatsRows(xd.get(), n, V, got.data());
    for (int64_t r = 0; r < n; ++r) {
      const ops::RowStats &g = got[size_t(r)], &w = want[size_t(r)];
      EXPECT_EQ(g.argmax, w.argmax) << "V=" << V << " row " << r;
      EXPECT_EQ(g.max, w.max) << "V=" << V << " row " << r;
      EXPECT_EQ(g.second, w.second) << "V=" << V << " row " << r;
      EXPECT_EQ(g.ties, w.ties) << "V=" << V << " row " << r;
      EXPECT_NEAR(g.log_norm, w.log_norm, 1e-5 * (1 + std::fabs(w.log_norm)))
          << "V=" << V << " row " << r;
      EXPECT_NEAR(g.entropy, w.entropy, 1e-5 * (1 + std::fabs(w.entropy)))
          << "V=" << V << " row " << r;
    }
  }
}

// --------------------------------------------------------------- attention

struct AttnCase {
  const char* what;
  AttentionShape s;
  bool masked;  // a key_mask that hides some keys, and all of one query's
};

TEST(CudaBackend, Attention) {
  REQUIRE_CUDA(be);
  auto shape = [](int64_t B, int64_t T, int64_t H, int64_t KV, int64_t hd,
                  bool causal, int64_t block, int64_t Tk, int64_t q_offset,
                  int64_t bd_half) {
    AttentionShape s;
    s.B = B, s.T = T, s.n_heads = H, s.n_kv_heads = KV, s.head_dim = hd;
    s.causal = causal, s.block = block, s.Tk = Tk, s.q_offset = q_offset;
    s.bd_half = bd_half;
    return s;
  };
  const std::vector<AttnCase> cases = {
      {"bidirectional", shape(2, 13, 4, 4, 8, false, 0, 0, 0, 0), false},
      {"causal GQA", shape(1, 37, 8, 2, 64, true, 0, 0, 0, 0), false},
      {"block-causal", shape(2, 20, 4, 2, 16, false, 4, 0, 0, 0), false},
      {"cache causal", shape(1, 9, 4, 4, 32, true, 0, 70, 61, 0), false},
      {"cache block", shape(2, 8, 4, 1, 32, false, 8, 72, 64, 0), true},
      {"masked bidirectional", shape(3, 11, 2, 2, 8, false, 0, 0, 0, 0), true},
      {"masked causal", shape(2, 16, 4, 2, 16, true, 0, 0, 0, 0), true},
      {"long cache hd128 (split keys)",
       shape(1, 32, 4, 4, 128, false, 0, 600, 568, 0), false},
      {"long cache hd256 GQA (split keys)",
       shape(2, 32, 4, 2, 256, false, 32, 544, 512, 0), true},
      {"prefill hd128", shape(2, 200, 4, 4, 128, false, 0, 0, 0, 0), true},
      {"bd3lm", shape(2, 16, 2, 2, 8, false, 4, 0, 0, 8), false},
      // head_dim % 4 != 0 (the kernel's scalar q loads) and a partial
      // last query block.
      {"hd18 masked causal GQA", shape(2, 19, 6, 2, 18, true, 0, 0, 0, 0),
       true},
      // head_dim 96 (3 of 4 dims per lane in use), split keys.
      {"hd96 cache block (split keys)",
       shape(1, 32, 2, 2, 96, false, 32, 544, 512, 0), false},
      {"one query, long cache", shape(1, 1, 4, 4, 64, true, 0, 300, 299, 0),
       false},
  };
  uint64_t seed = 100;
  for (const AttnCase& c : cases) {
    const AttentionShape& s = c.s;
    ++seed;
    const int64_t Tk = s.keys(), qw = s.n_heads * s.head_dim,
                  kw = s.n_kv_heads * s.head_dim;
    std::vector<float> q = test::RandomVector(size_t(s.B * s.T * qw), seed, 1);
    std::vector<float> k = test::RandomVector(size_t(s.B * Tk * kw), seed, 2);
    std::vector<float> v = test::RandomVector(size_t(s.B * Tk * kw), seed, 3);
    std::vector<uint8_t> mask;
    int64_t empty_b = -1, empty_i = -1;  // a query that sees no key
    if (c.masked) {
      mask.assign(size_t(s.B * Tk), 1);
      for (size_t i = 0; i < mask.size(); ++i) mask[i] = (i * 7 + 3) % 5 != 0;
      if (s.causal) {  // query 0 sees only key 0: hide it
        mask[size_t((s.B - 1) * Tk)] = 0;
        empty_b = s.B - 1, empty_i = 0;
      } else {  // hide every key of the last sequence
        for (int64_t j = 0; j < Tk; ++j) mask[size_t((s.B - 1) * Tk + j)] = 0;
        empty_b = s.B - 1, empty_i = s.T - 1;
      }
    }
    const uint8_t* m = c.masked ? mask.data() : nullptr;
    std::vector<float> want(q.size());
    ops::CpuBackend().Attention(q.data(), k.data(), v.data(), s, m,
                                want.data());
    Dev qd(*be, q), kd(*be, k), vd(*be, v), od(*be, q.size());
    be->Attention(qd.get(), kd.get(), vd.get(), s, m, od.get());
    std::vector<float> got = od.Get();
    double max_err = 0;
    for (size_t i = 0; i < got.size(); ++i)
      max_err = std::max(max_err, std::fabs(double(got[i]) - want[i]));
    EXPECT_LT(max_err, 2e-5) << c.what;
    if (empty_b >= 0) {
      for (int64_t d = 0; d < qw; ++d) {
        EXPECT_EQ(got[size_t((empty_b * s.T + empty_i) * qw + d)], 0.0f)
            << c.what << ": a query with no visible key gets zeros";
      }
    }
  }
}

// ------------------------------------------------------------------ models

struct ModelCase {
  const char* name;
  ModelConfig config;
  const char* dtype;
};

std::vector<ModelCase> ModelCases() {
  std::vector<ModelCase> out;
  for (const char* dt : {"F32", "BF16"}) {
    ModelConfig llada = test::TinyConfig(Arch::kLLaDA);
    llada.d_model = 64, llada.head_dim = 16, llada.d_ff = 96;
    out.push_back({"llada", llada, dt});
    ModelConfig dream = test::TinyConfig(Arch::kDream);  // GQA, biases
    dream.d_model = 64, dream.head_dim = 16, dream.d_ff = 80;
    out.push_back({"dream", dream, dt});
    ModelConfig block = test::TinyConfig(Arch::kLLaDA);
    block.block_size = 4;
    out.push_back({"llada_block4", block, dt});
  }
  return out;
}

// Largest |difference| over the largest |value| of each row, worst row.
double RowRelErr(const std::vector<float>& got, const std::vector<float>& want,
                 int64_t V) {
  double worst = 0;
  for (size_t r = 0; r * size_t(V) < want.size(); ++r) {
    double mx = 1e-6, err = 0;
    for (int64_t v = 0; v < V; ++v) {
      const size_t i = r * size_t(V) + size_t(v);
      mx = std::max(mx, std::fabs(double(want[i])));
      err = std::max(err, std::fabs(double(got[i]) - want[i]));
    }
    worst = std::max(worst, err / mx);
  }
  return worst;
}

std::vector<float> RunForward(Model& m, const std::vector<int32_t>& ids) {
  ForwardBatch b;
  b.T = int64_t(ids.size());
  b.ids = ids.data();
  std::vector<float> out(ids.size() * size_t(m.config().vocab_size));
  m.Forward(b, out.data());
  return out;
}

TEST(CudaModel, ForwardAndCacheMatchCpu) {
  REQUIRE_CUDA(be);
  be.reset();
  const std::vector<int32_t> ids = {3, 17, 5, 49, 49, 49, 8, 1, 49, 49, 0, 22};
  const int64_t L = int64_t(ids.size()), prefix = 8;
  for (const ModelCase& mc : ModelCases()) {
    const std::string what = std::string(mc.name) + " " + mc.dtype;
    test::TempDir dir;
    InitRandomModel(mc.config, dir.path(), mc.dtype, 7, 0.1f);
    auto cpu = Model::Load(dir.path());
    auto gpu = Model::Load(dir.path(), LoadOptions{"cuda"});
    const int64_t V = gpu->config().vocab_size;
    const double tol = std::string(mc.dtype) == "BF16" ? 2e-2 : 1e-4;
    const std::vector<float> want = RunForward(*cpu, ids);
    const std::vector<float> got = RunForward(*gpu, ids);
    EXPECT_LT(RowRelErr(got, want, V), tol) << what << ": Forward";

    // Some rows only, batched with padding.
    {
      std::vector<int32_t> ids2 = ids;
      ids2.insert(ids2.end(), ids.begin(), ids.end());
      std::vector<uint8_t> km(ids2.size(), 1);
      for (int64_t t = L - 3; t < L; ++t) km[size_t(L + t)] = 0;
      const std::vector<int32_t> rows = {int32_t(2 * L - 4), 0, 5};
      ForwardBatch b;
      b.B = 2, b.T = L, b.ids = ids2.data(), b.key_mask = km.data();
      b.rows = rows.data(), b.n_rows = 3;
      std::vector<float> a(3 * size_t(V)), c(3 * size_t(V));
      cpu->Forward(b, a.data());
      gpu->Forward(b, c.data());
      EXPECT_LT(RowRelErr(c, a, V), tol) << what << ": batched rows";
    }

    // The cache filled by a run over the whole sequence, then the last 4
    // positions again against it: Forward's rows.
    {
      KVCache cache(gpu->config(), 32);
      std::vector<float> full(size_t(L * V)), tail(size_t(4 * V));
      CachedRun r{&cache, ids.data(), 0, L, 0};
      gpu->ForwardCached(&r, 1, nullptr, -1, full.data());
      EXPECT_LT(RowRelErr(full, got, V), tol) << what << ": cached, whole";
      CachedRun t{&cache, ids.data() + L - 4, L - 4, 4, L};
      gpu->ForwardCached(&t, 1, nullptr, -1, tail.data());
      std::vector<float> want_tail(want.end() - 4 * V, want.end());
      EXPECT_LT(RowRelErr(tail, want_tail, V), tol) << what << ": cached tail";
    }
    // Block diffusion: a prefix ending at a block boundary, then a block,
    // is exact.
    if (mc.config.block_size > 0) {
      KVCache cache(gpu->config(), 32);
      std::vector<float> pre(size_t(prefix * V)), blk(size_t((L - prefix) * V));
      CachedRun r0{&cache, ids.data(), 0, prefix, 0};
      gpu->ForwardCached(&r0, 1, nullptr, -1, pre.data());
      CachedRun r1{&cache, ids.data() + prefix, prefix, L - prefix, 0};
      gpu->ForwardCached(&r1, 1, nullptr, -1, blk.data());
      std::vector<float> want_blk(want.begin() + prefix * V, want.end());
      EXPECT_LT(RowRelErr(blk, want_blk, V), tol) << what << ": prefix+block";
    }
  }
}

TEST(CudaModel, GoldenLogits) {
  REQUIRE_CUDA(be);
  be.reset();
  const std::string root = std::string(DLLM_SOURCE_DIR) + "/tests/golden/";
  int checked = 0;
  for (const char* name :
       {"llada_untied_f32", "llada_tied_f32", "dream_gqa_f32", "dream_tied_f32",
        "llada_untied_bf16", "dream_gqa_bf16", "llada_block_f32"}) {
    const std::string dir = root + name;
    std::string text;
    try {
      text = ReadFileToString(dir + "/golden.json");
    } catch (const std::exception&) {
      continue;  // not in this checkout
    }
    auto golden = nlohmann::json::parse(text);
    auto model = Model::Load(dir, LoadOptions{"cuda"});
    const int64_t V = model->config().vocab_size;
    const bool bf16 = std::string(name).find("bf16") != std::string::npos;
    for (const auto& c : golden["cases"]) {
      std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
      const std::vector<float> got = RunForward(*model, ids);
      std::vector<float> want;
      for (const auto& row : c["logits"])
        for (const auto& x : row) want.push_back(x.get<float>());
      ASSERT_EQ(want.size(), got.size()) << name;
      double max_err = 0;
      for (size_t i = 0; i < got.size(); ++i)
        max_err = std::max(max_err, std::fabs(double(got[i]) - want[i]));
      // F32: as the CPU test (1e-4), doubled for the other summation order;
      // BF16: x rounded to bf16 in the matmuls (see the top of the file).
      if (bf16)
        EXPECT_LT(RowRelErr(got, want, V), 2e-2) << name << " L=" << ids.size();
      else
        EXPECT_LT(max_err, 2e-4) << name << " L=" << ids.size();
      ++checked;
    }
  }
  if (checked == 0) GTEST_SKIP() << "no golden files under " << root;
}

}  // namespace
}  // namespace dllm
