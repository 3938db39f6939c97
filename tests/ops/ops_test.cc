// Every fast kernel against its scalar twin in ops/ref, on random shapes with
// odd sizes, on every SIMD target this CPU supports, and on 1 and 2 threads.
#include "ops/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "base/half.h"
#include "base/rng.h"
#include "base/thread_pool.h"
#include "ops/cpu/simd.h"
#include "ops/quant.h"
#include "ops/ref/ref.h"
#include "test_util.h"

namespace dllm {
namespace {

std::vector<float> Random(size_t n, uint64_t stream, float scale = 1.0f) {
  return test::RandomVector(n, 42, stream, scale);
}

void ExpectNear(const std::vector<float>& got, const std::vector<float>& want,
                float tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    float err = std::fabs(got[i] - want[i]);
    ASSERT_LE(err, tol * (1.0f + std::fabs(want[i])))
        << what << " at " << i << ": " << got[i] << " vs " << want[i];
  }
}

// Runs `body` once per compiled-and-supported SIMD target and thread count.
template <typename F>
void ForEachTargetAndThreads(F body) {
  std::vector<int64_t> targets = cpu::SimdTargets();
  ASSERT_FALSE(targets.empty());
  for (int64_t t : targets) {
    cpu::ForceSimdTarget(t);
    for (int threads : {1, 2}) {
      SetThreads(threads);
      SCOPED_TRACE(std::string(cpu::SimdTargetName(t)) +
                   " threads=" + std::to_string(threads));
      body();
    }
  }
  cpu::ForceSimdTarget(0);
  SetThreads(0);
}

TEST(Ops, MatMulAllDtypes) {
  ForEachTargetAndThreads([] {
    for (auto [M, N, K] : {std::tuple{1, 1, 1},
                           {1, 37, 19},
                           {3, 65, 33},
                           {17, 130, 67},
                           {64, 48, 256},
                           // Past one k pass (512) and one row block (192)
                           // of the packed kernel; the 4-row gemv edge.
                           {200, 13, 1100},
                           {4, 29, 515},
                           {5, 7, 40},
                           // OpenBLAS's side of the split (kBlasMinRows).
                           {300, 20, 40}}) {
      auto x = Random(size_t(M * K), 1), w = Random(size_t(N * K), 2),
           bias = Random(size_t(N), 3);
      std::vector<uint16_t> wb(w.size()), wh(w.size());
      for (size_t i = 0; i < w.size(); ++i)
        wb[i] = F32ToBf16(w[i]), wh[i] = F32ToF16(w[i]);
      for (auto [dt, data] :
           {std::pair<DType, const void*>{DType::kF32, w.data()},
            {DType::kBF16, wb.data()},
            {DType::kF16, wh.data()}}) {
        ops::Matrix m{dt, data, N, K};
        std::vector<float> got(size_t(M * N)), want(size_t(M * N));
        ops::MatMulWT(x.data(), M, m, got.data(), bias.data());
        ops::ref::MatMulWT(x.data(), M, m, want.data(), bias.data());
        ExpectNear(got, want, 1e-4f * std::sqrt(float(K)),
                   "matmul " + std::string(DTypeName(dt)));
      }
    }
  });
}

// A group (q, k, v sharing one packed x) is exactly its products one by one,
// whatever mix of dtypes, widths and biases it holds; a group with a
// quantized weight falls back to one call each.
TEST(Ops, MatMulGroupEqualsSeparateProducts) {
  ForEachTargetAndThreads([] {
    for (int64_t M : {1, 4, 5, 33, 160}) {
      const int64_t K = 96;
      auto x = Random(size_t(M * K), 11);
      auto w0 = Random(size_t(70 * K), 12), w1 = Random(size_t(9 * K), 13),
           w2 = Random(size_t(130 * K), 14), b0 = Random(70, 15);
      std::vector<uint16_t> w1h(w1.size()), w2b(w2.size());
      for (size_t i = 0; i < w1.size(); ++i) w1h[i] = F32ToF16(w1[i]);
      for (size_t i = 0; i < w2.size(); ++i) w2b[i] = F32ToBf16(w2[i]);
      const ops::Matrix m[3] = {{DType::kF32, w0.data(), 70, K},
                                {DType::kF16, w1h.data(), 9, K},
                                {DType::kBF16, w2b.data(), 130, K}};
      std::vector<float> got[3], want[3];
      ops::MatMulOut outs[3];
      for (int i = 0; i < 3; ++i) {
        got[i].assign(size_t(M * m[i].rows), -1.0f);
        want[i].assign(size_t(M * m[i].rows), -2.0f);
        const float* bias = i == 0 ? b0.data() : nullptr;
        outs[i] = {&m[i], got[i].data(), bias};
        ops::MatMulWT(x.data(), M, m[i], want[i].data(), bias);
      }
      ops::MatMulWTGroup(x.data(), M, outs, 3);
      for (int i = 0; i < 3; ++i)
        ASSERT_EQ(got[i], want[i]) << "M=" << M << " weight " << i;
      // With a Q8_0 weight in it, the group takes one call each.
      std::vector<uint8_t> q(DTypeBytes(DType::kQ8_0, K) * 9);
      for (int64_t r = 0; r < 9; ++r)
        ops::QuantizeRow(DType::kQ8_0, w1.data() + r * K, K,
                         q.data() + r * DTypeBytes(DType::kQ8_0, K));
      const ops::Matrix mq{DType::kQ8_0, q.data(), 9, K};
      std::vector<float> gq(size_t(M * 9)), wq(size_t(M * 9));
      ops::MatMulWT(x.data(), M, mq, wq.data(), nullptr);
      outs[1] = {&mq, gq.data(), nullptr};
      got[0].assign(got[0].size(), 0.0f);
      ops::MatMulWTGroup(x.data(), M, outs, 2);
      ASSERT_EQ(got[0], want[0]) << "M=" << M << " beside Q8_0";
      ASSERT_EQ(gq, wq) << "M=" << M << " Q8_0 in a group";
      // Two Q8_0 weights, one with a bias: one quantized x for both.
      const ops::Matrix mq2{DType::kQ8_0,
                            q.data() + DTypeBytes(DType::kQ8_0, K), 8, K};
      std::vector<float> gq2(size_t(M * 8)), wq2(size_t(M * 8));
      ops::MatMulWT(x.data(), M, mq2, wq2.data(), b0.data());
      const ops::MatMulOut qouts[2] = {{&mq, gq.data(), nullptr},
                                       {&mq2, gq2.data(), b0.data()}};
      gq.assign(gq.size(), 0.0f);
      ops::MatMulWTGroup(x.data(), M, qouts, 2);
      ASSERT_EQ(gq, wq) << "M=" << M << " Q8_0 group, first";
      ASSERT_EQ(gq2, wq2) << "M=" << M << " Q8_0 group, second";
    }
  });
}

TEST(Ops, Conversions) {
  ForEachTargetAndThreads([] {
    for (int n : {1, 7, 8, 9, 33, 1000}) {
      auto v = Random(size_t(n), 4, 100.0f);
      v[0] = 0.0f;
      const size_t un = static_cast<size_t>(n);
      std::vector<uint16_t> b(un), h(un);
      for (int i = 0; i < n; ++i)
        b[size_t(i)] = F32ToBf16(v[size_t(i)]),
        h[size_t(i)] = F32ToF16(v[size_t(i)]);
      std::vector<float> got(un), want(un);
      ops::ToF32(DType::kBF16, b.data(), n, got.data());
      ops::ref::ToF32(DType::kBF16, b.data(), n, want.data());
      ExpectNear(got, want, 0.0f, "bf16");
      ops::ToF32(DType::kF16, h.data(), n, got.data());
      ops::ref::ToF32(DType::kF16, h.data(), n, want.data());
      ExpectNear(got, want, 0.0f, "f16");
    }
  });
}

TEST(Ops, HalfRoundTrip) {
  // Known values: bf16 rounds to nearest even; f16 handles subnormals.
  EXPECT_EQ(F32ToBf16(1.0f), 0x3f80);
  EXPECT_EQ(Bf16ToF32(0x3f80), 1.0f);
  EXPECT_EQ(F32ToF16(1.0f), 0x3c00);
  EXPECT_EQ(F32ToF16(65504.0f), 0x7bff);
  EXPECT_EQ(F32ToF16(1e6f), 0x7c00);
  EXPECT_EQ(F16ToF32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(F16ToF32(0xc000), -2.0f);
  for (uint32_t h = 0; h < 0x7c00; ++h)
    EXPECT_EQ(F32ToF16(F16ToF32(uint16_t(h))), h) << h;
}

TEST(Ops, RmsNormRopeSwiGLUAdd) {
  ForEachTargetAndThreads([] {
    for (auto [M, C] :
         {std::pair{1, 1}, {3, 7}, {5, 64}, {9, 129}, {300, 96}}) {
      auto x = Random(size_t(M * C), 5), w = Random(size_t(C), 6);
      std::vector<float> got(x.size()), want(x.size());
      ops::RmsNorm(x.data(), w.data(), M, C, 1e-5f, got.data());
      ops::ref::RmsNorm(x.data(), w.data(), M, C, 1e-5f, want.data());
      ExpectNear(got, want, 1e-5f, "rmsnorm");

      auto g = Random(size_t(M * C), 7, 4.0f), u = Random(size_t(M * C), 8);
      ops::SwiGLU(g.data(), u.data(), M * C, got.data());
      ops::ref::SwiGLU(g.data(), u.data(), M * C, want.data());
      ExpectNear(got, want, 1e-5f, "swiglu");

      got = x, want = x;
      ops::AddInPlace(got.data(), g.data(), M * C);
      ops::ref::AddInPlace(want.data(), g.data(), M * C);
      ExpectNear(got, want, 0.0f, "add");
    }
    for (auto [T, H, D] :
         {std::tuple{1, 1, 2}, {5, 3, 6}, {7, 2, 18}, {33, 4, 64}}) {
      int64_t stride =
          H * D + 3;  // rows padded: the kernel must honour the stride
      auto x = Random(size_t(T * stride), 9),
           cs = Random(size_t(T * D / 2), 10),
           sn = Random(size_t(T * D / 2), 11);
      auto got = x, want = x;
      ops::Rope(got.data(), T, H, D, stride, cs.data(), sn.data());
      ops::ref::Rope(want.data(), T, H, D, stride, cs.data(), sn.data());
      ExpectNear(got, want, 1e-6f, "rope");
    }
  });
}

TEST(Ops, Softmax) {
  ForEachTargetAndThreads([] {
    for (int n : {1, 2, 7, 17, 1000}) {
      auto x = Random(size_t(n), 12, 5.0f);
      auto got = x, want = x;
      float lg = ops::SoftmaxInPlace(got.data(), n);
      float lw = ops::ref::SoftmaxInPlace(want.data(), n);
      ExpectNear(got, want, 1e-5f, "softmax");
      EXPECT_NEAR(lg, lw, 1e-4f);
    }
  });
}

TEST(Ops, RowStats) {
  ForEachTargetAndThreads([] {
    for (int n : {1, 2, 7, 17, 1000, 32001}) {
      auto x = Random(size_t(n), 16, 3.0f);
      if (n > 5) x[3] = -INFINITY;        // a banned token
      if (n > 20) x[11] = x[17] = 50.0f;  // a tie for the max: first index wins
      ops::RowStats got = ops::ComputeRowStats(x.data(), n);
      ops::RowStats want = ops::ref::ComputeRowStats(x.data(), n);
      EXPECT_EQ(got.argmax, want.argmax) << n;
      EXPECT_EQ(got.max, want.max);
      EXPECT_EQ(got.second, want.second);
      EXPECT_EQ(got.ties, want.ties);
      EXPECT_EQ(got.ties, n > 20 ? 2 : 1);
      EXPECT_NEAR(got.log_norm, want.log_norm,
                  1e-4f * (1 + std::fabs(want.log_norm)));
      EXPECT_NEAR(got.entropy, want.entropy, 1e-4f * (1 + want.entropy));
      if (n > 20) {
        EXPECT_EQ(got.argmax, 11);
        EXPECT_EQ(got.second, 50.0f);
        EXPECT_NEAR(got.entropy, std::log(2.0f),
                    1e-3f);  // two equal peaks dominate
      }
    }
  });
}

// The selections (max, second, ties, argmax) against the scalar twin where
// the copies of the max fall: one lane twice, different lanes, the tail past
// the last full vector, a row that is all banned but one or all banned.
TEST(Ops, RowStatsWhereTheMaxFalls) {
  ForEachTargetAndThreads([] {
    uint64_t draw = 0;
    auto next = [&] { return RandomBits(7, 0, draw++); };
    for (int trial = 0; trial < 200; ++trial) {
      const int n = 1 + int(next() % 300);
      auto x = Random(size_t(n), 100 + trial, 2.0f);
      const int copies = 1 + int(next() % 3);
      for (int c = 0; c < copies; ++c) x[next() % n] = 9.0f;
      if (trial % 10 == 0) {
        for (auto& v : x) v = -INFINITY;
        if (trial % 20 == 0) x[next() % n] = 1.0f;
      }
      const ops::RowStats got = ops::ComputeRowStats(x.data(), n);
      const ops::RowStats want = ops::ref::ComputeRowStats(x.data(), n);
      ASSERT_EQ(got.argmax, want.argmax) << "n=" << n << " trial " << trial;
      ASSERT_EQ(got.max, want.max) << trial;
      ASSERT_EQ(got.second, want.second) << trial;
      ASSERT_EQ(got.ties, want.ties) << trial;
    }
  });
}

TEST(Ops, Attention) {
  ForEachTargetAndThreads([] {
    struct Case {
      int64_t B, T, H, KVH, D;
      bool causal, masked;
      int64_t block = 0, Tk = 0, q_offset = 0;
    };
    for (Case c : {
             Case{1, 1, 1, 1, 2, false, false},
             Case{1, 7, 4, 4, 8, false, false},
             Case{2, 33, 4, 2, 16, false, true},
             Case{2, 70, 6, 3, 10, true, false},
             Case{3, 129, 2, 1, 32, true, true},
             // Block-causal, blocks not dividing T, blocks wider than QB.
             Case{2, 70, 4, 2, 8, false, true, 4},
             Case{1, 150, 2, 2, 8, false, false, 96},
             // A block of queries against cached keys: bidirectional (prefix
             // and dual cache), causal (AR decoding) and block-causal.
             Case{2, 8, 4, 2, 16, false, true, 0, 45, 30},
             Case{1, 1, 4, 4, 8, true, false, 0, 20, 19},
             Case{2, 5, 4, 1, 8, true, true, 0, 77, 72},
             Case{2, 8, 2, 2, 8, false, false, 8, 40, 24},
             Case{1, 70, 2, 1, 8, false, true, 16, 200, 130},
             // Few queries take dot products instead of BLAS: decoding
             // (head_dim 64), and widths past whole vectors (80, 21).
             Case{1, 1, 12, 12, 64, true, false, 0, 129, 128},
             Case{2, 3, 4, 2, 80, true, true, 0, 50, 47},
             Case{1, 4, 2, 2, 21, false, false, 0, 33, 29},
         }) {
      ops::AttentionShape s{c.B, c.T, c.H, c.KVH, c.D, c.causal};
      s.block = c.block, s.Tk = c.Tk, s.q_offset = c.q_offset;
      const int64_t Tk = s.keys();
      auto q = Random(size_t(c.B * c.T * c.H * c.D), 13),
           k = Random(size_t(c.B * Tk * c.KVH * c.D), 14),
           v = Random(size_t(c.B * Tk * c.KVH * c.D), 15);
      std::vector<uint8_t> mask(size_t(c.B * Tk), 1);
      if (c.masked) {
        for (int64_t i = 0; i < c.B * Tk; ++i) mask[size_t(i)] = (i % 5) != 3;
        mask[0] = 0;  // with causal attention, query 0 then sees no key at all
      }
      std::vector<float> got(q.size()), want(q.size());
      ops::Attention(q.data(), k.data(), v.data(), s,
                     c.masked ? mask.data() : nullptr, got.data());
      ops::ref::Attention(q.data(), k.data(), v.data(), s,
                          c.masked ? mask.data() : nullptr, want.data());
      ExpectNear(got, want, 2e-5f,
                 "attention T=" + std::to_string(c.T) + " block=" +
                     std::to_string(c.block) + " Tk=" + std::to_string(c.Tk));
    }
  });
}

// BD3-LM's [x_t ; x_0] mask: the rule spelled out on a small case (halves of
// 5, blocks of 2, the last block short), and AttentionShape's key window
// covering every visible key.
TEST(Ops, AttentionBdMaskRule) {
  ops::AttentionShape s{1, 10, 1, 1, 2, false};
  s.block = 2, s.bd_half = 5;
  auto seen = [&](int64_t p) {
    std::string out;
    for (int64_t j = 0; j < 10; ++j) out += s.Visible(p, j) ? '1' : '.';
    return out;
  };
  // Keys: noisy 0..4, clean 5..9.
  EXPECT_EQ(seen(0), "11........");  // noisy block 0: its own noisy block
  EXPECT_EQ(seen(2), "..11.11...");  // noisy block 1: + clean block 0
  EXPECT_EQ(seen(4), "....11111.");  // noisy block 2: + clean blocks 0, 1
  EXPECT_EQ(seen(5), ".....11...");  // clean block 0: block-causal
  EXPECT_EQ(seen(8), ".....1111.");
  EXPECT_EQ(seen(9), ".....11111");
  for (int64_t H : {1, 5, 7, 64, 100})
    for (int64_t block : {1, 2, 3, 8, 65, 200}) {
      s.T = 2 * H, s.bd_half = H, s.block = block;
      for (int64_t p = 0; p < 2 * H; ++p) {
        if (p > 0) {
          EXPECT_GE(s.VisibleBegin(p), s.VisibleBegin(p - 1));
        }
        for (int64_t j = 0; j < 2 * H; ++j)
          if (s.Visible(p, j)) {
            EXPECT_GE(j, s.VisibleBegin(p)) << H << " " << block << " " << p;
            EXPECT_LT(j, s.VisibleEnd(p)) << H << " " << block << " " << p;
          }
        EXPECT_TRUE(s.Visible(p, p));  // a query sees itself
      }
    }
}

// The fast kernel against the scalar twin on the bd_half mask: odd halves,
// blocks that do not divide them, blocks of one, wider than the 64-query
// tiles and wider than the half, GQA, a key mask.
TEST(Ops, AttentionBdMask) {
  ForEachTargetAndThreads([] {
    struct Case {
      int64_t B, H, heads, kv_heads, D, block;
      bool masked;
    };
    for (Case c : {
             Case{1, 1, 1, 1, 2, 1, false},
             Case{1, 7, 2, 2, 8, 3, false},
             Case{2, 33, 4, 2, 16, 4, true},
             Case{1, 50, 2, 1, 8, 1, true},
             Case{2, 100, 2, 2, 8, 80, false},
             Case{1, 45, 4, 4, 8, 64, true},
             Case{1, 9, 2, 1, 4, 16, false},
         }) {
      ops::AttentionShape s{c.B, 2 * c.H, c.heads, c.kv_heads, c.D, false};
      s.block = c.block, s.bd_half = c.H;
      const int64_t T = 2 * c.H;
      auto q = Random(size_t(c.B * T * c.heads * c.D), 23),
           k = Random(size_t(c.B * T * c.kv_heads * c.D), 24),
           v = Random(size_t(c.B * T * c.kv_heads * c.D), 25);
      std::vector<uint8_t> mask(size_t(c.B * T), 1);
      if (c.masked)
        for (int64_t i = 0; i < c.B * T; ++i) mask[size_t(i)] = (i % 7) != 2;
      std::vector<float> got(q.size()), want(q.size());
      ops::Attention(q.data(), k.data(), v.data(), s,
                     c.masked ? mask.data() : nullptr, got.data());
      ops::ref::Attention(q.data(), k.data(), v.data(), s,
                          c.masked ? mask.data() : nullptr, want.data());
      ExpectNear(got, want, 2e-5f,
                 "bd attention H=" + std::to_string(c.H) +
                     " block=" + std::to_string(c.block));
    }
  });
}

// The clean half of the bd_half mask is plain block-causal attention over
// the clean tokens: what a block-diffusion model computes at inference.
TEST(Ops, AttentionBdCleanHalfIsBlockCausal) {
  const int64_t H = 37, heads = 2, D = 8, block = 5, T = 2 * H;
  ops::AttentionShape s{1, T, heads, heads, D, false};
  s.block = block, s.bd_half = H;
  auto q = Random(size_t(T * heads * D), 41),
       k = Random(size_t(T * heads * D), 42),
       v = Random(size_t(T * heads * D), 43);
  std::vector<float> both(q.size()), clean(size_t(H * heads * D));
  ops::Attention(q.data(), k.data(), v.data(), s, nullptr, both.data());
  ops::AttentionShape bc{1, H, heads, heads, D, false};
  bc.block = block;
  const size_t off = size_t(H * heads * D);
  ops::Attention(q.data() + off, k.data() + off, v.data() + off, bc, nullptr,
                 clean.data());
  ExpectNear(std::vector<float>(both.begin() + off, both.end()), clean, 1e-6f,
             "clean half");
}

// A query block against cached keys gives what the whole sequence gives at
// those rows: the identity a KV cache rests on.
TEST(Ops, AttentionOverCachedKeysEqualsFullRows) {
  for (int64_t block : {int64_t(0), int64_t(1), int64_t(8)}) {
    const int64_t T = 40, H = 2, D = 8, q0 = 24, n = 8;
    ops::AttentionShape full{1, T, H, H, D, false};
    full.block = block;
    auto q = Random(size_t(T * H * D), 31), k = Random(size_t(T * H * D), 32),
         v = Random(size_t(T * H * D), 33);
    std::vector<float> all(q.size()), part(size_t(n * H * D));
    ops::Attention(q.data(), k.data(), v.data(), full, nullptr, all.data());
    ops::AttentionShape s = full;
    s.T = n, s.Tk = block == 0 ? T : q0 + n, s.q_offset = q0;
    ops::Attention(q.data() + q0 * H * D, k.data(), v.data(), s, nullptr,
                   part.data());
    std::vector<float> want(all.begin() + q0 * H * D,
                            all.begin() + (q0 + n) * H * D);
    ExpectNear(part, want, 1e-6f, "cached block=" + std::to_string(block));
  }
}

}  // namespace
}  // namespace dllm
