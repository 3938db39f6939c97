// Less common tokenizer.json features checked against the Hugging Face
// library on a synthetic tokenizer (added-token lstrip/rstrip/single_word/
// normalized, NFKC/Lowercase/Replace normalizers, Split behaviours, ByteLevel
// add_prefix_space, TemplateProcessing), plus streaming, UTF-8 repair and
// loader errors that need no reference.
#include <gtest/gtest.h>

#include <random>
#include <tuple>

#include "base/mmap_file.h"
#include "dllm/bpe_train.h"
#include "dllm/error.h"
#include "dllm/tokenizer.h"
#include "hf_reference.h"
#include "tokenizer/utf8.h"

namespace dllm {
namespace {

using nlohmann::json;

std::string TrainedJson() {
  BpeTrainOptions o;
  o.vocab_size = 700;
  o.special_tokens = {"<s>", "</s>"};
  std::vector<std::string> corpus;
  for (const char* f :
       {"src/tokenizer/tokenizer.cc", "src/tokenizer/chat_template.cc"})
    corpus.push_back(ReadFileToString(std::string(DLLM_SOURCE_DIR "/") + f));
  return TrainBpe(corpus, o);
}

// Variants of the trained tokenizer exercising one feature group each.
std::vector<std::pair<std::string, json>> Variants() {
  json base = json::parse(TrainedJson());
  std::vector<std::pair<std::string, json>> out;
  auto add_tok = [](json& j, int id, const char* content, bool special,
                    bool lstrip, bool rstrip, bool normalized,
                    bool single_word) {
    j["added_tokens"].push_back({{"id", id},
                                 {"content", content},
                                 {"special", special},
                                 {"lstrip", lstrip},
                                 {"rstrip", rstrip},
                                 {"normalized", normalized},
                                 {"single_word", single_word}});
  };
  {
    json j = base;
    int n = static_cast<int>(j["model"]["vocab"].size());
    add_tok(j, n, "<|mask|>", true, true, true, false, false);
    add_tok(j, n + 1, "<|eot_id|>", true, false, true, false, false);
    add_tok(j, n + 2, "<|im_end|>", true, true, false, false, false);
    add_tok(j, n + 3, "self", false, false, false, true, true);
    add_tok(j, n + 4, "Word", false, false, false, true, false);
    j["normalizer"] = {
        {"type", "Sequence"},
        {"normalizers", json::array({{{"type", "NFKC"}},
                                     {{"type", "Replace"},
                                      {"pattern", {{"String", "\t"}}},
                                      {"content", "    "}}})}};
    j["post_processor"] = {
        {"type", "TemplateProcessing"},
        {"single",
         json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                      {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                      {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}})},
        {"pair", json::array({{{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
        {"special_tokens",
         {{"<s>", {{"id", "<s>"}, {"ids", {0}}, {"tokens", {"<s>"}}}},
          {"</s>", {{"id", "</s>"}, {"ids", {1}}, {"tokens", {"</s>"}}}}}}};
    out.emplace_back("added+normalizer+template", j);
  }
  for (const char* beh :
       {"Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"}) {
    for (bool invert : {false, true}) {
      json j = base;
      j["pre_tokenizer"] = {
          {"type", "Sequence"},
          {"pretokenizers",
           json::array({{{"type", "Split"},
                         {"pattern", {{"Regex", "\\s+|[0-9]"}}},
                         {"behavior", beh},
                         {"invert", invert}},
                        {{"type", "ByteLevel"},
                         {"add_prefix_space", false},
                         {"trim_offsets", false},
                         {"use_regex", false}}})}};
      out.emplace_back(
          std::string("split ") + beh + (invert ? " inverted" : ""), j);
    }
  }
  // {"String": ...} patterns are literals (PCRE2_LITERAL), once refused by
  // the regex compiler.
  for (auto [pattern, beh, invert] :
       std::vector<std::tuple<const char*, const char*, bool>>{
           {" ", "Isolated", false},
           {" ", "Removed", false},
           {" ", "MergedWithPrevious", false},
           {" ", "MergedWithNext", true},
           {" ", "Contiguous", false},
           {"-", "Isolated", false},
           {"-", "MergedWithNext", false},
           {"in", "Removed", false},
           {"in", "MergedWithPrevious", true},
           {"(.*)", "Isolated", false}}) {
    json j = base;
    j["pre_tokenizer"] = {
        {"type", "Sequence"},
        {"pretokenizers", json::array({{{"type", "Split"},
                                        {"pattern", {{"String", pattern}}},
                                        {"behavior", beh},
                                        {"invert", invert}},
                                       {{"type", "ByteLevel"},
                                        {"add_prefix_space", false},
                                        {"trim_offsets", false},
                                        {"use_regex", false}}})}};
    out.emplace_back(std::string("split string '") + pattern + "' " + beh +
                         (invert ? " inverted" : ""),
                     j);
  }
  {
    json j = base;
    j["pre_tokenizer"] = {{"type", "ByteLevel"},
                          {"add_prefix_space", true},
                          {"trim_offsets", false},
                          {"use_regex", true}};
    j["normalizer"] = {{"type", "Lowercase"}};
    out.emplace_back("gpt2 bytelevel prefix-space + lowercase", j);
  }
  {
    json j = base;
    j["pre_tokenizer"] = {
        {"type", "Sequence"},
        {"pretokenizers",
         json::array({{{"type", "Digits"}, {"individual_digits", true}},
                      {{"type", "ByteLevel"},
                       {"add_prefix_space", false},
                       {"trim_offsets", false},
                       {"use_regex", true}}})}};
    j["model"]["ignore_merges"] = true;
    out.emplace_back("digits + ignore_merges", j);
  }
  return out;
}

std::vector<std::string> FeatureTexts() {
  std::vector<std::string> t;
  for (const auto& x : testing::ParityTexts()) t.push_back(x.text);
  for (const char* s :
       {"a <|mask|>  b", "x<|mask|>y", "  <|mask|>", "<|mask|><|mask|>",
        "p <|eot_id|> \n q", " <|im_end|> z",
        "self selfish myself self. (self) _self", "Word Words wordWord",
        "ｆｕｌｌ ｗｉｄｔｈ ① ﬁ", "tab\there\t\tx",
        "ÀÉÎÕÜ İSTANBUL straße ΣΑΣ", "12345 67 8"})
    t.push_back(s);
  return t;
}

TEST(TokenizerFeatures, HfParity) {
  if (!testing::HaveNodePackage("tokenizers"))
    GTEST_SKIP() << "run scripts/tokenizer/setup.sh";
  std::vector<std::string> texts = FeatureTexts();
  for (auto& [name, j] : Variants()) {
    std::string dir = testing::MakeTempDir();
    std::string path = dir + "/tokenizer.json";
    std::string text = j.dump();
    WriteFileAtomic(path, text.data(), text.size());
    Tokenizer tok = Tokenizer::FromFile(path);
    json ref = testing::HfEncode(path, texts, true);
    int same = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
      auto want = ref["ids"][i].get<std::vector<int32_t>>();
      auto got = tok.Encode(texts[i], true);
      EXPECT_EQ(got, want) << name << ": "
                           << json(SanitizeUtf8(texts[i])).dump();
      same += got == want;
      EXPECT_EQ(tok.Decode(want, true),
                ref["decoded_skip"][i].get<std::string>())
          << name << " text " << i;
    }
    std::printf("[features parity] %s: %d/%zu identical\n", name.c_str(), same,
                texts.size());
    std::filesystem::remove_all(dir);
  }
}

TEST(Tokenizer, StreamDecoderNeverSplitsCharacters) {
  Tokenizer tok = Tokenizer::FromJson(TrainedJson(), "trained");
  std::string text = "naïve café 你好 🦙🦙 e\xCC\x81 done";
  std::vector<int32_t> ids = tok.Encode(text, false);
  StreamDecoder sd(tok);
  std::string all;
  for (int32_t id : ids) {
    std::string piece = sd.Add(id);
    EXPECT_EQ(SanitizeUtf8(piece), piece) << "emitted invalid UTF-8";
    all += piece;
  }
  all += sd.Finish();
  EXPECT_EQ(all, text);
  // A lone lead byte is held back, then flushed as U+FFFD.
  StreamDecoder sd2(tok);
  int32_t e2 = tok.TokenId(utf8::BytesToByteLevel("\xE2"));
  ASSERT_GE(e2, 0);
  EXPECT_EQ(sd2.Add(e2), "");
  EXPECT_EQ(sd2.pending(), 1u);
  EXPECT_EQ(sd2.Finish(), "\xEF\xBF\xBD");
  // skip_special drops specials.
  StreamDecoder sd3(tok, true);
  std::string s3 = sd3.Add(tok.Encode("<s>hi</s>", false));
  EXPECT_EQ(s3 + sd3.Finish(), "hi");
}

TEST(Tokenizer, Utf8Repair) {
  EXPECT_EQ(SanitizeUtf8("ok"), "ok");
  EXPECT_EQ(SanitizeUtf8("a\xFF"
                         "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(SanitizeUtf8("\xE2\x82"), "\xEF\xBF\xBD");  // one maximal subpart
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"),
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(Utf8CompletePrefix("ab\xE2\x82"), 2u);
  EXPECT_EQ(Utf8CompletePrefix("ab\xFF"), 3u);
  Tokenizer tok = Tokenizer::FromJson(TrainedJson(), "trained");
  EXPECT_EQ(tok.Decode(tok.Encode("x\xC3(", false)), "x\xEF\xBF\xBD(");
}

TEST(Tokenizer, LoaderErrorsNameTheField) {
  auto err = [](const std::string& text) -> std::string {
    try {
      Tokenizer::FromJson(text, "t.json");
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(err("{").find("t.json: not valid JSON"), std::string::npos);
  EXPECT_NE(err("[]").find("expected a JSON object"), std::string::npos);
  EXPECT_NE(err("{}").find("missing field \"model\""), std::string::npos);
  EXPECT_NE(err(R"({"model": {"type": "Unigram", "vocab": []}})")
                .find("\"Unigram\" is not supported"),
            std::string::npos);
  EXPECT_NE(err(R"({"model": {"vocab": {"a": 0}, "merges": ["a b"]}})")
                .find("merges[0]"),
            std::string::npos);
  EXPECT_NE(err(R"({"model": {"vocab": {"a": -3}, "merges": []}})")
                .find("out of range"),
            std::string::npos);
  EXPECT_NE(err(R"({"model": {"vocab": {"a": 0}, "merges": [1]}})")
                .find("expected \"a b\""),
            std::string::npos);
  EXPECT_NE(err(R"({"model": {"vocab": {"a": 0}, "merges": []},
                    "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(["}, "behavior": "Isolated"}})")
                .find("does not compile"),
            std::string::npos);
  EXPECT_NE(
      err(R"({"model": {"vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Precompiled"}})")
          .find("normalizer type \"Precompiled\""),
      std::string::npos);
  EXPECT_NE(
      err(R"({"model": {"vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": 1}]})")
          .find("added_tokens[0]: missing field \"content\""),
      std::string::npos);
  EXPECT_THROW(Tokenizer::FromFile("/nonexistent/tokenizer.json"), Error);
  Tokenizer tok = Tokenizer::FromJson(TrainedJson(), "trained");
  std::vector<int32_t> bad = {100000};
  EXPECT_THROW(tok.Decode(bad), Error);
  EXPECT_THROW(tok.TokenToPiece(-1), Error);
  EXPECT_EQ(tok.TokenId("no such token"), -1);
}

}  // namespace
}  // namespace dllm
