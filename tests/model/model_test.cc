// Model loading errors, config parsing, batching with padding, and thread
// invariance of the forward pass.
#include "dllm/model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "base/half.h"
#include "base/mmap_file.h"
#include "base/thread_pool.h"
#include "dllm/train.h"
#include "formats/safetensors.h"
#include "model/save.h"
#include "test_util.h"

namespace dllm {
namespace {

const std::string kGolden = std::string(DLLM_SOURCE_DIR) + "/tests/golden/";

using test::TinyConfig;

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

// Overwrites element `at` of tensor `name` in dir/model.safetensors.
void PokeElement(const std::string& dir, const std::string& name, int64_t at,
                 float value) {
  const std::string path = dir + "/model.safetensors";
  std::string img = ReadFileToString(path);
  std::vector<TensorView> views;
  ParseSafetensors(reinterpret_cast<const uint8_t*>(img.data()), img.size(),
                   path, &views, nullptr);
  for (const TensorView& v : views) {
    if (v.name != name) continue;
    size_t off = size_t(v.data - reinterpret_cast<const uint8_t*>(img.data()));
    if (v.dtype == DType::kF32) {
      std::memcpy(&img[off + size_t(at) * 4], &value, 4);
    } else {
      uint16_t h = v.dtype == DType::kBF16 ? F32ToBf16(value) : F32ToF16(value);
      std::memcpy(&img[off + size_t(at) * 2], &h, 2);
    }
    WriteFileAtomic(path, img.data(), img.size());
    return;
  }
  FAIL() << "no tensor " << name;
}

void WriteConfig(const std::string& dir, const ModelConfig& c) {
  std::string j = ModelConfigToJson(c);
  WriteFileAtomic(dir + "/config.json", j.data(), j.size());
}

// NaN or Inf weights used to load and surface as garbage text or token ids
// outside the vocabulary; now loading names the tensor and the element, in
// every dtype, whichever tensor holds it.
TEST(Model, LoadRejectsNonFiniteWeights) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (const char* dtype : {"F32", "BF16", "F16"}) {
    test::TempDir dir;
    InitRandomModel(TinyConfig(Arch::kLLaDA), dir.path(), dtype, 1);
    ASSERT_NO_THROW(Model::Load(dir.path()));
    PokeElement(dir.path(), "model.transformer.blocks.0.q_proj.weight", 17,
                nan);
    EXPECT_DLLM_ERROR(Model::Load(dir.path()),
                      "model.safetensors: tensor "
                      "'model.transformer.blocks.0.q_proj.weight' holds NaN "
                      "at element 17");
    // Training and `eval loss` load through TrainableModel: same check.
    EXPECT_DLLM_ERROR(TrainableModel::Load(dir.path()),
                      "'model.transformer.blocks.0.q_proj.weight' holds NaN "
                      "at element 17");
    PokeElement(dir.path(), "model.transformer.blocks.0.q_proj.weight", 17,
                0.0f);
    PokeElement(dir.path(), "model.transformer.ln_f.weight", 31, -inf);
    EXPECT_DLLM_ERROR(
        Model::Load(dir.path()),
        "tensor 'model.transformer.ln_f.weight' holds Inf at element 31");
  }
}

// Finite weights whose products overflow: the logits are checked, so the
// caller gets an error instead of NaN that a sampler turns into any id.
TEST(Model, ForwardRejectsNonFiniteLogits) {
  test::TempDir dir;
  ModelConfig c = TinyConfig(Arch::kLLaDA);
  const std::vector<TensorSpec> specs = ListTensors(c);
  WriteModelFolder(c, dir.path(), DType::kF32, [&](size_t i, float* dst) {
    const TensorSpec& s = specs[i];
    const bool final_norm = s.name == "model.transformer.ln_f.weight";
    for (int64_t j = 0; j < s.numel(); ++j)
      dst[j] = final_norm ? 3e38f
               : s.role == TensorRole::kNorm
                   ? 1.0f
                   : float(RandomNormal(5, i, uint64_t(j)));
  });
  auto m = Model::Load(dir.path());
  std::vector<int32_t> ids = {1, 2, 3, 4}, rows = {2};
  ForwardBatch b;
  b.T = 4, b.ids = ids.data(), b.rows = rows.data(), b.n_rows = 1;
  std::vector<float> out(size_t(c.vocab_size));
  EXPECT_DLLM_ERROR(m->Forward(b, out.data()),
                    "forward: the logits of position 2 of sequence 0 hold");
  EXPECT_DLLM_ERROR(m->Forward(b, out.data()), "the activations overflowed");
}

// A config.json with fewer layers than the file used to drop the rest
// silently; every stored tensor must now be one the config uses.
TEST(Model, RejectsStoredTensorsTheConfigDoesNotUse) {
  test::TempDir dir;
  ModelConfig c = TinyConfig(Arch::kLLaDA);
  c.n_layers = 4;
  InitRandomModel(c, dir.path(), "F32", 1);
  ModelConfig shallow = c;
  shallow.n_layers = 3;
  WriteConfig(dir.path(), shallow);
  EXPECT_DLLM_ERROR(
      Model::Load(dir.path()),
      "tensor 'model.transformer.blocks.3.attn_norm.weight' is not used by "
      "config.json (n_layers 3; 9 unused tensors in all): is config.json "
      "from another model?");
  // Dream names the field its own way.
  test::TempDir dream;
  ModelConfig d = TinyConfig(Arch::kDream);
  d.n_layers = 3;
  InitRandomModel(d, dream.path(), "F32", 1);
  d.n_layers = 2;
  WriteConfig(dream.path(), d);
  EXPECT_DLLM_ERROR(Model::Load(dream.path()),
                    "tensor 'model.layers.2.input_layernorm.weight' is not "
                    "used by config.json (num_hidden_layers 2; 12 unused");
  // LLaDA biases the config does not ask for.
  test::TempDir bias;
  ModelConfig with_bias = TinyConfig(Arch::kLLaDA);
  with_bias.qkv_bias = true;
  InitRandomModel(with_bias, bias.path(), "F32", 1);
  with_bias.qkv_bias = false;
  WriteConfig(bias.path(), with_bias);
  EXPECT_DLLM_ERROR(Model::Load(bias.path()),
                    "tensor 'model.transformer.blocks.0.k_proj.bias' is not "
                    "used by config.json (include_qkv_bias false; 6 unused");
}

// weight_tying true on an untied checkpoint used to load and print garbage;
// a stored head equal to the embedding (some exporters duplicate it) is
// still accepted, and an untied config on a tied file says why it fails.
TEST(Model, TiedConfigMustMatchTheStoredHead) {
  test::TempDir dir;
  ModelConfig c = TinyConfig(Arch::kLLaDA);
  InitRandomModel(c, dir.path(), "BF16", 1);
  ModelConfig tied = c;
  tied.tie_embeddings = true;
  WriteConfig(dir.path(), tied);
  EXPECT_DLLM_ERROR(
      Model::Load(dir.path()),
      "tensor 'model.transformer.ff_out.weight' (an output head) differs from "
      "the embedding 'model.transformer.wte.weight', but config.json ties "
      "them (weight_tying true)");

  // The head stored as a copy of the embedding.
  test::TempDir dup;
  const std::vector<TensorSpec> specs = ListTensors(c);
  WriteModelFolder(c, dup.path(), DType::kF32, [&](size_t i, float* dst) {
    const TensorSpec& s = specs[i];
    const bool matrix =
        s.role == TensorRole::kMatrix || s.role == TensorRole::kEmbedding;
    // Embedding and head share a stream, so they hold the same values.
    const uint64_t stream = s.shape == specs[0].shape ? 0 : i;
    for (int64_t j = 0; j < s.numel(); ++j)
      dst[j] =
          matrix ? 0.1f * float(RandomNormal(3, stream, uint64_t(j))) : 1.0f;
  });
  WriteConfig(dup.path(), tied);
  auto m = Model::Load(dup.path());
  EXPECT_TRUE(m->config().tie_embeddings);

  // An untied config on a tied file.
  test::TempDir tied_dir;
  InitRandomModel(tied, tied_dir.path(), "F32", 1);
  WriteConfig(tied_dir.path(), c);
  EXPECT_DLLM_ERROR(Model::Load(tied_dir.path()),
                    "tensor 'model.transformer.ff_out.weight' (the output "
                    "head) is missing, but config.json says the head is "
                    "untied (weight_tying false)");
}

TEST(Model, InitChecksStdAndFreeSpace) {
  test::TempDir dir;
  EXPECT_DLLM_ERROR(
      InitRandomModel(TinyConfig(Arch::kLLaDA), dir.path(), "F32", 1, NAN),
      "init: weight std nan must be a finite number >= 0");
  EXPECT_FALSE(FileExists(dir / "model.safetensors"));
  EXPECT_DLLM_ERROR(
      CheckFreeSpace(dir.path(), uint64_t(1) << 62, "model.safetensors"),
      ": model.safetensors needs 4611686018.43 GB but the file "
      "system has only ");
  EXPECT_NO_THROW(CheckFreeSpace(dir.path(), 1, "model.safetensors"));
}

}  // namespace
}  // namespace dllm
