#include "tokenizer/bpe.h"

#include <queue>

namespace dllm {

void PairTable::Reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  if (cap <= keys_.size()) return;
  std::vector<uint64_t> old_keys = std::move(keys_);
  std::vector<Val> old_vals = std::move(vals_);
  keys_.assign(cap, kEmpty);
  vals_.assign(cap, Val{0, 0});
  mask_ = cap - 1;
  size_ = 0;
  for (size_t i = 0; i < old_keys.size(); ++i) {
    if (old_keys[i] == kEmpty) continue;
    size_t j = Hash(old_keys[i]) & mask_;
    while (keys_[j] != kEmpty) j = (j + 1) & mask_;
    keys_[j] = old_keys[i];
    vals_[j] = old_vals[i];
    ++size_;
  }
}

void PairTable::Grow() { Reserve(keys_.empty() ? 8 : keys_.size()); }

bool PairTable::Insert(int32_t a, int32_t b, uint32_t rank, int32_t merged) {
  if ((size_ + 1) * 2 > keys_.size()) Grow();
  uint64_t key = Key(a, b);
  size_t i = Hash(key) & mask_;
  while (keys_[i] != kEmpty) {
    if (keys_[i] == key) return false;
    i = (i + 1) & mask_;
  }
  keys_[i] = key;
  vals_[i] = Val{rank, merged};
  ++size_;
  return true;
}

namespace {

// Short words: keep the rank of every adjacent pair in an array, merge the
// minimum, update the two neighbours. O(n^2) worst case, tiny constants.
void MergeShort(const PairTable& merges, std::vector<int32_t>* syms) {
  std::vector<int32_t>& s = *syms;
  size_t n = s.size();
  uint32_t rank[128];
  int32_t merged[128];
  for (size_t i = 0; i + 1 < n; ++i)
    rank[i] = merges.Find(s[i], s[i + 1], &merged[i]);
  while (n > 1) {
    size_t best = 0;
    uint32_t best_rank = UINT32_MAX;
    for (size_t i = 0; i + 1 < n; ++i) {
      if (rank[i] < best_rank) {
        best_rank = rank[i];
        best = i;
      }
    }
    if (best_rank == UINT32_MAX) break;
    s[best] = merged[best];
    // Remove symbol best+1 and pair entry best+1 (pair best now changes).
    for (size_t i = best + 1; i + 1 < n; ++i) s[i] = s[i + 1];
    for (size_t i = best + 1; i + 2 < n; ++i) {
      rank[i] = rank[i + 1];
      merged[i] = merged[i + 1];
    }
    --n;
    if (best + 1 < n)
      rank[best] = merges.Find(s[best], s[best + 1], &merged[best]);
    if (best > 0)
      rank[best - 1] = merges.Find(s[best - 1], s[best], &merged[best - 1]);
  }
  s.resize(n);
}

// Long words: linked list of symbols and a heap of candidate merges ordered by
// (rank, position); stale entries are skipped when popped. O(n log n).
void MergeLong(const PairTable& merges, std::vector<int32_t>* syms) {
  std::vector<int32_t>& s = *syms;
  const int n = static_cast<int>(s.size());
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Cand {
    uint32_t rank;
    int pos;
    int32_t left, right, merged;
    bool operator>(const Cand& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int i) {
    int j = next[i];
    if (i < 0 || j < 0) return;
    int32_t m;
    uint32_t r = merges.Find(s[i], s[j], &m);
    if (r != UINT32_MAX) heap.push(Cand{r, i, s[i], s[j], m});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  std::vector<bool> dead(n, false);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    if (dead[c.pos] || s[c.pos] != c.left) continue;
    int j = next[c.pos];
    if (j < 0 || s[j] != c.right) continue;
    s[c.pos] = c.merged;
    dead[j] = true;
    next[c.pos] = next[j];
    if (next[j] >= 0) prev[next[j]] = c.pos;
    if (prev[c.pos] >= 0) push(prev[c.pos]);
    push(c.pos);
  }
  size_t out = 0;
  for (int i = 0; i >= 0 && i < n; i = next[i]) s[out++] = s[i];
  s.resize(out);
}

}  // namespace

void BpeMerge(const PairTable& merges, std::vector<int32_t>* syms) {
  if (syms->size() < 2) return;
  if (syms->size() <= 128)
    MergeShort(merges, syms);
  else
    MergeLong(merges, syms);
}

}  // namespace dllm
