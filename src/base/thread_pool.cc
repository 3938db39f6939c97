#include "base/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace dllm {

namespace {
// Set while a thread runs pool tasks: a nested Run executes inline instead of
// deadlocking on the busy pool.
thread_local bool t_in_pool = false;
}  // namespace

// Spins briefly on an atomic before sleeping on a condition variable: a
// decoding step issues hundreds of Runs a few microseconds apart, and a
// futex wake-up per Run (tens of microseconds on a VM) would cost more than
// the work. About 100 microseconds of pause instructions, then sleep.
constexpr int kSpinIterations = 2048;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins until pred() holds or the spin budget is spent; returns pred().
template <class Pred>
bool SpinFor(const Pred& pred) {
  for (int i = 0; i < kSpinIterations; ++i) {
    if (pred()) return true;
    CpuRelax();
  }
  return pred();
}

struct ThreadPool::Impl {
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable cv_start, cv_done;
  // Written by Run before it bumps `generation` (release); read by workers
  // after they see the new generation (acquire).
  const std::function<void(size_t, int)>* fn = nullptr;
  size_t n_tasks = 0;
  std::atomic<size_t> next{0};
  std::atomic<int> generation{0};
  std::atomic<int> busy{0};
  std::atomic<bool> stop{false};

  void Work(int thread) {
    for (;;) {
      size_t t = next.fetch_add(1);
      if (t >= n_tasks) break;
      (*fn)(t, thread);
    }
  }

  void Loop(int thread) {
    t_in_pool = true;
    int seen = 0;
    for (;;) {
      auto started = [&] {
        return stop.load(std::memory_order_acquire) ||
               generation.load(std::memory_order_acquire) != seen;
      };
      if (!SpinFor(started)) {
        // Checked again under the mutex that Run bumps the generation
        // under, so a Run between the spin and the wait is not missed.
        std::unique_lock<std::mutex> lock(mu);
        cv_start.wait(lock, started);
      }
      if (stop.load(std::memory_order_acquire)) return;
      seen = generation.load(std::memory_order_acquire);
      Work(thread);
      if (busy.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mu);
        cv_done.notify_one();
      }
    }
  }
};

ThreadPool::ThreadPool(int n_threads) : impl_(new Impl) {
  if (n_threads <= 0)
    n_threads =
        static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads; ++i)
    impl_->workers.emplace_back([this, i] { impl_->Loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop.store(true, std::memory_order_release);
  }
  impl_->cv_start.notify_all();
  for (auto& w : impl_->workers) w.join();
  delete impl_;
}

void ThreadPool::Run(size_t n_tasks,
                     const std::function<void(size_t, int)>& fn) {
  if (n_tasks == 0) return;
  if (n_threads_ == 1 || n_tasks == 1 || t_in_pool) {
    for (size_t t = 0; t < n_tasks; ++t) fn(t, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->fn = &fn;
    impl_->n_tasks = n_tasks;
    impl_->next = 0;
    impl_->busy.store(n_threads_ - 1, std::memory_order_relaxed);
    impl_->generation.fetch_add(1, std::memory_order_release);
  }
  impl_->cv_start.notify_all();
  t_in_pool = true;
  impl_->Work(0);
  t_in_pool = false;
  auto done = [&] { return impl_->busy.load(std::memory_order_acquire) == 0; };
  if (!SpinFor(done)) {
    std::unique_lock<std::mutex> lock(impl_->mu);
    impl_->cv_done.wait(lock, done);
  }
  impl_->fn = nullptr;
}

namespace {
std::unique_ptr<ThreadPool>& PoolPtr() {
  static std::unique_ptr<ThreadPool> pool;
  return pool;
}
}  // namespace

ThreadPool& Pool() {
  auto& p = PoolPtr();
  if (!p) p = std::make_unique<ThreadPool>(0);
  return *p;
}

void SetThreads(int n_threads) {
  auto& p = PoolPtr();
  if (p && (n_threads <= 0 || p->size() == n_threads)) return;
  p = std::make_unique<ThreadPool>(n_threads);
}

void ParallelFor(size_t n, size_t grain,
                 const std::function<void(size_t, size_t, int)>& fn) {
  if (n == 0) return;
  ThreadPool& pool = Pool();
  grain = std::max<size_t>(1, grain);
  size_t max_chunks = (n + grain - 1) / grain;
  // A few interleaved chunks per slot balance work that is uneven along
  // [0, n) without much overhead.
  size_t chunks = std::min(max_chunks, static_cast<size_t>(pool.size()) * 4);
  if (pool.size() == 1) chunks = 1;
  size_t per = (n + chunks - 1) / chunks;
  chunks = (n + per - 1) / per;
  // One task per slot with a fixed list of chunks, rather than one task per
  // chunk: with chunks handed out as threads come free, which chunks a
  // thread's partial sums held depended on timing, and so did their rounding.
  // Idle threads still take whole slots from a late one.
  const size_t slots = std::min(chunks, static_cast<size_t>(pool.size()));
  pool.Run(slots, [&](size_t s, int) {
    for (size_t c = s; c < chunks; c += slots) {
      size_t b = c * per, e = std::min(n, b + per);
      fn(b, e, static_cast<int>(s));
    }
  });
}

}  // namespace dllm
