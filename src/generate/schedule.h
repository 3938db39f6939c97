// Schedules: how many of the ranked masked positions to commit at a step.
// The counting rules are plain functions of numbers (tested on their own);
// the *Rule functions adapt each to the ScheduleRule interface (policy.h).
#pragma once

#include <vector>

#include "dllm/generate.h"
#include "generate/policy.h"

namespace dllm::gen {

// LLaDA's get_num_transfer_tokens: n masked over `steps` steps, n // steps
// each and one more for the first n % steps.
std::vector<int> EvenSplit(int n, int steps);
// Element i of EvenSplit(n, steps), without building the vector.
int EvenSplitAt(int n, int steps, int i);

// Dream's timesteps linspace(1, eps, steps + 1) in float32, computed as
// torch.linspace does (from the start for the first half, from the end for
// the second) so that int(n * (1 - s / t)) truncates the same way.
std::vector<float> DreamTimesteps(int steps, float eps);

// Dream's count at step i of `steps`, with n positions still masked.
int DreamTransferCount(int n, int i, int steps,
                       const std::vector<float>& timesteps);

// Adaptive rules over confidences sorted in descending order (entropies in
// the same order). Each returns at least 1 when sorted is non-empty.
int ThresholdCount(const std::vector<float>& sorted_conf, double threshold);
int FactorCount(const std::vector<float>& sorted_conf, double factor);
int EntropyBoundCount(const std::vector<float>& sorted_entropy, double gamma);

// The rules as the stepper calls them (one per Schedule, see kSchedules).
int EvenBlocksRule(const StepView& v);
int TimestepsRule(const StepView& v);
int ThresholdRule(const StepView& v);
int FactorRule(const StepView& v);
int EntropyBoundRule(const StepView& v);

}  // namespace dllm::gen
