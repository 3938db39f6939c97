// Checks on a generation request, before anything is allocated: every
// message names the option and what was expected.
#include <cmath>

#include "dllm/config.h"
#include "dllm/error.h"
#include "generate/policy.h"
#include "generate/state.h"

namespace dllm {

void ValidateGenerateOptions(const GenerateOptions& o, int prompt_len,
                             int max_seq_len) {
  DLLM_CHECK(o.gen_length >= 1, "gen length must be at least 1, got ",
             o.gen_length);
  const int block = o.block_length > 0 ? o.block_length : o.gen_length;
  DLLM_CHECK(o.block_length >= 0, "block length must be positive, got ",
             o.block_length);
  DLLM_CHECK(o.gen_length % block == 0, "gen length ", o.gen_length,
             " is not a multiple of the block length ", block);
  const int n_blocks = o.gen_length / block;
  const Schedule sched = ResolveSchedule(o);
  DLLM_CHECK(o.order != Order::kOrigin || sched == Schedule::kTimesteps,
             "the origin sampler commits by Dream's timesteps; it does not "
             "combine with the ",
             ScheduleName(sched), " schedule");
  if (gen::RuleOf(sched).fixed) {
    DLLM_CHECK(o.steps >= 1, "steps must be at least 1, got ", o.steps);
    DLLM_CHECK(o.steps % n_blocks == 0, "steps (", o.steps,
               ") must be a multiple of the number of blocks (", n_blocks,
               " = gen length ", o.gen_length, " / block length ", block, ")");
  }
  DLLM_CHECK(o.steps <= 1000000, "steps ", o.steps, " is absurd");
  const int64_t total =
      int64_t(prompt_len) + o.gen_length + int64_t(o.suffix.size());
  DLLM_CHECK(total <= max_seq_len, "prompt (", prompt_len,
             " tokens) + gen length (", o.gen_length, ")",
             o.suffix.empty() ? "" : " + suffix", " = ", total,
             " tokens exceeds the model's context of ", max_seq_len);
  for (double x : {o.temperature, o.top_p, o.alg_temp, o.eps, o.cfg_scale,
                   o.threshold, o.factor, o.gamma})
    DLLM_CHECK(std::isfinite(x),
               "generation options must be finite numbers, got ", x);
  DLLM_CHECK(o.temperature == 0 || o.temperature >= 1e-6,
             "temperature must be 0 (greedy) or at least 1e-6, got ",
             o.temperature);
  DLLM_CHECK(o.temperature >= 0 && std::isfinite(o.temperature),
             "temperature must be >= 0, got ", o.temperature);
  DLLM_CHECK(o.top_p > 0 && o.top_p <= 1, "top-p must be in (0, 1], got ",
             o.top_p);
  DLLM_CHECK(o.top_k >= 0, "top-k must be >= 0, got ", o.top_k);
  DLLM_CHECK(o.alg_temp >= 0, "alg-temp must be >= 0, got ", o.alg_temp);
  DLLM_CHECK(o.eps > 0 && o.eps < 1, "eps must be in (0, 1), got ", o.eps);
  DLLM_CHECK(o.cfg_scale >= 0, "cfg scale must be >= 0, got ", o.cfg_scale);
  DLLM_CHECK(o.threshold >= 0 && o.threshold <= 1,
             "threshold must be in [0, 1], got ", o.threshold);
  DLLM_CHECK(o.factor > 0, "factor must be > 0, got ", o.factor);
  DLLM_CHECK(o.gamma >= 0, "gamma must be >= 0, got ", o.gamma);
  DLLM_CHECK(o.refresh_every >= 0, "refresh must be >= 0, got ",
             o.refresh_every);
}

namespace gen {

void CheckRequest(const ModelConfig& cfg, const std::vector<int32_t>& prompt,
                  const GenerateOptions& opt) {
  const int V = cfg.vocab_size;
  if (cfg.causal) {
    // An AR model reads only the length, the token choice and the EOS
    // options; its forward checks the prompt's ids.
    DLLM_CHECK(opt.gen_length >= 1, "gen length must be at least 1");
    DLLM_CHECK(int64_t(prompt.size()) + opt.gen_length <= cfg.max_seq_len,
               "prompt (", prompt.size(),
               " tokens) + gen length exceeds the model's context of ",
               cfg.max_seq_len);
    DLLM_CHECK(opt.suffix.empty(),
               "infilling needs a diffusion model; this one is causal");
    DLLM_CHECK(!prompt.empty(),
               "autoregressive generation needs a non-empty prompt");
    DLLM_CHECK(opt.refresh_every >= 0, "refresh must be >= 0, got ",
               opt.refresh_every);
    return;
  }
  DLLM_CHECK(cfg.mask_token_id >= 0 && cfg.mask_token_id < V,
             "the model has no mask token (mask_token_id ", cfg.mask_token_id,
             ")");
  ValidateGenerateOptions(opt, int(prompt.size()), cfg.max_seq_len);
  for (size_t i = 0; i < prompt.size(); ++i)
    DLLM_CHECK(prompt[i] >= 0 && prompt[i] < V, "prompt token ", prompt[i],
               " at position ", i, " is outside the vocabulary [0, ", V, ")");
  for (int32_t t : opt.suffix)
    DLLM_CHECK(t >= 0 && t < V, "suffix token ", t,
               " is outside the vocabulary [0, ", V, ")");
}

}  // namespace gen
}  // namespace dllm
