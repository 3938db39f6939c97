// The tokenizer commands as a user runs them: tokenize, detokenize (round
// trip), template, and their errors.
#include <gtest/gtest.h>

#include <fstream>

#include "test_util.h"

namespace dllm {
namespace {

using test::RunDllm;

TEST(TokenizeCli, RoundTripTemplateAndErrors) {
  test::TempDir dir;
  {
    std::ofstream corpus(dir / "corpus.txt");
    for (int i = 0; i < 200; ++i)
      corpus << "Now is the winter of our discontent " << i << "\n";
    std::ofstream cfg(dir / "tokenizer_config.json");
    cfg << R"({"chat_template": "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}"})";
    std::ofstream msgs(dir / "chat.json");
    msgs
        << R"([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])";
  }
  auto r = RunDllm(
      "tokenizer train --vocab-size 290 --special '<|endoftext|>,<|mask|>' " +
      (dir / "corpus.txt") + " -o " + (dir / "tokenizer.json"));
  ASSERT_EQ(r.code, 0) << r.out;

  const std::string text = "Now is the winter, ünïcode ✓";
  r = RunDllm("tokenize -m " + dir.path() + " --text '" + text + "'");
  ASSERT_EQ(r.code, 0) << r.out;
  std::string ids = r.out.substr(0, r.out.find('\n'));
  ASSERT_FALSE(ids.empty());
  r = RunDllm("detokenize -m " + dir.path() + " --ids '" + ids + "'");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.substr(0, text.size()), text);

  r = RunDllm("tokenize -m " + dir.path() + " --text 'winter' --count");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_GE(std::stoi(r.out), 1);
  r = RunDllm("tokenize -m " + dir.path() + " --text 'winter' --pieces");
  EXPECT_NE(r.out.find("\t\""), std::string::npos) << r.out;  // id<TAB>"piece"

  r = RunDllm("template -m " + dir.path() + " --messages " +
              (dir / "chat.json"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("[user] Hi\n[assistant] Hello\n[assistant] ", 0), 0u)
      << r.out;
  r = RunDllm("template -m " + dir.path() + " --messages " +
              (dir / "chat.json") + " --no-generation-prompt");
  EXPECT_EQ(r.out.find("[assistant] \n"), std::string::npos) << r.out;

  r = RunDllm("tokenize -m " + (dir / "missing") + " --text x");
  EXPECT_EQ(r.code, 1);
  r = RunDllm("detokenize -m " + dir.path() + " --ids '1 999999'");
  EXPECT_EQ(r.code, 1) << r.out;
  r = RunDllm("tokenize --bogus");
  EXPECT_EQ(r.code, 2);
}

}  // namespace
}  // namespace dllm
