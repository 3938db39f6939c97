// Per-position choice: which token a masked position would take this step,
// and the score an order ranks it by. Pure functions of one logits row and
// counter-based random numbers, so results do not depend on batching or
// threads.
#pragma once

#include <cstdint>
#include <vector>

#include "dllm/generate.h"
#include "ops/ops.h"

namespace dllm::gen {

struct Choice {
  int32_t token = 0;
  float confidence = 0;  // higher commits earlier
  float entropy = 0;     // nats, of the distribution the token came from
  // When token is [MASK]: the best other token under the same random draws,
  // committed instead if the position is picked (unless the options ask
  // for the reference samplers' behaviour); -1 otherwise.
  int32_t fallback = -1;
};

// Purposes of random draws, so that different uses never share numbers.
enum RandomTag : uint64_t {
  kGumbel = 1,
  kRandomOrder,
  kOrigin,
  kCategorical,
  kAlgTemp
};

// The stream key for (tag, step, position).
uint64_t RandomStream(RandomTag tag, int step, int position);

// Whether a choice depends on the logits only through their RowStats
// (after bans): the deterministic samplers (temperature 0; Dream's orders
// with no top-p and top-k 0 or 1). Then ChoiceFromStats gives the choice
// ChooseToken would, and a GPU returns only the statistics.
bool StatsDecide(const GenerateOptions& opt);
Choice ChoiceFromStats(const ops::RowStats& st, const GenerateOptions& opt,
                       const std::vector<int32_t>& eos_ids, int step,
                       int position);

// Chooses a token for one position from its logits `row` (length V, modified
// in place: bans and filters). `step` is the sequence's own step counter.
Choice ChooseToken(float* row, int V, const GenerateOptions& opt,
                   const std::vector<int32_t>& eos_ids, int step, int position,
                   std::vector<float>& scratch);

}  // namespace dllm::gen
