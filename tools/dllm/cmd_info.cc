// dllm info: what a model folder holds.
#include <cstdio>
#include <map>

#include "args.h"
#include "command.h"
#include "dllm/error.h"
#include "dllm/model.h"

namespace dllm::cli {
namespace {

int RunInfo(int argc, char** argv) {
  Args a("dllm info -m DIR [--tensors]",
         "Prints a model's architecture, parameter count, dtypes and memory "
         "needs.");
  a.Option("-m,--model", "DIR", "model folder (config.json + safetensors)");
  a.Flag("--tensors", "also list every stored tensor");
  a.Option("--tokens", "L", "context length for the activation-memory estimate",
           "2048");
  if (!a.Parse(argc, argv)) return a.exit_code();
  a.Require("--model");
  auto model = Model::Load(a.Get("--model"));
  const ModelConfig& c = model->config();
  auto tensors = model->Tensors();
  std::map<std::string, int64_t> by_dtype;
  for (const auto& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    by_dtype[t.dtype] += n;
  }
  const int64_t L = a.GetInt("--tokens", 1, 1 << 24);
  // Activations of one forward over L tokens (fp32): residual, norm, q/k/v,
  // attention output, projection, two FFN buffers, one score block per thread.
  double act = 4.0 * L *
               (3.0 * c.d_model + 2.0 * c.n_heads * c.head_dim +
                2.0 * c.n_kv_heads * c.head_dim + 2.0 * c.d_ff);
  std::printf("model        %s\n", model->dir().c_str());
  std::printf("architecture %s (%s attention, %s logits)\n", ArchName(c.arch),
              c.causal ? "causal" : "bidirectional",
              c.shift_logits ? "shifted" : "unshifted");
  std::printf("layers       %d\n", c.n_layers);
  std::printf("d_model      %d\n", c.d_model);
  std::printf("heads        %d query, %d key/value, head_dim %d\n", c.n_heads,
              c.n_kv_heads, c.head_dim);
  std::printf("ffn          %d (SwiGLU)\n", c.d_ff);
  std::printf("vocab        %d (mask %d, eos %d)\n", c.vocab_size,
              c.mask_token_id, c.eos_token_id);
  std::printf("context      %d, rope_theta %g\n", c.max_seq_len, c.rope_theta);
  std::printf("head         %s, qkv bias %s\n",
              c.tie_embeddings ? "tied to embedding" : "untied",
              c.qkv_bias ? "yes" : "no");
  std::printf("parameters   %.3fM (%lld)\n", double(c.NumParams()) / 1e6,
              (long long)c.NumParams());
  std::printf("dtypes      ");
  for (const auto& [d, n] : by_dtype)
    std::printf(" %s: %.3fM", d.c_str(), double(n) / 1e6);
  std::printf("\n");
  std::printf("weights      %.1f MB on disk (mmapped, used in place)\n",
              double(model->file_bytes()) / 1e6);
  std::printf("activations  %.1f MB for a forward over %lld tokens\n",
              act / 1e6, (long long)L);
  if (a.GetFlag("--tensors")) {
    for (const auto& t : tensors) {
      std::string shape;
      for (size_t i = 0; i < t.shape.size(); ++i)
        shape += (i ? " x " : "") + std::to_string(t.shape[i]);
      std::printf("  %-56s %-5s %s\n", t.name.c_str(), t.dtype.c_str(),
                  shape.c_str());
    }
  }
  return 0;
}

}  // namespace

DLLM_COMMAND("info", "print a model's architecture, size and dtypes", RunInfo);

}  // namespace dllm::cli
