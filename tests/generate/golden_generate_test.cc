// Token-for-token equality with the official samplers (LLaDA generate() and
// Dream's diffusion_generate) at temperature 0, from the independent Python
// reference in scripts/make_generate_golden.py.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
#include "dllm/generate.h"
#include "dllm/model.h"

namespace dllm {
namespace {

struct Trace {
  std::vector<std::vector<int32_t>> steps;
};

bool Record(const StepInfo& info, void* user) {
  auto* t = static_cast<Trace*>(user);
  const Canvas& c = (*info.canvases)[0];
  // steps_done counts every schedule step, also those skipped because they
  // would commit nothing, so the index lines up with the reference's steps.
  const size_t i = size_t(c.steps_done - 1);
  if (t->steps.size() <= i) t->steps.resize(i + 1);
  t->steps[i] = (*info.committed)[0];
  return true;
}

TEST(GoldenGenerate, MatchesOfficialSamplers) {
  const std::string root = std::string(DLLM_SOURCE_DIR) + "/tests/";
  auto golden = nlohmann::json::parse(
      ReadFileToString(root + "golden_generate/cases.json"));
  ASSERT_GE(golden["cases"].size(), 20u);
  int checked = 0;
  for (const auto& c : golden["cases"]) {
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    auto model = Model::Load(root + "golden/" + c["model"].get<std::string>());
    const auto& p = c["params"];
    GenerateOptions o;
    o.stop_at_eos = false;  // the reference never stops early
    if (c["sampler"] == "llada") {
      o.gen_length = p["gen_length"];
      o.steps = p["steps"];
      o.block_length = p["block_length"];
      o.cfg_scale = p["cfg_scale"];
      o.temperature = p["temperature"];
      ASSERT_EQ(p["remasking"], "low_confidence");
      o.order = Order::kLowConfidence;
    } else {
      o.gen_length = p["max_new_tokens"];
      o.steps = p["steps"];
      o.eps = p["eps"];
      o.temperature = p["temperature"];
      const std::string alg = p["alg"];
      o.order = alg == "maskgit_plus"  ? Order::kMaskgitPlus
                : alg == "topk_margin" ? Order::kTopkMargin
                                       : Order::kEntropy;
      if (!p["top_p"].is_null()) o.top_p = p["top_p"];
      if (!p["top_k"].is_null()) o.top_k = p["top_k"];
    }
    // These two cases pin the reference's own handling of [MASK] choices.
    o.reference_mask_choices =
        name.find("mask_self_predict") != std::string::npos;
    std::vector<int32_t> prompt = c["prompt"];
    // Fast-dLLM's caches refreshed every step run every position every
    // step: the same tokens as the reference.
    for (Cache cache : {Cache::kNone, Cache::kPrefix, Cache::kDual}) {
      SCOPED_TRACE(CacheName(cache));
      o.cache = cache;
      o.refresh_every = 1;
      Trace trace;
      auto r = Generate(*model, {prompt}, o, Record, &trace);
      std::vector<int32_t> want = c["output"];
      EXPECT_EQ(r[0].canvas, want);
      // Step by step: the positions committed at each step. Positions that
      // "chose" [MASK] stay masked and are not commits, so the self-predicting
      // cases are compared on the final canvas only.
      if (name.find("mask_self_predict") == std::string::npos) {
        auto want_steps =
            c["steps_trace"].get<std::vector<std::vector<int32_t>>>();
        trace.steps.resize(want_steps.size());
        EXPECT_EQ(trace.steps, want_steps);
      }
    }
    ++checked;
  }
  EXPECT_EQ(checked, int(golden["cases"].size()));
}

}  // namespace
}  // namespace dllm
