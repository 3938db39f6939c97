// The dllm command-line tool, run as a user would: a real process, real files.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
#include "test_util.h"

namespace dllm {
namespace {

using test::RunDllm;

const std::string kGolden = std::string(DLLM_SOURCE_DIR) + "/tests/golden/";

TEST(Cli, ForwardDumpsGoldenLogits) {
  test::TempDir dir;
  auto golden = nlohmann::json::parse(
      ReadFileToString(kGolden + "dream_gqa_f32/golden.json"));
  const auto& c = golden["cases"][1];
  std::string ids;
  for (const auto& id : c["ids"]) ids += std::to_string(id.get<int>()) + " ";
  test::CommandResult r =
      RunDllm("forward -m " + kGolden + "dream_gqa_f32 --ids '" + ids +
              "' --positions '6 0' --dump-logits " + (dir / "l.bin"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("position 6: top token"), std::string::npos) << r.out;
  std::string bytes = ReadFileToString(dir / "l.bin");
  const int V = 71;
  ASSERT_EQ(bytes.size(), size_t(2 * V * 4));
  const float* got = reinterpret_cast<const float*>(bytes.data());
  for (int v = 0; v < V; ++v) {
    EXPECT_NEAR(got[v], c["logits"][6][size_t(v)].get<double>(), 1e-4);
    EXPECT_NEAR(got[V + v], c["logits"][0][size_t(v)].get<double>(), 1e-4);
  }
}

TEST(Cli, InitInfoAndErrors) {
  test::TempDir dir;
  test::CommandResult r = RunDllm(
      "init --arch dream --layers 2 --d-model 32 --heads 4 --kv-heads 2 "
      "--ffn 40 --vocab 99 "
      "--dtype BF16 -o " +
      (dir / "m"));
  ASSERT_EQ(r.code, 0) << r.out;
  r = RunDllm("info -m " + (dir / "m") + " --tensors");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("architecture dream"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("4 query, 2 key/value"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("model.layers.1.self_attn.q_proj.bias"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("BF16"), std::string::npos) << r.out;

  r = RunDllm("forward -m " + (dir / "m") + " --ids '1 2 99'");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("token id 99 at position 2"), std::string::npos)
      << r.out;
  r = RunDllm("forward -m " + (dir / "m") + " --ids '1 x'");
  EXPECT_EQ(r.code, 2);  // a bad option value
  EXPECT_NE(r.out.find("--ids: expected integers"), std::string::npos) << r.out;
  r = RunDllm("forward -m " + (dir / "m") + " --ids '1 2' --positions 5");
  EXPECT_EQ(r.code, 2);  // a bad combination of options
  EXPECT_NE(r.out.find("--positions value 5"), std::string::npos) << r.out;
  r = RunDllm("forward --frobnicate");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("unknown option '--frobnicate'"), std::string::npos)
      << r.out;
  r = RunDllm("info -m " + (dir / "nothing"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("config.json: cannot open"), std::string::npos) << r.out;
  r = RunDllm("forward -m " + (dir / "m") + " --ids 1 --threads 4294967297");
  EXPECT_EQ(r.code, 2);  // a bad option value
  EXPECT_NE(r.out.find("--threads: 4294967297 is out of range"),
            std::string::npos)
      << r.out;
  r = RunDllm("frobnicate");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("unknown command 'frobnicate'"), std::string::npos)
      << r.out;
  r = RunDllm("init --preset huge -o " + (dir / "x"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("unknown preset 'huge'"), std::string::npos) << r.out;
}

TEST(Cli, BenchPrintsJson) {
  test::TempDir dir;
  ASSERT_EQ(RunDllm("init -o " + (dir / "m")).code, 0);
  test::CommandResult r =
      RunDllm("bench forward -m " + (dir / "m") + " --tokens 16 --reps 1");
  ASSERT_EQ(r.code, 0) << r.out;
  size_t brace = r.out.find('{');
  ASSERT_NE(brace, std::string::npos) << r.out;
  auto j = nlohmann::json::parse(r.out.substr(brace));
  EXPECT_EQ(j["tokens"], 16);
  EXPECT_GT(j["gflops"].get<double>(), 0.0);
  EXPECT_GT(j["ratio_to_sgemm"].get<double>(), 0.0);
}

}  // namespace
}  // namespace dllm
