// Public API: a whole training run (what `dllm train` does): data from a
// folder made by `dllm data prepare`, validation, checkpoints, resume, logs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dllm/config.h"
#include "dllm/train.h"

namespace dllm {

struct TrainRunOptions {
  std::string data_dir;  // train.bin, val.bin, meta.json (+ sft.bin, sft.json)
  std::string out_dir;  // the model folder written (and checkpoint.safetensors,
                        // train_log.csv)
  Objective objective = Objective::kMDM;
  ModelConfig config;      // shape of a fresh model
  std::string init_from;   // or start from this model folder (e.g. SFT)
  double init_std = 0.02;  // std of the random initial matrices
  int64_t batch = 8, context = 128, steps = 1000, accum = 1, warmup = 100;
  double lr = 1e-3, min_lr = 1e-4, weight_decay = 0.1, clip = 1.0, eps = 1e-3;
  uint64_t seed = 1;
  int64_t eval_every = 200, eval_windows = 16, eval_grid = 8, eval_draws = 2;
  int64_t ckpt_every = 200, log_every = 1;
  bool resume = false;
  bool random_length = true;  // LLaDA's 1% of batches at a random length
  std::string save_dtype = "F32";
  int64_t stop_after = 0;  // stop (as at Ctrl-C, checkpoint saved) after this
                           // many steps; 0 = never
};

// Runs training; returns a process exit code (0 done, 130 interrupted with a
// checkpoint saved). Logs to stderr. Throws dllm::Error on bad input.
int RunTraining(const TrainRunOptions& opt);

// Validation loss of a model folder on a data folder's val.bin, in nats per
// token and bits per byte: the NELBO bound for diffusion models, the exact
// loss for causal ones.
struct EvalResult {
  double nats_per_token = 0, bits_per_byte = 0;
  int64_t tokens = 0;
};
EvalResult EvaluateModel(TrainableModel& model, const std::string& data_dir,
                         int64_t context, int64_t windows, int64_t grid,
                         int64_t draws, uint64_t seed);

// Writes token ids as a little-endian uint32 file, atomically (the format
// of train.bin, val.bin and sft.bin).
void WriteTokenFile(const std::string& path,
                    const std::vector<int32_t>& tokens);

}  // namespace dllm
