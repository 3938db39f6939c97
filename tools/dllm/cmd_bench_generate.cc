// dllm bench generate: end-to-end generation speed and quality of presets
// (diffusion uncached, Fast-dLLM prefix and dual caches, threshold
// decoding, and AR decoding of an AR twin with its KV cache) on the same
// prompts, beside this machine's SGEMM and memory-bandwidth ceilings
// measured in the same run.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "args.h"
#include "command.h"
#include "dllm/ceiling.h"
#include "dllm/engine.h"
#include "dllm/error.h"
#include "dllm/generate.h"
#include "dllm/generate_options.h"
#include "dllm/likelihood.h"
#include "dllm/model.h"
#include "dllm/runtime.h"
#include "dllm/timer.h"
#include "generate_options.h"

namespace dllm::cli {
namespace {

const char* const kDefaultPrompts[] = {
    "ROMEO:",         "JULIET:",       "KING RICHARD III:", "First Citizen:",
    "MENENIUS:\nWhy", "LADY CAPULET:", "GLOUCESTER:\nNow",  "HAMLET:"};

struct Preset {
  std::string name;
  bool ar = false;  // runs the AR twin
  GenerateOptions opt;
};

// Time to first token: when the first generated position became final.
struct Probe {
  Timer timer;
  double ttft_ms = -1;
};

bool OnStep(const StepInfo& info, void* user) {
  auto* p = static_cast<Probe*>(user);
  const Canvas& c = (*info.canvases)[0];
  if (p->ttft_ms < 0 && c.prompt_len < c.gen_end &&
      !c.masked[size_t(c.prompt_len)])
    p->ttft_ms = p->timer.Millis();
  return true;
}

// Mean negative log-likelihood (nats per token) of `tokens` after `prompt`
// under a causal judge model (exact: one forward pass).
double JudgeNll(Model& judge, const std::vector<int32_t>& prompt,
                const std::vector<int32_t>& tokens) {
  if (tokens.empty() || prompt.empty()) return NAN;
  return AnswerLikelihood(judge, prompt, tokens).nll / double(tokens.size());
}

// Words of a text: maximal runs of letters and apostrophes, lowercased.
std::vector<std::string> Words(const std::string& text) {
  std::vector<std::string> out;
  std::string w;
  for (char ch : text) {
    const unsigned char u = static_cast<unsigned char>(ch);
    if (std::isalpha(u) || ch == '\'') {
      w += char(std::tolower(u));
    } else if (!w.empty()) {
      out.push_back(w);
      w.clear();
    }
  }
  if (!w.empty()) out.push_back(w);
  return out;
}

// Diversity and realism of a preset's samples, pooled over its prompts (so
// that a model repeating itself cannot look good on likelihood alone): the
// entropy of the token unigram distribution, distinct-2 (unique token
// bigrams over all bigrams, within samples), and the share of words that
// occur in the reference text.
struct Pool {
  std::map<int32_t, int64_t> unigrams;
  std::map<std::pair<int32_t, int32_t>, int64_t> bigrams;
  int64_t n_tokens = 0, n_bigrams = 0, words = 0, known_words = 0;

  void Add(const std::vector<int32_t>& tokens, const std::string& text,
           const std::set<std::string>* vocabulary) {
    for (size_t i = 0; i < tokens.size(); ++i) {
      ++unigrams[tokens[i]], ++n_tokens;
      if (i > 0) ++bigrams[{tokens[i - 1], tokens[i]}], ++n_bigrams;
    }
    if (vocabulary)
      for (const std::string& w : Words(text)) {
        ++words;
        known_words += vocabulary->count(w) > 0;
      }
  }
  void Report(nlohmann::json& s) const {
    if (n_tokens == 0) return;
    double h = 0;
    for (const auto& [t, n] : unigrams) {
      const double p = double(n) / double(n_tokens);
      h -= p * std::log(p);
    }
    s["unigram_entropy_nats"] = h;
    if (n_bigrams) s["distinct_2"] = double(bigrams.size()) / double(n_bigrams);
    if (words) s["words_in_reference"] = double(known_words) / double(words);
  }
};

int RunBenchGenerate(int argc, char** argv) {
  Args a(
      "dllm bench generate -m DIR [--ar-model DIR] [--presets LIST] "
      "[generation options]",
      "Generates from the same prompts with several presets, one prompt at a "
      "time, and prints JSON\n"
      "lines: per (preset, prompt) the\n"
      "settings, prompt and tokens, NFE, tokens per forward, ms per step, "
      "tokens/s, time to first\n"
      "token, peak RSS, the fraction of tokens equal to the uncached preset's "
      "and, with --ar-model,\n"
      "the AR twin's NLL of the sample (a judge of quality); then one summary "
      "line per preset, and last the machine's SGEMM and copy-bandwidth "
      "ceilings.\n"
      "Equality is against the first uncached preset of the same schedule "
      "(ar: ar-nocache) run before.\n"
      "Presets: uncached, prefix, dual (Fast-dLLM caches refreshed at block "
      "starts, or every\n"
      "--refresh N steps), threshold (--threshold TAU, uncached), "
      "threshold-dual, ar (the AR twin\n"
      "with its KV cache), ar-nocache, and real (windows of "
      "--reference-text). Each summary also has\n"
      "the unigram entropy of the pooled sample tokens, distinct-2, and with "
      "--reference-text the\n"
      "share of words found in that text.");
  a.Option("-m,--model", "DIR", "diffusion model folder");
  a.Option("--ar-model", "DIR", "AR twin (same tokenizer): preset ar, judge");
  a.Option("--prompts", "FILE", "prompts, one per line (default: 8 built in)");
  a.Option("--presets", "LIST", "comma-separated presets",
           "uncached,prefix,dual,threshold,threshold-dual,ar-nocache,ar");
  a.Option("--n-prompts", "N", "use the first N prompts", "8");
  a.Option("--reference-text", "FILE",
           "real text (e.g. the training corpus): each summary gets the share "
           "of its words found in it, and preset 'real' scores windows of "
           "its last 10% with the same measures");
  AddGenerateOptions(a);
  AddThreadsOption(a);
  AddDeviceOption(a);
  if (!a.Parse(argc, argv)) return a.exit_code();
  DLLM_USAGE_CHECK(a.Has("--model"), "bench generate: -m DIR is required");
  ApplyThreadsOption(a);
  const int threads = NumThreads();
  auto engine = Engine::Load(a.Get("--model"), {DeviceOption(a)});
  std::unique_ptr<Engine> ar;
  if (a.Has("--ar-model")) {
    ar = Engine::Load(a.Get("--ar-model"), {DeviceOption(a)});
    DLLM_CHECK(ar->config().causal, a.Get("--ar-model"),
               ": --ar-model must be a causal model (config causal true)");
    DLLM_CHECK(ar->config().vocab_size == engine->config().vocab_size,
               a.Get("--ar-model"),
               ": the AR twin must share the diffusion model's vocabulary");
  }
  std::vector<std::string> texts;
  if (a.Has("--prompts")) {
    std::ifstream in(a.Get("--prompts"));
    DLLM_CHECK(in.good(), "bench generate: cannot read ", a.Get("--prompts"));
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) texts.push_back(line);
  } else {
    texts.assign(std::begin(kDefaultPrompts), std::end(kDefaultPrompts));
  }
  const size_t n_prompts =
      std::min(texts.size(), size_t(a.GetInt("--n-prompts", 1, 1 << 20)));
  texts.resize(n_prompts);
  std::vector<std::vector<int32_t>> prompts;
  for (const std::string& t : texts)
    prompts.push_back(engine->Encode(t, true, "a prompt"));

  const GenerateOptions base = ReadGenerateOptions(a, *engine);
  std::vector<Preset> presets;
  const Schedule fixed_schedule = engine->DefaultOptions().schedule;
  {
    std::string list = a.Get("--presets");
    for (size_t at = 0; at <= list.size();) {
      size_t comma = list.find(',', at);
      if (comma == std::string::npos) comma = list.size();
      const std::string name = list.substr(at, comma - at);
      at = comma + 1;
      Preset p{name, false, base};
      // --threshold implies its schedule; the other presets keep the one
      // given with --schedule, or the model's.
      if (!a.Has("--schedule")) p.opt.schedule = fixed_schedule;
      if (name == "uncached") {
        p.opt.cache = Cache::kNone;
      } else if (name == "prefix") {
        p.opt.cache = Cache::kPrefix;
      } else if (name == "dual") {
        p.opt.cache = Cache::kDual;
      } else if (name == "threshold" || name == "threshold-dual") {
        p.opt.schedule = Schedule::kThreshold;
        p.opt.cache = name == "threshold" ? Cache::kNone : Cache::kDual;
      } else if (name == "real") {
        DLLM_USAGE_CHECK(a.Has("--reference-text"), "bench generate: preset ",
                         "real needs --reference-text FILE");
      } else if (name == "ar" || name == "ar-nocache") {
        DLLM_USAGE_CHECK(ar != nullptr, "bench generate: preset ", name,
                         " needs --ar-model DIR");
        p.ar = true;
        p.opt = ar->DefaultOptions();
        p.opt.gen_length = base.gen_length;
        p.opt.temperature = base.temperature;
        p.opt.top_k = base.top_k, p.opt.top_p = base.top_p;
        p.opt.seed = base.seed;
        p.opt.stop_at_eos = base.stop_at_eos;
        p.opt.cache = name == "ar" ? Cache::kAuto : Cache::kNone;
      } else {
        UsageFail("bench generate: unknown preset '", name,
                  "' (expected uncached, prefix, dual, threshold, "
                  "threshold-dual, ar, ar-nocache, real)");
      }
      presets.push_back(p);
    }
  }
  for (const Preset& p : presets)
    if (!p.ar && p.name != "real") {
      try {
        for (const auto& pr : prompts)
          ValidateGenerateOptions(p.opt, int(pr.size()),
                                  engine->config().max_seq_len);
      } catch (const Error& e) {
        UsageFail(e.what());
      }
    }

  const ModelConfig& c = engine->config();
  // Warm-up: faults in the weights of both models.
  {
    GenerateOptions w = base;
    w.cache = Cache::kNone;
    Generate(engine->model(), {prompts[0]}, w);
    if (ar) {
      GenerateOptions wa = ar->DefaultOptions();
      wa.gen_length = 4;
      Generate(ar->model(), {prompts[0]}, wa);
    }
  }

  // Uncached canvases by family (the AR twin, or the schedule), the
  // reference of the cached presets that run after them.
  std::map<std::string, std::vector<std::vector<int32_t>>> reference;
  // The reference text: its words, and its last 10% (the usual validation
  // split) tokenized, for the 'real' preset's windows.
  std::set<std::string> vocabulary;
  std::vector<int32_t> held_out;
  if (a.Has("--reference-text")) {
    std::ifstream in(a.Get("--reference-text"), std::ios::binary);
    DLLM_CHECK(in.good(), "bench generate: cannot read ",
               a.Get("--reference-text"));
    const std::string text((std::istreambuf_iterator<char>(in)),
                           std::istreambuf_iterator<char>());
    for (const std::string& w : Words(text)) vocabulary.insert(w);
    held_out = engine->Encode(text.substr(text.size() * 9 / 10), false,
                              "--reference-text");
  }
  for (const Preset& p : presets) {
    if (p.name == "real") {
      // n_prompts windows of gen_length real tokens, evenly spaced, each
      // after 16 tokens of its own context (the judge's prompt).
      const int64_t len = base.gen_length, ctx = 16;
      const int64_t span = int64_t(held_out.size()) - len - ctx;
      DLLM_CHECK(span > 0, "bench generate: --reference-text is too short");
      Pool pool;
      double sum_nll = 0;
      int n_nll = 0;
      for (size_t i = 0; i < n_prompts; ++i) {
        const int64_t at = ctx + span * int64_t(i) / int64_t(n_prompts);
        const std::vector<int32_t> before(held_out.begin() + at - ctx,
                                          held_out.begin() + at),
            window(held_out.begin() + at, held_out.begin() + at + len);
        pool.Add(window, engine->Decode(window), &vocabulary);
        if (ar) {
          const double nll = JudgeNll(ar->model(), before, window);
          if (std::isfinite(nll)) sum_nll += nll, ++n_nll;
        }
      }
      nlohmann::json s = {{"bench", "generate"},
                          {"what", "summary"},
                          {"preset", "real"},
                          {"prompts", n_prompts}};
      if (n_nll) s["judge_nll"] = sum_nll / n_nll;
      pool.Report(s);
      std::printf("%s\n", s.dump().c_str());
      std::fflush(stdout);
      continue;
    }
    Engine& e = p.ar ? *ar : *engine;
    double sum_tps = 0, sum_ms_step = 0, sum_ttft = 0, sum_tpf = 0,
           sum_same = 0, sum_nll = 0;
    int n_same = 0, n_nll = 0;
    Pool pool;
    const std::string family =
        p.ar ? "ar" : ScheduleName(ResolveSchedule(p.opt));
    std::vector<std::vector<int32_t>>& ref = reference[family];
    const bool is_ref = p.opt.cache == Cache::kNone && ref.empty();
    if (is_ref) ref.resize(n_prompts);
    for (size_t i = 0; i < n_prompts; ++i) {
      Probe probe;
      GenerateStats st;
      auto r = Generate(e.model(), {prompts[i]}, p.opt, OnStep, &probe, &st);
      const std::vector<int32_t>& tokens = r[0].tokens;
      if (is_ref) ref[i] = r[0].canvas;
      pool.Add(tokens, e.Decode(tokens),
               vocabulary.empty() ? nullptr : &vocabulary);
      nlohmann::json j = {
          {"bench", "generate"},
          {"preset", p.name},
          {"model", e.dir()},
          {"settings", nlohmann::json::parse(GenerateOptionsToJson(p.opt))},
          {"prompt", texts[i]},
          {"prompt_ids", prompts[i]},
          {"tokens", tokens},
          {"text", e.Decode(tokens)},
          {"nfe", st.forward_passes},
          {"tokens_generated", st.tokens},
          {"tokens_per_forward",
           st.forward_passes ? double(st.tokens) / st.forward_passes : 0.0},
          {"ms_per_step",
           st.forward_passes ? 1e3 * st.seconds / st.forward_passes : 0.0},
          {"tokens_per_s", st.seconds > 0 ? double(st.tokens) / st.seconds : 0},
          {"seconds", st.seconds},
          {"ttft_ms", probe.ttft_ms},
          {"peak_rss_mb", double(PeakRssBytes()) / 1e6}};
      // Quality: positions equal to the uncached run of the same settings
      // (same seed, so the same random streams), and the AR judge's NLL.
      if (!is_ref && ref.size() == n_prompts &&
          ref[i].size() == r[0].canvas.size()) {
        const int p0 = int(prompts[i].size());
        int same = 0;
        for (size_t t = size_t(p0); t < r[0].canvas.size(); ++t)
          same += r[0].canvas[t] == ref[i][t];
        const double frac =
            double(same) / double(r[0].canvas.size() - size_t(p0));
        j["same_as_uncached"] = frac;
        sum_same += frac, ++n_same;
      }
      if (ar) {
        const double nll = JudgeNll(ar->model(), prompts[i], tokens);
        if (std::isfinite(nll)) {
          j["judge_nll"] = nll;
          sum_nll += nll, ++n_nll;
        }
      }
      std::printf("%s\n", j.dump().c_str());
      std::fflush(stdout);
      sum_tps += st.seconds > 0 ? double(st.tokens) / st.seconds : 0;
      sum_ms_step +=
          st.forward_passes ? 1e3 * st.seconds / st.forward_passes : 0.0;
      sum_tpf += st.forward_passes ? double(st.tokens) / st.forward_passes : 0;
      sum_ttft += probe.ttft_ms;
    }
    const double n = double(n_prompts);
    nlohmann::json s = {{"bench", "generate"},
                        {"what", "summary"},
                        {"preset", p.name},
                        {"prompts", n_prompts},
                        {"tokens_per_s", sum_tps / n},
                        {"ms_per_step", sum_ms_step / n},
                        {"tokens_per_forward", sum_tpf / n},
                        {"ttft_ms", sum_ttft / n},
                        {"peak_rss_mb", double(PeakRssBytes()) / 1e6}};
    if (n_same) s["same_as_uncached"] = sum_same / n_same;
    if (n_nll) s["judge_nll"] = sum_nll / n_nll;
    pool.Report(s);
    std::printf("%s\n", s.dump().c_str());
    std::fflush(stdout);
  }
  // The ceilings, last so that the copy's buffers do not count in the
  // generations' peak RSS: an SGEMM of the model's FFN shape over one canvas,
  // and a memory copy (a cached step is closer to bandwidth-bound).
  const int64_t canvas = int64_t(prompts[0].size()) + base.gen_length;
  const SgemmCeiling ceil = MeasureSgemm(canvas, c.d_ff, c.d_model, threads);
  const double bw = MeasureCopyBandwidth();
  const double fma = MeasureFmaPeak(threads);
  nlohmann::json head = {
      {"bench", "generate"},
      {"what", "machine"},
      {"threads", threads},
      {"sgemm_shape", {canvas, c.d_ff, c.d_model}},
      {"sgemm_gflops_blas_threads", ceil.gflops_blas_threads},
      {"sgemm_gflops_pool", ceil.gflops_pool},
      {"fma_peak_gflops", fma},
      {"copy_gb_per_s", bw},
      {"model", engine->dir()},
      {"weights_mb", double(engine->model().file_bytes()) / 1e6}};
  if (ar) head["ar_model"] = ar->dir();
  std::printf("%s\n", head.dump().c_str());

  return 0;
}

}  // namespace

DLLM_COMMAND("bench generate",
             "time generation presets (caches, threshold, AR twin) against "
             "this machine's ceilings",
             RunBenchGenerate);

}  // namespace dllm::cli
