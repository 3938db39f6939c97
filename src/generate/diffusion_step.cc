// One diffusion step for every live sequence: advance each one's schedule to
// a step that commits something, one forward pass for all of them (and the
// unconditional twins of those under CFG) with logits only for the masked
// positions up to each one's block end, then per sequence an order scores
// the candidates, the schedule says how many and the picker which.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/thread_pool.h"
#include "dllm/model.h"
#include "dllm/timer.h"
#include "generate/choose.h"
#include "generate/policy.h"
#include "generate/schedule.h"
#include "generate/state.h"

namespace dllm::gen {

namespace {

void StartBlock(Sequence& s, int block) {
  Canvas& c = s.canvas;
  Plan& p = s.plan;
  c.block = block;
  c.block_begin = std::max(c.prompt_len, p.base + block * p.block_len);
  c.block_end = std::min(c.gen_end, p.base + (block + 1) * p.block_len);
  p.steps_in_block = 0;
  p.block_masked = CountMasked(c, c.block_begin, c.block_end);
}

// Brings a sequence to its next step that needs a forward pass: past spent
// blocks and past steps whose fixed count is 0 (the same result as the
// reference, one forward pass fewer; they still count in steps_done so the
// step numbers and random streams line up with it). False once it is done.
bool Advance(Sequence& s) {
  Canvas& c = s.canvas;
  Plan& p = s.plan;
  const ScheduleRule& rule = *s.rule;
  for (;;) {
    const bool spent = rule.fixed
                           ? p.steps_in_block >= p.steps_per_block
                           : CountMasked(c, c.block_begin, c.block_end) == 0;
    if (spent) {
      if (c.block + 1 >= p.n_blocks) {
        c.done = true;
        return false;
      }
      StartBlock(s, c.block + 1);
      continue;
    }
    if (rule.fixed && !s.picker.own_count &&
        rule.count(StepView{c, p, s.opt}) == 0) {
      ++p.steps_in_block, ++c.steps_done;
      continue;
    }
    return true;
  }
}

// Done once an EOS is committed with nothing masked before it (when
// stop_at_eos), or once nothing is masked at all.
bool Finished(const Canvas& c, const GenerateOptions& opt,
              const std::vector<int32_t>& eos) {
  for (int i = c.prompt_len; i < c.gen_end; ++i) {
    if (c.masked[size_t(i)]) return false;
    if (opt.stop_at_eos && IsEos(c.ids[size_t(i)], eos)) return true;
  }
  return true;
}

// Ranks, counts, picks and commits for one sequence whose m candidates
// (positions ascending) have been scored.
void Commit(Sequence& s, const int32_t* positions, const Choice* choices, int m,
            int32_t mask_id, GenerateStats& stats) {
  Canvas& c = s.canvas;
  std::vector<int> ranked(static_cast<size_t>(m));
  std::iota(ranked.begin(), ranked.end(), 0);
  // Highest score first; ties go to the leftmost position.
  std::stable_sort(ranked.begin(), ranked.end(), [&](int x, int y) {
    return choices[x].confidence > choices[y].confidence;
  });
  const StepView v{c, s.plan, s.opt, positions, choices, m, &ranked};
  const int n = s.picker.own_count ? 0 : std::min(s.rule->count(v), m);
  for (int j : s.picker.pick(v, n)) {
    const int p = positions[j];
    // The reference samplers let a pick of [MASK] stay masked: its share of
    // the step is spent on nothing, and a block can end with [MASK] in the
    // answer (the text stops there). By default the best real token goes in.
    c.ids[size_t(p)] =
        choices[j].fallback >= 0 ? choices[j].fallback : choices[j].token;
    if (c.ids[size_t(p)] == mask_id) continue;  // chose [MASK]: stays masked
    c.masked[size_t(p)] = 0;
    c.confidence[size_t(p)] = choices[j].confidence;
    s.committed.push_back(p);
    s.stale_from = std::min(s.stale_from, p);
  }
  std::sort(s.committed.begin(), s.committed.end());
  stats.tokens += int64_t(s.committed.size());
  ++s.plan.steps_in_block;
  ++c.steps_done;
  if (Finished(c, s.opt, s.eos) &&
      (s.opt.stop_at_eos || CountMasked(c, c.prompt_len, c.gen_end) == 0))
    c.done = true;
}

}  // namespace

void StartDiffusion(Sequence& s, std::vector<int32_t> prompt,
                    const ModelConfig& cfg) {
  const GenerateOptions& opt = s.opt;
  s.rule = &RuleOf(ResolveSchedule(opt));
  s.picker = PickerFor(opt);
  Canvas& c = s.canvas;
  c.ids = std::move(prompt);
  c.prompt_len = int(c.ids.size());
  c.ids.insert(c.ids.end(), size_t(opt.gen_length), cfg.mask_token_id);
  c.gen_end = int(c.ids.size());
  c.ids.insert(c.ids.end(), opt.suffix.begin(), opt.suffix.end());
  c.masked.assign(c.ids.size(), 0);
  std::fill(c.masked.begin() + c.prompt_len, c.masked.begin() + c.gen_end, 1);
  c.confidence.assign(c.ids.size(), 0.0f);
  Plan& p = s.plan;
  p.block_len = opt.block_length > 0 ? opt.block_length : opt.gen_length;
  p.base = c.prompt_len;
  p.n_blocks = opt.gen_length / p.block_len;
  p.steps_per_block = s.rule->fixed ? opt.steps / p.n_blocks : 0;
  if (cfg.block_size > 0) {
    // A block-diffusion model's blocks sit at fixed positions (multiples of
    // its block size from the start), so decode in them: every step then
    // works on a block as the model was trained, and the blocks before it
    // are final (which makes the cache exact). The first block is the rest
    // of the prompt's last one and may be short, and so may the last. The
    // steps per block are those the options give for whole blocks.
    const int N = cfg.block_size;
    if (opt.block_length == 0) p.block_len = N;
    p.base = c.prompt_len - c.prompt_len % N;
    p.n_blocks = (c.gen_end - p.base + p.block_len - 1) / p.block_len;
    const int whole = std::max(1, opt.gen_length / p.block_len);
    p.steps_per_block = s.rule->fixed ? std::max(1, opt.steps / whole) : 0;
    s.total_steps =
        s.rule->fixed ? p.steps_per_block * p.n_blocks : opt.gen_length;
  }
  p.timesteps = DreamTimesteps(std::max(p.steps_per_block, 1), float(opt.eps));
  if (cfg.block_size <= 0)
    s.total_steps = s.rule->fixed ? opt.steps : opt.gen_length;
  StartBlock(s, 0);
}

namespace {

// A live sequence's candidates: cand_pos[k0, k1) are its masked positions up
// to its block's end; cond[k] / uncond[k] will point at their logits (the
// unconditional twin's under CFG, else null).
struct LiveSeq {
  Sequence* s;
  size_t k0, k1;
};

// The row of logits that scores position p (Dream: the logits at i - 1
// predict token i; position 0 uses row 0).
int RowOf(const ModelConfig& cfg, int p) {
  return cfg.shift_logits ? std::max(p - 1, 0) : p;
}

// The CFG twin's tokens: every prompt and suffix token masked.
void TwinIds(const Canvas& c, int32_t mask_id, int32_t* out) {
  for (size_t i = 0; i < c.ids.size(); ++i) {
    const bool given = int(i) < c.prompt_len || int(i) >= c.gen_end;
    out[i] = given ? mask_id : c.ids[i];
  }
}

// Whether every sequence of a forward call decides from statistics
// (StatsDecide, no CFG) under the same bans, and those bans: end-of-sequence
// ids with ban_eos, [MASK] under adaptive schedules (as the logits path
// sets them).
bool StatsBans(const std::vector<LiveSeq>& seqs, int32_t mask_id,
               std::vector<int32_t>* bans) {
  bans->clear();
  for (size_t a = 0; a < seqs.size(); ++a) {
    const Sequence& s = *seqs[a].s;
    if (s.opt.cfg_scale > 0 || !StatsDecide(s.opt)) return false;
    std::vector<int32_t> b;
    if (!s.rule->fixed) b.push_back(mask_id);
    if (s.opt.ban_eos) b.insert(b.end(), s.eos.begin(), s.eos.end());
    std::sort(b.begin(), b.end());
    b.erase(std::unique(b.begin(), b.end()), b.end());
    if (a == 0) *bans = b;
    if (b != *bans) return false;
  }
  return !seqs.empty();
}

// Choices from the statistics of the model's last stats call, whose row j
// scores candidate cand_of[j]. A choice of [MASK] itself falls back to the
// best real token: the same row with [MASK] banned too (RestatRows).
void ChooseFromStats(GeneratorState& g, const std::vector<LiveSeq>& seqs,
                     const std::vector<int32_t>& cand_pos,
                     const std::vector<size_t>& cand_of,
                     std::vector<Choice>& choices) {
  const int32_t mask_id = g.model.config().mask_token_id;
  std::vector<const Sequence*> seq_of(choices.size(), nullptr);
  for (const LiveSeq& l : seqs)
    for (size_t k = l.k0; k < l.k1; ++k) seq_of[k] = l.s;
  std::vector<int32_t> restat;  // rows whose choice was [MASK]
  for (size_t j = 0; j < cand_of.size(); ++j) {
    const size_t k = cand_of[j];
    const Sequence& s = *seq_of[k];
    choices[k] = ChoiceFromStats(g.row_stats[j], s.opt, s.eos,
                                 s.canvas.steps_done, cand_pos[k]);
    if (choices[k].token == mask_id && !s.opt.reference_mask_choices)
      restat.push_back(int32_t(j));
  }
  if (restat.empty()) return;
  std::vector<ops::RowStats> st(restat.size());
  g.model.RestatRows(restat.data(), int64_t(restat.size()), {mask_id},
                     st.data());
  for (size_t i = 0; i < restat.size(); ++i)
    choices[cand_of[size_t(restat[i])]].fallback = st[i].argmax;
}

// Without a cache: one batch of the sequences in id order, then the
// unconditional twins of those with CFG, right-padded; every position runs.
void ForwardUncached(GeneratorState& g, const std::vector<LiveSeq>& seqs,
                     const std::vector<int32_t>& cand_pos,
                     const std::vector<int32_t>* bans,
                     std::vector<float*>& cond, std::vector<float*>& uncond,
                     std::vector<Choice>& choices) {
  const ModelConfig& cfg = g.model.config();
  const int V = cfg.vocab_size;
  const int n = int(seqs.size());
  std::vector<int> twin(size_t(n), -1);
  int n_seq = n;
  for (int a = 0; a < n; ++a)
    if (seqs[size_t(a)].s->opt.cfg_scale > 0) twin[size_t(a)] = n_seq++;
  int T = 0;
  for (const LiveSeq& l : seqs) T = std::max(T, int(l.s->canvas.ids.size()));
  g.ids.assign(size_t(n_seq) * size_t(T), 0);
  g.key_mask.assign(g.ids.size(), 0);
  for (int a = 0; a < n; ++a) {
    const Canvas& c = seqs[size_t(a)].s->canvas;
    std::copy(c.ids.begin(), c.ids.end(), g.ids.begin() + a * T);
    std::fill_n(g.key_mask.begin() + a * T, c.ids.size(), 1);
    if (twin[size_t(a)] < 0) continue;
    TwinIds(c, cfg.mask_token_id, g.ids.data() + twin[size_t(a)] * T);
    std::fill_n(g.key_mask.begin() + twin[size_t(a)] * T, c.ids.size(), 1);
  }
  // Rows: each candidate's conditional row, then the twins' rows.
  g.rows.clear();
  std::vector<std::pair<size_t, int>> twin_rows;  // (candidate, row)
  for (int a = 0; a < n; ++a)
    for (size_t k = seqs[size_t(a)].k0; k < seqs[size_t(a)].k1; ++k) {
      const int r = RowOf(cfg, cand_pos[k]);
      g.rows.push_back(a * T + r);
      if (twin[size_t(a)] >= 0)
        twin_rows.emplace_back(k, twin[size_t(a)] * T + r);
    }
  const size_t n_cond = g.rows.size();
  for (const auto& [k, r] : twin_rows) g.rows.push_back(r);
  ForwardBatch fb;
  fb.B = n_seq, fb.T = T, fb.ids = g.ids.data(),
  fb.key_mask = g.key_mask.data();
  fb.rows = g.rows.data(), fb.n_rows = int64_t(g.rows.size());
  size_t j = 0;
  if (bans) {  // statistics only (no CFG here: one row per candidate)
    g.row_stats.resize(g.rows.size());
    g.model.ForwardStats(fb, *bans, g.row_stats.data());
    std::vector<size_t> cand_of;
    for (const LiveSeq& l : seqs)
      for (size_t k = l.k0; k < l.k1; ++k) cand_of.push_back(k);
    ChooseFromStats(g, seqs, cand_pos, cand_of, choices);
    return;
  }
  g.logits.resize(g.rows.size() * size_t(V));
  g.model.Forward(fb, g.logits.data());
  for (const LiveSeq& l : seqs)
    for (size_t k = l.k0; k < l.k1; ++k)
      cond[k] = g.logits.data() + (j++) * size_t(V);
  for (size_t t = 0; t < twin_rows.size(); ++t)
    uncond[twin_rows[t].first] = g.logits.data() + (n_cond + t) * size_t(V);
}

// With a prefix or dual cache: each sequence (and its CFG twin) runs one
// range of positions against its KV cache, all in one call. A refresh (the
// block's first step, or every refresh_every steps) runs every position and
// rewrites the whole cache; other steps run the current block and, for the
// prefix cache, everything after it, taking the other keys from the last
// refresh. The range starts at the row that scores the block's first
// position (Dream's shift: the one before it) and reaches back to any
// earlier position that is still masked (it chose [MASK]).
void ForwardWithCache(GeneratorState& g, const std::vector<LiveSeq>& seqs,
                      const std::vector<int32_t>& cand_pos,
                      const std::vector<int32_t>* bans,
                      std::vector<float*>& cond, std::vector<float*>& uncond,
                      std::vector<Choice>& choices) {
  const ModelConfig& cfg = g.model.config();
  const int V = cfg.vocab_size;
  g.runs.clear();
  g.cached_rows.clear();
  std::vector<std::vector<int32_t>> twin_ids(seqs.size());
  std::vector<std::pair<size_t, int32_t>> twin_rows;  // (candidate, row)
  std::vector<size_t> cond_of;                        // candidate of each row
  int64_t at = 0;  // first row of the next run
  for (size_t a = 0; a < seqs.size(); ++a) {
    Sequence& s = *seqs[a].s;
    Canvas& c = s.canvas;
    const int L = int(c.ids.size());
    if (s.cache.empty()) s.cache = KVCache(cfg, L);
    const bool block_model = cfg.block_size > 0;
    const bool refresh =
        !block_model &&
        (s.refreshed_block != c.block ||
         (s.opt.refresh_every > 0 && s.since_refresh >= s.opt.refresh_every));
    int p0 = 0, p1 = L;
    if (block_model) {
      // Block-diffusion models need no refresh: the cache is exact, and kept
      // so incrementally, when every position whose keys and values may
      // have changed runs again: those never run (from valid_end), those
      // committed since they last ran (the block's, or an earlier block's
      // that had chosen [MASK]) and, since a block is bidirectional inside,
      // every position of their model block (the prompt tokens sharing the
      // first generated block, too). Earlier blocks see none of them, and
      // no position sees a later block.
      p0 = std::min({s.valid_end, s.stale_from, RowOf(cfg, c.block_begin)});
      for (size_t k = seqs[a].k0; k < seqs[a].k1; ++k)
        p0 = std::min(p0, RowOf(cfg, cand_pos[k]));
      p0 -= p0 % cfg.block_size;
      p1 = EffectiveCache(cfg, s.opt) == Cache::kDual ? c.block_end : L;
      s.valid_end = p1;
    } else if (!refresh) {
      // The block's rows, whichever of its positions are still masked, so
      // what is recomputed does not depend on the commits so far.
      p0 = RowOf(cfg, c.block_begin);
      p1 = EffectiveCache(cfg, s.opt) == Cache::kDual ? c.block_end : L;
      for (size_t k = seqs[a].k0; k < seqs[a].k1; ++k)
        p0 = std::min(p0, RowOf(cfg, cand_pos[k]));
    } else {
      s.refreshed_block = c.block;
      s.since_refresh = 0;
    }
    ++s.since_refresh;
    s.stale_from = 1 << 30;  // everything from p0 on runs now
    CachedRun run;
    run.cache = &s.cache;
    run.ids = c.ids.data() + p0;
    run.p0 = p0, run.n = p1 - p0, run.key_end = L;
    g.runs.push_back(run);
    for (size_t k = seqs[a].k0; k < seqs[a].k1; ++k) {
      g.cached_rows.push_back(int32_t(at + RowOf(cfg, cand_pos[k]) - p0));
      cond_of.push_back(k);
    }
    at += run.n;
    if (s.opt.cfg_scale > 0) {
      if (s.twin_cache.empty()) s.twin_cache = KVCache(cfg, L);
      twin_ids[a].resize(size_t(L));
      TwinIds(c, cfg.mask_token_id, twin_ids[a].data());
      run.cache = &s.twin_cache;
      run.ids = twin_ids[a].data() + p0;
      g.runs.push_back(run);
      for (size_t k = seqs[a].k0; k < seqs[a].k1; ++k)
        twin_rows.emplace_back(k, int32_t(at + RowOf(cfg, cand_pos[k]) - p0));
      at += run.n;
    }
  }
  const size_t n_cond = g.cached_rows.size();
  for (const auto& [k, r] : twin_rows) g.cached_rows.push_back(r);
  if (bans) {  // statistics only (no CFG here: one row per candidate)
    g.row_stats.resize(g.cached_rows.size());
    g.model.ForwardCachedStats(
        g.runs.data(), int64_t(g.runs.size()), g.cached_rows.data(),
        int64_t(g.cached_rows.size()), *bans, g.row_stats.data());
    ChooseFromStats(g, seqs, cand_pos, cond_of, choices);
    return;
  }
  g.cached_logits.resize(g.cached_rows.size() * size_t(V));
  g.model.ForwardCached(g.runs.data(), int64_t(g.runs.size()),
                        g.cached_rows.data(), int64_t(g.cached_rows.size()),
                        g.cached_logits.data());
  for (size_t j = 0; j < n_cond; ++j)
    cond[cond_of[j]] = g.cached_logits.data() + j * size_t(V);
  for (size_t t = 0; t < twin_rows.size(); ++t)
    uncond[twin_rows[t].first] =
        g.cached_logits.data() + (n_cond + t) * size_t(V);
}

}  // namespace

bool StepDiffusion(GeneratorState& g) {
  const ModelConfig& cfg = g.model.config();
  const int V = cfg.vocab_size;
  const int32_t mask_id = cfg.mask_token_id;
  // Which sequences run this step, and which of their positions need logits:
  // every masked position up to the block's end. Earlier blocks are
  // normally complete, but a position whose choice was the mask token itself
  // stays masked and competes again (as in LLaDA's and Dream's reference).
  // Sequences with a cache and those without go through one forward call
  // each (together one forward pass).
  std::vector<LiveSeq> cached, plain;
  std::vector<int32_t> cand_pos;
  std::vector<int> cand_seq;  // index into `live`
  std::vector<Sequence*> live;
  for (auto& [id, s] : g.seqs) {
    s.committed.clear();
    if (s.canvas.done || !Advance(s)) continue;
    const Canvas& c = s.canvas;
    const size_t k0 = cand_pos.size();
    for (int i = c.prompt_len; i < c.block_end; ++i)
      if (c.masked[size_t(i)])
        cand_pos.push_back(i), cand_seq.push_back(int(live.size()));
    (UsesCache(cfg, s.opt) ? cached : plain)
        .push_back(LiveSeq{&s, k0, cand_pos.size()});
    live.push_back(&s);
  }
  if (live.empty()) return false;
  const size_t n_cand = cand_pos.size();
  std::vector<float*> cond(n_cand, nullptr), uncond(n_cand, nullptr);
  // Deterministic samplers take each row's statistics from the model (on a
  // GPU, all that comes back) and are chosen right after their forward
  // call: per call, when every sequence in it decides from statistics under
  // the same bans. The others get logits and are chosen below.
  std::vector<Choice> choices(n_cand);
  std::vector<int32_t> plain_bans, cached_bans;
  const bool plain_stats = StatsBans(plain, mask_id, &plain_bans);
  const bool cached_stats = StatsBans(cached, mask_id, &cached_bans);
  Timer ft;
  if (!plain.empty())
    ForwardUncached(g, plain, cand_pos, plain_stats ? &plain_bans : nullptr,
                    cond, uncond, choices);
  if (!cached.empty())
    ForwardWithCache(g, cached, cand_pos, cached_stats ? &cached_bans : nullptr,
                     cond, uncond, choices);
  g.stats.forward_seconds += ft.Seconds();
  ++g.stats.forward_passes;

  // Token and score for each candidate, in parallel (each row is
  // independent and its random numbers depend only on its own sequence).
  ParallelFor(n_cand, 1, [&](size_t b0, size_t e0, int) {
    thread_local std::vector<float> scratch;
    for (size_t k = b0; k < e0; ++k) {
      if (!cond[k]) continue;  // decided from statistics above
      const Sequence& s = *live[size_t(cand_seq[k])];
      float* row = cond[k];
      if (uncond[k]) {
        // Classifier-free guidance: uncond + (w + 1)(cond - uncond).
        const float* un = uncond[k];
        const float w1 = float(s.opt.cfg_scale + 1);
        for (int v = 0; v < V; ++v) row[v] = un[v] + w1 * (row[v] - un[v]);
      }
      if (!s.rule->fixed) row[mask_id] = -INFINITY;
      choices[k] = ChooseToken(row, V, s.opt, s.eos, s.canvas.steps_done,
                               cand_pos[k], scratch);
      // The ranking keeps the reference's scores (a [MASK] choice competes
      // with its own probability); what a pick of it commits is decided in
      // Commit.
      if (choices[k].token == mask_id && !s.opt.reference_mask_choices) {
        row[mask_id] = -INFINITY;
        choices[k].fallback =
            ChooseToken(row, V, s.opt, s.eos, s.canvas.steps_done, cand_pos[k],
                        scratch)
                .token;
      }
    }
  });

  // Candidates are grouped by sequence, in `live` order.
  size_t k0 = 0;
  for (int a = 0; a < int(live.size()); ++a) {
    size_t k1 = k0;
    while (k1 < n_cand && cand_seq[k1] == a) ++k1;
    Commit(*live[size_t(a)], cand_pos.data() + k0, choices.data() + k0,
           int(k1 - k0), mask_id, g.stats);
    k0 = k1;
  }
  return true;
}

}  // namespace dllm::gen
