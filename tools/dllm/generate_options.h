// Generation options shared by `dllm generate` and `dllm chat`.
#pragma once

#include <string>
#include <vector>

#include "args.h"
#include "dllm/config.h"
#include "dllm/generate.h"

namespace dllm {
class Tokenizer;
}

namespace dllm::cli {

void AddGenerateOptions(Args& a);
GenerateOptions ReadGenerateOptions(const Args& a, const ModelConfig& c);
// EOS-like ids: the config's eos_token_id plus the tokenizer's end-of-turn
// tokens.
std::vector<int32_t> ModelEosIds(const ModelConfig& c, const Tokenizer* tok);
// The model folder's tokenizer.json, or an empty tokenizer when absent.
Tokenizer LoadModelTokenizer(const std::string& dir);
void PrintGenerateSummary(const GenerateStats& s);

}  // namespace dllm::cli
