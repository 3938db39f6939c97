#include "tokenizer/tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "base/error.h"
#include "base/mmap_file.h"
#include "tokenizer/bpe.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace dllm {

using json = nlohmann::json;

const char* Tokenizer::kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* Tokenizer::kCl100kPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* Tokenizer::kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* Tokenizer::kO200kPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace {

constexpr int32_t kMaxId = 1 << 24;  // sanity bound on token ids

bool IsUnicodeSpace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool IsWordChar(uint32_t c) {
  if (c == '_') return true;
  if (c < 0x80) return std::isalnum(static_cast<int>(c)) != 0;
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
         (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

// Last / first code point of a valid UTF-8 string (0 if empty).
uint32_t LastChar(std::string_view s) {
  if (s.empty()) return 0;
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<uint8_t>(s[i]) & 0xC0) == 0x80) --i;
  uint32_t cp = 0;
  int bad;
  utf8::Decode(s, i, &cp, &bad);
  return cp;
}
uint32_t FirstChar(std::string_view s) {
  if (s.empty()) return 0;
  uint32_t cp = 0;
  int bad;
  utf8::Decode(s, 0, &cp, &bad);
  return cp;
}

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
// single_word / lstrip / rstrip rules.
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
  void Split(std::string_view s, uint32_t base, std::vector<Span>* out) const {
    size_t n = s.size();
    size_t start_offset = 0, pos = 0;
    while (pos < n) {
      // Leftmost-longest match at or after pos.
      size_t mstart = n, mend = 0;
      const AddedToken* tok = nullptr;
      for (size_t i = pos; i < n && !tok; ++i) {
        const auto& cands = by_first_[static_cast<uint8_t>(s[i])];
        for (const Entry& e : cands) {
          if (e.pattern.size() <= n - i &&
              std::memcmp(s.data() + i, e.pattern.data(), e.pattern.size()) ==
                  0) {
            mstart = i;
            mend = i + e.pattern.size();
            tok = e.token;
            break;
          }
        }
      }
      if (!tok) break;
      pos = mend;
      size_t start = mstart, stop = mend;
      if (tok->single_word) {
        bool start_ok = start == 0 || !IsWordChar(LastChar(s.substr(0, start)));
        bool stop_ok = stop == n || !IsWordChar(FirstChar(s.substr(stop)));
        if (!start_ok || !stop_ok) continue;
      }
      if (tok->lstrip) {
        size_t ns = start;
        while (ns > 0) {
          size_t k = ns - 1;
          while (k > 0 && (static_cast<uint8_t>(s[k]) & 0xC0) == 0x80) --k;
          uint32_t cp;
          int bad;
          if (!utf8::Decode(s, k, &cp, &bad) || !IsUnicodeSpace(cp)) break;
          ns = k;
        }
        start = std::max(ns, start_offset);
      }
      if (tok->rstrip) {
        while (stop < n) {
          uint32_t cp;
          int bad;
          int len = utf8::Decode(s, stop, &cp, &bad);
          if (!len || !IsUnicodeSpace(cp)) break;
          stop += len;
        }
      }
      start = std::max(start, start_offset);
      if (start_offset < start)
        out->push_back({-1, static_cast<uint32_t>(base + start_offset),
                        static_cast<uint32_t>(base + start)});
      out->push_back({tok->id, static_cast<uint32_t>(base + start),
                      static_cast<uint32_t>(base + stop)});
      start_offset = stop;
      pos = std::max(pos, stop);
    }
    if (start_offset < n)
      out->push_back({-1, static_cast<uint32_t>(base + start_offset),
                      static_cast<uint32_t>(base + n)});
  }

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

std::string Normalize(const std::vector<NormStep>& steps, std::string s) {
  for (const NormStep& st : steps) {
    switch (st.kind) {
      case NormKind::kNFC:
      case NormKind::kNFD:
      case NormKind::kNFKC:
      case NormKind::kNFKD: {
        bool ascii = std::all_of(s.begin(), s.end(), [](char c) {
          return static_cast<uint8_t>(c) < 0x80;
        });
        if (ascii || s.empty()) break;
        int opts = UTF8PROC_STABLE;
        if (st.kind == NormKind::kNFC) opts |= UTF8PROC_COMPOSE;
        if (st.kind == NormKind::kNFD) opts |= UTF8PROC_DECOMPOSE;
        if (st.kind == NormKind::kNFKC)
          opts |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
        if (st.kind == NormKind::kNFKD)
          opts |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
        utf8proc_uint8_t* out = nullptr;
        auto len =
            utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                         static_cast<utf8proc_ssize_t>(s.size()), &out,
                         static_cast<utf8proc_option_t>(opts));
        if (len >= 0) s.assign(reinterpret_cast<char*>(out), len);
        std::free(out);
        break;
      }
      case NormKind::kLowercase: {
        std::string out;
        out.reserve(s.size());
        size_t i = 0;
        while (i < s.size()) {
          uint32_t cp;
          int bad;
          int len = utf8::Decode(s, i, &cp, &bad);
          if (!len) {
            out.push_back(s[i++]);
            continue;
          }
          if (cp == 0x130) {  // the one multi-char lowercase: "i" + U+0307
            out += "i\xCC\x87";
          } else {
            utf8::Append(&out, static_cast<uint32_t>(utf8proc_tolower(
                                   static_cast<utf8proc_int32_t>(cp))));
          }
          i += len;
        }
        s = std::move(out);
        break;
      }
      case NormKind::kReplace: {
        if (st.a.empty()) break;
        std::string out;
        size_t i = 0;
        while (true) {
          size_t j = s.find(st.a, i);
          if (j == std::string::npos) break;
          out.append(s, i, j - i);
          out += st.b;
          i = j + st.a.size();
        }
        out.append(s, i, std::string::npos);
        s = std::move(out);
        break;
      }
      case NormKind::kPrepend:
        if (!s.empty()) s = st.a + s;
        break;
    }
  }
  return s;
}

// Heterogeneous-lookup hash for std::unordered_map<std::string, ...>.
struct StrHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const {
    return std::hash<std::string_view>()(s);
  }
};

}  // namespace

struct TokenizerImpl {
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

namespace {

void SetToken(TokenizerImpl* t, int32_t id, const std::string& tok,
              const std::string& where) {
  DLLM_CHECK(id >= 0 && id < kMaxId, where, ": token id ", id,
             " out of range [0, ", kMaxId, ") for ", json(tok).dump());
  if (static_cast<size_t>(id) >= t->id_to_token.size()) {
    t->id_to_token.resize(id + 1);
  }
  t->id_to_token[id] = tok;
}

}  // namespace

void TokenizerImpl::Finalize() {
  size_t n = id_to_token.size();
  for (const AddedToken& a : added)
    n = std::max(n, static_cast<size_t>(a.id) + 1);
  id_to_token.resize(n);
  is_special.assign(n, 0);
  for (const AddedToken& a : added) {
    id_to_token[a.id] = a.content;
    token_to_id[a.content] = a.id;
    if (a.special) is_special[a.id] = 1;
  }
  id_to_bytes.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& tok = id_to_token[i];
    if (decoder_byte_level) {
      std::string b;
      id_to_bytes[i] = utf8::ByteLevelToBytes(tok, &b) ? b : tok;
    } else {
      id_to_bytes[i] = tok;
    }
  }
  if (byte_level) {
    const auto& bm = utf8::GetByteMap();
    for (int b = 0; b < 256; ++b) {
      auto it = token_to_id.find(bm.byte_to_utf8[b]);
      byte_id[b] = it == token_to_id.end() ? -1 : it->second;
    }
  }
  if (ignore_merges) {
    for (const auto& [tok, id] : model_vocab) {
      std::string b;
      if (!byte_level)
        raw_vocab.emplace(tok, id);
      else if (utf8::ByteLevelToBytes(tok, &b))
        raw_vocab.emplace(b, id);
    }
  }
  if (byte_level) model_vocab.clear();
  // Matchers over added tokens: non-normalized ones on raw text, normalized
  // ones on normalized text.
  for (const AddedToken& a : added) {
    if (a.normalized && !normalizer.empty())
      norm_matcher.Add(&a, Normalize(normalizer, a.content));
    else if (a.normalized)
      norm_matcher.Add(&a, a.content);
    else
      raw_matcher.Add(&a, a.content);
  }
  raw_matcher.Finish();
  norm_matcher.Finish();
}

void TokenizerImpl::EncodePiece(std::string_view piece,
                                std::vector<int32_t>* out) const {
  if (piece.empty()) return;
  constexpr size_t kMaxCached = 64;
  if (piece.size() <= kMaxCached) {
    std::lock_guard<std::mutex> lock(cache_mu);
    auto it = cache.find(piece);
    if (it != cache.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  thread_local std::vector<int32_t> syms;
  syms.clear();
  bool whole = false;
  if (ignore_merges) {
    auto it = raw_vocab.find(piece);
    if (it != raw_vocab.end()) {
      syms.push_back(it->second);
      whole = true;
    }
  }
  if (!whole) {
    bool last_unk = false;
    auto push_unk = [&]() {
      if (unk_id < 0) return;
      if (fuse_unk && last_unk) return;
      syms.push_back(unk_id);
      last_unk = true;
    };
    if (byte_level) {
      for (unsigned char c : piece) {
        int32_t id = byte_id[c];
        if (id < 0) {
          push_unk();
        } else {
          syms.push_back(id);
          last_unk = false;
        }
      }
    } else {
      size_t i = 0;
      std::string key;
      while (i < piece.size()) {
        uint32_t cp;
        int bad;
        int len = utf8::Decode(piece, i, &cp, &bad);
        if (!len) len = bad;
        key.clear();
        if (i > 0) key += cont_prefix;
        key.append(piece.substr(i, len));
        if (i + len == piece.size()) key += end_suffix;
        auto it = model_vocab.find(key);
        if (it != model_vocab.end()) {
          syms.push_back(it->second);
          last_unk = false;
        } else if (byte_fallback) {
          bool ok = true;
          std::vector<int32_t> bytes;
          for (int k = 0; k < len && ok; ++k) {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "<0x%02X>",
                          static_cast<uint8_t>(piece[i + k]));
            auto jt = model_vocab.find(std::string_view(buf));
            if (jt == model_vocab.end())
              ok = false;
            else
              bytes.push_back(jt->second);
          }
          if (ok) {
            syms.insert(syms.end(), bytes.begin(), bytes.end());
            last_unk = false;
          } else {
            push_unk();
          }
        } else {
          push_unk();
        }
        i += len;
      }
    }
    BpeMerge(merges, &syms);
  }
  out->insert(out->end(), syms.begin(), syms.end());
  if (piece.size() <= kMaxCached) {
    std::lock_guard<std::mutex> lock(cache_mu);
    if (cache.size() >= (1u << 18)) cache.clear();
    cache.emplace(std::string(piece), syms);
  }
}

namespace {

// Splits the pieces `in` of `s` by one Split step into `out`.
void ApplySplit(const PreStep& st, std::string_view s,
                const std::vector<std::pair<uint32_t, uint32_t>>& in,
                std::vector<std::pair<uint32_t, uint32_t>>* out) {
  thread_local std::vector<std::pair<uint32_t, uint32_t>> m;
  struct Part {
    uint32_t a, b;
    bool match;
  };
  thread_local std::vector<Part> parts;
  for (auto [pa, pb] : in) {
    m.clear();
    st.re->FindAll(s.substr(pa, pb - pa), &m);
    if (st.behavior == SplitBehavior::kIsolated && !st.invert) {
      // Fast path: matches and the gaps between them, in order.
      uint32_t prev = pa;
      for (auto [a, b] : m) {
        a += pa;
        b += pa;
        if (prev < a) out->emplace_back(prev, a);
        out->emplace_back(a, b);
        prev = b;
      }
      if (prev < pb) out->emplace_back(prev, pb);
      continue;
    }
    parts.clear();
    uint32_t prev = pa;
    for (auto [a, b] : m) {
      a += pa;
      b += pa;
      if (prev < a) parts.push_back({prev, a, st.invert});
      parts.push_back({a, b, !st.invert});
      prev = b;
    }
    if (prev < pb) parts.push_back({prev, pb, st.invert});
    size_t first_out = out->size();
    bool previous_match = false;
    switch (st.behavior) {
      case SplitBehavior::kIsolated:
        for (const Part& p : parts) out->emplace_back(p.a, p.b);
        break;
      case SplitBehavior::kRemoved:
        for (const Part& p : parts)
          if (!p.match) out->emplace_back(p.a, p.b);
        break;
      case SplitBehavior::kMergedWithPrevious:
        for (const Part& p : parts) {
          if (p.match && !previous_match && out->size() > first_out)
            out->back().second = p.b;
          else
            out->emplace_back(p.a, p.b);
          previous_match = p.match;
        }
        break;
      case SplitBehavior::kMergedWithNext: {
        // Walk backwards, then restore the order.
        for (size_t k = parts.size(); k-- > 0;) {
          const Part& p = parts[k];
          if (p.match && !previous_match && out->size() > first_out)
            out->back().first = p.a;
          else
            out->emplace_back(p.a, p.b);
          previous_match = p.match;
        }
        std::reverse(out->begin() + first_out, out->end());
        break;
      }
      case SplitBehavior::kContiguous:
        for (size_t k = 0; k < parts.size(); ++k) {
          const Part& p = parts[k];
          if (k > 0 && p.match == previous_match)
            out->back().second = p.b;
          else
            out->emplace_back(p.a, p.b);
          previous_match = p.match;
        }
        break;
    }
  }
}

}  // namespace

void TokenizerImpl::EncodeText(std::string_view text,
                               std::vector<int32_t>* out) const {
  if (text.empty()) return;
  std::string norm;
  std::string_view s = text;
  if (!normalizer.empty()) {
    norm = Normalize(normalizer, std::string(text));
    s = norm;
  }
  std::vector<Span> spans;
  if (!norm_matcher.empty()) {
    norm_matcher.Split(s, 0, &spans);
  } else {
    spans.push_back({-1, 0, static_cast<uint32_t>(s.size())});
  }
  std::string with_space;
  for (const Span& sp : spans) {
    if (sp.id >= 0) {
      out->push_back(sp.id);
      continue;
    }
    std::string_view seg = s.substr(sp.start, sp.end - sp.start);
    if (prefix_space && !seg.empty() && seg[0] != ' ') {
      with_space = " ";
      with_space.append(seg);
      seg = with_space;
    }
    thread_local std::vector<std::pair<uint32_t, uint32_t>> a, b;
    a.clear();
    a.emplace_back(0, static_cast<uint32_t>(seg.size()));
    for (const PreStep& st : pre) {
      b.clear();
      ApplySplit(st, seg, a, &b);
      std::swap(a, b);
    }
    // Copy: EncodePiece may re-enter thread-locals of ApplySplit? It does
    // not, but keep the loop over a stable vector.
    for (auto [pa, pb] : a) EncodePiece(seg.substr(pa, pb - pa), out);
  }
}

Tokenizer::Tokenizer() = default;
Tokenizer::Tokenizer(std::shared_ptr<const TokenizerImpl> impl)
    : impl_(std::move(impl)) {}

std::vector<int32_t> Tokenizer::Encode(std::string_view text,
                                       bool add_special) const {
  DLLM_CHECK(impl_, "Tokenizer::Encode: no tokenizer loaded");
  const TokenizerImpl& t = *impl_;
  std::string fixed;
  if (!utf8::IsValid(text)) {
    fixed = SanitizeUtf8(text);
    text = fixed;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special) ids = t.post_prefix;
  std::vector<Span> spans;
  if (!t.raw_matcher.empty()) {
    t.raw_matcher.Split(text, 0, &spans);
  } else {
    spans.push_back({-1, 0, static_cast<uint32_t>(text.size())});
  }
  for (const Span& sp : spans) {
    if (sp.id >= 0)
      ids.push_back(sp.id);
    else
      t.EncodeText(text.substr(sp.start, sp.end - sp.start), &ids);
  }
  if (add_special)
    ids.insert(ids.end(), t.post_suffix.begin(), t.post_suffix.end());
  return ids;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids,
                              bool skip_special) const {
  DLLM_CHECK(impl_, "Tokenizer::Decode: no tokenizer loaded");
  const TokenizerImpl& t = *impl_;
  std::string bytes;
  bool first = true;
  for (int32_t id : ids) {
    DLLM_CHECK(id >= 0 && static_cast<size_t>(id) < t.id_to_bytes.size(),
               "decode: token id ", id, " out of range [0, ",
               t.id_to_bytes.size(), ")");
    if (skip_special && t.is_special[id]) continue;
    if (!t.decoder_byte_level && !first) bytes.push_back(' ');
    bytes += t.id_to_bytes[id];
    first = false;
  }
  return SanitizeUtf8(bytes);
}

std::string Tokenizer::TokenToPiece(int32_t id) const {
  DLLM_CHECK(
      impl_ && id >= 0 && static_cast<size_t>(id) < impl_->id_to_token.size(),
      "token id ", id, " out of range");
  return impl_->id_to_token[id];
}

const std::string& Tokenizer::TokenBytes(int32_t id) const {
  DLLM_CHECK(
      impl_ && id >= 0 && static_cast<size_t>(id) < impl_->id_to_bytes.size(),
      "token id ", id, " out of range");
  return impl_->id_to_bytes[id];
}

int32_t Tokenizer::TokenId(std::string_view piece) const {
  return impl_ ? impl_->Lookup(piece) : -1;
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return impl_ && id >= 0 &&
         static_cast<size_t>(id) < impl_->is_special.size() &&
         impl_->is_special[id];
}

size_t Tokenizer::vocab_size() const {
  return impl_ ? impl_->id_to_token.size() : 0;
}

int32_t Tokenizer::bos_id() const {
  return impl_ && !impl_->post_prefix.empty() ? impl_->post_prefix[0] : -1;
}
int32_t Tokenizer::eos_id() const {
  return impl_ && !impl_->post_suffix.empty() ? impl_->post_suffix[0] : -1;
}

std::string Tokenizer::Describe() const {
  if (!impl_) return "(no tokenizer)";
  return StrCat(impl_->model_desc, ", ", vocab_size(), " tokens (",
                impl_->added.size(), " added), ", impl_->merges.size(),
                " merges");
}

// ---------------------------------------------------------------------------
// Loading tokenizer.json

namespace {

const json& Field(const json& obj, const char* key, const std::string& where) {
  DLLM_CHECK(obj.is_object(), where, ": expected a JSON object");
  auto it = obj.find(key);
  DLLM_CHECK(it != obj.end(), where, ": missing field \"", key, "\"");
  return *it;
}

std::string Str(const json& obj, const char* key, const std::string& where) {
  const json& v = Field(obj, key, where);
  DLLM_CHECK(v.is_string(), where, ".", key, ": expected a string, got ",
             v.type_name());
  return v.get<std::string>();
}

bool Bool(const json& obj, const char* key, bool def,
          const std::string& where) {
  if (!obj.is_object()) return def;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return def;
  DLLM_CHECK(it->is_boolean(), where, ".", key, ": expected true/false, got ",
             it->type_name());
  return it->get<bool>();
}

std::string OptStr(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return "";
  DLLM_CHECK(it->is_string(), where, ".", key, ": expected a string or null");
  return it->get<std::string>();
}

void LoadNormalizer(const json& j, const std::string& where,
                    std::vector<NormStep>* out) {
  if (j.is_null()) return;
  std::string type = Str(j, "type", where);
  if (type == "Sequence") {
    const json& list = Field(j, "normalizers", where);
    DLLM_CHECK(list.is_array(), where, ".normalizers: expected an array");
    for (size_t i = 0; i < list.size(); ++i)
      LoadNormalizer(list[i], StrCat(where, ".normalizers[", i, "]"), out);
  } else if (type == "NFC") {
    out->push_back({NormKind::kNFC, "", ""});
  } else if (type == "NFD") {
    out->push_back({NormKind::kNFD, "", ""});
  } else if (type == "NFKC") {
    out->push_back({NormKind::kNFKC, "", ""});
  } else if (type == "NFKD") {
    out->push_back({NormKind::kNFKD, "", ""});
  } else if (type == "Lowercase") {
    out->push_back({NormKind::kLowercase, "", ""});
  } else if (type == "Prepend") {
    out->push_back({NormKind::kPrepend, Str(j, "prepend", where), ""});
  } else if (type == "Replace") {
    const json& pat = Field(j, "pattern", where);
    DLLM_CHECK(
        pat.is_object() && pat.contains("String") && pat["String"].is_string(),
        where,
        ".pattern: only {\"String\": ...} patterns are supported "
        "in a Replace normalizer");
    out->push_back({NormKind::kReplace, pat["String"].get<std::string>(),
                    Str(j, "content", where)});
  } else {
    Fail(where, ": normalizer type \"", type,
         "\" is not supported (supported: NFC, NFD, NFKC, NFKD, Lowercase, "
         "Prepend, Replace, Sequence)");
  }
}

void LoadPreTokenizer(const json& j, const std::string& where, TokenizerImpl* t,
                      bool* saw_byte_level) {
  if (j.is_null()) return;
  std::string type = Str(j, "type", where);
  if (type == "Sequence") {
    const json& list = Field(j, "pretokenizers", where);
    DLLM_CHECK(list.is_array(), where, ".pretokenizers: expected an array");
    for (size_t i = 0; i < list.size(); ++i)
      LoadPreTokenizer(list[i], StrCat(where, ".pretokenizers[", i, "]"), t,
                       saw_byte_level);
    return;
  }
  DLLM_CHECK(!*saw_byte_level, where, ": a ", type,
             " pre-tokenizer after ByteLevel is not supported");
  if (type == "ByteLevel") {
    *saw_byte_level = true;
    t->byte_level = true;
    if (Bool(j, "add_prefix_space", false, where)) {
      DLLM_CHECK(t->pre.empty(), where,
                 ": ByteLevel add_prefix_space after a Split is not supported");
      t->prefix_space = true;
    }
    if (Bool(j, "use_regex", true, where)) {
      PreStep st;
      st.re = std::make_unique<Regex>(Tokenizer::kGpt2Pattern, false, where);
      t->pre.push_back(std::move(st));
    }
  } else if (type == "Split") {
    const json& pat = Field(j, "pattern", where);
    PreStep st;
    DLLM_CHECK(pat.is_object(), where,
               ".pattern: expected {\"Regex\": ...} or "
               "{\"String\": ...}");
    if (pat.contains("Regex") && pat["Regex"].is_string()) {
      st.re = std::make_unique<Regex>(pat["Regex"].get<std::string>(), false,
                                      where + ".pattern");
    } else if (pat.contains("String") && pat["String"].is_string()) {
      st.re = std::make_unique<Regex>(pat["String"].get<std::string>(), true,
                                      where + ".pattern");
    } else {
      Fail(where, ".pattern: expected {\"Regex\": ...} or {\"String\": ...}");
    }
    std::string beh = Str(j, "behavior", where);
    if (beh == "Isolated")
      st.behavior = SplitBehavior::kIsolated;
    else if (beh == "Removed")
      st.behavior = SplitBehavior::kRemoved;
    else if (beh == "MergedWithPrevious")
      st.behavior = SplitBehavior::kMergedWithPrevious;
    else if (beh == "MergedWithNext")
      st.behavior = SplitBehavior::kMergedWithNext;
    else if (beh == "Contiguous")
      st.behavior = SplitBehavior::kContiguous;
    else
      Fail(where, ".behavior: unknown split behavior \"", beh, "\"");
    st.invert = Bool(j, "invert", false, where);
    t->pre.push_back(std::move(st));
  } else if (type == "Digits") {
    PreStep st;
    bool individual = Bool(j, "individual_digits", false, where);
    st.re = std::make_unique<Regex>(individual ? "\\p{N}" : "\\p{N}+", false,
                                    where);
    t->pre.push_back(std::move(st));
  } else {
    Fail(where, ": pre-tokenizer type \"", type,
         "\" is not supported (supported: ByteLevel, Split, Digits, Sequence)");
  }
}

void LoadPostProcessor(const json& j, const std::string& where,
                       TokenizerImpl* t) {
  if (j.is_null()) return;
  std::string type = Str(j, "type", where);
  auto id_of = [&](const std::string& tok, const std::string& w) {
    int32_t id = t->Lookup(tok);
    DLLM_CHECK(id >= 0, w, ": token ", json(tok).dump(),
               " is not in the vocabulary");
    return id;
  };
  if (type == "Sequence") {
    const json& list = Field(j, "processors", where);
    DLLM_CHECK(list.is_array(), where, ".processors: expected an array");
    for (size_t i = 0; i < list.size(); ++i)
      LoadPostProcessor(list[i], StrCat(where, ".processors[", i, "]"), t);
  } else if (type == "ByteLevel") {
    // Offsets only; no effect on ids.
  } else if (type == "TemplateProcessing") {
    const json& single = Field(j, "single", where);
    DLLM_CHECK(single.is_array(), where, ".single: expected an array");
    const json& specials =
        j.contains("special_tokens") ? j["special_tokens"] : json::object();
    bool after = false;
    for (size_t i = 0; i < single.size(); ++i) {
      std::string w = StrCat(where, ".single[", i, "]");
      const json& item = single[i];
      if (item.is_object() && item.contains("Sequence")) {
        after = true;
      } else if (item.is_object() && item.contains("SpecialToken")) {
        std::string name = Str(item["SpecialToken"], "id", w + ".SpecialToken");
        std::vector<int32_t> ids;
        if (specials.is_object() && specials.contains(name)) {
          const json& sp = specials[name];
          const json& arr = Field(sp, "ids", w);
          DLLM_CHECK(arr.is_array(), w, ".ids: expected an array");
          for (const json& v : arr) {
            DLLM_CHECK(v.is_number_integer(), w, ".ids: expected integers");
            ids.push_back(v.get<int32_t>());
          }
        } else {
          ids.push_back(id_of(name, w));
        }
        auto& dst = after ? t->post_suffix : t->post_prefix;
        dst.insert(dst.end(), ids.begin(), ids.end());
      } else {
        Fail(w, ": expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
      }
    }
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    const json& cls = Field(j, "cls", where);
    const json& sep = Field(j, "sep", where);
    DLLM_CHECK(cls.is_array() && cls.size() == 2 &&
                   cls[1].is_number_integer() && sep.is_array() &&
                   sep.size() == 2 && sep[1].is_number_integer(),
               where, ": cls/sep: expected [\"token\", id]");
    t->post_prefix.push_back(cls[1].get<int32_t>());
    t->post_suffix.push_back(sep[1].get<int32_t>());
  } else {
    Fail(where, ": post-processor type \"", type,
         "\" is not supported (supported: TemplateProcessing, ByteLevel, "
         "RobertaProcessing, BertProcessing, Sequence)");
  }
}

void LoadDecoder(const json& j, const std::string& where, TokenizerImpl* t) {
  if (j.is_null()) {
    t->decoder_byte_level = false;
    return;
  }
  std::string type = Str(j, "type", where);
  if (type == "ByteLevel") {
    t->decoder_byte_level = true;
  } else if (type == "Sequence") {
    const json& list = Field(j, "decoders", where);
    DLLM_CHECK(list.is_array() && list.size() == 1, where,
               ": only a Sequence holding one ByteLevel decoder is supported");
    LoadDecoder(list[0], where + ".decoders[0]", t);
  } else {
    Fail(where, ": decoder type \"", type,
         "\" is not supported (supported: ByteLevel)");
  }
}

std::shared_ptr<TokenizerImpl> LoadJson(std::string_view text,
                                        const std::string& source) {
  json root;
  try {
    root = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    Fail(source, ": not valid JSON: ", e.what());
  }
  DLLM_CHECK(root.is_object(), source, ": expected a JSON object at the top");
  auto t = std::make_shared<TokenizerImpl>();
  t->source = source;
  const json& model = Field(root, "model", source);
  std::string mw = source + ": model";
  std::string type =
      model.is_object() && model.contains("type") && model["type"].is_string()
          ? model["type"].get<std::string>()
          : "BPE";
  DLLM_CHECK(
      type == "BPE", mw, ".type: \"", type,
      "\" is not supported (only BPE models: byte-level BPE as in GPT-2, "
      "Llama-3, Qwen)");
  const json& vocab = Field(model, "vocab", mw);
  DLLM_CHECK(vocab.is_object(), mw, ".vocab: expected an object {token: id}");
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    DLLM_CHECK(it.value().is_number_integer(), mw, ".vocab[",
               json(it.key()).dump(), "]: expected an integer id");
    int64_t id = it.value().get<int64_t>();
    DLLM_CHECK(id >= 0 && id < kMaxId, mw, ".vocab[", json(it.key()).dump(),
               "]: id ", id, " out of range");
    SetToken(t.get(), static_cast<int32_t>(id), it.key(), mw + ".vocab");
    t->token_to_id[it.key()] = static_cast<int32_t>(id);
    t->model_vocab[it.key()] = static_cast<int32_t>(id);
  }
  t->cont_prefix = OptStr(model, "continuing_subword_prefix", mw);
  t->end_suffix = OptStr(model, "end_of_word_suffix", mw);
  t->ignore_merges = Bool(model, "ignore_merges", false, mw);
  t->fuse_unk = Bool(model, "fuse_unk", false, mw);
  t->byte_fallback = Bool(model, "byte_fallback", false, mw);
  if (model.contains("dropout") && !model["dropout"].is_null()) {
    DLLM_CHECK(
        model["dropout"].is_number() && model["dropout"].get<double>() == 0.0,
        mw, ".dropout: BPE dropout is not supported (expected null)");
  }
  std::string unk = OptStr(model, "unk_token", mw);
  if (!unk.empty()) {
    auto it = t->token_to_id.find(unk);
    DLLM_CHECK(it != t->token_to_id.end(), mw, ".unk_token ", json(unk).dump(),
               " is not in the vocabulary");
    t->unk_id = it->second;
  }
  const json& merges = Field(model, "merges", mw);
  DLLM_CHECK(merges.is_array(), mw, ".merges: expected an array");
  t->merges.Reserve(merges.size());
  std::string merged;
  for (size_t r = 0; r < merges.size(); ++r) {
    const json& m = merges[r];
    std::string a, b;
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      size_t sp = s.find(' ');
      DLLM_CHECK(
          sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos,
          mw, ".merges[", r,
          "]: expected \"a b\" (two tokens, one space), got ", m.dump());
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() &&
               m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      Fail(mw, ".merges[", r, "]: expected \"a b\" or [\"a\", \"b\"], got ",
           m.dump().substr(0, 80));
    }
    auto ia = t->model_vocab.find(a), ib = t->model_vocab.find(b);
    DLLM_CHECK(ia != t->model_vocab.end() && ib != t->model_vocab.end(), mw,
               ".merges[", r, "]: ", m.dump(), ": token ",
               json(ia == t->model_vocab.end() ? a : b).dump(),
               " is not in the vocabulary");
    std::string_view bpart = b;
    if (!t->cont_prefix.empty() && bpart.starts_with(t->cont_prefix))
      bpart.remove_prefix(t->cont_prefix.size());
    merged = a;
    merged.append(bpart);
    auto im = t->model_vocab.find(merged);
    DLLM_CHECK(im != t->model_vocab.end(), mw, ".merges[", r, "]: ", m.dump(),
               ": the merged token ", json(merged).dump(),
               " is not in the vocabulary");
    t->merges.Insert(ia->second, ib->second, static_cast<uint32_t>(r),
                     im->second);
  }

  // Added tokens.
  if (root.contains("added_tokens") && !root["added_tokens"].is_null()) {
    const json& list = root["added_tokens"];
    DLLM_CHECK(list.is_array(), source, ": added_tokens: expected an array");
    for (size_t i = 0; i < list.size(); ++i) {
      std::string w = StrCat(source, ": added_tokens[", i, "]");
      const json& a = list[i];
      AddedToken tok;
      const json& id = Field(a, "id", w);
      DLLM_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 &&
                     id.get<int64_t>() < kMaxId,
                 w, ".id: expected an integer in [0, ", kMaxId, ")");
      tok.id = id.get<int32_t>();
      tok.content = Str(a, "content", w);
      DLLM_CHECK(!tok.content.empty(), w, ".content: empty token");
      DLLM_CHECK(utf8::IsValid(tok.content), w, ".content: not valid UTF-8");
      tok.special = Bool(a, "special", false, w);
      tok.lstrip = Bool(a, "lstrip", false, w);
      tok.rstrip = Bool(a, "rstrip", false, w);
      tok.normalized = Bool(a, "normalized", !tok.special, w);
      tok.single_word = Bool(a, "single_word", false, w);
      t->added.push_back(std::move(tok));
    }
  }

  std::string nw = source + ": normalizer";
  if (root.contains("normalizer"))
    LoadNormalizer(root["normalizer"], nw, &t->normalizer);
  bool saw_byte_level = false;
  if (root.contains("pre_tokenizer"))
    LoadPreTokenizer(root["pre_tokenizer"], source + ": pre_tokenizer", t.get(),
                     &saw_byte_level);
  LoadDecoder(root.contains("decoder") ? root["decoder"] : json(),
              source + ": decoder", t.get());
  // The post-processor needs added tokens in the lookup table.
  for (const AddedToken& a : t->added) t->token_to_id[a.content] = a.id;
  if (root.contains("post_processor"))
    LoadPostProcessor(root["post_processor"], source + ": post_processor",
                      t.get());
  t->model_desc = StrCat("BPE", t->byte_level ? " (byte-level)" : "");
  t->Finalize();
  return t;
}

// A byte-level BPE from a vocabulary (written form -> id) and merges given as
// pairs of written forms; `pattern` is the Split regex (empty: ByteLevel's own
// GPT-2 regex).
std::shared_ptr<TokenizerImpl> BuildByteLevel(
    const std::string& source,
    std::vector<std::pair<std::string, int32_t>> vocab,
    const std::vector<std::pair<int32_t, int32_t>>& merges,
    const std::string& pattern,
    const std::vector<std::pair<std::string, int32_t>>& specials) {
  auto t = std::make_shared<TokenizerImpl>();
  t->source = source;
  for (auto& [tok, id] : vocab) {
    SetToken(t.get(), id, tok, source);
    t->token_to_id[tok] = id;
  }
  t->merges.Reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    auto [a, b] = merges[r];
    std::string m = t->id_to_token[a] + t->id_to_token[b];
    auto it = t->token_to_id.find(m);
    DLLM_CHECK(it != t->token_to_id.end(), source, ": merge ", r, " (",
               json(t->id_to_token[a]).dump(), " ",
               json(t->id_to_token[b]).dump(),
               "): merged token is not in the vocabulary");
    t->merges.Insert(a, b, static_cast<uint32_t>(r), it->second);
  }
  t->byte_level = true;
  PreStep st;
  st.re = std::make_unique<Regex>(
      pattern.empty() ? Tokenizer::kGpt2Pattern : pattern, false, source);
  t->pre.push_back(std::move(st));
  for (const auto& [content, id] : specials) {
    AddedToken a;
    a.content = content;
    a.id = id;
    a.special = true;
    t->added.push_back(a);
  }
  t->model_desc = "BPE (byte-level)";
  t->Finalize();
  return t;
}

}  // namespace

Tokenizer Tokenizer::FromJson(std::string_view json_text,
                              const std::string& source) {
  return Tokenizer(LoadJson(json_text, source));
}

Tokenizer Tokenizer::FromVocabMerges(const std::string& vocab_path,
                                     const std::string& merges_path) {
  std::string vtext = ReadFileToString(vocab_path);
  json v;
  try {
    v = json::parse(vtext);
  } catch (const json::exception& e) {
    Fail(vocab_path, ": not valid JSON: ", e.what());
  }
  DLLM_CHECK(v.is_object(), vocab_path, ": expected an object {token: id}");
  std::vector<std::pair<std::string, int32_t>> vocab;
  std::unordered_map<std::string, int32_t> ids;
  for (auto it = v.begin(); it != v.end(); ++it) {
    DLLM_CHECK(it.value().is_number_integer(), vocab_path, ": ",
               json(it.key()).dump(), ": expected an integer id");
    int64_t id = it.value().get<int64_t>();
    DLLM_CHECK(id >= 0 && id < kMaxId, vocab_path, ": ", json(it.key()).dump(),
               ": id ", id, " out of range");
    vocab.emplace_back(it.key(), static_cast<int32_t>(id));
    ids[it.key()] = static_cast<int32_t>(id);
  }
  std::string mtext = ReadFileToString(merges_path);
  std::vector<std::pair<int32_t, int32_t>> merges;
  size_t pos = 0;
  int line_no = 0;
  while (pos < mtext.size()) {
    size_t eol = mtext.find('\n', pos);
    if (eol == std::string::npos) eol = mtext.size();
    std::string line = mtext.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.starts_with("#version")))
      continue;
    size_t sp = line.find(' ');
    DLLM_CHECK(
        sp != std::string::npos && line.find(' ', sp + 1) == std::string::npos,
        merges_path, ":", line_no, ": expected \"a b\", got \"", line, "\"");
    auto ia = ids.find(line.substr(0, sp)), ib = ids.find(line.substr(sp + 1));
    DLLM_CHECK(ia != ids.end() && ib != ids.end(), merges_path, ":", line_no,
               ": token of \"", line, "\" is not in ", vocab_path);
    merges.emplace_back(ia->second, ib->second);
  }
  std::vector<std::pair<std::string, int32_t>> specials;
  auto eot = ids.find("<|endoftext|>");
  if (eot != ids.end()) specials.emplace_back(eot->first, eot->second);
  return Tokenizer(
      BuildByteLevel(vocab_path, std::move(vocab), merges, "", specials));
}

namespace {

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool Base64Decode(std::string_view in, std::string* out) {
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    int v = Base64Value(c);
    if (v < 0) return false;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return true;
}

}  // namespace

Tokenizer Tokenizer::FromTiktoken(
    const std::string& path, const std::string& pattern,
    const std::vector<std::pair<std::string, int32_t>>& specials) {
  std::string text = ReadFileToString(path);
  // rank -> raw bytes
  std::vector<std::string> by_rank;
  std::vector<uint8_t> present;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    size_t sp = line.find(' ');
    DLLM_CHECK(sp != std::string_view::npos, path, ":", line_no,
               ": expected \"<base64> <rank>\"");
    std::string bytes;
    DLLM_CHECK(Base64Decode(line.substr(0, sp), &bytes) && !bytes.empty(), path,
               ":", line_no, ": bad base64 token");
    int64_t rank = 0;
    std::string_view num = line.substr(sp + 1);
    DLLM_CHECK(!num.empty() && num.size() < 10, path, ":", line_no,
               ": bad rank");
    for (char c : num) {
      DLLM_CHECK(c >= '0' && c <= '9', path, ":", line_no, ": bad rank");
      rank = rank * 10 + (c - '0');
    }
    DLLM_CHECK(rank < kMaxId, path, ":", line_no, ": rank ", rank,
               " too large");
    if (static_cast<size_t>(rank) >= by_rank.size()) {
      by_rank.resize(rank + 1);
      present.resize(rank + 1, 0);
    }
    DLLM_CHECK(!present[rank], path, ":", line_no, ": duplicate rank ", rank);
    by_rank[rank] = std::move(bytes);
    present[rank] = 1;
  }
  // Byte ids, then derive each token's merge: the BPE of its bytes with all
  // lower-ranked merges must end in exactly two parts.
  std::unordered_map<std::string, int32_t> by_bytes;
  for (size_t r = 0; r < by_rank.size(); ++r)
    if (present[r]) by_bytes.emplace(by_rank[r], static_cast<int32_t>(r));
  std::array<int32_t, 256> byte_id;
  for (int b = 0; b < 256; ++b) {
    auto it = by_bytes.find(std::string(1, static_cast<char>(b)));
    DLLM_CHECK(it != by_bytes.end(), path, ": byte ", b,
               " has no token (a byte-level vocabulary has all 256)");
    byte_id[b] = it->second;
  }
  PairTable table;
  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<int32_t> syms;
  for (size_t r = 0; r < by_rank.size(); ++r) {
    if (!present[r] || by_rank[r].size() < 2) continue;
    syms.clear();
    for (unsigned char c : by_rank[r]) syms.push_back(byte_id[c]);
    BpeMerge(table, &syms);
    if (syms.size() != 2) continue;
    table.Insert(syms[0], syms[1], static_cast<uint32_t>(merges.size()),
                 static_cast<int32_t>(r));
    merges.emplace_back(syms[0], syms[1]);
  }
  std::vector<std::pair<std::string, int32_t>> vocab;
  vocab.reserve(by_bytes.size());
  for (size_t r = 0; r < by_rank.size(); ++r)
    if (present[r])
      vocab.emplace_back(utf8::BytesToByteLevel(by_rank[r]),
                         static_cast<int32_t>(r));
  return Tokenizer(
      BuildByteLevel(path, std::move(vocab), merges, pattern, specials));
}

Tokenizer Tokenizer::FromFile(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    fs::path dir(path);
    if (fs::exists(dir / "tokenizer.json"))
      return FromFile((dir / "tokenizer.json").string());
    if (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt"))
      return FromVocabMerges((dir / "vocab.json").string(),
                             (dir / "merges.txt").string());
    Fail(path,
         ": no tokenizer.json, nor vocab.json + merges.txt in this folder");
  }
  std::string name = fs::path(path).filename().string();
  if (name.ends_with(".tiktoken")) {
    std::string lower = name;
    for (char& c : lower)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.find("gpt2") != std::string::npos ||
        lower.find("r50k") != std::string::npos ||
        lower.find("p50k") != std::string::npos)
      return FromTiktoken(path, kGpt2Pattern, {{"<|endoftext|>", 50256}});
    if (lower.find("qwen") != std::string::npos)
      return FromTiktoken(path, kQwen2Pattern,
                          {{"<|endoftext|>", 151643},
                           {"<|im_start|>", 151644},
                           {"<|im_end|>", 151645}});
    if (lower.find("o200k") != std::string::npos)
      return FromTiktoken(
          path, kO200kPattern,
          {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}});
    return FromTiktoken(path, kCl100kPattern,
                        {{"<|endoftext|>", 100257},
                         {"<|fim_prefix|>", 100258},
                         {"<|fim_middle|>", 100259},
                         {"<|fim_suffix|>", 100260},
                         {"<|endofprompt|>", 100276}});
  }
  std::string text = ReadFileToString(path);
  return FromJson(text, path);
}

// ---------------------------------------------------------------------------
// UTF-8 repair and streaming

std::string SanitizeUtf8(std::string_view s) {
  if (utf8::IsValid(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  size_t i = 0;
  while (i < s.size()) {
    uint32_t cp;
    int bad = 1;
    int len = utf8::Decode(s, i, &cp, &bad);
    if (len) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      i += bad;
    }
  }
  return out;
}

size_t Utf8CompletePrefix(std::string_view s) {
  return s.size() - utf8::IncompleteTail(s);
}

StreamDecoder::StreamDecoder(const Tokenizer& tok, bool skip_special)
    : tok_(&tok), skip_special_(skip_special) {}

std::string StreamDecoder::Add(int32_t id) {
  return Add(std::span<const int32_t>(&id, 1));
}

std::string StreamDecoder::Add(std::span<const int32_t> ids) {
  for (int32_t id : ids) {
    if (skip_special_ && tok_->IsSpecial(id)) continue;
    pending_ += tok_->TokenBytes(id);
  }
  size_t keep = utf8::IncompleteTail(pending_);
  std::string out = SanitizeUtf8(
      std::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string StreamDecoder::Finish() {
  std::string out = SanitizeUtf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace dllm
