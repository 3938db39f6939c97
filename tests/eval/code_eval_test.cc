// The benchmark harness on the real datasets (shared/data, skipped when
// absent): the datasets' own solutions must all pass, empty and wrong ones
// must all fail, and bad completion files are clear errors.
#include "dllm/code_eval.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "eval/problems.h"
#include "test_util.h"

namespace dllm {
namespace {

std::string DataFile(CodeBenchmark b) {
  return StrCat(DLLM_SOURCE_DIR, "/../shared/data/", CodeBenchmarkDataFile(b));
}

#define REQUIRE_DATA(b)                                                        \
  do {                                                                         \
    if (access(DataFile(b).c_str(), R_OK) != 0)                                \
      GTEST_SKIP() << DataFile(b)                                              \
                   << " is absent (shared/data beside the "                    \
                      "checkout holds the benchmarks)";                        \
    if ((b) != CodeBenchmark::kGsm8k && access("/usr/bin/python3", X_OK) != 0) \
      GTEST_SKIP() << "/usr/bin/python3 is not installed";                     \
  } while (0)

CodeEvalOptions Options(CodeBenchmark b) {
  CodeEvalOptions o;
  o.benchmark = b;
  o.data = DataFile(b);
  o.parallel = 2;
  return o;
}

// Writes JSON Lines of {"task_id", "completion"}.
void WriteCompletions(
    const std::string& path,
    const std::vector<std::pair<nlohmann::json, std::string>>& samples) {
  std::ofstream f(path);
  for (const auto& [id, completion] : samples)
    f << nlohmann::json{{"task_id", id}, {"completion", completion}}.dump()
      << "\n";
}

size_t Passed(const CodeEvalReport& r) { return r.outcomes.at("passed"); }

TEST(EvalHumanEval, CanonicalSolutionsAllPass) {
  REQUIRE_DATA(CodeBenchmark::kHumanEval);
  CodeEvalOptions o = Options(CodeBenchmark::kHumanEval);
  o.canonical = true;
  const CodeEvalReport r = RunCodeEval(o);
  std::printf("HumanEval canonical: %zu/%zu in %.1f s (%s)\n", Passed(r),
              r.samples.size(), r.seconds, r.isolation.c_str());
  EXPECT_EQ(r.problems, 164u);
  EXPECT_EQ(r.samples.size(), 164u);
  EXPECT_EQ(Passed(r), 164u);
  EXPECT_EQ(r.pass_at_k.at(1), 1.0);
  EXPECT_EQ(r.pass_at_k.count(10), 0u);  // one sample per task
}

TEST(EvalHumanEval, EmptyAndWrongCompletionsAllFail) {
  REQUIRE_DATA(CodeBenchmark::kHumanEval);
  test::TempDir dir;
  const std::vector<eval::Problem> problems =
      eval::LoadHumanEval(DataFile(CodeBenchmark::kHumanEval));
  std::vector<std::pair<nlohmann::json, std::string>> samples;
  for (const eval::Problem& p : problems) {
    samples.push_back({p.task_id, ""});
    samples.push_back({p.task_id, "    return None\n"});
  }
  WriteCompletions(dir / "c.jsonl", samples);
  CodeEvalOptions o = Options(CodeBenchmark::kHumanEval);
  o.completions = dir / "c.jsonl";
  const CodeEvalReport r = RunCodeEval(o);
  EXPECT_EQ(r.samples.size(), 328u);
  EXPECT_EQ(Passed(r), 0u);
  EXPECT_EQ(r.outcomes.at("failed"), 328u);
  EXPECT_EQ(r.pass_at_k.at(1), 0.0);
  // Samples come back in the file's order with their line numbers.
  EXPECT_EQ(r.samples[3].task_id, "HumanEval/1");
  EXPECT_EQ(r.samples[3].line, 4);
  EXPECT_EQ(r.samples[3].completion, "    return None\n");
  EXPECT_NE(r.samples[3].stderr_tail.find("AssertionError"), std::string::npos)
      << r.samples[3].stderr_tail;
}

TEST(EvalHumanEval, PassAtKOverSeveralSamples) {
  REQUIRE_DATA(CodeBenchmark::kHumanEval);
  test::TempDir dir;
  const std::vector<eval::Problem> problems =
      eval::LoadHumanEval(DataFile(CodeBenchmark::kHumanEval));
  // Ten samples for each of the first four tasks, 0, 1, 5 and 10 of them
  // right.
  const int right[] = {0, 1, 5, 10};
  std::vector<std::pair<nlohmann::json, std::string>> samples;
  for (int t = 0; t < 4; ++t)
    for (int s = 0; s < 10; ++s)
      samples.push_back(
          {problems[size_t(t)].task_id,
           s < right[t] ? problems[size_t(t)].reference : "    return None\n"});
  WriteCompletions(dir / "c.jsonl", samples);
  CodeEvalOptions o = Options(CodeBenchmark::kHumanEval);
  o.completions = dir / "c.jsonl";
  o.limit = 4;
  const CodeEvalReport r = RunCodeEval(o);
  EXPECT_EQ(r.problems, 4u);
  EXPECT_EQ(r.tasks_scored, 4u);
  EXPECT_EQ(Passed(r), 16u);
  EXPECT_NEAR(r.pass_at_k.at(1), (0 + 0.1 + 0.5 + 1.0) / 4, 1e-12);
  EXPECT_NEAR(r.pass_at_k.at(10), 3.0 / 4, 1e-12);
  EXPECT_EQ(r.pass_at_k.count(100), 0u);
  const nlohmann::json j = nlohmann::json::parse(r.SummaryJson());
  EXPECT_NEAR(j["pass@10"].get<double>(), 0.75, 1e-12);
  EXPECT_EQ(j["outcomes"]["passed"], 16);
  EXPECT_EQ(j["outcomes"]["failed"], 24);
  EXPECT_EQ(j["tasks_missing"], 0);
}

TEST(EvalInfill, TasksAreEveryNonBlankLine) {
  REQUIRE_DATA(CodeBenchmark::kHumanEvalInfill);
  const std::vector<eval::Problem> he =
      eval::LoadHumanEval(DataFile(CodeBenchmark::kHumanEval));
  const std::vector<eval::Problem> infill = eval::MakeInfillProblems(he);
  EXPECT_EQ(infill.size(), 1033u);
  EXPECT_EQ(infill[0].task_id, "HumanEval/0/L0");
  EXPECT_EQ(infill[0].reference, "    for idx, elem in enumerate(numbers):\n");
  // Prefix + the removed line + suffix is the original program, always.
  size_t k = 0;
  for (const eval::Problem& h : he)
    for (;
         k < infill.size() && infill[k].task_id.rfind(h.task_id + "/L", 0) == 0;
         ++k) {
      const eval::Problem& p = infill[k];
      ASSERT_EQ(p.prompt + p.reference + p.suffix, h.prompt + h.reference)
          << p.task_id;
      ASSERT_NE(p.reference.find_first_not_of(" \t\n"), std::string::npos);
    }
  EXPECT_EQ(k, infill.size());
}

TEST(EvalInfill, CanonicalLinesPassAndWrongOnesFail) {
  REQUIRE_DATA(CodeBenchmark::kHumanEvalInfill);
  CodeEvalOptions o = Options(CodeBenchmark::kHumanEvalInfill);
  o.canonical = true;
  o.limit = 120;
  CodeEvalReport r = RunCodeEval(o);
  EXPECT_EQ(r.samples.size(), 120u);
  EXPECT_EQ(Passed(r), 120u);

  // The middle line without its newline is completed with one; a wrong
  // line fails.
  test::TempDir dir;
  WriteCompletions(
      dir / "c.jsonl",
      {{"HumanEval/0/L0", "    for idx, elem in enumerate(numbers):"},
       {"HumanEval/0/L4", "                if distance > threshold:\n"},
       {"HumanEval/0/L7", "    return True\n"}});
  o.canonical = false;
  o.limit = 0;
  o.completions = dir / "c.jsonl";
  r = RunCodeEval(o);
  ASSERT_EQ(r.samples.size(), 3u);
  EXPECT_EQ(r.samples[0].outcome, "passed") << r.samples[0].stderr_tail;
  EXPECT_EQ(r.samples[1].outcome, "failed");
  EXPECT_EQ(r.samples[2].outcome, "failed");
  EXPECT_EQ(r.tasks_scored, 3u);
  EXPECT_EQ(r.problems, 1033u);
}

TEST(EvalMbpp, ReferenceCodeAllPasses) {
  REQUIRE_DATA(CodeBenchmark::kMbpp);
  CodeEvalOptions o = Options(CodeBenchmark::kMbpp);
  o.canonical = true;
  const CodeEvalReport r = RunCodeEval(o);
  std::printf("MBPP test split canonical: %zu/%zu in %.1f s\n", Passed(r),
              r.samples.size(), r.seconds);
  EXPECT_EQ(r.problems, 500u);  // task ids 11-510
  EXPECT_EQ(r.samples.front().task_id, "11");
  EXPECT_EQ(r.samples.back().task_id, "510");
  EXPECT_EQ(Passed(r), 500u);
}

TEST(EvalMbpp, SplitsAndTaskIdSpellings) {
  REQUIRE_DATA(CodeBenchmark::kMbpp);
  const std::string path = DataFile(CodeBenchmark::kMbpp);
  EXPECT_EQ(eval::LoadMbpp(path, "all").size(), 974u);
  EXPECT_EQ(eval::LoadMbpp(path, "prompt").size(), 10u);
  EXPECT_EQ(eval::LoadMbpp(path, "validation").size(), 90u);
  EXPECT_EQ(eval::LoadMbpp(path, "train").size(), 374u);
  EXPECT_DLLM_ERROR(eval::LoadMbpp(path, "dev"), "unknown MBPP split 'dev'");
  // Task 367 has test_setup_code (a tree built before the asserts).
  for (const eval::Problem& p : eval::LoadMbpp(path, "test")) {
    if (p.task_id == "367") {
      EXPECT_NE(p.test.find("root = Node(1)"), std::string::npos);
    }
  }

  test::TempDir dir;
  const std::string wrong = "def f(x):\n    return x\n";
  WriteCompletions(dir / "c.jsonl",
                   {{11, wrong}, {"12", wrong}, {"Mbpp/13", wrong}});
  CodeEvalOptions o = Options(CodeBenchmark::kMbpp);
  o.completions = dir / "c.jsonl";
  const CodeEvalReport r = RunCodeEval(o);
  ASSERT_EQ(r.samples.size(), 3u);
  EXPECT_EQ(r.samples[2].task_id, "13");
  EXPECT_EQ(Passed(r), 0u);
  EXPECT_NE(r.samples[0].stderr_tail.find("NameError"), std::string::npos);
}

TEST(EvalGsm8k, ReferenceAnswersMatchAndWrongOnesDoNot) {
  REQUIRE_DATA(CodeBenchmark::kGsm8k);
  CodeEvalOptions o = Options(CodeBenchmark::kGsm8k);
  o.canonical = true;
  CodeEvalReport r = RunCodeEval(o);
  EXPECT_EQ(r.samples.size(), 1319u);
  EXPECT_EQ(Passed(r), 1319u);
  EXPECT_EQ(r.isolation_level, "none");

  // Test item 0 (Janet's ducks) is 18 dollars, item 1 is 3 bolts.
  test::TempDir dir;
  WriteCompletions(dir / "c.jsonl",
                   {{0, "She sells 9 eggs at $2, so she makes $18."},
                    {"1", "It takes 2 + 1 = 3 bolts.\n#### 3"},
                    {"gsm8k/1", "So the answer is 4."},
                    {0, "I cannot tell."}});
  o.canonical = false;
  o.completions = dir / "c.jsonl";
  r = RunCodeEval(o);
  ASSERT_EQ(r.samples.size(), 4u);
  EXPECT_EQ(r.samples[0].outcome, "passed");
  EXPECT_EQ(r.samples[0].extracted, "18");
  EXPECT_EQ(r.samples[0].reference, "18");
  EXPECT_EQ(r.samples[1].outcome, "passed");
  EXPECT_EQ(r.samples[2].outcome, "failed");
  EXPECT_EQ(r.samples[3].outcome, "failed");
  EXPECT_EQ(r.samples[3].extracted, "");
  EXPECT_EQ(r.tasks_scored, 2u);
  EXPECT_NEAR(r.pass_at_k.at(1), (0.5 + 0.5) / 2, 1e-12);

  // {"index": N} is accepted too.
  std::ofstream(dir / "i.jsonl") << "{\"index\": 0, \"completion\": \"18\"}\n";
  o.completions = dir / "i.jsonl";
  EXPECT_EQ(Passed(RunCodeEval(o)), 1u);
}

TEST(EvalHumanEval, BadCompletionFilesAreClearErrors) {
  REQUIRE_DATA(CodeBenchmark::kHumanEval);
  test::TempDir dir;
  CodeEvalOptions o = Options(CodeBenchmark::kHumanEval);
  o.completions = dir / "missing.jsonl";
  EXPECT_DLLM_ERROR(RunCodeEval(o), "missing.jsonl: cannot open");

  std::ofstream(dir / "bad.jsonl")
      << "{\"task_id\": \"HumanEval/0\", \"completion\": \"\"}\n"
         "\n"
         "{\"task_id\": \"HumanEval/1\", completion: 3}\n";
  o.completions = dir / "bad.jsonl";
  EXPECT_DLLM_ERROR(RunCodeEval(o), "bad.jsonl:3: not JSON");

  std::ofstream(dir / "unknown.jsonl")
      << "{\"task_id\": \"HumanEval/999\", \"completion\": \"\"}\n";
  o.completions = dir / "unknown.jsonl";
  EXPECT_DLLM_ERROR(RunCodeEval(o),
                    "unknown.jsonl:1: unknown task_id \"HumanEval/999\"");

  std::ofstream(dir / "nocompletion.jsonl")
      << "{\"task_id\": \"HumanEval/2\", \"text\": \"\"}\n";
  o.completions = dir / "nocompletion.jsonl";
  EXPECT_DLLM_ERROR(RunCodeEval(o), ":1: \"completion\" missing");

  std::ofstream(dir / "noid.jsonl") << "{\"completion\": \"\"}\n";
  o.completions = dir / "noid.jsonl";
  EXPECT_DLLM_ERROR(RunCodeEval(o), "noid.jsonl:1: no \"task_id\"");

  std::ofstream(dir / "array.jsonl") << "[1, 2]\n";
  o.completions = dir / "array.jsonl";
  EXPECT_DLLM_ERROR(RunCodeEval(o), "array.jsonl:1: expected a JSON object");
}

}  // namespace
}  // namespace dllm
