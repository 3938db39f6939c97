// Answer likelihoods: the Monte-Carlo NELBO estimate is unbiased for the
// value that enumerating every mask gives, its spread falls as 1/draws, and
// causal models get the exact chain-rule sum.
#include "dllm/likelihood.h"

#include <gtest/gtest.h>

#include <cmath>

#include "dllm/model.h"
#include "test_util.h"

namespace dllm {
namespace {

std::unique_ptr<Model> Tiny(const test::TempDir& dir, Arch arch, bool causal,
                            int block = 0) {
  ModelConfig c = test::TinyConfig(arch, causal);
  c.block_size = block;
  InitRandomModel(c, dir.path(), "F32", 5, 0.3f);
  return Model::Load(dir.path());
}

const std::vector<int32_t> kPrompt = {3, 14, 15}, kAnswer = {9, 26, 5, 35};

TEST(Likelihood, TheEstimateIsUnbiasedForTheEnumeratedNelbo) {
  struct Case {
    const char* name;
    Arch arch;
    int block;
  };
  for (const Case& k :
       {Case{"llada", Arch::kLLaDA, 0},
        Case{"dream (shifted logits)", Arch::kDream, 0},
        Case{"block diffusion, blocks of 4", Arch::kLLaDA, 4}}) {
    test::TempDir dir;
    auto m = Tiny(dir, k.arch, false, k.block);
    const double exact = ExactAnswerNelbo(*m, kPrompt, kAnswer);
    LikelihoodOptions o;
    o.draws = 4000;
    o.seed = 3;
    const Likelihood est = AnswerLikelihood(*m, kPrompt, kAnswer, o);
    EXPECT_FALSE(est.exact);
    EXPECT_GT(est.std_error, 0);
    EXPECT_NEAR(est.nll, exact, 4 * est.std_error)
        << k.name << ": exact " << exact << ", estimate " << est.nll << " +- "
        << est.std_error;
    // A bound on -log p of 4 tokens of a 50-token vocabulary, near uniform.
    EXPECT_GT(exact, 4 * std::log(50.0) * 0.8) << k.name;
    EXPECT_LT(exact, 4 * std::log(50.0) * 1.5) << k.name;
  }
}

TEST(Likelihood, ItsSpreadFallsWithMoreDraws) {
  test::TempDir dir;
  auto m = Tiny(dir, Arch::kLLaDA, false);
  auto spread = [&](int draws, double* reported) {
    double sum = 0, sq = 0, se = 0;
    const int seeds = 40;
    for (int s = 0; s < seeds; ++s) {
      LikelihoodOptions o;
      o.draws = draws, o.seed = uint64_t(100 + s);
      const Likelihood l = AnswerLikelihood(*m, kPrompt, kAnswer, o);
      sum += l.nll, sq += l.nll * l.nll, se += l.std_error;
    }
    *reported = se / seeds;
    const double mean = sum / seeds;
    return std::sqrt((sq / seeds - mean * mean) * seeds / (seeds - 1));
  };
  double se4 = 0, se64 = 0;
  const double sd4 = spread(4, &se4), sd64 = spread(64, &se64);
  // 16x the draws: a quarter of the standard deviation (with slack for 40
  // seeds), and the reported standard error says the same.
  EXPECT_LT(sd64, sd4 / 2.5) << sd4 << " -> " << sd64;
  EXPECT_GT(sd64, sd4 / 7) << sd4 << " -> " << sd64;
  EXPECT_NEAR(se64, sd64, 0.5 * sd64);
}

TEST(Likelihood, CausalModelsGetTheExactChainRule) {
  test::TempDir dir;
  auto m = Tiny(dir, Arch::kLLaDA, true);
  const Likelihood l = AnswerLikelihood(*m, kPrompt, kAnswer);
  EXPECT_TRUE(l.exact);
  EXPECT_EQ(l.forward_passes, 1);
  // Token by token, each from a forward over its prefix alone.
  std::vector<int32_t> seq = kPrompt;
  double want = 0;
  const int64_t V = m->config().vocab_size;
  for (int32_t tok : kAnswer) {
    std::vector<float> logits(static_cast<size_t>(V));
    const int32_t row = int32_t(seq.size() - 1);
    ForwardBatch fb;
    fb.B = 1, fb.T = int64_t(seq.size()), fb.ids = seq.data();
    fb.rows = &row, fb.n_rows = 1;
    m->Forward(fb, logits.data());
    double z = 0;
    for (float x : logits) z += std::exp(double(x));
    want += std::log(z) - double(logits[size_t(tok)]);
    seq.push_back(tok);
  }
  EXPECT_NEAR(l.nll, want, 1e-4 * want);
  EXPECT_NEAR(ExactAnswerNelbo(*m, kPrompt, kAnswer), want, 1e-4 * want);
}

TEST(Likelihood, BadInputIsAClearError) {
  test::TempDir dir;
  auto m = Tiny(dir, Arch::kLLaDA, false);
  EXPECT_DLLM_ERROR(AnswerLikelihood(*m, kPrompt, {}), "answer is empty");
  EXPECT_DLLM_ERROR(AnswerLikelihood(*m, kPrompt, std::vector<int32_t>(200, 3)),
                    "more than the model's context");
  EXPECT_DLLM_ERROR(AnswerLikelihood(*m, kPrompt, {99}),
                    "token id 99 at answer position 0 is outside");
  EXPECT_DLLM_ERROR(ExactAnswerNelbo(*m, kPrompt, std::vector<int32_t>(20, 3)),
                    "too many");
  test::TempDir dir2;
  auto ar = Tiny(dir2, Arch::kLLaDA, true);
  EXPECT_DLLM_ERROR(AnswerLikelihood(*ar, {}, kAnswer), "needs at least one");
}

}  // namespace
}  // namespace dllm
