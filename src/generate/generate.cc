// Generate(): a batch run to the end as a loop over the Generator, keeping
// the callback's view (canvases and commits indexed by prompt) up to date.
#include "dllm/generate.h"

#include "dllm/error.h"
#include "dllm/generator.h"
#include "dllm/timer.h"

namespace dllm {

std::vector<GenerateResult> Generate(
    Model& model, const std::vector<std::vector<int32_t>>& prompts,
    const GenerateOptions& opt, StepCallback on_step, void* user,
    GenerateStats* stats) {
  Timer total_timer;
  DLLM_CHECK(!prompts.empty(), "generate: no prompts");
  Generator g(model);
  std::vector<int> ids;
  for (const auto& p : prompts) ids.push_back(g.Add(p, opt));

  // The callback sees copies: the Generator keeps its sequences by id, the
  // callback wants them as one vector in prompt order. Only sequences that
  // were live when a step began can have changed.
  std::vector<Canvas> canvases;
  std::vector<std::vector<int32_t>> committed(prompts.size());
  if (on_step)
    for (int id : ids) canvases.push_back(g.canvas(id));
  for (int step = 0;; ++step) {
    std::vector<uint8_t> was_live(ids.size(), 0);
    if (on_step)
      for (size_t b = 0; b < ids.size(); ++b) was_live[b] = !g.Done(ids[b]);
    if (!g.Step()) break;
    if (!on_step) continue;
    for (size_t b = 0; b < ids.size(); ++b) {
      if (!was_live[b]) {
        committed[b].clear();
        continue;
      }
      canvases[b] = g.canvas(ids[b]);
      committed[b] = g.committed(ids[b]);
    }
    StepInfo info;
    info.step = step;
    info.total_steps = g.total_steps(ids[0]);
    info.canvases = &canvases;
    info.committed = &committed;
    if (!on_step(info, user)) break;
  }

  std::vector<GenerateResult> out;
  GenerateStats local = g.stats();
  local.tokens = 0;  // here: the tokens returned, after trimming at EOS
  for (int id : ids) {
    out.push_back(g.Result(id));
    local.tokens += int64_t(out.back().tokens.size());
  }
  local.seconds = total_timer.Seconds();
  if (stats) *stats = local;
  return out;
}

}  // namespace dllm
