// dllm convert and dllm quantize, run as a user would, and the commands that
// take -m reading a .gguf file.
#include <gtest/gtest.h>

#include <string>

#include "base/mmap_file.h"
#include "test_util.h"

namespace dllm {
namespace {

using test::RunDllm;

const std::string kFixtures =
    std::string(DLLM_SOURCE_DIR) + "/tests/fixtures/gguf/";

TEST(ConvertCli, FolderToGgufAndBack) {
  test::TempDir dir;
  test::CommandResult r =
      RunDllm("init --layers 2 --d-model 32 --heads 4 --ffn 48 --vocab 64 -o " +
              (dir / "m"));
  ASSERT_EQ(r.code, 0) << r.out;
  r = RunDllm("convert " + (dir / "m") + " " + (dir / "m.gguf") +
              " --outtype f16");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("convert: [2/21] blk.0.attn_norm.weight (32) F32 -> "
                       "F32"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("(rows reordered for RoPE)"), std::string::npos);
  EXPECT_NE(r.out.find("convert: wrote " + (dir / "m.gguf") + " (21 tensors"),
            std::string::npos)
      << r.out;
  r = RunDllm("info -m " + (dir / "m.gguf") + " --tensors");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("architecture llada"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("blk.1.ffn_down.weight"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("F16"), std::string::npos) << r.out;
  r = RunDllm("forward -m " + (dir / "m.gguf") + " --ids '1 2 3'");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("position 2: top token"), std::string::npos) << r.out;

  // An existing destination needs --force.
  r = RunDllm("convert " + (dir / "m") + " " + (dir / "m.gguf"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("already exists: pass --force"), std::string::npos)
      << r.out;
  r = RunDllm("convert -q --force " + (dir / "m") + " " + (dir / "m.gguf"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.find("[1/21]"), std::string::npos) << r.out;

  r = RunDllm("convert -q " + (dir / "m.gguf") + " " + (dir / "back"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(FileExists(dir / "back/config.json"));
  EXPECT_TRUE(FileExists(dir / "back/model.safetensors"));
  r = RunDllm("convert -q " + (dir / "m.gguf") + " " + (dir / "back"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("already holds a model"), std::string::npos) << r.out;
}

TEST(ConvertCli, QuantizeAndUsageErrors) {
  test::TempDir dir;
  test::CommandResult r =
      RunDllm("quantize -q " + kFixtures + "llada_f16.gguf " +
              (dir / "q.gguf") + " q8_0");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("quantize: wrote"), std::string::npos) << r.out;
  r = RunDllm("info -m " + (dir / "q.gguf"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("Q8_0"), std::string::npos) << r.out;

  r = RunDllm("quantize " + kFixtures + "llada_f16.gguf " + (dir / "q.gguf") +
              " q5_k");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("unknown type 'q5_k' (expected f32, f16, bf16, q8_0, "
                       "q4_0, q4_k, q6_k or auto)"),
            std::string::npos)
      << r.out;
  r = RunDllm("quantize " + kFixtures + "llada_f16.gguf " + (dir / "q") +
              " q8_0");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("must be a .gguf file"), std::string::npos) << r.out;
  r = RunDllm("convert " + kFixtures + "llada_f16.gguf");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("expected SRC and DST, got 1"), std::string::npos)
      << r.out;
  r = RunDllm("convert --outtype q3 a b");
  EXPECT_EQ(r.code, 2) << r.out;
  r = RunDllm("convert " + kFixtures + "llada_twin " + (dir / "out"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("is a folder, so the destination"), std::string::npos)
      << r.out;
  r = RunDllm("convert " + (dir / "nothing") + " " + (dir / "x.gguf"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("no such file or folder"), std::string::npos) << r.out;
  r = RunDllm("convert " + kFixtures + "llada_f16.gguf " + (dir / "f") +
              " --outtype q4_0");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("cannot hold Q4_0"), std::string::npos) << r.out;
  r = RunDllm("convert --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("--outtype"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Q6_K"), std::string::npos) << r.out;
  // A file that is not GGUF, named as one.
  WriteFileAtomic(dir / "junk.gguf", "GGUF\x09\0\0\0", 8);
  r = RunDllm("info -m " + (dir / "junk.gguf"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("junk.gguf: GGUF version 9 is not supported"),
            std::string::npos)
      << r.out;
}

// generate and tokenize take the GGUF file where they take a folder.
TEST(ConvertCli, GenerateAndTokenizeReadGguf) {
  const std::string f = kFixtures + "llada_f16.gguf";
  test::CommandResult r =
      RunDllm("tokenize -m " + f + " --text 'ROMEO: the sun' --no-special");
  ASSERT_EQ(r.code, 0) << r.out;
  test::CommandResult twin = RunDllm("tokenize -m " + kFixtures +
                                     "llada_twin --text 'ROMEO: the sun' "
                                     "--no-special");
  EXPECT_EQ(r.out, twin.out);
  r = RunDllm("generate -m " + f +
              " -p 'ROMEO:' --gen-length 8 --steps 8 --print-ids");
  ASSERT_EQ(r.code, 0) << r.out;
  twin = RunDllm("generate -m " + kFixtures +
                 "llada_twin -p 'ROMEO:' --gen-length 8 --steps 8 --print-ids");
  EXPECT_EQ(r.out, twin.out);
}

}  // namespace
}  // namespace dllm
