// The training workflow as a user runs it: train a tokenizer, prepare data,
// pre-train, generate, prepare SFT conversations, fine-tune, evaluate.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
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

  // Clear errors.
  o = Cli("train --data " + (dir / "nothing") + " -o " + (dir / "x"));
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.out.find("meta.json"), std::string::npos) << o.out;
  o = Cli("train --data " + (dir / "data") + " -o " + (dir / "m") +
          " --objective diffusion");
  EXPECT_NE(o.out.find("unknown objective 'diffusion'"), std::string::npos)
      << o.out;
}

}  // namespace
}  // namespace dllm
