// The loaders: tokenizer.json (model, normalizer, pre-tokenizer,
// post-processor, decoder, added tokens), GPT-2 vocab.json + merges.txt and
// tiktoken rank files, all into one TokenizerImpl. They validate every field
// a stranger's file could get wrong, naming the file and field, because the
// encoder trusts what they build.
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

#include "base/mmap_file.h"
#include "dllm/error.h"
#include "dllm/tokenizer.h"
#include "formats/gguf.h"
#include "formats/tensor_store.h"
#include "tokenizer/bpe.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/regex.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace dllm {

using json = nlohmann::json;
using tok::AddedToken;
using tok::kMaxId;
using tok::NormKind;
using tok::NormStep;
using tok::PreStep;
using tok::SetToken;
using tok::SplitBehavior;

namespace tok {

void SetToken(TokenizerImpl* t, int32_t id, const std::string& tok,
              const std::string& where) {
  DLLM_CHECK(id >= 0 && id < kMaxId, where, ": token id ", id,
             " out of range [0, ", kMaxId, ") for ", json(tok).dump());
  if (static_cast<size_t>(id) >= t->id_to_token.size()) {
    t->id_to_token.resize(id + 1);
  }
  t->id_to_token[id] = tok;
}

}  // namespace tok

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

Tokenizer Tokenizer::FromGguf(const std::string& path) {
  GgufFile f(path);
  const bool exact = f.Find("tokenizer.huggingface.json") != nullptr;
  return FromJson(
      GgufTokenizerJson(f),
      path + (exact ? ": tokenizer.huggingface.json" : ": tokenizer.ggml.*"));
}

Tokenizer Tokenizer::FromFile(const std::string& path) {
  namespace fs = std::filesystem;
  if (IsGgufPath(path)) return FromGguf(path);
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

}  // namespace dllm
