// The prompt texts of generation benchmarks, one function per format, so
// that tests can check them character by character (dllm/code_eval.h
// describes the formats and where they come from).
#pragma once

#include <string>
#include <vector>

#include "eval/problems.h"

namespace dllm::eval {

// One MBPP problem as the paper's prompt states it, up to and including
// "[BEGIN]\n": the text, then every assert of its test_list.
std::string MbppQuery(const Problem& p);
// The examples (each query + its code + "\n[DONE]"), then the query; every
// piece separated by "\n\n".
std::string MbppPrompt(const Problem& query, const std::vector<Problem>& shots);

// "Question: {q}\nAnswer: {a}" for each example, then "Question: {q}\n
// Answer:", separated by "\n\n". Problems come from LoadGsm8k: prompt is the
// question, reference the worked answer.
std::string Gsm8kPrompt(const Problem& query,
                        const std::vector<Problem>& shots);

}  // namespace dllm::eval
