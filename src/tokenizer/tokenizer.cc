#include "dllm/tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "base/mmap_file.h"
#include "dllm/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/regex.h"
#include "tokenizer/tokenizer_impl.h"
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

namespace tok {
namespace {

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

}  // namespace

void AddedMatcher::Split(std::string_view s, uint32_t base,
                         std::vector<Span>* out) const {
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

}  // namespace tok

using tok::NormKind;
using tok::PreStep;
using tok::Span;
using tok::SplitBehavior;

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
