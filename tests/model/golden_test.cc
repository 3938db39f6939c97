// The forward pass against golden logits from the independent Python
// reference (scripts/make_golden.py, following the published LLaDA and Dream
// modeling code; llada_block_f32 is a block-diffusion model, block-causal).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
#include "base/thread_pool.h"
#include "dllm/model.h"

namespace dllm {
namespace {

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, MatchesReference) {
  const std::string dir =
      std::string(DLLM_SOURCE_DIR) + "/tests/golden/" + GetParam();
  auto golden = nlohmann::json::parse(ReadFileToString(dir + "/golden.json"));
  auto model = Model::Load(dir);
  const int V = model->config().vocab_size;
  const float tol = 1e-4f;
  ASSERT_EQ(golden["cases"].size(), 3u);
  for (int threads : {1, 2}) {
    SetThreads(threads);
    for (const auto& c : golden["cases"]) {
      std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
      const auto& want = c["logits"];
      ASSERT_EQ(want.size(), ids.size());
      ForwardBatch b;
      b.T = int64_t(ids.size());
      b.ids = ids.data();
      std::vector<float> got(ids.size() * size_t(V));
      model->Forward(b, got.data());
      double max_err = 0;
      for (size_t t = 0; t < ids.size(); ++t) {
        ASSERT_EQ(want[t].size(), size_t(V));
        for (int v = 0; v < V; ++v)
          max_err = std::max(max_err,
                             std::fabs(double(got[t * size_t(V) + size_t(v)]) -
                                       want[t][size_t(v)].get<double>()));
      }
      EXPECT_LT(max_err, tol)
          << GetParam() << " L=" << ids.size() << " threads=" << threads;
      // Only some rows: the same values as the full forward.
      std::vector<int32_t> rows = {int32_t(ids.size() - 1), 0};
      b.rows = rows.data();
      b.n_rows = 2;
      std::vector<float> part(2 * size_t(V));
      model->Forward(b, part.data());
      for (int v = 0; v < V; ++v) {
        EXPECT_NEAR(part[size_t(v)],
                    got[(ids.size() - 1) * size_t(V) + size_t(v)], 1e-5);
        EXPECT_NEAR(part[size_t(V + v)], got[size_t(v)], 1e-5);
      }
    }
  }
  SetThreads(0);
}

INSTANTIATE_TEST_SUITE_P(Models, Golden,
                         ::testing::Values("llada_untied_f32", "llada_tied_f32",
                                           "dream_gqa_f32", "dream_tied_f32",
                                           "llada_untied_bf16",
                                           "dream_gqa_bf16",
                                           "llada_block_f32"));

}  // namespace
}  // namespace dllm
