// Byte-level BPE: llama.cpp's test vectors (GPT-2, Qwen2) over the GPT-2
// files and the Qwen tiktoken ranks, round trips, streaming, errors.
#include "dllm/tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "base/mmap_file.h"
#include "dllm/error.h"

namespace dllm {
namespace {

const std::string kData = DLLM_SOURCE_DIR "/../shared/data/tokenizers";

bool HaveData() { return std::filesystem::exists(kData); }

struct Vectors {
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> ids;
};

// llama.cpp's format: texts separated by "\n__ggml_vocab_test__\n", one line
// of ids per text.
Vectors ReadVectors(const std::string& stem) {
  Vectors v;
  std::string inp = ReadFileToString(stem + ".inp");
  std::string out = ReadFileToString(stem + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  size_t pos = 0;
  while (pos < inp.size()) {
    size_t e = inp.find(sep, pos);
    if (e == std::string::npos) e = inp.size();
    v.texts.push_back(inp.substr(pos, e - pos));
    pos = e + sep.size();
  }
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    int32_t x;
    while (ls >> x) ids.push_back(x);
    v.ids.push_back(ids);
  }
  return v;
}

void CheckVectors(const Tokenizer& tok, const std::string& stem) {
  Vectors v = ReadVectors(stem);
  ASSERT_EQ(v.texts.size(), v.ids.size()) << stem;
  ASSERT_GT(v.texts.size(), 40u);
  int same = 0;
  for (size_t i = 0; i < v.texts.size(); ++i) {
    auto got = tok.Encode(v.texts[i], false);
    EXPECT_EQ(got, v.ids[i]) << "text " << i << ": \"" << v.texts[i] << "\"";
    same += got == v.ids[i];
    EXPECT_EQ(tok.Decode(got), v.texts[i]) << "text " << i;
  }
  EXPECT_EQ(same, static_cast<int>(v.texts.size()));
}

TEST(Tokenizer, Gpt2VocabMergesVectors) {
  if (!HaveData()) GTEST_SKIP() << "../shared/data absent";
  Tokenizer tok = Tokenizer::FromFile(kData + "/gpt2-whisper");
  EXPECT_EQ(tok.vocab_size(), 50257u);
  CheckVectors(tok, kData + "/test-vectors/ggml-vocab-gpt-2.gguf");
}

TEST(Tokenizer, Gpt2TiktokenVectors) {
  if (!HaveData()) GTEST_SKIP() << "../shared/data absent";
  Tokenizer tok = Tokenizer::FromFile(kData + "/gpt2-whisper/gpt2.tiktoken");
  EXPECT_EQ(tok.vocab_size(), 50257u);
  CheckVectors(tok, kData + "/test-vectors/ggml-vocab-gpt-2.gguf");
}

TEST(Tokenizer, QwenTiktokenVectors) {
  if (!HaveData()) GTEST_SKIP() << "../shared/data absent";
  Tokenizer tok = Tokenizer::FromFile(kData + "/qwen-tiktoken/qwen.tiktoken");
  CheckVectors(tok, kData + "/test-vectors/ggml-vocab-qwen2.gguf");
  EXPECT_EQ(tok.TokenId("<|im_start|>"), 151644);
  auto ids = tok.Encode("<|im_start|>user\nhi<|im_end|>", false);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 151644);
  EXPECT_EQ(ids.back(), 151645);
}

TEST(Tokenizer, GptTiktokenAndVocabMergesAgree) {
  if (!HaveData()) GTEST_SKIP() << "../shared/data absent";
  Tokenizer a = Tokenizer::FromFile(kData + "/gpt2-whisper");
  Tokenizer b = Tokenizer::FromFile(kData + "/gpt2-whisper/gpt2.tiktoken");
  std::string text =
      ReadFileToString(DLLM_SOURCE_DIR
                       "/../shared/data/tinyshakespeare/input.txt")
          .substr(0, 200000);
  EXPECT_EQ(a.Encode(text), b.Encode(text));
}

}  // namespace
}  // namespace dllm
