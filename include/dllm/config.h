// Model hyper-parameters, read from a Hugging Face config.json. LLaDA and
// Dream are one transformer with switches (DESIGN.md "Architectures as data").
#pragma once

#include <cstdint>
#include <string>

namespace dllm {

enum class Arch { kLLaDA, kDream };

struct ModelConfig {
  Arch arch = Arch::kLLaDA;
  int n_layers = 0;
  int d_model = 0;     // C
  int n_heads = 0;     // query heads
  int n_kv_heads = 0;  // key/value heads (GQA when < n_heads)
  int head_dim = 0;    // d_model / n_heads
  int d_ff = 0;        // SwiGLU hidden size
  int vocab_size = 0;  // rows of the embedding and of the output head
  int max_seq_len = 0;
  float rms_eps = 1e-5f;
  double rope_theta = 10000.0;
  bool qkv_bias = false;
  bool tie_embeddings = false;
  bool causal = false;  // our extension: AR twins of diffusion models
  // Block diffusion (BD3-LM, Fast-dLLM v2, SDAR): attention is block-causal,
  // key j visible to query i iff j / block_size <= i / block_size. 0 = off
  // (full attention). Our extension key "block_size"; bidirectional only.
  int block_size = 0;
  bool shift_logits = false;  // Dream: logits at i predict token i+1
  int32_t mask_token_id = -1;
  int32_t eos_token_id = -1;
  int32_t bos_token_id = -1;
  int32_t pad_token_id = -1;

  // Parameter count (tied head counted once).
  int64_t NumParams() const;
  // Matmul FLOPs of one forward over `tokens` tokens with `logit_rows` rows
  // of output head (2 per multiply-add; attention over `ctx` keys).
  double ForwardFlops(int64_t tokens, int64_t ctx, int64_t logit_rows) const;
};

const char* ArchName(Arch a);

// Parses config.json text; `origin` names the file in errors. Checks that
// every needed field is present, of the right type and sane.
ModelConfig ParseModelConfig(const std::string& text,
                             const std::string& origin);
ModelConfig LoadModelConfig(const std::string& path);

// Writes config.json in the layout of the architecture's published models
// (LLaDA's or Dream's field names), so that other tools can read it.
std::string ModelConfigToJson(const ModelConfig& c);

}  // namespace dllm
