// The training workflow as a user runs it: train a tokenizer, prepare data,
// pre-train, generate, prepare SFT conversations, fine-tune, evaluate.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
#include "dllm/train_run.h"
#include "test_util.h"

namespace dllm {
namespace {

test::CommandResult Cli(const std::string& args) { return test::RunDllm(args); }

TEST(TrainCli, TokenizerDataPretrainGenerateSftEval) {
  test::TempDir dir;
  {
    std::ofstream corpus(dir / "corpus.txt");
    for (int i = 0; i < 300; ++i)
      corpus << "To be, or not to be, that is the question " << i % 7 << ".\n";
    std::ofstream chat(dir / "chat.jsonl");
    for (int i = 0; i < 20; ++i)
      chat << R"({"messages": [{"role": "user", "content": "say )" << i % 3
           << R"("}, {"role": "assistant", "content": "to be )" << i % 3
           << R"("}]})"
           << "\n";
  }
  test::CommandResult o =
      Cli("tokenizer train --vocab-size 300 --special "
          "'<|endoftext|>,<|mask|>,<|im_start|>,<|im_end|>' " +
          (dir / "corpus.txt") + " -o " + (dir / "tokenizer.json"));
  ASSERT_EQ(o.code, 0) << o.out;
  {
    std::ofstream cfg(dir / "tokenizer_config.json");
    cfg << R"({"chat_template": "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"})";
  }
  o = Cli("data prepare --tokenizer " + dir.path() + " " +
          (dir / "corpus.txt") + " -o " + (dir / "data"));
  ASSERT_EQ(o.code, 0) << o.out;
  auto meta = nlohmann::json::parse(ReadFileToString(dir / "data/meta.json"));
  EXPECT_EQ(meta["mask_token_id"], 1);
  EXPECT_EQ(meta["eos_token_id"], 0);
  EXPECT_GT(meta["val_tokens"].get<int>(), 0);
  EXPECT_GT(meta["train_tokens"].get<int>(), 8 * meta["val_tokens"].get<int>());

  o = Cli("train --data " + (dir / "data") + " -o " + (dir / "m") +
          " --layers 2 --d-model 32 --heads 2 --batch 4 --context 32 --steps 6 "
          "--warmup 2 --eval-every 3 --eval-windows 2");
  ASSERT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("step 6/6 | loss"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("bits/byte"), std::string::npos) << o.out;
  std::string log = ReadFileToString(dir / "m/train_log.csv");
  EXPECT_EQ(log.rfind("step,loss,lr,grad_norm", 0), 0u);
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 7);

  // The trained folder is a model that generate and info load directly.
  o = Cli("generate -m " + (dir / "m") +
          " -p 'To be' --gen-length 8 --steps 8 --json");
  ASSERT_EQ(o.code, 0) << o.out;
  auto g = nlohmann::json::parse(o.out.substr(o.out.find('{')));
  EXPECT_EQ(g["forward_passes"].get<int>() <= 8, true);
  o = Cli("info -m " + (dir / "m"));
  EXPECT_NE(o.out.find("architecture llada"), std::string::npos) << o.out;

  // SFT: conversations through the chat template, fine-tuned from the model.
  o = Cli("data prepare --tokenizer " + dir.path() + " --sft " +
          (dir / "chat.jsonl") + " -o " + (dir / "sft"));
  ASSERT_EQ(o.code, 0) << o.out;
  auto sft = nlohmann::json::parse(ReadFileToString(dir / "sft/sft.json"));
  ASSERT_EQ(sft["records"].size(), 20u);
  EXPECT_GT(sft["records"][0][2].get<int>(), 3);  // the prompt span is recorded
  o = Cli("train --data " + (dir / "sft") + " -o " + (dir / "s") +
          " --objective mdm-sft --init-from " + (dir / "m") +
          " --batch 4 --context 32 --steps 3 --warmup 1 --eval-every 0");
  ASSERT_EQ(o.code, 0) << o.out;

  o = Cli("eval loss -m " + (dir / "m") + " --data " + (dir / "data") +
          " --context 32 --windows 4 --grid 4 --draws 1");
  ASSERT_EQ(o.code, 0) << o.out;
  auto e = nlohmann::json::parse(o.out.substr(o.out.find('{')));
  EXPECT_EQ(e["kind"], "mdm-nelbo");
  EXPECT_GT(e["nats_per_token"].get<double>(), 0.0);

  // Data of another tokenizer (same size class, other merges) is refused by
  // train --init-from and by eval loss, naming both folders.
  o =
      Cli("tokenizer train --vocab-size 280 --special "
          "'<|endoftext|>,<|mask|>' " +
          (dir / "corpus.txt") + " -o " + (dir / "other.json"));
  ASSERT_EQ(o.code, 0) << o.out;
  o = Cli("data prepare --tokenizer " + (dir / "other.json") + " " +
          (dir / "corpus.txt") + " -o " + (dir / "data2"));
  ASSERT_EQ(o.code, 0) << o.out;
  EXPECT_EQ(nlohmann::json::parse(ReadFileToString(dir / "data2/meta.json"))
                .value("tokenizer_fingerprint", "")
                .rfind("fnv1a64:", 0),
            0u);
  for (const std::string& cmd :
       {"train --data " + (dir / "data2") + " -o " + (dir / "x2") +
            " --init-from " + (dir / "m") +
            " --batch 4 --context 32 --steps 1 --eval-every 0",
        "eval loss -m " + (dir / "m") + " --data " + (dir / "data2") +
            " --context 32 --windows 1 --grid 1 --draws 1"}) {
    o = Cli(cmd);
    EXPECT_EQ(o.code, 1) << cmd << "\n" << o.out;
    EXPECT_NE(o.out.find("the data in " + (dir / "data2") +
                         " was tokenized with another tokenizer than the "
                         "model in " +
                         (dir / "m")),
              std::string::npos)
        << o.out;
  }
  EXPECT_FALSE(std::ifstream(dir / "x2/model.safetensors").good());
  // Shape options with --init-from: the model's shape wins, so a different
  // one is a usage error, named.
  o = Cli("train --data " + (dir / "sft") + " -o " + (dir / "s2") +
          " --objective mdm-sft --init-from " + (dir / "m") +
          " --layers 3 --batch 4 --context 32 --steps 1");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(
      o.out.find("--layers 3 disagrees with " + (dir / "m") + " (n_layers 2)"),
      std::string::npos)
      << o.out;
  o = Cli("train --data " + (dir / "sft") + " -o " + (dir / "s2") +
          " --objective mdm-sft --init-from " + (dir / "m") +
          " --init-std 0.1 --batch 4 --context 32 --steps 1");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("--init-std only applies to a fresh model"),
            std::string::npos)
      << o.out;

  // Clear errors.
  o = Cli("train --data " + (dir / "nothing") + " -o " + (dir / "x"));
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.out.find("meta.json"), std::string::npos) << o.out;
  o = Cli("train --data " + (dir / "data") + " -o " + (dir / "m") +
          " --objective diffusion");
  EXPECT_NE(o.out.find("unknown objective 'diffusion'"), std::string::npos)
      << o.out;
}

// A data folder without a tokenizer: enough for option checks and runs.
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

// Every bad value is refused at the start with status 2, naming the option
// (README: 2 for a bad command line, 1 for other errors).
TEST(TrainCli, BadValuesExitWith2NamingTheOption) {
  test::TempDir dir;
  MakeData(dir.path());
  const std::string base = "train --data " + dir.path() + " -o " + (dir / "m") +
                           " --layers 1 --d-model 16 --heads 2 --batch 2 "
                           "--context 16 --steps 2 --eval-every 0 ";
  const std::pair<const char*, const char*> cases[] = {
      {"--save-dtype F16", "--save-dtype"},
      {"--lr -1", "--lr"},
      {"--warmup -1", "--warmup"},
      {"--clip -1", "--clip"},
      {"--weight-decay -1", "--weight-decay"},
      {"--lr 1e-3 --min-lr 1e-2", "--min-lr"},
      {"--ckpt-every -1", "--ckpt-every"},
      {"--init-std -1", "--init-std"},
      {"--d-model 1000000000", "--d-model"},
      {"--batch 0", "--batch"},
      {"--lr nan", "--lr"},
      {"--objective diffusion", "unknown objective 'diffusion'"},
  };
  for (const auto& [args, option] : cases) {
    test::CommandResult o = Cli(base + args);
    EXPECT_EQ(o.code, 2) << args << "\n" << o.out;
    EXPECT_NE(o.out.find(option), std::string::npos) << args << "\n" << o.out;
    EXPECT_EQ(o.out.find("--ffn"), std::string::npos) << args << "\n" << o.out;
    EXPECT_EQ(o.out.find("step 1/"), std::string::npos) << args << "\n"
                                                        << o.out;
  }
  test::CommandResult o = Cli("eval loss -m " + (dir / "m") + " --data " +
                              dir.path() + " --windows 0");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("--windows"), std::string::npos) << o.out;
}

// A stopped run (Ctrl-C, SIGTERM, --stop-after) leaves a model folder that
// every command loads; a resume with other settings names what differs.
TEST(TrainCli, StoppedRunIsAModel) {
  test::TempDir dir;
  MakeData(dir.path());
  const std::string run = "train --data " + dir.path() + " -o " + (dir / "m") +
                          " --layers 1 --d-model 16 --heads 2 --batch 2 "
                          "--context 16 --steps 6 --eval-every 0 ";
  test::CommandResult o = Cli(run + "--stop-after 2");
  ASSERT_EQ(o.code, 130) << o.out;
  o = Cli("info -m " + (dir / "m"));
  EXPECT_EQ(o.code, 0) << o.out;
  o = Cli("eval loss -m " + (dir / "m") + " --data " + dir.path() +
          " --context 16 --windows 2 --grid 2 --draws 1");
  EXPECT_EQ(o.code, 0) << o.out;
  o = Cli(run + "--resume --batch 3");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("--batch: checkpoint 2, now 3"), std::string::npos)
      << o.out;
  o = Cli(run + "--resume --heads 4");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("--heads 4 disagrees with"), std::string::npos) << o.out;
  o = Cli(run + "--resume");
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("step 6/6"), std::string::npos) << o.out;
}

}  // namespace
}  // namespace dllm
