#include "model/weights.h"

namespace dllm {

namespace {

// What each tensor of a layer is, so that one list of slots serves every
// name table.
enum class Slot {
  kAttnNorm,
  kWq,
  kWk,
  kWv,
  kBq,
  kBk,
  kBv,
  kWo,
  kFfnNorm,
  kGate,
  kUp,
  kDown
};

std::string LayerTensorName(const ModelConfig& c, NameTable names, int i,
                            Slot s) {
  const std::string n = std::to_string(i);
  if (names == NameTable::kGguf) {
    const std::string p = "blk." + n + ".";
    switch (s) {
      case Slot::kAttnNorm:
        return p + "attn_norm.weight";
      case Slot::kWq:
        return p + "attn_q.weight";
      case Slot::kWk:
        return p + "attn_k.weight";
      case Slot::kWv:
        return p + "attn_v.weight";
      case Slot::kBq:
        return p + "attn_q.bias";
      case Slot::kBk:
        return p + "attn_k.bias";
      case Slot::kBv:
        return p + "attn_v.bias";
      case Slot::kWo:
        return p + "attn_output.weight";
      case Slot::kFfnNorm:
        return p + "ffn_norm.weight";
      case Slot::kGate:
        return p + "ffn_gate.weight";
      case Slot::kUp:
        return p + "ffn_up.weight";
      case Slot::kDown:
        return p + "ffn_down.weight";
    }
  }
  if (c.arch == Arch::kLLaDA) {
    const std::string p = "model.transformer.blocks." + n + ".";
    switch (s) {
      case Slot::kAttnNorm:
        return p + "attn_norm.weight";
      case Slot::kWq:
        return p + "q_proj.weight";
      case Slot::kWk:
        return p + "k_proj.weight";
      case Slot::kWv:
        return p + "v_proj.weight";
      case Slot::kBq:
        return p + "q_proj.bias";
      case Slot::kBk:
        return p + "k_proj.bias";
      case Slot::kBv:
        return p + "v_proj.bias";
      case Slot::kWo:
        return p + "attn_out.weight";
      case Slot::kFfnNorm:
        return p + "ff_norm.weight";
      case Slot::kGate:
        return p + "ff_proj.weight";
      case Slot::kUp:
        return p + "up_proj.weight";
      case Slot::kDown:
        return p + "ff_out.weight";
    }
  }
  const std::string p = "model.layers." + n + ".";
  switch (s) {
    case Slot::kAttnNorm:
      return p + "input_layernorm.weight";
    case Slot::kWq:
      return p + "self_attn.q_proj.weight";
    case Slot::kWk:
      return p + "self_attn.k_proj.weight";
    case Slot::kWv:
      return p + "self_attn.v_proj.weight";
    case Slot::kBq:
      return p + "self_attn.q_proj.bias";
    case Slot::kBk:
      return p + "self_attn.k_proj.bias";
    case Slot::kBv:
      return p + "self_attn.v_proj.bias";
    case Slot::kWo:
      return p + "self_attn.o_proj.weight";
    case Slot::kFfnNorm:
      return p + "post_attention_layernorm.weight";
    case Slot::kGate:
      return p + "mlp.gate_proj.weight";
    case Slot::kUp:
      return p + "mlp.up_proj.weight";
    case Slot::kDown:
      return p + "mlp.down_proj.weight";
  }
  return "";
}

std::string FinalNormName(const ModelConfig& c, NameTable names) {
  if (names == NameTable::kGguf) return "output_norm.weight";
  return c.arch == Arch::kLLaDA ? "model.transformer.ln_f.weight"
                                : "model.norm.weight";
}

}  // namespace

std::string EmbeddingName(const ModelConfig& c, NameTable names) {
  if (names == NameTable::kGguf) return "token_embd.weight";
  return c.arch == Arch::kLLaDA ? "model.transformer.wte.weight"
                                : "model.embed_tokens.weight";
}

std::string OutputHeadName(const ModelConfig& c, NameTable names) {
  if (names == NameTable::kGguf) return "output.weight";
  return c.arch == Arch::kLLaDA ? "model.transformer.ff_out.weight"
                                : "lm_head.weight";
}

void ForEachTensor(const ModelConfig& c, Weights& w, const TensorVisitor& visit,
                   NameTable names) {
  const int64_t C = c.d_model, V = c.vocab_size, F = c.d_ff;
  const int64_t Q = int64_t(c.n_heads) * c.head_dim,
                KV = int64_t(c.n_kv_heads) * c.head_dim;
  w.layers.resize(size_t(c.n_layers));
  visit(EmbeddingName(c, names), {V, C}, TensorRole::kEmbedding, w.embed);
  for (int i = 0; i < c.n_layers; ++i) {
    LayerWeights& L = w.layers[size_t(i)];
    auto name = [&](Slot s) { return LayerTensorName(c, names, i, s); };
    visit(name(Slot::kAttnNorm), {C}, TensorRole::kNorm, L.attn_norm);
    visit(name(Slot::kWq), {Q, C}, TensorRole::kMatrix, L.wq);
    visit(name(Slot::kWk), {KV, C}, TensorRole::kMatrix, L.wk);
    visit(name(Slot::kWv), {KV, C}, TensorRole::kMatrix, L.wv);
    if (c.qkv_bias) {
      visit(name(Slot::kBq), {Q}, TensorRole::kBias, L.bq);
      visit(name(Slot::kBk), {KV}, TensorRole::kBias, L.bk);
      visit(name(Slot::kBv), {KV}, TensorRole::kBias, L.bv);
    }
    visit(name(Slot::kWo), {C, Q}, TensorRole::kMatrix, L.wo);
    visit(name(Slot::kFfnNorm), {C}, TensorRole::kNorm, L.ffn_norm);
    visit(name(Slot::kGate), {F, C}, TensorRole::kMatrix, L.w_gate);
    visit(name(Slot::kUp), {F, C}, TensorRole::kMatrix, L.w_up);
    visit(name(Slot::kDown), {C, F}, TensorRole::kMatrix, L.w_down);
  }
  visit(FinalNormName(c, names), {C}, TensorRole::kNorm, w.final_norm);
  if (!c.tie_embeddings)
    visit(OutputHeadName(c, names), {V, C}, TensorRole::kMatrix, w.lm_head);
}

int RopeHeads(const ModelConfig& c, const Weights& w, const Tensor& t) {
  for (const LayerWeights& L : w.layers) {
    if (&t == &L.wq || &t == &L.bq) return c.n_heads;
    if (&t == &L.wk || &t == &L.bk) return c.n_kv_heads;
  }
  return 0;
}

}  // namespace dllm
