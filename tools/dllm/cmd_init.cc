// dllm init: a random-weight model folder of any shape.
#include <cstdio>

#include "args.h"
#include "command.h"
#include "dllm/error.h"
#include "dllm/files.h"
#include "dllm/model.h"

namespace dllm::cli {
namespace {

// Shapes worth having by name.
bool ApplyPreset(const std::string& name, ModelConfig* c) {
  if (name == "tiny") {
    *c = ModelConfig{};
    c->n_layers = 2, c->d_model = 64, c->n_heads = 4, c->d_ff = 176,
    c->vocab_size = 256;
    c->rope_theta = 0;  // the architecture's default, chosen below
  } else if (name ==
             "small") {  // the benchmark shape: 12 x 768, 32k vocabulary
    c->n_layers = 12, c->d_model = 768, c->n_heads = 12, c->d_ff = 2048,
    c->vocab_size = 32000;
    c->rope_theta = 0;
  } else if (name == "llada-8b") {
    c->arch = Arch::kLLaDA;
    c->n_layers = 32, c->d_model = 4096, c->n_heads = 32, c->n_kv_heads = 32,
    c->d_ff = 12288;
    c->vocab_size = 126464, c->rope_theta = 500000, c->rms_eps = 1e-5f;
    c->mask_token_id = 126336, c->eos_token_id = 126081,
    c->bos_token_id = 126080;
  } else if (name == "dream-7b") {
    c->arch = Arch::kDream;
    c->n_layers = 28, c->d_model = 3584, c->n_heads = 28, c->n_kv_heads = 4,
    c->d_ff = 18944;
    c->vocab_size = 152064, c->rope_theta = 1e6, c->rms_eps = 1e-6f,
    c->qkv_bias = true;
    c->mask_token_id = 151666, c->eos_token_id = 151643,
    c->bos_token_id = 151643;
  } else {
    return false;
  }
  return true;
}

int RunInit(int argc, char** argv) {
  Args a("dllm init -o DIR [--preset NAME | --layers N --d-model N ...]",
         "Writes a model folder (config.json + model.safetensors) with random "
         "weights, in the\n"
         "LLaDA or Dream (Qwen2) layout, for tests and benchmarks.\n"
         "Presets: tiny, small (12 layers, d=768, 32k vocab), llada-8b, "
         "dream-7b.");
  a.Option("-o,--out", "DIR", "output folder (created if needed)");
  a.Option("--preset", "NAME", "start from a named shape", "tiny");
  a.Option("--arch", "ARCH",
           "llada or dream (default: the preset's, else llada)");
  a.Option("--layers", "N", "number of transformer blocks");
  a.Option("--d-model", "N", "hidden size");
  a.Option("--heads", "N", "query heads");
  a.Option("--kv-heads", "N",
           "key/value heads (fewer than --heads: grouped-query attention)");
  a.Option("--ffn", "N", "SwiGLU hidden size");
  a.Option("--vocab", "N", "vocabulary size");
  a.Option("--ctx", "N", "maximum sequence length", "4096");
  a.Option("--rope-theta", "X", "RoPE base");
  a.Option("--mask-id", "ID",
           "mask token id (default: vocab-1 for custom shapes)");
  a.Option("--eos-id", "ID",
           "end-of-sequence token id (default: vocab-2 for custom shapes)");
  a.Flag("--tied", "tie the output head to the embedding");
  a.Flag("--qkv-bias", "add q/k/v biases");
  a.Flag("--causal", "causal attention (an autoregressive model)");
  a.Option("--dtype", "T", "weight storage: F32, BF16 or F16", "F32");
  a.Option("--seed", "N", "random seed", "1");
  a.Option("--std", "X", "standard deviation of the random weights", "0.02");
  a.Flag("--force", "overwrite a model already in DIR");
  if (!a.Parse(argc, argv)) return a.exit_code();
  a.Require("--out");

  // Every option is checked before anything is written, each error naming
  // its option (exit status 2): a bad value must not become a model file.
  ModelConfig c;
  std::string preset = a.Get("--preset");
  DLLM_USAGE_CHECK(ApplyPreset(preset, &c), "init: unknown preset '", preset,
                   "' (expected tiny, small, llada-8b or dream-7b)");
  bool named_vocab = preset == "llada-8b" || preset == "dream-7b";
  if (a.Has("--arch")) {
    std::string arch = a.Get("--arch");
    DLLM_USAGE_CHECK(arch == "llada" || arch == "dream",
                     "init: --arch must be llada or dream, got '", arch, "'");
    c.arch = arch == "llada" ? Arch::kLLaDA : Arch::kDream;
  }
  auto dim = [&](const char* opt, int* field, int lo, int hi) {
    if (a.Has(opt)) *field = int(a.GetInt(opt, lo, hi));
  };
  dim("--layers", &c.n_layers, 1, 1024);
  dim("--d-model", &c.d_model, 2, 1 << 16);
  dim("--heads", &c.n_heads, 1, 1024);
  if (!a.Has("--kv-heads") && preset != "dream-7b") c.n_kv_heads = c.n_heads;
  dim("--kv-heads", &c.n_kv_heads, 1, 1024);
  dim("--ffn", &c.d_ff, 1, 1 << 18);
  if (a.Has("--vocab")) named_vocab = false;
  dim("--vocab", &c.vocab_size, 2, 1 << 22);
  c.max_seq_len = 4096;
  dim("--ctx", &c.max_seq_len, 1, 1 << 22);
  if (c.n_kv_heads == 0) c.n_kv_heads = c.n_heads;
  DLLM_USAGE_CHECK(c.d_model % c.n_heads == 0, "init: --d-model ", c.d_model,
                   " must be divisible by --heads ", c.n_heads);
  c.head_dim = c.d_model / c.n_heads;
  DLLM_USAGE_CHECK(c.head_dim % 2 == 0, "init: head dimension ", c.head_dim,
                   " (--d-model / --heads) must be even");
  DLLM_USAGE_CHECK(c.n_heads % c.n_kv_heads == 0, "init: --heads ", c.n_heads,
                   " must be a multiple of --kv-heads ", c.n_kv_heads);
  // config.json accepts RoPE bases in [1, 1e12]; presets leave 0 for the
  // architecture's default.
  if (a.Has("--rope-theta"))
    c.rope_theta = a.GetDouble("--rope-theta", 1, 1e12);
  if (c.rope_theta < 1.0)
    c.rope_theta = c.arch == Arch::kLLaDA ? 500000.0 : 1e6;
  if (!named_vocab) {
    c.mask_token_id = c.vocab_size - 1;
    c.eos_token_id = c.vocab_size - 2;
    c.bos_token_id = -1;
  }
  if (a.Has("--mask-id"))
    c.mask_token_id = int32_t(a.GetInt("--mask-id", 0, c.vocab_size - 1));
  if (a.Has("--eos-id"))
    c.eos_token_id = int32_t(a.GetInt("--eos-id", -1, c.vocab_size - 1));
  DLLM_USAGE_CHECK(c.mask_token_id >= 0 && c.mask_token_id < c.vocab_size,
                   "init: mask id ", c.mask_token_id,
                   " is outside the vocabulary of ", c.vocab_size,
                   " (--mask-id)");
  DLLM_USAGE_CHECK(c.eos_token_id < c.vocab_size, "init: eos id ",
                   c.eos_token_id, " is outside the vocabulary of ",
                   c.vocab_size, " (--eos-id)");
  c.tie_embeddings = a.GetFlag("--tied");
  c.qkv_bias = a.GetFlag("--qkv-bias") || c.arch == Arch::kDream;
  c.causal = a.GetFlag("--causal");
  c.shift_logits = c.arch == Arch::kDream;
  const std::string dtype = a.Get("--dtype");
  DLLM_USAGE_CHECK(dtype == "F32" || dtype == "BF16" || dtype == "F16",
                   "init: --dtype must be F32, BF16 or F16, got '", dtype, "'");
  // Normal draws reach about 6 standard deviations; F16 overflows past 65504.
  const double std_hi = dtype == "F16" ? 65504.0 / 8 : 1e30;
  const float init_std = float(a.GetDouble("--std", 0, std_hi));
  const uint64_t seed = uint64_t(a.GetInt("--seed", 0, INT64_MAX));
  std::string out = a.Get("--out");
  // Overwriting a trained model with random weights is not undoable.
  for (const char* f : {"config.json", "model.safetensors"}) {
    const std::string path = out + "/" + f;
    DLLM_CHECK(a.GetFlag("--force") || !FileExists(path), "init: ", out,
               " already holds a model (", f,
               "): pass --force to overwrite it, or choose another folder");
  }
  std::fprintf(stderr,
               "init: %s, %d layers, d=%d, %d heads (%d kv), ffn %d, vocab %d: "
               "%.2fM params\n",
               ArchName(c.arch), c.n_layers, c.d_model, c.n_heads, c.n_kv_heads,
               c.d_ff, c.vocab_size, double(c.NumParams()) / 1e6);
  InitRandomModel(c, out, dtype, seed, init_std);
  std::fprintf(stderr, "init: wrote %s/config.json and %s/model.safetensors\n",
               out.c_str(), out.c_str());
  return 0;
}

}  // namespace

DLLM_COMMAND("init", "write a random-weight model folder (tests, benchmarks)",
             RunInit);

}  // namespace dllm::cli
