// Schedules and per-position choices on hand-built numbers with
// hand-computed expectations.
#include "generate/schedule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "generate/choose.h"

namespace dllm::gen {
namespace {

TEST(Schedule, EvenSplitLikeLLaDA) {
  EXPECT_EQ(EvenSplit(10, 4), (std::vector<int>{3, 3, 2, 2}));
  EXPECT_EQ(EvenSplit(12, 5), (std::vector<int>{3, 3, 2, 2, 2}));
  EXPECT_EQ(EvenSplit(8, 8), (std::vector<int>(8, 1)));
  EXPECT_EQ(EvenSplit(2, 4), (std::vector<int>{1, 1, 0, 0}));
}

TEST(Schedule, DreamTimestepsMatchTorchLinspace) {
  // torch.linspace(1, 1e-3, 13) in float32, printed by /usr/bin/python3.
  const std::vector<float> want12 = {1.0f,
                                     0.9167500138282776f,
                                     0.8335000276565552f,
                                     0.750249981880188f,
                                     0.6669999957084656f,
                                     0.5837500095367432f,
                                     0.5005000233650208f,
                                     0.41725000739097595f,
                                     0.33399999141693115f,
                                     0.25075000524520874f,
                                     0.16750000417232513f,
                                     0.08425000309944153f,
                                     0.0010000000474974513f};
  // Within one float ulp of torch (its exact rounding depends on its SIMD
  // path); the transfer counts below are what must agree exactly.
  auto t12 = DreamTimesteps(12, 1e-3f);
  ASSERT_EQ(t12.size(), want12.size());
  for (size_t i = 0; i < t12.size(); ++i)
    EXPECT_NEAR(t12[i], want12[i], 6e-8f) << i;
  auto t5 = DreamTimesteps(5, 1e-3f);
  EXPECT_EQ(t5[1], 0.8001999855041504f);
  EXPECT_EQ(t5[4], 0.20080000162124634f);
  // int(12 * (1 - s/t)) per step with 12 still masked (torch:
  // [0,1,1,1,1,1,1,2,2,3,5]).
  const std::vector<int> counts = {0, 1, 1, 1, 1, 1, 1, 2, 2, 3, 5};
  for (int i = 0; i < 11; ++i)
    EXPECT_EQ(DreamTransferCount(12, i, 12, want12), counts[size_t(i)]) << i;
  EXPECT_EQ(DreamTransferCount(7, 11, 12, want12),
            7);  // the last step takes all
}

TEST(Schedule, AdaptiveRules) {
  // Threshold: all >= tau, at least one.
  EXPECT_EQ(ThresholdCount({0.99f, 0.95f, 0.9f, 0.5f}, 0.9), 3);
  EXPECT_EQ(ThresholdCount({0.6f, 0.5f}, 0.9), 1);
  EXPECT_EQ(ThresholdCount({}, 0.9), 0);
  // Factor 1: the j-th (1-based) needs (j + 1)(1 - c_j) < 1, i.e. c_2 > 2/3,
  // c_3 > 3/4, c_4 > 4/5.
  EXPECT_EQ(FactorCount({0.1f, 0.7f, 0.8f, 0.79f}, 1.0), 3);
  EXPECT_EQ(FactorCount({0.1f, 0.6f, 0.99f}, 1.0), 1);
  EXPECT_EQ(FactorCount({0.9f, 0.9f, 0.9f, 0.9f}, 1.0), 4);
  // Entropy bound: prefix sums minus the max: 0.01 | 0.01 + 0.02 - 0.02 = 0.01
  // | 0.01 + 0.02 + 0.5 - 0.5 = 0.03.
  EXPECT_EQ(EntropyBoundCount({0.01f, 0.02f, 0.5f, 0.1f}, 0.05), 3);
  EXPECT_EQ(EntropyBoundCount({0.01f, 0.02f, 0.5f, 0.1f}, 0.02), 2);
  EXPECT_EQ(EntropyBoundCount({3.0f}, 0.0), 1);
}

GenerateOptions Opt(Order o) {
  GenerateOptions g;
  g.order = o;
  return g;
}

TEST(Choose, OrdersScoreAsPublished) {
  // logits: softmax of {ln 6, ln 3, ln 1} = {0.6, 0.3, 0.1}.
  const std::vector<float> base = {std::log(6.0f), std::log(3.0f), 0.0f};
  std::vector<float> scratch;
  const std::vector<int32_t> eos = {2};
  auto choose = [&](const GenerateOptions& o) {
    std::vector<float> row = base;
    return ChooseToken(row.data(), 3, o, eos, 0, 0, scratch);
  };
  Choice lc = choose(Opt(Order::kLowConfidence));
  EXPECT_EQ(lc.token, 0);
  EXPECT_NEAR(lc.confidence, 0.6f, 1e-6);
  Choice mp = choose(Opt(Order::kMaskgitPlus));
  EXPECT_EQ(mp.token, 0);
  EXPECT_NEAR(mp.confidence, 0.6f, 1e-6);
  Choice margin = choose(Opt(Order::kTopkMargin));
  EXPECT_NEAR(margin.confidence, 0.3f, 1e-6);
  Choice ent = choose(Opt(Order::kEntropy));
  const double h =
      -(0.6 * std::log(0.6) + 0.3 * std::log(0.3) + 0.1 * std::log(0.1));
  EXPECT_NEAR(ent.confidence, -h, 1e-5);
  EXPECT_NEAR(ent.entropy, h, 1e-5);
  Choice rnd = choose(Opt(Order::kRandom));
  EXPECT_EQ(rnd.token, 0);
  EXPECT_GT(rnd.confidence, 0.0f);
  EXPECT_LT(rnd.confidence, 1.0f);

  // Dream's top-k 1 leaves one token: probability 1, margin 1.
  GenerateOptions k1 = Opt(Order::kTopkMargin);
  k1.top_k = 1;
  EXPECT_NEAR(choose(k1).confidence, 1.0f, 1e-6);
  // top-p 0.5: {0.6} alone crosses 0.5, so token 0 keeps all the mass.
  GenerateOptions p5 = Opt(Order::kMaskgitPlus);
  p5.top_p = 0.5;
  EXPECT_NEAR(choose(p5).confidence, 1.0f, 1e-6);
  // top-p 0.8: {0.6, 0.3} stay, renormalised to {2/3, 1/3}.
  p5.top_p = 0.8;
  EXPECT_NEAR(choose(p5).confidence, 2.0f / 3.0f, 1e-6);
  // Temperature 2 flattens: softmax(log p / 2) = sqrt(p) normalised.
  GenerateOptions t2 = Opt(Order::kMaskgitPlus);
  t2.temperature = 2.0;
  t2.top_k = 1;  // deterministic token, tempered confidence
  EXPECT_EQ(choose(t2).token, 0);

  // EOS controls: ban it, or rank it last.
  const std::vector<float> eos_top = {0.0f, 0.0f, 5.0f};
  GenerateOptions ban = Opt(Order::kLowConfidence);
  ban.ban_eos = true;
  std::vector<float> row = eos_top;
  EXPECT_NE(ChooseToken(row.data(), 3, ban, eos, 0, 0, scratch).token, 2);
  GenerateOptions last = Opt(Order::kLowConfidence);
  last.eos_last = true;
  row = eos_top;
  Choice c = ChooseToken(row.data(), 3, last, eos, 0, 0, scratch);
  EXPECT_EQ(c.token, 2);
  EXPECT_LT(c.confidence, -1000.0f);
}

TEST(Choose, GumbelSamplingIsSeededAndTempered) {
  // Two equal logits: at temperature 1 the choice follows the seed, and over
  // many positions both tokens appear about equally often.
  std::vector<float> scratch;
  GenerateOptions o = Opt(Order::kLowConfidence);
  o.temperature = 1.0;
  int ones = 0;
  for (int pos = 0; pos < 2000; ++pos) {
    std::vector<float> row = {0.0f, 0.0f};
    Choice c = ChooseToken(row.data(), 2, o, {}, 3, pos, scratch);
    std::vector<float> again = {0.0f, 0.0f};
    EXPECT_EQ(ChooseToken(again.data(), 2, o, {}, 3, pos, scratch).token,
              c.token);
    ones += c.token;
    EXPECT_NEAR(c.confidence, 0.5f,
                1e-6);  // unfiltered softmax, not the noisy one
  }
  EXPECT_GT(ones, 900);
  EXPECT_LT(ones, 1100);
}

}  // namespace
}  // namespace dllm::gen

TEST(Choose, TopKKeepsTheKLargestWithTies) {
  // The one-pass top-k (k <= 64) and nth_element (k > 64) must agree with a
  // full sort, ties at the k-th value kept, on rows with many ties.
  const int V = 1000;
  std::vector<float> row(V);
  for (int v = 0; v < V; ++v) row[size_t(v)] = float((v * 7919) % 97) * 0.1f;
  std::vector<float> sorted = row;
  std::sort(sorted.begin(), sorted.end(), std::greater<float>());
  std::vector<float> scratch;
  for (int k : {1, 2, 3, 17, 64, 65, 200, 999}) {
    const float kth = sorted[size_t(k - 1)];
    double z = 0;
    for (float x : row)
      if (x >= kth) z += std::exp(double(x) - double(sorted[0]));
    dllm::GenerateOptions o;
    o.order = dllm::Order::kMaskgitPlus, o.top_k = k;
    std::vector<float> r = row;
    dllm::gen::Choice c =
        dllm::gen::ChooseToken(r.data(), V, o, {}, 0, 0, scratch);
    EXPECT_EQ(row[size_t(c.token)], sorted[0]) << "k=" << k;
    // Confidence = p(argmax) under the filtered softmax: 1 / z.
    EXPECT_NEAR(c.confidence, 1.0 / z, 1e-6) << "k=" << k;
    if (k == 1) continue;  // decided from the row's statistics, row untouched
    int kept = 0;
    for (float x : r) kept += x != -INFINITY;
    EXPECT_EQ(kept, int(std::count_if(row.begin(), row.end(),
                                      [&](float x) { return x >= kth; })))
        << "k=" << k;
  }
}

namespace dllm::gen {
namespace {

// The deterministic samplers decide from one row's statistics
// (StatsDecide): that choice must be the one the literal filtering gives,
// bit for bit, or a GPU returning only statistics would decode differently.
// Top-k 1 is the case that skips work: Dream's filter then softmax.
TEST(Choose, StatisticsGiveTheFilteringPathsChoice) {
  const int V = 300;
  std::vector<float> scratch;
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<float> row(V);
    for (int v = 0; v < V; ++v)
      row[size_t(v)] = float(((v + 13) * (trial + 7) * 7919) % 1009) * 0.01f;
    if (trial % 3 == 0) row[5] = row[250] = 20.0f;  // a tie at the max
    if (trial % 4 == 0) row[7] = -INFINITY;         // a banned token
    for (Order order : {Order::kLowConfidence, Order::kMaskgitPlus,
                        Order::kTopkMargin, Order::kEntropy}) {
      for (int top_k : {0, 1}) {
        GenerateOptions o;
        o.order = order, o.top_k = top_k, o.temperature = 0;
        ASSERT_TRUE(StatsDecide(o));
        std::vector<float> r = row;
        const Choice got = ChooseToken(r.data(), V, o, {}, 0, 0, scratch);
        // The literal path: filter to the top 1, then the softmax stats.
        std::vector<float> f = row;
        const bool dream = order != Order::kLowConfidence;
        const ops::RowStats raw = ops::ComputeRowStats(f.data(), V);
        if (dream && top_k == 1)
          for (float& x : f)
            if (x < raw.max) x = -INFINITY;
        const ops::RowStats st =
            dream ? ops::ComputeRowStats(f.data(), V) : raw;
        const std::string what = "trial " + std::to_string(trial) + " order " +
                                 std::to_string(int(order)) + " top_k " +
                                 std::to_string(top_k);
        EXPECT_EQ(got.token, st.argmax) << what;
        EXPECT_EQ(got.entropy, st.entropy) << what;
        float want = float(std::exp(double(st.max) - st.log_norm));
        if (order == Order::kTopkMargin)
          want = float(std::exp(double(st.max) - st.log_norm) -
                       std::exp(double(st.second) - st.log_norm));
        if (order == Order::kEntropy) want = -st.entropy;
        EXPECT_EQ(got.confidence, want) << what;
      }
    }
  }
  GenerateOptions sampled;
  sampled.temperature = 0.5;
  EXPECT_FALSE(StatsDecide(sampled));
  sampled.temperature = 0, sampled.order = Order::kMaskgitPlus;
  sampled.top_p = 0.9;
  EXPECT_FALSE(StatsDecide(sampled));
}

}  // namespace
}  // namespace dllm::gen
