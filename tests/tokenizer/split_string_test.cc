// Split pre-tokenizers with a {"String": ...} pattern: the string is a
// literal, not a regex. Such files once failed to load ("invalid option bits
// with PCRE2_LITERAL"). Expected ids come from the Hugging Face `tokenizers`
// library (npm, 0.x) on the same tokenizer.json; tokenizer_features_test.cc
// compares against it live when it is installed.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dllm/tokenizer.h"

namespace dllm {
namespace {

using nlohmann::json;

// A tiny byte-level BPE over "a b c - space" whose merges cross the split
// points, so that where a Split cuts shows in the ids.
Tokenizer Tiny(const std::string& pattern, const std::string& behavior) {
  json vocab = {{"a", 0},      {"b", 1},       {"c", 2},  {"-", 3},
                {"\u0120", 4}, {"\u0120a", 5}, {"ab", 6}, {"b-", 7},
                {"-a", 8},     {"a\u0120", 9}};
  json j = {
      {"model",
       {{"type", "BPE"},
        {"vocab", vocab},
        {"merges", {"\u0120 a", "a b", "b -", "- a", "a \u0120"}}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers", json::array({{{"type", "Split"},
                                        {"pattern", {{"String", pattern}}},
                                        {"behavior", behavior},
                                        {"invert", false}},
                                       {{"type", "ByteLevel"},
                                        {"add_prefix_space", false},
                                        {"trim_offsets", false},
                                        {"use_regex", false}}})}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"added_tokens", json::array()}};
  return Tokenizer::FromJson(j.dump(), "tiny");
}

struct Case {
  const char* pattern;
  const char* behavior;
  std::vector<std::vector<int32_t>> ids;  // for kTexts
};

const char* const kTexts[] = {"a b-ab  a-b", " a-a b ", "ab-ab a"};

TEST(SplitString, MatchesHuggingFace) {
  const Case cases[] = {
      {" ",
       "Isolated",
       {{0, 4, 7, 6, 4, 4, 0, 3, 1}, {4, 0, 8, 4, 1, 4}, {6, 3, 6, 4, 0}}},
      {" ", "Removed", {{0, 7, 6, 0, 3, 1}, {0, 8, 1}, {6, 3, 6, 0}}},
      {" ",
       "MergedWithPrevious",
       {{9, 7, 6, 4, 4, 0, 3, 1}, {4, 0, 8, 4, 1, 4}, {6, 3, 6, 4, 0}}},
      {" ",
       "MergedWithNext",
       {{0, 4, 7, 6, 4, 5, 3, 1}, {5, 8, 4, 1, 4}, {6, 3, 6, 5}}},
      {" ",
       "Contiguous",
       {{0, 4, 7, 6, 4, 4, 0, 3, 1}, {4, 0, 8, 4, 1, 4}, {6, 3, 6, 4, 0}}},
      {"-",
       "Isolated",
       {{9, 1, 3, 6, 4, 5, 3, 1}, {5, 3, 9, 1, 4}, {6, 3, 6, 5}}},
      {"-",
       "MergedWithNext",
       {{9, 1, 3, 6, 4, 5, 3, 1}, {5, 8, 4, 1, 4}, {6, 3, 6, 5}}},
      {"-", "Removed", {{9, 1, 6, 4, 5, 1}, {5, 9, 1, 4}, {6, 6, 5}}},
      {"ab",
       "Isolated",
       {{9, 7, 6, 4, 5, 3, 1}, {5, 8, 4, 1, 4}, {6, 3, 6, 5}}},
      {"ab",
       "MergedWithPrevious",
       {{9, 7, 6, 4, 5, 3, 1}, {5, 8, 4, 1, 4}, {6, 3, 6, 5}}},
      {"ab", "Removed", {{9, 7, 4, 5, 3, 1}, {5, 8, 4, 1, 4}, {3, 5}}},
  };
  for (const Case& c : cases) {
    Tokenizer tok = Tiny(c.pattern, c.behavior);
    for (size_t i = 0; i < std::size(kTexts); ++i)
      EXPECT_EQ(tok.Encode(kTexts[i], false), c.ids[i])
          << "'" << c.pattern << "' " << c.behavior << " on '" << kTexts[i]
          << "'";
  }
}

TEST(SplitString, RegexCharactersAreLiteral) {
  // "." as a regex would match every character; as a literal it matches none
  // of these, so the text stays one piece and merges across it.
  Tokenizer tok = Tiny(".", "Removed");
  EXPECT_EQ(tok.Encode("ab a", false), (std::vector<int32_t>{6, 5}));
}

}  // namespace
}  // namespace dllm
