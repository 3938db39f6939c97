// Answer likelihoods: one forward for causal models; for diffusion models
// LLaDA's Monte-Carlo NELBO estimate, over one segment (full attention) or
// one per model block (block diffusion: a block sees the blocks before it
// and never the ones after, so each segment's sequence ends at its block).
#include "dllm/likelihood.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/rng.h"
#include "dllm/error.h"
#include "dllm/model.h"

namespace dllm {

namespace {

// The answer positions [a0, a1) scored together, in a sequence cut at `end`.
struct Segment {
  int64_t a0, a1, end;
};

std::vector<Segment> Segments(const ModelConfig& c, int64_t prompt_len,
                              int64_t total) {
  if (c.block_size <= 0) return {{prompt_len, total, total}};
  std::vector<Segment> s;
  const int64_t n = c.block_size;
  for (int64_t b = prompt_len / n * n; b < total; b += n) {
    const int64_t e = std::min(total, b + n);
    s.push_back({std::max(b, prompt_len), e, e});
  }
  return s;
}

// The logits row that scores position p (Dream's shift: row p - 1).
int64_t RowOf(const ModelConfig& c, int64_t p) {
  return c.shift_logits ? std::max<int64_t>(p - 1, 0) : p;
}

double NegLogSoftmax(const float* row, int64_t V, int32_t target) {
  float mx = row[0];
  for (int64_t v = 1; v < V; ++v) mx = std::max(mx, row[v]);
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += std::exp(double(row[v] - mx));
  return std::log(sum) + double(mx) - double(row[target]);
}

// Runs masked copies of tokens[0, seg.end), each masking the given answer
// positions, in batches; returns per copy the sum of the masked positions'
// cross-entropy.
std::vector<double> MaskedLosses(Model& m, const std::vector<int32_t>& tokens,
                                 const Segment& seg,
                                 const std::vector<std::vector<int64_t>>& masks,
                                 int batch, int64_t* passes) {
  const ModelConfig& c = m.config();
  const int64_t T = seg.end, V = c.vocab_size;
  std::vector<double> out(masks.size(), 0.0);
  for (size_t k0 = 0; k0 < masks.size(); k0 += size_t(batch)) {
    const size_t k1 = std::min(masks.size(), k0 + size_t(batch));
    const int64_t B = int64_t(k1 - k0);
    std::vector<int32_t> ids(size_t(B * T)), rows;
    for (int64_t b = 0; b < B; ++b) {
      std::copy_n(tokens.begin(), T, ids.begin() + b * T);
      for (int64_t p : masks[k0 + size_t(b)]) {
        ids[size_t(b * T + p)] = c.mask_token_id;
        rows.push_back(int32_t(b * T + RowOf(c, p)));
      }
    }
    std::vector<float> logits(rows.size() * size_t(V));
    ForwardBatch fb;
    fb.B = B, fb.T = T, fb.ids = ids.data();
    fb.rows = rows.data(), fb.n_rows = int64_t(rows.size());
    m.Forward(fb, logits.data());
    ++*passes;
    size_t r = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t p : masks[k0 + size_t(b)])
        out[k0 + size_t(b)] += NegLogSoftmax(logits.data() + r++ * size_t(V), V,
                                             tokens[size_t(p)]);
  }
  return out;
}

std::vector<int32_t> Joined(const Model& m, const std::vector<int32_t>& prompt,
                            const std::vector<int32_t>& answer) {
  const ModelConfig& c = m.config();
  DLLM_CHECK(!answer.empty(), "likelihood: the answer is empty");
  DLLM_CHECK(!c.causal || !prompt.empty(),
             "likelihood: a causal model needs at least one prompt token "
             "(e.g. BOS) to predict the answer's first token from");
  DLLM_CHECK(
      c.causal || (c.mask_token_id >= 0 && c.mask_token_id < c.vocab_size),
      "likelihood: the model has no mask token");
  std::vector<int32_t> t(prompt);
  t.insert(t.end(), answer.begin(), answer.end());
  // Checked here: masked answer tokens never reach the forward's check.
  for (size_t i = 0; i < t.size(); ++i)
    DLLM_CHECK(t[i] >= 0 && t[i] < c.vocab_size, "likelihood: token id ", t[i],
               " at ", i < prompt.size() ? "prompt" : "answer", " position ",
               i < prompt.size() ? i : i - prompt.size(),
               " is outside the vocabulary of ", c.vocab_size);
  DLLM_CHECK(int64_t(t.size()) <= c.max_seq_len,
             "likelihood: prompt + answer is ", t.size(),
             " tokens, more than the model's context of ", c.max_seq_len);
  return t;
}

// Causal models: every answer token from the tokens before it, one pass.
double CausalNll(Model& m, const std::vector<int32_t>& t, int64_t prompt_len) {
  const int64_t T = int64_t(t.size()), V = m.config().vocab_size;
  std::vector<int32_t> rows;
  for (int64_t p = prompt_len; p < T; ++p) rows.push_back(int32_t(p - 1));
  std::vector<float> logits(rows.size() * size_t(V));
  ForwardBatch fb;
  fb.B = 1, fb.T = T, fb.ids = t.data();
  fb.rows = rows.data(), fb.n_rows = int64_t(rows.size());
  m.Forward(fb, logits.data());
  double nll = 0;
  for (size_t r = 0; r < rows.size(); ++r)
    nll += NegLogSoftmax(logits.data() + r * size_t(V), V,
                         t[size_t(prompt_len) + r]);
  return nll;
}

}  // namespace

Likelihood AnswerLikelihood(Model& model, const std::vector<int32_t>& prompt,
                            const std::vector<int32_t>& answer,
                            const LikelihoodOptions& opt) {
  DLLM_CHECK(opt.draws >= 1 && opt.batch >= 1,
             "likelihood: draws and batch must be at least 1");
  const std::vector<int32_t> t = Joined(model, prompt, answer);
  const int64_t P = int64_t(prompt.size());
  Likelihood r;
  if (model.config().causal) {
    r.nll = CausalNll(model, t, P);
    r.exact = true;
    r.forward_passes = 1;
    return r;
  }
  double var = 0;
  int64_t seg_index = 0;
  for (const Segment& s : Segments(model.config(), P, int64_t(t.size()))) {
    const int64_t L = s.a1 - s.a0;
    std::vector<std::vector<int64_t>> masks(size_t(opt.draws));
    std::vector<double> weight(size_t(opt.draws));
    for (int d = 0; d < opt.draws; ++d) {
      // l ~ U{1..L}, then l distinct positions (a partial Fisher-Yates
      // shuffle), all from the counter-based RNG: the same estimate for the
      // same seed, whatever the batch.
      const uint64_t stream = Mix64((uint64_t(seg_index) << 32) ^ uint64_t(d));
      const int64_t l =
          1 + int64_t(RandomBits(opt.seed, stream, 0) % uint64_t(L));
      std::vector<int64_t> pos(static_cast<size_t>(L));
      std::iota(pos.begin(), pos.end(), s.a0);
      for (int64_t i = 0; i < l; ++i) {
        const int64_t j =
            i + int64_t(RandomBits(opt.seed, stream, uint64_t(i + 1)) %
                        uint64_t(L - i));
        std::swap(pos[size_t(i)], pos[size_t(j)]);
      }
      pos.resize(size_t(l));
      std::sort(pos.begin(), pos.end());
      masks[size_t(d)] = std::move(pos);
      weight[size_t(d)] = double(L) / double(l);
    }
    std::vector<double> loss =
        MaskedLosses(model, t, s, masks, opt.batch, &r.forward_passes);
    double mean = 0, sq = 0;
    for (int d = 0; d < opt.draws; ++d) {
      const double x = weight[size_t(d)] * loss[size_t(d)];
      mean += x, sq += x * x;
    }
    mean /= opt.draws;
    r.nll += mean;
    if (opt.draws > 1)
      var += (sq / opt.draws - mean * mean) * opt.draws / (opt.draws - 1) /
             opt.draws;
    ++seg_index;
  }
  r.std_error = std::sqrt(std::max(var, 0.0));
  return r;
}

double ExactAnswerNelbo(Model& model, const std::vector<int32_t>& prompt,
                        const std::vector<int32_t>& answer) {
  const std::vector<int32_t> t = Joined(model, prompt, answer);
  const int64_t P = int64_t(prompt.size());
  if (model.config().causal) return CausalNll(model, t, P);
  double total = 0;
  int64_t passes = 0;
  for (const Segment& s : Segments(model.config(), P, int64_t(t.size()))) {
    const int64_t L = s.a1 - s.a0;
    DLLM_CHECK(L <= 16, "likelihood: enumerating the masks of ", L,
               " answer tokens in one block is too many (at most 16)");
    // E over l ~ U{1..L} and the C(L, l) subsets of that size of
    // (L / l) * loss: each subset S weighs 1 / (L * C(L, |S|)) * L / |S|.
    std::vector<std::vector<int64_t>> masks;
    std::vector<double> weight;
    for (uint32_t bits = 1; bits < (1u << L); ++bits) {
      std::vector<int64_t> pos;
      for (int64_t i = 0; i < L; ++i)
        if (bits >> i & 1) pos.push_back(s.a0 + i);
      const int64_t l = int64_t(pos.size());
      double choose = 1;
      for (int64_t i = 0; i < l; ++i)
        choose = choose * double(L - i) / double(i + 1);
      weight.push_back(1.0 / (choose * double(l)));
      masks.push_back(std::move(pos));
    }
    std::vector<double> loss = MaskedLosses(model, t, s, masks, 16, &passes);
    for (size_t k = 0; k < masks.size(); ++k) total += weight[k] * loss[k];
  }
  return total;
}

}  // namespace dllm
