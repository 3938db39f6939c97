// Prints llama.cpp's logits of a GGUF model for the given token ids, every
// position, as raw little-endian float32 [positions x vocab] (the layout of
// `dllm forward --dump-logits`). Flash attention off and the KV cache in F32,
// so that an F32 model is computed in F32 end to end. Built and run by
// scripts/gguf/check_llama_cpp.sh against a llama.cpp build.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "llama.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: llama_cpp_logits MODEL.gguf OUT.bin ID...\n");
    return 2;
  }
  llama_backend_init();
  llama_model* model =
      llama_model_load_from_file(argv[1], llama_model_default_params());
  if (!model) return 1;
  std::vector<llama_token> ids;
  for (int i = 3; i < argc; ++i) ids.push_back(std::atoi(argv[i]));
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = cp.n_batch = cp.n_ubatch = 512;
  cp.n_threads = cp.n_threads_batch = 1;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.type_k = cp.type_v = GGML_TYPE_F32;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) return 1;
  llama_batch batch = llama_batch_init(int32_t(ids.size()), 0, 1);
  for (size_t i = 0; i < ids.size(); ++i) {
    batch.token[i] = ids[i];
    batch.pos[i] = llama_pos(i);
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = 1;
  }
  batch.n_tokens = int32_t(ids.size());
  // Non-causal models (llada, dream) run through encode(); decode() says so
  // and falls back to it.
  if (llama_decode(ctx, batch) != 0) return 1;
  const int V = llama_vocab_n_tokens(llama_model_get_vocab(model));
  FILE* f = std::fopen(argv[2], "wb");
  if (!f) return 1;
  for (size_t i = 0; i < ids.size(); ++i)
    std::fwrite(llama_get_logits_ith(ctx, int32_t(i)), 4, size_t(V), f);
  std::fclose(f);
  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
