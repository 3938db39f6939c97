// The generate() loop on tiny models: batch and thread invariance, seeded
// reproducibility, infilling, early stop at EOS, cancellation, bad options.
#include "dllm/generate.h"

#include <gtest/gtest.h>

#include "base/thread_pool.h"
#include "dllm/model.h"
#include "test_util.h"

namespace dllm {
namespace {

const std::string kGolden = std::string(DLLM_SOURCE_DIR) + "/tests/golden/";

std::vector<GenerateResult> Gen(
    Model& m, const std::vector<std::vector<int32_t>>& prompts,
    const GenerateOptions& o) {
  return Generate(m, prompts, o);
}

GenerateOptions Base(Order order, int gen = 16, int steps = 8, int block = 8) {
  GenerateOptions o;
  o.order = order;
  o.gen_length = gen, o.steps = steps, o.block_length = block;
  o.stop_at_eos = false;
  return o;
}

// A model whose every logit is 0 (all weights zero) with [MASK] at id 0: the
// argmax is [MASK] everywhere, every step. A fixed schedule keeps such a
// position masked for a later step, but at a block's last step it must take
// the best real token (id 1), never leave [MASK] in the answer; unless the
// reference behaviour is asked for.
TEST(Generate, TheLastStepOfABlockNeverLeavesMask) {
  test::TempDir dir;
  ModelConfig c = test::TinyConfig(Arch::kLLaDA);
  c.mask_token_id = 0;
  InitRandomModel(c, dir.path(), "F32", 1, 0.0f);
  auto m = Model::Load(dir.path());
  for (int steps : {4, 8, 16}) {
    GenerateOptions o = Base(Order::kLowConfidence, 8, steps, 4);
    auto r = Gen(*m, {{5, 6, 7}}, o);
    ASSERT_EQ(r[0].tokens.size(), 8u)
        << steps << " steps: " << testing::PrintToString(r[0].canvas);
    for (int32_t t : r[0].tokens) EXPECT_EQ(t, 1) << steps << " steps";
    o.reference_mask_choices = true;
    r = Gen(*m, {{5, 6, 7}}, o);
    EXPECT_TRUE(r[0].tokens.empty()) << testing::PrintToString(r[0].canvas);
  }
}

TEST(Generate, BatchAndThreadInvariance) {
  for (const char* name : {"llada_untied_f32", "dream_gqa_f32"}) {
    auto m = Model::Load(kGolden + name);
    const bool dream = m->config().arch == Arch::kDream;
    for (Order order :
         dream ? std::vector<Order>{Order::kMaskgitPlus, Order::kTopkMargin,
                                    Order::kEntropy}
               : std::vector<Order>{Order::kLowConfidence, Order::kRandom}) {
      for (double temp : {0.0, 0.8}) {
        GenerateOptions o = Base(order);
        o.temperature = temp;
        o.seed = 11;
        std::vector<int32_t> a = {1, 2, 3, 4, 5}, b = {7, 8},
                             c = {9, 10, 11, 12, 13, 14, 15, 16};
        SetThreads(1);
        auto alone = Gen(*m, {a}, o);
        SetThreads(2);
        auto batch = Gen(*m, {c, a, b}, o);
        EXPECT_EQ(alone[0].canvas, batch[1].canvas)
            << name << " " << OrderName(order) << " T=" << temp;
        auto alone_b = Gen(*m, {b}, o);
        EXPECT_EQ(alone_b[0].canvas, batch[2].canvas)
            << name << " " << OrderName(order);
        // Every generated position is decided, none is still [MASK].
        for (int32_t t : batch[0].tokens)
          EXPECT_NE(t, m->config().mask_token_id);
        EXPECT_EQ(batch[0].canvas.size(), c.size() + 16);
      }
    }
  }
  SetThreads(0);
}

TEST(Generate, SeedReproducesSampledRuns) {
  auto m = Model::Load(kGolden + "llada_untied_f32");
  GenerateOptions o = Base(Order::kLowConfidence, 16, 16, 16);
  o.temperature = 1.5;
  o.seed = 5;
  auto r1 = Gen(*m, {{1, 2, 3}}, o);
  auto r2 = Gen(*m, {{1, 2, 3}}, o);
  EXPECT_EQ(r1[0].canvas, r2[0].canvas);
  int differ = 0;
  for (uint64_t seed = 6; seed < 10; ++seed) {
    o.seed = seed;
    differ += Gen(*m, {{1, 2, 3}}, o)[0].canvas != r1[0].canvas;
  }
  EXPECT_GT(differ, 0) << "the seed must matter at temperature 1.5";
}

TEST(Generate, InfillingKeepsPrefixAndSuffix) {
  auto m = Model::Load(kGolden + "dream_gqa_f32");
  GenerateOptions o = Base(Order::kEntropy, 6, 6, 0);
  o.suffix = {20, 21, 22};
  auto r = Gen(*m, {{1, 2, 3}}, o);
  const auto& c = r[0].canvas;
  ASSERT_EQ(c.size(), 12u);
  EXPECT_EQ(std::vector<int32_t>(c.begin(), c.begin() + 3),
            (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(std::vector<int32_t>(c.end() - 3, c.end()),
            (std::vector<int32_t>{20, 21, 22}));
  for (int i = 3; i < 9; ++i)
    EXPECT_NE(c[size_t(i)], m->config().mask_token_id);
  EXPECT_EQ(r[0].tokens.size() + (r[0].hit_eos ? 1u : 0u) <= 6u, true);
}

bool CountSteps(const StepInfo& info, void* user) {
  auto* n = static_cast<int*>(user);
  ++*n;
  EXPECT_EQ(info.canvases->size(), 1u);
  return *n < 3;  // cancel after three steps
}

TEST(Generate, CallbackSeesStepsAndCanCancel) {
  auto m = Model::Load(kGolden + "llada_untied_f32");
  GenerateOptions o = Base(Order::kLowConfidence, 16, 16, 16);
  int n = 0;
  GenerateStats st;
  auto r = Generate(*m, {{1, 2, 3}}, o, CountSteps, &n, &st);
  EXPECT_EQ(n, 3);
  EXPECT_EQ(st.forward_passes, 3);
  // Three tokens committed, not necessarily a prefix: tokens stop at the first
  // mask.
  int masks = 0;
  for (size_t i = 3; i < r[0].canvas.size(); ++i)
    masks += r[0].canvas[i] == m->config().mask_token_id;
  EXPECT_EQ(masks, 13);
}

TEST(Generate, StopsAtEosAndTrims) {
  // Make EOS the model's favourite by declaring its most likely token EOS.
  auto m = Model::Load(kGolden + "llada_untied_f32");
  GenerateOptions o = Base(Order::kLowConfidence, 16, 16, 16);
  auto free_run = Gen(*m, {{1, 2, 3}}, o);
  const int32_t fake_eos =
      free_run[0].canvas[3 + 5];  // whatever landed at offset 5
  o.eos_ids = {fake_eos};
  o.stop_at_eos = true;
  GenerateStats st;
  auto r = Generate(*m, {{1, 2, 3}}, o, nullptr, nullptr, &st);
  EXPECT_TRUE(r[0].hit_eos);
  for (int32_t t : r[0].tokens) EXPECT_NE(t, fake_eos);
  EXPECT_LE(st.forward_passes, 16);
  // Banning it: it never appears.
  o.ban_eos = true;
  o.stop_at_eos = false;
  auto banned = Gen(*m, {{1, 2, 3}}, o);
  for (size_t i = 3; i < banned[0].canvas.size(); ++i)
    EXPECT_NE(banned[0].canvas[i], fake_eos);
}

TEST(Generate, AdaptiveSchedulesCommitSeveralPerStep) {
  auto m = Model::Load(kGolden + "llada_untied_f32");
  for (Schedule s :
       {Schedule::kThreshold, Schedule::kFactor, Schedule::kEntropyBound}) {
    GenerateOptions o = Base(Order::kLowConfidence, 16, 16, 8);
    o.schedule = s;
    o.threshold = 0.0;  // everything passes: one step per block
    o.factor = 100.0;
    o.gamma = 1e9;
    GenerateStats st;
    auto r = Generate(*m, {{1, 2, 3}}, o, nullptr, nullptr, &st);
    EXPECT_EQ(st.forward_passes, 2) << ScheduleName(s);
    for (size_t i = 3; i < r[0].canvas.size(); ++i)
      EXPECT_NE(r[0].canvas[i], m->config().mask_token_id);
    o.threshold = 1.0, o.factor = 1e-9,
    o.gamma = 0.0;  // nothing passes: one per step
    Generate(*m, {{1, 2, 3}}, o, nullptr, nullptr, &st);
    EXPECT_EQ(st.forward_passes, 16) << ScheduleName(s);
  }
}

TEST(Generate, RejectsBadOptions) {
  auto m = Model::Load(kGolden + "llada_untied_f32");
  GenerateOptions o = Base(Order::kLowConfidence, 16, 8, 6);
  EXPECT_DLLM_ERROR(Gen(*m, {{1}}, o),
                    "gen length 16 is not a multiple of the block length 6");
  o = Base(Order::kLowConfidence, 16, 6, 4);
  EXPECT_DLLM_ERROR(Gen(*m, {{1}}, o),
                    "must be a multiple of the number of blocks (4");
  o = Base(Order::kLowConfidence, 16, 16, 16);
  EXPECT_DLLM_ERROR(Gen(*m, {std::vector<int32_t>(4090, 1)}, o),
                    "exceeds the model's context of 4096");
  EXPECT_DLLM_ERROR(Gen(*m, {{1, 99}}, o), "prompt token 99 at position 1");
  o.top_p = 0;
  EXPECT_DLLM_ERROR(Gen(*m, {{1}}, o), "top-p must be in (0, 1]");
  o.top_p = 1;
  o.temperature = 1e-39;
  EXPECT_DLLM_ERROR(Gen(*m, {{1}}, o),
                    "temperature must be 0 (greedy) or at least 1e-6");
  o.temperature = 0;
  o.cfg_scale = INFINITY;
  EXPECT_DLLM_ERROR(Gen(*m, {{1}}, o), "must be finite");
  o = Base(Order::kOrigin, 16, 16, 16);
  o.schedule = Schedule::kThreshold;
  EXPECT_DLLM_ERROR(Gen(*m, {{1}}, o),
                    "does not combine with the threshold schedule");
  EXPECT_DLLM_ERROR(ParseOrder("greedy"), "unknown sampler 'greedy'");
  EXPECT_DLLM_ERROR(ParseSchedule("fast"), "unknown schedule 'fast'");
}

}  // namespace
}  // namespace dllm

namespace dllm {
namespace {

// Causal models decode left to right: greedy output equals the argmax of a
// full forward at each prefix, one token per forward pass, batched or not.
TEST(Generate, AutoregressiveGreedyIsArgmaxOfPrefix) {
  test::TempDir dir;
  ModelConfig c;
  c.arch = Arch::kLLaDA;
  c.n_layers = 2, c.d_model = 32, c.n_heads = 4, c.n_kv_heads = 4,
  c.head_dim = 8;
  c.d_ff = 48, c.vocab_size = 40, c.max_seq_len = 64, c.rope_theta = 10000;
  c.mask_token_id = -1, c.eos_token_id = 38,
  c.causal = true;  // AR: no mask needed
  InitRandomModel(c, dir.path(), "F32", 5, 0.3f);
  auto m = Model::Load(dir.path());
  GenerateOptions o;
  o.gen_length = 6;
  o.stop_at_eos = false;
  GenerateStats st;
  auto r = Generate(*m, {{1, 2, 3}, {4, 5}}, o, nullptr, nullptr, &st);
  EXPECT_EQ(st.forward_passes, 6);
  for (size_t s = 0; s < 2; ++s) {
    std::vector<int32_t> seq =
        s == 0 ? std::vector<int32_t>{1, 2, 3} : std::vector<int32_t>{4, 5};
    for (int k = 0; k < 6; ++k) {
      std::vector<float> logits(seq.size() * 40);
      ForwardBatch b;
      b.T = int64_t(seq.size()), b.ids = seq.data();
      m->Forward(b, logits.data());
      const float* last = logits.data() + (seq.size() - 1) * 40;
      seq.push_back(int32_t(std::max_element(last, last + 40) - last));
    }
    EXPECT_EQ(r[s].canvas, seq) << s;
  }
}

}  // namespace
}  // namespace dllm
