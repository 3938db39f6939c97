// dllm train: masked-diffusion pre-training, SFT, or the AR baseline.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "args.h"
#include "base/error.h"
#include "base/mmap_file.h"
#include "command.h"
#include "dllm/runtime.h"
#include "dllm/train_run.h"
#include "model_shape.h"

namespace dllm::cli {
namespace {

// An integer field of meta.json (-1 when absent), with a clear error otherwise.
int MetaInt(const nlohmann::json& meta, const char* key,
            const std::string& dir) {
  if (!meta.contains(key)) return -1;
  DLLM_CHECK(meta[key].is_number_integer() && meta[key].get<int64_t>() >= -1 &&
                 meta[key].get<int64_t>() < (int64_t(1) << 24),
             dir, "/meta.json: '", key, "' must be a token count or id, got ",
             meta[key].dump());
  return int(meta[key].get<int64_t>());
}

int RunTrain(int argc, char** argv) {
  Args a(
      "dllm train --data DIR -o DIR [--objective mdm|mdm-sft|ar] [shape] "
      "[schedule]",
      "Trains a model on a folder made by `dllm data prepare`. mdm is LLaDA's "
      "pre-training\n"
      "(mask a random fraction t of each sequence, cross-entropy on the masked "
      "tokens / t),\n"
      "mdm-sft its supervised fine-tuning (prompt never masked), ar the "
      "autoregressive\n"
      "baseline of the same shape (causal attention, next-token loss). The "
      "output folder is a\n"
      "model in the LLaDA layout that `dllm generate` loads, plus "
      "checkpoint.safetensors\n"
      "(written atomically every --ckpt-every steps and at Ctrl-C; --resume "
      "continues) and\n"
      "train_log.csv.");
  a.Option("--data", "DIR", "prepared data folder");
  a.Option("-o,--out", "DIR", "output model folder");
  a.Option("--objective", "NAME", "mdm, mdm-sft or ar", "mdm");
  a.Option("--init-from", "DIR",
           "start from this model folder instead of random weights");
  AddShapeOptions(a, {"4", "256", "4"});
  a.Option("--init-std", "X",
           "standard deviation of the random initial weights", "0.02");
  a.Option("--batch", "B", "sequences per micro-batch", "16");
  a.Option("--context", "T", "tokens per sequence", "128");
  a.Option("--accum", "N", "micro-batches per step (gradient accumulation)",
           "1");
  a.Option("--steps", "N", "optimizer steps", "1000");
  a.Option("--lr", "X", "peak learning rate", "1e-3");
  a.Option("--min-lr", "X",
           "final learning rate of the cosine decay (default: lr/10)");
  a.Option("--warmup", "N", "linear warmup steps", "100");
  a.Option("--weight-decay", "X",
           "AdamW decoupled weight decay (matrices only)", "0.1");
  a.Option("--clip", "X", "gradient norm clip (0 = off)", "1.0");
  a.Option("--seed", "N", "seed of the initialisation, batches and masks", "1");
  a.Option("--eval-every", "N", "validate every N steps (0 = never)", "200");
  a.Option("--eval-windows", "N", "validation windows", "16");
  a.Option("--eval-grid", "N", "t values in the NELBO estimate (diffusion)",
           "8");
  a.Option("--eval-draws", "N", "mask draws per t value", "2");
  a.Option("--ckpt-every", "N",
           "checkpoint every N steps (0 = only at the end and Ctrl-C)", "200");
  a.Option("--log-every", "N", "print a line every N steps", "1");
  a.Flag("--resume", "continue from DIR/checkpoint.safetensors");
  a.Option("--stop-after", "N",
           "stop after N steps as if interrupted (checkpoint saved; for "
           "time-boxed runs)",
           "0");
  a.Flag("--no-random-length",
         "do not cut 1% of MDM batches to a random length");
  a.Option("--save-dtype", "T",
           "dtype of the final model.safetensors: F32 or BF16", "F32");
  a.Option("-t,--threads", "N", "threads (0 = one per core)", "0");
  if (!a.Parse(argc, argv)) return a.exit_code();
  DLLM_CHECK(a.Has("--data") && a.Has("--out"),
             "train: --data DIR and -o DIR are required");
  SetNumThreads(int(a.GetInt("--threads", 0, 1024)));

  TrainRunOptions o;
  o.data_dir = a.Get("--data");
  o.out_dir = a.Get("--out");
  o.objective = ParseObjective(a.Get("--objective"));
  o.init_from = a.Get("--init-from");
  auto meta = nlohmann::json::parse(ReadFileToString(o.data_dir + "/meta.json"),
                                    nullptr, false);
  DLLM_CHECK(!meta.is_discarded() && meta.contains("vocab_size"), o.data_dir,
             "/meta.json: missing or invalid (run `dllm data prepare`)");
  ModelConfig& c = o.config;
  ReadShape(a, &c);
  c.vocab_size = MetaInt(meta, "vocab_size", o.data_dir);
  c.causal = o.objective == Objective::kAR;
  o.context = a.GetInt("--context");
  c.max_seq_len = int(std::max<int64_t>(o.context, 256));
  c.mask_token_id = MetaInt(meta, "mask_token_id", o.data_dir);
  c.eos_token_id = MetaInt(meta, "eos_token_id", o.data_dir);
  DLLM_CHECK(c.causal || c.mask_token_id >= 0, o.data_dir,
             ": the tokenizer has no mask token (train it with --special "
             "\"...,<|mask|>\")");
  o.init_std = a.GetDouble("--init-std");
  o.batch = a.GetInt("--batch");
  o.accum = a.GetInt("--accum");
  o.steps = a.GetInt("--steps");
  o.lr = a.GetDouble("--lr");
  o.min_lr = a.Has("--min-lr") ? a.GetDouble("--min-lr") : o.lr / 10;
  o.warmup = a.GetInt("--warmup");
  o.weight_decay = a.GetDouble("--weight-decay");
  o.clip = a.GetDouble("--clip");
  o.seed = uint64_t(a.GetInt("--seed", 0, INT64_MAX));
  o.eval_every = a.GetInt("--eval-every");
  o.eval_windows = a.GetInt("--eval-windows");
  o.eval_grid = a.GetInt("--eval-grid");
  o.eval_draws = a.GetInt("--eval-draws");
  o.ckpt_every = a.GetInt("--ckpt-every");
  o.log_every = std::max<int64_t>(1, a.GetInt("--log-every"));
  o.resume = a.GetFlag("--resume");
  o.stop_after = a.GetInt("--stop-after");
  o.random_length = !a.GetFlag("--no-random-length");
  o.save_dtype = a.Get("--save-dtype");
  return RunTraining(o);
}

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
  a.Option("-t,--threads", "N", "threads (0 = one per core)", "0");
  if (!a.Parse(argc, argv)) return a.exit_code();
  DLLM_CHECK(a.Has("--model") && a.Has("--data"),
             "eval loss: -m and --data are required");
  SetNumThreads(int(a.GetInt("--threads", 0, 1024)));
  auto m = TrainableModel::Load(a.Get("--model"));
  EvalResult r = EvaluateModel(*m, a.Get("--data"), a.GetInt("--context"),
                               a.GetInt("--windows"), a.GetInt("--grid"),
                               a.GetInt("--draws"),
                               uint64_t(a.GetInt("--seed", 0, INT64_MAX)));
  std::printf(
      "{\"model\":\"%s\",\"kind\":\"%s\",\"nats_per_token\":%.5f,\"bits_per_"
      "byte\":%.5f,\"tokens\":%lld}\n",
      a.Get("--model").c_str(), m->config().causal ? "ar-exact" : "mdm-nelbo",
      r.nats_per_token, r.bits_per_byte, (long long)r.tokens);
  return 0;
}

}  // namespace

DLLM_COMMAND("train", "train a diffusion model (mdm, mdm-sft) or its AR twin",
             RunTrain);
DLLM_COMMAND("eval loss",
             "validation NELBO / loss in nats per token and bits per byte",
             RunEvalLoss);

}  // namespace dllm::cli
