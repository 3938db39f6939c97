// dllm eval humaneval | humaneval-infill | mbpp | gsm8k: scores completions
// written by a model run (or the datasets' own solutions) with the
// benchmarks' unit tests in a sandbox, and reports pass@k. With -m MODEL it
// first generates the completions itself (eval_generate.h).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "args.h"
#include "command.h"
#include "dllm/code_eval.h"
#include "dllm/engine.h"
#include "dllm/error.h"
#include "dllm/generate_options.h"
#include "eval_generate.h"
#include "generate_options.h"

namespace dllm::cli {
namespace {

std::string Duration(double s) {
  const long t = long(s + 0.5);
  if (t >= 3600) return StrCat(t / 3600, "h", (t / 60) % 60, "m");
  if (t >= 60) return StrCat(t / 60, "m", t % 60, "s");
  return StrCat(t, "s");
}

bool IsDir(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool Exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

// --data FILE, --data FOLDER laid out like shared/data, or shared/data
// beside the source tree when it is there.
std::string DataPath(const Args& a, CodeBenchmark b) {
  std::string p = a.Get("--data");
  if (p.empty()) {
    p = StrCat(DLLM_SOURCE_DIR_STR, "/../shared/data");
    DLLM_USAGE_CHECK(IsDir(p), "--data is required (no shared data folder at ",
                     p, ")");
  }
  if (IsDir(p)) p += StrCat("/", CodeBenchmarkDataFile(b));
  DLLM_USAGE_CHECK(Exists(p), "--data: ", p, " does not exist");
  return p;
}

constexpr const char* kDescription =
    "Scores completions with the benchmark's own tests and prints a JSON "
    "summary (pass@1,\n"
    "pass@10 and pass@100 when every task has that many samples, counts per "
    "outcome).\n\n"
    "Completions: JSON Lines of {\"task_id\": ..., \"completion\": ...}, "
    "several per task for\n"
    "pass@k (the samples.jsonl of OpenAI's human-eval):\n"
    "  humaneval         task_id \"HumanEval/0\"; the program run is prompt + "
    "completion +\n"
    "                    test + check(entry_point)\n"
    "  humaneval-infill  task_id \"HumanEval/0/L3\": line 3 (0-based) of the "
    "canonical\n"
    "                    solution removed, one task per non-blank line; the "
    "completion is\n"
    "                    the missing line, run as prefix + line + suffix + "
    "tests\n"
    "  mbpp              task_id 11 (or \"11\", \"Mbpp/11\"); the completion "
    "is the whole\n"
    "                    code, run with test_setup_code and the test_list "
    "asserts\n"
    "  gsm8k             task_id (or index) = 0-based line of test.jsonl; "
    "passes when the\n"
    "                    number after \"####\" (else the last number) equals "
    "the reference\n\n"
    "Programs run in a sandbox: bubblewrap (no network, read-only /, private "
    "/tmp), else\n"
    "unshare (no network), else plain limits; always CPU, memory and "
    "file-size limits, a\n"
    "process limit (in a user namespace, or as root with a uid per slot) and "
    "a wall-clock\n"
    "timeout. The level in force is "
    "printed and recorded.\n\n"
    "With -m MODEL the completions are generated first (every option of "
    "`dllm generate`\n"
    "applies; decoding is greedy unless --temperature is given) and written "
    "to --completions\n"
    "(default <benchmark>-samples.jsonl) as they finish; --resume keeps the "
    "samples already\n"
    "there. Prompts as the common harnesses build them:\n"
    "  humaneval         0-shot: the header and docstring; stops at "
    "\\nclass \\ndef \\n# \\n@\n"
    "                    \\nprint \\nif \\n``` (the Codex list, as "
    "bigcode-evaluation-harness)\n"
    "  humaneval-infill  prefix and suffix around the hole (bidirectional "
    "diffusion models\n"
    "                    only); the completion is the first line of the "
    "middle\n"
    "  mbpp              the MBPP paper's 3-shot prompt (tasks 2, 3, 4) with "
    "[BEGIN]/[DONE];\n"
    "                    stops at [DONE]\n"
    "  gsm8k             8-shot \"Question: ...\\nAnswer: ...\" from the "
    "first train problems;\n"
    "                    stops at \\n\\n or Question: (lm-evaluation-harness)"
    "\n"
    "Prompts longer than the context lose tokens from the start (the suffix "
    "from its end).\n"
    "Exit status: 0 scored, 1 bad files, 2 bad command line.";

// Options that only make sense when the completions are generated.
constexpr const char* kGenerationOnly[] = {"--resume",     "--samples-per-task",
                                           "--batch",      "--shots",
                                           "--shots-data", "--stop"};

// What the generation used and cost, for the results JSON.
nlohmann::ordered_json GenerationJson(const Engine& engine,
                                      const CodeTaskSet& set,
                                      const EvalGenerateOptions& g,
                                      const EvalGenerateStats& st) {
  nlohmann::ordered_json j;
  j["model"] = engine.dir();
  j["completions"] = g.path;
  j["samples_per_task"] = g.samples_per_task;
  j["batch"] = g.batch;
  j["samples_generated"] = st.samples_generated;
  j["samples_resumed"] = st.samples_resumed;
  j["tokens"] = st.tokens;
  j["tokens_per_second"] = st.seconds > 0 ? double(st.tokens) / st.seconds : 0;
  j["forward_passes"] = st.forward_passes;
  j["nfe_per_sample"] =
      st.samples_generated ? double(st.sample_nfe) / st.samples_generated : 0;
  j["seconds"] = st.seconds;
  j["prompts_truncated"] = st.prompts_truncated;
  j["tokens_dropped"] = st.tokens_dropped;
  j["prompt_format"] = set.format;
  j["shots"] = set.shots;
  if (set.shots > 0) j["shots_data"] = set.shots_data;
  j["stop"] = set.stop;
  j["sampler"] = OrderName(g.gen.order);
  j["schedule"] = ScheduleName(ResolveSchedule(g.gen));
  j["options"] = nlohmann::json::parse(GenerateOptionsToJson(g.gen));
  return j;
}

int RunEvalCode(CodeBenchmark b, int argc, char** argv) {
  const std::string name = CodeBenchmarkName(b);
  Args a(StrCat("dllm eval ", name,
                " (-m MODEL | --completions FILE | --canonical) [options]"),
         kDescription);
  a.Option("-m,--model", "DIR",
           "generate the completions with this model, then score them");
  a.Option("--completions", "FILE",
           "samples to score (JSON Lines); with -m, where they are written");
  a.Flag("--canonical",
         "score the dataset's own solutions instead (the self-check)");
  a.Option(
      "--data", "PATH",
      StrCat("dataset file, or a folder holding ", CodeBenchmarkDataFile(b),
             " (default: shared/data beside the source tree)"));
  a.Option("--limit", "N", "only the first N tasks (0 = all)", "0");
  a.Option("--split", "NAME",
           "mbpp: test (task ids 11-510), validation, train, prompt or all",
           "test");
  a.Option("--parallel", "N", "programs run at once (0 = one per core)", "0");
  a.Option("--timeout", "S", "wall-clock seconds per program", "10");
  a.Option("--memory", "MB", "address-space limit per program", "1024");
  a.Option("--python", "PATH",
           "interpreter (default /usr/bin/python3, else python3 in PATH)");
  a.Option("--isolation", "LEVEL",
           "force bwrap, unshare or rlimits (default: the strongest that "
           "works)");
  a.Option("--out", "FILE", "also write the JSON summary to FILE");
  a.Option("--samples", "FILE",
           "write every sample with its result as JSON Lines");
  // Generation (-m).
  a.Flag("--resume",
         "-m: keep the samples already in --completions, generate the rest");
  a.Option("--samples-per-task", "N",
           "-m: samples per task (n of pass@k; sample j uses seed --seed + j)",
           "1");
  a.Option("--batch", "N", "-m: sequences generated at once", "4");
  a.Option("--shots", "N",
           "-m: few-shot examples (mbpp 0-3, default 3; gsm8k default 8)");
  a.Option("--shots-data", "FILE",
           "-m: where the examples come from (mbpp: the dataset; gsm8k: "
           "train.jsonl beside it)");
  AddStopOption(a);
  AddGenerateOptions(a);
  AddThreadsOption(a);
  AddDeviceOption(a);
  if (!a.Parse(argc, argv)) return a.exit_code();

  CodeEvalOptions o;
  o.benchmark = b;
  const bool generate = a.Has("--model");
  DLLM_USAGE_CHECK(
      generate ? !a.GetFlag("--canonical")
               : a.Has("--completions") != a.GetFlag("--canonical"),
      generate ? "-m MODEL generates the completions: not with --canonical"
               : StrCat("give -m MODEL, --completions FILE or --canonical",
                        a.Has("--completions") ? ", not both" : ""));
  if (!generate) {
    for (const char* opt : kGenerationOnly)
      DLLM_USAGE_CHECK(!a.Has(opt), opt, " is for generating (-m MODEL)");
    for (const GenerateOptionSpec& s : GenerateOptionSpecs())
      DLLM_USAGE_CHECK(!a.Has(std::string("--") + s.name), "--", s.name,
                       " is for generating (-m MODEL)");
  }
  o.completions = a.Get("--completions");
  if (generate && o.completions.empty())
    o.completions = StrCat(name, "-samples.jsonl");
  o.canonical = a.GetFlag("--canonical");
  o.limit = a.GetInt("--limit", 0);
  o.mbpp_split = a.Get("--split");
  DLLM_USAGE_CHECK(b == CodeBenchmark::kMbpp || !a.Has("--split"),
                   "--split is for mbpp only");
  DLLM_USAGE_CHECK(o.mbpp_split == "test" || o.mbpp_split == "validation" ||
                       o.mbpp_split == "train" || o.mbpp_split == "prompt" ||
                       o.mbpp_split == "all",
                   "--split: unknown split '", o.mbpp_split,
                   "' (test, validation, train, prompt or all)");
  o.parallel = int(a.GetInt("--parallel", 0, 1024));
  o.timeout_s = a.GetDouble("--timeout", 0.1, 3600);
  o.memory_mb = a.GetInt("--memory", 64, int64_t(1) << 20);
  o.python = a.Get("--python");
  o.isolation = a.Get("--isolation");
  DLLM_USAGE_CHECK(o.isolation.empty() || o.isolation == "bwrap" ||
                       o.isolation == "unshare" || o.isolation == "rlimits",
                   "--isolation: unknown level '", o.isolation,
                   "' (bwrap, unshare or rlimits)");
  o.data = DataPath(a, b);
  const bool tty = isatty(fileno(stderr));

  nlohmann::ordered_json generation;
  if (generate) {
    EvalGenerateOptions g;
    g.path = o.completions;
    g.resume = a.GetFlag("--resume");
    g.samples_per_task = int(a.GetInt("--samples-per-task", 1, 1000000));
    g.batch = int(a.GetInt("--batch", 1, 4096));
    g.progress = tty;
    DLLM_USAGE_CHECK(g.resume || !Exists(g.path), g.path,
                     " exists: give --resume to continue it, or remove it");
    CodePromptOptions po;
    po.shots = a.Has("--shots") ? int(a.GetInt("--shots", 0, 1000)) : -1;
    po.shots_data = a.Get("--shots-data");
    ApplyThreadsOption(a);
    auto engine = Engine::Load(a.Get("--model"), {DeviceOption(a)});
    const ModelConfig& c = engine->config();
    DLLM_CHECK(b != CodeBenchmark::kHumanEvalInfill ||
                   (!c.causal && c.block_size == 0),
               engine->dir(),
               ": humaneval-infill needs a bidirectional "
               "diffusion model (the middle must see the suffix); this one "
               "is ",
               c.causal ? "causal (autoregressive)"
                        : "block-causal "
                          "(block diffusion)");
    g.gen = ReadGenerateOptions(a, *engine);
    // The harnesses score pass@1 greedily; a model folder's sampling
    // temperature is for chat, not for benchmarks.
    if (!a.Has("--temperature")) g.gen.temperature = 0;
    if (!c.causal) {
      try {
        ValidateGenerateOptions(g.gen, 0, c.max_seq_len);
      } catch (const Error& e) {
        UsageFail(e.what());
      }
    }
    if (g.samples_per_task > 1 && g.gen.temperature == 0)
      std::fprintf(stderr,
                   "warning: --samples-per-task %d with greedy decoding: the "
                   "samples of a task will be alike (give --temperature)\n",
                   g.samples_per_task);
    CodeTaskSet set = LoadCodeTasks(o, po);
    for (const std::string& s : ReadStopOption(a)) set.stop.push_back(s);
    std::fprintf(stderr, "%s: generating with %s into %s\n", name.c_str(),
                 engine->dir().c_str(), g.path.c_str());
    const EvalGenerateStats st = GenerateCompletions(*engine, set, g);
    std::fprintf(stderr,
                 "generated %zu samples (%zu resumed) | %lld tokens | %.1f "
                 "tokens/s | %.1f NFE/sample | %s\n",
                 st.samples_generated, st.samples_resumed, (long long)st.tokens,
                 st.seconds > 0 ? double(st.tokens) / st.seconds : 0.0,
                 st.samples_generated
                     ? double(st.sample_nfe) / st.samples_generated
                     : 0.0,
                 Duration(st.seconds).c_str());
    if (st.prompts_truncated)
      std::fprintf(stderr,
                   "warning: %zu prompts were longer than the context of %d "
                   "tokens and lost %lld tokens from the start\n",
                   st.prompts_truncated, c.max_seq_len,
                   (long long)st.tokens_dropped);
    generation = GenerationJson(*engine, set, g, st);
  }

  auto progress = [&](const CodeEvalProgress& p) {
    if (!tty || p.total == 0) return;
    const int width = 30, done = int(width * p.done / p.total);
    const double eta = p.seconds / double(p.done) * double(p.total - p.done);
    std::fprintf(stderr, "\r[%s%s] %zu/%zu | passed %zu | eta %s\x1b[K",
                 std::string(size_t(done), '=').c_str(),
                 std::string(size_t(width - done), ' ').c_str(), p.done,
                 p.total, p.passed, Duration(eta).c_str());
    std::fflush(stderr);
  };
  const CodeEvalReport r = RunCodeEval(o, progress);
  if (tty) std::fputs("\r\x1b[K", stderr);

  nlohmann::ordered_json j = nlohmann::ordered_json::parse(r.SummaryJson());
  if (b == CodeBenchmark::kGsm8k) {
    const size_t passed =
        r.outcomes.count("passed") ? r.outcomes.at("passed") : 0;
    j["accuracy"] = r.samples.empty() ? 0.0 : double(passed) / r.samples.size();
  }
  j["scoring_seconds"] = r.seconds;
  if (generate) {
    j["generation_seconds"] = generation["seconds"];
    j["tokens_per_second"] = generation["tokens_per_second"];
    j["nfe_per_sample"] = generation["nfe_per_sample"];
    j["generation"] = generation;
  }
  const std::string summary =
      j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  std::printf("%s\n", summary.c_str());
  if (a.Has("--out")) {
    FILE* f = std::fopen(a.Get("--out").c_str(), "wb");
    DLLM_CHECK(f, a.Get("--out"), ": cannot write");
    const bool ok = std::fprintf(f, "%s\n", summary.c_str()) > 0;
    DLLM_CHECK(std::fclose(f) == 0 && ok, a.Get("--out"), ": write failed");
  }
  if (a.Has("--samples")) WriteScoredSamples(r, a.Get("--samples"));
  const size_t passed =
      r.outcomes.count("passed") ? r.outcomes.at("passed") : 0;
  std::fprintf(stderr, "%s: pass@1 %.2f%% | %zu/%zu samples passed | %s | %s\n",
               name.c_str(),
               100 * (r.pass_at_k.count(1) ? r.pass_at_k.at(1) : 0.0), passed,
               r.samples.size(), Duration(r.seconds).c_str(),
               r.isolation.c_str());
  if (r.problems > r.tasks_scored)
    std::fprintf(stderr,
                 "warning: %zu of %zu tasks have no completion; pass@k "
                 "averages the other %zu\n",
                 r.problems - r.tasks_scored, r.problems, r.tasks_scored);
  return 0;
}

int RunHumanEval(int argc, char** argv) {
  return RunEvalCode(CodeBenchmark::kHumanEval, argc, argv);
}
int RunHumanEvalInfill(int argc, char** argv) {
  return RunEvalCode(CodeBenchmark::kHumanEvalInfill, argc, argv);
}
int RunMbpp(int argc, char** argv) {
  return RunEvalCode(CodeBenchmark::kMbpp, argc, argv);
}
int RunGsm8k(int argc, char** argv) {
  return RunEvalCode(CodeBenchmark::kGsm8k, argc, argv);
}

}  // namespace

DLLM_COMMAND("eval humaneval",
             "pass@k of HumanEval completions, run in a sandbox", RunHumanEval);
DLLM_COMMAND("eval humaneval-infill",
             "pass@k of single-line HumanEval infills, run in a sandbox",
             RunHumanEvalInfill);
DLLM_COMMAND("eval mbpp", "pass@k of MBPP completions, run in a sandbox",
             RunMbpp);
DLLM_COMMAND("eval gsm8k", "exact-match accuracy of GSM8K answers", RunGsm8k);

}  // namespace dllm::cli
