// The BPE merge table and the merge loop: a word starts as one symbol per
// byte (or character) and adjacent pairs are merged lowest rank first,
// leftmost first among equal ranks, exactly as the Hugging Face library does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dllm {

// Open-addressing hash map from a pair of ids to (rank, merged id).
class PairTable {
 public:
  void Reserve(size_t n);
  // Returns false if the pair is already present (the first one wins).
  bool Insert(int32_t a, int32_t b, uint32_t rank, int32_t merged);
  // Rank of the pair, or UINT32_MAX; *merged receives the merged id.
  inline uint32_t Find(int32_t a, int32_t b, int32_t* merged) const {
    if (keys_.empty()) return UINT32_MAX;
    uint64_t key = Key(a, b);
    size_t i = Hash(key) & mask_;
    while (true) {
      uint64_t k = keys_[i];
      if (k == key) {
        *merged = vals_[i].merged;
        return vals_[i].rank;
      }
      if (k == kEmpty) return UINT32_MAX;
      i = (i + 1) & mask_;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  static uint64_t Key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) |
           static_cast<uint32_t>(b);
  }
  static size_t Hash(uint64_t k) {
    k ^= k >> 29;
    k *= 0xbf58476d1ce4e5b9ull;
    k ^= k >> 32;
    return static_cast<size_t>(k);
  }
  void Grow();
  struct Val {
    uint32_t rank;
    int32_t merged;
  };
  std::vector<uint64_t> keys_;
  std::vector<Val> vals_;
  size_t mask_ = 0, size_ = 0;
};

// Applies the merges to `syms` in place.
void BpeMerge(const PairTable& merges, std::vector<int32_t>* syms);

}  // namespace dllm
