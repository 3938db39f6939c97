// Public API: wall-clock timing for logs and benchmarks.
#pragma once

#include <chrono>

namespace dllm {

inline double NowSeconds() {
  using Clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

// Measures from construction (or the last Reset) to now.
class Timer {
 public:
  Timer() : start_(NowSeconds()) {}
  void Reset() { start_ = NowSeconds(); }
  double Seconds() const { return NowSeconds() - start_; }
  double Millis() const { return 1e3 * Seconds(); }

 private:
  double start_;
};

}  // namespace dllm
