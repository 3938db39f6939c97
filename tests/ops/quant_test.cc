// Block-quantized weights (ops/quant.h): the quantizers against golden bytes
// made by llama.cpp itself (scripts/make_quant_golden.py), the dequantizers
// against gguf-py's, every SIMD kernel against the scalar kernel, and the
// quantized matmul against the float matmul of the dequantized weights.
#include "ops/quant.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/half.h"
#include "base/rng.h"
#include "base/thread_pool.h"
#include "ops/cpu/quant_kernels.h"
#include "ops/ops.h"
#include "ops/ref/ref.h"
#include "test_util.h"

namespace dllm {
namespace {

constexpr DType kTypes[] = {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K,
                            DType::kQ6_K};

std::string Lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

std::vector<float> AsFloats(const std::vector<uint8_t>& b) {
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

// ---- Golden bytes from llama.cpp -------------------------------------------

TEST(Quant, GoldenBytesFromLlamaCpp) {
  const std::string dir = std::string(DLLM_SOURCE_DIR) + "/tests/golden_quant/";
  std::ifstream mf(dir + "manifest.json");
  ASSERT_TRUE(mf.good()) << "run scripts/make_quant_golden.py";
  const nlohmann::json man = nlohmann::json::parse(mf);
  const int64_t rows = man["rows"], cols = man["cols"];
  const std::vector<float> input = AsFloats(ReadFile(dir + "input.f32"));
  ASSERT_EQ(input.size(), size_t(rows * cols));
  for (DType t : kTypes) {
    const std::string name = Lower(DTypeName(t));
    const std::vector<uint8_t> golden = ReadFile(dir + name + ".bin");
    const std::vector<float> deq = AsFloats(ReadFile(dir + name + ".deq.f32"));
    const size_t rb = DTypeBytes(t, cols);
    ASSERT_EQ(golden.size(), rb * size_t(rows)) << name;
    ASSERT_EQ(deq.size(), input.size()) << name;
    for (int64_t r = 0; r < rows; ++r) {
      const std::string what =
          name + " row " + man["row_names"][size_t(r)].get<std::string>();
      std::vector<uint8_t> got(rb);
      ops::QuantizeRow(t, input.data() + r * cols, cols, got.data());
      for (size_t i = 0; i < rb; ++i)
        ASSERT_EQ(int(got[i]), int(golden[r * rb + i]))
            << what << ": byte " << i << " of block " << i / DTypeBlockBytes(t);
      // Dequantized, by each path, to the same bits as gguf-py and ggml.
      const size_t ncols = static_cast<size_t>(cols);
      std::vector<float> d0(ncols), d1(ncols), d2(ncols);
      ops::DequantizeRow(t, golden.data() + r * rb, cols, d0.data());
      ops::ToF32(t, golden.data() + r * rb, cols, d1.data());
      ops::ref::ToF32(t, golden.data() + r * rb, cols, d2.data());
      for (int64_t i = 0; i < cols; ++i) {
        const float want = deq[size_t(r * cols + i)];
        ASSERT_EQ(std::memcmp(&d0[size_t(i)], &want, 4), 0)
            << what << " dequantized at " << i << ": " << d0[size_t(i)]
            << " vs " << want;
        ASSERT_EQ(d1[size_t(i)], d0[size_t(i)]) << what << " ToF32 at " << i;
        ASSERT_EQ(d2[size_t(i)], d0[size_t(i)])
            << what << " ref ToF32 at " << i;
      }
    }
  }
}

// Round trip on random rows: each value within its block's quantization step.
TEST(Quant, RoundTripError) {
  for (DType t : kTypes) {
    const int64_t n = 4096;
    const std::vector<float> x = test::RandomVector(size_t(n), 3, 1);
    std::vector<uint8_t> q(DTypeBytes(t, n));
    std::vector<float> y(static_cast<size_t>(n));
    ops::QuantizeRow(t, x.data(), n, q.data());
    ops::DequantizeRow(t, q.data(), n, y.data());
    double se = 0, sx = 0;
    for (int64_t i = 0; i < n; ++i)
      se += double(y[size_t(i)] - x[size_t(i)]) * (y[size_t(i)] - x[size_t(i)]),
          sx += double(x[size_t(i)]) * x[size_t(i)];
    const double rel = std::sqrt(se / sx);
    // Relative RMS error of normal data: about 2^-bits of a step, looser for
    // 4 bits (what llama.cpp's own quantizers give on the same data).
    const double limit = t == DType::kQ8_0   ? 0.006
                         : t == DType::kQ6_K ? 0.03
                                             : 0.12;
    EXPECT_LT(rel, limit) << DTypeName(t);
    EXPECT_GT(rel, 0.0) << DTypeName(t);
  }
}

TEST(Quant, Errors) {
  std::vector<float> x(512, 1.0f), y(512);
  std::vector<uint8_t> q(1024);
  EXPECT_DLLM_ERROR(ops::QuantizeRow(DType::kQ4_K, x.data(), 100, q.data()),
                    "not whole blocks");
  EXPECT_DLLM_ERROR(ops::QuantizeRow(DType::kF16, x.data(), 32, q.data()),
                    "not a block format");
  EXPECT_DLLM_ERROR(ops::ToF32(DType::kQ8_0, q.data(), 33, y.data()),
                    "33 values of Q8_0 are not whole blocks");
  EXPECT_DLLM_ERROR(ops::ref::ToF32(DType::kQ6_K, q.data(), 300, y.data()),
                    "multiple of 256");
  ops::Matrix w{DType::kQ4_K, q.data(), 2, 100};
  EXPECT_DLLM_ERROR(ops::MatMulWT(x.data(), 1, w, y.data()),
                    "needs its row length 100 to be a multiple of 256");
  EXPECT_DLLM_ERROR(ops::ref::MatMulWT(x.data(), 1, w, y.data()),
                    "multiple of 256");
  ops::Matrix w0{DType::kQ4_0, q.data(), 2, 48};
  EXPECT_DLLM_ERROR(ops::MatMulWT(x.data(), 2, w0, y.data()), "multiple of 32");
}

// ---- Kernels
// -----------------------------------------------------------------

struct QMatrix {
  DType t;
  int64_t N, K;
  std::vector<uint8_t> bytes;
  ops::Matrix m() const { return {t, bytes.data(), N, K}; }
  size_t row_bytes() const { return DTypeBytes(t, K); }
};

QMatrix QuantizeMatrix(DType t, const std::vector<float>& w, int64_t N,
                       int64_t K) {
  QMatrix q{t, N, K, std::vector<uint8_t>(DTypeBytes(t, K) * size_t(N))};
  for (int64_t n = 0; n < N; ++n)
    ops::QuantizeRow(t, w.data() + n * K, K,
                     q.bytes.data() + n * q.row_bytes());
  return q;
}

// Weight rows of raw random block bytes, as a file from elsewhere could hold
// (int8 values of -128, Q6_K scales of -128, any 6-bit Q4_K scale), with
// finite fp16 scales of either sign.
QMatrix RandomBlocks(DType t, int64_t N, int64_t K, uint64_t seed) {
  QMatrix q{t, N, K, std::vector<uint8_t>(DTypeBytes(t, K) * size_t(N))};
  for (size_t i = 0; i < q.bytes.size(); ++i)
    q.bytes[i] = uint8_t(RandomUniform(seed, 0, i) * 256);
  const size_t bb = DTypeBlockBytes(t);
  auto put = [&](size_t at, float v) {
    const uint16_t h = F32ToF16(v);
    std::memcpy(&q.bytes[at], &h, 2);
  };
  for (size_t b = 0, i = 0; b < q.bytes.size(); b += bb, ++i) {
    const float s = float(RandomUniform(seed, 1, i) * 2 - 1) * 0.01f;
    switch (t) {
      case DType::kQ8_0:
      case DType::kQ4_0:
        put(b, s);
        break;
      case DType::kQ4_K:  // d, dmin >= 0 as quantizers write them
        put(b, std::fabs(s));
        put(b + 2, float(RandomUniform(seed, 2, i)) * 0.01f);
        break;
      default:
        put(b + 208, s);
    }
  }
  return q;
}

std::vector<float> Dequantize(const QMatrix& q) {
  std::vector<float> w(size_t(q.N * q.K));
  for (int64_t n = 0; n < q.N; ++n)
    ops::DequantizeRow(q.t, q.bytes.data() + n * q.row_bytes(), q.K,
                       w.data() + n * q.K);
  return w;
}

// |scale part| + |min part| of every weight (Q4_K's x = d sc q - dmin m can
// cancel; the float sums inside a kernel see both parts).
std::vector<float> AbsParts(const QMatrix& q) {
  QMatrix a = q;
  if (q.t == DType::kQ4_K)
    for (size_t b = 0; b < a.bytes.size(); b += 144) a.bytes[b + 3] ^= 0x80;
  std::vector<float> w = Dequantize(a);
  for (float& v : w) v = std::fabs(v);
  return w;
}

// Per-output error bounds of the quantized matmul, from first principles
// (u = 2^-24, the fp32 unit roundoff).
//  act: the activation quantization, sum_k |w_k| d_k / 2.
//  fp:  one kernel's fp32 rounding. The integer dot of each block is exact
//       (|int| < 2^24 per vector lane); its product with the two scales
//       rounds twice, the running sum once per block, the final reduction
//       of the lanes at most 4 times: at most (blocks + 8) u sum|terms|, and
//       sum|terms| <= mag = sum_k |w_k| (|x_k| + d_k / 2).
struct Bounds {
  std::vector<double> act, fp, mag;
};

Bounds ComputeBounds(const std::vector<float>& x, int64_t M, const QMatrix& q) {
  const int64_t K = q.K, N = q.N, B = DTypeBlock(q.t) == 256 ? 256 : 32;
  const std::vector<float> w = Dequantize(q), wa = AbsParts(q);
  std::vector<float> da(size_t(M * K));  // each value's activation step
  for (int64_t m = 0; m < M; ++m)
    for (int64_t b = 0; b < K / B; ++b) {
      float amax = 0;
      for (int64_t i = 0; i < B; ++i)
        amax = std::fmax(amax, std::fabs(x[size_t(m * K + b * B + i)]));
      for (int64_t i = 0; i < B; ++i)
        da[size_t(m * K + b * B + i)] = amax / 127;
    }
  Bounds out{std::vector<double>(size_t(M * N)),
             std::vector<double>(size_t(M * N)),
             std::vector<double>(size_t(M * N))};
  const double u = FLT_EPSILON / 2, steps = double(K / B + 8);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double act = 0, mag = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double d = da[size_t(m * K + k)];
        act += std::fabs(double(w[size_t(n * K + k)])) * d / 2;
        mag += double(wa[size_t(n * K + k)]) *
               (std::fabs(double(x[size_t(m * K + k)])) + d / 2);
      }
      out.act[size_t(m * N + n)] = act;
      out.mag[size_t(m * N + n)] = mag;
      out.fp[size_t(m * N + n)] = steps * u * mag + 1e-30;
    }
  return out;
}

std::vector<float> RunQ(const float* x, int64_t M, const QMatrix& q,
                        const float* bias) {
  std::vector<float> y(size_t(M * q.N), NAN);
  ops::MatMulWT(x, M, q.m(), y.data(), bias);
  return y;
}

struct Shape {
  int64_t M, N, K;
};

// Odd shapes: every M in {1, 3, 17, 130}, N in {1, 31, 257}, K from one
// block to 4096.
std::vector<Shape> Shapes(DType t) {
  if (DTypeBlock(t) == 32)
    return {{1, 1, 32},     {1, 31, 64},    {3, 257, 96},   {17, 31, 4096},
            {130, 257, 32}, {130, 31, 416}, {1, 257, 4096}, {17, 257, 288},
            {3, 1, 4096},   {130, 1, 64}};
  return {{1, 1, 256},     {1, 31, 512},    {3, 257, 768},  {17, 31, 4096},
          {130, 257, 256}, {130, 31, 1024}, {1, 257, 4096}, {3, 1, 4096}};
}

// Every kernel target this CPU has, on 1 and 2 threads, against the scalar
// kernel. The integer dot products are exact and the activation bytes are the
// same on every target (QuantizeActivationsMatch), so the results differ only
// in the order of the fp32 sums of per-block products: by at most the sum
// of both fp bounds (the worst case; seen: about 50 times less).
void CheckTargetsAgainstScalar(const QMatrix& q, const std::vector<float>& x,
                               int64_t M, const std::vector<float>& bias,
                               const std::string& what) {
  const Bounds bd = ComputeBounds(x, M, q);
  cpu::ForceQuantTarget(cpu::QuantTarget::kScalar);
  SetThreads(1);
  const std::vector<float> want = RunQ(x.data(), M, q, bias.data());
  for (cpu::QuantTarget target : cpu::QuantTargets()) {
    cpu::ForceQuantTarget(target);
    for (int threads : {1, 2}) {
      SetThreads(threads);
      const std::vector<float> got = RunQ(x.data(), M, q, bias.data());
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_LE(std::fabs(double(got[i]) - want[i]),
                  2 * bd.fp[i] + 2 * FLT_EPSILON * std::fabs(bias[i % q.N]))
            << what << " " << cpu::QuantTargetName(target) << " threads "
            << threads << " at (" << i / q.N << ", " << i % q.N
            << "): " << got[i] << " vs scalar " << want[i];
    }
  }
  cpu::ResetQuantTarget();
  SetThreads(0);
}

TEST(Quant, KernelsMatchScalarTwin) {
  for (DType t : kTypes)
    for (const Shape& s : Shapes(t)) {
      const std::string what =
          std::string(DTypeName(t)) + " M=" + std::to_string(s.M) +
          " N=" + std::to_string(s.N) + " K=" + std::to_string(s.K);
      const std::vector<float> w =
          test::RandomVector(size_t(s.N * s.K), 11, uint64_t(s.K));
      std::vector<float> x =
          test::RandomVector(size_t(s.M * s.K), 12, uint64_t(s.N));
      x[0] = 25.0f;  // an outlier: one coarse activation block
      const std::vector<float> bias = test::RandomVector(size_t(s.N), 13, 0);
      CheckTargetsAgainstScalar(QuantizeMatrix(t, w, s.N, s.K), x, s.M, bias,
                                what);
    }
}

TEST(Quant, KernelsMatchScalarTwinOnRawBlocks) {
  for (DType t : kTypes)
    for (const Shape& s : {Shape{1, 31, 512}, Shape{17, 33, 1024}}) {
      const QMatrix q = RandomBlocks(t, s.N, s.K, 77);
      const std::vector<float> x =
          test::RandomVector(size_t(s.M * s.K), 14, 0, 3.0f);
      CheckTargetsAgainstScalar(q, x, s.M, std::vector<float>(size_t(s.N), 0),
                                std::string("raw ") + DTypeName(t));
    }
}

// Weights used in place from a file (GGUF data is 32-byte aligned, but a
// row need not be): any address gives the same bits.
TEST(Quant, MisalignedWeights) {
  for (DType t : kTypes) {
    const int64_t M = 5, N = 9, K = 2 * DTypeBlock(t) * 3;
    const QMatrix q =
        QuantizeMatrix(t, test::RandomVector(size_t(N * K), 31, 0), N, K);
    const std::vector<float> x = test::RandomVector(size_t(M * K), 32, 0);
    for (cpu::QuantTarget target : cpu::QuantTargets()) {
      cpu::ForceQuantTarget(target);
      const std::vector<float> want = RunQ(x.data(), M, q, nullptr);
      for (size_t off : {1, 3, 17}) {
        std::vector<uint8_t> buf(q.bytes.size() + off);
        std::memcpy(buf.data() + off, q.bytes.data(), q.bytes.size());
        std::vector<float> got(want.size());
        ops::MatMulWT(x.data(), M, ops::Matrix{t, buf.data() + off, N, K},
                      got.data());
        EXPECT_EQ(std::memcmp(got.data(), want.data(), 4 * got.size()), 0)
            << DTypeName(t) << " " << cpu::QuantTargetName(target) << " offset "
            << off;
      }
    }
    cpu::ResetQuantTarget();
  }
}

// Every target quantizes activations to the same bytes.
TEST(Quant, QuantizeActivationsMatch) {
  for (int64_t B : {32, 256}) {
    const int64_t M = 3, K = 1024;
    std::vector<float> x = test::RandomVector(size_t(M * K), 15, 0, 2.0f);
    for (int64_t i = 0; i < 64; ++i) x[size_t(i)] = 0.0f;  // a zero block
    x[300] = 1e6f;
    x[301] = -1e-6f;
    // Exact ties for the rounding: blocks whose max is 127 (scale 1) and
    // whose other values are k + 1/2.
    for (int64_t i = 512; i < 512 + 256; ++i)
      x[size_t(i)] = i % 32 == 0 ? 127.0f : float(i % 253 - 126) + 0.5f;
    auto make = [&](std::vector<uint8_t>& buf) {
      buf.assign(size_t(M * K * 4), 0xAA);
      cpu::quant::Act a;
      a.K = K, a.B = B;
      a.corr_off = 128;
      a.q = reinterpret_cast<int8_t*>(buf.data());
      a.d = reinterpret_cast<float*>(buf.data() + M * K);
      a.d8 = a.d + M * K / B;
      a.corr = reinterpret_cast<int32_t*>(a.d8 + M * K / 4);
      a.bsums = reinterpret_cast<int16_t*>(a.corr + M * K / 4);
      return a;
    };
    std::vector<uint8_t> want_buf, got_buf;
    const cpu::quant::Act want = make(want_buf);
    for (int64_t m = 0; m < M; ++m)
      cpu::quant::QuantizeActScalar(x.data() + m * K, want, m);
    for (cpu::QuantTarget target : cpu::QuantTargets()) {
      const cpu::quant::Kernel& k =
          target == cpu::QuantTarget::kScalar ? cpu::quant::ScalarKernel()
          : target == cpu::QuantTarget::kAvx2 ? cpu::quant::Avx2Kernel()
          : target == cpu::QuantTarget::kAvx512
              ? cpu::quant::Avx512Kernel()
              : cpu::quant::Avx512VnniKernel();
      const cpu::quant::Act got = make(got_buf);
      for (int64_t m = 0; m < M; ++m) k.quantize_act(x.data() + m * K, got, m);
      EXPECT_EQ(got_buf, want_buf)
          << cpu::QuantTargetName(target) << " B=" << B;
    }
  }
}

// The quantized matmul against the float matmul of the dequantized weights:
// the difference is the activation quantization, at most sum_k |w_k| d_k / 2
// (d_k the step of k's activation block), plus fp32 rounding. Typical errors
// are far below that worst case; the test also checks the RMS error.
TEST(Quant, MatMulMatchesDequantizedFloat) {
  for (DType t : kTypes)
    for (const Shape& s : Shapes(t)) {
      const std::string what =
          std::string(DTypeName(t)) + " M=" + std::to_string(s.M) +
          " N=" + std::to_string(s.N) + " K=" + std::to_string(s.K);
      const std::vector<float> w =
          test::RandomVector(size_t(s.N * s.K), 21, uint64_t(s.K));
      const std::vector<float> x =
          test::RandomVector(size_t(s.M * s.K), 22, uint64_t(s.N));
      const std::vector<float> bias = test::RandomVector(size_t(s.N), 23, 0);
      const QMatrix q = QuantizeMatrix(t, w, s.N, s.K);
      const Bounds bd = ComputeBounds(x, s.M, q);
      std::vector<float> want(size_t(s.M * s.N));
      ops::ref::MatMulWT(x.data(), s.M, q.m(), want.data(), bias.data());
      const std::vector<float> got = RunQ(x.data(), s.M, q, bias.data());
      double se = 0, sw = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        const double err = std::fabs(double(got[i]) - want[i]);
        // + the float rounding of the dequantized weights (3u) and of want.
        ASSERT_LE(err, bd.act[i] + bd.fp[i] + 3 * FLT_EPSILON / 2 * bd.mag[i] +
                           FLT_EPSILON * std::fabs(want[i]))
            << what << " at (" << i / s.N << ", " << i % s.N << "): " << got[i]
            << " vs " << want[i];
        se += err * err, sw += double(want[i]) * want[i];
      }
      // 8-bit activations of normal data: about 0.5% relative RMS error
      // (a step is ~max/127, max ~3 sigma over a block).
      if (s.M * s.N >= 64) {
        EXPECT_LT(std::sqrt(se / sw), 0.01) << what;
      }
    }
}

TEST(Quant, EmptyAndZero) {
  std::vector<float> x(256, 1.0f), y(4, 7.0f), bias{1, 2, 3, 4};
  std::vector<uint8_t> q(DTypeBytes(DType::kQ4_K, 256) * 4, 0);
  ops::Matrix w{DType::kQ4_K, q.data(), 4, 256};
  ops::MatMulWT(x.data(), 0, w, y.data());  // M = 0: nothing written
  EXPECT_EQ(y[0], 7.0f);
  ops::MatMulWT(x.data(), 1, w, y.data(), bias.data());  // zero weights
  EXPECT_EQ(y, bias);
  std::vector<float> zeros(256, 0.0f);
  ops::MatMulWT(zeros.data(), 1, w, y.data());  // zero activations
  EXPECT_EQ(y, std::vector<float>(4, 0.0f));
}

}  // namespace
}  // namespace dllm
