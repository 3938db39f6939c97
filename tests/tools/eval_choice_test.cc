// dllm eval choice on the shipped models: each picks the real Shakespeare
// continuation over letter soup, scored exactly (AR) or by the Monte-Carlo
// NELBO (diffusion); bad question files are clear errors.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
#include "test_util.h"

namespace dllm {
namespace {

const std::string kModels = std::string(DLLM_SOURCE_DIR) + "/models/";

void WriteQuestions(const std::string& path) {
  std::ofstream f(path);
  f << R"({"context": "First Citizen:\nBefore we proceed any further, hear me", "choices": [" speak.", " qxz vvbt klmn."], "answer": 0})"
    << "\n"
    << R"({"context": "ROMEO:\nWhat say you, my", "choices": [" zzqv xwp", " lord?"], "answer": 1})"
    << "\n\n"  // blank lines are skipped
    << R"({"context": "KING RICHARD III:\nNow is the winter of our", "choices": [" discontent", " ppqqxz"], "answer": 0})"
    << "\n";
}

TEST(EvalChoice, ShippedModelsPickTheRealContinuation) {
  test::TempDir dir;
  WriteQuestions(dir / "q.jsonl");
  for (const char* m :
       {"shakespeare-ar", "shakespeare-mdm", "shakespeare-bd"}) {
    auto r = test::RunDllm("eval choice -m " + kModels + m + " --data " +
                           (dir / "q.jsonl") + " --draws 16 --samples " +
                           (dir / "s.jsonl"));
    ASSERT_EQ(r.code, 0) << m << ": " << r.out;
    auto j = nlohmann::json::parse(r.out.substr(r.out.rfind("{\"acc\"")));
    EXPECT_EQ(j["questions"], 3) << m;
    EXPECT_EQ(j["acc"], 1.0) << m;
    EXPECT_EQ(j["estimator"],
              std::string(m) == "shakespeare-ar" ? "exact" : "mc-nelbo")
        << m;
    const std::string samples = ReadFileToString(dir / "s.jsonl");
    EXPECT_EQ(std::count(samples.begin(), samples.end(), '\n'), 3) << m;
    auto first = nlohmann::json::parse(samples.substr(0, samples.find('\n')));
    ASSERT_EQ(first["nll"].size(), 2u);
    // The real words are far likelier than the soup.
    EXPECT_LT(first["nll"][0].get<double>() + 20, first["nll"][1].get<double>())
        << m;
  }
}

TEST(EvalChoice, BadQuestionFilesAreClearErrors) {
  test::TempDir dir;
  {
    std::ofstream f(dir / "bad.jsonl");
    f << R"({"context": "a", "choices": ["b", "c"], "answer": 0})"
      << "\n"
      << R"({"context": "a", "choices": ["b", "c"], "answer": 2})"
      << "\n";
  }
  auto r = test::RunDllm("eval choice -m " + kModels +
                         "shakespeare-ar --data " + (dir / "bad.jsonl"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("bad.jsonl:2: needs \"answer\""), std::string::npos)
      << r.out;
  r = test::RunDllm("eval choice -m " + kModels + "shakespeare-ar --data " +
                    (dir / "missing.jsonl"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("cannot open"), std::string::npos) << r.out;
  r = test::RunDllm("eval choice -m " + kModels + "shakespeare-ar");
  EXPECT_EQ(r.code, 2) << r.out;
}

}  // namespace
}  // namespace dllm
