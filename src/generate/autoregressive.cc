// Autoregressive steps for causal models (the AR twins): one token per
// sequence per forward pass, left to right, through the same canvas,
// callback and token choice (temperature, top-k, top-p) as the diffusion
// steps, so the two can be compared on equal terms.
#include <algorithm>

#include "dllm/model.h"
#include "dllm/timer.h"
#include "generate/choose.h"
#include "generate/state.h"

namespace dllm::gen {

void StartCausal(Sequence& s, std::vector<int32_t> prompt,
                 const ModelConfig& cfg) {
  // Token choice follows the Dream path (temperature, top-p, top-k).
  s.opt.order = Order::kMaskgitPlus;
  Canvas& c = s.canvas;
  c.ids = std::move(prompt);
  c.prompt_len = int(c.ids.size());
  // The not-yet-generated tail shows as [MASK] where the model has one.
  c.ids.resize(c.ids.size() + size_t(s.opt.gen_length),
               cfg.mask_token_id >= 0 ? cfg.mask_token_id : 0);
  c.gen_end = int(c.ids.size());
  c.masked.assign(c.ids.size(), 0);
  std::fill(c.masked.begin() + c.prompt_len, c.masked.end(), 1);
  c.confidence.assign(c.ids.size(), 0.0f);
  c.block_begin = c.prompt_len, c.block_end = c.gen_end;
  s.total_steps = s.opt.gen_length;
}

Cache EffectiveCache(const ModelConfig& cfg, const GenerateOptions& opt) {
  if (opt.cache != Cache::kAuto) return opt.cache;
  if (cfg.causal || cfg.block_size > 0) return Cache::kDual;
  return Cache::kNone;
}

bool UsesCache(const ModelConfig& cfg, const GenerateOptions& opt) {
  return EffectiveCache(cfg, opt) != Cache::kNone;
}

namespace {

// Without a cache: each sequence's decided prefix, right-padded, every step
// from the start; the row wanted is each one's last. logit[a] gets row a.
void ForwardUncached(GeneratorState& g, const std::vector<Sequence*>& seqs,
                     std::vector<float*>& logit) {
  const int V = g.model.config().vocab_size;
  int T = 0;
  for (const Sequence* s : seqs)
    T = std::max(T, s->canvas.prompt_len + s->canvas.steps_done);
  g.ids.assign(seqs.size() * size_t(T), 0);
  g.key_mask.assign(g.ids.size(), 0);
  g.rows.clear();
  for (size_t a = 0; a < seqs.size(); ++a) {
    const Canvas& c = seqs[a]->canvas;
    const int n = c.prompt_len + c.steps_done;
    for (int i = 0; i < n; ++i) {
      g.ids[a * size_t(T) + size_t(i)] = c.ids[size_t(i)];
      g.key_mask[a * size_t(T) + size_t(i)] = 1;
    }
    g.rows.push_back(int32_t(a * size_t(T) + size_t(n - 1)));
  }
  ForwardBatch fb;
  fb.B = int64_t(seqs.size()), fb.T = T, fb.ids = g.ids.data(),
  fb.key_mask = g.key_mask.data();
  fb.rows = g.rows.data(), fb.n_rows = int64_t(g.rows.size());
  g.logits.resize(g.rows.size() * size_t(V));
  g.model.Forward(fb, g.logits.data());
  for (size_t a = 0; a < seqs.size(); ++a)
    logit.push_back(g.logits.data() + a * size_t(V));
}

// With the KV cache: each sequence runs only the positions its cache lacks
// (the prompt on its first step, then the token committed last), all in one
// call; the row wanted is each run's last.
void ForwardWithCache(GeneratorState& g, const std::vector<Sequence*>& seqs,
                      std::vector<float*>& logit) {
  const int V = g.model.config().vocab_size;
  g.runs.clear();
  g.cached_rows.clear();
  int64_t rows = 0;
  for (Sequence* s : seqs) {
    const Canvas& c = s->canvas;
    if (s->cache.empty())
      s->cache = KVCache(g.model.config(), int64_t(c.ids.size()));
    const int n = c.prompt_len + c.steps_done;
    CachedRun run;
    run.cache = &s->cache;
    run.p0 = s->cached_len;
    run.n = n - s->cached_len;
    run.ids = c.ids.data() + run.p0;
    g.runs.push_back(run);
    rows += run.n;
    g.cached_rows.push_back(int32_t(rows - 1));
    s->cached_len = n;
  }
  g.cached_logits.resize(g.cached_rows.size() * size_t(V));
  g.model.ForwardCached(g.runs.data(), int64_t(g.runs.size()),
                        g.cached_rows.data(), int64_t(g.cached_rows.size()),
                        g.cached_logits.data());
  for (size_t a = 0; a < seqs.size(); ++a)
    logit.push_back(g.cached_logits.data() + a * size_t(V));
}

}  // namespace

bool StepCausal(GeneratorState& g) {
  const ModelConfig& cfg = g.model.config();
  const int V = cfg.vocab_size;
  // Live sequences, those with a KV cache first (one forward call for each
  // kind present; together they count as one forward pass).
  std::vector<Sequence*> cached, plain;
  for (auto& [id, s] : g.seqs) {
    s.committed.clear();
    if (!s.canvas.done) (UsesCache(cfg, s.opt) ? cached : plain).push_back(&s);
  }
  if (cached.empty() && plain.empty()) return false;
  std::vector<Sequence*> live = cached;
  live.insert(live.end(), plain.begin(), plain.end());
  std::vector<float*> logit;  // per live sequence: (V) its last row
  Timer ft;
  if (!cached.empty()) ForwardWithCache(g, cached, logit);
  if (!plain.empty()) ForwardUncached(g, plain, logit);
  g.stats.forward_seconds += ft.Seconds();
  ++g.stats.forward_passes;
  std::vector<float> scratch;
  for (size_t a = 0; a < live.size(); ++a) {
    Sequence& s = *live[a];
    Canvas& c = s.canvas;
    // The random streams are keyed by the sequence's own step, which is
    // also its offset into the generation region.
    const int step = c.steps_done;
    const int pos = c.prompt_len + step;
    Choice ch = ChooseToken(logit[a], V, s.opt, s.eos, step, pos, scratch);
    c.ids[size_t(pos)] = ch.token;
    c.masked[size_t(pos)] = 0;
    c.confidence[size_t(pos)] = ch.confidence;
    c.steps_done = step + 1;
    s.committed.push_back(pos);
    ++g.stats.tokens;
    if ((IsEos(ch.token, s.eos) && s.opt.stop_at_eos) || pos + 1 >= c.gen_end)
      c.done = true;
  }
  return true;
}

}  // namespace dllm::gen
