// Byte-level BPE training: learns merges from a corpus and writes a
// tokenizer.json that the Hugging Face `tokenizers` library loads and that
// encodes identically there and in dllm::Tokenizer.
//
// Layout of the result: the special tokens first (ids 0..k-1, in the order
// given), then the 256 byte tokens (in byte order), then one token per merge.
// Pre-tokenizer: Split(regex, Isolated) + ByteLevel; decoder ByteLevel.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dllm {

struct BpeTrainOptions {
  size_t vocab_size = 8192;  // including specials and bytes
  std::vector<std::string>
      special_tokens;         // e.g. {"<|endoftext|>", "<|mask|>"}
  std::string pattern;        // pre-tokenizer regex; empty: Llama-3's
  int64_t min_frequency = 2;  // a pair must occur this often to be merged
  // Called now and then with (merges done, merges wanted); may be empty.
  std::function<void(size_t, size_t)> progress;
};

struct BpeTrainStats {
  size_t merges = 0, vocab_size = 0, unique_words = 0;
  uint64_t bytes = 0, words = 0;
};

// Trains on the given texts; returns tokenizer.json text.
std::string TrainBpe(const std::vector<std::string>& texts,
                     const BpeTrainOptions& opts,
                     BpeTrainStats* stats = nullptr);
// Same, reading the corpus from files (throws naming a file it cannot read).
std::string TrainBpeFromFiles(const std::vector<std::string>& paths,
                              const BpeTrainOptions& opts,
                              BpeTrainStats* stats = nullptr);

}  // namespace dllm
