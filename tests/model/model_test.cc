// Model loading errors, config parsing, batching with padding, and thread
// invariance of the forward pass.
#include "dllm/model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
#include "base/thread_pool.h"
#include "formats/safetensors.h"
#include "test_util.h"

namespace dllm {
namespace {

const std::string kGolden = std::string(DLLM_SOURCE_DIR) + "/tests/golden/";

ModelConfig TinyConfig(Arch arch) {
  ModelConfig c;
  c.arch = arch;
  c.n_layers = 2, c.d_model = 32, c.n_heads = 4,
  c.n_kv_heads = arch == Arch::kDream ? 2 : 4;
  c.head_dim = 8, c.d_ff = 48, c.vocab_size = 50, c.max_seq_len = 128;
  c.rope_theta = 10000, c.mask_token_id = 49, c.eos_token_id = 48;
  c.qkv_bias = arch == Arch::kDream;
  c.shift_logits = arch == Arch::kDream;
  return c;
}

TEST(Config, ParsesRealLLaDAConfig) {
  const std::string path = std::string(DLLM_SOURCE_DIR) +
                           "/../shared/data/tokenizers/llada/config.json";
  if (!std::ifstream(path)) GTEST_SKIP() << "shared data not present: " << path;
  ModelConfig c = LoadModelConfig(path);
  EXPECT_EQ(c.arch, Arch::kLLaDA);
  EXPECT_EQ(c.n_layers, 32);
  EXPECT_EQ(c.d_model, 4096);
  EXPECT_EQ(c.d_ff, 12288);
  EXPECT_EQ(c.vocab_size, 126464);
  EXPECT_EQ(c.mask_token_id, 126336);
  EXPECT_EQ(c.eos_token_id, 126081);
  EXPECT_FALSE(c.tie_embeddings);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  // LLaDA-8B has about 8.0B parameters.
  EXPECT_NEAR(double(c.NumParams()) / 1e9, 8.02, 0.05);
}

TEST(Config, RejectsBadFields) {
  auto base = nlohmann::json::parse(
      ReadFileToString(kGolden + "llada_untied_f32/config.json"));
  auto with = [&](const char* key, nlohmann::json v) {
    auto j = base;
    if (v.is_null())
      j.erase(key);
    else
      j[key] = v;
    return j.dump();
  };
  EXPECT_DLLM_ERROR(ParseModelConfig(with("d_model", nullptr), "c.json"),
                    "missing field 'd_model'");
  EXPECT_DLLM_ERROR(ParseModelConfig(with("d_model", -3), "c.json"),
                    "'d_model' = -3 is out of range");
  EXPECT_DLLM_ERROR(ParseModelConfig(with("n_heads", "four"), "c.json"),
                    "must be an integer");
  EXPECT_DLLM_ERROR(ParseModelConfig(with("n_heads", 5), "c.json"),
                    "not divisible");
  EXPECT_DLLM_ERROR(ParseModelConfig(with("model_type", "gpt2"), "c.json"),
                    "model_type 'gpt2'");
  EXPECT_DLLM_ERROR(ParseModelConfig(with("rms_norm_eps", 5.0), "c.json"),
                    "rms_norm_eps");
  EXPECT_DLLM_ERROR(ParseModelConfig(with("mask_token_id", 999), "c.json"),
                    "mask_token_id 999");
  EXPECT_DLLM_ERROR(ParseModelConfig(with("weight_tying", 1), "c.json"),
                    "true or false");
  EXPECT_DLLM_ERROR(
      ParseModelConfig(with("mask_token_id", 4294967551LL), "c.json"),
      "is not a token id");
  EXPECT_DLLM_ERROR(ParseModelConfig(with("eos_token_id", -5), "c.json"),
                    "is not a token id");
  EXPECT_DLLM_ERROR(ParseModelConfig("{not json", "c.json"),
                    "c.json: not valid JSON");
  // Round trip through our writer.
  for (Arch a : {Arch::kLLaDA, Arch::kDream}) {
    ModelConfig c = TinyConfig(a);
    ModelConfig d = ParseModelConfig(ModelConfigToJson(c), "rt");
    EXPECT_EQ(d.arch, c.arch);
    EXPECT_EQ(d.n_kv_heads, c.n_kv_heads);
    EXPECT_EQ(d.d_ff, c.d_ff);
    EXPECT_EQ(d.vocab_size, c.vocab_size);
    EXPECT_EQ(d.mask_token_id, c.mask_token_id);
    EXPECT_EQ(d.shift_logits, c.shift_logits);
  }
}

TEST(Model, LoadErrorsNameTheTensor) {
  test::TempDir dir;
  ModelConfig c = TinyConfig(Arch::kLLaDA);
  InitRandomModel(c, dir.path(), "F32", 1);
  ASSERT_NO_THROW(Model::Load(dir.path()));
  // Config from a bigger model: shapes disagree.
  ModelConfig big = c;
  big.d_ff = 64;
  std::string j = ModelConfigToJson(big);
  WriteFileAtomic(dir / "config.json", j.data(), j.size());
  EXPECT_DLLM_ERROR(Model::Load(dir.path()),
                    "tensor 'model.transformer.blocks.0.ff_proj.weight' has "
                    "shape (48, 32), config.json wants (64, 32)");
  // More layers than stored.
  ModelConfig deep = c;
  deep.n_layers = 3;
  j = ModelConfigToJson(deep);
  WriteFileAtomic(dir / "config.json", j.data(), j.size());
  EXPECT_DLLM_ERROR(
      Model::Load(dir.path()),
      "tensor 'model.transformer.blocks.2.attn_norm.weight' is missing");
  EXPECT_DLLM_ERROR(Model::Load(dir / "nope"), "config.json: cannot open");
}

TEST(Model, RejectsOutOfRangeTokens) {
  auto m = Model::Load(kGolden + "llada_untied_f32");
  std::vector<int32_t> ids = {1, 67, 2};
  ForwardBatch b;
  b.T = 3, b.ids = ids.data();
  std::vector<float> out(3 * 67);
  EXPECT_DLLM_ERROR(m->Forward(b, out.data()), "token id 67 at position 1");
  ids[1] = -1;
  EXPECT_DLLM_ERROR(m->Forward(b, out.data()), "token id -1");
}

// A sequence gives the same logits alone and right-padded in a batch with
// another (padding keys masked), on 1 and 2 threads, for every dtype.
TEST(Model, BatchWithPaddingMatchesSingle) {
  for (const char* dtype : {"F32", "BF16", "F16"})
    for (Arch arch : {Arch::kLLaDA, Arch::kDream}) {
      test::TempDir dir;
      ModelConfig c = TinyConfig(arch);
      InitRandomModel(c, dir.path(), dtype, 7, 0.2f);
      auto m = Model::Load(dir.path());
      const int V = c.vocab_size;
      std::vector<int32_t> a = {3, 9, 49, 49, 12},
                           bseq = {5, 49, 7, 8, 1, 2, 49, 30};
      std::vector<float> alone(a.size() * size_t(V));
      ForwardBatch f;
      f.T = int64_t(a.size()), f.ids = a.data();
      m->Forward(f, alone.data());
      for (int threads : {1, 2}) {
        SetThreads(threads);
        const int64_t T = int64_t(bseq.size());
        std::vector<int32_t> ids(size_t(2 * T), 0);
        std::vector<uint8_t> mask(size_t(2 * T), 0);
        for (size_t i = 0; i < bseq.size(); ++i) ids[i] = bseq[i], mask[i] = 1;
        for (size_t i = 0; i < a.size(); ++i)
          ids[size_t(T) + i] = a[i], mask[size_t(T) + i] = 1;
        std::vector<int32_t> rows;
        for (size_t i = 0; i < a.size(); ++i)
          rows.push_back(int32_t(T + int64_t(i)));
        ForwardBatch g;
        g.B = 2, g.T = T, g.ids = ids.data(), g.key_mask = mask.data(),
        g.rows = rows.data();
        g.n_rows = int64_t(rows.size());
        std::vector<float> batched(rows.size() * size_t(V));
        m->Forward(g, batched.data());
        double max_err = 0;
        for (size_t i = 0; i < alone.size(); ++i)
          max_err = std::max(max_err, double(std::fabs(alone[i] - batched[i])));
        EXPECT_LT(max_err, 2e-5)
            << dtype << " " << ArchName(arch) << " threads=" << threads;
      }
      SetThreads(0);
    }
}

// A causal model: logits at position t do not depend on tokens after t.
TEST(Model, CausalIgnoresTheFuture) {
  test::TempDir dir;
  ModelConfig c = TinyConfig(Arch::kLLaDA);
  c.causal = true;
  InitRandomModel(c, dir.path(), "F32", 3, 0.2f);
  auto m = Model::Load(dir.path());
  ASSERT_TRUE(m->config().causal);
  std::vector<int32_t> x = {1, 2, 3, 4, 5}, y = {1, 2, 3, 40, 41};
  std::vector<float> lx(5 * 50), ly(5 * 50);
  ForwardBatch b;
  b.T = 5, b.ids = x.data();
  m->Forward(b, lx.data());
  b.ids = y.data();
  m->Forward(b, ly.data());
  for (int i = 0; i < 3 * 50; ++i)
    ASSERT_NEAR(lx[size_t(i)], ly[size_t(i)], 1e-6) << i;
  double diff = 0;
  for (int i = 3 * 50; i < 5 * 50; ++i)
    diff += std::fabs(lx[size_t(i)] - ly[size_t(i)]);
  EXPECT_GT(diff, 1e-3);
}

}  // namespace
}  // namespace dllm
