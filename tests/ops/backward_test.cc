// Backward kernels: the fast ones against their scalar twins (which must
// accumulate with +=), and the twins against finite differences of the
// forward kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "base/rng.h"
#include "base/thread_pool.h"
#include "ops/ops.h"
#include "ops/ref/ref.h"
#include "test_util.h"

namespace dllm {
namespace {

std::vector<float> Rand(size_t n, uint64_t stream, float scale = 1.0f) {
  return test::RandomVector(n, 7, stream, scale);
}

void Near(const std::vector<float>& a, const std::vector<float>& b, float tol,
          const char* what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_NEAR(a[i], b[i], tol * (1 + std::fabs(b[i]))) << what << " at " << i;
}

// d/dx of sum(f(x) * G) by central differences at a few coordinates.
void CheckFD(std::vector<float>& x, const std::vector<float>& analytic,
             const std::function<double()>& loss, const char* what) {
  for (size_t i = 0; i < x.size(); i += std::max<size_t>(1, x.size() / 13)) {
    const float keep = x[i], h = 1e-2f * std::max(1.0f, std::fabs(keep));
    x[i] = keep + h;
    double up = loss();
    x[i] = keep - h;
    double down = loss();
    x[i] = keep;
    double fd = (up - down) / (2.0 * h);
    EXPECT_NEAR(analytic[i], fd, 2e-2 * (1 + std::fabs(fd)))
        << what << " coordinate " << i;
  }
}

double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += double(a[i]) * b[i];
  return s;
}

class Backward : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { SetThreads(GetParam()); }
  void TearDown() override { SetThreads(0); }
};

TEST_P(Backward, MatMul) {
  const int64_t M = 13, N = 37, K = 19;
  auto x = Rand(M * K, 1), w = Rand(N * K, 2), dy = Rand(M * N, 3);
  ops::Matrix m{DType::kF32, w.data(), N, K};
  auto dx = Rand(M * K, 4), dw = Rand(N * K, 5),
       db = Rand(N, 6);  // += onto these
  auto rdx = dx, rdw = dw, rdb = db;
  ops::MatMulBackward(x.data(), M, m, dy.data(), dx.data(), dw.data(),
                      db.data());
  ops::ref::MatMulBackward(x.data(), M, m, dy.data(), rdx.data(), rdw.data(),
                           rdb.data());
  Near(dx, rdx, 1e-5f, "dx");
  Near(dw, rdw, 1e-5f, "dw");
  Near(db, rdb, 1e-5f, "db");
  // Finite differences of sum(y * dy) against fresh gradients.
  std::vector<float> gx(x.size()), gw(w.size()), y(M * N);
  ops::ref::MatMulBackward(x.data(), M, m, dy.data(), gx.data(), gw.data(),
                           nullptr);
  auto loss = [&] {
    ops::ref::MatMulWT(x.data(), M, m, y.data());
    return Dot(y, dy);
  };
  CheckFD(x, gx, loss, "matmul dx");
  CheckFD(w, gw, loss, "matmul dw");
}

TEST_P(Backward, RmsNorm) {
  const int64_t M = 11, C = 67;
  auto x = Rand(M * C, 7), w = Rand(C, 8), dy = Rand(M * C, 9);
  auto dx = Rand(M * C, 10), dw = Rand(C, 11);
  auto rdx = dx, rdw = dw;
  ops::RmsNormBackward(x.data(), w.data(), M, C, 1e-5f, dy.data(), dx.data(),
                       dw.data());
  ops::ref::RmsNormBackward(x.data(), w.data(), M, C, 1e-5f, dy.data(),
                            rdx.data(), rdw.data());
  Near(dx, rdx, 1e-4f, "dx");
  Near(dw, rdw, 1e-4f, "dw");
  std::vector<float> gx(x.size()), gw(w.size()), y(x.size());
  ops::ref::RmsNormBackward(x.data(), w.data(), M, C, 1e-5f, dy.data(),
                            gx.data(), gw.data());
  auto loss = [&] {
    ops::ref::RmsNorm(x.data(), w.data(), M, C, 1e-5f, y.data());
    return Dot(y, dy);
  };
  CheckFD(x, gx, loss, "rmsnorm dx");
  CheckFD(w, gw, loss, "rmsnorm dw");
}

TEST_P(Backward, Attention) {
  // Bidirectional, causal, and block-causal (blocks of 16, and of 2 on the
  // small finite-difference shape).
  for (int mode : {0, 1, 2}) {
    const bool causal = mode == 1;
    ops::AttentionShape s{2, 70, 4, 2, 8, causal};
    s.block = mode == 2 ? 16 : 0;
    const size_t nq = size_t(s.B * s.T * s.n_heads * s.head_dim),
                 nk = size_t(s.B * s.T * s.n_kv_heads * s.head_dim);
    auto q = Rand(nq, 12), k = Rand(nk, 13), v = Rand(nk, 14),
         dout = Rand(nq, 15);
    std::vector<uint8_t> mask(size_t(s.B * s.T), 1);
    for (size_t i = 0; i < mask.size(); i += 7) mask[i] = 0;
    auto dq = Rand(nq, 16), dk = Rand(nk, 17), dv = Rand(nk, 18);
    auto rdq = dq, rdk = dk, rdv = dv;
    ops::AttentionBackward(q.data(), k.data(), v.data(), s, mask.data(),
                           dout.data(), dq.data(), dk.data(), dv.data());
    ops::ref::AttentionBackward(q.data(), k.data(), v.data(), s, mask.data(),
                                dout.data(), rdq.data(), rdk.data(),
                                rdv.data());
    Near(dq, rdq, 1e-4f, "dq");
    Near(dk, rdk, 1e-4f, "dk");
    Near(dv, rdv, 1e-4f, "dv");
    // Finite differences on a small shape.
    ops::AttentionShape t{1, 5, 2, 1, 4, causal};
    t.block = mode == 2 ? 2 : 0;
    auto q2 = Rand(40, 19), k2 = Rand(20, 20), v2 = Rand(20, 21),
         g2 = Rand(40, 22);
    std::vector<float> gq(40), gk(20), gv(20), o(40);
    ops::ref::AttentionBackward(q2.data(), k2.data(), v2.data(), t, nullptr,
                                g2.data(), gq.data(), gk.data(), gv.data());
    auto loss = [&] {
      ops::ref::Attention(q2.data(), k2.data(), v2.data(), t, nullptr,
                          o.data());
      return Dot(o, g2);
    };
    CheckFD(q2, gq, loss, "attention dq");
    CheckFD(k2, gk, loss, "attention dk");
    CheckFD(v2, gv, loss, "attention dv");
  }
}

// The bd_half mask ([x_t ; x_0] of BD3-LM): odd halves, blocks that do not
// divide them and blocks wider than the 64-query tiles, against the twin;
// the twin against finite differences.
TEST_P(Backward, AttentionBd) {
  for (int64_t block : {int64_t(1), int64_t(3), int64_t(16), int64_t(70)}) {
    const int64_t Hh = 45;
    ops::AttentionShape s{2, 2 * Hh, 4, 2, 8, false};
    s.block = block, s.bd_half = Hh;
    const size_t nq = size_t(s.B * s.T * s.n_heads * s.head_dim),
                 nk = size_t(s.B * s.T * s.n_kv_heads * s.head_dim);
    auto q = Rand(nq, 32), k = Rand(nk, 33), v = Rand(nk, 34),
         dout = Rand(nq, 35);
    std::vector<uint8_t> mask(size_t(s.B * s.T), 1);
    for (size_t i = 0; i < mask.size(); i += 11) mask[i] = 0;
    auto dq = Rand(nq, 36), dk = Rand(nk, 37), dv = Rand(nk, 38);
    auto rdq = dq, rdk = dk, rdv = dv;
    ops::AttentionBackward(q.data(), k.data(), v.data(), s, mask.data(),
                           dout.data(), dq.data(), dk.data(), dv.data());
    ops::ref::AttentionBackward(q.data(), k.data(), v.data(), s, mask.data(),
                                dout.data(), rdq.data(), rdk.data(),
                                rdv.data());
    Near(dq, rdq, 1e-4f, "bd dq");
    Near(dk, rdk, 1e-4f, "bd dk");
    Near(dv, rdv, 1e-4f, "bd dv");
  }
  // Finite differences: halves of 5, blocks of 2 (the last one short).
  ops::AttentionShape t{1, 10, 2, 1, 4, false};
  t.block = 2, t.bd_half = 5;
  auto q2 = Rand(80, 39), k2 = Rand(40, 40), v2 = Rand(40, 41),
       g2 = Rand(80, 42);
  std::vector<float> gq(80), gk(40), gv(40), o(80);
  ops::ref::AttentionBackward(q2.data(), k2.data(), v2.data(), t, nullptr,
                              g2.data(), gq.data(), gk.data(), gv.data());
  auto loss = [&] {
    ops::ref::Attention(q2.data(), k2.data(), v2.data(), t, nullptr, o.data());
    return Dot(o, g2);
  };
  CheckFD(q2, gq, loss, "bd attention dq");
  CheckFD(k2, gk, loss, "bd attention dk");
  CheckFD(v2, gv, loss, "bd attention dv");
}

TEST_P(Backward, SwiGLU) {
  const int64_t n = 40000;
  auto g = Rand(n, 23, 3.0f), u = Rand(n, 24), d = Rand(n, 25);
  auto dg = Rand(n, 26), du = Rand(n, 27);
  auto rdg = dg, rdu = du;
  ops::SwiGLUBackward(g.data(), u.data(), d.data(), n, dg.data(), du.data());
  ops::ref::SwiGLUBackward(g.data(), u.data(), d.data(), n, rdg.data(),
                           rdu.data());
  Near(dg, rdg, 1e-5f, "dgate");
  Near(du, rdu, 1e-5f, "dup");
  std::vector<float> g2(g.begin(), g.begin() + 50),
      u2(u.begin(), u.begin() + 50), d2(d.begin(), d.begin() + 50);
  std::vector<float> gg(50), gu(50), y(50);
  ops::ref::SwiGLUBackward(g2.data(), u2.data(), d2.data(), 50, gg.data(),
                           gu.data());
  auto loss = [&] {
    ops::ref::SwiGLU(g2.data(), u2.data(), 50, y.data());
    return Dot(y, d2);
  };
  CheckFD(g2, gg, loss, "swiglu dgate");
  CheckFD(u2, gu, loss, "swiglu dup");
}

TEST_P(Backward, CrossEntropy) {
  const int64_t R = 9, V = 1001;
  auto x = Rand(R * V, 28, 2.0f);
  std::vector<int32_t> t = {0, 5, 1000, 17, 17, 3, 999, 500, 1};
  std::vector<float> w = {1, 0.5f, 2, 1, 1, 0, 3, 1, 0.25f};
  auto fast = x, ref = x;
  double lf =
      ops::CrossEntropyForwardBackward(fast.data(), R, V, t.data(), w.data());
  double lr = ops::ref::CrossEntropyForwardBackward(ref.data(), R, V, t.data(),
                                                    w.data());
  EXPECT_NEAR(lf, lr, 1e-4 * std::fabs(lr));
  Near(fast, ref, 1e-5f, "dlogits");
  // Against finite differences of the loss itself (first row).
  std::vector<float> row(x.begin(), x.begin() + V),
      grad(ref.begin(), ref.begin() + V);
  auto loss = [&] {
    auto tmp = row;
    return ops::ref::CrossEntropyForwardBackward(tmp.data(), 1, V, t.data(),
                                                 w.data());
  };
  CheckFD(row, grad, loss, "cross-entropy");
}

INSTANTIATE_TEST_SUITE_P(Threads, Backward, ::testing::Values(1, 2));

}  // namespace
}  // namespace dllm
