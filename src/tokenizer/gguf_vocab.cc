#include "tokenizer/gguf_vocab.h"

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "dllm/error.h"
#include "dllm/tokenizer.h"

namespace dllm {

using json = nlohmann::json;

namespace {

// llama.cpp's "default" pre-tokenizer: four regexes, each splitting the
// pieces of the one before.
const char* const kDefaultPatterns[] = {
    R"([\p{P}\$\+<=>\^~\|]+)",
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))",
    R"(\p{N}+)",
    R"([0-9][0-9][0-9])",
};

struct PreFamily {
  std::vector<std::string> names;  // the first is the one we write
  std::vector<std::string> patterns;
};

const std::vector<PreFamily>& Families() {
  static const std::vector<PreFamily> f = {
      {{"llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral",
        "midm-2.0", "lfm2"},
       {Tokenizer::kCl100kPattern}},
      {{"qwen2", "deepseek-r1-qwen", "stablelm2"}, {Tokenizer::kQwen2Pattern}},
      {{"gpt-2", "gpt2", "phi-2", "mpt", "olmo"}, {Tokenizer::kGpt2Pattern}},
      {{"gpt-4o", "llama4"}, {Tokenizer::kO200kPattern}},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone",
        "minerva-7b"},
       {R"(\p{N})", Tokenizer::kGpt2Pattern}},
      {{"default"},
       {kDefaultPatterns[0], kDefaultPatterns[1], kDefaultPatterns[2],
        kDefaultPatterns[3]}},
  };
  return f;
}

// The regexes a tokenizer.json pre_tokenizer splits with, in order; false
// when it does something else (a Metaspace, Whitespace, ... pre-tokenizer).
bool CollectPatterns(const json& j, std::vector<std::string>* out,
                     bool* byte_level) {
  if (j.is_null()) return true;
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    return false;
  const std::string type = j["type"].get<std::string>();
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array())
      return false;
    for (const json& p : j["pretokenizers"])
      if (!CollectPatterns(p, out, byte_level)) return false;
    return true;
  }
  if (type == "ByteLevel") {
    *byte_level = true;
    if (j.value("add_prefix_space", false)) return false;
    if (!j.contains("use_regex") || j["use_regex"].is_null() ||
        (j["use_regex"].is_boolean() && j["use_regex"].get<bool>()))
      out->push_back(Tokenizer::kGpt2Pattern);
    return true;
  }
  if (type == "Split") {
    if (!j.contains("pattern") || !j["pattern"].is_object() ||
        !j["pattern"].contains("Regex") || !j["pattern"]["Regex"].is_string())
      return false;
    if (j.value("behavior", "") != "Isolated" || j.value("invert", false))
      return false;
    out->push_back(j["pattern"]["Regex"].get<std::string>());
    return true;
  }
  if (type == "Digits") {
    out->push_back(j.value("individual_digits", false) ? R"(\p{N})"
                                                       : R"(\p{N}+)");
    return true;
  }
  return false;
}

std::string TokenAt(const std::vector<std::string>& tokens, int64_t id) {
  return id >= 0 && size_t(id) < tokens.size() ? tokens[size_t(id)] : "";
}

}  // namespace

bool GgufPreTokenizerPatterns(const std::string& pre,
                              std::vector<std::string>* patterns) {
  for (const PreFamily& f : Families())
    for (const std::string& n : f.names)
      if (n == pre) {
        *patterns = f.patterns;
        return true;
      }
  return false;
}

std::string GgufPreTokenizerNames() {
  std::string out;
  for (const PreFamily& f : Families())
    for (const std::string& n : f.names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

bool GgufHasTokenizer(const GgufFile& f) {
  return f.Find("tokenizer.huggingface.json") ||
         f.Find("tokenizer.ggml.tokens");
}

std::string GgufTokenizerJson(const GgufFile& f) {
  const std::string& path = f.path();
  if (f.Find("tokenizer.huggingface.json"))
    return f.GetString("tokenizer.huggingface.json");
  DLLM_CHECK(f.Find("tokenizer.ggml.tokens") != nullptr, path,
             ": no tokenizer (neither tokenizer.huggingface.json nor "
             "tokenizer.ggml.tokens)");
  const std::string model = f.GetStringOr("tokenizer.ggml.model", "gpt2");
  DLLM_CHECK(model == "gpt2", path, ": tokenizer.ggml.model '", model,
             "' is not supported: only byte-level BPE ('gpt2') can be read "
             "from the tokenizer.ggml.* arrays",
             model == "llama" ? " (this is a SentencePiece vocabulary)" : "",
             ", and the file has no tokenizer.huggingface.json");
  const std::string pre = f.GetStringOr("tokenizer.ggml.pre", "default");
  std::vector<std::string> patterns;
  DLLM_CHECK(
      GgufPreTokenizerPatterns(pre, &patterns), path, ": tokenizer.ggml.pre '",
      pre, "' is not a pre-tokenizer we know (known: ", GgufPreTokenizerNames(),
      ")");
  const std::vector<std::string>& tokens =
      f.GetStrings("tokenizer.ggml.tokens");
  DLLM_CHECK(!tokens.empty() && tokens.size() <= (size_t(1) << 24), path,
             ": tokenizer.ggml.tokens has ", tokens.size(),
             " tokens (1 to 2^24 expected)");
  std::vector<int64_t> types(tokens.size(), kGgmlTokenNormal);
  if (const GgufValue* t = f.Find("tokenizer.ggml.token_type")) {
    DLLM_CHECK(t->is_array() && t->size() == tokens.size() &&
                   !t->ints.empty() && t->elem != GgufType::kBool,
               path, ": tokenizer.ggml.token_type must be an integer array of ",
               tokens.size(), " entries (one per token), got ", t->Describe());
    for (size_t i = 0; i < tokens.size(); ++i) {
      GgufValue e;
      e.type = t->elem;
      e.bits = t->ints[i];
      int64_t v = 0;
      DLLM_CHECK(e.AsInt64(&v) && v >= 0 && v <= kGgmlTokenByte, path,
                 ": tokenizer.ggml.token_type[", i, "] = ", e.Describe(),
                 " is not a token type (0-6)");
      types[i] = v;
    }
  }
  json vocab = json::object();
  json added = json::array();
  std::unordered_map<std::string, size_t> first_id;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int64_t type = types[i];
    if (type == kGgmlTokenUnused) continue;
    const std::string& tok = tokens[i];
    DLLM_CHECK(!tok.empty(), path, ": tokenizer.ggml.tokens[", i, "] is empty");
    auto [it, fresh] = first_id.emplace(tok, i);
    DLLM_CHECK(fresh, path, ": tokenizer.ggml.tokens: ",
               json(tok).dump(-1, ' ', false, json::error_handler_t::replace),
               " is token ", it->second, " and token ", i);
    if (type == kGgmlTokenControl || type == kGgmlTokenUserDefined) {
      const bool special = type == kGgmlTokenControl;
      added.push_back({{"id", i},
                       {"content", tok},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", !special},
                       {"special", special}});
    } else {
      vocab[tok] = i;
    }
  }
  json merges = json::array();
  if (f.Find("tokenizer.ggml.merges")) {
    const std::vector<std::string>& list =
        f.GetStrings("tokenizer.ggml.merges");
    for (size_t r = 0; r < list.size(); ++r) {
      const std::string& s = list[r];
      const size_t sp = s.find(' ');
      DLLM_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < s.size() &&
                     s.find(' ', sp + 1) == std::string::npos,
                 path, ": tokenizer.ggml.merges[", r,
                 "]: expected \"a b\" (two tokens, one space), got ",
                 json(s).dump(-1, ' ', false, json::error_handler_t::replace));
      merges.push_back(s);
    }
  }
  json pretok = json::array();
  for (const std::string& p : patterns)
    pretok.push_back({{"type", "Split"},
                      {"pattern", {{"Regex", p}}},
                      {"behavior", "Isolated"},
                      {"invert", false}});
  pretok.push_back({{"type", "ByteLevel"},
                    {"add_prefix_space", false},
                    {"trim_offsets", false},
                    {"use_regex", false}});
  json root = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", pretok}}},
      {"post_processor", nullptr},
      {"decoder",
       {{"type", "ByteLevel"},
        {"add_prefix_space", false},
        {"trim_offsets", false},
        {"use_regex", false}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", merges}}}};
  // BOS / EOS added around every encoded text, as llama.cpp's
  // add_bos_token / add_eos_token say.
  const int64_t n = int64_t(tokens.size());
  const bool add_bos = f.GetBoolOr("tokenizer.ggml.add_bos_token", false);
  const bool add_eos = f.GetBoolOr("tokenizer.ggml.add_eos_token", false);
  const int64_t bos = f.GetIntOr("tokenizer.ggml.bos_token_id", -1, 0, n - 1);
  const int64_t eos = f.GetIntOr("tokenizer.ggml.eos_token_id", -1, 0, n - 1);
  if ((add_bos && bos >= 0) || (add_eos && eos >= 0)) {
    json single = json::array(), specials = json::object();
    auto special = [&](int64_t id) {
      const std::string t = TokenAt(tokens, id);
      single.push_back({{"SpecialToken", {{"id", t}, {"type_id", 0}}}});
      specials[t] = {{"id", t}, {"ids", {id}}, {"tokens", {t}}};
    };
    if (add_bos && bos >= 0) special(bos);
    single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
    if (add_eos && eos >= 0) special(eos);
    root["post_processor"] = {{"type", "TemplateProcessing"},
                              {"single", single},
                              {"pair", single},
                              {"special_tokens", specials}};
  }
  return root.dump(-1, ' ', false, json::error_handler_t::replace);
}

void AddTokenizerMetadata(const std::string& tokenizer_json,
                          const std::string& source, int vocab_size,
                          GgufMetadata* m, std::vector<std::string>* warnings) {
  auto has = [&](const std::string& k) {
    for (const auto& kv : *m)
      if (kv.first == k) return true;
    return false;
  };
  json root;
  try {
    root = json::parse(tokenizer_json);
  } catch (const json::exception& e) {
    Fail(source, ": not valid JSON: ", e.what());
  }
  DLLM_CHECK(
      root.is_object() && root.contains("model") && root["model"].is_object(),
      source, ": expected a tokenizer.json object with a \"model\"");
  const json& model = root["model"];
  std::vector<std::string> patterns;
  bool byte_level = false;
  const bool bpe = model.value("type", "BPE") == "BPE";
  const bool splits = CollectPatterns(
      root.contains("pre_tokenizer") ? root["pre_tokenizer"] : json(),
      &patterns, &byte_level);
  // The whole tokenizer, exact, for readers that know the key (dllm).
  auto keep_json_only = [&](const std::string& why) {
    warnings->push_back(StrCat(source, ": ", why,
                               ": only tokenizer.huggingface.json is written, "
                               "so llama.cpp will not find a vocabulary"));
    m->emplace_back("tokenizer.huggingface.json",
                    GgufValue::String(tokenizer_json));
  };
  if (!bpe || !byte_level || !splits || !model.contains("vocab") ||
      !model["vocab"].is_object())
    return keep_json_only(
        "not a byte-level BPE tokenizer llama.cpp's 'gpt2' vocabulary can "
        "express");

  // Token strings by id: the model vocabulary, then the added tokens.
  std::vector<std::string> tokens(static_cast<size_t>(vocab_size));
  std::vector<int64_t> types(static_cast<size_t>(vocab_size), kGgmlTokenUnused);
  int64_t max_id = -1;
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    if (!it.value().is_number_integer()) continue;
    const int64_t id = it.value().get<int64_t>();
    max_id = std::max(max_id, id);
    if (id < 0 || id >= vocab_size) continue;
    tokens[size_t(id)] = it.key();
    types[size_t(id)] = kGgmlTokenNormal;
  }
  if (root.contains("added_tokens") && root["added_tokens"].is_array())
    for (const json& a : root["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() ||
          !a.contains("content") || !a["content"].is_string())
        continue;
      const int64_t id = a["id"].get<int64_t>();
      max_id = std::max(max_id, id);
      if (id < 0 || id >= vocab_size) continue;
      tokens[size_t(id)] = a["content"].get<std::string>();
      types[size_t(id)] =
          a.value("special", false) ? kGgmlTokenControl : kGgmlTokenUserDefined;
    }
  if (max_id >= vocab_size)
    return keep_json_only(StrCat("token id ", max_id,
                                 " lies beyond the model's vocabulary of ",
                                 vocab_size));
  std::string pre;
  for (const PreFamily& f : Families())
    if (f.patterns == patterns) {
      pre = f.names[0];
      break;
    }
  if (pre.empty()) {
    warnings->push_back(StrCat(
        source,
        ": its pre-tokenizer is none llama.cpp names; tokenizer.ggml.pre is "
        "'default', so llama.cpp will split text differently (dllm reads "
        "tokenizer.huggingface.json and is exact)"));
    pre = "default";
  }
  std::vector<uint64_t> type_bits;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (types[i] == kGgmlTokenUnused) tokens[i] = StrCat("[PAD", i, "]");
    type_bits.push_back(uint64_t(types[i]));
  }
  std::vector<std::string> merges;
  if (model.contains("merges") && model["merges"].is_array())
    for (const json& mg : model["merges"]) {
      if (mg.is_string()) {
        merges.push_back(mg.get<std::string>());
      } else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() &&
                 mg[1].is_string()) {
        // As gguf-py writes pairs: a space inside a part becomes U+0120.
        std::string parts[2];
        for (int p = 0; p < 2; ++p)
          for (char ch : mg[p].get<std::string>()) {
            if (ch == ' ')
              parts[p] += "\xC4\xA0";
            else
              parts[p] += ch;
          }
        merges.push_back(parts[0] + " " + parts[1]);
      }
    }
  // add_bos_token: the post-processor puts a special token first.
  bool add_bos = false, add_eos = false;
  int64_t bos = -1;
  std::unordered_map<std::string, int64_t> by_token;
  for (size_t i = 0; i < tokens.size(); ++i)
    if (types[i] != kGgmlTokenUnused) by_token.emplace(tokens[i], int64_t(i));
  std::function<void(const json&)> post = [&](const json& p) {
    if (!p.is_object()) return;
    const std::string type = p.value("type", "");
    if (type == "Sequence" && p.contains("processors") &&
        p["processors"].is_array()) {
      for (const json& q : p["processors"]) post(q);
    } else if (type == "TemplateProcessing" && p.contains("single") &&
               p["single"].is_array()) {
      bool seq = false;
      for (const json& item : p["single"]) {
        if (item.is_object() && item.contains("Sequence")) {
          seq = true;
        } else if (item.is_object() && item.contains("SpecialToken") &&
                   item["SpecialToken"].is_object()) {
          (seq ? add_eos : add_bos) = true;
          auto it = by_token.find(item["SpecialToken"].value("id", ""));
          if (!seq && it != by_token.end() && bos < 0) bos = it->second;
        }
      }
    }
  };
  if (root.contains("post_processor")) post(root["post_processor"]);

  m->emplace_back("tokenizer.ggml.model", GgufValue::String("gpt2"));
  m->emplace_back("tokenizer.ggml.pre", GgufValue::String(pre));
  m->emplace_back("tokenizer.ggml.tokens",
                  GgufValue::StringArray(std::move(tokens)));
  m->emplace_back("tokenizer.ggml.token_type",
                  GgufValue::IntArray(GgufType::kI32, std::move(type_bits)));
  m->emplace_back("tokenizer.ggml.merges",
                  GgufValue::StringArray(std::move(merges)));
  if (bos >= 0 && !has("tokenizer.ggml.bos_token_id"))
    m->emplace_back("tokenizer.ggml.bos_token_id",
                    GgufValue::U32(uint32_t(bos)));
  m->emplace_back("tokenizer.ggml.add_bos_token", GgufValue::Bool(add_bos));
  m->emplace_back("tokenizer.ggml.add_eos_token", GgufValue::Bool(add_eos));
  m->emplace_back("tokenizer.huggingface.json",
                  GgufValue::String(tokenizer_json));
}

}  // namespace dllm
