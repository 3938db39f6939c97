// Models in GGUF files: Hugging Face folder -> GGUF -> folder round trips
// (bit-exact tensors and config, identical logits) for every layout, the
// q/k row permutation of llama.cpp's llada/llama files, quantized storage,
// metadata errors, and the fixtures written by llama.cpp's own gguf-py
// (scripts/make_gguf_fixture.py).
#include "model/gguf_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
#include "dllm/convert.h"
#include "dllm/engine.h"
#include "dllm/model.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "model/save.h"
#include "ops/ops.h"
#include "test_util.h"

namespace dllm {
namespace {

using test::TinyConfig;

const std::string kFixtures =
    std::string(DLLM_SOURCE_DIR) + "/tests/fixtures/gguf/";

std::vector<float> Logits(Model& m, const std::vector<int32_t>& ids) {
  ForwardBatch b;
  b.B = 1;
  b.T = int64_t(ids.size());
  b.ids = ids.data();
  std::vector<float> out(ids.size() * size_t(m.config().vocab_size));
  m.Forward(b, out.data());
  return out;
}

// A sequence with mask tokens for a config's vocabulary.
std::vector<int32_t> Ids(const ModelConfig& c) {
  std::vector<int32_t> ids = {1, 7, 3, 11, 2, 5, 9};
  if (c.mask_token_id >= 0) ids[3] = ids[5] = c.mask_token_id;
  return ids;
}

bool SameConfig(const ModelConfig& a, const ModelConfig& b) {
  return a.arch == b.arch && a.n_layers == b.n_layers &&
         a.d_model == b.d_model && a.n_heads == b.n_heads &&
         a.n_kv_heads == b.n_kv_heads && a.head_dim == b.head_dim &&
         a.d_ff == b.d_ff && a.vocab_size == b.vocab_size &&
         a.max_seq_len == b.max_seq_len && a.rms_eps == b.rms_eps &&
         a.rope_theta == b.rope_theta && a.qkv_bias == b.qkv_bias &&
         a.tie_embeddings == b.tie_embeddings && a.causal == b.causal &&
         a.block_size == b.block_size && a.shift_logits == b.shift_logits &&
         a.mask_token_id == b.mask_token_id &&
         a.eos_token_id == b.eos_token_id && a.bos_token_id == b.bos_token_id &&
         a.pad_token_id == b.pad_token_id;
}

const TensorView* Find(const GgufFile& f, const std::string& name) {
  for (const TensorView& t : f.tensors())
    if (t.name == name) return &t;
  return nullptr;
}

struct Layout {
  const char* name;
  ModelConfig c;
  const char* arch;  // llama.cpp's
};

std::vector<Layout> Layouts() {
  std::vector<Layout> out;
  out.push_back({"llada", TinyConfig(Arch::kLLaDA), "llada"});
  ModelConfig tied_gqa = TinyConfig(Arch::kLLaDA);
  tied_gqa.tie_embeddings = true, tied_gqa.n_kv_heads = 2;
  out.push_back({"llada_tied_gqa", tied_gqa, "llada"});
  ModelConfig bias = TinyConfig(Arch::kLLaDA);
  bias.qkv_bias = true, bias.n_kv_heads = 1;
  out.push_back({"llada_qkv_bias", bias, "llada"});
  ModelConfig bd = TinyConfig(Arch::kLLaDA);
  bd.block_size = 4;
  out.push_back({"llada_block", bd, "llada"});
  out.push_back({"dream", TinyConfig(Arch::kDream), "dream"});
  ModelConfig dream_tied = TinyConfig(Arch::kDream);
  dream_tied.tie_embeddings = true;
  out.push_back({"dream_tied", dream_tied, "dream"});
  out.push_back({"llada_causal", TinyConfig(Arch::kLLaDA, true), "llama"});
  out.push_back({"dream_causal", TinyConfig(Arch::kDream, true), "qwen2"});
  return out;
}

// Folder -> GGUF -> folder is lossless in F32: the same tensors byte for
// byte, the same config.json, and the same logits from all three.
TEST(GgufModel, FolderToGgufToFolderIsExact) {
  for (const Layout& l : Layouts()) {
    SCOPED_TRACE(l.name);
    test::TempDir dir;
    InitRandomModel(l.c, dir / "hf", "F32", 17, 0.2f);
    ConvertResult r = ConvertModel(dir / "hf", dir / "m.gguf");
    EXPECT_EQ(size_t(r.tensors), ListTensors(l.c).size());
    ConvertModel(dir / "m.gguf", dir / "back");

    EXPECT_EQ(ReadFileToString(dir / "back/config.json"),
              ReadFileToString(dir / "hf/config.json"));
    SafetensorsFile a(dir / "hf/model.safetensors"),
        b(dir / "back/model.safetensors");
    ASSERT_EQ(a.tensors().size(), b.tensors().size());
    for (size_t i = 0; i < a.tensors().size(); ++i) {
      const TensorView &x = a.tensors()[i], &y = b.tensors()[i];
      EXPECT_EQ(x.name, y.name);
      EXPECT_EQ(x.dtype, y.dtype);
      EXPECT_EQ(x.shape, y.shape);
      ASSERT_EQ(x.nbytes, y.nbytes);
      EXPECT_EQ(std::memcmp(x.data, y.data, x.nbytes), 0) << x.name;
    }

    GgufFile f(dir / "m.gguf");
    EXPECT_EQ(f.GetString("general.architecture"), l.arch);
    EXPECT_TRUE(SameConfig(ConfigFromGguf(f), l.c));
    auto hf = Model::Load(dir / "hf");
    auto gg = Model::Load(dir / "m.gguf");
    auto bk = Model::Load(dir / "back");
    EXPECT_TRUE(SameConfig(gg->config(), hf->config()));
    const std::vector<float> want = Logits(*hf, Ids(l.c));
    const std::vector<float> got = Logits(*gg, Ids(l.c));
    EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size() * 4), 0);
    const std::vector<float> again = Logits(*bk, Ids(l.c));
    EXPECT_EQ(std::memcmp(want.data(), again.data(), want.size() * 4), 0);
    EXPECT_EQ(gg->weights_dtype(), "F32");
    EXPECT_EQ(gg->dir(), dir / "m.gguf");
  }
}

// llada and llama files hold wq/wk (and their biases) with each head's rows
// in llama.cpp's interleaved RoPE order: row h*hd + 2j + i is our row
// h*hd + i*hd/2 + j. dream and qwen2 files keep our order.
TEST(GgufModel, QkRowsFollowLlamaCppsRope) {
  for (const Layout& l : Layouts()) {
    SCOPED_TRACE(l.name);
    test::TempDir dir;
    InitRandomModel(l.c, dir / "hf", "F32", 3, 0.2f);
    ConvertModel(dir / "hf", dir / "m.gguf");
    auto store = TensorStore::Open(dir / "hf");
    GgufFile f(dir / "m.gguf");
    const bool permuted = GgufArchPermutesQK(l.arch);
    EXPECT_EQ(permuted,
              std::string(l.arch) == "llada" || std::string(l.arch) == "llama");
    const std::vector<TensorSpec> hf = ListTensors(l.c, NameTable::kHf);
    const std::vector<TensorSpec> gg = ListTensors(l.c, NameTable::kGguf);
    int checked = 0;
    for (size_t i = 0; i < hf.size(); ++i) {
      const TensorView* src = store->Find(hf[i].name);
      const TensorView* dst = Find(f, gg[i].name);
      ASSERT_NE(src, nullptr);
      ASSERT_NE(dst, nullptr) << gg[i].name;
      ASSERT_EQ(src->nbytes, dst->nbytes);
      const int heads = hf[i].rope_heads;
      const bool is_q = gg[i].name.find("attn_q") != std::string::npos;
      const bool is_k = gg[i].name.find("attn_k") != std::string::npos;
      EXPECT_EQ(heads, is_q ? l.c.n_heads : is_k ? l.c.n_kv_heads : 0);
      if (!permuted || heads == 0) {
        EXPECT_EQ(std::memcmp(src->data, dst->data, src->nbytes), 0)
            << gg[i].name;
        continue;
      }
      const int64_t rows = hf[i].shape[0], hd = rows / heads;
      const size_t rb = src->nbytes / size_t(rows);
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t j = 0; j < hd / 2; ++j)
          for (int64_t k = 0; k < 2; ++k)
            EXPECT_EQ(std::memcmp(
                          dst->data + size_t(h * hd + 2 * j + k) * rb,
                          src->data + size_t(h * hd + k * hd / 2 + j) * rb, rb),
                      0)
                << gg[i].name << " head " << h;
      ++checked;
    }
    if (permuted) {
      EXPECT_GE(checked, 2 * l.c.n_layers);
    }
  }
  // The permutation itself on a head of 4 rows: [0 1 2 3] -> [0 2 1 3].
  const int32_t in[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  int32_t out[8], back[8];
  PermuteRopeRows(in, out, 8, 4, 2, /*to_gguf=*/true);
  const int32_t want[8] = {0, 2, 1, 3, 4, 6, 5, 7};
  EXPECT_EQ(std::memcmp(out, want, sizeof(out)), 0);
  PermuteRopeRows(out, back, 8, 4, 2, /*to_gguf=*/false);
  EXPECT_EQ(std::memcmp(back, in, sizeof(in)), 0);
}

// BF16 and F16 matrices stay as they are (auto); norms become F32 as
// llama.cpp stores them, with the same values.
TEST(GgufModel, HalfPrecisionStaysAsStored) {
  for (const char* dtype : {"BF16", "F16"}) {
    test::TempDir dir;
    const ModelConfig c = TinyConfig(Arch::kDream);
    InitRandomModel(c, dir / "hf", dtype, 5, 0.2f);
    ConvertModel(dir / "hf", dir / "m.gguf");
    GgufFile f(dir / "m.gguf");
    EXPECT_EQ(DTypeName(Find(f, "blk.0.attn_q.weight")->dtype),
              std::string(dtype));
    EXPECT_EQ(Find(f, "blk.0.attn_norm.weight")->dtype, DType::kF32);
    EXPECT_EQ(Find(f, "blk.0.attn_q.bias")->dtype, DType::kF32);
    EXPECT_EQ(f.GetInt("general.file_type", 0, 100),
              std::string(dtype) == "F16" ? 1 : 32);
    auto hf = Model::Load(dir / "hf");
    auto gg = Model::Load(dir / "m.gguf");
    const std::vector<float> a = Logits(*hf, Ids(c)), b = Logits(*gg, Ids(c));
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0) << dtype;
  }
}

// --outtype f16 / bf16 / f32 convert every matrix; the logits of the folder
// with the same conversion are the GGUF's.
TEST(GgufModel, OuttypeConvertsMatrices) {
  test::TempDir dir;
  const ModelConfig c = TinyConfig(Arch::kLLaDA);
  InitRandomModel(c, dir / "hf", "F32", 9, 0.2f);
  InitRandomModel(c, dir / "hf16", "F16", 9, 0.2f);
  ConvertOptions o;
  o.outtype = "f16";
  ConvertModel(dir / "hf", dir / "m16.gguf", o);
  auto a = Model::Load(dir / "hf16");
  auto b = Model::Load(dir / "m16.gguf");
  EXPECT_EQ(b->weights_dtype(), "F16");
  const std::vector<float> x = Logits(*a, Ids(c)), y = Logits(*b, Ids(c));
  EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * 4), 0);
  o.outtype = "f32";
  ConvertModel(dir / "m16.gguf", dir / "back32", o);
  EXPECT_EQ(Model::Load(dir / "back32")->weights_dtype(), "F32");
  o.outtype = "bf16";
  ConvertModel(dir / "m16.gguf", dir / "mbf.gguf", o);
  EXPECT_EQ(Model::Load(dir / "mbf.gguf")->weights_dtype(), "BF16");
}

// Block types: llama-quantize's choices (head Q6_K unless Q8_0; rows that
// are not whole blocks fall back), the model loads, and the weights a
// folder gets back are the blocks decoded.
TEST(GgufModel, QuantizedStorageFollowsLlamaQuantize) {
  test::TempDir dir;
  ModelConfig c = TinyConfig(Arch::kLLaDA);
  c.n_layers = 1, c.d_model = 256, c.n_heads = 4, c.n_kv_heads = 4;
  c.head_dim = 64, c.d_ff = 288;  // ffn_down rows: 288, not whole Q4_K blocks
  InitRandomModel(c, dir / "hf", "F32", 11, 0.05f);
  ModelConfig tied = c;
  tied.tie_embeddings = true;
  InitRandomModel(tied, dir / "hf_tied", "F32", 11, 0.05f);
  struct Case {
    const char* type;
    bool tied;
    DType matrix, down, head, embed;
  };
  const Case cases[] = {
      {"q8_0", false, DType::kQ8_0, DType::kQ8_0, DType::kQ8_0, DType::kQ8_0},
      {"q4_0", false, DType::kQ4_0, DType::kQ4_0, DType::kQ6_K, DType::kQ4_0},
      {"q4_k", false, DType::kQ4_K, DType::kQ8_0, DType::kQ6_K, DType::kQ4_K},
      {"q6_k", false, DType::kQ6_K, DType::kQ8_0, DType::kQ6_K, DType::kQ6_K},
      {"q4_0", true, DType::kQ4_0, DType::kQ4_0, DType::kQ6_K, DType::kQ6_K},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(std::string(k.type) + (k.tied ? " tied" : ""));
    ConvertOptions o;
    o.outtype = k.type;
    o.force = true;
    const std::string src = k.tied ? dir / "hf_tied" : dir / "hf";
    ConvertModel(src, dir / "q.gguf", o);
    GgufFile f(dir / "q.gguf");
    EXPECT_EQ(Find(f, "blk.0.attn_q.weight")->dtype, k.matrix);
    EXPECT_EQ(Find(f, "blk.0.ffn_gate.weight")->dtype, k.matrix);
    EXPECT_EQ(Find(f, "blk.0.ffn_down.weight")->dtype, k.down);
    EXPECT_EQ(Find(f, "token_embd.weight")->dtype, k.embed);
    if (!k.tied) {
      EXPECT_EQ(Find(f, "output.weight")->dtype, k.head);
    }
    EXPECT_EQ(Find(f, "blk.0.attn_norm.weight")->dtype, DType::kF32);
    EXPECT_EQ(Find(f, "output_norm.weight")->dtype, DType::kF32);
    auto m = Model::Load(dir / "q.gguf");
    EXPECT_EQ(m->weights_dtype(), DTypeName(k.matrix));

    // GGUF -> folder decodes the blocks into F32 (rows back in our order).
    ConvertOptions back;
    back.force = true;
    ConvertModel(dir / "q.gguf", dir / "deq", back);
    SafetensorsFile deq(dir / "deq/model.safetensors");
    const TensorView* q = Find(f, "blk.0.attn_q.weight");
    const TensorView* d = nullptr;
    for (const TensorView& t : deq.tensors())
      if (t.name == "model.transformer.blocks.0.q_proj.weight") d = &t;
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->dtype, DType::kF32);
    const int64_t rows = c.n_heads * c.head_dim, cols = c.d_model;
    std::vector<float> dec(size_t(rows * cols)), ours(dec.size());
    const size_t rb = DTypeBytes(q->dtype, cols);
    for (int64_t r = 0; r < rows; ++r)
      ops::ToF32(q->dtype, q->data + size_t(r) * rb, cols,
                 dec.data() + r * cols);
    PermuteRopeRows(dec.data(), ours.data(), rows, size_t(cols) * 4, c.n_heads,
                    /*to_gguf=*/false);
    EXPECT_EQ(std::memcmp(ours.data(), d->data, d->nbytes), 0);
    // And the folder cannot take block types.
    ConvertOptions bad;
    bad.outtype = k.type;
    bad.force = true;
    EXPECT_DLLM_ERROR(ConvertModel(dir / "q.gguf", dir / "deq", bad),
                      "cannot hold");
  }
}

// GGUF -> GGUF in another type equals folder -> GGUF in that type, byte for
// byte, and keeps the metadata.
TEST(GgufModel, QuantizeAGgufEqualsQuantizingTheFolder) {
  test::TempDir dir;
  ModelConfig c = TinyConfig(Arch::kDream);
  InitRandomModel(c, dir / "hf", "F32", 21, 0.1f);
  ConvertModel(dir / "hf", dir / "f32.gguf");
  ConvertOptions o;
  o.outtype = "q8_0";
  ConvertModel(dir / "hf", dir / "direct.gguf", o);
  ConvertModel(dir / "f32.gguf", dir / "requant.gguf", o);
  GgufFile a(dir / "direct.gguf"), b(dir / "requant.gguf");
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    EXPECT_EQ(a.tensors()[i].name, b.tensors()[i].name);
    EXPECT_EQ(a.tensors()[i].dtype, b.tensors()[i].dtype);
    ASSERT_EQ(a.tensors()[i].nbytes, b.tensors()[i].nbytes);
    EXPECT_EQ(std::memcmp(a.tensors()[i].data, b.tensors()[i].data,
                          a.tensors()[i].nbytes),
              0)
        << a.tensors()[i].name;
  }
  EXPECT_EQ(b.GetInt("general.file_type", 0, 100), 7);
  EXPECT_EQ(b.GetString("general.architecture"), "dream");
  EXPECT_TRUE(SameConfig(ConfigFromGguf(b), c));
  // Requantizing an already quantized file works, with a warning.
  o.outtype = "q4_0";
  ConvertResult r = ConvertModel(dir / "direct.gguf", dir / "q4.gguf", o);
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings[0].find("requantizing"), std::string::npos);
  // The destination is not replaced without force.
  EXPECT_DLLM_ERROR(ConvertModel(dir / "direct.gguf", dir / "q4.gguf", o),
                    "already exists: pass --force");
}

// Rewrites a GGUF file with edited metadata or tensors.
void Rewrite(const std::string& src, const std::string& dst,
             const std::function<void(GgufMetadata&,
                                      std::vector<TensorToWrite>&)>& edit) {
  GgufFile f(src);
  GgufMetadata m = f.metadata();
  std::vector<TensorToWrite> ts;
  for (const TensorView& t : f.tensors())
    ts.push_back({t.name, t.dtype, t.shape, t.data, nullptr});
  edit(m, ts);
  WriteGguf(dst, m, ts);
}

void Set(GgufMetadata& m, const std::string& k, GgufValue v) {
  for (auto& kv : m)
    if (kv.first == k) {
      kv.second = std::move(v);
      return;
    }
  m.emplace_back(k, std::move(v));
}

void Erase(GgufMetadata& m, const std::string& k) {
  for (size_t i = 0; i < m.size(); ++i)
    if (m[i].first == k) {
      m.erase(m.begin() + long(i));
      return;
    }
}

TEST(GgufModel, MetadataAndTensorErrorsNameTheKey) {
  test::TempDir dir;
  const ModelConfig c = TinyConfig(Arch::kLLaDA);
  InitRandomModel(c, dir / "hf", "F32", 2, 0.2f);
  ConvertModel(dir / "hf", dir / "m.gguf");
  const std::string src = dir / "m.gguf", bad = dir / "bad.gguf";
  auto meta = [&](const std::function<void(GgufMetadata&)>& e) {
    Rewrite(src, bad,
            [&](GgufMetadata& m, std::vector<TensorToWrite>&) { e(m); });
    return bad;
  };
  auto tensors =
      [&](const std::function<void(std::vector<TensorToWrite>&)>& e) {
        Rewrite(src, bad,
                [&](GgufMetadata&, std::vector<TensorToWrite>& t) { e(t); });
        return bad;
      };
  EXPECT_NO_THROW(Model::Load(meta([](GgufMetadata&) {})));
  EXPECT_DLLM_ERROR(Model::Load(meta([](GgufMetadata& m) {
                      Erase(m, "llada.embedding_length");
                    })),
                    "bad.gguf: missing metadata 'llada.embedding_length'");
  EXPECT_DLLM_ERROR(Model::Load(meta([](GgufMetadata& m) {
                      Set(m, "general.architecture", GgufValue::String("gpt2"));
                    })),
                    "general.architecture 'gpt2' is not supported");
  EXPECT_DLLM_ERROR(Model::Load(meta([](GgufMetadata& m) {
                      Set(m, "llada.block_count", GgufValue::String("2"));
                    })),
                    "metadata 'llada.block_count' must be an integer, got "
                    "string");
  EXPECT_DLLM_ERROR(
      Model::Load(meta([](GgufMetadata& m) {
        Set(m, "llada.attention.head_count",
            GgufValue::IntArray(GgufType::kU32, {4, 8}));
      })),
      "'llada.attention.head_count' differs between layers (4 at layer 0, 8 "
      "at layer 1)");
  // The same value per layer is fine.
  EXPECT_NO_THROW(Model::Load(meta([](GgufMetadata& m) {
    Set(m, "llada.attention.head_count",
        GgufValue::IntArray(GgufType::kU32, {4, 4}));
  })));
  EXPECT_DLLM_ERROR(Model::Load(meta([](GgufMetadata& m) {
                      Set(m, "llada.rope.scaling.type",
                          GgufValue::String("yarn"));
                    })),
                    "RoPE scaling");
  EXPECT_DLLM_ERROR(Model::Load(meta([](GgufMetadata& m) {
                      Set(m, "llada.rope.dimension_count", GgufValue::U32(4));
                    })),
                    "partial RoPE is not supported");
  EXPECT_DLLM_ERROR(Model::Load(meta([](GgufMetadata& m) {
                      Set(m, "llada.vocab_size", GgufValue::U32(64));
                    })),
                    "llada.vocab_size 64 differs from the 50 rows of "
                    "token_embd.weight");
  EXPECT_DLLM_ERROR(Model::Load(meta([](GgufMetadata& m) {
                      Set(m, "tokenizer.ggml.mask_token_id",
                          GgufValue::U32(50));
                    })),
                    "'tokenizer.ggml.mask_token_id' = 50 is out of range");
  EXPECT_DLLM_ERROR(Model::Load(meta([](GgufMetadata& m) {
                      Set(m, "llada.attention.head_count_kv",
                          GgufValue::U32(3));
                    })),
                    "4 query heads are not a multiple of 3 key/value heads");
  EXPECT_DLLM_ERROR(
      Model::Load(meta([](GgufMetadata& m) {
        Erase(m, "llada.attention.layer_norm_rms_epsilon");
      })),
      "missing metadata 'llada.attention.layer_norm_rms_epsilon'");
  EXPECT_DLLM_ERROR(Model::Load(meta([](GgufMetadata& m) {
                      Set(m, "general.architecture",
                          GgufValue::String("llama"));
                      Set(m, "dllm.block_size", GgufValue::U32(4));
                      for (auto& kv : m)
                        if (kv.first.rfind("llada.", 0) == 0)
                          kv.first = "llama." + kv.first.substr(6);
                      Set(m, "llama.attention.causal", GgufValue::Bool(true));
                    })),
                    "dllm.block_size 4 is for bidirectional");
  EXPECT_DLLM_ERROR(
      Model::Load(tensors([](std::vector<TensorToWrite>& t) {
        for (size_t i = 0; i < t.size(); ++i)
          if (t[i].name == "blk.1.ffn_up.weight") t.erase(t.begin() + long(i));
      })),
      "bad.gguf: tensor 'blk.1.ffn_up.weight' is missing (the GGUF metadata "
      "wants (48, 32))");
  EXPECT_DLLM_ERROR(
      Model::Load(tensors([](std::vector<TensorToWrite>& t) {
        for (TensorToWrite& x : t)
          if (x.name == "blk.0.ffn_up.weight") x.shape = {32, 48};
      })),
      "tensor 'blk.0.ffn_up.weight' has shape (32, 48), the GGUF metadata "
      "wants (48, 32)");
  static const float extra[4] = {1, 1, 1, 1};
  EXPECT_DLLM_ERROR(
      Model::Load(tensors([](std::vector<TensorToWrite>& t) {
        t.push_back({"rope_freqs.weight", DType::kF32, {4}, extra, nullptr});
      })),
      "tensor 'rope_freqs.weight' is not used by the GGUF "
      "metadata");
  EXPECT_DLLM_ERROR(
      Model::Load(tensors([](std::vector<TensorToWrite>& t) {
        t.push_back(
            {"blk.2.attn_norm.weight", DType::kF32, {4}, extra, nullptr});
      })),
      "(block_count 2)");
  EXPECT_DLLM_ERROR(
      Model::Load(tensors([](std::vector<TensorToWrite>& t) {
        t.push_back({"blk.0.attn_q.bias", DType::kF32, {4}, extra, nullptr});
      })),
      "blk.0.attn_q.bias");
  // A mask id from the file's tokenizer keys, and the published default
  // only when the vocabulary has it.
  auto m = Model::Load(
      meta([](GgufMetadata& m) { Erase(m, "tokenizer.ggml.mask_token_id"); }));
  EXPECT_EQ(m->config().mask_token_id, -1);
}

// ---------------------------------------------------------------------------
// Files written by llama.cpp's gguf-py the way its converter writes LLaDA
// (scripts/make_gguf_fixture.py), beside the folder they come from.

TEST(GgufFixture, LlamaCppF16FileGivesTheFoldersLogits) {
  auto twin = Model::Load(kFixtures + "llada_twin");
  auto gg = Model::Load(kFixtures + "llada_f16.gguf");
  EXPECT_TRUE(SameConfig(gg->config(), twin->config()));
  EXPECT_EQ(gg->config().n_kv_heads, 2);
  EXPECT_EQ(gg->config().mask_token_id, 282);
  EXPECT_EQ(gg->weights_dtype(), "F16");
  std::vector<int32_t> ids = {281, 40, 282, 282, 7, 100, 260, 282, 3};
  const std::vector<float> a = Logits(*twin, ids), b = Logits(*gg, ids);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);
}

// Our converter writes what llama.cpp's does: the same tensors byte for
// byte (names, q/k permutation, F16 matrices, F32 norms) and the same values
// for every key llama.cpp's file holds.
TEST(GgufFixture, OurConverterWritesLlamaCppsFile) {
  test::TempDir dir;
  ConvertOptions o;
  o.outtype = "f16";
  ConvertModel(kFixtures + "llada_twin", dir / "ours.gguf", o);
  GgufFile theirs(kFixtures + "llada_f16.gguf"), ours(dir / "ours.gguf");
  ASSERT_EQ(theirs.tensors().size(), ours.tensors().size());
  for (const TensorView& t : theirs.tensors()) {
    const TensorView* u = Find(ours, t.name);
    ASSERT_NE(u, nullptr) << t.name;
    EXPECT_EQ(u->dtype, t.dtype) << t.name;
    EXPECT_EQ(u->shape, t.shape) << t.name;
    ASSERT_EQ(u->nbytes, t.nbytes) << t.name;
    EXPECT_EQ(std::memcmp(u->data, t.data, t.nbytes), 0) << t.name;
  }
  for (const auto& [key, value] : theirs.metadata()) {
    if (key == "general.name" || key == "general.type") continue;
    const GgufValue* v = ours.Find(key);
    ASSERT_NE(v, nullptr) << key;
    EXPECT_TRUE(*v == value) << key << ": ours " << v->Describe()
                             << ", llama.cpp's " << value.Describe();
  }
}

// The Q8_0 file: our quantizer makes gguf-py's bytes, and the model loads.
TEST(GgufFixture, Q8FileMatchesOurQuantizer) {
  test::TempDir dir;
  ConvertOptions o;
  o.outtype = "q8_0";
  ConvertModel(kFixtures + "llada_twin", dir / "ours.gguf", o);
  GgufFile theirs(kFixtures + "llada_q8_0.gguf"), ours(dir / "ours.gguf");
  for (const TensorView& t : theirs.tensors()) {
    const TensorView* u = Find(ours, t.name);
    ASSERT_NE(u, nullptr) << t.name;
    EXPECT_EQ(DTypeName(u->dtype), std::string(DTypeName(t.dtype))) << t.name;
    ASSERT_EQ(u->nbytes, t.nbytes) << t.name;
    EXPECT_EQ(std::memcmp(u->data, t.data, t.nbytes), 0) << t.name;
  }
  auto gg = Model::Load(kFixtures + "llada_q8_0.gguf");
  EXPECT_EQ(gg->weights_dtype(), "Q8_0");
  auto twin = Model::Load(kFixtures + "llada_twin");
  EXPECT_TRUE(SameConfig(gg->config(), twin->config()));
}

// Q8_0 weights give logits near the F16 folder's (measured: 0.065 at most on
// logits up to 2.7; llama.cpp's own Q8_0 forward of the same file differs
// from ours by 0.042, both quantizing activations differently).
TEST(GgufFixture, Q8LogitsAreNearTheFolders) {
  auto twin = Model::Load(kFixtures + "llada_twin");
  auto gg = Model::Load(kFixtures + "llada_q8_0.gguf");
  std::vector<int32_t> ids = {281, 40, 282, 282, 7, 100, 260, 282, 3};
  const std::vector<float> a = Logits(*twin, ids), b = Logits(*gg, ids);
  const int64_t V = twin->config().vocab_size;
  float worst = 0;
  int same_top = 0;
  for (size_t r = 0; r < ids.size(); ++r) {
    int64_t ta = 0, tb = 0;
    for (int64_t v = 0; v < V; ++v) {
      worst = std::max(worst, std::abs(a[r * V + v] - b[r * V + v]));
      if (a[r * V + v] > a[r * V + ta]) ta = v;
      if (b[r * V + v] > b[r * V + tb]) tb = v;
    }
    same_top += ta == tb;
  }
  EXPECT_LT(worst, 0.15f);
  EXPECT_GE(same_top, int(ids.size()) - 1);
}

// The engine reads the tokenizer (tokenizer.ggml.* arrays only, as
// llama.cpp writes them), chat template and special ids from the file and
// encodes as the folder's tokenizer.json does.
TEST(GgufFixture, EngineReadsTokenizerAndTemplateFromTheArrays) {
  auto twin = Engine::Load(kFixtures + "llada_twin");
  auto gg = Engine::Load(kFixtures + "llada_f16.gguf");
  ASSERT_TRUE(gg->tokenizer().loaded());
  EXPECT_EQ(gg->tokenizer().vocab_size(), twin->tokenizer().vocab_size());
  for (const char* text :
       {"ROMEO: But soft, what light through yonder window breaks?",
        "the then there 123 4567  \n\n tabs\tand <|mask|><custom> "
        "<|eot_id|>",
        "Unicode: caf\xC3\xA9 \xE2\x9C\x85 \xF0\x9F\xA6\x99!", ""}) {
    EXPECT_EQ(gg->Encode(text, true, "t"), twin->Encode(text, true, "t"))
        << text;
    EXPECT_EQ(gg->Encode(text, false, "t"), twin->Encode(text, false, "t"))
        << text;
    const std::vector<int32_t> ids = twin->Encode(text, false, "t");
    EXPECT_EQ(gg->Decode(ids), twin->Decode(ids));
  }
  // add_bos_token: the text starts with <|startoftext|>.
  EXPECT_EQ(gg->Encode("x", true, "t")[0], 281);
  const std::string chat =
      R"([{"role":"user","content":"Who is there?"},{"role":"assistant","content":"Romeo"}])";
  EXPECT_EQ(gg->EncodeChat(chat), twin->EncodeChat(chat));
  EXPECT_EQ(gg->chat_template().source(), twin->chat_template().source());
  EXPECT_EQ(gg->eos_ids(), twin->eos_ids());
  EXPECT_EQ(gg->config().eos_token_id, 280);
}

// A folder -> GGUF file carries the tokenizer (both forms), the chat
// template and the generation defaults; the engine reads them back.
TEST(GgufEngine, ConvertedFileCarriesTokenizerTemplateAndDefaults) {
  test::TempDir dir;
  const std::string shipped =
      std::string(DLLM_SOURCE_DIR) + "/models/shakespeare-mdm";
  ModelConfig c = TinyConfig(Arch::kLLaDA);
  c.vocab_size = 2048, c.mask_token_id = 1, c.eos_token_id = 0;
  InitRandomModel(c, dir / "hf", "F32", 4, 0.1f);
  for (const char* f :
       {"tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    WriteFileAtomic(dir / (std::string("hf/") + f),
                    ReadFileToString(shipped + "/" + f).data(),
                    ReadFileToString(shipped + "/" + f).size());
  ConvertResult r = ConvertModel(dir / "hf", dir / "m.gguf");
  EXPECT_TRUE(r.warnings.empty()) << r.warnings[0];
  GgufFile f(dir / "m.gguf");
  EXPECT_EQ(f.GetString("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.GetString("tokenizer.ggml.pre"), "llama-bpe");
  EXPECT_EQ(f.GetStrings("tokenizer.ggml.tokens").size(), 2048u);
  EXPECT_TRUE(f.Find("tokenizer.huggingface.json") != nullptr);
  EXPECT_TRUE(f.Find("tokenizer.chat_template") != nullptr);
  EXPECT_TRUE(f.Find("dllm.generation_config") != nullptr);

  auto hf = Engine::Load(dir / "hf");
  auto gg = Engine::Load(dir / "m.gguf");
  const std::string text = "ROMEO:\nWhat say'st thou? 1234 caf\xC3\xA9";
  EXPECT_EQ(gg->Encode(text, true, "t"), hf->Encode(text, true, "t"));
  EXPECT_EQ(gg->chat_template().source(), hf->chat_template().source());
  EXPECT_EQ(gg->eos_ids(), hf->eos_ids());
  const GenerateOptions &a = hf->DefaultOptions(), &b = gg->DefaultOptions();
  EXPECT_EQ(a.gen_length, b.gen_length);
  EXPECT_EQ(a.steps, b.steps);
  EXPECT_EQ(a.temperature, b.temperature);
  EXPECT_EQ(a.block_length, b.block_length);

  // The same tokenizer from the arrays alone (llama.cpp's form).
  Rewrite(dir / "m.gguf", dir / "arrays.gguf",
          [](GgufMetadata& m, std::vector<TensorToWrite>&) {
            Erase(m, "tokenizer.huggingface.json");
          });
  auto arrays = Engine::Load(dir / "arrays.gguf");
  EXPECT_EQ(arrays->Encode(text, true, "t"), hf->Encode(text, true, "t"));

  // GGUF -> folder gives back files the engine reads the same way.
  ConvertModel(dir / "arrays.gguf", dir / "back");
  auto back = Engine::Load(dir / "back");
  EXPECT_EQ(back->Encode(text, true, "t"), hf->Encode(text, true, "t"));
  EXPECT_EQ(back->chat_template().source(), hf->chat_template().source());
  EXPECT_EQ(back->DefaultOptions().gen_length, a.gen_length);
  EXPECT_EQ(back->eos_ids(), hf->eos_ids());

  // Without a tokenizer the engine says where it looked.
  Rewrite(dir / "arrays.gguf", dir / "none.gguf",
          [](GgufMetadata& m, std::vector<TensorToWrite>&) {
            for (size_t i = m.size(); i-- > 0;)
              if (m[i].first.rfind("tokenizer.ggml.t", 0) == 0 ||
                  m[i].first == "tokenizer.ggml.merges")
                m.erase(m.begin() + long(i));
          });
  auto none = Engine::Load(dir / "none.gguf");
  EXPECT_FALSE(none->tokenizer().loaded());
  EXPECT_DLLM_ERROR(none->Encode("x", true, "-p TEXT"),
                    "no tokenizer in this GGUF file, so -p TEXT cannot be "
                    "encoded");
}

}  // namespace
}  // namespace dllm
