// Training data: token files written by `dllm data prepare`, batch
// sampling and masking. Every random choice is keyed by (seed, step, ...)
// so that a resumed run sees exactly the batches of an uninterrupted one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/mmap_file.h"
#include "dllm/train.h"
#include "dllm/train_run.h"

namespace dllm {

// A flat file of little-endian uint32 token ids, mmapped.
class TokenFile {
 public:
  // Checks the size and that every id is below `vocab_size`.
  TokenFile(const std::string& path, int64_t vocab_size);
  int64_t size() const { return n_; }
  const uint32_t* data() const { return data_; }

 private:
  MappedFile file_;
  const uint32_t* data_;
  int64_t n_;
};

// SFT records: tokens of prompt + answer, and where the answer starts.
struct SftRecord {
  int64_t offset, length, prompt_len;
};
class SftData {
 public:
  SftData(const std::string& dir, int64_t vocab_size);  // sft.bin + sft.idx
  const std::vector<SftRecord>& records() const { return records_; }
  const uint32_t* tokens() const { return tokens_->data(); }

 private:
  std::unique_ptr<TokenFile> tokens_;
  std::vector<SftRecord> records_;
};

// Rows row0 .. row0 + B - 1 of a step's batch: random choices are keyed by
// the row's index in the whole (global) batch, so that the ranks of a
// data-parallel job, each sampling its own rows, together draw exactly the
// batch one process would.
//
// B windows of T consecutive tokens at random offsets (pre-training).
void SampleWindows(const TokenFile& data, int64_t B, int64_t T, uint64_t seed,
                   int64_t step, TrainBatch* out, int64_t row0 = 0);
// B evenly spaced, fixed windows (validation).
void FixedWindows(const TokenFile& data, int64_t B, int64_t T, int64_t first,
                  int64_t count, TrainBatch* out);
// B SFT records, truncated to T or padded with `eos` (padding is answer).
void SampleSft(const SftData& data, int64_t B, int64_t T, int32_t eos,
               uint64_t seed, int64_t step, TrainBatch* out, int64_t row0 = 0);

// LLaDA's forward process: per sequence t ~ U(0, 1), p = (1 - eps) t + eps,
// each position (past the prompt, for SFT) masked with probability p; at
// least one position is masked. With `random_length`, 1% of batches are cut
// to a random length in [2, T].
void MaskForMDM(TrainBatch* b, uint64_t seed, int64_t step, double eps,
                bool random_length, int64_t row0 = 0);
// BD3-LM's forward process: per block of `block` tokens t ~ U(0, 1),
// p = (1 - eps) t + eps (so p ~ U(eps, 1)), each token of the block masked
// with probability p; fills mask and block_p. No forced mask: a batch with
// none has loss 0, which keeps the estimator unbiased.
void MaskForBD(TrainBatch* b, int64_t block, uint64_t seed, int64_t step,
               double eps, int64_t row0 = 0);
// The same with a fixed t for every sequence (validation grid); with
// block > 0 also block_p, t in every block.
void MaskAtT(TrainBatch* b, double t, uint64_t seed, int64_t draw,
             int64_t block = 0);

}  // namespace dllm
