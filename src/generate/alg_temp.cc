// Dream's alg_temp: rather than the n best, sample n positions from
// softmax(score / alg_temp) without replacement, as Gumbel top-k (perturb
// each score with Gumbel noise, keep the n largest), which draws the same
// distribution as Dream's torch.multinomial without replacement.
#include <algorithm>
#include <cmath>
#include <utility>

#include "base/rng.h"
#include "generate/policy.h"

namespace dllm::gen {

std::vector<int> PickAlgTemp(const StepView& v, int n) {
  // Nothing to sample when the schedule takes none or all of them.
  if (n <= 0 || n >= v.m) return PickBest(v, n);
  std::vector<std::pair<double, int>> keyed;
  keyed.reserve(size_t(v.m));
  for (int j = 0; j < v.m; ++j) {
    const double u = RandomUniform(
        v.opt.seed, RandomStream(kAlgTemp, v.canvas.steps_done, v.positions[j]),
        0);
    keyed.push_back({double(v.choices[j].confidence) / v.opt.alg_temp -
                         std::log(-std::log(u)),
                     j});
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](auto& x, auto& y) { return x.first > y.first; });
  std::vector<int> pick;
  for (int j = 0; j < n; ++j) pick.push_back(keyed[size_t(j)].second);
  return pick;
}

}  // namespace dllm::gen
