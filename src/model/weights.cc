#include "model/weights.h"

namespace dllm {

std::string EmbeddingName(const ModelConfig& c) {
  return c.arch == Arch::kLLaDA ? "model.transformer.wte.weight"
                                : "model.embed_tokens.weight";
}

std::string OutputHeadName(const ModelConfig& c) {
  return c.arch == Arch::kLLaDA ? "model.transformer.ff_out.weight"
                                : "lm_head.weight";
}

void ForEachTensor(const ModelConfig& c, Weights& w,
                   const TensorVisitor& visit) {
  const int64_t C = c.d_model, V = c.vocab_size, F = c.d_ff;
  const int64_t Q = int64_t(c.n_heads) * c.head_dim,
                KV = int64_t(c.n_kv_heads) * c.head_dim;
  w.layers.resize(size_t(c.n_layers));
  const bool llada = c.arch == Arch::kLLaDA;
  const std::string root = llada ? "model.transformer." : "model.";
  visit(EmbeddingName(c), {V, C}, TensorRole::kEmbedding, w.embed);
  for (int i = 0; i < c.n_layers; ++i) {
    LayerWeights& L = w.layers[size_t(i)];
    const std::string p =
        root + (llada ? "blocks." : "layers.") + std::to_string(i) + ".";
    if (llada) {
      visit(p + "attn_norm.weight", {C}, TensorRole::kNorm, L.attn_norm);
      visit(p + "q_proj.weight", {Q, C}, TensorRole::kMatrix, L.wq);
      visit(p + "k_proj.weight", {KV, C}, TensorRole::kMatrix, L.wk);
      visit(p + "v_proj.weight", {KV, C}, TensorRole::kMatrix, L.wv);
      if (c.qkv_bias) {
        visit(p + "q_proj.bias", {Q}, TensorRole::kBias, L.bq);
        visit(p + "k_proj.bias", {KV}, TensorRole::kBias, L.bk);
        visit(p + "v_proj.bias", {KV}, TensorRole::kBias, L.bv);
      }
      visit(p + "attn_out.weight", {C, Q}, TensorRole::kMatrix, L.wo);
      visit(p + "ff_norm.weight", {C}, TensorRole::kNorm, L.ffn_norm);
      visit(p + "ff_proj.weight", {F, C}, TensorRole::kMatrix, L.w_gate);
      visit(p + "up_proj.weight", {F, C}, TensorRole::kMatrix, L.w_up);
      visit(p + "ff_out.weight", {C, F}, TensorRole::kMatrix, L.w_down);
    } else {
      visit(p + "input_layernorm.weight", {C}, TensorRole::kNorm, L.attn_norm);
      visit(p + "self_attn.q_proj.weight", {Q, C}, TensorRole::kMatrix, L.wq);
      visit(p + "self_attn.k_proj.weight", {KV, C}, TensorRole::kMatrix, L.wk);
      visit(p + "self_attn.v_proj.weight", {KV, C}, TensorRole::kMatrix, L.wv);
      if (c.qkv_bias) {
        visit(p + "self_attn.q_proj.bias", {Q}, TensorRole::kBias, L.bq);
        visit(p + "self_attn.k_proj.bias", {KV}, TensorRole::kBias, L.bk);
        visit(p + "self_attn.v_proj.bias", {KV}, TensorRole::kBias, L.bv);
      }
      visit(p + "self_attn.o_proj.weight", {C, Q}, TensorRole::kMatrix, L.wo);
      visit(p + "post_attention_layernorm.weight", {C}, TensorRole::kNorm,
            L.ffn_norm);
      visit(p + "mlp.gate_proj.weight", {F, C}, TensorRole::kMatrix, L.w_gate);
      visit(p + "mlp.up_proj.weight", {F, C}, TensorRole::kMatrix, L.w_up);
      visit(p + "mlp.down_proj.weight", {C, F}, TensorRole::kMatrix, L.w_down);
    }
  }
  visit(root + (llada ? "ln_f.weight" : "norm.weight"), {C}, TensorRole::kNorm,
        w.final_norm);
  if (!c.tie_embeddings)
    visit(OutputHeadName(c), {V, C}, TensorRole::kMatrix, w.lm_head);
}

}  // namespace dllm
