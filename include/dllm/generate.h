// Public API: diffusion generation. A canvas of [MASK] tokens is denoised by
// repeated forward passes; each step an *order* scores the masked positions
// and a *schedule* says how many of the best to commit (DESIGN.md "The
// canvas"). Generate() runs a batch to the end and reports each step through
// a callback; it is a loop over dllm::Generator (dllm/generator.h), the
// stepper that also lets sequences join and leave between steps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dllm {

class Model;

// Which masked positions go first.
enum class Order {
  kLowConfidence,  // LLaDA: softmax probability of the chosen token (unfiltered
                   // logits)
  kRandom,         // LLaDA: uniform random scores
  kOrigin,       // Dream: each masked position commits with probability 1 - s/t
  kMaskgitPlus,  // Dream: top-1 probability of the (filtered) distribution
  kTopkMargin,   // Dream: p1 - p2
  kEntropy,      // Dream: lowest entropy first
};

// How many to commit per step.
enum class Schedule {
  kDefault,     // the order's published pairing: kEvenBlocks for LLaDA orders,
                // kTimesteps for Dream's
  kEvenBlocks,  // LLaDA: steps split evenly over blocks, n masked spread as
                // n//steps (+1 for the first n%steps)
  kTimesteps,  // Dream: linspace(1, eps, steps+1); commit int(n (1 - s/t)), all
               // at the last step
  kThreshold,  // Fast-dLLM: every masked position in the block with confidence
               // >= threshold, at least one
  kFactor,     // Fast-dLLM factor rule: the largest n with (n + 1)(1 - c_n) <
               // factor
  kEntropyBound,  // EB-sampler: largest confidence-sorted prefix with sum(H) -
                  // max(H) <= gamma
};

// Which keys and values a step may take from earlier forward passes
// (DESIGN.md "Block diffusion and caches").
enum class Cache {
  kAuto,    // the exact cache where there is one: causal models keep a KV
            // cache, block-diffusion models the dual cache (exact for them:
            // later blocks are invisible, earlier ones final); full-attention
            // models none
  kNone,    // every step runs every position
  kPrefix,  // Fast-dLLM prefix cache: the prompt's and finished blocks' keys
            // come from the last refresh; a step runs the current block and
            // everything after it (causal models: the KV cache)
  kDual,    // Fast-dLLM dual cache: the masked suffix's keys are cached too;
            // a step runs only the current block (causal models: KV cache)
};

struct GenerateOptions {
  int gen_length = 64;  // tokens to generate (masks in the canvas)
  int steps =
      64;  // forward passes planned (fixed schedules); a cap for adaptive ones
  int block_length =
      0;  // semi-autoregressive block size; 0 = one block of gen_length
  Order order = Order::kLowConfidence;
  Schedule schedule = Schedule::kDefault;
  double temperature = 0.0;  // 0 = greedy
  double top_p = 1.0;        // Dream orders: nucleus filter (1 = off)
  int top_k = 0;             // Dream orders: top-k filter (0 = off)
  double alg_temp =
      0.0;  // Dream: >0 samples positions from softmax(confidence / alg_temp)
  double eps = 1e-3;  // Dream timesteps end at eps
  double cfg_scale =
      0.0;  // classifier-free guidance w: uncond + (w + 1)(cond - uncond)
  double threshold = 0.9;  // kThreshold
  double factor = 1.0;     // kFactor
  double gamma = 0.01;     // kEntropyBound, nats
  bool ban_eos = false;    // never choose EOS/EoT tokens
  bool eos_last =
      false;  // rank positions whose choice is EOS/EoT after all others
  bool stop_at_eos =
      true;  // stop once an EOS is committed with everything before it decided
  // The published LLaDA and Dream samplers let a position "choose" [MASK]
  // (it then stays masked, the step's count is spent on it, and a block can
  // end with masks in the answer). Off (the default): a choice of [MASK]
  // falls to the best real token. On: exactly the reference behaviour.
  bool reference_mask_choices = false;
  uint64_t seed = 0;
  // Caches for full-attention models are approximations (the cached keys go
  // stale as tokens are committed); a refresh runs every position again. A
  // refresh happens at each block's first step and, when refresh_every > 0,
  // every refresh_every steps within a block (1 = every step: the uncached
  // result).
  Cache cache = Cache::kAuto;
  int refresh_every = 0;
  std::vector<int32_t> suffix;  // infilling: tokens after the generated span
  std::vector<int32_t>
      eos_ids;  // EOS-like ids; empty = the model's eos_token_id
};

// The state of one sequence being generated.
struct Canvas {
  std::vector<int32_t> ids;       // prompt + generation region + suffix
  std::vector<uint8_t> masked;    // 1 where ids is still [MASK]
  std::vector<float> confidence;  // score of each position's last choice
  int prompt_len = 0;             // generation region is [prompt_len, gen_end)
  int gen_end = 0;
  int block = 0;  // current block index
  int block_begin = 0, block_end = 0;
  int steps_done = 0;
  bool done = false;
};

struct StepInfo {
  int step = 0;         // 0-based step of the batch
  int total_steps = 0;  // planned steps (fixed schedules) or the cap
  const std::vector<Canvas>* canvases = nullptr;
  // Positions committed this step, per sequence.
  const std::vector<std::vector<int32_t>>* committed = nullptr;
};

// Return false to cancel the generation.
using StepCallback = bool (*)(const StepInfo& info, void* user);

struct GenerateResult {
  std::vector<int32_t>
      tokens;  // generated tokens, trimmed at the first EOS (excluded)
  std::vector<int32_t> canvas;  // the whole final canvas, prompt included
  bool hit_eos = false;
  int steps = 0;  // steps that committed tokens for this sequence
};

struct GenerateStats {
  int forward_passes =
      0;  // NFE (a CFG step counts once: both halves share one forward)
  int64_t tokens = 0;  // generated tokens (after trimming)
  double seconds = 0;
  double forward_seconds = 0;
};

// Generates for every prompt in one batch (one forward pass per step for all
// of them). Errors (bad options, prompts too long) throw dllm::Error.
// StepInfo's canvases and committed are indexed like `prompts`; step counts
// the forward passes (0-based); returning false from on_step stops and
// returns what is decided so far.
std::vector<GenerateResult> Generate(
    Model& model, const std::vector<std::vector<int32_t>>& prompts,
    const GenerateOptions& opt, StepCallback on_step = nullptr,
    void* user = nullptr, GenerateStats* stats = nullptr);

// Names used on the command line: "low-confidence", "random", "origin",
// "maskgit-plus", "topk-margin", "entropy"; schedules "blocks", "timesteps",
// "threshold", "factor", "eb". Throw dllm::Error naming the valid choices.
Order ParseOrder(const std::string& name);
Schedule ParseSchedule(const std::string& name);
const char* OrderName(Order o);
const char* ScheduleName(Schedule s);
// "auto", "none", "prefix", "dual".
Cache ParseCache(const std::string& name);
const char* CacheName(Cache c);

// LLaDA's orders (low-confidence, random) choose tokens by Gumbel-max over the
// raw logits and pair with kEvenBlocks; every other order is Dream's.
bool IsLLaDAOrder(Order o);
// The schedule `opt` runs: opt.schedule, or for kDefault the order's
// published pairing. Never returns kDefault.
Schedule ResolveSchedule(const GenerateOptions& opt);

// Checks options against a model; throws a clear error for bad combinations.
void ValidateGenerateOptions(const GenerateOptions& opt, int prompt_len,
                             int max_seq_len);

}  // namespace dllm
