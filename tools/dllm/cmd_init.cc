// dllm init: a random-weight model folder of any shape.
#include <cstdio>

#include "args.h"
#include "base/error.h"
#include "command.h"
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
  if (!a.Parse(argc, argv)) return a.exit_code();
  DLLM_CHECK(a.Has("--out"), "init: --out DIR is required");

  ModelConfig c;
  std::string preset = a.Get("--preset");
  DLLM_CHECK(ApplyPreset(preset, &c), "init: unknown preset '", preset,
             "' (expected tiny, small, llada-8b or dream-7b)");
  bool named_vocab = preset == "llada-8b" || preset == "dream-7b";
  if (a.Has("--arch")) {
    std::string arch = a.Get("--arch");
    DLLM_CHECK(arch == "llada" || arch == "dream",
               "init: --arch must be llada or dream, got '", arch, "'");
    c.arch = arch == "llada" ? Arch::kLLaDA : Arch::kDream;
  }
  auto dim = [&](const char* opt, int* field, int lo, int hi) {
    if (!a.Has(opt)) return;
    int64_t v = a.GetInt(opt);
    DLLM_CHECK(v >= lo && v <= hi, "init: ", opt, " = ", v,
               " is out of range [", lo, ", ", hi, "]");
    *field = int(v);
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
  DLLM_CHECK(c.d_model % c.n_heads == 0, "init: --d-model ", c.d_model,
             " must be divisible by --heads ", c.n_heads);
  c.head_dim = c.d_model / c.n_heads;
  DLLM_CHECK(c.head_dim % 2 == 0, "init: head dimension ", c.head_dim,
             " must be even");
  DLLM_CHECK(c.n_heads % c.n_kv_heads == 0, "init: --heads ", c.n_heads,
             " must be a multiple of --kv-heads ", c.n_kv_heads);
  if (a.Has("--rope-theta")) c.rope_theta = a.GetDouble("--rope-theta");
  if (c.rope_theta <= 1.0)
    c.rope_theta = c.arch == Arch::kLLaDA ? 500000.0 : 1e6;
  if (!named_vocab) {
    c.mask_token_id = c.vocab_size - 1;
    c.eos_token_id = c.vocab_size - 2;
    c.bos_token_id = -1;
  }
  if (a.Has("--mask-id")) c.mask_token_id = int32_t(a.GetInt("--mask-id"));
  if (a.Has("--eos-id")) c.eos_token_id = int32_t(a.GetInt("--eos-id"));
  DLLM_CHECK(c.mask_token_id >= 0 && c.mask_token_id < c.vocab_size,
             "init: mask id ", c.mask_token_id, " is outside the vocabulary");
  DLLM_CHECK(c.eos_token_id < c.vocab_size, "init: eos id ", c.eos_token_id,
             " is outside the vocabulary");
  c.tie_embeddings = a.GetFlag("--tied");
  c.qkv_bias = a.GetFlag("--qkv-bias") || c.arch == Arch::kDream;
  c.causal = a.GetFlag("--causal");
  c.shift_logits = c.arch == Arch::kDream;
  std::string out = a.Get("--out");
  std::fprintf(stderr,
               "init: %s, %d layers, d=%d, %d heads (%d kv), ffn %d, vocab %d: "
               "%.2fM params\n",
               ArchName(c.arch), c.n_layers, c.d_model, c.n_heads, c.n_kv_heads,
               c.d_ff, c.vocab_size, double(c.NumParams()) / 1e6);
  InitRandomModel(c, out, a.Get("--dtype"),
                  uint64_t(a.GetInt("--seed", 0, INT64_MAX)),
                  float(a.GetDouble("--std")));
  std::fprintf(stderr, "init: wrote %s/config.json and %s/model.safetensors\n",
               out.c_str(), out.c_str());
  return 0;
}

}  // namespace

DLLM_COMMAND("init", "write a random-weight model folder (tests, benchmarks)",
             RunInit);

}  // namespace dllm::cli
