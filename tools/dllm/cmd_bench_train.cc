// dllm bench train: training tokens/s against this machine's SGEMM ceiling,
// and PyTorch eager on the same shape in the same run when it is available.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "args.h"
#include "command.h"
#include "dllm/ceiling.h"
#include "dllm/error.h"
#include "dllm/runtime.h"
#include "dllm/timer.h"
#include "dllm/train.h"
#include "model_shape.h"

namespace dllm::cli {
namespace {

int RunBenchTrain(int argc, char** argv) {
  Args a(
      "dllm bench train [--layers 6 --d-model 384 --context 256 ...] [--torch]",
      "Times training steps (forward, backward, AdamW) of a model of the given "
      "shape on random\n"
      "tokens and prints JSON: tokens/s, GFLOP/s counted as 6 x parameters x "
      "tokens, and the\n"
      "fraction of an SGEMM of the FFN shape measured in the same run. --torch "
      "also times\n"
      "scripts/bench_torch_train.py (PyTorch eager, same shape) with "
      "/usr/bin/python3.");
  AddShapeOptions(a, {"6", "384", "6"});
  a.Option("--vocab", "N", "vocabulary", "8192");
  a.Option("--batch", "B", "sequences per step", "8");
  a.Option("--context", "T", "tokens per sequence", "256");
  a.Option("--objective", "NAME", "ar or mdm", "ar");
  a.Option("--steps", "N", "timed steps (after one warm-up)", "3");
  a.Flag("--torch", "also run the PyTorch eager baseline");
  a.Option("--python", "PATH", "interpreter with torch", "/usr/bin/python3");
  AddThreadsOption(a);
  if (!a.Parse(argc, argv)) return a.exit_code();
  ApplyThreadsOption(a);
  const int threads = NumThreads();
  ModelConfig c;
  ReadShape(a, &c);
  c.vocab_size = int(a.GetInt("--vocab"));
  const int64_t B = a.GetInt("--batch"), T = a.GetInt("--context"),
                steps = a.GetInt("--steps");
  c.max_seq_len = int(T);
  c.mask_token_id = c.vocab_size - 1;
  const Objective obj = ParseObjective(a.Get("--objective"));
  c.causal = obj == Objective::kAR;
  TrainableModel m(c, 1);
  AdamW opt(m.num_params(), AdamWOptions{});
  TrainBatch b;
  b.B = B, b.T = T;
  // Any fixed data will do: the timing does not depend on the values.
  std::mt19937_64 rng(5);
  for (int64_t i = 0; i < B * T; ++i)
    b.ids.push_back(int32_t(rng() % uint64_t(c.vocab_size - 1)));
  if (obj != Objective::kAR) {
    for (int64_t i = 0; i < B * T; ++i) b.mask.push_back(rng() & 1);
    b.p.assign(size_t(B), 0.5f);
  }
  auto step = [&](int64_t k) {
    m.ZeroGrads();
    m.ForwardBackward(b, obj);
    ClipGradNorm(m, 1.0);
    opt.Update(m, 1e-4f, k);
  };
  step(1);
  Timer t;
  for (int64_t k = 0; k < steps; ++k) step(k + 2);
  const double s = t.Seconds() / double(steps);
  const double tps = double(B * T) / s;
  const double gflops = 6.0 * double(m.num_params()) * tps / 1e9;
  SgemmCeiling ceil = MeasureSgemm(B * T, c.d_ff, c.d_model, threads);
  const double fma = MeasureFmaPeak(threads);
  nlohmann::json out = {{"bench", "train"},
                        {"objective", ObjectiveName(obj)},
                        {"layers", c.n_layers},
                        {"d_model", c.d_model},
                        {"context", T},
                        {"batch", B},
                        {"vocab", c.vocab_size},
                        {"params_m", double(m.num_params()) / 1e6},
                        {"threads", threads},
                        {"ms_per_step", s * 1e3},
                        {"tokens_per_s", tps},
                        {"gflops_6nd", gflops},
                        {"sgemm_gflops", ceil.best()},
                        {"ratio_to_sgemm", gflops / ceil.best()},
                        {"fma_peak_gflops", fma},
                        {"ratio_to_fma_peak", gflops / fma}};
  if (a.GetFlag("--torch")) {
    std::string cmd =
        a.Get("--python") + " " + std::string(DLLM_SOURCE_DIR_STR) +
        "/scripts/bench_torch_train.py --layers " + std::to_string(c.n_layers) +
        " --d-model " + std::to_string(c.d_model) + " --heads " +
        std::to_string(c.n_heads) + " --ffn " + std::to_string(c.d_ff) +
        " --vocab " + std::to_string(c.vocab_size) + " --batch " +
        std::to_string(B) + " --context " + std::to_string(T) + " --threads " +
        std::to_string(threads) + " --objective " + ObjectiveName(obj) +
        " 2>/dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    std::string text;
    char buf[1024];
    size_t n;
    while (p && (n = fread(buf, 1, sizeof(buf), p)) > 0) text.append(buf, n);
    if (p) pclose(p);
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_discarded() && j.contains("tokens_per_s")) {
      out["torch_tokens_per_s"] = j["tokens_per_s"];
      out["torch_version"] = j.value("torch", "");
      out["speedup_vs_torch"] = tps / j["tokens_per_s"].get<double>();
    } else {
      out["torch_tokens_per_s"] = nullptr;
      std::fprintf(stderr,
                   "bench train: the PyTorch baseline did not run (%s needs "
                   "python3-torch)\n",
                   a.Get("--python").c_str());
    }
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace

DLLM_COMMAND("bench train",
             "training tokens/s against the SGEMM ceiling (and PyTorch eager)",
             RunBenchTrain);

}  // namespace dllm::cli
