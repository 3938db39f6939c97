// One full training step (loss and every gradient) against the independent
// PyTorch reference (scripts/make_train_golden.py) for every objective.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
#include "base/thread_pool.h"
#include "dllm/train.h"
#include "formats/safetensors.h"

namespace dllm {
namespace {

class TrainGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainGolden, LossAndGradientsMatchTorch) {
  const std::string root = std::string(DLLM_SOURCE_DIR) + "/tests/";
  const std::string dir = root + "golden_train/" + GetParam();
  auto j = nlohmann::json::parse(ReadFileToString(dir + "/case.json"));
  const std::string model_dir =
      root + "golden/" + j["model"].get<std::string>();
  const Objective obj = ParseObjective(j["objective"]);
  for (int threads : {1, 2}) {
    SetThreads(threads);
    auto m = TrainableModel::Load(model_dir);
    if (obj == Objective::kAR) {
      // The same weights as a causal model.
      ModelConfig c = m->config();
      c.causal = true;
      auto causal = std::make_unique<TrainableModel>(c, 0);
      std::copy(m->param_vector().begin(), m->param_vector().end(),
                causal->params());
      m = std::move(causal);
    }
    if (obj == Objective::kBD)  // the same weights as a block-diffusion model
      m->ConvertToBlockDiffusion(j["block_size"].get<int>(),
                                 m->config().mask_token_id);
    TrainBatch b;
    auto ids = j["ids"].get<std::vector<std::vector<int32_t>>>();
    b.B = int64_t(ids.size());
    b.T = int64_t(ids[0].size());
    for (auto& r : ids) b.ids.insert(b.ids.end(), r.begin(), r.end());
    if (j.contains("mask"))
      for (auto& r : j["mask"].get<std::vector<std::vector<int>>>())
        for (int x : r) b.mask.push_back(uint8_t(x));
    if (j.contains("p")) b.p = j["p"].get<std::vector<float>>();
    if (j.contains("block_p"))
      for (auto& r : j["block_p"].get<std::vector<std::vector<float>>>())
        b.block_p.insert(b.block_p.end(), r.begin(), r.end());
    if (j.contains("prompt_len"))
      b.prompt_len = j["prompt_len"].get<std::vector<int32_t>>();
    m->ZeroGrads();
    const double loss = m->ForwardBackward(b, obj);
    const double want = j["loss"].get<double>();
    EXPECT_NEAR(loss, want, 1e-5 * std::fabs(want)) << "threads=" << threads;
    EXPECT_NEAR(m->Loss(b, obj), want, 1e-5 * std::fabs(want));

    SafetensorsFile grads(dir + "/grads.safetensors");
    ASSERT_EQ(grads.tensors().size(), m->slots().size());
    for (const auto& s : m->slots()) {
      const TensorView* g = nullptr;
      for (const auto& t : grads.tensors())
        if (t.name == s.name) g = &t;
      ASSERT_NE(g, nullptr) << s.name;
      ASSERT_EQ(g->numel(), s.numel) << s.name;
      const float* ref = reinterpret_cast<const float*>(g->data);
      const float* got = m->grads() + s.offset;
      float scale = 0;
      for (int64_t i = 0; i < s.numel; ++i)
        scale = std::max(scale, std::fabs(ref[i]));
      for (int64_t i = 0; i < s.numel; ++i)
        ASSERT_NEAR(got[i], ref[i], 1e-4f * std::max(scale, 1e-3f))
            << s.name << "[" << i << "] threads=" << threads;
    }
  }
  SetThreads(0);
}

INSTANTIATE_TEST_SUITE_P(Objectives, TrainGolden,
                         ::testing::Values("llada_untied_mdm",
                                           "llada_untied_mdm_sft",
                                           "llada_untied_ar", "llada_tied_mdm",
                                           "llada_untied_bd"));

}  // namespace
}  // namespace dllm
