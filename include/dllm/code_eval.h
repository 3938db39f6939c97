// Public API: scoring benchmark completions. HumanEval, its single-line
// infilling variant and MBPP run each completion with the dataset's unit
// tests in a sandbox (no network, private /tmp, resource limits, timeout);
// GSM8K compares the final number with the reference answer. The
// completions come from elsewhere (a model run writes them as JSONL), or
// `dllm eval ... -m MODEL` generates them from the prompts LoadCodeTasks
// builds.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace dllm {

enum class CodeBenchmark { kHumanEval, kHumanEvalInfill, kMbpp, kGsm8k };

// "humaneval", "humaneval-infill", "mbpp", "gsm8k"; dllm::Error otherwise.
CodeBenchmark ParseCodeBenchmark(const std::string& name);
const char* CodeBenchmarkName(CodeBenchmark b);
// The dataset file inside a folder laid out like shared/data:
// "human-eval/HumanEval.jsonl.gz", "mbpp/mbpp.jsonl", "gsm8k/test.jsonl".
const char* CodeBenchmarkDataFile(CodeBenchmark b);

struct CodeEvalOptions {
  CodeBenchmark benchmark = CodeBenchmark::kHumanEval;
  std::string data;         // the dataset file (.jsonl or .jsonl.gz)
  std::string completions;  // JSONL of {"task_id", "completion"}
  bool canonical = false;   // score the dataset's own solutions instead
  int64_t limit = 0;        // only the first N tasks; 0 = all
  // MBPP split by task id: test (11-510, the default), validation
  // (511-600), train (601-974), prompt (1-10) or all.
  std::string mbpp_split = "test";
  int parallel = 0;       // programs at once; 0 = one per core
  double timeout_s = 10;  // per program, wall clock
  int64_t memory_mb = 1024;
  std::string python;     // "" = /usr/bin/python3, else python3 in PATH
  std::string isolation;  // force "bwrap", "unshare" or "rlimits"
};

struct CodeEvalProgress {
  size_t done = 0, total = 0, passed = 0;
  double seconds = 0;
};
// Called after each scored sample, from the scoring threads one at a time.
using CodeEvalProgressFn = std::function<void(const CodeEvalProgress&)>;

struct CodeEvalSample {
  std::string task_id, completion;
  int64_t line = 0;     // in the completions file (0 for --canonical)
  std::string outcome;  // passed, failed, timeout, crashed, error
  int exit_code = -1, signal = 0;
  double seconds = 0;
  std::string stderr_tail;           // the end of the program's stderr
  std::string extracted, reference;  // GSM8K: the answers compared
};

struct CodeEvalReport {
  std::string benchmark, data, completions, isolation, isolation_level;
  size_t problems = 0;                     // tasks in the (limited) dataset
  size_t tasks_scored = 0;                 // tasks with at least one sample
  size_t skipped = 0;                      // samples of tasks beyond --limit
  std::map<std::string, size_t> outcomes;  // every outcome, zeros included
  std::map<int, double> pass_at_k;         // k where every scored task has >= k
  double timeout_s = 0, seconds = 0;
  int parallel = 0;
  std::vector<CodeEvalSample> samples;  // in the completions file's order

  std::string SummaryJson() const;  // one JSON object, pretty-printed
};

// Loads the dataset and the completions, scores every sample and returns
// the report. Bad files (missing, bad JSON with its line number, unknown or
// missing task_id) throw dllm::Error.
CodeEvalReport RunCodeEval(const CodeEvalOptions& o,
                           const CodeEvalProgressFn& progress = {});

// One JSON line per sample: its task_id and completion, "result" (the
// outcome), "passed", exit status, time, stderr tail (and for GSM8K the
// extracted and reference answers).
void WriteScoredSamples(const CodeEvalReport& r, const std::string& path);

// The unbiased pass@k estimator of the Codex paper for one task with n
// samples of which c passed: 1 - C(n-c, k) / C(n, k).
double PassAtK(int64_t n, int64_t c, int64_t k);

// GSM8K: the final answer in a model's text (the number after the last
// "####", else the last number), commas, "$" and a trailing period removed;
// "" when the text has no number.
std::string ExtractGsm8kAnswer(const std::string& text);
// Whether two extracted answers are the same number ("18" and "18.00" are).
bool Gsm8kAnswersMatch(const std::string& a, const std::string& b);

// Prompts for generating completions, built as the common harnesses build
// them (the format each benchmark uses is in CodeTaskSet::format):
//   humaneval         0-shot: the prompt is the function header and
//                     docstring; the completion is what follows
//                     (OpenAI human-eval)
//   humaneval-infill  the code before the missing line is the prompt, the
//                     code after it the suffix; the model fills the middle
//   mbpp              the MBPP paper's prompt with tasks 2, 3 and 4 as
//                     examples: "You are an expert Python programmer, and
//                     here is your task: {text} Your code should pass these
//                     tests:\n\n{asserts}\n[BEGIN]\n{code}\n[DONE]",
//                     examples joined by "\n\n" (lm-evaluation-harness)
//   gsm8k             chain of thought with the first N train problems as
//                     "Question: {q}\nAnswer: {a}" joined by "\n\n", then
//                     "Question: {q}\nAnswer:" (lm-evaluation-harness)
struct CodeTask {
  std::string task_id;  // as RunCodeEval expects it in a completions file
  std::string prompt;   // the text the model continues
  std::string suffix;   // humaneval-infill: the text after the hole
};

struct CodePromptOptions {
  int shots = -1;  // few-shot examples; -1 = the benchmark's default
                   // (humaneval 0, mbpp 3, gsm8k 8)
  // The file the examples come from; "" = the default: for mbpp the dataset
  // file itself (tasks 2-4 are in its prompt split), for gsm8k train.jsonl
  // beside the test file.
  std::string shots_data;
};

struct CodeTaskSet {
  std::vector<CodeTask> tasks;    // in dataset order, limited as o.limit says
  std::vector<std::string> stop;  // the completion ends before the earliest
  int shots = 0;
  std::string shots_data;  // "" when shots == 0
  std::string format;      // one line naming the prompt format
};

// The tasks of o.benchmark in o.data (o.mbpp_split, o.limit) with their
// prompts. Bad files and unavailable examples throw dllm::Error naming the
// file and the option that fixes it.
CodeTaskSet LoadCodeTasks(const CodeEvalOptions& o, const CodePromptOptions& p);

// The stop sequences of a benchmark's completions:
//   humaneval  "\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif",
//              "\n```" (the Codex paper's list as bigcode-evaluation-harness
//              applies it: a new top-level statement ends the function)
//   infill     "\n" (one line is missing)
//   mbpp       "[DONE]"
//   gsm8k      "\n\n", "Question:" (lm-evaluation-harness)
std::vector<std::string> CodeStopSequences(CodeBenchmark b);

// `text` cut before the earliest occurrence of any of `stop`.
std::string TruncateAtStop(const std::string& text,
                           const std::vector<std::string>& stop);

}  // namespace dllm
