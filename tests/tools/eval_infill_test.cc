// dllm eval infill on the shipped code models: the lines it picks, the
// prefix and suffix it gives each model, the counts it reports, and clear
// errors for bad --files and bad options.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "test_util.h"

namespace dllm {
namespace {

const std::string kModels = std::string(DLLM_SOURCE_DIR) + "/models/";

// Three lines of 8..80 characters (1, 2 and 6); the others are blank, too
// short or too long, so they must never be picked.
void WriteSample(const std::string& path) {
  std::ofstream f(path);
  f << "def add(a, b):\n"
    << "    return a + b\n"
    << "\n"
    << "x = 1\n"
    << "# " << std::string(90, 'x') << "\n"
    << "print(add(x, 2))\n";
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// The JSON line of the output (stderr's progress lines are mixed in).
nlohmann::json Summary(const std::string& out) {
  size_t pos = 0;
  while (pos < out.size()) {
    size_t nl = out.find('\n', pos);
    if (nl == std::string::npos) nl = out.size();
    if (out[pos] == '{')
      return nlohmann::json::parse(out.substr(pos, nl - pos));
    pos = nl + 1;
  }
  ADD_FAILURE() << "no JSON line in: " << out;
  return nlohmann::json::object();
}

TEST(EvalInfill, PicksLinesAndRespectsPrefixAndSuffix) {
  test::TempDir dir;
  WriteSample(dir / "sample.py");
  {
    std::ofstream other(dir / "notes.txt");  // not a .py file: ignored
    other << "this line is long enough to be picked\n";
  }
  const std::string lines[] = {"def add(a, b):", "    return a + b",
                               "print(add(x, 2))"};
  const int line_nos[] = {1, 2, 6};
  for (const char* m : {"code-mdm", "code-ar"}) {
    const bool ar = std::string(m) == "code-ar";
    auto r = test::RunDllm("eval infill -m " + kModels + m + " --files " +
                           dir.path() +
                           " --lines 3 --context-tokens 4 --suffix-tokens 3 "
                           "--temperature 0 -t 1");
    ASSERT_EQ(r.code, 0) << m << ": " << r.out;
    EXPECT_NE(r.out.find("infill 3/3 | exact"), std::string::npos) << r.out;
    const nlohmann::json j = Summary(r.out);
    EXPECT_EQ(j["kind"], ar ? "ar-prefix-only" : "diffusion-infill") << m;
    EXPECT_EQ(j["span"], "oracle");
    EXPECT_EQ(j["files"], 1);
    EXPECT_EQ(j["candidate_lines"], 3);
    EXPECT_EQ(j["lines"], 3);
    ASSERT_EQ(j["cases"].size(), 3u);
    int exact = 0;
    for (int i = 0; i < 3; ++i) {
      const nlohmann::json& c = j["cases"][i];
      EXPECT_EQ(c["file"], dir / "sample.py");
      EXPECT_EQ(c["line"], line_nos[i]);
      EXPECT_EQ(c["text"], lines[i]);
      const std::string got = c["completion"];
      EXPECT_EQ(got.find('\n'), std::string::npos) << got;
      EXPECT_EQ(c["exact"].get<bool>(), Trim(got) == Trim(lines[i])) << got;
      EXPECT_GE(c["similarity"].get<double>(), 0.0);
      EXPECT_LE(c["similarity"].get<double>(), 1.0);
      // Oracle spans: exactly the line's tokens (line and newline).
      EXPECT_EQ(c["span_tokens"], c["line_tokens"]);
      EXPECT_GE(c["line_tokens"].get<int>(), 2);
      EXPECT_LE(c["prefix_tokens"].get<int>(), 4);
      EXPECT_LE(c["suffix_tokens"].get<int>(), ar ? 0 : 3);
      exact += c["exact"].get<bool>();
    }
    // The first line has only the file-start marker before it.
    EXPECT_EQ(j["cases"][0]["prefix_tokens"], 1);
    EXPECT_EQ(j["cases"][1]["prefix_tokens"], 4);
    if (!ar) {
      // The last line has the file-end marker after it; the others a full
      // suffix.
      EXPECT_EQ(j["cases"][2]["suffix_tokens"], 1);
      EXPECT_EQ(j["cases"][0]["suffix_tokens"], 3);
    }
    EXPECT_EQ(j["exact"], exact);
    EXPECT_DOUBLE_EQ(j["exact_match"].get<double>(), exact / 3.0);
  }

  // Fewer lines than candidates: evenly spaced (the 1st and the 3rd).
  auto r = test::RunDllm("eval infill -m " + kModels + "code-mdm --files " +
                         (dir / "sample.py") + " --lines 2 -t 1");
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json j = Summary(r.out);
  ASSERT_EQ(j["cases"].size(), 2u);
  EXPECT_EQ(j["cases"][0]["line"], 1);
  EXPECT_EQ(j["cases"][1]["line"], 6);
}

TEST(EvalInfill, BadFilesAndOptionsAreClearErrors) {
  test::TempDir dir;
  const std::string model = kModels + "code-mdm";
  // Bad files: exit 1, naming the path.
  auto r = test::RunDllm("eval infill -m " + model + " --files " +
                         (dir / "missing"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("missing: no such file or folder"), std::string::npos)
      << r.out;
  r = test::RunDllm("eval infill -m " + model + " --files " + dir.path());
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("no files ending in \".py\""), std::string::npos)
      << r.out;
  {
    std::ofstream f(dir / "short.py");
    f << "x = 1\n\n";
  }
  r = test::RunDllm("eval infill -m " + model + " --files " +
                    (dir / "short.py"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("no line of 8..80 characters"), std::string::npos)
      << r.out;
  // Bad command lines: exit 2.
  r = test::RunDllm("eval infill -m " + model + " --files " + dir.path() +
                    " --span sometimes");
  EXPECT_EQ(r.code, 2) << r.out;
  r = test::RunDllm("eval infill -m " + model + " --files " + dir.path() +
                    " --lines 0");
  EXPECT_EQ(r.code, 2) << r.out;
  r = test::RunDllm("eval infill -m " + model + " --files " + dir.path() +
                    " --gen-length 16");
  EXPECT_EQ(r.code, 2) << r.out;
  r = test::RunDllm("eval infill --files " + dir.path());
  EXPECT_EQ(r.code, 2) << r.out;
}

}  // namespace
}  // namespace dllm
