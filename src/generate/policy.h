// The policies a diffusion step is made of (DESIGN.md "The canvas"): an
// order scores every candidate (choose.h), a schedule says how many to
// commit, a picker says which. Each is a plain function behind one of the
// two small interfaces below, found through the tables in policy.cc, so the
// stepper never names a particular schedule or sampler.
//
// Adding a schedule: an enum value in dllm/generate.h, a count function
// (schedule.cc), a line in kSchedules (policy.cc).
#pragma once

#include <cstdint>
#include <vector>

#include "dllm/generate.h"
#include "generate/choose.h"

namespace dllm::gen {

// A sequence's progress through its schedule, beside the public Canvas.
struct Plan {
  int block_len = 0, n_blocks = 0;
  // Block k spans [base + k block_len, base + (k + 1) block_len), clipped to
  // the generated span: base is the prompt's end, or for block-diffusion
  // models the start of the model block holding the first generated token.
  int base = 0;
  int steps_per_block = 0;  // fixed schedules; 0 for adaptive ones
  int steps_in_block = 0;
  int block_masked = 0;  // masked positions of the block when it started
  // Dream's linspace(1, eps, steps_per_block + 1), for timesteps and origin.
  std::vector<float> timesteps;
};

// What a policy sees of one sequence at one step.
struct StepView {
  const Canvas& canvas;
  const Plan& plan;
  const GenerateOptions& opt;
  // This step's candidates (positions ascending) and their choices, m of
  // them; `ranked` lists candidate indices best first, ties to the left.
  // All empty when a fixed schedule is asked before the forward pass.
  const int32_t* positions = nullptr;
  const Choice* choices = nullptr;
  int m = 0;
  const std::vector<int>* ranked = nullptr;
};

struct ScheduleRule {
  Schedule schedule;
  const char* name;  // on the command line
  // Fixed rules spend opt.steps forward passes split evenly over the blocks
  // and know their count without scores, so steps that would commit nothing
  // are skipped before the forward; a block ends when its steps are spent.
  // Adaptive rules decide from the ranked scores, a block ends when nothing
  // in it is masked, and [MASK] is never a choice (they must progress).
  bool fixed;
  // How many of the ranked candidates to commit (clamped to m by the caller).
  // nullptr only for kDefault, which ResolveSchedule replaces.
  int (*count)(const StepView& v);
};

// The rule of a resolved schedule (never kDefault).
const ScheduleRule& RuleOf(Schedule s);

// Which candidates (indices into the view's) to commit, given the
// schedule's count n.
struct Picker {
  std::vector<int> (*pick)(const StepView& v, int n);
  // The picker decides how many by itself (Dream's origin): the schedule's
  // count is not asked and no step is skipped for committing nothing.
  bool own_count;
};

// The picker `opt` asks for: origin, alg_temp sampling, or the best n.
Picker PickerFor(const GenerateOptions& opt);

// The n best by rank (the default picker).
std::vector<int> PickBest(const StepView& v, int n);
// Dream's alg_temp > 0: n positions sampled from softmax(score / alg_temp)
// (alg_temp.cc).
std::vector<int> PickAlgTemp(const StepView& v, int n);
// Dream's origin: each candidate independently, probability 1 - s/t
// (origin.cc).
std::vector<int> PickOrigin(const StepView& v, int n);

// Masked positions of `c` in [begin, end).
int CountMasked(const Canvas& c, int begin, int end);

}  // namespace dllm::gen
