#include "model_shape.h"

#include "base/error.h"

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
  c->arch = Arch::kLLaDA;
  c->n_layers = int(a.GetInt("--layers"));
  c->d_model = int(a.GetInt("--d-model"));
  c->n_heads = int(a.GetInt("--heads"));
  c->n_kv_heads =
      a.Has("--kv-heads") ? int(a.GetInt("--kv-heads")) : c->n_heads;
  DLLM_CHECK(c->n_layers >= 1 && c->d_model >= 2 && c->n_heads >= 1 &&
                 c->n_kv_heads >= 1 && c->d_model % c->n_heads == 0 &&
                 (c->d_model / c->n_heads) % 2 == 0 &&
                 c->n_heads % c->n_kv_heads == 0,
             "bad model shape: --d-model must split into --heads heads of even "
             "size, and "
             "--heads must be a multiple of --kv-heads");
  c->head_dim = c->d_model / c->n_heads;
  c->d_ff = a.Has("--ffn") ? int(a.GetInt("--ffn"))
                           : (8 * c->d_model / 3 + 63) / 64 * 64;
  DLLM_CHECK(c->d_ff >= 1, "--ffn must be positive");
  c->rope_theta = a.GetDouble("--rope-theta");
  c->tie_embeddings = a.GetFlag("--tied");
  c->qkv_bias = a.GetFlag("--qkv-bias");
}

}  // namespace dllm::cli
