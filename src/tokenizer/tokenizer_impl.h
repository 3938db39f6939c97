// Internal to the tokenizer: the state a loaded tokenizer holds, shared by
// the loaders (tokenizer_load.cc), which fill it from tokenizer.json, GPT-2
// vocab/merges or tiktoken files, and the encode/decode pipeline
// (tokenizer.cc), which only reads it.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dllm/tokenizer.h"
#include "tokenizer/bpe.h"
#include "tokenizer/regex.h"

namespace dllm {
namespace tok {

constexpr int32_t kMaxId = 1 << 24;  // sanity bound on token ids

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false, lstrip = false, rstrip = false, normalized = false,
       single_word = false;
};

// A piece of text: either an added token (id >= 0) or text to tokenize.
struct Span {
  int32_t id;
  uint32_t start, end;
};

// Finds added tokens in text, leftmost-longest, like the Aho-Corasick
// automaton of the Hugging Face AddedVocabulary, then applies the tokens'
class AddedMatcher {
 public:
  void Add(const AddedToken* t, std::string pattern) {
    if (pattern.empty()) return;
    auto b = static_cast<uint8_t>(pattern[0]);
    by_first_[b].push_back({std::move(pattern), t});
    any_ = true;
  }
  void Finish() {
    for (auto& v : by_first_)
      std::stable_sort(v.begin(), v.end(), [](const Entry& a, const Entry& b) {
        return a.pattern.size() > b.pattern.size();
      });
  }
  bool empty() const { return !any_; }

  // Appends spans covering s[0, n) to *out, offsets shifted by `base`.
  void Split(std::string_view s, uint32_t base, std::vector<Span>* out) const;

 private:
  struct Entry {
    std::string pattern;
    const AddedToken* token;
  };
  std::vector<Entry> by_first_[256];
  bool any_ = false;
};

enum class NormKind {
  kNFC,
  kNFD,
  kNFKC,
  kNFKD,
  kLowercase,
  kReplace,
  kPrepend
};
struct NormStep {
  NormKind kind;
  std::string a, b;  // Replace: pattern, content; Prepend: prefix
};

enum class SplitBehavior {
  kIsolated,
  kRemoved,
  kMergedWithPrevious,
  kMergedWithNext,
  kContiguous
};
struct PreStep {
  std::unique_ptr<Regex> re;
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
};

// Heterogeneous-lookup hash for std::unordered_map<std::string, ...>.
struct StrHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const {
    return std::hash<std::string_view>()(s);
  }
};

}  // namespace tok

// Immutable once built (Finalize), except the word cache behind its mutex,
// so one tokenizer serves any number of threads.
struct TokenizerImpl {
  using AddedToken = tok::AddedToken;
  using AddedMatcher = tok::AddedMatcher;
  using NormStep = tok::NormStep;
  using PreStep = tok::PreStep;
  using StrHash = tok::StrHash;

  std::string source;  // file name for messages
  std::string model_desc;

  // Vocabulary.
  std::vector<std::string> id_to_token;  // written form; "" for holes
  std::vector<std::string> id_to_bytes;  // decoded bytes
  std::vector<uint8_t> is_special;
  std::unordered_map<std::string, int32_t, StrHash, std::equal_to<>>
      token_to_id;  // model vocabulary plus added tokens

  // BPE model.
  PairTable merges;
  bool byte_level = false;             // pieces are mapped through the byte map
  std::array<int32_t, 256> byte_id{};  // byte -> id of its one-char token
  bool ignore_merges = false;
  std::unordered_map<std::string, int32_t, StrHash, std::equal_to<>>
      raw_vocab;  // ignore_merges: piece bytes -> id
  int32_t unk_id = -1;
  bool fuse_unk = false;
  bool byte_fallback = false;
  std::string cont_prefix, end_suffix;
  std::unordered_map<std::string, int32_t, StrHash, std::equal_to<>>
      model_vocab;  // char-level models only

  // Added tokens.
  std::vector<AddedToken> added;
  AddedMatcher raw_matcher, norm_matcher;

  // Pipeline.
  std::vector<NormStep> normalizer;
  std::vector<PreStep> pre;
  bool prefix_space = false;  // ByteLevel add_prefix_space
  std::vector<int32_t> post_prefix, post_suffix;
  bool decoder_byte_level = true;

  // Word cache: piece bytes -> ids.
  mutable std::mutex cache_mu;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StrHash,
                             std::equal_to<>>
      cache;

  void EncodePiece(std::string_view piece, std::vector<int32_t>* out) const;
  void EncodeText(std::string_view text, std::vector<int32_t>* out) const;
  void Finalize();
  int32_t Lookup(std::string_view tok) const {
    auto it = token_to_id.find(tok);
    return it == token_to_id.end() ? -1 : it->second;
  }
};

namespace tok {

// Records `tok` (its written form) as token `id`; throws naming `where` on
// an id out of range.
void SetToken(TokenizerImpl* t, int32_t id, const std::string& tok,
              const std::string& where);
// Applies the normalizer steps to s (tokenizer.cc).
std::string Normalize(const std::vector<NormStep>& steps, std::string s);

}  // namespace tok
}  // namespace dllm
