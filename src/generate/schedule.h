// Schedules: how many of the ranked masked positions to commit at a step.
#pragma once

#include <vector>

#include "dllm/generate.h"

namespace dllm::gen {

// LLaDA's get_num_transfer_tokens: n masked over `steps` steps, n // steps
// each and one more for the first n % steps.
std::vector<int> EvenSplit(int n, int steps);

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

}  // namespace dllm::gen
