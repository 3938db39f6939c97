#include "train/data.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/rng.h"
#include "dllm/error.h"

namespace dllm {

namespace {
// RNG streams of the data pipeline.
enum : uint64_t {
  kWindow = 101,
  kTime = 102,
  kMask = 103,
  kCut = 104,
  kSft = 105
};
uint64_t Stream(uint64_t tag, int64_t step, int64_t b) {
  return Mix64((tag << 56) ^ (uint64_t(step) << 20) ^ uint64_t(b));
}
}  // namespace

TokenFile::TokenFile(const std::string& path, int64_t vocab_size)
    : file_(path) {
  DLLM_CHECK(file_.size() % 4 == 0, path, ": size ", file_.size(),
             " is not a multiple of 4: not a uint32 token file (run `dllm data "
             "prepare`)");
  data_ = reinterpret_cast<const uint32_t*>(file_.data());
  n_ = int64_t(file_.size() / 4);
  for (int64_t i = 0; i < n_; ++i)
    DLLM_CHECK(data_[i] < uint64_t(vocab_size), path, ": token ", data_[i],
               " at index ", i, " is outside the model's vocabulary of ",
               vocab_size, ": was the data prepared with another tokenizer?");
}

SftData::SftData(const std::string& dir, int64_t vocab_size) {
  tokens_ = std::make_unique<TokenFile>(dir + "/sft.bin", vocab_size);
  auto j = nlohmann::json::parse(ReadFileToString(dir + "/sft.json"), nullptr,
                                 false);
  DLLM_CHECK(
      !j.is_discarded() && j.contains("records") && j["records"].is_array(),
      dir,
      "/sft.json: expected {\"records\": [[offset, length, prompt_len], ...]}");
  for (const auto& r : j["records"]) {
    DLLM_CHECK(r.is_array() && r.size() == 3 && r[0].is_number_integer() &&
                   r[1].is_number_integer() && r[2].is_number_integer(),
               dir, "/sft.json: bad record ", r.dump(),
               " (expected [offset, length, prompt_len])");
    SftRecord s{r[0].get<int64_t>(), r[1].get<int64_t>(), r[2].get<int64_t>()};
    DLLM_CHECK(s.offset >= 0 && s.offset <= tokens_->size() &&
                   s.length > s.prompt_len && s.prompt_len >= 0 &&
                   s.length <= tokens_->size() - s.offset,
               dir, "/sft.json: record ", r.dump(),
               " is outside sft.bin or has no answer");
    records_.push_back(s);
  }
  DLLM_CHECK(!records_.empty(), dir, "/sft.json: no records");
}

void SampleWindows(const TokenFile& data, int64_t B, int64_t T, uint64_t seed,
                   int64_t step, TrainBatch* out, int64_t row0) {
  DLLM_CHECK(data.size() > T, "the data has ", data.size(),
             " tokens, fewer than one window of ", T + 1);
  out->B = B, out->T = T;
  out->ids.resize(size_t(B * T));
  out->mask.clear(), out->p.clear(), out->prompt_len.clear();
  for (int64_t b = 0; b < B; ++b) {
    const uint64_t r = RandomBits(seed, Stream(kWindow, step, row0 + b), 0);
    const int64_t start = int64_t(r % uint64_t(data.size() - T));
    for (int64_t t = 0; t < T; ++t)
      out->ids[size_t(b * T + t)] = int32_t(data.data()[start + t]);
  }
}

void FixedWindows(const TokenFile& data, int64_t B, int64_t T, int64_t first,
                  int64_t count, TrainBatch* out) {
  DLLM_CHECK(data.size() >= T, "validation data has ", data.size(),
             " tokens, fewer than ", T);
  out->B = B, out->T = T;
  out->ids.resize(size_t(B * T));
  out->mask.clear(), out->p.clear(), out->prompt_len.clear();
  const int64_t span = data.size() - T;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t w = first + b;
    const int64_t start = count > 1 ? span * w / (count - 1) : 0;
    for (int64_t t = 0; t < T; ++t)
      out->ids[size_t(b * T + t)] = int32_t(data.data()[start + t]);
  }
}

void SampleSft(const SftData& data, int64_t B, int64_t T, int32_t eos,
               uint64_t seed, int64_t step, TrainBatch* out, int64_t row0) {
  out->B = B, out->T = T;
  out->ids.assign(size_t(B * T), eos);
  out->prompt_len.assign(size_t(B), 0);
  out->mask.clear(), out->p.clear();
  const auto& recs = data.records();
  for (int64_t b = 0; b < B; ++b) {
    const SftRecord& r =
        recs[RandomBits(seed, Stream(kSft, step, row0 + b), 0) % recs.size()];
    const int64_t n = std::min(r.length, T);
    for (int64_t t = 0; t < n; ++t)
      out->ids[size_t(b * T + t)] = int32_t(data.tokens()[r.offset + t]);
    // Keep at least one answer position inside the window.
    out->prompt_len[size_t(b)] = int32_t(std::min(r.prompt_len, T - 1));
  }
}

void MaskForMDM(TrainBatch* b, uint64_t seed, int64_t step, double eps,
                bool random_length, int64_t row0) {
  if (random_length && RandomUniform(seed, Stream(kCut, step, 0), 0) < 0.01) {
    // Cut every sequence of this batch to one random length.
    const int64_t T2 = 2 + int64_t(RandomBits(seed, Stream(kCut, step, 1), 0) %
                                   uint64_t(b->T - 1));
    std::vector<int32_t> ids(size_t(b->B * T2));
    for (int64_t s = 0; s < b->B; ++s)
      std::copy_n(b->ids.begin() + s * b->T, T2, ids.begin() + s * T2);
    b->ids = std::move(ids);
    for (auto& pl : b->prompt_len) pl = std::min<int32_t>(pl, int32_t(T2 - 1));
    b->T = T2;
  }
  b->mask.assign(size_t(b->B * b->T), 0);
  b->p.assign(size_t(b->B), 0.0f);
  for (int64_t s = 0; s < b->B; ++s) {
    const double t = RandomUniform(seed, Stream(kTime, step, row0 + s), 0);
    const double p = (1.0 - eps) * t + eps;
    b->p[size_t(s)] = float(p);
    const int64_t first = b->prompt_len.empty() ? 0 : b->prompt_len[size_t(s)];
    int n = 0;
    for (int64_t i = first; i < b->T; ++i) {
      const bool m =
          RandomUniform(seed, Stream(kMask, step, row0 + s), uint64_t(i)) < p;
      b->mask[size_t(s * b->T + i)] = m;
      n += m;
    }
    if (n == 0) {  // at least one masked position, chosen at random
      const int64_t i =
          first +
          int64_t(RandomBits(seed, Stream(kMask, step, row0 + s), 1u << 30) %
                  uint64_t(b->T - first));
      b->mask[size_t(s * b->T + i)] = 1;
    }
  }
}

void MaskForBD(TrainBatch* b, int64_t block, uint64_t seed, int64_t step,
               double eps, int64_t row0) {
  DLLM_CHECK(block >= 1, "bd masking: block size ", block);
  const int64_t nb = (b->T + block - 1) / block;
  b->mask.assign(size_t(b->B * b->T), 0);
  b->p.clear();
  b->block_p.assign(size_t(b->B * nb), 0.0f);
  for (int64_t s = 0; s < b->B; ++s)
    for (int64_t k = 0; k < nb; ++k) {
      // One t per block (BD3-LM): every block is its own diffusion problem,
      // conditioned on the clean blocks before it.
      const double t =
          RandomUniform(seed, Stream(kTime, step, row0 + s), uint64_t(k));
      const double p = (1.0 - eps) * t + eps;
      b->block_p[size_t(s * nb + k)] = float(p);
      for (int64_t i = k * block; i < std::min(b->T, (k + 1) * block); ++i)
        b->mask[size_t(s * b->T + i)] =
            RandomUniform(seed, Stream(kMask, step, row0 + s), uint64_t(i)) < p;
    }
}

void MaskAtT(TrainBatch* b, double t, uint64_t seed, int64_t draw,
             int64_t block) {
  b->mask.assign(size_t(b->B * b->T), 0);
  b->p.assign(size_t(b->B), float(t));
  if (block > 0)  // the same t in every block: the grid of each block's ELBO
    b->block_p.assign(size_t(b->B * ((b->T + block - 1) / block)), float(t));
  for (int64_t s = 0; s < b->B; ++s)
    for (int64_t i = 0; i < b->T; ++i)
      b->mask[size_t(s * b->T + i)] =
          RandomUniform(seed, Stream(kMask, -1 - draw, s), uint64_t(i)) < t;
}

void WriteTokenFile(const std::string& path,
                    const std::vector<int32_t>& tokens) {
  std::vector<uint32_t> u(tokens.begin(), tokens.end());
  WriteFileAtomic(path, u.data(), u.size() * 4);
}

}  // namespace dllm
