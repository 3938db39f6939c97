// Generation with KV caches. AR decoding with the cache equals decoding that
// recomputes the prefix, token for token; Fast-dLLM's prefix and dual caches
// refreshed every step equal uncached diffusion, and where every step is a
// refresh anyway (one step per block) so does the lazy default. Cached and
// uncached sequences share a Generator without changing each other.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "base/thread_pool.h"
#include "dllm/generate.h"
#include "dllm/generator.h"
#include "dllm/model.h"
#include "test_util.h"

namespace dllm {
namespace {

using test::TinyConfig;

std::unique_ptr<Model> RandomModel(const test::TempDir& dir, Arch arch,
                                   bool causal, uint64_t seed) {
  InitRandomModel(TinyConfig(arch, causal), dir.path(), "F32", seed, 0.3f);
  return Model::Load(dir.path());
}

const std::vector<std::vector<int32_t>> kPrompts = {
    {1, 2, 3, 4, 5}, {7, 8}, {9, 10, 11, 12, 13, 14, 15}};

TEST(CachedAR, EqualsRecomputingThePrefix) {
  for (Arch arch : {Arch::kLLaDA, Arch::kDream}) {
    test::TempDir dir;
    auto m = RandomModel(dir, arch, true, 4);
    for (double temp : {0.0, 0.8})
      for (int top_k : {0, 5}) {
        GenerateOptions o;
        o.gen_length = 20, o.temperature = temp, o.top_k = top_k, o.seed = 3;
        o.stop_at_eos = false;
        o.cache = Cache::kNone;
        GenerateStats plain_st, cached_st;
        auto plain = Generate(*m, kPrompts, o, nullptr, nullptr, &plain_st);
        for (Cache cache : {Cache::kAuto, Cache::kPrefix}) {
          o.cache = cache;
          auto cached = Generate(*m, kPrompts, o, nullptr, nullptr, &cached_st);
          ASSERT_EQ(plain.size(), cached.size());
          for (size_t b = 0; b < plain.size(); ++b)
            EXPECT_EQ(plain[b].canvas, cached[b].canvas)
                << ArchName(arch) << " T=" << temp << " top_k=" << top_k
                << " prompt " << b;
          EXPECT_EQ(plain_st.forward_passes, cached_st.forward_passes);
        }
      }
  }
}

TEST(CachedAR, ShippedTwinDecodesTheSame) {
  const std::string dir =
      std::string(DLLM_SOURCE_DIR) + "/models/shakespeare-ar";
  if (!std::ifstream(dir + "/config.json")) GTEST_SKIP() << "no " << dir;
  auto m = Model::Load(dir);
  ASSERT_TRUE(m->config().causal);
  const std::vector<std::vector<int32_t>> prompts = {{40, 41, 42, 43}, {100}};
  for (double temp : {0.0, 0.7}) {
    GenerateOptions o;
    o.gen_length = 48, o.temperature = temp, o.seed = 1, o.stop_at_eos = false;
    o.cache = Cache::kNone;
    auto plain = Generate(*m, prompts, o);
    o.cache = Cache::kAuto;
    auto cached = Generate(*m, prompts, o);
    for (size_t b = 0; b < prompts.size(); ++b)
      EXPECT_EQ(plain[b].canvas, cached[b].canvas) << "T=" << temp;
  }
}

struct DiffCase {
  const char* name;
  Arch arch;
  GenerateOptions opt;
};

std::vector<DiffCase> DiffusionCases() {
  auto base = [](Order order, int gen, int steps, int block) {
    GenerateOptions o;
    o.order = order;
    o.gen_length = gen, o.steps = steps, o.block_length = block;
    o.stop_at_eos = false;
    return o;
  };
  std::vector<DiffCase> cases;
  cases.push_back({"llada-low-confidence", Arch::kLLaDA,
                   base(Order::kLowConfidence, 16, 8, 4)});
  GenerateOptions sampled = base(Order::kLowConfidence, 16, 16, 8);
  sampled.temperature = 0.9, sampled.seed = 5;
  cases.push_back({"llada-sampled", Arch::kLLaDA, sampled});
  GenerateOptions rnd = base(Order::kRandom, 12, 6, 4);
  rnd.seed = 2;
  cases.push_back({"llada-random", Arch::kLLaDA, rnd});
  GenerateOptions cfg = base(Order::kLowConfidence, 16, 8, 8);
  cfg.cfg_scale = 1.5;
  cases.push_back({"llada-cfg", Arch::kLLaDA, cfg});
  GenerateOptions thr = base(Order::kLowConfidence, 16, 16, 8);
  thr.schedule = Schedule::kThreshold, thr.threshold = 0.05;
  cases.push_back({"llada-threshold", Arch::kLLaDA, thr});
  GenerateOptions inf = base(Order::kLowConfidence, 8, 8, 4);
  inf.suffix = {20, 21, 22};
  cases.push_back({"llada-infill", Arch::kLLaDA, inf});
  cases.push_back(
      {"dream-entropy", Arch::kDream, base(Order::kEntropy, 12, 6, 4)});
  GenerateOptions mg = base(Order::kMaskgitPlus, 16, 8, 8);
  mg.temperature = 0.7, mg.top_k = 6, mg.top_p = 0.9, mg.seed = 9;
  cases.push_back({"dream-maskgit-sampled", Arch::kDream, mg});
  GenerateOptions margin = base(Order::kTopkMargin, 12, 12, 12);
  margin.alg_temp = 0.5, margin.seed = 4;
  cases.push_back({"dream-margin-alg-temp", Arch::kDream, margin});
  GenerateOptions eb = base(Order::kEntropy, 16, 16, 8);
  eb.schedule = Schedule::kEntropyBound, eb.gamma = 0.5;
  cases.push_back({"dream-eb", Arch::kDream, eb});
  GenerateOptions dcfg = base(Order::kEntropy, 8, 4, 4);
  dcfg.cfg_scale = 0.7;
  cases.push_back({"dream-cfg", Arch::kDream, dcfg});
  return cases;
}

// Refreshed every step, a cache runs every position every step: the result
// is the uncached one, for every sampler, schedule, CFG and infilling.
TEST(CachedDiffusion, RefreshEveryStepEqualsUncached) {
  for (const DiffCase& k : DiffusionCases()) {
    SCOPED_TRACE(k.name);
    test::TempDir dir;
    auto m = RandomModel(dir, k.arch, false, 7);
    GenerateOptions o = k.opt;
    o.cache = Cache::kNone;
    GenerateStats plain_st, st;
    auto plain = Generate(*m, kPrompts, o, nullptr, nullptr, &plain_st);
    for (Cache cache : {Cache::kPrefix, Cache::kDual}) {
      o.cache = cache, o.refresh_every = 1;
      auto cached = Generate(*m, kPrompts, o, nullptr, nullptr, &st);
      for (size_t b = 0; b < plain.size(); ++b)
        EXPECT_EQ(plain[b].canvas, cached[b].canvas)
            << CacheName(cache) << " prompt " << b;
      EXPECT_EQ(plain_st.forward_passes, st.forward_passes);
    }
  }
}

// With one step per block, every step is a block's first, so even the lazy
// caches refresh at every step.
TEST(CachedDiffusion, OneStepPerBlockIsExact) {
  for (Arch arch : {Arch::kLLaDA, Arch::kDream}) {
    test::TempDir dir;
    auto m = RandomModel(dir, arch, false, 8);
    GenerateOptions o;
    o.order = arch == Arch::kLLaDA ? Order::kLowConfidence : Order::kEntropy;
    o.gen_length = 12, o.steps = 6, o.block_length = 2;
    o.stop_at_eos = false;
    auto plain = Generate(*m, kPrompts, o);
    for (Cache cache : {Cache::kPrefix, Cache::kDual}) {
      o.cache = cache;
      auto cached = Generate(*m, kPrompts, o);
      for (size_t b = 0; b < plain.size(); ++b)
        EXPECT_EQ(plain[b].canvas, cached[b].canvas) << CacheName(cache);
    }
  }
}

// The lazy caches do take keys from earlier steps: on a random model with
// large weights their output differs from the exact one somewhere, more
// often for the dual cache (more is stale) than for refreshes every 2 steps.
TEST(CachedDiffusion, LazyRefreshApproximates) {
  test::TempDir dir;
  auto m = RandomModel(dir, Arch::kLLaDA, false, 9);
  GenerateOptions o;
  o.gen_length = 32, o.steps = 32, o.block_length = 16;
  o.stop_at_eos = false;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 8; ++i) prompts.push_back({1 + i, 2 + 2 * i, 3 + 3 * i});
  auto plain = Generate(*m, prompts, o);
  auto differing = [&](Cache cache, int refresh) {
    o.cache = cache, o.refresh_every = refresh;
    auto r = Generate(*m, prompts, o);
    int n = 0;
    for (size_t b = 0; b < prompts.size(); ++b)
      for (size_t i = 0; i < r[b].canvas.size(); ++i)
        n += r[b].canvas[i] != plain[b].canvas[i];
    return n;
  };
  const int dual = differing(Cache::kDual, 0);
  const int prefix = differing(Cache::kPrefix, 0);
  EXPECT_GT(dual, 0);
  EXPECT_GT(prefix, 0);
  EXPECT_EQ(differing(Cache::kDual, 1), 0);
}

// A cached sequence's tokens do not depend on which others share its steps
// or when it joined; uncached ones in the same Generator neither.
TEST(CachedDiffusion, JoinAndLeaveKeepResults) {
  test::TempDir dir;
  auto m = RandomModel(dir, Arch::kDream, false, 10);
  GenerateOptions a;
  a.order = Order::kEntropy;
  a.gen_length = 16, a.steps = 8, a.block_length = 8, a.stop_at_eos = false;
  a.cache = Cache::kDual;
  GenerateOptions b = a;
  b.cache = Cache::kNone;
  GenerateOptions c = a;
  c.cache = Cache::kPrefix, c.cfg_scale = 0.5, c.refresh_every = 2;
  auto alone_a = Generate(*m, {kPrompts[0]}, a)[0];
  auto alone_b = Generate(*m, {kPrompts[1]}, b)[0];
  auto alone_c = Generate(*m, {kPrompts[2]}, c)[0];
  for (int threads : {1, 2}) {
    SetThreads(threads);
    Generator g(*m);
    const int ia = g.Add(kPrompts[0], a);
    g.Step();
    g.Step();
    const int ib = g.Add(kPrompts[1], b);
    g.Step();
    const int ic = g.Add(kPrompts[2], c);
    while (g.Step()) {
    }
    EXPECT_EQ(g.Take(ia).canvas, alone_a.canvas);
    EXPECT_EQ(g.Take(ib).canvas, alone_b.canvas);
    EXPECT_EQ(g.Take(ic).canvas, alone_c.canvas);
  }
  SetThreads(0);
}

// What a lazy step computes, step by step: the block's first step is a
// refresh (the canvas's every position), the next runs only the block (dual)
// or the block and everything after it (prefix; Dream: from the row before
// the block, which scores its first position) against the refreshed keys.
// The Generator's second step must commit the argmax tokens of exactly those
// logits, at the positions they score best.
TEST(CachedDiffusion, LazyStepRunsTheRowsOfItsCache) {
  for (Arch arch : {Arch::kLLaDA, Arch::kDream})
    for (Cache cache : {Cache::kPrefix, Cache::kDual}) {
      SCOPED_TRACE(std::string(ArchName(arch)) + " " + CacheName(cache));
      test::TempDir dir;
      auto m = RandomModel(dir, arch, false, 12);
      const ModelConfig& cfg = m->config();
      const int V = cfg.vocab_size;
      GenerateOptions o;
      o.order = arch == Arch::kLLaDA ? Order::kLowConfidence : Order::kEntropy;
      o.schedule = Schedule::kEvenBlocks;
      o.gen_length = 12, o.steps = 6, o.block_length = 4;  // 2 per step
      o.stop_at_eos = false, o.cache = cache;
      const std::vector<int32_t> prompt = {3, 1, 4, 1, 5};
      Generator g(*m);
      const int id = g.Add(prompt, o);
      const std::vector<int32_t> canvas0 = g.canvas(id).ids;
      ASSERT_TRUE(g.Step());
      const std::vector<int32_t> canvas1 = g.canvas(id).ids;
      const std::vector<uint8_t> masked1 = g.canvas(id).masked;
      ASSERT_TRUE(g.Step());
      const std::vector<int32_t>& got = g.committed(id);
      ASSERT_EQ(got.size(), 2u);

      const int L = int(canvas0.size()), bb = 5, be = 9;
      KVCache kv(cfg, L);
      std::vector<float> all(size_t(L) * size_t(V));
      CachedRun refresh{&kv, canvas0.data(), 0, L};
      m->ForwardCached(&refresh, 1, nullptr, -1, all.data());
      const int p0 = cfg.shift_logits ? bb - 1 : bb;
      const int p1 = cache == Cache::kDual ? be : L;
      std::vector<float> part(size_t(p1 - p0) * size_t(V));
      CachedRun step{&kv, canvas1.data() + p0, p0, p1 - p0, L};
      m->ForwardCached(&step, 1, nullptr, -1, part.data());
      // Score and argmax of each masked block position from those rows.
      std::vector<std::pair<float, int>> scored;
      std::vector<int32_t> token(size_t(L), -1);
      for (int p = bb; p < be; ++p) {
        if (!masked1[size_t(p)]) continue;
        const int row = (cfg.shift_logits ? p - 1 : p) - p0;
        const float* r = part.data() + size_t(row) * size_t(V);
        const int best = int(std::max_element(r, r + V) - r);
        double z = 0, ent = 0;
        for (int v = 0; v < V; ++v) z += std::exp(double(r[v] - r[best]));
        for (int v = 0; v < V; ++v) {
          const double q = std::exp(double(r[v] - r[best])) / z;
          ent -= q > 0 ? q * std::log(q) : 0;
        }
        const double score =
            arch == Arch::kLLaDA ? 1.0 / z : -ent;  // p(argmax) or -H
        scored.emplace_back(float(score), p);
        token[size_t(p)] = best;
      }
      std::stable_sort(scored.begin(), scored.end(),
                       [](auto& a, auto& b) { return a.first > b.first; });
      std::vector<int32_t> want = {scored[0].second, scored[1].second};
      std::sort(want.begin(), want.end());
      EXPECT_EQ(got, want);
      for (int32_t p : got)
        EXPECT_EQ(g.canvas(id).ids[size_t(p)], token[size_t(p)]) << p;
    }
}

TEST(CachedDiffusion, OptionsByName) {
  EXPECT_EQ(ParseCache("dual"), Cache::kDual);
  EXPECT_STREQ(CacheName(Cache::kPrefix), "prefix");
  EXPECT_DLLM_ERROR(ParseCache("full"), "expected auto, none, prefix or dual");
  test::TempDir dir;
  auto m = RandomModel(dir, Arch::kLLaDA, false, 1);
  GenerateOptions o;
  o.gen_length = 8, o.steps = 8, o.refresh_every = -1;
  EXPECT_DLLM_ERROR(Generate(*m, {{1, 2}}, o), "refresh must be >= 0");
}

}  // namespace
}  // namespace dllm
