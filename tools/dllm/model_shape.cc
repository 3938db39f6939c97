#include "model_shape.h"

#include "dllm/error.h"

namespace dllm::cli {

void AddShapeOptions(Args& a, const ShapeDefaults& d) {
  a.Option("--layers", "N", "transformer blocks", d.layers);
  a.Option("--d-model", "N", "hidden size", d.d_model);
  a.Option("--heads", "N", "attention heads", d.heads);
  a.Option("--kv-heads", "N", "key/value heads (default: --heads)");
  a.Option("--ffn", "N",
           "SwiGLU hidden size (default: 8/3 d_model rounded up to 64)");
  a.Option("--rope-theta", "X", "RoPE base", "10000");
  a.Flag("--tied", "tie the output head to the embedding");
  a.Flag("--qkv-bias",
         "biases on the query/key/value projections (a content-free key lets "
         "RoPE attend by position)");
}

void ReadShape(const Args& a, ModelConfig* c) {
  // The ranges config.json allows, so that each option is named when out of
  // range (rather than a derived one, or an overflow).
  constexpr int64_t kMaxDim = 1 << 20;
  c->arch = Arch::kLLaDA;
  c->n_layers = int(a.GetInt("--layers", 1, 4096));
  c->d_model = int(a.GetInt("--d-model", 2, kMaxDim));
  c->n_heads = int(a.GetInt("--heads", 1, 4096));
  c->n_kv_heads =
      a.Has("--kv-heads") ? int(a.GetInt("--kv-heads", 1, 4096)) : c->n_heads;
  DLLM_USAGE_CHECK(
      c->d_model % c->n_heads == 0 && (c->d_model / c->n_heads) % 2 == 0,
      "bad model shape: --d-model ", c->d_model, " must split into --heads ",
      c->n_heads, " heads of even size");
  DLLM_USAGE_CHECK(c->n_heads % c->n_kv_heads == 0, "bad model shape: --heads ",
                   c->n_heads, " must be a multiple of --kv-heads ",
                   c->n_kv_heads);
  c->head_dim = c->d_model / c->n_heads;
  if (a.Has("--ffn")) {
    c->d_ff = int(a.GetInt("--ffn", 1, kMaxDim));
  } else {
    const int64_t ffn = (8 * int64_t(c->d_model) / 3 + 63) / 64 * 64;
    DLLM_USAGE_CHECK(ffn <= kMaxDim, "--d-model ", c->d_model,
                     " is too large: its SwiGLU width ", ffn, " exceeds ",
                     kMaxDim, " (give a smaller --d-model, or --ffn)");
    c->d_ff = int(ffn);
  }
  c->rope_theta = a.GetDouble("--rope-theta", 1, 1e12);
  c->tie_embeddings = a.GetFlag("--tied");
  c->qkv_bias = a.GetFlag("--qkv-bias");
}

std::vector<std::string> GivenShapeOptions(const Args& a) {
  std::vector<std::string> given;
  for (const char* name : {"--layers", "--d-model", "--heads", "--kv-heads",
                           "--ffn", "--rope-theta", "--tied", "--qkv-bias"})
    if (a.Has(name)) given.push_back(name);
  return given;
}

}  // namespace dllm::cli
