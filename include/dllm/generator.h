// Public API: the generation stepper (DESIGN.md "The generation stepper").
// A Generator holds the live sequences of one model; each Step() runs one
// forward pass for all of them and commits tokens. Sequences join (Add) and
// leave (Cancel, Take, Remove) between steps, each with its own options, so a
// server can batch requests continuously. A sequence's tokens never depend on
// which others share its steps: its random numbers are keyed by its own seed,
// its own step counter and the position.
//
//   Generator g(model);
//   int id = g.Add(prompt, opt);
//   while (g.Step()) { ... g.canvas(id), g.committed(id) ... }
//   GenerateResult r = g.Take(id);
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "dllm/generate.h"

namespace dllm {

class Model;

namespace gen {
struct GeneratorState;
}

class Generator {
 public:
  // The model must outlive the Generator. Causal models (cfg.causal, the AR
  // twins) decode one token per step per sequence, left to right.
  explicit Generator(Model& model);
  ~Generator();
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  // Starts a sequence; it takes part from the next Step(). Checks the prompt
  // and options as Generate() does (dllm::Error on bad input, nothing added).
  // Ids are increasing from 0 and never reused.
  int Add(std::vector<int32_t> prompt, const GenerateOptions& opt);

  // Stops stepping a sequence; what it has decided stays (Result). A no-op
  // on a sequence that is already done.
  void Cancel(int id);

  // One step for every live sequence: advance its schedule, choose the rows
  // to run, one forward for all of them (CFG twins included), score, commit.
  // Sequences that finish stop being live. Returns false, without a forward
  // pass, when nothing was live.
  bool Step();

  bool Done(int id) const;  // finished or cancelled
  const Canvas& canvas(int id) const;
  // Positions the last Step() committed for this sequence, ascending.
  const std::vector<int32_t>& committed(int id) const;
  // Planned steps (fixed schedules) or the cap (adaptive ones, causal).
  int total_steps(int id) const;
  // Tokens decided so far: up to the first undecided position or EOS.
  GenerateResult Result(int id) const;
  // Result(id), then forgets the sequence.
  GenerateResult Take(int id);
  void Remove(int id);

  // Ids of the sequences not done, in the order they were added.
  std::vector<int> live() const;
  // Every sequence held (done or not), in the order they were added.
  std::vector<int> ids() const;

  // forward_passes, forward_seconds; seconds spent in Step(); tokens =
  // positions committed (before any trimming at EOS).
  const GenerateStats& stats() const;

  // Unknown ids (never added, or already taken) throw dllm::Error. The
  // references canvas() and committed() return stay valid until that
  // sequence is taken or removed; their contents change with each Step().

 private:
  std::unique_ptr<gen::GeneratorState> state_;
};

}  // namespace dllm
