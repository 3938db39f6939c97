// The Generator's insides, shared by generator.cc (bookkeeping),
// diffusion_step.cc and autoregressive.cc (the two kinds of step).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "dllm/generate.h"
#include "dllm/generator.h"
#include "dllm/model.h"
#include "generate/policy.h"

namespace dllm::gen {

// One sequence: its request, its canvas and its progress.
struct Sequence {
  GenerateOptions opt;
  std::vector<int32_t> eos;  // opt.eos_ids, or the model's eos_token_id
  Canvas canvas;
  Plan plan;
  std::vector<int32_t> committed;  // by the last Step(), ascending
  int total_steps = 0;
  // Diffusion only: how many to commit, and which.
  const ScheduleRule* rule = nullptr;
  Picker picker{};
  // KV caches, allocated at the sequence's first cached step: its own and
  // its CFG twin's (diffusion), each (layers, 2, canvas length, kv width).
  KVCache cache, twin_cache;
  int cached_len = 0;        // causal: positions [0, cached_len) are current
  int refreshed_block = -1;  // diffusion: block of the last refresh
  int since_refresh = 0;     // diffusion: steps run since that refresh
  // Block-diffusion models: the first position committed since the cache
  // last ran it (its keys and values, and its block's, are stale).
  int stale_from = 1 << 30;
  int valid_end = 0;  // block-diffusion models: [0, valid_end) has run
};

// What opt.cache means for this model (kAuto resolved).
Cache EffectiveCache(const ModelConfig& cfg, const GenerateOptions& opt);
// Whether a sequence's steps go through Model::ForwardCached.
bool UsesCache(const ModelConfig& cfg, const GenerateOptions& opt);

struct GeneratorState {
  explicit GeneratorState(Model& m) : model(m) {}
  Model& model;
  std::map<int, Sequence> seqs;  // by id; ids grow, so this is Add order
  int next_id = 0;
  GenerateStats stats;
  // Buffers of the batched forward, kept between steps to spare allocations.
  std::vector<int32_t> ids, rows, cached_rows;
  std::vector<uint8_t> key_mask;
  std::vector<float> logits, cached_logits;
  std::vector<RowStats> row_stats;  // of the last stats forward
  std::vector<CachedRun> runs;
};

// Fills s.canvas and s.plan for a new request (already checked).
void StartDiffusion(Sequence& s, std::vector<int32_t> prompt,
                    const ModelConfig& cfg);
void StartCausal(Sequence& s, std::vector<int32_t> prompt,
                 const ModelConfig& cfg);

// One step for every live sequence; false when none was live.
bool StepDiffusion(GeneratorState& g);
bool StepCausal(GeneratorState& g);

// Checks a request as Generate() always has (validate.cc).
void CheckRequest(const ModelConfig& cfg, const std::vector<int32_t>& prompt,
                  const GenerateOptions& opt);

// The tokens decided so far: up to the first undecided position (a
// cancelled run) or the first EOS.
GenerateResult ResultOf(const Canvas& c, const std::vector<int32_t>& eos);

bool IsEos(int32_t token, const std::vector<int32_t>& eos);

}  // namespace dllm::gen
