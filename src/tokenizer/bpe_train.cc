#include "dllm/bpe_train.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>

#include "base/mmap_file.h"
#include "dllm/error.h"
#include "dllm/tokenizer.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace dllm {
namespace {

using ojson = nlohmann::ordered_json;

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) |
         static_cast<uint32_t>(b);
}

class Trainer {
 public:
  explicit Trainer(const BpeTrainOptions& opts)
      : opts_(opts),
        re_(opts.pattern.empty() ? Tokenizer::kCl100kPattern : opts.pattern,
            false, "bpe train pattern") {
    DLLM_CHECK(opts.vocab_size >= 256 + opts.special_tokens.size(),
               "tokenizer train: --vocab-size ", opts.vocab_size,
               " is below 256 bytes + ", opts.special_tokens.size(),
               " special tokens");
    for (const std::string& s : opts.special_tokens) {
      DLLM_CHECK(!s.empty(), "tokenizer train: empty special token");
      DLLM_CHECK(utf8::IsValid(s),
                 "tokenizer train: special token is not valid UTF-8");
    }
  }

  // Counts the pre-tokenized words of one text (special tokens cut out).
  void Count(std::string_view raw) {
    std::string fixed;
    if (!utf8::IsValid(raw)) {
      fixed = SanitizeUtf8(raw);
      raw = fixed;
    }
    stats_.bytes += raw.size();
    size_t pos = 0;
    while (pos < raw.size()) {
      // Next special token occurrence.
      size_t next = raw.size(), len = 0;
      for (const std::string& s : opts_.special_tokens) {
        size_t j = raw.find(s, pos);
        if (j < next) {
          next = j;
          len = s.size();
        }
      }
      CountSegment(raw.substr(pos, next - pos));
      pos = next + len;
    }
  }

  std::string Train() {
    const size_t n_special = opts_.special_tokens.size();
    // Vocabulary: specials, bytes.
    for (const std::string& s : opts_.special_tokens) AddToken(s);
    const auto& bm = utf8::GetByteMap();
    int32_t byte_id[256];
    for (int b = 0; b < 256; ++b) byte_id[b] = AddToken(bm.byte_to_utf8[b]);
    DLLM_CHECK(tokens_.size() == n_special + 256,
               "tokenizer train: a special token collides with a byte token");
    // Words as symbol sequences.
    words_.reserve(counts_.size());
    for (auto& [w, c] : counts_) {
      Word word;
      word.count = c;
      for (unsigned char ch : w) word.syms.push_back(byte_id[ch]);
      words_.push_back(std::move(word));
    }
    stats_.unique_words = words_.size();
    counts_.clear();
    // Initial pair counts.
    for (size_t wi = 0; wi < words_.size(); ++wi) {
      const Word& w = words_[wi];
      for (size_t k = 0; k + 1 < w.syms.size(); ++k) {
        uint64_t key = PairKey(w.syms[k], w.syms[k + 1]);
        pair_count_[key] += w.count;
        where_[key].push_back(static_cast<uint32_t>(wi));
      }
    }
    for (const auto& [key, c] : pair_count_) heap_.push({c, key});
    const size_t wanted = opts_.vocab_size > tokens_.size()
                              ? opts_.vocab_size - tokens_.size()
                              : 0;
    while (tokens_.size() < opts_.vocab_size && !heap_.empty()) {
      auto [c, key] = heap_.top();
      heap_.pop();
      auto it = pair_count_.find(key);
      int64_t cur = it == pair_count_.end() ? 0 : it->second;
      if (cur != c) {
        if (cur > 0) heap_.push({cur, key});
        continue;
      }
      if (c < opts_.min_frequency) break;
      int32_t a = static_cast<int32_t>(key >> 32),
              b = static_cast<int32_t>(key & 0xFFFFFFFFu);
      int32_t m = AddToken(tokens_[a] + tokens_[b]);
      merges_.emplace_back(a, b);
      ApplyMerge(key, a, b, m);
      if (opts_.progress && merges_.size() % 256 == 0)
        opts_.progress(merges_.size(), wanted);
    }
    stats_.merges = merges_.size();
    stats_.vocab_size = tokens_.size();
    return ToJson();
  }

  const BpeTrainStats& stats() const { return stats_; }

 private:
  struct Word {
    std::vector<int32_t> syms;
    int64_t count = 0;
  };

  void CountSegment(std::string_view s) {
    if (s.empty()) return;
    matches_.clear();
    re_.FindAll(s, &matches_);
    uint32_t prev = 0;
    auto add = [&](uint32_t a, uint32_t b) {
      if (a >= b) return;
      ++counts_[std::string(s.substr(a, b - a))];
      ++stats_.words;
    };
    for (auto [a, b] : matches_) {
      add(prev, a);
      add(a, b);
      prev = b;
    }
    add(prev, static_cast<uint32_t>(s.size()));
  }

  int32_t AddToken(const std::string& tok) {
    auto it = token_id_.find(tok);
    if (it != token_id_.end()) return it->second;
    int32_t id = static_cast<int32_t>(tokens_.size());
    tokens_.push_back(tok);
    token_id_.emplace(tok, id);
    return id;
  }

  void Bump(uint64_t key, int64_t delta, uint32_t wi) {
    int64_t& c = pair_count_[key];
    c += delta;
    if (delta > 0) {
      where_[key].push_back(wi);
      touched_.push_back(key);
    }
  }

  void ApplyMerge(uint64_t key, int32_t a, int32_t b, int32_t m) {
    std::vector<uint32_t> list = std::move(where_[key]);
    where_.erase(key);
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
    for (uint32_t wi : list) {
      Word& w = words_[wi];
      std::vector<int32_t>& s = w.syms;
      bool any = false;
      for (size_t k = 0; k + 1 < s.size(); ++k)
        if (s[k] == a && s[k + 1] == b) any = true;
      if (!any) continue;
      // Remove this word's old pair counts, merge, add the new ones.
      for (size_t k = 0; k + 1 < s.size(); ++k)
        pair_count_[PairKey(s[k], s[k + 1])] -= w.count;
      std::vector<int32_t> out;
      out.reserve(s.size());
      for (size_t k = 0; k < s.size(); ++k) {
        if (k + 1 < s.size() && s[k] == a && s[k + 1] == b) {
          out.push_back(m);
          ++k;
        } else {
          out.push_back(s[k]);
        }
      }
      s = std::move(out);
      for (size_t k = 0; k + 1 < s.size(); ++k)
        Bump(PairKey(s[k], s[k + 1]), w.count, wi);
    }
    pair_count_.erase(key);
    std::sort(touched_.begin(), touched_.end());
    touched_.erase(std::unique(touched_.begin(), touched_.end()),
                   touched_.end());
    for (uint64_t k : touched_) heap_.push({pair_count_[k], k});
    touched_.clear();
  }

  std::string ToJson() const {
    ojson j;
    j["version"] = "1.0";
    j["truncation"] = nullptr;
    j["padding"] = nullptr;
    ojson added = ojson::array();
    for (size_t i = 0; i < opts_.special_tokens.size(); ++i)
      added.push_back({{"id", i},
                       {"content", opts_.special_tokens[i]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", true}});
    j["added_tokens"] = added;
    j["normalizer"] = nullptr;
    ojson byte_level = {{"type", "ByteLevel"},
                        {"add_prefix_space", false},
                        {"trim_offsets", false},
                        {"use_regex", false}};
    j["pre_tokenizer"] = {
        {"type", "Sequence"},
        {"pretokenizers",
         ojson::array(
             {{{"type", "Split"},
               {"pattern",
                {{"Regex", opts_.pattern.empty() ? Tokenizer::kCl100kPattern
                                                 : opts_.pattern}}},
               {"behavior", "Isolated"},
               {"invert", false}},
              byte_level})}};
    j["post_processor"] = byte_level;
    j["decoder"] = byte_level;
    ojson vocab = ojson::object();
    for (size_t i = 0; i < tokens_.size(); ++i) vocab[tokens_[i]] = i;
    ojson merges = ojson::array();
    for (auto [a, b] : merges_)
      merges.push_back(ojson::array({tokens_[a], tokens_[b]}));
    j["model"] = {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", nullptr},
                  {"continuing_subword_prefix", nullptr},
                  {"end_of_word_suffix", nullptr},
                  {"fuse_unk", false},
                  {"byte_fallback", false},
                  {"ignore_merges", false},
                  {"vocab", vocab},
                  {"merges", merges}};
    return j.dump(1) + "\n";
  }

  const BpeTrainOptions& opts_;
  Regex re_;
  std::vector<std::pair<uint32_t, uint32_t>> matches_;
  std::unordered_map<std::string, int64_t> counts_;
  std::vector<Word> words_;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> token_id_;
  std::vector<std::pair<int32_t, int32_t>> merges_;
  std::unordered_map<uint64_t, int64_t> pair_count_;
  std::unordered_map<uint64_t, std::vector<uint32_t>> where_;
  std::vector<uint64_t> touched_;
  // Max count first, then the smaller pair key (deterministic).
  struct Cmp {
    bool operator()(const std::pair<int64_t, uint64_t>& x,
                    const std::pair<int64_t, uint64_t>& y) const {
      return x.first != y.first ? x.first < y.first : x.second > y.second;
    }
  };
  std::priority_queue<std::pair<int64_t, uint64_t>,
                      std::vector<std::pair<int64_t, uint64_t>>, Cmp>
      heap_;
  BpeTrainStats stats_;
};

}  // namespace

std::string TrainBpe(const std::vector<std::string>& texts,
                     const BpeTrainOptions& opts, BpeTrainStats* stats) {
  Trainer t(opts);
  for (const std::string& s : texts) t.Count(s);
  std::string out = t.Train();
  if (stats) *stats = t.stats();
  return out;
}

std::string TrainBpeFromFiles(const std::vector<std::string>& paths,
                              const BpeTrainOptions& opts,
                              BpeTrainStats* stats) {
  DLLM_CHECK(!paths.empty(), "tokenizer train: no input files");
  Trainer t(opts);
  for (const std::string& p : paths) t.Count(ReadFileToString(p));
  std::string out = t.Train();
  if (stats) *stats = t.stats();
  return out;
}

}  // namespace dllm
