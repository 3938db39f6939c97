// dllm eval humaneval / mbpp / humaneval-infill / gsm8k as a user runs them:
// the files it writes, its exit statuses, and its coexistence with eval loss.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"

namespace dllm {
namespace {

using test::RunDllm;

const std::string kData = std::string(DLLM_SOURCE_DIR) + "/../shared/data";

bool HaveHumanEval() {
  return access((kData + "/human-eval/HumanEval.jsonl.gz").c_str(), R_OK) ==
             0 &&
         access("/usr/bin/python3", X_OK) == 0;
}

TEST(EvalCli, HelpAndUsageErrors) {
  test::CommandResult r = RunDllm("eval humaneval --help");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("--completions FILE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("check(entry_point)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bubblewrap"), std::string::npos) << r.out;

  // `dllm eval` lists every eval command, loss included.
  r = RunDllm("eval");
  EXPECT_EQ(r.code, 2);
  for (const char* c : {"eval loss", "eval humaneval", "eval humaneval-infill",
                        "eval mbpp", "eval gsm8k"})
    EXPECT_NE(r.out.find(c), std::string::npos) << c << "\n" << r.out;

  r = RunDllm("eval mbpp");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--completions FILE or --canonical"), std::string::npos)
      << r.out;
  r = RunDllm("eval gsm8k --canonical --completions x.jsonl");
  EXPECT_EQ(r.code, 2) << r.out;
  r = RunDllm("eval humaneval --canonical --parallel -1");
  EXPECT_EQ(r.code, 2) << r.out;
  r = RunDllm("eval humaneval --canonical --split test");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--split is for mbpp only"), std::string::npos);
  r = RunDllm("eval humaneval --canonical --isolation chroot");
  EXPECT_EQ(r.code, 2) << r.out;
  r = RunDllm("eval humaneval --canonical --data /nonexistent/he.jsonl");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("/nonexistent/he.jsonl does not exist"),
            std::string::npos)
      << r.out;
}

TEST(EvalCli, ScoresAndWritesResults) {
  if (!HaveHumanEval())
    GTEST_SKIP() << "needs " << kData << "/human-eval and /usr/bin/python3";
  test::TempDir dir;
  {
    std::ofstream f(dir / "c.jsonl");
    f << "{\"task_id\": \"HumanEval/0\", \"completion\": \"    return "
         "False\\n\"}\n"
      << "{\"task_id\": \"HumanEval/2\", \"completion\": \"    return number "
         "% 1.0\\n\"}\n"
      << "{\"task_id\": \"HumanEval/2\", \"completion\": \"    while True: "
         "pass\\n\"}\n";
  }
  test::CommandResult r =
      RunDllm("eval humaneval --completions " + (dir / "c.jsonl") + " --data " +
              kData + " --limit 3 --timeout 2 --parallel 2 --out " +
              (dir / "r.json") + " --samples " + (dir / "s.jsonl"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("1 of 3 tasks have no completion"), std::string::npos)
      << r.out;
  std::ifstream rf(dir / "r.json");
  const nlohmann::json j = nlohmann::json::parse(rf);
  EXPECT_EQ(j["benchmark"], "humaneval");
  EXPECT_EQ(j["problems"], 3);
  EXPECT_EQ(j["tasks_scored"], 2);
  EXPECT_EQ(j["samples"], 3);
  EXPECT_DOUBLE_EQ(j["pass@1"].get<double>(), (0.0 + 0.5) / 2);
  EXPECT_EQ(j["outcomes"]["passed"], 1);
  EXPECT_EQ(j["outcomes"]["failed"], 1);
  EXPECT_EQ(j["outcomes"]["timeout"], 1);
  EXPECT_FALSE(j["isolation"].get<std::string>().empty());

  std::ifstream sf(dir / "s.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(sf, line);)
    lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["task_id"], "HumanEval/0");
  EXPECT_EQ(lines[0]["result"], "failed");
  EXPECT_EQ(lines[0]["passed"], false);
  EXPECT_EQ(lines[1]["result"], "passed");
  EXPECT_EQ(lines[2]["result"], "timeout");
  EXPECT_EQ(lines[2]["line"], 3);

  // A bad line is an error naming the file and line: exit status 1.
  std::ofstream(dir / "bad.jsonl") << "{\"task_id\": \"HumanEval/0\"\n";
  r = RunDllm("eval humaneval --completions " + (dir / "bad.jsonl") +
              " --data " + kData);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("bad.jsonl:1: not JSON"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace dllm
