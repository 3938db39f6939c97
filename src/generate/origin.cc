// Dream's "origin" sampler: instead of ranking, every masked position
// commits independently with the probability that the timesteps schedule
// moves it from masked at t to decided at s, 1 - s/t (all of them at the
// last step).
#include "base/rng.h"
#include "generate/policy.h"

namespace dllm::gen {

std::vector<int> PickOrigin(const StepView& v, int /*n: origin decides*/) {
  const Plan& plan = v.plan;
  const int i = plan.steps_in_block;
  const double p = i >= plan.steps_per_block - 1
                       ? 1.0
                       : 1.0 - double(plan.timesteps[size_t(i + 1)]) /
                                   double(plan.timesteps[size_t(i)]);
  std::vector<int> pick;
  for (int j = 0; j < v.m; ++j)
    if (RandomUniform(
            v.opt.seed,
            RandomStream(kOrigin, v.canvas.steps_done, v.positions[j]), 0) < p)
      pick.push_back(j);
  return pick;
}

}  // namespace dllm::gen
