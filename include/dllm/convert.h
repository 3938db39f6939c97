// Public API: converting models between a Hugging Face folder and a GGUF
// file (`dllm convert`, `dllm quantize`).
//
//  - folder -> .gguf: the weights under llama.cpp's names (wq/wk rows
//    reordered for llama.cpp's interleaved RoPE in the llada and llama
//    architectures), the config as {arch}.* metadata (dllm.block_size for
//    block diffusion), the tokenizer as tokenizer.ggml.* arrays and whole as
//    tokenizer.huggingface.json, the chat template (tokenizer.chat_template)
//    and generation_config.json (dllm.generation_config).
//  - .gguf -> folder: config.json, model.safetensors, tokenizer.json,
//    tokenizer_config.json and generation_config.json, which Model::Load and
//    Engine::Load read.
//  - .gguf -> .gguf: the same model with its matrices stored in another type
//    (llama-quantize); the metadata is kept.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dllm {

struct ConvertOptions {
  // How the matrices and the embedding are stored: "f32", "f16", "bf16",
  // "q8_0", "q4_0", "q4_k", "q6_k", or "auto": as the source stores them
  // (lossless; block types become f32 in a folder, which cannot hold them).
  // Norms and biases are always f32. With a block type, llama.cpp's choices
  // apply: the output head (and the embedding when it is tied to the head)
  // is Q6_K, or Q8_0 when that is the type asked for; a matrix whose rows
  // are not whole blocks of the type falls back to Q8_0, then F16.
  std::string outtype = "auto";
  // Replace an existing destination (else a clear error).
  bool force = false;
  // Receives one line per step (each tensor as it is written), e.g. to
  // print on stderr; may be null.
  std::function<void(const std::string&)> progress;
};

struct ConvertResult {
  std::vector<std::string> warnings;  // what another reader may not take
  int64_t tensors = 0;                // tensors written
  uint64_t bytes = 0;                 // bytes of tensor data written
};

// Converts `src` (a model folder or a GGUF file) into `dst` (a .gguf path,
// or a folder when src is a GGUF file). Throws dllm::Error naming the file
// and what is wrong; nothing is replaced until the new files are complete.
ConvertResult ConvertModel(const std::string& src, const std::string& dst,
                           const ConvertOptions& options = {});

// The outtype names ConvertOptions accepts, for messages.
const char* ConvertOutTypes();

}  // namespace dllm
