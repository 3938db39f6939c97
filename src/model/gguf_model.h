// A model in a GGUF file, as llama.cpp's converters write it: the config as
// GGUF metadata (general.architecture and the {arch}.* keys), the tensors
// under llama.cpp's names (NameTable::kGguf), and, for the architectures
// llama.cpp runs with its interleaved RoPE, the rows of wq and wk reordered.
//
// Architectures: "llada" and "dream" are our LLaDA and Dream (bidirectional);
// "llama" and "qwen2" are causal models of the same shapes (the AR twins:
// Arch::kLLaDA and Arch::kDream with causal attention). Our own switches go
// under dllm.* keys (dllm.block_size) beside the standard ones.
//
// The permutation: llama.cpp's "llama" and "llada" architectures use RoPE
// mode NORM, which rotates consecutive pairs (2j, 2j+1) of a head, while
// Hugging Face's rotate-half form (ours) pairs (j, j + head_dim/2). Its
// converter therefore reorders the rows of q_proj and k_proj (weights and
// biases) within each head, row h*hd + 2j + i taking row h*hd + i*hd/2 + j
// (i in {0, 1}; heads of k counted with n_kv_heads), and "dream" / "qwen2"
// (NEOX mode, rotate-half) keep them. Loading such a file undoes the
// reordering (a shuffle of whole rows, so it works for block types too);
// writing one applies it, so files go both ways between us and llama.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "dllm/config.h"
#include "formats/gguf.h"

namespace dllm {

// llama.cpp's architecture name for a config: llada, dream, or llama /
// qwen2 for causal models.
std::string GgufArchName(const ModelConfig& c);
// Whether llama.cpp reorders wq/wk rows for this architecture (llada,
// llama).
bool GgufArchPermutesQK(const std::string& arch);

// The config of a GGUF model from its metadata and tensors. Checks that
// every needed key is present, of the right type and sane, naming the file
// and key: {arch}.embedding_length, block_count, attention.head_count (a
// number or a per-layer array of one value), attention.head_count_kv,
// feed_forward_length, context_length, attention.layer_norm_rms_epsilon,
// rope.freq_base (default 10000), attention.key_length, rope.dimension_count
// (must cover the whole head), vocab_size (must match token_embd.weight),
// attention.causal, diffusion.shift_logits, tokenizer.ggml.{mask,eos,bos,
// padding}_token_id, dllm.block_size; no RoPE scaling. The output head is
// tied when output.weight is absent; QKV biases are there when
// blk.0.attn_q.bias is.
ModelConfig ConfigFromGguf(const GgufFile& f);

// Appends the metadata of `c` as llama.cpp's converter writes it for the
// architecture (GgufArchName), our extra switches under dllm.*.
void AddConfigMetadata(const ModelConfig& c, GgufMetadata* m);

// Reorders the rows of a tensor that feeds RoPE, `rows` rows of `row_bytes`
// bytes in `n_heads` heads, between Hugging Face's rotate-half order and
// llama.cpp's interleaved one: to_gguf applies the converter's permutation,
// !to_gguf undoes it. src and dst must not overlap.
void PermuteRopeRows(const void* src, void* dst, int64_t rows, size_t row_bytes,
                     int64_t n_heads, bool to_gguf);

}  // namespace dllm
