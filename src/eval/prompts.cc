// Benchmark prompts for generation: the harness formats (prompts.h) and the
// task list LoadCodeTasks hands to a model run.
#include "eval/prompts.h"

#include <algorithm>
#include <map>

#include "dllm/code_eval.h"
#include "dllm/error.h"

namespace dllm {
namespace eval {

std::string MbppQuery(const Problem& p) {
  std::string s =
      "You are an expert Python programmer, and here is your task: " +
      p.prompt + " Your code should pass these tests:\n\n";
  for (size_t i = 0; i < p.asserts.size(); ++i)
    s += (i ? "\n" : "") + p.asserts[i];
  return s + "\n[BEGIN]\n";
}

std::string MbppPrompt(const Problem& query,
                       const std::vector<Problem>& shots) {
  std::string s;
  for (const Problem& e : shots)
    s += MbppQuery(e) + e.reference + "\n[DONE]" + "\n\n";
  return s + MbppQuery(query);
}

std::string Gsm8kPrompt(const Problem& query,
                        const std::vector<Problem>& shots) {
  std::string s;
  for (const Problem& e : shots)
    s += "Question: " + e.prompt + "\nAnswer: " + e.reference + "\n\n";
  return s + "Question: " + query.prompt + "\nAnswer:";
}

}  // namespace eval

namespace {

using eval::Problem;

// The MBPP paper's few-shot examples, in the order it shows them.
constexpr const char* kMbppShotIds[] = {"2", "3", "4"};
constexpr int kGsm8kDefaultShots = 8;

std::string Dirname(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::vector<Problem> MbppShots(const std::string& path, int n) {
  DLLM_CHECK(n <= 3, "mbpp: --shots ", n,
             " is more than the 3 examples of the MBPP paper (tasks 2, 3, 4)");
  std::map<std::string, Problem> by_id;
  for (Problem& p : eval::LoadMbpp(path, "all"))
    by_id[p.task_id] = std::move(p);
  std::vector<Problem> shots;
  for (int i = 0; i < n; ++i) {
    const auto it = by_id.find(kMbppShotIds[i]);
    DLLM_CHECK(it != by_id.end(), path, ": has no MBPP task ", kMbppShotIds[i],
               " for the few-shot examples (give --shots-data with the full "
               "mbpp.jsonl, or --shots 0)");
    shots.push_back(it->second);
  }
  return shots;
}

std::vector<Problem> Gsm8kShots(const std::string& path, int n) {
  std::vector<Problem> train = eval::LoadGsm8k(path);
  DLLM_CHECK(int64_t(train.size()) >= n, path, ": has ", train.size(),
             " problems, fewer than --shots ", n);
  train.resize(size_t(n));
  return train;
}

}  // namespace

std::vector<std::string> CodeStopSequences(CodeBenchmark b) {
  switch (b) {
    case CodeBenchmark::kHumanEval:
      return {"\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```"};
    case CodeBenchmark::kHumanEvalInfill:
      return {"\n"};
    case CodeBenchmark::kMbpp:
      return {"[DONE]"};
    case CodeBenchmark::kGsm8k:
      return {"\n\n", "Question:"};
  }
  return {};
}

std::string TruncateAtStop(const std::string& text,
                           const std::vector<std::string>& stop) {
  size_t cut = text.size();
  for (const std::string& s : stop)
    if (!s.empty()) cut = std::min(cut, text.find(s));
  return text.substr(0, cut);
}

CodeTaskSet LoadCodeTasks(const CodeEvalOptions& o,
                          const CodePromptOptions& po) {
  DLLM_CHECK(o.limit >= 0, "eval: limit must be >= 0, got ", o.limit);
  DLLM_CHECK(po.shots >= -1, "eval: shots must be >= 0, got ", po.shots);
  const CodeBenchmark b = o.benchmark;
  std::vector<Problem> all = eval::LoadProblems(b, o.data, o.mbpp_split);
  if (o.limit > 0 && size_t(o.limit) < all.size()) all.resize(size_t(o.limit));

  CodeTaskSet set;
  set.stop = CodeStopSequences(b);
  std::vector<Problem> shots;
  switch (b) {
    case CodeBenchmark::kHumanEval:
    case CodeBenchmark::kHumanEvalInfill:
      DLLM_CHECK(po.shots <= 0, CodeBenchmarkName(b),
                 ": prompts are 0-shot (the function header and docstring); "
                 "--shots is for mbpp and gsm8k");
      set.format = b == CodeBenchmark::kHumanEval
                       ? "human-eval 0-shot: prompt = function header + "
                         "docstring"
                       : "single-line infilling: prefix = code before the "
                         "line, suffix = code after it";
      break;
    case CodeBenchmark::kMbpp:
      set.shots = po.shots < 0 ? 3 : po.shots;
      set.format = "MBPP paper prompt, [BEGIN]/[DONE], examples = tasks 2-4";
      if (set.shots > 0) {
        set.shots_data = po.shots_data.empty() ? o.data : po.shots_data;
        shots = MbppShots(set.shots_data, set.shots);
      }
      break;
    case CodeBenchmark::kGsm8k:
      set.shots = po.shots < 0 ? kGsm8kDefaultShots : po.shots;
      set.format =
          "Question: ...\\nAnswer: ... chain of thought, examples = the "
          "first train problems";
      if (set.shots > 0) {
        set.shots_data = po.shots_data.empty()
                             ? Dirname(o.data) + "/train.jsonl"
                             : po.shots_data;
        try {
          shots = Gsm8kShots(set.shots_data, set.shots);
        } catch (const Error& e) {
          Fail(e.what(),
               po.shots_data.empty()
                   ? " (the few-shot examples: give --shots-data FILE or "
                     "--shots 0)"
                   : "");
        }
      }
      break;
  }
  for (const Problem& p : all) {
    CodeTask t;
    t.task_id = p.task_id;
    switch (b) {
      case CodeBenchmark::kHumanEval:
        t.prompt = p.prompt;
        break;
      case CodeBenchmark::kHumanEvalInfill:
        t.prompt = p.prompt;
        t.suffix = p.suffix;
        break;
      case CodeBenchmark::kMbpp:
        t.prompt = eval::MbppPrompt(p, shots);
        break;
      case CodeBenchmark::kGsm8k:
        t.prompt = eval::Gsm8kPrompt(p, shots);
        break;
    }
    set.tasks.push_back(std::move(t));
  }
  return set;
}

}  // namespace dllm
