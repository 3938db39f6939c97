// Prompts for generating benchmark completions (dllm/code_eval.h,
// eval/prompts.h): the exact text of each format, where the few-shot
// examples come from, the stop sequences and the truncation at them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "dllm/code_eval.h"
#include "eval/prompts.h"
#include "test_util.h"

namespace dllm {
namespace {

const std::string kData = std::string(DLLM_SOURCE_DIR) + "/../shared/data";

void WriteLines(const std::string& path,
                const std::vector<nlohmann::json>& lines) {
  std::ofstream f(path);
  for (const auto& l : lines) f << l.dump() << "\n";
}

nlohmann::json MbppLine(int id, const std::string& text,
                        const std::string& code,
                        const std::vector<std::string>& tests) {
  return {
      {"task_id", id},      {"text", text},
      {"code", code},       {"test_setup_code", ""},
      {"test_list", tests}, {"challenge_test_list", nlohmann::json::array()}};
}

TEST(CodePrompts, TruncateAtStop) {
  const std::vector<std::string> he =
      CodeStopSequences(CodeBenchmark::kHumanEval);
  EXPECT_EQ(TruncateAtStop("    return a + b\n\n\ndef main():\n    pass\n", he),
            "    return a + b\n\n");
  // The earliest stop wins, whatever its place in the list.
  EXPECT_EQ(TruncateAtStop("    x = 1\n# note\nclass A:\n", he), "    x = 1");
  EXPECT_EQ(TruncateAtStop("    return 1\nif __name__ == '__main__':\n", he),
            "    return 1");
  EXPECT_EQ(TruncateAtStop("    return 1\nprint(f(2))\n", he), "    return 1");
  // Indented code does not stop: only a new top-level statement does.
  EXPECT_EQ(TruncateAtStop("    if x:\n        print(x)\n", he),
            "    if x:\n        print(x)\n");
  EXPECT_EQ(TruncateAtStop("no stop here", he), "no stop here");
  EXPECT_EQ(TruncateAtStop("abc", {"", "c"}), "ab");  // "" is not a stop

  EXPECT_EQ(TruncateAtStop("def f():\n    return 1\n[DONE]\nmore",
                           CodeStopSequences(CodeBenchmark::kMbpp)),
            "def f():\n    return 1\n");
  EXPECT_EQ(TruncateAtStop(" 2 + 3 = 5.\n#### 5\n\nQuestion: next",
                           CodeStopSequences(CodeBenchmark::kGsm8k)),
            " 2 + 3 = 5.\n#### 5");
  EXPECT_EQ(TruncateAtStop("    return x\n    y = 2\n",
                           CodeStopSequences(CodeBenchmark::kHumanEvalInfill)),
            "    return x");
}

TEST(CodePrompts, MbppThreeShotText) {
  test::TempDir dir;
  WriteLines(dir / "mbpp.jsonl",
             {MbppLine(1, "Unused.", "x = 1", {"assert x == 1"}),
              MbppLine(2, "Add two numbers.", "def add(a, b):\r\n  return a+b",
                       {"assert add(1, 2) == 3", "assert add(0, 0) == 0"}),
              MbppLine(3, "Negate.", "def neg(a):\r\n  return -a",
                       {"assert neg(1) == -1"}),
              MbppLine(4, "Double.", "def dbl(a):\r\n  return 2*a",
                       {"assert dbl(2) == 4"}),
              MbppLine(11, "Square a number.", "def sq(a):\r\n  return a*a",
                       {"assert sq(2) == 4", "assert sq(3) == 9"}),
              MbppLine(12, "Cube.", "def cube(a): return a**3",
                       {"assert cube(2) == 8"})});
  CodeEvalOptions o;
  o.benchmark = CodeBenchmark::kMbpp;
  o.data = dir / "mbpp.jsonl";
  o.limit = 1;
  const CodeTaskSet set = LoadCodeTasks(o, {});
  ASSERT_EQ(set.tasks.size(), 1u);
  EXPECT_EQ(set.tasks[0].task_id, "11");
  EXPECT_EQ(set.shots, 3);
  EXPECT_EQ(set.shots_data, o.data);
  EXPECT_EQ(set.stop, std::vector<std::string>{"[DONE]"});
  const std::string head =
      "You are an expert Python programmer, and here is your task: ";
  const std::string tests = " Your code should pass these tests:\n\n";
  EXPECT_EQ(set.tasks[0].prompt,
            head + "Add two numbers." + tests +
                "assert add(1, 2) == 3\nassert add(0, 0) == 0\n[BEGIN]\n"
                "def add(a, b):\r\n  return a+b\n[DONE]\n\n" +
                head + "Negate." + tests +
                "assert neg(1) == -1\n[BEGIN]\n"
                "def neg(a):\r\n  return -a\n[DONE]\n\n" +
                head + "Double." + tests +
                "assert dbl(2) == 4\n[BEGIN]\n"
                "def dbl(a):\r\n  return 2*a\n[DONE]\n\n" +
                head + "Square a number." + tests +
                "assert sq(2) == 4\nassert sq(3) == 9\n[BEGIN]\n");
  EXPECT_TRUE(set.tasks[0].suffix.empty());

  // Fewer shots take the first examples; 0 leaves the bare query.
  CodePromptOptions p;
  p.shots = 0;
  EXPECT_EQ(LoadCodeTasks(o, p).tasks[0].prompt,
            head + "Square a number." + tests +
                "assert sq(2) == 4\nassert sq(3) == 9\n[BEGIN]\n");
  p.shots = 1;
  EXPECT_EQ(LoadCodeTasks(o, p).tasks[0].prompt.find("Negate."),
            std::string::npos);
  p.shots = 4;
  EXPECT_DLLM_ERROR(LoadCodeTasks(o, p), "3 examples of the MBPP paper");

  // A file without the prompt split (DeepSeek's mbpp_test.jsonl) says how to
  // get the examples.
  WriteLines(dir / "test_only.jsonl",
             {MbppLine(11, "Square.", "def sq(a): return a*a",
                       {"assert sq(2) == 4"})});
  o.data = dir / "test_only.jsonl";
  EXPECT_DLLM_ERROR(LoadCodeTasks(o, {}), "--shots-data");
  p.shots = 3;
  p.shots_data = dir / "mbpp.jsonl";
  EXPECT_EQ(LoadCodeTasks(o, p).tasks[0].prompt.find(head + "Add two"), 0u);
}

TEST(CodePrompts, Gsm8kFewShotText) {
  test::TempDir dir;
  WriteLines(dir / "train.jsonl",
             {{{"question", "Tom has 2 apples and buys 3. How many?"},
               {"answer", "2 + 3 = <<2+3=5>>5\n#### 5"}},
              {{"question", "Half of 8?"}, {"answer", "8 / 2 = 4\n#### 4"}},
              {{"question", "Unused?"}, {"answer", "#### 0"}}});
  WriteLines(dir / "test.jsonl",
             {{{"question", "What is 6 times 7?"}, {"answer", "42\n#### 42"}},
              {{"question", "Second?"}, {"answer", "#### 1"}}});
  CodeEvalOptions o;
  o.benchmark = CodeBenchmark::kGsm8k;
  o.data = dir / "test.jsonl";
  o.limit = 1;
  CodePromptOptions p;
  p.shots = 2;
  const CodeTaskSet set = LoadCodeTasks(o, p);
  ASSERT_EQ(set.tasks.size(), 1u);
  EXPECT_EQ(set.tasks[0].task_id, "0");
  EXPECT_EQ(set.shots_data, dir / "train.jsonl");  // beside the test file
  EXPECT_EQ(set.tasks[0].prompt,
            "Question: Tom has 2 apples and buys 3. How many?\n"
            "Answer: 2 + 3 = <<2+3=5>>5\n#### 5\n\n"
            "Question: Half of 8?\nAnswer: 8 / 2 = 4\n#### 4\n\n"
            "Question: What is 6 times 7?\nAnswer:");
  // The default is 8 examples; this train file has 3.
  EXPECT_DLLM_ERROR(LoadCodeTasks(o, {}), "fewer than --shots 8");
  p.shots = 0;
  EXPECT_EQ(LoadCodeTasks(o, p).tasks[0].prompt,
            "Question: What is 6 times 7?\nAnswer:");
  o.limit = 0;
  p.shots = 1;
  p.shots_data = dir / "missing.jsonl";
  EXPECT_DLLM_ERROR(LoadCodeTasks(o, p), "missing.jsonl");
  p.shots_data.clear();
  EXPECT_EQ(LoadCodeTasks(o, p).tasks.size(), 2u);
}

TEST(CodePrompts, HumanEvalAndInfill) {
  test::TempDir dir;
  const std::string prompt = "def add(a, b):\n    \"\"\"Sum.\"\"\"\n";
  WriteLines(dir / "he.jsonl",
             {{{"task_id", "HumanEval/0"},
               {"prompt", prompt},
               {"canonical_solution", "    c = a + b\n\n    return c\n"},
               {"test", "def check(f):\n    assert f(1, 2) == 3\n"},
               {"entry_point", "add"}}});
  CodeEvalOptions o;
  o.benchmark = CodeBenchmark::kHumanEval;
  o.data = dir / "he.jsonl";
  CodeTaskSet set = LoadCodeTasks(o, {});
  ASSERT_EQ(set.tasks.size(), 1u);
  EXPECT_EQ(set.tasks[0].prompt, prompt);  // exactly the dataset's prompt
  EXPECT_EQ(set.shots, 0);
  CodePromptOptions p;
  p.shots = 2;
  EXPECT_DLLM_ERROR(LoadCodeTasks(o, p), "0-shot");

  o.benchmark = CodeBenchmark::kHumanEvalInfill;
  set = LoadCodeTasks(o, {});
  ASSERT_EQ(set.tasks.size(), 2u);  // the blank line is not a task
  EXPECT_EQ(set.tasks[0].task_id, "HumanEval/0/L0");
  EXPECT_EQ(set.tasks[0].prompt, prompt);
  EXPECT_EQ(set.tasks[0].suffix, "\n    return c\n");
  EXPECT_EQ(set.tasks[1].task_id, "HumanEval/0/L2");
  EXPECT_EQ(set.tasks[1].prompt, prompt + "    c = a + b\n\n");
  EXPECT_EQ(set.tasks[1].suffix, "");
  EXPECT_EQ(set.stop, std::vector<std::string>{"\n"});
}

TEST(CodePrompts, RealDatasets) {
  if (access((kData + "/mbpp/mbpp.jsonl").c_str(), R_OK) != 0 ||
      access((kData + "/gsm8k/train.jsonl").c_str(), R_OK) != 0)
    GTEST_SKIP() << "needs " << kData << "/mbpp and /gsm8k";
  CodeEvalOptions o;
  o.benchmark = CodeBenchmark::kMbpp;
  o.data = kData + "/mbpp/mbpp.jsonl";
  o.limit = 1;
  CodeTaskSet set = LoadCodeTasks(o, {});
  ASSERT_EQ(set.tasks.size(), 1u);
  EXPECT_EQ(set.tasks[0].task_id, "11");
  const std::string& mp = set.tasks[0].prompt;
  EXPECT_EQ(mp.find("You are an expert Python programmer, and here is your "
                    "task: Write a function to find the similar elements "
                    "from the given two tuple lists. Your code should pass "
                    "these tests:\n\nassert similar_elements((3, 4, 5, 6),(5, "
                    "7, 4, 10)) == (4, 5)\n"),
            0u);
  size_t done = 0;
  for (size_t at = 0; (at = mp.find("[DONE]", at)) != std::string::npos; ++at)
    ++done;
  EXPECT_EQ(done, 3u);
  EXPECT_NE(mp.find("remove first and last occurrence"), std::string::npos);
  EXPECT_EQ(mp.substr(mp.size() - 9), "\n[BEGIN]\n");

  o.benchmark = CodeBenchmark::kGsm8k;
  o.data = kData + "/gsm8k/test.jsonl";
  set = LoadCodeTasks(o, {});
  EXPECT_EQ(set.shots, 8);
  const std::string& gp = set.tasks[0].prompt;
  EXPECT_EQ(gp.find("Question: Natalia sold clips to 48 of her friends"), 0u);
  size_t questions = 0;
  for (size_t at = 0; (at = gp.find("Question: ", at)) != std::string::npos;
       ++at)
    ++questions;
  EXPECT_EQ(questions, 9u);
  EXPECT_EQ(gp.substr(gp.size() - 8), "\nAnswer:");
}

}  // namespace
}  // namespace dllm
