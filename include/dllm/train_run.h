// Public API: a whole training run (what `dllm train` does): data from a
// folder made by `dllm data prepare`, validation, checkpoints, resume, logs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dllm/config.h"
#include "dllm/error.h"
#include "dllm/train.h"

namespace dllm {

// A bad option value, or options that contradict the checkpoint or model they
// continue from: the command line is at fault (`dllm train` exits with 2 for
// these, 1 for other errors). The message names the option.
class TrainOptionError : public Error {
 public:
  using Error::Error;
};

struct TrainRunOptions {
  std::string data_dir;  // train.bin, val.bin, meta.json (+ sft.bin, sft.json)
  std::string out_dir;  // the model folder written (and checkpoint.safetensors,
                        // train_log.csv)
  Objective objective = Objective::kMDM;
  ModelConfig config;     // shape of a fresh model
  std::string init_from;  // or start from this model folder (e.g. SFT)
  // The shape options given explicitly ("--layers", "--d-model", "--heads",
  // "--kv-heads", "--ffn", "--rope-theta", "--tied", "--qkv-bias"): with
  // init_from or resume the shape comes from the model or checkpoint, and one
  // of these that disagrees with it is refused rather than ignored.
  std::vector<std::string> shape_options;
  // --block-size, objective bd only: the blocks of a fresh model, or of an
  // AR / full-attention model (init_from) adapted to block diffusion; 0 =
  // the model's own.
  int64_t block_size = 0;
  double init_std = 0.02;  // std of the random initial matrices
  int64_t batch = 8, context = 128, steps = 1000, accum = 1, warmup = 100;
  double lr = 1e-3, min_lr = 1e-4, weight_decay = 0.1, clip = 1.0, eps = 1e-3;
  uint64_t seed = 1;
  int64_t eval_every = 200, eval_windows = 16, eval_grid = 8, eval_draws = 2;
  int64_t ckpt_every = 200, log_every = 1;
  bool resume = false;        // a larger `steps` continues; a smaller one (or
                              // equal) writes the model and stops
  bool random_length = true;  // LLaDA's 1% of batches at a random length
  std::string save_dtype = "F32";
  int64_t stop_after = 0;  // stop (as at Ctrl-C, checkpoint saved) after this
                           // many steps; 0 = never
  // Data-parallel runs (under mpirun): gradients are all-reduced in buckets
  // of this many MiB as the backward pass finishes them; 0 = one all-reduce
  // of everything after the backward pass.
  double bucket_mb = 4;
};

// Whether this dllm was built with MPI: then `mpirun -np N dllm train ...`
// trains data-parallel over N processes (each takes its share of every
// batch, gradients are all-reduced, rank 0 logs, validates and saves), and
// follows the single-process run of the same global batch step for step.
bool HaveMpi();

// Runs training; returns a process exit code (0 done, 130 interrupted).
// Every checkpoint (and the stop) also leaves out_dir a loadable model folder:
// config.json, model.safetensors and the data's tokenizer files. Logs to
// stderr. Throws TrainOptionError on bad options, dllm::Error on bad input.
int RunTraining(const TrainRunOptions& opt);

// A fingerprint of a tokenizer.json's bytes; `dllm data prepare` records it
// in meta.json as "tokenizer_fingerprint".
std::string TokenizerFingerprint(const std::string& tokenizer_json);

// Refuses (dllm::Error naming both folders) a data folder tokenized by
// another tokenizer than the model folder's tokenizer.json: ids would mean
// other tokens. Compares meta.json's fingerprint, or without one the two
// tokenizer.json files; does nothing when either side has no tokenizer.
void CheckSameTokenizer(const std::string& data_dir,
                        const std::string& model_dir);

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
