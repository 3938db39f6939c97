// Block diffusion from the command line: `dllm train --objective bd` on a
// fresh model and adapted from an AR twin (--init-from), then `dllm
// generate` on the result, and the option errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "base/mmap_file.h"
#include "dllm/train_run.h"
#include "test_util.h"

namespace dllm {
namespace {

test::CommandResult Cli(const std::string& args) { return test::RunDllm(args); }

// A data folder without a tokenizer: ids 2..61 in a fixed pattern.
void MakeData(const std::string& dir) {
  std::vector<int32_t> train, val;
  for (int i = 0; i < 3000; ++i) train.push_back(2 + (i * 7) % 60);
  for (int i = 0; i < 300; ++i) val.push_back(2 + (i * 5) % 60);
  WriteTokenFile(dir + "/train.bin", train);
  WriteTokenFile(dir + "/val.bin", val);
  std::string meta =
      "{\"vocab_size\": 64, \"mask_token_id\": 1, \"eos_token_id\": 0, "
      "\"train_tokens\": 3000, \"val_tokens\": 300, \"train_bytes\": 9000, "
      "\"val_bytes\": 900}";
  WriteFileAtomic(dir + "/meta.json", meta.data(), meta.size());
}

nlohmann::json Config(const std::string& dir) {
  return nlohmann::json::parse(ReadFileToString(dir + "/config.json"));
}

TEST(TrainBdCli, FreshAndFromARThenGenerate) {
  test::TempDir dir;
  MakeData(dir.path());
  const std::string base = "train --data " + dir.path() +
                           " --layers 1 --d-model 16 --heads 2 --batch 2 "
                           "--context 16 --warmup 1 ";
  // A fresh block-diffusion model, validated (NELBO) along the way.
  test::CommandResult o =
      Cli(base + "-o " + (dir / "bd") +
          " --objective bd --block-size 4 --steps 4 --eval-every 2 "
          "--eval-windows 2 --eval-grid 2 --eval-draws 1");
  ASSERT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("train: bd,"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("step 4/4 | loss"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("nats/tok"), std::string::npos) << o.out;
  nlohmann::json c = Config(dir / "bd");
  EXPECT_EQ(c["block_size"], 4);
  EXPECT_FALSE(c.contains("causal"));
  o = Cli("eval loss -m " + (dir / "bd") + " --data " + dir.path() +
          " --context 16 --windows 2 --grid 2 --draws 1");
  EXPECT_EQ(o.code, 0) << o.out;

  // It generates, one block of the model's size at a time (uncached).
  o = Cli("generate -m " + (dir / "bd") +
          " --prompt-ids '2 9 16 23' --gen-length 8 --block-length 4 "
          "--steps 8 --print-ids");
  ASSERT_EQ(o.code, 0) << o.out;
  std::istringstream ids(o.out);
  int n = 0, id;
  while (ids >> id) {
    EXPECT_GE(id, 0);
    EXPECT_LT(id, 64);
    EXPECT_NE(id, 1) << "a mask token left in the output\n" << o.out;
    ++n;
  }
  EXPECT_GE(n, 8) << o.out;

  // AR to block diffusion: the AR twin's weights, block-causal attention.
  o = Cli(base + "-o " + (dir / "ar") +
          " --objective ar --steps 2 "
          "--eval-every 0");
  ASSERT_EQ(o.code, 0) << o.out;
  o = Cli(base + "-o " + (dir / "ar2bd") + " --objective bd --init-from " +
          (dir / "ar") + " --steps 2 --eval-every 0");
  EXPECT_EQ(o.code, 2) << o.out;  // the block size must be given
  EXPECT_NE(o.out.find("needs --block-size"), std::string::npos) << o.out;
  o = Cli(base + "-o " + (dir / "ar2bd") +
          " --objective bd --block-size 8 "
          "--init-from " +
          (dir / "ar") +
          " --steps 2 --eval-every 2 "
          "--eval-windows 2 --eval-grid 2 --eval-draws 1");
  ASSERT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("adapting " + (dir / "ar") +
                       " (causal) to block "
                       "diffusion with blocks of 8, mask token 1"),
            std::string::npos)
      << o.out;
  c = Config(dir / "ar2bd");
  EXPECT_EQ(c["block_size"], 8);
  EXPECT_FALSE(c.contains("causal"));
  EXPECT_EQ(c["mask_token_id"], 1);
  o = Cli("generate -m " + (dir / "ar2bd") +
          " --prompt-ids '2 9' --gen-length 8 --block-length 8 --steps 4 "
          "--print-ids");
  EXPECT_EQ(o.code, 0) << o.out;

  // A block-diffusion model is not trained with the full-attention
  // objectives, and resumes only with its own block size.
  o = Cli(base + "-o " + (dir / "x") + " --objective mdm --init-from " +
          (dir / "bd") + " --steps 2 --eval-every 0");
  EXPECT_NE(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("use --objective bd"), std::string::npos) << o.out;
  o = Cli(base + "-o " + (dir / "bd") +
          " --objective bd --block-size 2 --steps 6 --eval-every 0 --resume");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("--block-size 2 disagrees"), std::string::npos) << o.out;
}

TEST(TrainBdCli, OptionErrorsExitWith2) {
  test::TempDir dir;
  MakeData(dir.path());
  const std::string base = "train --data " + dir.path() + " -o " + (dir / "m") +
                           " --layers 1 --d-model 16 --heads 2 --batch 2 "
                           "--context 16 --steps 2 --eval-every 0 ";
  const std::pair<const char*, const char*> cases[] = {
      {"--objective bd", "--objective bd needs --block-size"},
      {"--objective bd --block-size 0", "--block-size"},
      {"--objective bd --block-size 17", "--block-size"},
      {"--objective mdm --block-size 4", "--block-size is for --objective bd"},
  };
  for (const auto& [args, message] : cases) {
    test::CommandResult o = Cli(base + args);
    EXPECT_EQ(o.code, 2) << args << "\n" << o.out;
    EXPECT_NE(o.out.find(message), std::string::npos) << args << "\n" << o.out;
    EXPECT_EQ(o.out.find("step 1/"), std::string::npos) << args << "\n"
                                                        << o.out;
  }
}

}  // namespace
}  // namespace dllm
