// Benchmark problems as the harness needs them, and the programs that test
// a completion, assembled the way the official harnesses assemble them.
#pragma once

#include <string>
#include <vector>

#include "dllm/code_eval.h"

namespace dllm::eval {

struct Problem {
  std::string task_id;  // "HumanEval/0", "HumanEval/0/L3", MBPP "11", GSM8K "0"
  std::string prompt;   // the model's input (infill: the code before the hole)
  std::string suffix;   // infill: the code after the hole
  std::string reference;    // the dataset's own completion
  std::string test;         // HumanEval: test code; MBPP: setup + asserts
  std::string entry_point;  // HumanEval: the function check() is given
  std::vector<std::string> asserts;  // MBPP: the test_list, one per entry
};

// HumanEval.jsonl(.gz): task_id, prompt, canonical_solution, test,
// entry_point.
std::vector<Problem> LoadHumanEval(const std::string& path);

// Single-line infilling derived from HumanEval: one task per non-blank line
// of each canonical solution, named "<task_id>/L<i>" with i the 0-based line
// index in the solution. The model sees prefix = prompt + the lines before
// and suffix = the lines after, and writes the missing line.
std::vector<Problem> MakeInfillProblems(const std::vector<Problem>& humaneval);

// mbpp.jsonl (task_id, text, code, test_setup_code, test_list) or the
// DeepSeek-Coder layout (task_id, prompt, code, test), restricted to `split`
// (test, validation, train, prompt or all: the task id ranges of the MBPP
// paper).
std::vector<Problem> LoadMbpp(const std::string& path,
                              const std::string& split);

// GSM8K test.jsonl (question, answer ending in "#### N"): task ids are the
// 0-based line numbers; reference = the full answer, test = N.
std::vector<Problem> LoadGsm8k(const std::string& path);

std::vector<Problem> LoadProblems(CodeBenchmark b, const std::string& path,
                                  const std::string& mbpp_split);

// The Python program that passes (exits 0) exactly when `completion` solves
// the problem:
//   HumanEval: prompt + completion + "\n" + test + "\n" + "check(entry_point)"
//   infill:    prefix + completion (+ "\n" unless it ends in one) + suffix,
//              then the HumanEval tail
//   MBPP:      completion + "\n" + test_setup_code + "\n" + the asserts
std::string AssembleProgram(CodeBenchmark b, const Problem& p,
                            const std::string& completion);

}  // namespace dllm::eval
