// dllm train: masked-diffusion pre-training, SFT, or the AR baseline.
#include <sched.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "args.h"
#include "command.h"
#include "dllm/error.h"
#include "dllm/files.h"
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

// Under mpirun, the processes on one machine split its cores rather than
// each starting a thread per core (threads beyond the cores only wait on
// each other: every kernel waits for its slowest share), and a process that
// mpirun bound to some CPUs (Open MPI binds to one core by default for up to
// two processes) uses as many threads as it has CPUs.
void FitThreadsToLaunch(bool threads_given) {
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (size == nullptr) size = std::getenv("PMI_SIZE");
  if (size == nullptr) return;  // not started by mpirun
  cpu_set_t set;
  CPU_ZERO(&set);
  const int allowed = sched_getaffinity(0, sizeof(set), &set) == 0
                          ? CPU_COUNT(&set)
                          : int(std::thread::hardware_concurrency());
  if (threads_given) {
    if (NumThreads() > allowed)
      std::fprintf(stderr,
                   "warning: --threads %d, but mpirun bound this process to "
                   "%d CPU(s): the threads take turns on them (launch with "
                   "`mpirun --bind-to none`, or lower --threads)\n",
                   NumThreads(), allowed);
    return;
  }
  int local = 1;
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"})
    if (const char* v = std::getenv(var)) local = std::max(local, std::atoi(v));
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  SetNumThreads(std::max(1, std::min(allowed, cores / local)));
}

int RunTrain(int argc, char** argv) {
  Args a(
      "dllm train --data DIR -o DIR [--objective mdm|mdm-sft|ar|bd] [shape] "
      "[schedule]",
      "Trains a model on a folder made by `dllm data prepare`. mdm is LLaDA's "
      "pre-training\n"
      "(mask a random fraction t of each sequence, cross-entropy on the masked "
      "tokens / t),\n"
      "mdm-sft its supervised fine-tuning (prompt never masked), ar the "
      "autoregressive\n"
      "baseline of the same shape (causal attention, next-token loss), bd "
      "block diffusion\n"
      "(BD3-LM: block-causal attention, each block denoised given the clean "
      "blocks before it;\n"
      "--block-size N, and --init-from an AR model adapts it). The output "
      "folder is a\n"
      "model in the LLaDA layout that `dllm generate` loads, plus "
      "checkpoint.safetensors\n"
      "(written atomically every --ckpt-every steps and at Ctrl-C; --resume "
      "continues) and\n"
      "train_log.csv.\n\n"
      "Data parallel: `mpirun -np N dllm train ...` (Open MPI; add --hostfile "
      "FILE for several\n"
      "machines) splits every batch of --batch sequences over N processes "
      "and all-reduces\n"
      "the gradients: the run follows the one-process run of the same "
      "--batch step for step.\n"
      "Rank 0 logs, validates and writes the folder; --resume works with any "
      "N. Each process\n"
      "takes cores / (its machine's processes) threads, at most the CPUs "
      "mpirun bound it to,\n"
      "unless --threads is given.");
  a.Option("--data", "DIR", "prepared data folder");
  a.Option("-o,--out", "DIR", "output model folder");
  a.Option("--objective", "NAME", "mdm, mdm-sft, ar or bd", "mdm");
  a.Option("--block-size", "N",
           "bd: block size of a fresh model, or of the AR / mdm model of "
           "--init-from adapted to block diffusion");
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
  a.Option("--bucket-mb", "X",
           "under mpirun: all-reduce gradients in buckets of X MiB while the "
           "backward pass runs (0 = all at once after it)",
           "4");
  a.Option("--save-dtype", "T",
           "dtype of the final model.safetensors: F32 or BF16", "F32");
  AddThreadsOption(a);
  if (!a.Parse(argc, argv)) return a.exit_code();

  // Everything from the command line first, before any file is read: a bad
  // value is a usage error (exit 2), whichever layer finds it.
  TrainRunOptions o;
  try {
    a.Require("--data");
    a.Require("--out");
    ApplyThreadsOption(a);
    FitThreadsToLaunch(a.GetInt("--threads", 0, 1024) != 0);
    o.data_dir = a.Get("--data");
    o.out_dir = a.Get("--out");
    o.objective = ParseObjective(a.Get("--objective"));
    o.init_from = a.Get("--init-from");
    o.resume = a.GetFlag("--resume");
    ReadShape(a, &o.config);
    o.shape_options = GivenShapeOptions(a);
    DLLM_USAGE_CHECK(!a.Has("--init-std") || (o.init_from.empty() && !o.resume),
                     "train: --init-std only applies to a fresh model; with ",
                     o.resume ? "--resume" : "--init-from",
                     " the weights come from there");
    o.context = a.GetInt("--context", 2);
    if (a.Has("--block-size")) {
      DLLM_USAGE_CHECK(o.objective == Objective::kBD,
                       "train: --block-size is for --objective bd");
      o.block_size = a.GetInt("--block-size", 1, o.context);
    }
    o.init_std = a.GetDouble("--init-std");
    o.batch = a.GetInt("--batch", 1);
    o.accum = a.GetInt("--accum", 1);
    o.steps = a.GetInt("--steps", 1);
    o.lr = a.GetDouble("--lr");
    o.min_lr = a.Has("--min-lr") ? a.GetDouble("--min-lr") : o.lr / 10;
    o.warmup = a.GetInt("--warmup", 0);
    o.weight_decay = a.GetDouble("--weight-decay");
    o.clip = a.GetDouble("--clip");
    o.seed = uint64_t(a.GetInt("--seed", 0, INT64_MAX));
    o.eval_every = a.GetInt("--eval-every", 0);
    o.eval_windows = a.GetInt("--eval-windows", 1);
    o.eval_grid = a.GetInt("--eval-grid", 1);
    o.eval_draws = a.GetInt("--eval-draws", 1);
    o.ckpt_every = a.GetInt("--ckpt-every", 0);
    o.log_every = a.GetInt("--log-every", 1);
    o.stop_after = a.GetInt("--stop-after", 0);
    o.random_length = !a.GetFlag("--no-random-length");
    o.save_dtype = a.Get("--save-dtype");
    o.bucket_mb = a.GetDouble("--bucket-mb");
  } catch (const Error& e) {  // e.g. ParseObjective's
    throw UsageError(e.what());
  }

  auto meta = nlohmann::json::parse(ReadFileToString(o.data_dir + "/meta.json"),
                                    nullptr, false);
  DLLM_CHECK(!meta.is_discarded() && meta.contains("vocab_size"), o.data_dir,
             "/meta.json: missing or invalid (run `dllm data prepare`)");
  ModelConfig& c = o.config;
  c.vocab_size = MetaInt(meta, "vocab_size", o.data_dir);
  c.causal = o.objective == Objective::kAR;
  c.block_size = int(o.block_size);  // bd: RunTraining checks it is given
  c.max_seq_len = int(std::max<int64_t>(o.context, 256));
  c.mask_token_id = MetaInt(meta, "mask_token_id", o.data_dir);
  c.eos_token_id = MetaInt(meta, "eos_token_id", o.data_dir);
  DLLM_CHECK(c.causal || c.mask_token_id >= 0, o.data_dir,
             ": the tokenizer has no mask token (train it with --special "
             "\"...,<|mask|>\")");
  try {
    return RunTraining(o);
  } catch (const TrainOptionError& e) {
    // Options that contradict the checkpoint or model are a usage error too.
    throw UsageError(e.what());
  }
}

}  // namespace

DLLM_COMMAND("train",
             "train a diffusion model (mdm, mdm-sft, bd) or its AR twin",
             RunTrain);

}  // namespace dllm::cli
