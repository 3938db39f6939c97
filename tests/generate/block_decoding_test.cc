// Decoding block-diffusion models (config "block_size"): blocks are aligned
// to the model's own blocks, and the cache the default picks for them is
// exact, so cached decoding equals running every position every step.
#include <gtest/gtest.h>

#include <vector>

#include "dllm/generate.h"
#include "dllm/model.h"
#include "test_util.h"

namespace dllm {
namespace {

constexpr int kBlock = 4;

std::unique_ptr<Model> BlockModel(const test::TempDir& dir, uint64_t seed) {
  ModelConfig c = test::TinyConfig(Arch::kLLaDA);
  c.block_size = kBlock;
  InitRandomModel(c, dir.path(), "F32", seed, 0.3f);
  return Model::Load(dir.path());
}

struct Blocks {
  std::vector<std::pair<int, int>> spans;  // (block_begin, block_end) seen
};

bool Record(const StepInfo& info, void* user) {
  auto* b = static_cast<Blocks*>(user);
  for (const Canvas& c : *info.canvases)
    b->spans.emplace_back(c.block_begin, c.block_end);
  return true;
}

TEST(BlockDecoding, BlocksAlignToTheModelsBlocks) {
  test::TempDir dir;
  auto m = BlockModel(dir, 3);
  ASSERT_EQ(m->config().block_size, kBlock);
  for (int prompt_len : {4, 5, 7}) {
    std::vector<int32_t> prompt;
    for (int i = 0; i < prompt_len; ++i) prompt.push_back(1 + i);
    GenerateOptions o;
    o.gen_length = 12, o.steps = 12, o.cache = Cache::kNone;
    Blocks b;
    auto r = Generate(*m, {prompt}, o, Record, &b);
    const int gen_end = prompt_len + o.gen_length;
    ASSERT_FALSE(b.spans.empty());
    for (auto [begin, end] : b.spans) {
      // A block starts at the prompt's end or on a model block boundary,
      // and ends on one or at the end of the canvas.
      EXPECT_TRUE(begin == prompt_len || begin % kBlock == 0) << begin;
      EXPECT_TRUE(end == gen_end || end % kBlock == 0) << end;
      EXPECT_LE(end - begin, kBlock);
    }
    EXPECT_EQ(b.spans.front().first, prompt_len);
    EXPECT_EQ(b.spans.back().second, gen_end);
    // Nothing is left masked.
    for (size_t i = size_t(prompt_len); i < size_t(gen_end); ++i)
      EXPECT_NE(r[0].canvas[i], m->config().mask_token_id);
  }
}

TEST(BlockDecoding, DefaultCacheIsExact) {
  test::TempDir dir;
  auto m = BlockModel(dir, 5);
  const std::vector<std::vector<int32_t>> prompts = {
      {1, 2, 3, 4, 5}, {7, 8, 9, 10}, {11, 12, 13, 14, 15, 16, 17}};
  for (double temperature : {0.0, 0.8}) {
    for (Schedule sched : {Schedule::kEvenBlocks, Schedule::kThreshold}) {
      GenerateOptions o;
      o.gen_length = 16, o.steps = 8, o.temperature = temperature;
      o.seed = 11, o.schedule = sched, o.threshold = 0.5;
      o.stop_at_eos = false;
      GenerateOptions none = o;
      none.cache = Cache::kNone;
      GenerateStats s_auto, s_none;
      auto a = Generate(*m, prompts, o, nullptr, nullptr, &s_auto);
      auto n = Generate(*m, prompts, none, nullptr, nullptr, &s_none);
      for (size_t i = 0; i < prompts.size(); ++i) {
        EXPECT_EQ(a[i].canvas, n[i].canvas) << "prompt " << i;
        EXPECT_EQ(a[i].steps, n[i].steps) << "prompt " << i;
      }
      EXPECT_EQ(s_auto.forward_passes, s_none.forward_passes);
    }
  }
}

}  // namespace
}  // namespace dllm
