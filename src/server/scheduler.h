// Continuous batching: one thread owns the model and a Generator. HTTP
// threads Submit() checked requests and read their own job's events; between
// steps the scheduler admits queued jobs (up to max_batch live), steps them
// all with one forward pass, pushes each job's newly final text, and retires
// the finished, the cancelled (client gone) and the late (deadline).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/api.h"

namespace dllm {
class Engine;
}

namespace dllm::server {

using Clock = std::chrono::steady_clock;

struct Event {
  enum class Kind {
    kStarted,  // joined the batch (no error can come before text now)
    kText,     // newly final text
    kCanvas,   // the canvas after a step (requests with `diffusing`)
    kDone,     // finish_reason and usage set
    kError,    // status and error set; nothing follows
  };
  Kind kind = Kind::kText;
  std::string text;
  std::string finish_reason;  // "stop" or "length"
  Usage usage;
  int status = 0;
  std::string error_json;
  CanvasFrame frame;  // kCanvas
};

// One request's mailbox between the scheduler and its HTTP thread.
class Job {
 public:
  Job(GenRequest req, Clock::time_point deadline)
      : req(std::move(req)), deadline(deadline) {}
  const GenRequest req;
  const Clock::time_point deadline;
  // Set by the HTTP thread when its client went away; the scheduler drops
  // the sequence at its next step.
  std::atomic<bool> cancelled{false};

  // A check the scheduler runs before each step of this job (and before
  // admitting it): true when the client has gone away. The HTTP thread sets
  // it while it holds the connection and clears it before letting go, so
  // the check never runs on a connection that is no longer this job's.
  void SetClientGoneProbe(std::function<bool()> probe);
  void ClearClientGoneProbe() { SetClientGoneProbe(nullptr); }
  // Runs the probe; true (and `cancelled` set) when the client is gone.
  bool ClientGone();

  void Push(Event e);
  // The next event, or false when none came before `until`.
  bool Pop(Event* e, Clock::time_point until);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  std::mutex probe_mu_;
  std::function<bool()> probe_;
};

// Counters for /metrics (Prometheus text).
struct Metrics {
  std::atomic<int64_t> requests{0};  // accepted into the queue
  std::atomic<int64_t> rejected{0};  // 429
  std::atomic<int64_t> finished{0};
  std::atomic<int64_t> cancelled{0};  // client went away
  std::atomic<int64_t> timed_out{0};
  std::atomic<int64_t> failed{0};
  std::atomic<int64_t> prompt_tokens{0};
  std::atomic<int64_t> completion_tokens{0};
  std::atomic<int64_t> steps{0};
  std::atomic<int64_t> step_rows{0};  // sum of batch sizes over steps
  std::atomic<int64_t> step_micros{0};
  std::atomic<int> queue_depth{0};
  std::atomic<int> batch_size{0};
};

class Scheduler {
 public:
  // step_delay_ms: see ServerOptions (testing).
  Scheduler(Engine& engine, int max_batch, int max_queue,
            double step_delay_ms = 0);
  ~Scheduler();
  void Start();
  // Ends every job with a 503 and joins the thread.
  void Stop();
  // Queues a job; nullptr when max_batch + max_queue jobs are in (429).
  std::shared_ptr<Job> Submit(GenRequest req, Clock::time_point deadline);
  // Wakes the thread (a job was cancelled while it waited for work).
  void Wake();
  const Metrics& metrics() const { return metrics_; }
  std::string MetricsText() const;

 private:
  struct Live;
  void Loop();

  Engine& engine_;
  const int max_batch_, max_queue_;
  const double step_delay_ms_;
  Metrics metrics_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> pending_;
  int live_count_ = 0;  // under mu_, with pending_, for the 429 check
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace dllm::server
