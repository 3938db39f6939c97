// dllm eval choice: multiple-choice accuracy by the model's conditional
// likelihood of each choice (MMLU / ARC / HellaSwag style, as the LLaDA
// paper scores them).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "args.h"
#include "command.h"
#include "dllm/engine.h"
#include "dllm/error.h"
#include "dllm/likelihood.h"
#include "dllm/timer.h"

namespace dllm::cli {
namespace {

struct Question {
  std::string context;
  std::vector<std::string> choices;
  int answer = 0;
};

std::vector<Question> ReadQuestions(const std::string& path) {
  std::ifstream f(path);
  DLLM_CHECK(f.good(), path, ": cannot open");
  std::vector<Question> qs;
  std::string line;
  for (int n = 1; std::getline(f, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    DLLM_CHECK(!j.is_discarded() && j.is_object(), path, ":", n,
               ": not a JSON object");
    Question q;
    DLLM_CHECK(j.contains("context") && j["context"].is_string(), path, ":", n,
               ": needs \"context\" (a string)");
    DLLM_CHECK(j.contains("choices") && j["choices"].is_array() &&
                   j["choices"].size() >= 2,
               path, ":", n, ": needs \"choices\" (at least two strings)");
    q.context = j["context"];
    for (const auto& c : j["choices"]) {
      DLLM_CHECK(c.is_string() && !c.get<std::string>().empty(), path, ":", n,
                 ": every choice must be a non-empty string");
      q.choices.push_back(c);
    }
    DLLM_CHECK(j.contains("answer") && j["answer"].is_number_integer() &&
                   j["answer"] >= 0 && j["answer"] < int(q.choices.size()),
               path, ":", n,
               ": needs \"answer\", the index of the right choice");
    q.answer = j["answer"];
    qs.push_back(std::move(q));
  }
  DLLM_CHECK(!qs.empty(), path, ": no questions");
  return qs;
}

int RunEvalChoice(int argc, char** argv) {
  Args a(
      "dllm eval choice -m MODEL --data FILE.jsonl [options]",
      "Multiple choice by likelihood: each line of FILE is {\"context\": "
      "\"...\", \"choices\":\n"
      "[\"...\", ...], \"answer\": INDEX}; the choice with the lowest "
      "-log p(choice | context)\n"
      "wins (acc), or the lowest per byte of the choice (acc_norm, as "
      "lm-evaluation-harness).\n"
      "Causal models are scored exactly; diffusion models by the Monte-Carlo "
      "NELBO estimate of\n"
      "the LLaDA paper (--draws mask draws per choice, the same draws for "
      "every choice).\n"
      "Choices are encoded on their own and appended to the context's ids: "
      "start them with\n"
      "a space where the text would have one. Prints the summary as JSON.");
  a.Option("-m,--model", "DIR", "model folder or GGUF file");
  a.Option("--data", "FILE", "questions, one JSON object per line");
  a.Option("--draws", "N", "diffusion: mask draws per choice", "64");
  a.Option("--batch", "N", "sequences per forward pass", "16");
  a.Option("--seed", "N", "seed of the mask draws", "0");
  a.Option("--limit", "N", "score the first N questions only (0 = all)", "0");
  a.Option("--samples", "FILE",
           "also write one JSON line per question (choices' nll, pick)");
  AddThreadsOption(a);
  AddDeviceOption(a);
  if (!a.Parse(argc, argv)) return a.exit_code();
  a.Require("--model");
  a.Require("--data");
  ApplyThreadsOption(a);
  LikelihoodOptions lo;
  lo.draws = int(a.GetInt("--draws", 1, 1 << 20));
  lo.batch = int(a.GetInt("--batch", 1, 4096));
  lo.seed = uint64_t(a.GetInt("--seed", 0, INT64_MAX));
  const int64_t limit = a.GetInt("--limit", 0, INT64_MAX);

  std::vector<Question> qs = ReadQuestions(a.Get("--data"));
  if (limit > 0 && int64_t(qs.size()) > limit) qs.resize(size_t(limit));
  auto engine = Engine::Load(a.Get("--model"), {DeviceOption(a)});
  std::FILE* samples = nullptr;
  if (a.Has("--samples")) {
    samples = std::fopen(a.Get("--samples").c_str(), "w");
    DLLM_CHECK(samples != nullptr, a.Get("--samples"),
               ": cannot open for writing");
  }
  const bool tty = isatty(fileno(stderr));
  Timer wall;
  int64_t right = 0, right_norm = 0, passes = 0;
  for (size_t i = 0; i < qs.size(); ++i) {
    const Question& q = qs[i];
    const std::vector<int32_t> ctx = engine->Encode(
        q.context, true, "the context of question " + std::to_string(i + 1));
    nlohmann::json nlls = nlohmann::json::array();
    int best = 0, best_norm = 0;
    double best_nll = INFINITY, best_per_byte = INFINITY;
    for (size_t k = 0; k < q.choices.size(); ++k) {
      const std::vector<int32_t> ans = engine->Encode(
          q.choices[k], false, "a choice of question " + std::to_string(i + 1));
      const Likelihood l = AnswerLikelihood(engine->model(), ctx, ans, lo);
      passes += l.forward_passes;
      const double per_byte = l.nll / double(q.choices[k].size());
      if (l.nll < best_nll) best_nll = l.nll, best = int(k);
      if (per_byte < best_per_byte)
        best_per_byte = per_byte, best_norm = int(k);
      nlls.push_back(l.nll);
    }
    right += best == q.answer;
    right_norm += best_norm == q.answer;
    if (samples) {
      const nlohmann::json s = {{"index", i},
                                {"nll", nlls},
                                {"pick", best},
                                {"pick_norm", best_norm},
                                {"answer", q.answer}};
      std::fprintf(samples, "%s\n", s.dump().c_str());
      std::fflush(samples);
    }
    if (tty) {
      const double eta =
          wall.Seconds() / double(i + 1) * double(qs.size() - i - 1);
      std::fprintf(stderr, "\r%zu/%zu | acc %.3f | eta %.0fs\x1b[K", i + 1,
                   qs.size(), double(right) / double(i + 1), eta);
    }
  }
  if (tty) std::fputs("\n", stderr);
  if (samples) std::fclose(samples);
  const double n = double(qs.size());
  const nlohmann::json out = {
      {"task", "choice"},
      {"data", a.Get("--data")},
      {"model", a.Get("--model")},
      {"questions", qs.size()},
      {"acc", double(right) / n},
      {"acc_norm", double(right_norm) / n},
      {"estimator", engine->config().causal ? "exact" : "mc-nelbo"},
      {"draws", engine->config().causal ? 0 : lo.draws},
      {"forward_passes", passes},
      {"seconds", wall.Seconds()}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace

DLLM_COMMAND("eval choice",
             "multiple-choice accuracy by each choice's likelihood",
             RunEvalChoice);

}  // namespace dllm::cli
