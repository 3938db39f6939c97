// AdamW, gradient clipping and the learning-rate schedule.
#include <cmath>

#include "base/thread_pool.h"
#include "dllm/train.h"

namespace dllm {

void AdamW::Update(TrainableModel& model, float lr, int64_t step) {
  const float b1 = opt_.beta1, b2 = opt_.beta2;
  const float c1 = 1.0f - std::pow(b1, float(step)),
              c2 = 1.0f - std::pow(b2, float(step));
  float* p = model.params();
  const float* g = model.grads();
  for (const auto& s : model.slots()) {
    // Decoupled weight decay on matrices only (not norms, biases, embeddings).
    const float decay = s.decay ? lr * opt_.weight_decay : 0.0f;
    ParallelFor(size_t(s.numel), 1 << 14, [&](size_t b, size_t e, int) {
      for (size_t j = size_t(s.offset) + b; j < size_t(s.offset) + e; ++j) {
        m_[j] = b1 * m_[j] + (1 - b1) * g[j];
        v_[j] = b2 * v_[j] + (1 - b2) * g[j] * g[j];
        const float mh = m_[j] / c1, vh = v_[j] / c2;
        p[j] -= lr * mh / (std::sqrt(vh) + opt_.eps) + decay * p[j];
      }
    });
  }
}

double ClipGradNorm(TrainableModel& model, double max_norm) {
  const int64_t n = model.num_params();
  float* g = model.grads();
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(g[i]) * g[i];
  const double norm = std::sqrt(ss);
  if (max_norm > 0 && norm > max_norm) {
    const float s = float(max_norm / (norm + 1e-6));
    for (int64_t i = 0; i < n; ++i) g[i] *= s;
  }
  return norm;
}

double ScheduledLR(int64_t step, int64_t warmup, int64_t total, double lr,
                   double min_lr) {
  if (warmup > 0 && step <= warmup) return lr * double(step) / double(warmup);
  if (step >= total) return min_lr;
  const double progress =
      double(step - warmup) / double(std::max<int64_t>(1, total - warmup));
  return min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

}  // namespace dllm
