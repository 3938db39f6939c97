// Generation half of `dllm eval humaneval|humaneval-infill|mbpp|gsm8k -m
// MODEL`: runs a model over the benchmark's prompts with continuous batching
// and appends one JSON line per sample to the completions file as it
// finishes, so an interrupted run resumes where it stopped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dllm/code_eval.h"
#include "dllm/engine.h"
#include "dllm/generate.h"

namespace dllm::cli {

struct EvalGenerateOptions {
  GenerateOptions gen;       // sample j of a task runs with seed gen.seed + j
  int samples_per_task = 1;  // n of pass@k
  int batch = 4;             // sequences in flight
  std::string path;          // the completions file (JSON Lines)
  bool resume = false;       // keep the samples already in `path`
  bool progress = false;     // a progress bar on stderr
};

struct EvalGenerateStats {
  size_t samples_resumed = 0;    // in the file before this run, for our tasks
  size_t samples_generated = 0;  // by this run
  int64_t tokens = 0;            // generated tokens of this run's samples
  int64_t forward_passes = 0;    // batched forward passes (NFE of the run)
  int64_t sample_nfe = 0;  // sum over samples of the steps each was part of
  double seconds = 0;      // wall clock of this run's generation
  size_t prompts_truncated = 0;  // prompts cut to fit the context
  int64_t tokens_dropped = 0;    // prompt and suffix tokens cut
};

// Generates the samples `set` still lacks (all of them unless o.resume) and
// appends them to o.path, flushing each line. Lines hold the human-eval
// fields task_id and completion (cut at set.stop), and sample, seed, tokens,
// prompt_tokens (suffix_tokens for infilling), steps, nfe, seconds and
// finish ("eos", "stop" or "length").
EvalGenerateStats GenerateCompletions(Engine& engine, const CodeTaskSet& set,
                                      const EvalGenerateOptions& o);

}  // namespace dllm::cli
