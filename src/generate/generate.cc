// The diffusion loop: one forward pass per step for every active sequence,
// then per sequence an order scores the masked positions of the current
// block and a schedule picks how many of the best to commit.
#include "dllm/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/error.h"
#include "base/rng.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "dllm/model.h"
#include "generate/choose.h"
#include "generate/schedule.h"

namespace dllm {

namespace {

struct NamedOrder {
  Order o;
  const char* name;
};
constexpr NamedOrder kOrders[] = {{Order::kLowConfidence, "low-confidence"},
                                  {Order::kRandom, "random"},
                                  {Order::kOrigin, "origin"},
                                  {Order::kMaskgitPlus, "maskgit-plus"},
                                  {Order::kTopkMargin, "topk-margin"},
                                  {Order::kEntropy, "entropy"}};
struct NamedSchedule {
  Schedule s;
  const char* name;
};
constexpr NamedSchedule kSchedules[] = {
    {Schedule::kDefault, "default"},     {Schedule::kEvenBlocks, "blocks"},
    {Schedule::kTimesteps, "timesteps"}, {Schedule::kThreshold, "threshold"},
    {Schedule::kFactor, "factor"},       {Schedule::kEntropyBound, "eb"}};

bool IsLLaDAOrder(Order o) {
  return o == Order::kLowConfidence || o == Order::kRandom;
}

Schedule Resolve(const GenerateOptions& opt) {
  if (opt.schedule != Schedule::kDefault) return opt.schedule;
  return IsLLaDAOrder(opt.order) ? Schedule::kEvenBlocks : Schedule::kTimesteps;
}

bool FixedSchedule(Schedule s) {
  return s == Schedule::kEvenBlocks || s == Schedule::kTimesteps;
}

}  // namespace

Order ParseOrder(const std::string& name) {
  for (const auto& e : kOrders)
    if (name == e.name) return e.o;
  Fail("unknown sampler '", name,
       "' (expected low-confidence, random, origin, maskgit-plus, topk-margin "
       "or entropy)");
}

Schedule ParseSchedule(const std::string& name) {
  for (const auto& e : kSchedules)
    if (name == e.name) return e.s;
  Fail("unknown schedule '", name,
       "' (expected blocks, timesteps, threshold, factor or eb)");
}

const char* OrderName(Order o) {
  for (const auto& e : kOrders)
    if (e.o == o) return e.name;
  return "?";
}

const char* ScheduleName(Schedule s) {
  for (const auto& e : kSchedules)
    if (e.s == s) return e.name;
  return "?";
}

void ValidateGenerateOptions(const GenerateOptions& o, int prompt_len,
                             int max_seq_len) {
  DLLM_CHECK(o.gen_length >= 1, "gen length must be at least 1, got ",
             o.gen_length);
  const int block = o.block_length > 0 ? o.block_length : o.gen_length;
  DLLM_CHECK(o.block_length >= 0, "block length must be positive, got ",
             o.block_length);
  DLLM_CHECK(o.gen_length % block == 0, "gen length ", o.gen_length,
             " is not a multiple of the block length ", block);
  const int n_blocks = o.gen_length / block;
  DLLM_CHECK(o.order != Order::kOrigin || Resolve(o) == Schedule::kTimesteps,
             "the origin sampler commits by Dream's timesteps; it does not "
             "combine with "
             "the ",
             ScheduleName(Resolve(o)), " schedule");
  if (FixedSchedule(Resolve(o))) {
    DLLM_CHECK(o.steps >= 1, "steps must be at least 1, got ", o.steps);
    DLLM_CHECK(o.steps % n_blocks == 0, "steps (", o.steps,
               ") must be a multiple of the number of blocks (", n_blocks,
               " = gen length ", o.gen_length, " / block length ", block, ")");
  }
  DLLM_CHECK(o.steps <= 1000000, "steps ", o.steps, " is absurd");
  const int64_t total =
      int64_t(prompt_len) + o.gen_length + int64_t(o.suffix.size());
  DLLM_CHECK(total <= max_seq_len, "prompt (", prompt_len,
             " tokens) + gen length (", o.gen_length, ")",
             o.suffix.empty() ? "" : " + suffix", " = ", total,
             " tokens exceeds the model's context of ", max_seq_len);
  for (double x : {o.temperature, o.top_p, o.alg_temp, o.eps, o.cfg_scale,
                   o.threshold, o.factor, o.gamma})
    DLLM_CHECK(std::isfinite(x),
               "generation options must be finite numbers, got ", x);
  DLLM_CHECK(o.temperature == 0 || o.temperature >= 1e-6,
             "temperature must be 0 (greedy) or at least 1e-6, got ",
             o.temperature);
  DLLM_CHECK(o.temperature >= 0 && std::isfinite(o.temperature),
             "temperature must be >= 0, got ", o.temperature);
  DLLM_CHECK(o.top_p > 0 && o.top_p <= 1, "top-p must be in (0, 1], got ",
             o.top_p);
  DLLM_CHECK(o.top_k >= 0, "top-k must be >= 0, got ", o.top_k);
  DLLM_CHECK(o.alg_temp >= 0, "alg-temp must be >= 0, got ", o.alg_temp);
  DLLM_CHECK(o.eps > 0 && o.eps < 1, "eps must be in (0, 1), got ", o.eps);
  DLLM_CHECK(o.cfg_scale >= 0, "cfg scale must be >= 0, got ", o.cfg_scale);
  DLLM_CHECK(o.threshold >= 0 && o.threshold <= 1,
             "threshold must be in [0, 1], got ", o.threshold);
  DLLM_CHECK(o.factor > 0, "factor must be > 0, got ", o.factor);
  DLLM_CHECK(o.gamma >= 0, "gamma must be >= 0, got ", o.gamma);
}

namespace {

// Per-sequence bookkeeping beside the public Canvas.
struct SeqState {
  int steps_in_block = 0;
  int steps_per_block = 0;
  std::vector<int> even;  // kEvenBlocks counts for the current block
};

int CountMasked(const Canvas& c, int b, int e) {
  int n = 0;
  for (int i = b; i < e; ++i) n += c.masked[size_t(i)];
  return n;
}

void StartBlock(Canvas& c, SeqState& st, int block, int block_len,
                Schedule sched) {
  c.block = block;
  c.block_begin = c.prompt_len + block * block_len;
  c.block_end = c.block_begin + block_len;
  st.steps_in_block = 0;
  if (sched == Schedule::kEvenBlocks)
    st.even = gen::EvenSplit(CountMasked(c, c.block_begin, c.block_end),
                             st.steps_per_block);
}

bool IsEos(int32_t t, const std::vector<int32_t>& eos) {
  return std::find(eos.begin(), eos.end(), t) != eos.end();
}

// Done once an EOS is committed with nothing masked before it, or once
// nothing is masked at all.
bool CheckFinished(Canvas& c, const GenerateOptions& opt,
                   const std::vector<int32_t>& eos) {
  for (int i = c.prompt_len; i < c.gen_end; ++i) {
    if (c.masked[size_t(i)]) return false;
    if (opt.stop_at_eos && IsEos(c.ids[size_t(i)], eos)) return true;
  }
  return true;
}

}  // namespace

namespace gen {

std::vector<GenerateResult> Results(const std::vector<Canvas>& canvases,
                                    const std::vector<int32_t>& eos) {
  std::vector<GenerateResult> out(canvases.size());
  for (size_t b = 0; b < canvases.size(); ++b) {
    const Canvas& c = canvases[b];
    GenerateResult& r = out[b];
    r.canvas = c.ids;
    r.steps = c.steps_done;
    // The generated span up to the first undecided position (a cancelled
    // run) or the first EOS.
    for (int i = c.prompt_len; i < c.gen_end && !c.masked[size_t(i)]; ++i) {
      if (IsEos(c.ids[size_t(i)], eos)) {
        r.hit_eos = true;
        break;
      }
      r.tokens.push_back(c.ids[size_t(i)]);
    }
  }
  return out;
}

}  // namespace gen

std::vector<GenerateResult> Generate(
    Model& model, const std::vector<std::vector<int32_t>>& prompts,
    const GenerateOptions& opt, StepCallback on_step, void* user,
    GenerateStats* stats) {
  Timer total_timer;
  const ModelConfig& cfg = model.config();
  const int V = cfg.vocab_size;
  const int32_t mask_id = cfg.mask_token_id;
  DLLM_CHECK(!prompts.empty(), "generate: no prompts");
  std::vector<int32_t> eos = opt.eos_ids;
  if (eos.empty() && cfg.eos_token_id >= 0) eos.push_back(cfg.eos_token_id);
  if (cfg.causal) {
    // An AR model: one token per forward pass, left to right.
    DLLM_CHECK(opt.gen_length >= 1, "gen length must be at least 1");
    for (const auto& p : prompts)
      DLLM_CHECK(int64_t(p.size()) + opt.gen_length <= cfg.max_seq_len,
                 "prompt (", p.size(),
                 " tokens) + gen length exceeds the model's context of ",
                 cfg.max_seq_len);
    return gen::GenerateAutoregressive(model, prompts, opt, eos, on_step, user,
                                       stats);
  }
  DLLM_CHECK(mask_id >= 0 && mask_id < V,
             "the model has no mask token (mask_token_id ", mask_id, ")");
  const Schedule sched = Resolve(opt);
  const int block_len =
      opt.block_length > 0 ? opt.block_length : opt.gen_length;
  const int n_blocks = opt.gen_length / std::max(block_len, 1);
  for (const auto& p : prompts) {
    ValidateGenerateOptions(opt, int(p.size()), cfg.max_seq_len);
    for (size_t i = 0; i < p.size(); ++i)
      DLLM_CHECK(p[i] >= 0 && p[i] < V, "prompt token ", p[i], " at position ",
                 i, " is outside the vocabulary [0, ", V, ")");
  }
  for (int32_t t : opt.suffix)
    DLLM_CHECK(t >= 0 && t < V, "suffix token ", t,
               " is outside the vocabulary [0, ", V, ")");

  const int B = int(prompts.size());
  std::vector<Canvas> canvases(static_cast<size_t>(B));
  std::vector<SeqState> states(static_cast<size_t>(B));
  for (int b = 0; b < B; ++b) {
    Canvas& c = canvases[size_t(b)];
    c.ids = prompts[size_t(b)];
    c.prompt_len = int(c.ids.size());
    c.ids.insert(c.ids.end(), size_t(opt.gen_length), mask_id);
    c.gen_end = int(c.ids.size());
    c.ids.insert(c.ids.end(), opt.suffix.begin(), opt.suffix.end());
    c.masked.assign(c.ids.size(), 0);
    std::fill(c.masked.begin() + c.prompt_len, c.masked.begin() + c.gen_end, 1);
    c.confidence.assign(c.ids.size(), 0.0f);
    states[size_t(b)].steps_per_block =
        FixedSchedule(sched) ? opt.steps / n_blocks : 0;
    StartBlock(c, states[size_t(b)], 0, block_len, sched);
  }
  const std::vector<float> timesteps = gen::DreamTimesteps(
      std::max(states[0].steps_per_block, 1), float(opt.eps));
  const bool cfg_on = opt.cfg_scale > 0;
  const int total_steps = FixedSchedule(sched) ? opt.steps : opt.gen_length;

  GenerateStats local;
  std::vector<std::vector<int32_t>> committed(static_cast<size_t>(B));
  std::vector<int32_t> ids, rows, cand_pos, cand_seq;
  std::vector<uint8_t> key_mask;
  std::vector<float> logits;
  std::vector<gen::Choice> choices;
  for (int step = 0;; ++step) {
    // Which sequences still run, and which of their positions need logits.
    std::vector<int> active;
    cand_pos.clear();
    cand_seq.clear();
    for (int b = 0; b < B; ++b) {
      Canvas& c = canvases[size_t(b)];
      SeqState& st = states[size_t(b)];
      committed[size_t(b)].clear();
      if (c.done) continue;
      // Skip steps that would commit nothing (steps > masked count): same
      // result as the reference, one forward pass fewer.
      while (sched == Schedule::kEvenBlocks &&
             st.steps_in_block < st.steps_per_block &&
             st.even[size_t(st.steps_in_block)] == 0)
        ++st.steps_in_block, ++c.steps_done;
      if (FixedSchedule(sched)
              ? st.steps_in_block >= st.steps_per_block
              : CountMasked(c, c.block_begin, c.block_end) == 0) {
        if (c.block + 1 >= n_blocks) {
          c.done = true;
          continue;
        }
        StartBlock(c, st, c.block + 1, block_len, sched);
        --b;  // re-examine this sequence in its new block
        continue;
      }
      // Dream's count depends only on how many are masked: a step that
      // would commit none needs no forward pass.
      if (sched == Schedule::kTimesteps && opt.order != Order::kOrigin &&
          gen::DreamTransferCount(CountMasked(c, c.prompt_len, c.block_end),
                                  st.steps_in_block, st.steps_per_block,
                                  timesteps) == 0) {
        ++st.steps_in_block, ++c.steps_done;
        --b;
        continue;
      }
      active.push_back(b);
      // Candidates: every masked position up to the block's end. Earlier
      // blocks are normally complete, but a position whose choice was the
      // mask token itself stays masked and competes again (as in LLaDA's
      // and Dream's reference code).
      for (int i = c.prompt_len; i < c.block_end; ++i)
        if (c.masked[size_t(i)]) cand_pos.push_back(i), cand_seq.push_back(b);
    }
    if (active.empty()) break;

    // One forward for every active sequence (and its unconditional twin
    // under CFG), right-padded, logits only for the candidate rows.
    int T = 0;
    for (int b : active) T = std::max(T, int(canvases[size_t(b)].ids.size()));
    const int n_seq = int(active.size()) * (cfg_on ? 2 : 1);
    ids.assign(size_t(n_seq) * size_t(T), 0);
    key_mask.assign(ids.size(), 0);
    std::vector<int> slot(size_t(B), -1);
    for (size_t a = 0; a < active.size(); ++a) {
      const Canvas& c = canvases[size_t(active[a])];
      slot[size_t(active[a])] = int(a);
      for (size_t i = 0; i < c.ids.size(); ++i) {
        ids[a * size_t(T) + i] = c.ids[i];
        key_mask[a * size_t(T) + i] = 1;
        if (cfg_on) {
          // The unconditional twin: every prompt (and suffix) token masked.
          const bool given = int(i) < c.prompt_len || int(i) >= c.gen_end;
          ids[(active.size() + a) * size_t(T) + i] = given ? mask_id : c.ids[i];
          key_mask[(active.size() + a) * size_t(T) + i] = 1;
        }
      }
    }
    const size_t n_cand = cand_pos.size();
    rows.resize(n_cand * (cfg_on ? 2 : 1));
    for (size_t k = 0; k < n_cand; ++k) {
      // Dream: the logits at i - 1 predict token i (position 0 uses row 0).
      int p = cand_pos[k];
      int r = cfg.shift_logits ? std::max(p - 1, 0) : p;
      rows[k] = slot[size_t(cand_seq[k])] * T + r;
      if (cfg_on)
        rows[n_cand + k] =
            (int(active.size()) + slot[size_t(cand_seq[k])]) * T + r;
    }
    logits.resize(rows.size() * size_t(V));
    ForwardBatch fb;
    fb.B = n_seq, fb.T = T, fb.ids = ids.data(), fb.key_mask = key_mask.data();
    fb.rows = rows.data(), fb.n_rows = int64_t(rows.size());
    Timer ft;
    model.Forward(fb, logits.data());
    local.forward_seconds += ft.Seconds();
    ++local.forward_passes;

    // Token and score for each candidate, in parallel (each row is
    // independent).
    choices.resize(n_cand);
    const double w = opt.cfg_scale;
    ParallelFor(n_cand, 1, [&](size_t b0, size_t e0, int) {
      thread_local std::vector<float> scratch;
      for (size_t k = b0; k < e0; ++k) {
        float* row = logits.data() + k * size_t(V);
        if (cfg_on) {
          const float* un = logits.data() + (n_cand + k) * size_t(V);
          for (int v = 0; v < V; ++v)
            row[v] = un[v] + float(w + 1) * (row[v] - un[v]);
        }
        // Adaptive schedules must make progress: [MASK] is never a choice.
        if (!FixedSchedule(sched)) row[mask_id] = -INFINITY;
        const Canvas& c = canvases[size_t(cand_seq[k])];
        choices[k] = gen::ChooseToken(row, V, opt, eos, c.steps_done,
                                      cand_pos[k], scratch);
      }
    });

    // Per sequence: rank, count, commit.
    size_t k0 = 0;
    for (int b : active) {
      Canvas& c = canvases[size_t(b)];
      SeqState& st = states[size_t(b)];
      size_t k1 = k0;
      while (k1 < n_cand && cand_seq[k1] == b) ++k1;
      const int m = int(k1 - k0);
      std::vector<int> order(static_cast<size_t>(m));
      std::iota(order.begin(), order.end(), 0);
      // Highest score first; ties go to the leftmost position.
      std::stable_sort(order.begin(), order.end(), [&](int x, int y) {
        return choices[k0 + size_t(x)].confidence >
               choices[k0 + size_t(y)].confidence;
      });
      std::vector<int> pick;
      if (opt.order == Order::kOrigin) {
        // Dream's origin: each masked position commits with probability 1 -
        // s/t.
        const int i = st.steps_in_block;
        const double p = i >= st.steps_per_block - 1
                             ? 1.0
                             : 1.0 - double(timesteps[size_t(i + 1)]) /
                                         double(timesteps[size_t(i)]);
        for (int j = 0; j < m; ++j)
          if (RandomUniform(opt.seed,
                            gen::RandomStream(gen::kOrigin, c.steps_done,
                                              cand_pos[k0 + size_t(j)]),
                            0) < p)
            pick.push_back(j);
      } else {
        int n = 0;
        std::vector<float> sorted(static_cast<size_t>(m));
        switch (sched) {
          case Schedule::kEvenBlocks:
            n = st.even[size_t(st.steps_in_block)];
            break;
          case Schedule::kTimesteps:
            n = gen::DreamTransferCount(
                CountMasked(c, c.prompt_len, c.block_end), st.steps_in_block,
                st.steps_per_block, timesteps);
            break;
          case Schedule::kThreshold:
          case Schedule::kFactor:
            for (int j = 0; j < m; ++j)
              sorted[size_t(j)] =
                  choices[k0 + size_t(order[size_t(j)])].confidence;
            n = sched == Schedule::kThreshold
                    ? gen::ThresholdCount(sorted, opt.threshold)
                    : gen::FactorCount(sorted, opt.factor);
            break;
          case Schedule::kEntropyBound:
            for (int j = 0; j < m; ++j)
              sorted[size_t(j)] =
                  choices[k0 + size_t(order[size_t(j)])].entropy;
            n = gen::EntropyBoundCount(sorted, opt.gamma);
            break;
          case Schedule::kDefault:
            break;
        }
        n = std::min(n, m);
        if (opt.alg_temp > 0 && n > 0 && n < m) {
          // Dream's alg_temp: sample n positions from softmax(score / alg_temp)
          // without replacement (Gumbel top-k).
          std::vector<std::pair<double, int>> keyed;
          for (int j = 0; j < m; ++j) {
            double u =
                RandomUniform(opt.seed,
                              gen::RandomStream(gen::kAlgTemp, c.steps_done,
                                                cand_pos[k0 + size_t(j)]),
                              0);
            keyed.push_back(
                {double(choices[k0 + size_t(j)].confidence) / opt.alg_temp -
                     std::log(-std::log(u)),
                 j});
          }
          std::stable_sort(keyed.begin(), keyed.end(),
                           [](auto& x, auto& y) { return x.first > y.first; });
          for (int j = 0; j < n; ++j) pick.push_back(keyed[size_t(j)].second);
        } else {
          pick.assign(order.begin(), order.begin() + n);
        }
      }
      for (int j : pick) {
        const int p = cand_pos[k0 + size_t(j)];
        c.ids[size_t(p)] = choices[k0 + size_t(j)].token;
        if (c.ids[size_t(p)] == mask_id)
          continue;  // chose [MASK]: stays masked
        c.masked[size_t(p)] = 0;
        c.confidence[size_t(p)] = choices[k0 + size_t(j)].confidence;
        committed[size_t(b)].push_back(p);
      }
      std::sort(committed[size_t(b)].begin(), committed[size_t(b)].end());
      ++st.steps_in_block;
      ++c.steps_done;
      if (CheckFinished(c, opt, eos) &&
          (opt.stop_at_eos || CountMasked(c, c.prompt_len, c.gen_end) == 0))
        c.done = true;
      k0 = k1;
    }
    if (on_step) {
      StepInfo info;
      info.step = step;
      info.total_steps = total_steps;
      info.canvases = &canvases;
      info.committed = &committed;
      if (!on_step(info, user)) break;
    }
  }

  std::vector<GenerateResult> out = gen::Results(canvases, eos);
  for (const auto& r : out) local.tokens += int64_t(r.tokens.size());
  local.seconds = total_timer.Seconds();
  if (stats) *stats = local;
  return out;
}

}  // namespace dllm
