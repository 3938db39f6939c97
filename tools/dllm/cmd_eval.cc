// dllm eval loss: validation NELBO (diffusion) or exact loss (AR) of a model
// on a prepared data folder.
#include <cstdio>

#include "args.h"
#include "command.h"
#include "dllm/error.h"
#include "dllm/train.h"
#include "dllm/train_run.h"

namespace dllm::cli {
namespace {

int RunEvalLoss(int argc, char** argv) {
  Args a("dllm eval loss -m MODEL --data DIR [--context T]",
         "Validation loss of a model on DIR/val.bin in nats per token and bits "
         "per byte: the\n"
         "NELBO bound (fixed grid of t, several mask draws) for diffusion "
         "models, the exact\n"
         "next-token loss for causal ones. Prints JSON.");
  a.Option("-m,--model", "DIR", "model folder");
  a.Option("--data", "DIR", "prepared data folder");
  a.Option("--context", "T", "tokens per window", "128");
  a.Option("--windows", "N", "validation windows", "64");
  a.Option("--grid", "N", "t values (diffusion)", "16");
  a.Option("--draws", "N", "mask draws per t value", "4");
  a.Option("--seed", "N", "seed of the mask draws", "1");
  AddThreadsOption(a);
  if (!a.Parse(argc, argv)) return a.exit_code();
  // Bad values are usage errors (exit 2), found before the model is read.
  a.Require("--model");
  a.Require("--data");
  ApplyThreadsOption(a);
  const int64_t context = a.GetInt("--context", 2),
                windows = a.GetInt("--windows", 1),
                grid = a.GetInt("--grid", 1), draws = a.GetInt("--draws", 1);
  const uint64_t seed = uint64_t(a.GetInt("--seed", 0, INT64_MAX));
  // A loss on ids from another tokenizer would be a meaningless number.
  CheckSameTokenizer(a.Get("--data"), a.Get("--model"));
  auto m = TrainableModel::Load(a.Get("--model"));
  EvalResult r =
      EvaluateModel(*m, a.Get("--data"), context, windows, grid, draws, seed);
  std::printf(
      "{\"model\":\"%s\",\"kind\":\"%s\",\"nats_per_token\":%.5f,\"bits_per_"
      "byte\":%.5f,\"tokens\":%lld}\n",
      a.Get("--model").c_str(),
      m->config().causal           ? "ar-exact"
      : m->config().block_size > 0 ? "bd-nelbo"
                                   : "mdm-nelbo",
      r.nats_per_token, r.bits_per_byte, (long long)r.tokens);
  return 0;
}

}  // namespace

DLLM_COMMAND("eval loss",
             "validation NELBO / loss in nats per token and bits per byte",
             RunEvalLoss);

}  // namespace dllm::cli
