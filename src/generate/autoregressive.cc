// Autoregressive decoding for causal models (the AR twins): one token per
// forward pass, left to right, through the same canvas, callback and token
// choice (temperature, top-k, top-p) as the diffusion loop.
#include <algorithm>

#include "base/error.h"
#include "base/timer.h"
#include "dllm/generate.h"
#include "dllm/model.h"
#include "generate/choose.h"

namespace dllm::gen {

std::vector<GenerateResult> GenerateAutoregressive(
    Model& model, const std::vector<std::vector<int32_t>>& prompts,
    const GenerateOptions& opt, const std::vector<int32_t>& eos,
    StepCallback on_step, void* user, GenerateStats* stats) {
  Timer total;
  const ModelConfig& cfg = model.config();
  const int V = cfg.vocab_size;
  DLLM_CHECK(opt.suffix.empty(),
             "infilling needs a diffusion model; this one is causal");
  const int B = int(prompts.size());
  std::vector<Canvas> canvases(static_cast<size_t>(B));
  for (int b = 0; b < B; ++b) {
    Canvas& c = canvases[size_t(b)];
    DLLM_CHECK(!prompts[size_t(b)].empty(),
               "autoregressive generation needs a non-empty prompt");
    c.ids = prompts[size_t(b)];
    c.prompt_len = int(c.ids.size());
    c.ids.resize(c.ids.size() + size_t(opt.gen_length),
                 cfg.mask_token_id >= 0 ? cfg.mask_token_id : 0);
    c.gen_end = int(c.ids.size());
    c.masked.assign(c.ids.size(), 0);
    std::fill(c.masked.begin() + c.prompt_len, c.masked.end(), 1);
    c.confidence.assign(c.ids.size(), 0.0f);
    c.block_begin = c.prompt_len, c.block_end = c.gen_end;
  }
  // Token choice follows the Dream path (temperature, top-p, top-k).
  GenerateOptions choose = opt;
  choose.order = Order::kMaskgitPlus;
  GenerateStats st;
  std::vector<std::vector<int32_t>> committed(static_cast<size_t>(B));
  std::vector<float> logits, scratch;
  for (int step = 0; step < opt.gen_length; ++step) {
    std::vector<int> active;
    for (int b = 0; b < B; ++b)
      if (!canvases[size_t(b)].done) active.push_back(b);
    if (active.empty()) break;
    // Sequences of this step, right-padded; the row wanted is each one's last.
    int T = 0;
    for (int b : active) T = std::max(T, canvases[size_t(b)].prompt_len + step);
    std::vector<int32_t> ids(active.size() * size_t(T), 0), rows;
    std::vector<uint8_t> mask(ids.size(), 0);
    for (size_t a = 0; a < active.size(); ++a) {
      const Canvas& c = canvases[size_t(active[a])];
      const int n = c.prompt_len + step;
      for (int i = 0; i < n; ++i)
        ids[a * size_t(T) + size_t(i)] = c.ids[size_t(i)],
                            mask[a * size_t(T) + size_t(i)] = 1;
      rows.push_back(int32_t(a * size_t(T) + size_t(n - 1)));
    }
    ForwardBatch fb;
    fb.B = int64_t(active.size()), fb.T = T, fb.ids = ids.data(),
    fb.key_mask = mask.data();
    fb.rows = rows.data(), fb.n_rows = int64_t(rows.size());
    logits.resize(rows.size() * size_t(V));
    Timer ft;
    model.Forward(fb, logits.data());
    st.forward_seconds += ft.Seconds();
    ++st.forward_passes;
    for (auto& v : committed) v.clear();
    for (size_t a = 0; a < active.size(); ++a) {
      Canvas& c = canvases[size_t(active[a])];
      const int pos = c.prompt_len + step;
      Choice ch = ChooseToken(logits.data() + a * size_t(V), V, choose, eos,
                              step, pos, scratch);
      c.ids[size_t(pos)] = ch.token;
      c.masked[size_t(pos)] = 0;
      c.confidence[size_t(pos)] = ch.confidence;
      c.steps_done = step + 1;
      committed[size_t(active[a])].push_back(pos);
      const bool is_eos =
          std::find(eos.begin(), eos.end(), ch.token) != eos.end();
      if ((is_eos && opt.stop_at_eos) || pos + 1 >= c.gen_end) c.done = true;
    }
    if (on_step) {
      StepInfo info;
      info.step = step;
      info.total_steps = opt.gen_length;
      info.canvases = &canvases;
      info.committed = &committed;
      if (!on_step(info, user)) break;
    }
  }
  std::vector<GenerateResult> out = Results(canvases, eos);
  for (const auto& r : out) st.tokens += int64_t(r.tokens.size());
  st.seconds = total.Seconds();
  if (stats) *stats = st;
  return out;
}

}  // namespace dllm::gen
