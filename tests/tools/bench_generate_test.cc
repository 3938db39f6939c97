// dllm bench generate's quality measures: every summary has the unigram
// entropy, distinct-2 and (with --reference-text) the share of known words;
// the 'real' preset scores windows of the reference text itself.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"

namespace dllm {
namespace {

const std::string kModels = std::string(DLLM_SOURCE_DIR) + "/models/";

TEST(BenchGenerate, SummariesMeasureDiversityAndRealism) {
  test::TempDir dir;
  {
    // A text of one line said over and over: its own windows are all known
    // words, and few distinct bigrams.
    std::ofstream f(dir / "ref.txt");
    for (int i = 0; i < 200; ++i) f << "ROMEO:\nTo be, or not to be.\n";
  }
  auto r = test::RunDllm(
      "bench generate -m " + kModels + "shakespeare-bd --ar-model " + kModels +
      "shakespeare-ar --presets uncached,ar,real --n-prompts 2 --gen-length "
      "16 --steps 16 --temperature 0.7 --reference-text " +
      (dir / "ref.txt"));
  ASSERT_EQ(r.code, 0) << r.out;
  std::map<std::string, nlohmann::json> summary;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] != '{') continue;
    auto j = nlohmann::json::parse(line);
    if (j.value("what", "") == "summary") summary[j["preset"]] = j;
  }
  ASSERT_EQ(summary.size(), 3u) << r.out;
  for (const auto& [name, s] : summary) {
    const double h = s["unigram_entropy_nats"], d2 = s["distinct_2"],
                 known = s["words_in_reference"];
    EXPECT_GT(h, 0) << name;
    EXPECT_GT(d2, 0) << name;
    EXPECT_LE(d2, 1) << name;
    EXPECT_GE(known, 0) << name;
    EXPECT_LE(known, 1) << name;
    EXPECT_TRUE(s.contains("judge_nll")) << name;
  }
  // The reference's own windows: only its words, its few token bigrams
  // repeated, and at most its handful of distinct tokens.
  EXPECT_EQ(summary["real"]["words_in_reference"].get<double>(), 1.0);
  EXPECT_LT(summary["real"]["distinct_2"].get<double>(), 0.5);
  EXPECT_LT(summary["real"]["unigram_entropy_nats"].get<double>(),
            std::log(20.0));
  // The models' samples use words beyond that one line.
  EXPECT_LT(summary["ar"]["words_in_reference"].get<double>(), 1.0);

  r = test::RunDllm("bench generate -m " + kModels +
                    "shakespeare-bd --presets real --n-prompts 1");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("real needs --reference-text"), std::string::npos)
      << r.out;
}

}  // namespace
}  // namespace dllm
