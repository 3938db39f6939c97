#include "model/gguf_model.h"

#include <cmath>
#include <cstring>

#include "dllm/error.h"
#include "model/weights.h"

namespace dllm {

namespace {

constexpr int64_t kMaxDim = 1 << 20;

// A key that may be one number or one per layer (llama.cpp's
// get_key_or_arr); we run models whose layers all agree.
int64_t PerLayer(const GgufFile& f, const std::string& key, int n_layers,
                 int64_t def, int64_t lo, int64_t hi) {
  const GgufValue* v = f.Find(key);
  if (!v) {
    DLLM_CHECK(def >= 0, f.path(), ": missing metadata '", key, "'");
    return def;
  }
  if (!v->is_array()) return f.GetInt(key, lo, hi);
  DLLM_CHECK(v->elem != GgufType::kString && v->elem != GgufType::kArray &&
                 v->elem != GgufType::kF32 && v->elem != GgufType::kF64 &&
                 v->elem != GgufType::kBool,
             f.path(), ": metadata '", key,
             "' must be an integer or an array of integers, got ",
             v->Describe());
  DLLM_CHECK(v->size() == size_t(n_layers), f.path(), ": metadata '", key,
             "' has ", v->size(), " entries for ", n_layers, " layers");
  for (size_t i = 0; i < v->size(); ++i)
    DLLM_CHECK(v->ints[i] == v->ints[0], f.path(), ": metadata '", key,
               "' differs between layers (", v->ints[0], " at layer 0, ",
               v->ints[i], " at layer ", i,
               "): models whose layers differ in shape are not supported");
  const int64_t x = int64_t(v->ints.empty() ? 0 : v->ints[0]);
  DLLM_CHECK(x >= lo && x <= hi, f.path(), ": metadata '", key, "' = ", x,
             " is out of range [", lo, ", ", hi, "]");
  return x;
}

double RequiredNumber(const GgufFile& f, const std::string& key, double lo,
                      double hi) {
  DLLM_CHECK(f.Find(key) != nullptr, f.path(), ": missing metadata '", key,
             "'");
  return f.GetNumberOr(key, 0, lo, hi);
}

const TensorView* FindTensor(const GgufFile& f, const std::string& name) {
  for (const TensorView& t : f.tensors())
    if (t.name == name) return &t;
  return nullptr;
}

// A token id key: -1 when absent, else an id inside the vocabulary.
int32_t TokenIdKey(const GgufFile& f, const std::string& key, int vocab) {
  return int32_t(f.GetIntOr(key, -1, 0, int64_t(vocab) - 1));
}

}  // namespace

std::string GgufArchName(const ModelConfig& c) {
  if (c.causal) return c.arch == Arch::kLLaDA ? "llama" : "qwen2";
  return c.arch == Arch::kLLaDA ? "llada" : "dream";
}

bool GgufArchPermutesQK(const std::string& arch) {
  return arch == "llada" || arch == "llama";
}

ModelConfig ConfigFromGguf(const GgufFile& f) {
  const std::string& origin = f.path();
  const std::string arch = f.GetString("general.architecture");
  ModelConfig c;
  bool diffusion = true;
  if (arch == "llada") {
    c.arch = Arch::kLLaDA;
  } else if (arch == "dream") {
    c.arch = Arch::kDream;
  } else if (arch == "llama") {
    c.arch = Arch::kLLaDA, diffusion = false;
  } else if (arch == "qwen2") {
    c.arch = Arch::kDream, diffusion = false;
  } else {
    Fail(origin, ": general.architecture '", arch,
         "' is not supported (expected llada or dream, or llama or qwen2 for "
         "causal models of the same shape)");
  }
  const std::string A = arch + ".";
  c.d_model = int(f.GetInt(A + "embedding_length", 1, kMaxDim));
  c.n_layers = int(f.GetInt(A + "block_count", 1, 4096));
  c.n_heads =
      int(PerLayer(f, A + "attention.head_count", c.n_layers, -1, 1, 4096));
  c.n_kv_heads = int(PerLayer(f, A + "attention.head_count_kv", c.n_layers,
                              c.n_heads, 1, 4096));
  c.d_ff =
      int(PerLayer(f, A + "feed_forward_length", c.n_layers, -1, 1, kMaxDim));
  c.max_seq_len = int(f.GetInt(A + "context_length", 1, 1 << 24));
  c.rms_eps =
      float(RequiredNumber(f, A + "attention.layer_norm_rms_epsilon", 0, 1));
  c.rope_theta = f.GetNumberOr(A + "rope.freq_base", 10000.0, 1.0, 1e12);
  const std::string scaling = f.GetStringOr(A + "rope.scaling.type", "none");
  const double factor = f.GetNumberOr(A + "rope.scaling.factor", 0, 0, 1e9);
  DLLM_CHECK((scaling == "none" || scaling == "linear") &&
                 (factor == 0 || factor == 1),
             origin, ": RoPE scaling (", A, "rope.scaling.type '", scaling,
             "', factor ", factor, ") is not supported");
  if (f.Find(A + "attention.key_length")) {
    c.head_dim = int(f.GetInt(A + "attention.key_length", 1, 4096));
  } else {
    DLLM_CHECK(c.d_model % c.n_heads == 0, origin, ": ", A, "embedding_length ",
               c.d_model, " is not divisible by the number of heads ",
               c.n_heads);
    c.head_dim = c.d_model / c.n_heads;
  }
  const int64_t vlen =
      f.GetIntOr(A + "attention.value_length", c.head_dim, 1, 4096);
  DLLM_CHECK(vlen == c.head_dim, origin, ": ", A, "attention.value_length ",
             vlen, " differs from the key length ", c.head_dim,
             " (not supported)");
  const int64_t rot =
      f.GetIntOr(A + "rope.dimension_count", c.head_dim, 1, 4096);
  DLLM_CHECK(rot == c.head_dim, origin, ": ", A, "rope.dimension_count ", rot,
             " rotates only part of the head of ", c.head_dim,
             " (partial RoPE is not supported)");
  DLLM_CHECK(c.head_dim % 2 == 0, origin, ": head dimension ", c.head_dim,
             " must be even for RoPE");
  DLLM_CHECK(c.n_heads % c.n_kv_heads == 0, origin, ": ", c.n_heads,
             " query heads are not a multiple of ", c.n_kv_heads,
             " key/value heads");

  const TensorView* embd = FindTensor(f, "token_embd.weight");
  DLLM_CHECK(embd != nullptr && embd->shape.size() == 2, origin,
             ": tensor 'token_embd.weight' (the embedding) is ",
             embd ? "not a matrix" : "missing");
  DLLM_CHECK(embd->shape[0] >= 1 && embd->shape[0] <= (1 << 24), origin,
             ": tensor 'token_embd.weight' has ", embd->shape[0],
             " rows (a vocabulary of 1 to 2^24 tokens expected)");
  c.vocab_size = int(embd->shape[0]);
  const int64_t vocab_key =
      f.GetIntOr(A + "vocab_size", c.vocab_size, 1, 1 << 24);
  DLLM_CHECK(vocab_key == c.vocab_size, origin, ": ", A, "vocab_size ",
             vocab_key, " differs from the ", c.vocab_size,
             " rows of token_embd.weight");
  c.qkv_bias = FindTensor(f, "blk.0.attn_q.bias") != nullptr;
  c.tie_embeddings = FindTensor(f, "output.weight") == nullptr;

  // llama.cpp runs llada and dream bidirectionally whatever the file says;
  // llama and qwen2 follow attention.causal (default causal).
  c.causal = diffusion ? false : f.GetBoolOr(A + "attention.causal", true);
  c.shift_logits =
      diffusion ? f.GetBoolOr("diffusion.shift_logits", c.arch == Arch::kDream)
                : c.arch == Arch::kDream;
  c.block_size = int(f.GetIntOr("dllm.block_size", 0, 0, 1 << 24));
  DLLM_CHECK(c.block_size == 0 || !c.causal, origin, ": dllm.block_size ",
             c.block_size,
             " is for bidirectional (block-diffusion) models, but the model "
             "is causal");

  c.mask_token_id = TokenIdKey(f, "tokenizer.ggml.mask_token_id", c.vocab_size);
  if (c.mask_token_id < 0 && diffusion) {
    // The published models' mask ids, when the vocabulary has them.
    const int32_t def = c.arch == Arch::kLLaDA ? 126336 : 151666;
    if (def < c.vocab_size) c.mask_token_id = def;
  }
  c.eos_token_id = TokenIdKey(f, "tokenizer.ggml.eos_token_id", c.vocab_size);
  c.bos_token_id = TokenIdKey(f, "tokenizer.ggml.bos_token_id", c.vocab_size);
  c.pad_token_id =
      TokenIdKey(f, "tokenizer.ggml.padding_token_id", c.vocab_size);
  return c;
}

void AddConfigMetadata(const ModelConfig& c, GgufMetadata* m) {
  const std::string arch = GgufArchName(c);
  const std::string A = arch + ".";
  auto u32 = [&](const std::string& k, int64_t v) {
    m->emplace_back(k, GgufValue::U32(uint32_t(v)));
  };
  m->emplace_back("general.architecture", GgufValue::String(arch));
  u32(A + "vocab_size", c.vocab_size);
  u32(A + "context_length", c.max_seq_len);
  u32(A + "embedding_length", c.d_model);
  u32(A + "block_count", c.n_layers);
  u32(A + "feed_forward_length", c.d_ff);
  u32(A + "attention.head_count", c.n_heads);
  u32(A + "attention.head_count_kv", c.n_kv_heads);
  m->emplace_back(A + "attention.layer_norm_rms_epsilon",
                  GgufValue::F32(c.rms_eps));
  m->emplace_back(A + "rope.freq_base", GgufValue::F32(float(c.rope_theta)));
  u32(A + "rope.dimension_count", c.head_dim);
  if (c.d_model % c.n_heads != 0 || c.d_model / c.n_heads != c.head_dim) {
    u32(A + "attention.key_length", c.head_dim);
    u32(A + "attention.value_length", c.head_dim);
  }
  m->emplace_back(A + "attention.causal", GgufValue::Bool(c.causal));
  if (!c.causal)
    m->emplace_back("diffusion.shift_logits", GgufValue::Bool(c.shift_logits));
  if (c.block_size > 0) u32("dllm.block_size", c.block_size);
  if (c.mask_token_id >= 0)
    u32("tokenizer.ggml.mask_token_id", c.mask_token_id);
  if (c.eos_token_id >= 0) u32("tokenizer.ggml.eos_token_id", c.eos_token_id);
  if (c.bos_token_id >= 0) u32("tokenizer.ggml.bos_token_id", c.bos_token_id);
  if (c.pad_token_id >= 0)
    u32("tokenizer.ggml.padding_token_id", c.pad_token_id);
}

void PermuteRopeRows(const void* src, void* dst, int64_t rows, size_t row_bytes,
                     int64_t n_heads, bool to_gguf) {
  DLLM_ASSERT(n_heads > 0 && rows % n_heads == 0);
  const int64_t hd = rows / n_heads, half = hd / 2;
  DLLM_ASSERT(hd % 2 == 0);
  const uint8_t* s = static_cast<const uint8_t*>(src);
  uint8_t* d = static_cast<uint8_t*>(dst);
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t j = 0; j < half; ++j)
      for (int64_t i = 0; i < 2; ++i) {
        const int64_t interleaved = h * hd + 2 * j + i;
        const int64_t rotate_half = h * hd + i * half + j;
        const int64_t from = to_gguf ? rotate_half : interleaved;
        const int64_t to = to_gguf ? interleaved : rotate_half;
        std::memcpy(d + size_t(to) * row_bytes, s + size_t(from) * row_bytes,
                    row_bytes);
      }
}

}  // namespace dllm
