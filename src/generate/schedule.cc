#include "generate/schedule.h"

#include <algorithm>

namespace dllm::gen {

int EvenSplitAt(int n, int steps, int i) {
  if (steps <= 0) return 0;
  return n / steps + (i < n % steps ? 1 : 0);
}

std::vector<int> EvenSplit(int n, int steps) {
  std::vector<int> out(size_t(std::max(steps, 0)));
  for (int i = 0; i < steps; ++i) out[size_t(i)] = EvenSplitAt(n, steps, i);
  return out;
}

std::vector<float> DreamTimesteps(int steps, float eps) {
  const int n = steps + 1;
  std::vector<float> t(static_cast<size_t>(n));
  if (n == 1) {
    t[0] = 1.0f;
    return t;
  }
  const float step = (eps - 1.0f) / float(n - 1);
  const int halfway = n / 2;
  for (int i = 0; i < n; ++i)
    t[size_t(i)] =
        i < halfway ? 1.0f + step * float(i) : eps - step * float(n - i - 1);
  return t;
}

int DreamTransferCount(int n, int i, int steps, const std::vector<float>& ts) {
  if (i >= steps - 1) return n;
  const float t = ts[size_t(i)], s = ts[size_t(i + 1)];
  const float frac = 1.0f - s / t;
  return int(float(n) * frac);
}

int ThresholdCount(const std::vector<float>& c, double threshold) {
  if (c.empty()) return 0;
  int k = 0;
  const float tau = float(threshold);  // compare in the scores' own precision
  while (k < int(c.size()) && c[size_t(k)] >= tau) ++k;
  return std::max(k, 1);
}

int FactorCount(const std::vector<float>& c, double factor) {
  if (c.empty()) return 0;
  // Commit the n best while each of them, the j-th, has (j + 1)(1 - c_j) <
  // factor.
  int k = 1;
  while (k < int(c.size()) && double(k + 2) * (1.0 - c[size_t(k)]) < factor)
    ++k;
  return k;
}

int EntropyBoundCount(const std::vector<float>& h, double gamma) {
  if (h.empty()) return 0;
  double sum = h[0], mx = h[0];
  int k = 1;
  while (k < int(h.size())) {
    double s2 = sum + h[size_t(k)], m2 = std::max(mx, double(h[size_t(k)]));
    if (s2 - m2 > gamma) break;
    sum = s2, mx = m2, ++k;
  }
  return k;
}

namespace {

// The candidates' confidences (or entropies), best first.
std::vector<float> Ranked(const StepView& v, bool entropy) {
  std::vector<float> out;
  if (!v.ranked) return out;
  out.reserve(v.ranked->size());
  for (int j : *v.ranked)
    out.push_back(entropy ? v.choices[j].entropy : v.choices[j].confidence);
  return out;
}

}  // namespace

int EvenBlocksRule(const StepView& v) {
  // Spread over the block's steps what was masked when the block started, so
  // the count does not drift when a position keeps choosing [MASK].
  return EvenSplitAt(v.plan.block_masked, v.plan.steps_per_block,
                     v.plan.steps_in_block);
}

int TimestepsRule(const StepView& v) {
  // Dream counts what is still masked up to the block's end, earlier blocks
  // included (a position that chose [MASK] competes again).
  const Canvas& c = v.canvas;
  return DreamTransferCount(CountMasked(c, c.prompt_len, c.block_end),
                            v.plan.steps_in_block, v.plan.steps_per_block,
                            v.plan.timesteps);
}

int ThresholdRule(const StepView& v) {
  return ThresholdCount(Ranked(v, false), v.opt.threshold);
}

int FactorRule(const StepView& v) {
  return FactorCount(Ranked(v, false), v.opt.factor);
}

int EntropyBoundRule(const StepView& v) {
  return EntropyBoundCount(Ranked(v, true), v.opt.gamma);
}

}  // namespace dllm::gen
