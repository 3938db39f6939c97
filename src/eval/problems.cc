#include "eval/problems.h"

#include "dllm/error.h"
#include "eval/jsonl.h"

namespace dllm::eval {
namespace {

std::string Field(const JsonLine& l, const std::string& path,
                  const char* name) {
  const auto it = l.value.find(name);
  DLLM_CHECK(it != l.value.end() && it->is_string(), path, ":", l.line,
             ": field \"", name, "\" missing or not a string");
  return it->get<std::string>();
}

int64_t IntField(const JsonLine& l, const std::string& path, const char* name) {
  const auto it = l.value.find(name);
  DLLM_CHECK(it != l.value.end() && it->is_number_integer(), path, ":", l.line,
             ": field \"", name, "\" missing or not an integer");
  return it->get<int64_t>();
}

std::vector<std::string> StringList(const JsonLine& l, const std::string& path,
                                    const char* name) {
  const auto it = l.value.find(name);
  DLLM_CHECK(it != l.value.end() && it->is_array(), path, ":", l.line,
             ": field \"", name, "\" missing or not a list");
  std::vector<std::string> v;
  for (const auto& e : *it) {
    DLLM_CHECK(e.is_string(), path, ":", l.line, ": \"", name,
               "\" holds a non-string");
    v.push_back(e.get<std::string>());
  }
  return v;
}

// Splits keeping each line's '\n', so that the pieces concatenate back to
// `s` exactly.
std::vector<std::string> SplitLinesKeepEnds(const std::string& s) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find('\n', pos);
    end = end == std::string::npos ? s.size() : end + 1;
    lines.push_back(s.substr(pos, end - pos));
    pos = end;
  }
  return lines;
}

// The MBPP paper's split by task id.
bool InMbppSplit(int64_t id, const std::string& split) {
  if (split == "all") return true;
  if (split == "prompt") return id >= 1 && id <= 10;
  if (split == "test") return id >= 11 && id <= 510;
  if (split == "validation") return id >= 511 && id <= 600;
  if (split == "train") return id >= 601;
  Fail("unknown MBPP split '", split,
       "' (test, validation, train, prompt or all)");
}

}  // namespace

std::vector<Problem> LoadHumanEval(const std::string& path) {
  std::vector<Problem> v;
  for (const JsonLine& l : ReadJsonLines(path)) {
    Problem p;
    p.task_id = Field(l, path, "task_id");
    p.prompt = Field(l, path, "prompt");
    p.reference = Field(l, path, "canonical_solution");
    p.test = Field(l, path, "test");
    p.entry_point = Field(l, path, "entry_point");
    v.push_back(std::move(p));
  }
  DLLM_CHECK(!v.empty(), path, ": no problems");
  return v;
}

std::vector<Problem> MakeInfillProblems(const std::vector<Problem>& humaneval) {
  std::vector<Problem> v;
  for (const Problem& h : humaneval) {
    const std::vector<std::string> lines = SplitLinesKeepEnds(h.reference);
    for (size_t i = 0; i < lines.size(); ++i) {
      if (lines[i].find_first_not_of(" \t\r\n") == std::string::npos) continue;
      Problem p = h;
      p.task_id = StrCat(h.task_id, "/L", i);
      p.prompt = h.prompt;
      for (size_t j = 0; j < i; ++j) p.prompt += lines[j];
      p.suffix.clear();
      for (size_t j = i + 1; j < lines.size(); ++j) p.suffix += lines[j];
      p.reference = lines[i];
      v.push_back(std::move(p));
    }
  }
  return v;
}

std::vector<Problem> LoadMbpp(const std::string& path,
                              const std::string& split) {
  InMbppSplit(1, split);  // a bad split is an error even for an empty file
  std::vector<Problem> v;
  for (const JsonLine& l : ReadJsonLines(path)) {
    const int64_t id = IntField(l, path, "task_id");
    if (!InMbppSplit(id, split)) continue;
    Problem p;
    p.task_id = StrCat(id);
    p.reference = Field(l, path, "code");
    // The original layout names the asserts test_list; DeepSeek-Coder's copy
    // names them test and has no setup code.
    const bool original = l.value.contains("test_list");
    p.prompt = Field(l, path, original ? "text" : "prompt");
    const std::string setup =
        original ? Field(l, path, "test_setup_code") : std::string();
    p.test = setup + "\n";
    p.asserts = StringList(l, path, original ? "test_list" : "test");
    for (const std::string& t : p.asserts) p.test += t + "\n";
    v.push_back(std::move(p));
  }
  DLLM_CHECK(!v.empty(), path, ": no MBPP problems in split '", split, "'");
  return v;
}

std::vector<Problem> LoadGsm8k(const std::string& path) {
  std::vector<Problem> v;
  for (const JsonLine& l : ReadJsonLines(path)) {
    Problem p;
    p.task_id = StrCat(v.size());
    p.prompt = Field(l, path, "question");
    p.reference = Field(l, path, "answer");
    const size_t mark = p.reference.rfind("####");
    DLLM_CHECK(mark != std::string::npos, path, ":", l.line,
               ": the answer has no \"#### N\" line");
    p.test = ExtractGsm8kAnswer(p.reference.substr(mark));
    DLLM_CHECK(!p.test.empty(), path, ":", l.line,
               ": no number after \"####\"");
    v.push_back(std::move(p));
  }
  DLLM_CHECK(!v.empty(), path, ": no problems");
  return v;
}

std::vector<Problem> LoadProblems(CodeBenchmark b, const std::string& path,
                                  const std::string& mbpp_split) {
  switch (b) {
    case CodeBenchmark::kHumanEval:
      return LoadHumanEval(path);
    case CodeBenchmark::kHumanEvalInfill:
      return MakeInfillProblems(LoadHumanEval(path));
    case CodeBenchmark::kMbpp:
      return LoadMbpp(path, mbpp_split);
    case CodeBenchmark::kGsm8k:
      return LoadGsm8k(path);
  }
  return {};
}

std::string AssembleProgram(CodeBenchmark b, const Problem& p,
                            const std::string& completion) {
  const std::string check =
      "\n" + p.test + "\n" + "check(" + p.entry_point + ")";
  switch (b) {
    case CodeBenchmark::kHumanEval:
      return p.prompt + completion + check;
    case CodeBenchmark::kHumanEvalInfill: {
      std::string middle = completion;
      if (middle.empty() || middle.back() != '\n') middle += '\n';
      return p.prompt + middle + p.suffix + check;
    }
    case CodeBenchmark::kMbpp:
      return completion + "\n" + p.test;
    case CodeBenchmark::kGsm8k:
      break;
  }
  Fail("internal error: GSM8K answers are compared, not run");
}

}  // namespace dllm::eval
