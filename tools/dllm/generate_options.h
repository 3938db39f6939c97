// Generation options on the command line, shared by `dllm generate` and
// `dllm chat`: every entry of the library's option table (dllm/
// generate_options.h) becomes a --flag, so the CLI and the server cannot
// drift apart.
#pragma once

#include <string>
#include <vector>

#include "args.h"
#include "dllm/engine.h"
#include "dllm/generate.h"

namespace dllm::cli {

void AddGenerateOptions(Args& a);
// The model's defaults with the options given on the command line applied.
GenerateOptions ReadGenerateOptions(const Args& a, const Engine& engine);
void PrintGenerateSummary(const GenerateStats& s);

// --stop TEXT: a string that ends the generated text (C escapes such as \n
// and \t are decoded, so --stop '\n\n' stops at a blank line).
void AddStopOption(Args& a);
std::vector<std::string> ReadStopOption(const Args& a);

}  // namespace dllm::cli
