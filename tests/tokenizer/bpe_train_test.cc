// BPE training: the result loads in dllm::Tokenizer and in the Hugging Face
// library and both encode held-out text identically; round trips.
#include "dllm/bpe_train.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "base/mmap_file.h"
#include "dllm/error.h"
#include "dllm/tokenizer.h"
#include "hf_reference.h"
#include "tokenizer/utf8.h"

namespace dllm {
namespace {

// A corpus that is always there: this repository's tokenizer sources.
std::vector<std::string> RepoCorpus() {
  std::vector<std::string> out;
  for (const char* f :
       {"src/tokenizer/tokenizer.cc", "src/tokenizer/chat_template.cc",
        "src/tokenizer/bpe.cc", "src/tokenizer/utf8.cc",
        "src/tokenizer/regex.cc"})
    out.push_back(ReadFileToString(std::string(DLLM_SOURCE_DIR "/") + f));
  return out;
}

TEST(BpeTrain, TrainsLoadsAndRoundTrips) {
  BpeTrainOptions o;
  o.vocab_size = 600;
  o.special_tokens = {"<|endoftext|>", "<|mask|>"};
  BpeTrainStats st;
  std::string json = TrainBpe(RepoCorpus(), o, &st);
  EXPECT_EQ(st.vocab_size, 600u);
  EXPECT_GT(st.merges, 300u);
  Tokenizer tok = Tokenizer::FromJson(json, "trained");
  EXPECT_EQ(tok.vocab_size(), 600u);
  EXPECT_EQ(tok.TokenId("<|endoftext|>"), 0);
  EXPECT_EQ(tok.TokenId("<|mask|>"), 1);
  EXPECT_TRUE(tok.IsSpecial(1));
  std::string text =
      "for (size_t i = 0; i < n; ++i) { out.push_back(x); } <|mask|> done";
  auto ids = tok.Encode(text);
  EXPECT_LT(ids.size(), text.size() / 2);  // merges learned something
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 1),
            1);  // "<|mask|>" is one token
  EXPECT_EQ(tok.Decode(ids), text);
  // Deterministic.
  EXPECT_EQ(TrainBpe(RepoCorpus(), o), json);
}

TEST(BpeTrain, RejectsBadOptions) {
  BpeTrainOptions o;
  o.vocab_size = 100;
  EXPECT_THROW(TrainBpe({"abc"}, o), Error);
  o.vocab_size = 300;
  o.special_tokens = {""};
  EXPECT_THROW(TrainBpe({"abc"}, o), Error);
  EXPECT_THROW(TrainBpeFromFiles({"/nonexistent/file.txt"}, BpeTrainOptions{}),
               Error);
}

// decode(encode(x)) == x for random valid UTF-8.
TEST(BpeTrain, RoundTripProperty) {
  BpeTrainOptions o;
  o.vocab_size = 800;
  o.special_tokens = {"<|endoftext|>"};
  Tokenizer tok = Tokenizer::FromJson(TrainBpe(RepoCorpus(), o), "trained");
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> pick(0, 9);
  for (int it = 0; it < 2000; ++it) {
    std::string s;
    int n = rng() % 40;
    for (int k = 0; k < n; ++k) {
      uint32_t cp;
      switch (pick(rng)) {
        case 0:
          cp = 0x20;
          break;
        case 1:
          cp = '\n';
          break;
        case 2:
          cp = 0x80 + rng() % 0x780;
          break;
        case 3:
          cp = 0x800 + rng() % 0xD000;
          break;
        case 4:
          cp = 0x10000 + rng() % 0xFFFFF;
          break;
        case 5:
          cp = 0x300 + rng() % 0x70;
          break;  // combining marks
        default:
          cp = 0x21 + rng() % 0x5E;
          break;
      }
      if (cp >= 0xD800 && cp < 0xE000) cp = 'x';
      utf8::Append(&s, cp);
    }
    if (rng() % 10 == 0) s += "<|endoftext|>";
    ASSERT_EQ(tok.Decode(tok.Encode(s)), s) << nlohmann::json(s).dump();
  }
}

// The trained file loads in the Hugging Face library and encodes held-out text
// identically.
TEST(BpeTrain, HfLoadsAndEncodesIdentically) {
  if (!testing::HaveNodePackage("tokenizers"))
    GTEST_SKIP() << "run scripts/tokenizer/setup.sh";
  std::vector<std::string> corpus;
  std::string shakes = testing::SharedData("tinyshakespeare/input.txt");
  std::string held_out;
  BpeTrainOptions o;
  o.special_tokens = {"<|endoftext|>", "<|mask|>", "<|user|>", "<|assistant|>"};
  if (!shakes.empty()) {
    std::string all = ReadFileToString(shakes);
    size_t cut = all.size() * 9 / 10;
    corpus.push_back(all.substr(0, cut));
    held_out = all.substr(cut);
    o.vocab_size = 2048;
  } else {
    corpus = RepoCorpus();
    held_out = corpus.back();
    corpus.pop_back();
    o.vocab_size = 700;
  }
  std::string json = TrainBpe(corpus, o);
  std::string dir = testing::MakeTempDir();
  std::string path = dir + "/tokenizer.json";
  WriteFileAtomic(path, json.data(), json.size());
  Tokenizer tok = Tokenizer::FromFile(path);
  // Held-out text in chunks, plus the generic parity set.
  std::vector<std::string> texts;
  for (size_t i = 0; i < held_out.size(); i += 2000)
    texts.push_back(held_out.substr(i, 2000));
  for (const auto& t : testing::ParityTexts()) texts.push_back(t.text);
  texts.push_back("<|user|>hi<|mask|><|mask|><|assistant|>");
  nlohmann::json ref = testing::HfEncode(path, texts, true);
  int same = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    auto want = ref["ids"][i].get<std::vector<int32_t>>();
    auto got = tok.Encode(texts[i]);
    EXPECT_EQ(got, want) << "text " << i;
    same += got == want;
    EXPECT_EQ(tok.Decode(got), ref["decoded"][i].get<std::string>())
        << "text " << i;
  }
  std::printf("[trained parity] vocab %zu: %d/%zu texts identical\n",
              tok.vocab_size(), same, texts.size());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace dllm
