// Training is the same bits on every run, however the pool's threads are
// scheduled: resuming reproduces an uninterrupted run only if it is. Partial
// sums kept per ParallelFor slot (RmsNormBackward's dweight, the loss of
// CrossEntropyForwardBackward) used to hold whichever chunks a thread grabbed
// first, so their rounding changed from run to run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "base/thread_pool.h"
#include "dllm/train.h"

namespace dllm {
namespace {

// Sets the pool size for one test and restores the default (one per core).
class PoolSize {
 public:
  explicit PoolSize(int n) { SetThreads(n); }
  ~PoolSize() {
    SetThreads(int(std::max(1u, std::thread::hardware_concurrency())));
  }
};

TEST(Determinism, ParallelForSlotDependsOnlyOnTheChunk) {
  PoolSize pool(4);
  for (int rep = 0; rep < 50; ++rep) {
    std::mutex mu;
    std::map<size_t, int> slot_of;  // chunk begin -> slot
    ParallelFor(1000, 10, [&](size_t b, size_t e, int slot) {
      // Some work, so that the workers wake while chunks are left.
      volatile double x = 0;
      for (size_t i = b; i < e; ++i)
        for (int k = 0; k < 2000; ++k) x = x + double(i * k);
      std::lock_guard<std::mutex> lock(mu);
      slot_of[b] = slot;
    });
    ASSERT_EQ(slot_of.size(), 16u);  // 4 chunks per thread
    size_t c = 0;
    for (const auto& [begin, slot] : slot_of) {
      EXPECT_EQ(slot, int(c % 4))
          << "chunk " << c << " (from " << begin << "), repetition " << rep;
      ++c;
    }
  }
}

TEST(Determinism, GradientsAreTheSameBitsEveryTime) {
  PoolSize pool(4);
  ModelConfig c;
  c.arch = Arch::kLLaDA, c.n_layers = 2, c.d_model = 64, c.n_heads = 4,
  c.n_kv_heads = 4, c.head_dim = 16, c.d_ff = 128, c.vocab_size = 97,
  c.max_seq_len = 64, c.rope_theta = 10000, c.mask_token_id = 1,
  c.eos_token_id = 0;
  TrainableModel m(c, 3);
  TrainBatch b;
  b.B = 8, b.T = 32;
  for (int64_t i = 0; i < b.B * b.T; ++i) {
    b.ids.push_back(int32_t(2 + (i * 31) % 95));
    b.mask.push_back(uint8_t(i % 3 == 0));
  }
  b.p.assign(size_t(b.B), 0.4f);
  std::vector<float> first;
  double first_loss = 0;
  for (int rep = 0; rep < 20; ++rep) {
    m.ZeroGrads();
    const double loss = m.ForwardBackward(b, Objective::kMDM);
    std::vector<float> g(m.grads(), m.grads() + m.num_params());
    if (rep == 0) {
      first = g, first_loss = loss;
      continue;
    }
    ASSERT_EQ(loss, first_loss) << "repetition " << rep;
    ASSERT_EQ(0, std::memcmp(g.data(), first.data(), g.size() * 4))
        << "repetition " << rep;
  }
}

}  // namespace
}  // namespace dllm
