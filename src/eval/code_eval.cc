// Scoring a completions file against a benchmark: reading and checking the
// samples, running them in the sandbox several at a time, and the report.
#include "dllm/code_eval.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "dllm/error.h"
#include "dllm/timer.h"
#include "eval/jsonl.h"
#include "eval/problems.h"
#include "eval/sandbox.h"

namespace dllm {
namespace {

using eval::Problem;
using nlohmann::ordered_json;

constexpr size_t kStderrTail = 2000;

struct Pending {
  size_t problem;  // index into the problems
  CodeEvalSample sample;
};

// The dataset's spelling of a completion's task id: MBPP and GSM8K ids may
// come as numbers, as strings or with a "Mbpp/" / "gsm8k/" prefix (the
// layouts of other harnesses).
std::string NormalizeTaskId(CodeBenchmark b, const nlohmann::json& v,
                            const std::string& where) {
  std::string s;
  if (v.is_number_integer())
    s = StrCat(v.get<int64_t>());
  else if (v.is_string())
    s = v.get<std::string>();
  else
    Fail(where, ": \"task_id\" must be a string or an integer, got ",
         v.type_name());
  if (b == CodeBenchmark::kHumanEval && v.is_number_integer())
    return "HumanEval/" + s;
  for (const char* prefix : {"Mbpp/", "mbpp/", "gsm8k/", "GSM8K/"})
    if ((b == CodeBenchmark::kMbpp || b == CodeBenchmark::kGsm8k) &&
        s.rfind(prefix, 0) == 0)
      return s.substr(std::strlen(prefix));
  return s;
}

std::vector<Pending> ReadCompletions(const CodeEvalOptions& o,
                                     const std::vector<Problem>& all,
                                     size_t limit, size_t& skipped) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < all.size(); ++i) index[all[i].task_id] = i;
  std::vector<Pending> v;
  for (const eval::JsonLine& l : eval::ReadJsonLines(o.completions)) {
    const std::string where = StrCat(o.completions, ":", l.line);
    auto id = l.value.find("task_id");
    if (id == l.value.end() && o.benchmark == CodeBenchmark::kGsm8k)
      id = l.value.find("index");
    DLLM_CHECK(id != l.value.end(), where, ": no \"task_id\"",
               o.benchmark == CodeBenchmark::kGsm8k ? " (or \"index\")" : "");
    const std::string task = NormalizeTaskId(o.benchmark, *id, where);
    const auto it = index.find(task);
    DLLM_CHECK(it != index.end(), where, ": unknown task_id \"", task, "\" (",
               CodeBenchmarkName(o.benchmark), " has ", all.front().task_id,
               " .. ", all.back().task_id, ")");
    const auto c = l.value.find("completion");
    DLLM_CHECK(c != l.value.end() && c->is_string(), where,
               ": \"completion\" missing or not a string");
    if (it->second >= limit) {
      ++skipped;
      continue;
    }
    Pending p;
    p.problem = it->second;
    p.sample.task_id = task;
    p.sample.completion = c->get<std::string>();
    p.sample.line = l.line;
    v.push_back(std::move(p));
  }
  DLLM_CHECK(!v.empty() || skipped > 0, o.completions, ": no completions");
  return v;
}

void ScoreGsm8k(const Problem& p, CodeEvalSample& s) {
  s.extracted = ExtractGsm8kAnswer(s.completion);
  s.reference = p.test;
  s.outcome = Gsm8kAnswersMatch(s.extracted, s.reference) ? "passed" : "failed";
  s.exit_code = 0;
}

void ScoreProgram(CodeBenchmark b, const Problem& p, eval::Sandbox& sandbox,
                  CodeEvalSample& s) {
  const eval::SandboxResult r =
      sandbox.Run(eval::AssembleProgram(b, p, s.completion));
  s.outcome = eval::OutcomeName(r.outcome);
  s.exit_code = r.exit_code;
  s.signal = r.signal;
  s.seconds = r.seconds;
  const std::string& err = r.outcome == eval::Outcome::kError ? r.error : r.err;
  s.stderr_tail =
      err.size() > kStderrTail ? err.substr(err.size() - kStderrTail) : err;
}

}  // namespace

CodeBenchmark ParseCodeBenchmark(const std::string& name) {
  if (name == "humaneval") return CodeBenchmark::kHumanEval;
  if (name == "humaneval-infill") return CodeBenchmark::kHumanEvalInfill;
  if (name == "mbpp") return CodeBenchmark::kMbpp;
  if (name == "gsm8k") return CodeBenchmark::kGsm8k;
  Fail("unknown benchmark '", name,
       "' (humaneval, humaneval-infill, mbpp or gsm8k)");
}

const char* CodeBenchmarkName(CodeBenchmark b) {
  switch (b) {
    case CodeBenchmark::kHumanEval:
      return "humaneval";
    case CodeBenchmark::kHumanEvalInfill:
      return "humaneval-infill";
    case CodeBenchmark::kMbpp:
      return "mbpp";
    case CodeBenchmark::kGsm8k:
      return "gsm8k";
  }
  return "?";
}

const char* CodeBenchmarkDataFile(CodeBenchmark b) {
  switch (b) {
    case CodeBenchmark::kHumanEval:
    case CodeBenchmark::kHumanEvalInfill:
      return "human-eval/HumanEval.jsonl.gz";
    case CodeBenchmark::kMbpp:
      return "mbpp/mbpp.jsonl";
    case CodeBenchmark::kGsm8k:
      return "gsm8k/test.jsonl";
  }
  return "";
}

CodeEvalReport RunCodeEval(const CodeEvalOptions& o,
                           const CodeEvalProgressFn& progress) {
  DLLM_CHECK(o.canonical != !o.completions.empty(),
             "eval: give either a completions file or canonical, not ",
             o.canonical ? "both" : "neither");
  DLLM_CHECK(o.limit >= 0, "eval: limit must be >= 0, got ", o.limit);
  const Timer timer;
  const std::vector<Problem> all =
      eval::LoadProblems(o.benchmark, o.data, o.mbpp_split);
  const size_t limit =
      o.limit > 0 ? std::min(all.size(), size_t(o.limit)) : all.size();

  CodeEvalReport r;
  r.benchmark = CodeBenchmarkName(o.benchmark);
  r.data = o.data;
  r.completions = o.canonical ? "canonical" : o.completions;
  r.problems = limit;
  r.timeout_s = o.timeout_s;
  std::vector<Pending> work;
  if (o.canonical) {
    for (size_t i = 0; i < limit; ++i) {
      Pending p;
      p.problem = i;
      p.sample.task_id = all[i].task_id;
      p.sample.completion = all[i].reference;
      work.push_back(std::move(p));
    }
  } else {
    work = ReadCompletions(o, all, limit, r.skipped);
  }

  const bool run_code = o.benchmark != CodeBenchmark::kGsm8k;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const int parallel =
      std::max(1, std::min(o.parallel > 0 ? o.parallel : int(cores),
                           int(std::max<size_t>(work.size(), 1))));
  r.parallel = run_code ? parallel : 1;
  std::unique_ptr<eval::Sandbox> sandbox;
  if (run_code) {
    eval::SandboxOptions so;
    so.python = o.python;
    so.timeout_s = o.timeout_s;
    so.memory_bytes = o.memory_mb << 20;
    so.slots = parallel;
    so.level = o.isolation;
    sandbox = std::make_unique<eval::Sandbox>(so);
    r.isolation = sandbox->isolation().Describe();
    r.isolation_level = sandbox->isolation().level;
  } else {
    r.isolation = "none: no code is run";
    r.isolation_level = "none";
  }

  std::atomic<size_t> next{0};
  std::mutex mu;
  CodeEvalProgress prog;
  prog.total = work.size();
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < work.size();) {
      CodeEvalSample& s = work[i].sample;
      const Problem& p = all[work[i].problem];
      if (run_code)
        ScoreProgram(o.benchmark, p, *sandbox, s);
      else
        ScoreGsm8k(p, s);
      std::lock_guard<std::mutex> lock(mu);
      ++prog.done;
      prog.passed += s.outcome == "passed";
      prog.seconds = timer.Seconds();
      if (progress) progress(prog);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < r.parallel; ++t) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();

  // pass@k per task, averaged over the tasks that have samples.
  for (const char* name : {"passed", "failed", "timeout", "crashed", "error"})
    r.outcomes[name] = 0;
  std::map<size_t, std::pair<int64_t, int64_t>> per_task;  // n, c
  for (const Pending& p : work) {
    ++r.outcomes[p.sample.outcome];
    auto& nc = per_task[p.problem];
    ++nc.first;
    nc.second += p.sample.outcome == "passed";
    r.samples.push_back(p.sample);
  }
  r.tasks_scored = per_task.size();
  int64_t min_n = INT64_MAX;
  for (const auto& [task, nc] : per_task) min_n = std::min(min_n, nc.first);
  for (int k : {1, 10, 100}) {
    if (per_task.empty() || k > min_n) continue;
    double sum = 0;
    for (const auto& [task, nc] : per_task)
      sum += PassAtK(nc.first, nc.second, k);
    r.pass_at_k[k] = sum / double(per_task.size());
  }
  r.seconds = timer.Seconds();
  return r;
}

std::string CodeEvalReport::SummaryJson() const {
  ordered_json j;
  j["benchmark"] = benchmark;
  j["data"] = data;
  j["completions"] = completions;
  j["problems"] = problems;
  j["tasks_scored"] = tasks_scored;
  j["tasks_missing"] = problems - tasks_scored;
  j["samples"] = samples.size();
  j["samples_skipped"] = skipped;
  for (const auto& [k, v] : pass_at_k) j[StrCat("pass@", k)] = v;
  ordered_json counts;
  for (const char* name : {"passed", "failed", "timeout", "crashed", "error"})
    counts[name] = outcomes.count(name) ? outcomes.at(name) : 0;
  j["outcomes"] = counts;
  j["isolation"] = isolation_level;
  j["isolation_detail"] = isolation;
  j["timeout_s"] = timeout_s;
  j["parallel"] = parallel;
  j["seconds"] = seconds;
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

void WriteScoredSamples(const CodeEvalReport& r, const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "wb");
  DLLM_CHECK(f, path, ": cannot write (", std::strerror(errno), ")");
  bool ok = true;
  for (const CodeEvalSample& s : r.samples) {
    ordered_json j;
    j["task_id"] = s.task_id;
    j["completion"] = s.completion;
    j["result"] = s.outcome;
    j["passed"] = s.outcome == "passed";
    if (r.benchmark == "gsm8k") {
      j["extracted"] = s.extracted;
      j["reference"] = s.reference;
    } else {
      j["exit_code"] = s.exit_code;
      if (s.signal) j["signal"] = s.signal;
      j["seconds"] = s.seconds;
      j["stderr"] = s.stderr_tail;
    }
    if (s.line) j["line"] = s.line;
    // Completions are model output: invalid UTF-8 is replaced, not fatal.
    const std::string text =
        j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    ok = ok && std::fprintf(f, "%s\n", text.c_str()) > 0;
  }
  ok = std::fclose(f) == 0 && ok;
  DLLM_CHECK(ok, path, ": write failed (disk full?)");
}

}  // namespace dllm
