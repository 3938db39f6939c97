#include "generate/choose.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/rng.h"
#include "ops/ops.h"

namespace dllm::gen {

uint64_t RandomStream(RandomTag tag, int step, int position) {
  return Mix64((uint64_t(tag) << 56) ^ (uint64_t(uint32_t(step)) << 28) ^
               uint64_t(uint32_t(position)));
}

namespace {

// Dream's top-p: keep the smallest prefix of tokens sorted by probability
// whose mass reaches top_p (the token that crosses it stays).
void TopPFilter(float* row, int V, double top_p, std::vector<float>& scratch) {
  ops::RowStats st = ops::ComputeRowStats(row, V);
  std::vector<int32_t> idx(static_cast<size_t>(V));
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(),
                   [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  double cum = 0;
  bool cut = false;
  for (int32_t i : idx) {
    if (cut) {
      row[i] = -INFINITY;
      continue;
    }
    cum += std::exp(double(row[i]) - st.log_norm);
    if (cum > top_p) cut = true;  // this token stays; every later one goes
  }
  (void)scratch;
}

// The k-th largest of row[0, V), 1 <= k < V.
float KthLargest(const float* row, int V, int k, std::vector<float>& scratch) {
  if (k == 1) return ops::ComputeRowStats(row, V).max;
  if (k <= 64) {
    // One pass keeping the k largest sorted, descending: after the first few
    // hundred values almost every value loses to the smallest kept one, so
    // this costs a compare per value (nth_element copies and shuffles all).
    scratch.assign(size_t(k), -INFINITY);
    float* top = scratch.data();
    for (int v = 0; v < V; ++v) {
      const float x = row[v];
      if (!(x > top[k - 1])) continue;
      int i = k - 1;
      for (; i > 0 && top[i - 1] < x; --i) top[i] = top[i - 1];
      top[i] = x;
    }
    return top[k - 1];
  }
  scratch.assign(row, row + V);
  std::nth_element(scratch.begin(), scratch.begin() + (k - 1), scratch.end(),
                   std::greater<float>());
  return scratch[size_t(k - 1)];
}

// Dream's top-k: drop every logit below the k-th largest.
void TopKFilter(float* row, int V, int k, std::vector<float>& scratch) {
  if (k >= V) return;
  const float kth = KthLargest(row, V, k, scratch);
  for (int v = 0; v < V; ++v)
    if (row[v] < kth) row[v] = -INFINITY;
}

// eos_last: an end-of-sequence choice ranks after every other choice,
// still above "not masked".
void EosLast(Choice& c, const GenerateOptions& opt,
             const std::vector<int32_t>& eos_ids) {
  if (!opt.eos_last) return;
  for (int32_t e : eos_ids)
    if (c.token == e) c.confidence -= 1e4f;
}

// The score a Dream order ranks by, from the (filtered) distribution's
// statistics and the chosen token's probability p_tok.
float DreamConfidence(Order order, const ops::RowStats& st, double p_tok) {
  switch (order) {
    case Order::kTopkMargin:
      return float(std::exp(double(st.max) - st.log_norm) -
                   std::exp(double(st.second) - st.log_norm));
    case Order::kEntropy:
      return -st.entropy;
    default:  // maskgit_plus, origin
      return float(p_tok);
  }
}

}  // namespace

bool StatsDecide(const GenerateOptions& opt) {
  if (opt.temperature > 0) return false;
  if (IsLLaDAOrder(opt.order)) return true;
  return opt.top_p >= 1.0 && (opt.top_k == 0 || opt.top_k == 1);
}

Choice ChoiceFromStats(const ops::RowStats& raw, const GenerateOptions& opt,
                       const std::vector<int32_t>& eos_ids, int step,
                       int position) {
  Choice c;
  c.token = raw.argmax;
  c.entropy = raw.entropy;
  if (IsLLaDAOrder(opt.order)) {
    // The probability of the argmax under the unfiltered softmax.
    c.confidence =
        opt.order == Order::kRandom
            ? float(RandomUniform(
                  opt.seed, RandomStream(kRandomOrder, step, position), 0))
            : float(std::exp(double(raw.max) - raw.log_norm));
  } else {
    ops::RowStats st = raw;
    if (opt.top_k == 1) {
      // Dream's top-k 1 leaves the entries equal to the max: their
      // statistics follow from the count, as ComputeRowStats gives them on
      // the filtered row (each adds exp(0) = 1, the rest exactly 0).
      st.second = st.ties >= 2 ? st.max : -INFINITY;
      const double z = double(st.ties);
      st.log_norm = float(double(st.max) + std::log(z));
      st.entropy = float(std::log(z));
      c.entropy = st.entropy;
    }
    const double p_tok = std::exp(double(st.max) - st.log_norm);
    c.confidence = DreamConfidence(opt.order, st, p_tok);
  }
  EosLast(c, opt, eos_ids);
  return c;
}

Choice ChooseToken(float* row, int V, const GenerateOptions& opt,
                   const std::vector<int32_t>& eos_ids, int step, int position,
                   std::vector<float>& scratch) {
  if (opt.ban_eos)
    for (int32_t e : eos_ids)
      if (e >= 0 && e < V) row[e] = -INFINITY;
  // Deterministic samplers need one pass over the row.
  if (StatsDecide(opt))
    return ChoiceFromStats(ops::ComputeRowStats(row, V), opt, eos_ids, step,
                           position);
  Choice c;
  const uint64_t seed = opt.seed;
  if (IsLLaDAOrder(opt.order)) {
    // LLaDA: x0 = argmax(logits + T * Gumbel) in double precision; the
    // confidence is the probability of x0 under the unfiltered softmax.
    ops::RowStats st = ops::ComputeRowStats(row, V);
    c.token = st.argmax;
    const uint64_t stream = RandomStream(kGumbel, step, position);
    double best = -INFINITY;
    for (int v = 0; v < V; ++v) {
      if (row[v] == -INFINITY) continue;
      double u = RandomUniform(seed, stream, uint64_t(v));
      double score = double(row[v]) - opt.temperature * std::log(-std::log(u));
      if (score > best) best = score, c.token = v;
    }
    c.entropy = st.entropy;
    if (opt.order == Order::kRandom)
      c.confidence = float(
          RandomUniform(seed, RandomStream(kRandomOrder, step, position), 0));
    else
      c.confidence = float(std::exp(double(row[c.token]) - st.log_norm));
  } else {
    // Dream: temperature, then top-p, then top-k, then softmax.
    if (opt.temperature > 0) {
      const float inv = float(1.0 / opt.temperature);
      for (int v = 0; v < V; ++v) row[v] *= inv;
    }
    if (opt.top_p < 1.0) TopPFilter(row, V, opt.top_p, scratch);
    if (opt.top_k > 0) TopKFilter(row, V, opt.top_k, scratch);
    ops::RowStats st = ops::ComputeRowStats(row, V);
    c.token = st.argmax;
    if (opt.temperature > 0) {
      // Inverse CDF of the filtered distribution.
      double u =
          RandomUniform(seed, RandomStream(kCategorical, step, position), 0);
      double cum = 0;
      for (int v = 0; v < V; ++v) {
        if (row[v] == -INFINITY) continue;
        cum += std::exp(double(row[v]) - st.log_norm);
        c.token = v;
        if (cum > u) break;
      }
    }
    const double p_tok = std::exp(double(row[c.token]) - st.log_norm);
    c.entropy = st.entropy;
    c.confidence = DreamConfidence(opt.order, st, p_tok);
  }
  EosLast(c, opt, eos_ids);
  return c;
}

}  // namespace dllm::gen
