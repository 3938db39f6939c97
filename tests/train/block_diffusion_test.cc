// Block diffusion (BD3-LM): the block_size switch in config.json, the
// block-causal inference forward, and the bd training objective, checked
// against the inference forward run one block at a time.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "base/rng.h"
#include "base/thread_pool.h"
#include "dllm/config.h"
#include "dllm/model.h"
#include "dllm/train.h"
#include "test_util.h"
#include "train/data.h"

namespace dllm {
namespace {

ModelConfig TinyConfig(int block_size) {
  ModelConfig c;
  c.n_layers = 2, c.d_model = 16, c.n_heads = 2, c.n_kv_heads = 1;
  c.head_dim = 8, c.d_ff = 24, c.vocab_size = 23, c.max_seq_len = 64;
  c.mask_token_id = 22, c.eos_token_id = 21, c.block_size = block_size;
  return c;
}

TEST(BlockDiffusionConfig, ParsesWritesAndChecks) {
  ModelConfig c = TinyConfig(4);
  const std::string text = ModelConfigToJson(c);
  EXPECT_NE(text.find("\"block_size\": 4"), std::string::npos);
  EXPECT_EQ(ParseModelConfig(text, "x").block_size, 4);
  // Absent means full attention, and is not written.
  ModelConfig full = TinyConfig(0);
  const std::string ftext = ModelConfigToJson(full);
  EXPECT_EQ(ftext.find("block_size"), std::string::npos);
  EXPECT_EQ(ParseModelConfig(ftext, "x").block_size, 0);
  auto with = [&](const std::string& field) {
    std::string t = ftext;
    t.insert(t.find('{') + 1, "\n  " + field + ",");
    return t;
  };
  EXPECT_DLLM_ERROR(ParseModelConfig(with("\"block_size\": 0"), "cfg.json"),
                    "cfg.json: field 'block_size' = 0 is out of range");
  EXPECT_DLLM_ERROR(ParseModelConfig(with("\"block_size\": -3"), "cfg.json"),
                    "'block_size' = -3");
  EXPECT_DLLM_ERROR(ParseModelConfig(with("\"block_size\": 2.5"), "cfg.json"),
                    "'block_size' must be an integer");
  EXPECT_DLLM_ERROR(
      ParseModelConfig(with("\"block_size\": 4, \"causal\": true"), "cfg.json"),
      "block_size 4 is for bidirectional");
}

// The inference forward of a block-diffusion model: a query's logits depend
// on its own block and the blocks before it, never on later ones.
TEST(BlockDiffusion, ForwardIsBlockCausal) {
  test::TempDir dir;
  TrainableModel(TinyConfig(3), 5, 0.3f).SaveModel(dir.path());
  auto model = Model::Load(dir.path());
  ASSERT_EQ(model->config().block_size, 3);
  const int V = model->config().vocab_size;
  std::vector<int32_t> ids = {1, 2, 22, 4, 22, 6, 7, 22};  // blocks 3, 3, 2
  auto logits = [&](const std::vector<int32_t>& x) {
    ForwardBatch b;
    b.T = int64_t(x.size());
    b.ids = x.data();
    std::vector<float> out(x.size() * size_t(V));
    model->Forward(b, out.data());
    return out;
  };
  const auto base = logits(ids);
  auto changed_rows = [&](int pos) {
    auto x = ids;
    x[size_t(pos)] = 9;
    const auto got = logits(x);
    std::string rows;
    for (size_t t = 0; t < x.size(); ++t) {
      bool diff = false;
      for (int v = 0; v < V; ++v)
        diff |=
            got[t * size_t(V) + size_t(v)] != base[t * size_t(V) + size_t(v)];
      rows += diff ? 'x' : '.';
    }
    return rows;
  };
  EXPECT_EQ(changed_rows(7), "......xx");  // the last block only
  EXPECT_EQ(changed_rows(4), "...xxxxx");  // its block and every later one
  EXPECT_EQ(changed_rows(0), "xxxxxxxx");
}

// The bd loss over [x_t ; x_0] in one forward equals the sum, block by
// block, of the inference forward on (clean blocks before it, its noisy
// block): the identity that makes the vectorised BD3-LM objective right.
TEST(BlockDiffusion, ObjectiveEqualsBlockByBlockInference) {
  for (int block : {1, 3, 4, 16}) {
    test::TempDir dir;
    TrainableModel tm(TinyConfig(block), 11, 0.3f);
    tm.SaveModel(dir.path());
    auto model = Model::Load(dir.path());
    const int64_t B = 2, T = 10, V = tm.config().vocab_size;
    TrainBatch b;
    b.B = B, b.T = T;
    for (int64_t i = 0; i < B * T; ++i)
      b.ids.push_back(int32_t(RandomBits(3, 1, uint64_t(i)) % 20));
    MaskForBD(&b, block, 7, 0, 1e-3);
    const int64_t nb = (T + block - 1) / block;
    ASSERT_EQ(int64_t(b.block_p.size()), B * nb);
    double want = 0;
    for (int64_t s = 0; s < B; ++s)
      for (int64_t k = 0; k < nb; ++k) {
        const int64_t end = std::min(T, (k + 1) * block);
        std::vector<int32_t> x(b.ids.begin() + s * T,
                               b.ids.begin() + s * T + end);
        for (int64_t i = k * block; i < end; ++i)
          if (b.mask[size_t(s * T + i)])
            x[size_t(i)] = tm.config().mask_token_id;
        ForwardBatch fb;
        fb.T = end;
        fb.ids = x.data();
        std::vector<float> lg(size_t(end * V));
        model->Forward(fb, lg.data());
        for (int64_t i = k * block; i < end; ++i) {
          if (!b.mask[size_t(s * T + i)]) continue;
          const float* row = lg.data() + i * V;
          double mx = -INFINITY, sum = 0;
          for (int64_t v = 0; v < V; ++v) mx = std::max(mx, double(row[v]));
          for (int64_t v = 0; v < V; ++v) sum += std::exp(row[v] - mx);
          const double ce = mx + std::log(sum) - row[b.ids[size_t(s * T + i)]];
          want += ce / (b.block_p[size_t(s * nb + k)] * double(B * T));
        }
      }
    for (int threads : {1, 2}) {
      SetThreads(threads);
      EXPECT_NEAR(tm.Loss(b, Objective::kBD), want, 1e-5 * want)
          << "block " << block << " threads " << threads;
      tm.ZeroGrads();
      EXPECT_NEAR(tm.ForwardBackward(b, Objective::kBD), want, 1e-5 * want);
    }
    SetThreads(0);
  }
}

// Gradients of the bd step against central differences of its loss.
TEST(BlockDiffusion, GradientsMatchFiniteDifferences) {
  TrainableModel tm(TinyConfig(3), 13, 0.3f);
  TrainBatch b;
  b.B = 2, b.T = 7;
  for (int64_t i = 0; i < 14; ++i)
    b.ids.push_back(int32_t(RandomBits(4, 1, uint64_t(i)) % 20));
  MaskForBD(&b, 3, 9, 0, 1e-3);
  tm.ZeroGrads();
  tm.ForwardBackward(b, Objective::kBD);
  const std::vector<float> g(tm.grads(), tm.grads() + tm.num_params());
  int checked = 0;
  for (const auto& s : tm.slots())
    for (int64_t i : {int64_t(0), s.numel / 2, s.numel - 1}) {
      float* p = tm.params() + s.offset + i;
      const float keep = *p, h = 1e-2f;
      *p = keep + h;
      const double up = tm.Loss(b, Objective::kBD);
      *p = keep - h;
      const double down = tm.Loss(b, Objective::kBD);
      *p = keep;
      const double fd = (up - down) / (2.0 * h);
      EXPECT_NEAR(g[size_t(s.offset + i)], fd, 2e-3 + 2e-2 * std::fabs(fd))
          << s.name << "[" << i << "]";
      ++checked;
    }
  EXPECT_GT(checked, 20);
}

TEST(BlockDiffusion, ObjectiveNeedsABlockModel) {
  TrainableModel full(TinyConfig(0), 1), blocks(TinyConfig(4), 1);
  TrainBatch b;
  b.B = 1, b.T = 8;
  b.ids.assign(8, 3);
  MaskForBD(&b, 4, 1, 0, 1e-3);
  EXPECT_DLLM_ERROR(full.Loss(b, Objective::kBD),
                    "needs a block-diffusion model");
  MaskForMDM(&b, 1, 0, 1e-3, false);
  EXPECT_DLLM_ERROR(blocks.Loss(b, Objective::kMDM), "use the bd objective");
  b.block_p.clear();
  EXPECT_DLLM_ERROR(blocks.Loss(b, Objective::kBD), "p per block");
  EXPECT_EQ(ParseObjective("bd"), Objective::kBD);
  EXPECT_STREQ(ObjectiveName(Objective::kBD), "bd");
}

// AR-to-block-diffusion: the causal model's weights, block-causal attention.
TEST(BlockDiffusion, ConvertFromAR) {
  ModelConfig c = TinyConfig(0);
  c.causal = true;
  TrainableModel m(c, 3);
  const std::vector<float> before = m.param_vector();
  EXPECT_DLLM_ERROR(m.ConvertToBlockDiffusion(4, 23), "not in the vocabulary");
  EXPECT_DLLM_ERROR(m.ConvertToBlockDiffusion(4, -1), "not in the vocabulary");
  EXPECT_DLLM_ERROR(m.ConvertToBlockDiffusion(0, 22), "at least 1");
  m.ConvertToBlockDiffusion(4, 22);
  EXPECT_FALSE(m.config().causal);
  EXPECT_EQ(m.config().block_size, 4);
  EXPECT_EQ(m.param_vector(), before);
  TrainBatch b;
  b.B = 1, b.T = 8;
  b.ids.assign(8, 3);
  MaskForBD(&b, 4, 1, 0, 1e-3);
  EXPECT_TRUE(std::isfinite(m.Loss(b, Objective::kBD)));
}

// Per-block t: p in [eps, 1], one value per block, and the masked fraction
// follows each block's p.
TEST(BlockDiffusion, MaskingIsPerBlock) {
  TrainBatch b;
  b.B = 64, b.T = 40;
  b.ids.assign(size_t(b.B * b.T), 1);
  MaskForBD(&b, 8, 5, 3, 0.1);
  ASSERT_EQ(b.block_p.size(), size_t(64 * 5));
  double masked = 0, expected = 0;
  bool differ = false;
  for (int64_t s = 0; s < b.B; ++s)
    for (int64_t k = 0; k < 5; ++k) {
      const float p = b.block_p[size_t(s * 5 + k)];
      EXPECT_GE(p, 0.1f);
      EXPECT_LE(p, 1.0f);
      differ |= p != b.block_p[size_t(s * 5)];
      for (int64_t i = k * 8; i < (k + 1) * 8; ++i)
        masked += b.mask[size_t(s * b.T + i)];
      expected += 8 * p;
    }
  EXPECT_TRUE(differ);
  EXPECT_NEAR(masked / expected, 1.0, 0.05);
  // The same keys give the same masks (resume), another step others.
  TrainBatch again = b, other = b;
  MaskForBD(&again, 8, 5, 3, 0.1);
  MaskForBD(&other, 8, 5, 4, 0.1);
  EXPECT_EQ(again.mask, b.mask);
  EXPECT_NE(other.mask, b.mask);
}

}  // namespace
}  // namespace dllm
