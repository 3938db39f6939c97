// One thread pool for the whole process, sized to the cores. Kernels split
// their work with ParallelFor; BLAS runs single-threaded inside each task so
// that the two never nest.
#pragma once

#include <cstddef>
#include <functional>

namespace dllm {

class ThreadPool {
 public:
  // n_threads <= 0: one per core.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(task, thread) for task in [0, n_tasks), spread over the threads
  // (the caller is thread 0). Returns when all are done. Tasks are handed out
  // dynamically; `thread` < size() indexes per-thread scratch.
  void Run(size_t n_tasks,
           const std::function<void(size_t task, int thread)>& fn);

 private:
  struct Impl;
  Impl* impl_;
  int n_threads_;
};

// The process-wide pool. SetThreads before first use changes its size.
ThreadPool& Pool();
void SetThreads(int n_threads);

// Splits [0, n) into contiguous chunks of at least `grain` and calls
// fn(begin, end, slot). `slot` < Pool().size() is never shared by two calls
// running at once (it indexes per-thread scratch), and it depends only on the
// chunk: slot s runs chunks s, s + S, s + 2S, ... in that order. So partial
// sums kept per slot and added up in slot order are the same bits on every
// run, however the threads are scheduled (training resumes reproducibly).
void ParallelFor(
    size_t n, size_t grain,
    const std::function<void(size_t begin, size_t end, int slot)>& fn);

}  // namespace dllm
