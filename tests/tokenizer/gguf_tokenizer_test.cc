// Tokenizers in GGUF files: written as llama.cpp's tokenizer.ggml.* arrays
// and as tokenizer.huggingface.json, read back from either, encoding as the
// tokenizer.json they came from; chat templates from tokenizer.chat_template;
// clear errors for what the arrays cannot express.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/mmap_file.h"
#include "dllm/chat_template.h"
#include "dllm/error.h"
#include "dllm/tokenizer.h"
#include "formats/gguf.h"
#include "test_util.h"
#include "tokenizer/gguf_vocab.h"

namespace dllm {
namespace {

const std::string kShakespeare =
    std::string(DLLM_SOURCE_DIR) + "/models/shakespeare-ar/tokenizer.json";

class TempFile {
 public:
  explicit TempFile(const std::string& name)
      : path_("/tmp/dllm_gguf_tok_" + std::to_string(getpid()) + "_" + name) {}
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

GgufMetadata Without(GgufMetadata m, const std::string& key) {
  for (size_t i = 0; i < m.size(); ++i)
    if (m[i].first == key) m.erase(m.begin() + long(i));
  return m;
}

void Set(GgufMetadata& m, const std::string& k, GgufValue v) {
  for (auto& kv : m)
    if (kv.first == k) {
      kv.second = std::move(v);
      return;
    }
  m.emplace_back(k, std::move(v));
}

// Texts that exercise the pre-tokenizer: contractions, digits, whitespace
// runs, newlines, punctuation, non-ASCII, special tokens written in text.
std::vector<std::string> Texts() {
  std::vector<std::string> t = {
      "",
      " ",
      "ROMEO:\nBut soft, what light through yonder window breaks?",
      "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it",
      "3 33 333 3333 33333 3.3 3..3",
      "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n",
      "caf\xC3\xA9 na\xC3\xAFve \xF0\x9F\xA6\x99\xF0\x9F\xA6\x99 \xE6\x88\x91",
      "<|endoftext|>FIRST CITIZEN:<|mask|> x<|endoftext|>",
      "   leading and trailing   ",
  };
  // llama.cpp's tokenizer test inputs, when the shared data is present.
  const std::string inp = std::string(DLLM_SOURCE_DIR) +
                          "/../shared/data/tokenizers/test-vectors/"
                          "ggml-vocab-gpt-2.gguf.inp";
  if (std::ifstream f{inp}) {
    std::stringstream ss;
    ss << f.rdbuf();
    std::string all = ss.str(), sep = "\n__ggml_vocab_test__\n";
    for (size_t p = 0;;) {
      size_t q = all.find(sep, p);
      t.push_back(all.substr(p, q == std::string::npos ? q : q - p));
      if (q == std::string::npos) break;
      p = q + sep.size();
    }
  }
  return t;
}

GgufMetadata ShakespeareMetadata(int vocab, std::vector<std::string>* warn) {
  GgufMetadata m;
  m.emplace_back("general.architecture", GgufValue::String("llada"));
  AddTokenizerMetadata(ReadFileToString(kShakespeare), kShakespeare, vocab, &m,
                       warn);
  return m;
}

TEST(GgufTokenizer, BothFormsEncodeAsTheTokenizerJson) {
  std::vector<std::string> warn;
  GgufMetadata m = ShakespeareMetadata(2048 + 5, &warn);
  EXPECT_TRUE(warn.empty()) << warn[0];
  TempFile full("full.gguf"), arrays("arrays.gguf");
  WriteGguf(full.path(), m, {});
  WriteGguf(arrays.path(), Without(m, "tokenizer.huggingface.json"), {});
  {
    GgufFile f(arrays.path());
    EXPECT_EQ(f.GetString("tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(f.GetString("tokenizer.ggml.pre"), "llama-bpe");
    const std::vector<std::string>& tokens =
        f.GetStrings("tokenizer.ggml.tokens");
    ASSERT_EQ(tokens.size(), 2053u);  // padded to the model's vocabulary
    EXPECT_EQ(tokens[0], "<|endoftext|>");
    EXPECT_EQ(tokens[2050], "[PAD2050]");
    const GgufValue* types = f.Find("tokenizer.ggml.token_type");
    ASSERT_NE(types, nullptr);
    EXPECT_EQ(types->ints[0], uint64_t(kGgmlTokenControl));
    EXPECT_EQ(types->ints[300], uint64_t(kGgmlTokenNormal));
    EXPECT_EQ(types->ints[2050], uint64_t(kGgmlTokenUnused));
    EXPECT_EQ(f.GetStrings("tokenizer.ggml.merges").size(), 1790u);
    EXPECT_EQ(f.GetStrings("tokenizer.ggml.merges")[0], "\xC4\xA0 t");
  }
  const Tokenizer ref = Tokenizer::FromFile(kShakespeare);
  const Tokenizer a = Tokenizer::FromFile(full.path());
  const Tokenizer b = Tokenizer::FromGguf(arrays.path());
  EXPECT_EQ(a.vocab_size(), ref.vocab_size());
  EXPECT_EQ(b.vocab_size(), ref.vocab_size());
  for (const std::string& t : Texts())
    for (bool special : {false, true}) {
      const std::vector<int32_t> want = ref.Encode(t, special);
      EXPECT_EQ(a.Encode(t, special), want) << t;
      EXPECT_EQ(b.Encode(t, special), want) << t;
      EXPECT_EQ(b.Decode(want), ref.Decode(want));
      EXPECT_EQ(b.Decode(want, true), ref.Decode(want, true));
    }
  EXPECT_TRUE(b.IsSpecial(0));
  EXPECT_EQ(b.TokenId("<|mask|>"), 1);
}

// Every pre-tokenizer name maps to its family's regexes; the arrays built
// with each split like the tokenizer.json that names the same regexes.
TEST(GgufTokenizer, PreTokenizerNames) {
  std::vector<std::string> p;
  ASSERT_TRUE(GgufPreTokenizerPatterns("llama-bpe", &p));
  EXPECT_EQ(p, std::vector<std::string>{Tokenizer::kCl100kPattern});
  ASSERT_TRUE(GgufPreTokenizerPatterns("qwen2", &p));
  EXPECT_EQ(p, std::vector<std::string>{Tokenizer::kQwen2Pattern});
  ASSERT_TRUE(GgufPreTokenizerPatterns("gpt-2", &p));
  EXPECT_EQ(p, std::vector<std::string>{Tokenizer::kGpt2Pattern});
  ASSERT_TRUE(GgufPreTokenizerPatterns("gpt-4o", &p));
  ASSERT_TRUE(GgufPreTokenizerPatterns("starcoder", &p));
  EXPECT_EQ(p.size(), 2u);
  ASSERT_TRUE(GgufPreTokenizerPatterns("default", &p));
  EXPECT_EQ(p.size(), 4u);
  EXPECT_FALSE(GgufPreTokenizerPatterns("tekken", &p));

  // The Qwen2 regex: a tokenizer.json with it is written as "qwen2" and
  // read back from the arrays with it.
  std::string j = ReadFileToString(kShakespeare);
  const std::string llama3 = nlohmann::json(Tokenizer::kCl100kPattern).dump();
  const std::string qwen2 = nlohmann::json(Tokenizer::kQwen2Pattern).dump();
  ASSERT_NE(j.find(llama3), std::string::npos);
  j.replace(j.find(llama3), llama3.size(), qwen2);
  GgufMetadata m;
  std::vector<std::string> warn;
  AddTokenizerMetadata(j, "q.json", 2048, &m, &warn);
  EXPECT_TRUE(warn.empty());
  TempFile f("q.gguf");
  WriteGguf(f.path(), Without(m, "tokenizer.huggingface.json"), {});
  EXPECT_EQ(GgufFile(f.path()).GetString("tokenizer.ggml.pre"), "qwen2");
  const Tokenizer ref = Tokenizer::FromJson(j, "q.json");
  const Tokenizer got = Tokenizer::FromFile(f.path());
  for (const std::string& t : Texts())
    EXPECT_EQ(got.Encode(t, false), ref.Encode(t, false)) << t;
}

TEST(GgufTokenizer, WhatTheArraysCannotHoldIsWarned) {
  std::string j = ReadFileToString(kShakespeare);
  // A vocabulary larger than the model's: only the JSON form.
  GgufMetadata m;
  std::vector<std::string> warn;
  AddTokenizerMetadata(j, "t.json", 1000, &m, &warn);
  ASSERT_EQ(warn.size(), 1u);
  EXPECT_NE(warn[0].find("token id 2047 lies beyond the model's vocabulary "
                         "of 1000"),
            std::string::npos)
      << warn[0];
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].first, "tokenizer.huggingface.json");
  // An unknown regex: written as "default", with a warning.
  const std::string llama3 = nlohmann::json(Tokenizer::kCl100kPattern).dump();
  j.replace(j.find(llama3), llama3.size(), "\"\\\\p{L}+|\\\\s+\"");
  m.clear(), warn.clear();
  AddTokenizerMetadata(j, "t.json", 2048, &m, &warn);
  ASSERT_EQ(warn.size(), 1u);
  EXPECT_NE(warn[0].find("'default'"), std::string::npos);
  bool found = false;
  for (const auto& kv : m)
    if (kv.first == "tokenizer.ggml.pre") found = kv.second.str == "default";
  EXPECT_TRUE(found);
}

TEST(GgufTokenizer, MalformedArraysGetClearErrors) {
  std::vector<std::string> warn;
  const GgufMetadata good =
      Without(ShakespeareMetadata(2048, &warn), "tokenizer.huggingface.json");
  TempFile f("bad.gguf");
  auto load = [&](const GgufMetadata& m) {
    WriteGguf(f.path(), m, {});
    return Tokenizer::FromGguf(f.path());
  };
  EXPECT_NO_THROW(load(good));
  GgufMetadata m = good;
  Set(m, "tokenizer.ggml.model", GgufValue::String("llama"));
  EXPECT_DLLM_ERROR(load(m),
                    "tokenizer.ggml.model 'llama' is not supported: only "
                    "byte-level BPE ('gpt2') can be read from the "
                    "tokenizer.ggml.* arrays (this is a SentencePiece "
                    "vocabulary)");
  m = good;
  Set(m, "tokenizer.ggml.pre", GgufValue::String("tekken"));
  EXPECT_DLLM_ERROR(load(m),
                    "tokenizer.ggml.pre 'tekken' is not a "
                    "pre-tokenizer we know (known: llama-bpe");
  m = good;
  Set(m, "tokenizer.ggml.token_type",
      GgufValue::IntArray(GgufType::kI32, {1, 1, 1}));
  EXPECT_DLLM_ERROR(load(m),
                    "tokenizer.ggml.token_type must be an integer "
                    "array of 2048 entries");
  m = good;
  Set(m, "tokenizer.ggml.merges", GgufValue::StringArray({"\xC4\xA0t"}));
  EXPECT_DLLM_ERROR(load(m), "tokenizer.ggml.merges[0]: expected \"a b\"");
  m = good;
  Set(m, "tokenizer.ggml.merges", GgufValue::StringArray({"q z"}));
  EXPECT_DLLM_ERROR(load(m), "bad.gguf");
  m = good;
  {
    std::vector<std::string> toks = GgufFile([&] {
                                      WriteGguf(f.path(), good, {});
                                      return f.path();
                                    }())
                                        .GetStrings("tokenizer.ggml.tokens");
    toks[500] = toks[400];
    Set(m, "tokenizer.ggml.tokens", GgufValue::StringArray(toks));
  }
  EXPECT_DLLM_ERROR(load(m), "is token 400 and token 500");
  m = good;
  Set(m, "tokenizer.ggml.tokens", GgufValue::U32(3));
  EXPECT_DLLM_ERROR(load(m),
                    "'tokenizer.ggml.tokens' must be an array of "
                    "strings, got u32 3");
  m = Without(good, "tokenizer.ggml.tokens");
  EXPECT_DLLM_ERROR(load(m),
                    "no tokenizer (neither "
                    "tokenizer.huggingface.json nor "
                    "tokenizer.ggml.tokens)");
  m = good;
  Set(m, "tokenizer.huggingface.json", GgufValue::String("{oops"));
  EXPECT_DLLM_ERROR(load(m),
                    "bad.gguf: tokenizer.huggingface.json: not valid "
                    "JSON");
}

TEST(GgufTokenizer, ChatTemplateFromTheFile) {
  std::vector<std::string> warn;
  GgufMetadata m = ShakespeareMetadata(2048, &warn);
  m.emplace_back("tokenizer.ggml.eos_token_id", GgufValue::U32(0));
  m.emplace_back("tokenizer.chat_template",
                 GgufValue::String("{% for m in messages %}{{ m['content'] }}"
                                   "{{ eos_token }}{% endfor %}"));
  TempFile f("chat.gguf");
  WriteGguf(f.path(), m, {});
  ChatTemplate t = ChatTemplate::FromTokenizerConfig(f.path());
  EXPECT_EQ(t.Apply(R"([{"role":"user","content":"hi"}])", false),
            "hi<|endoftext|>");
  WriteGguf(f.path(), Without(m, "tokenizer.chat_template"), {});
  EXPECT_DLLM_ERROR(ChatTemplate::FromTokenizerConfig(f.path()),
                    "no tokenizer.chat_template in this GGUF file");
  Set(m, "tokenizer.chat_template", GgufValue::String("{% if %}"));
  WriteGguf(f.path(), m, {});
  EXPECT_DLLM_ERROR(ChatTemplate::FromTokenizerConfig(f.path()),
                    "tokenizer.chat_template");
}

}  // namespace
}  // namespace dllm
