// The stepper with sequences joining and leaving mid-run: every finished
// sequence must come out exactly as a solo Generate() of its prompt and
// options, whatever shared its steps; a cancelled one stops being stepped.
#include "dllm/generator.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "dllm/model.h"
#include "test_util.h"

namespace dllm {
namespace {

const std::string kGolden = std::string(DLLM_SOURCE_DIR) + "/tests/golden/";

struct Request {
  std::vector<int32_t> prompt;
  GenerateOptions opt;
};

// What Generate() gives for this request alone; with `steps` >= 0, what it
// has after that many steps (cancelled by the callback).
bool StopAfter(const StepInfo& info, void* user) {
  return info.step + 1 < *static_cast<int*>(user);
}
GenerateResult Solo(Model& m, const Request& r, int steps = -1) {
  if (steps < 0) return Generate(m, {r.prompt}, r.opt)[0];
  return Generate(m, {r.prompt}, r.opt, StopAfter, &steps)[0];
}

void ExpectSame(const GenerateResult& got, const GenerateResult& want,
                const char* name) {
  EXPECT_EQ(got.canvas, want.canvas) << name;
  EXPECT_EQ(got.tokens, want.tokens) << name;
  EXPECT_EQ(got.hit_eos, want.hit_eos) << name;
  EXPECT_EQ(got.steps, want.steps) << name;
}

// Steps once and checks what every live sequence reports: committed
// positions were masked before the step and hold a token now.
bool CheckedStep(Generator& g) {
  std::vector<std::pair<int, Canvas>> before;
  for (int id : g.live()) before.push_back({id, g.canvas(id)});
  const bool ran = g.Step();
  for (const auto& [id, c] : before) {
    const Canvas& now = g.canvas(id);
    for (int32_t p : g.committed(id)) {
      EXPECT_TRUE(c.masked[size_t(p)]) << "id " << id << " pos " << p;
      EXPECT_FALSE(now.masked[size_t(p)]) << "id " << id << " pos " << p;
    }
    EXPECT_TRUE(std::is_sorted(g.committed(id).begin(), g.committed(id).end()));
  }
  return ran;
}

// The scenario of the brief: A and B start, two steps, C joins with other
// options, B is cancelled, one step, D joins, run to the end.
void JoinLeaveScenario(Model& m, const Request& a, const Request& b,
                       const Request& c, const Request& d) {
  Generator g(m);
  const int ia = g.Add(a.prompt, a.opt), ib = g.Add(b.prompt, b.opt);
  EXPECT_EQ(g.live(), (std::vector<int>{ia, ib}));
  ASSERT_TRUE(CheckedStep(g));
  ASSERT_TRUE(CheckedStep(g));
  const int ic = g.Add(c.prompt, c.opt);
  ASSERT_FALSE(g.Done(ib)) << "B must still be running to test cancelling";
  g.Cancel(ib);
  EXPECT_TRUE(g.Done(ib));
  const Canvas b_at_cancel = g.canvas(ib);
  const int forwards = g.stats().forward_passes;
  ASSERT_TRUE(CheckedStep(g));
  EXPECT_EQ(g.stats().forward_passes, forwards + 1);  // one forward for all
  const int id = g.Add(d.prompt, d.opt);
  int steps = 0;
  while (CheckedStep(g)) {
    ASSERT_LT(++steps, 1000) << "the stepper never finished";
    // A cancelled sequence is never stepped again.
    EXPECT_TRUE(g.committed(ib).empty());
    for (int live : g.live()) EXPECT_NE(live, ib);
  }
  EXPECT_TRUE(g.live().empty());
  EXPECT_FALSE(g.Step()) << "nothing live: no step";
  const Canvas& b_end = g.canvas(ib);
  EXPECT_EQ(b_end.ids, b_at_cancel.ids);
  EXPECT_EQ(b_end.steps_done, b_at_cancel.steps_done);

  ExpectSame(g.Take(ia), Solo(m, a), "A");
  ExpectSame(g.Take(ic), Solo(m, c), "C");
  ExpectSame(g.Take(id), Solo(m, d), "D");
  // B ran its first two steps before it was cancelled.
  ExpectSame(g.Result(ib), Solo(m, b, 2), "B");
  EXPECT_EQ(g.ids(), (std::vector<int>{ib}));
  g.Remove(ib);
  EXPECT_TRUE(g.ids().empty());
  EXPECT_DLLM_ERROR(g.canvas(ia), "no sequence with id 0");
}

TEST(Generator, DiffusionJoinAndLeaveMatchSoloRuns) {
  auto m = Model::Load(kGolden + "llada_untied_f32");
  Request a, b, c, d;
  a.prompt = {1, 2, 3, 4, 5};
  a.opt.gen_length = 16, a.opt.steps = 8, a.opt.block_length = 8;
  a.opt.temperature = 0.8, a.opt.seed = 3, a.opt.stop_at_eos = false;
  b.prompt = {7, 8};
  b.opt = a.opt;
  b.opt.seed = 4;
  // C: Dream's margin order with alg_temp, the entropy-bound schedule and
  // classifier-free guidance, so the batch mixes twins and plain rows.
  c.prompt = {9, 10, 11, 12, 13, 14, 15, 16, 17};
  c.opt.gen_length = 12, c.opt.steps = 12, c.opt.block_length = 4;
  c.opt.order = Order::kTopkMargin;
  c.opt.schedule = Schedule::kEntropyBound;
  c.opt.gamma = 0.5;
  c.opt.alg_temp = 0.5;
  c.opt.cfg_scale = 1.0;
  c.opt.temperature = 0.6, c.opt.top_p = 0.9, c.opt.seed = 9;
  // D: Dream's origin sampler and an infilling suffix, joining late.
  d.prompt = {20, 21, 22};
  d.opt.gen_length = 10, d.opt.steps = 10;
  d.opt.order = Order::kOrigin;
  d.opt.temperature = 1.0, d.opt.seed = 12;
  d.opt.suffix = {30, 31};
  JoinLeaveScenario(*m, a, b, c, d);

  // Greedy, early stop at EOS and the threshold schedule on a Dream model.
  auto dream = Model::Load(kGolden + "dream_gqa_f32");
  for (Request* r : {&a, &b, &c, &d}) r->opt.stop_at_eos = true;
  a.opt.order = b.opt.order = Order::kEntropy;
  a.opt.temperature = 0;
  c.opt.schedule = Schedule::kThreshold, c.opt.threshold = 0.3;
  JoinLeaveScenario(*dream, a, b, c, d);
}

TEST(Generator, CausalJoinAndLeaveMatchSoloRuns) {
  test::TempDir dir;
  ModelConfig c;
  c.arch = Arch::kLLaDA;
  c.n_layers = 2, c.d_model = 32, c.n_heads = 4, c.n_kv_heads = 4;
  c.head_dim = 8, c.d_ff = 48, c.vocab_size = 40, c.max_seq_len = 64;
  c.rope_theta = 10000;
  c.mask_token_id = -1, c.eos_token_id = 38, c.causal = true;
  InitRandomModel(c, dir.path(), "F32", 5, 0.3f);
  auto m = Model::Load(dir.path());
  Request a, b, cc, d;
  a.prompt = {1, 2, 3};
  a.opt.gen_length = 9, a.opt.stop_at_eos = false;
  b.prompt = {4, 5};
  b.opt.gen_length = 7, b.opt.temperature = 1.0, b.opt.seed = 2;
  cc.prompt = {6, 7, 8, 9, 10};
  cc.opt.gen_length = 5, cc.opt.temperature = 0.7, cc.opt.top_k = 5;
  cc.opt.seed = 3;
  d.prompt = {11};
  d.opt.gen_length = 6, d.opt.temperature = 1.2, d.opt.top_p = 0.8;
  d.opt.seed = 4, d.opt.stop_at_eos = false;
  JoinLeaveScenario(*m, a, b, cc, d);
}

TEST(Generator, BadRequestsAddNothing) {
  auto m = Model::Load(kGolden + "llada_untied_f32");
  Generator g(*m);
  GenerateOptions o;
  o.gen_length = 16, o.steps = 8, o.block_length = 6;
  EXPECT_DLLM_ERROR(g.Add({1}, o),
                    "gen length 16 is not a multiple of the block length 6");
  o.block_length = 8;
  EXPECT_DLLM_ERROR(g.Add({1, 99}, o), "prompt token 99 at position 1");
  EXPECT_TRUE(g.ids().empty());
  EXPECT_FALSE(g.Step());
  EXPECT_EQ(g.stats().forward_passes, 0);
  const int id = g.Add({1}, o);
  EXPECT_EQ(id, 0);
  EXPECT_EQ(g.total_steps(id), 8);
  EXPECT_DLLM_ERROR(g.Cancel(7), "no sequence with id 7");
}

}  // namespace
}  // namespace dllm
