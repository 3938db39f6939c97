#include "dllm/config.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
#include "dllm/error.h"

namespace dllm {

using json = nlohmann::json;

const char* ArchName(Arch a) { return a == Arch::kLLaDA ? "llada" : "dream"; }

int64_t ModelConfig::NumParams() const {
  int64_t C = d_model, kv = int64_t(n_kv_heads) * head_dim,
          q = int64_t(n_heads) * head_dim;
  int64_t per_layer = 2 * C + C * q + 2 * C * kv + q * C + 3 * C * d_ff;
  if (qkv_bias) per_layer += q + 2 * kv;
  int64_t n = int64_t(vocab_size) * C + n_layers * per_layer + C;
  if (!tie_embeddings) n += int64_t(vocab_size) * C;
  return n;
}

double ModelConfig::ForwardFlops(int64_t tokens, int64_t ctx,
                                 int64_t logit_rows) const {
  double C = d_model, q = double(n_heads) * head_dim,
         kv = double(n_kv_heads) * head_dim;
  double linear =
      C * q + 2 * C * kv + q * C + 3 * C * d_ff;  // multiply-adds per token
  double attn = 2.0 * ctx * q;                    // QK^T and PV per token
  return 2.0 * (n_layers * tokens * (linear + attn) +
                double(logit_rows) * C * vocab_size);
}

namespace {

// Field readers that name the file and field in errors.
struct Reader {
  const json& j;
  const std::string& origin;

  bool Has(const char* k) const { return j.contains(k) && !j[k].is_null(); }

  int64_t Int(const char* k, int64_t lo, int64_t hi) const {
    DLLM_CHECK(Has(k), origin, ": missing field '", k, "'");
    const json& v = j[k];
    DLLM_CHECK(v.is_number_integer(), origin, ": field '", k,
               "' must be an integer, got ", v.dump());
    int64_t x = v.get<int64_t>();
    DLLM_CHECK(x >= lo && x <= hi, origin, ": field '", k, "' = ", x,
               " is out of range [", lo, ", ", hi, "]");
    return x;
  }
  int64_t IntOr(const char* k, int64_t def, int64_t lo, int64_t hi) const {
    return Has(k) ? Int(k, lo, hi) : def;
  }
  double Num(const char* k, double lo, double hi) const {
    DLLM_CHECK(Has(k), origin, ": missing field '", k, "'");
    const json& v = j[k];
    DLLM_CHECK(v.is_number(), origin, ": field '", k,
               "' must be a number, got ", v.dump());
    double x = v.get<double>();
    DLLM_CHECK(std::isfinite(x) && x >= lo && x <= hi, origin, ": field '", k,
               "' = ", x, " is out of range [", lo, ", ", hi, "]");
    return x;
  }
  double NumOr(const char* k, double def, double lo, double hi) const {
    return Has(k) ? Num(k, lo, hi) : def;
  }
  bool BoolOr(const char* k, bool def) const {
    if (!Has(k)) return def;
    DLLM_CHECK(j[k].is_boolean(), origin, ": field '", k,
               "' must be true or false, got ", j[k].dump());
    return j[k].get<bool>();
  }
  std::string StrOr(const char* k, const std::string& def) const {
    if (!Has(k)) return def;
    DLLM_CHECK(j[k].is_string(), origin, ": field '", k, "' must be a string");
    return j[k].get<std::string>();
  }
  // eos_token_id may be a list in some configs; take the first.
  int32_t TokenId(const char* k) const {
    if (!Has(k)) return -1;
    const json& v = j[k];
    const json& id = v.is_array() && !v.empty() ? v[0] : v;
    DLLM_CHECK(id.is_number_integer(), origin, ": field '", k,
               "' must be a token id");
    const int64_t x = id.get<int64_t>();
    DLLM_CHECK(x >= -1 && x < (int64_t(1) << 24), origin, ": field '", k,
               "' = ", x, " is not a token id");
    return int32_t(x);
  }
};

constexpr int64_t kMaxDim = 1 << 20;

}  // namespace

ModelConfig ParseModelConfig(const std::string& text,
                             const std::string& origin) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  DLLM_CHECK(!j.is_discarded(), origin, ": not valid JSON");
  DLLM_CHECK(j.is_object(), origin, ": must be a JSON object");
  Reader r{j, origin};
  ModelConfig c;
  std::string type = r.StrOr("model_type", "");
  if (type == "llada" || type == "LLaDA") {
    c.arch = Arch::kLLaDA;
    c.d_model = int(r.Int("d_model", 1, kMaxDim));
    c.n_heads = int(r.Int("n_heads", 1, 4096));
    c.n_kv_heads = int(r.IntOr("n_kv_heads", c.n_heads, 1, 4096));
    c.n_layers = int(r.Int("n_layers", 1, 4096));
    if (r.Has("mlp_hidden_size")) {
      c.d_ff = int(r.Int("mlp_hidden_size", 1, kMaxDim));
    } else {
      c.d_ff = int(r.Int("mlp_ratio", 1, 64) * c.d_model);
    }
    int64_t vocab = r.Int("vocab_size", 1, 1 << 24);
    c.vocab_size = int(r.IntOr("embedding_size", vocab, vocab, 1 << 24));
    c.max_seq_len = int(r.IntOr("max_sequence_length", 4096, 1, 1 << 24));
    c.rms_eps = float(r.NumOr("rms_norm_eps", 1e-5, 0, 1));
    c.rope_theta = r.NumOr("rope_theta", 10000.0, 1.0, 1e12);
    c.qkv_bias =
        r.BoolOr("include_qkv_bias", false) || r.BoolOr("include_bias", false);
    c.tie_embeddings = r.BoolOr("weight_tying", false);
    c.shift_logits = false;
    std::string act = r.StrOr("activation_type", "silu");
    DLLM_CHECK(act == "silu" || act == "swiglu", origin, ": activation_type '",
               act, "' is not supported (expected silu)");
    std::string block = r.StrOr("block_type", "llama");
    DLLM_CHECK(block == "llama", origin, ": block_type '", block,
               "' is not supported (expected llama)");
    DLLM_CHECK(!r.BoolOr("alibi", false), origin,
               ": alibi attention is not supported");
    DLLM_CHECK(r.BoolOr("rope", true), origin,
               ": models without RoPE are not supported");
    DLLM_CHECK(r.StrOr("layer_norm_type", "rms") == "rms", origin,
               ": layer_norm_type must be 'rms'");
    DLLM_CHECK(!r.BoolOr("scale_logits", false), origin,
               ": scale_logits is not supported");
    DLLM_CHECK(!r.BoolOr("input_emb_norm", false), origin,
               ": input_emb_norm is not supported");
    DLLM_CHECK(!r.BoolOr("attention_layer_norm", false), origin,
               ": attention_layer_norm (QK norm) is not supported");
    c.mask_token_id =
        r.Has("mask_token_id") ? r.TokenId("mask_token_id") : 126336;
  } else if (type == "Dream" || type == "dream") {
    c.arch = Arch::kDream;
    c.d_model = int(r.Int("hidden_size", 1, kMaxDim));
    c.n_heads = int(r.Int("num_attention_heads", 1, 4096));
    c.n_kv_heads = int(r.IntOr("num_key_value_heads", c.n_heads, 1, 4096));
    c.n_layers = int(r.Int("num_hidden_layers", 1, 4096));
    c.d_ff = int(r.Int("intermediate_size", 1, kMaxDim));
    c.vocab_size = int(r.Int("vocab_size", 1, 1 << 24));
    c.max_seq_len = int(r.IntOr("max_position_embeddings", 32768, 1, 1 << 24));
    c.rms_eps = float(r.NumOr("rms_norm_eps", 1e-6, 0, 1));
    c.rope_theta = r.NumOr("rope_theta", 10000.0, 1.0, 1e12);
    c.qkv_bias = true;  // Qwen2 always has q/k/v biases
    c.tie_embeddings = r.BoolOr("tie_word_embeddings", false);
    c.shift_logits = true;
    std::string act = r.StrOr("hidden_act", "silu");
    DLLM_CHECK(act == "silu", origin, ": hidden_act '", act,
               "' is not supported (expected silu)");
    c.mask_token_id =
        r.Has("mask_token_id") ? r.TokenId("mask_token_id") : 151666;
  } else {
    Fail(origin, ": model_type '", type,
         "' is not supported (expected 'llada' or 'Dream')");
  }
  if (r.Has("head_dim")) {
    c.head_dim = int(r.Int("head_dim", 1, 4096));
  } else {
    DLLM_CHECK(c.d_model % c.n_heads == 0, origin, ": hidden size ", c.d_model,
               " is not divisible by the number of heads ", c.n_heads);
    c.head_dim = c.d_model / c.n_heads;
  }
  DLLM_CHECK(c.head_dim % 2 == 0, origin, ": head dimension ", c.head_dim,
             " must be even for RoPE");
  DLLM_CHECK(c.n_heads % c.n_kv_heads == 0, origin, ": ", c.n_heads,
             " query heads are not a multiple of ", c.n_kv_heads,
             " key/value heads");
  c.causal = r.BoolOr("causal", false);
  c.block_size = int(r.IntOr("block_size", 0, 1, 1 << 24));  // 0 = absent
  // Causal attention is block-causal with blocks of one already; the two
  // together would be a contradiction, not a refinement.
  DLLM_CHECK(c.block_size == 0 || !c.causal, origin, ": block_size ",
             c.block_size,
             " is for bidirectional (block-diffusion) models, but \"causal\" "
             "is true; drop one of them");
  c.eos_token_id = r.TokenId("eos_token_id");
  c.bos_token_id = r.TokenId("bos_token_id");
  c.pad_token_id = r.TokenId("pad_token_id");
  DLLM_CHECK(c.mask_token_id < c.vocab_size, origin, ": mask_token_id ",
             c.mask_token_id, " is outside the vocabulary of ", c.vocab_size);
  DLLM_CHECK(c.eos_token_id < c.vocab_size, origin, ": eos_token_id ",
             c.eos_token_id, " is outside the vocabulary of ", c.vocab_size);
  return c;
}

ModelConfig LoadModelConfig(const std::string& path) {
  return ParseModelConfig(ReadFileToString(path), path);
}

std::string ModelConfigToJson(const ModelConfig& c) {
  json j;
  if (c.arch == Arch::kLLaDA) {
    j = {{"architectures", {"LLaDAModelLM"}},
         {"model_type", "llada"},
         {"activation_type", "silu"},
         {"block_type", "llama"},
         {"layer_norm_type", "rms"},
         {"rope", true},
         {"rope_full_precision", true},
         {"alibi", false},
         {"scale_logits", false},
         {"input_emb_norm", false},
         {"attention_layer_norm", false},
         {"include_bias", false},
         {"include_qkv_bias", c.qkv_bias},
         {"d_model", c.d_model},
         {"n_heads", c.n_heads},
         {"n_kv_heads", c.n_kv_heads},
         {"n_layers", c.n_layers},
         {"mlp_hidden_size", c.d_ff},
         {"mlp_ratio", std::max(1, c.d_ff / std::max(1, c.d_model))},
         {"vocab_size", c.vocab_size},
         {"embedding_size", c.vocab_size},
         {"max_sequence_length", c.max_seq_len},
         {"rms_norm_eps", c.rms_eps},
         {"rope_theta", c.rope_theta},
         {"weight_tying", c.tie_embeddings},
         {"mask_token_id", c.mask_token_id},
         {"use_cache", false}};
  } else {
    j = {{"architectures", {"DreamModel"}},
         {"model_type", "Dream"},
         {"hidden_act", "silu"},
         {"hidden_size", c.d_model},
         {"num_attention_heads", c.n_heads},
         {"num_key_value_heads", c.n_kv_heads},
         {"num_hidden_layers", c.n_layers},
         {"intermediate_size", c.d_ff},
         {"vocab_size", c.vocab_size},
         {"max_position_embeddings", c.max_seq_len},
         {"rms_norm_eps", c.rms_eps},
         {"rope_theta", c.rope_theta},
         {"tie_word_embeddings", c.tie_embeddings},
         {"mask_token_id", c.mask_token_id},
         {"use_cache", false}};
  }
  if (c.causal) j["causal"] = true;
  if (c.block_size > 0) j["block_size"] = c.block_size;
  if (c.eos_token_id >= 0) j["eos_token_id"] = c.eos_token_id;
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.pad_token_id >= 0) j["pad_token_id"] = c.pad_token_id;
  return j.dump(2) + "\n";
}

}  // namespace dllm
