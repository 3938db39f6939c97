#include "eval_generate.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dllm/error.h"
#include "dllm/generator.h"
#include "dllm/prefix_stream.h"
#include "dllm/timer.h"

namespace dllm::cli {
namespace {

using nlohmann::ordered_json;

// Samples per task already in a completions file. A last line without its
// newline that is not JSON is what a killed run leaves behind: it is cut
// off (with a warning) so that the run can go on after it.
std::map<std::string, int> ReadExisting(const std::string& path) {
  std::map<std::string, int> count;
  std::ifstream in(path, std::ios::binary);
  if (!in) return count;
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string data = ss.str();
  size_t pos = 0;
  for (int64_t line = 1; pos < data.size(); ++line) {
    const size_t nl = data.find('\n', pos);
    const bool complete = nl != std::string::npos;
    const std::string text =
        data.substr(pos, complete ? nl - pos : std::string::npos);
    const size_t start = pos;
    pos = complete ? nl + 1 : data.size();
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error&) {
      DLLM_CHECK(!complete, path, ":", line,
                 ": not JSON; --resume continues a file this command wrote");
      std::fprintf(stderr,
                   "warning: %s:%lld: dropping an incomplete last line (an "
                   "interrupted run)\n",
                   path.c_str(), (long long)line);
      DLLM_CHECK(truncate(path.c_str(), off_t(start)) == 0, path,
                 ": cannot cut the incomplete last line");
      break;
    }
    if (!complete) {
      // Whole but unterminated: end it so the next line starts afresh.
      FILE* f = std::fopen(path.c_str(), "ab");
      DLLM_CHECK(f && std::fputc('\n', f) != EOF && std::fclose(f) == 0, path,
                 ": cannot append");
    }
    const auto id = j.find("task_id");
    DLLM_CHECK(j.is_object() && id != j.end() &&
                   (id->is_string() || id->is_number_integer()),
               path, ":", line, ": no \"task_id\"");
    ++count[id->is_string() ? id->get<std::string>()
                            : StrCat(id->get<int64_t>())];
  }
  return count;
}

struct Job {
  size_t task;
  int sample;
};

struct Live {
  Job job;
  int id;
  PrefixStreamer stream;
  int prompt_tokens, suffix_tokens, dropped;
  uint64_t seed;
  int nfe = 0;
  Timer timer;
};

std::string Duration(double s) {
  const long t = long(s + 0.5);
  if (t >= 3600) return StrCat(t / 3600, "h", (t / 60) % 60, "m");
  if (t >= 60) return StrCat(t / 60, "m", t % 60, "s");
  return StrCat(t, "s");
}

// Fits prompt + gen length + suffix into the context as lm-evaluation-
// harness does: the prompt loses tokens from its start (keeping what the
// tokenizer puts in front, such as BOS), an infill suffix from its end;
// each keeps at least half the room when both are long.
int FitContext(const Engine& engine, const std::string& prompt_text,
               std::vector<int32_t>& prompt, std::vector<int32_t>& suffix,
               int room) {
  const size_t total = prompt.size() + suffix.size();
  if (total <= size_t(room)) return 0;
  const size_t half = size_t(room) / 2;
  const size_t keep_p = std::min(
      prompt.size(),
      std::max(size_t(room) - std::min(suffix.size(), size_t(room)), half));
  const size_t keep_s = std::min(suffix.size(), size_t(room) - keep_p);
  size_t lead = 0;
  const std::vector<int32_t> plain =
      engine.Encode(prompt_text, /*add_special=*/false, "the prompt");
  if (plain.size() < prompt.size() &&
      std::equal(plain.begin(), plain.end(),
                 prompt.end() - std::ptrdiff_t(plain.size())))
    lead = std::min(prompt.size() - plain.size(), keep_p);
  std::vector<int32_t> cut(prompt.begin(),
                           prompt.begin() + std::ptrdiff_t(lead));
  cut.insert(cut.end(), prompt.end() - std::ptrdiff_t(keep_p - lead),
             prompt.end());
  prompt = std::move(cut);
  suffix.resize(keep_s);
  return int(total - prompt.size() - suffix.size());
}

}  // namespace

EvalGenerateStats GenerateCompletions(Engine& engine, const CodeTaskSet& set,
                                      const EvalGenerateOptions& o) {
  DLLM_CHECK(engine.tokenizer().loaded(), engine.dir(),
             ": has no tokenizer.json; eval -m needs one (prompts are text)");
  DLLM_CHECK(o.samples_per_task >= 1 && o.batch >= 1,
             "eval: samples per task and batch must be >= 1");
  EvalGenerateStats st;
  std::map<std::string, int> have;
  if (o.resume) have = ReadExisting(o.path);
  std::deque<Job> queue;
  for (size_t t = 0; t < set.tasks.size(); ++t) {
    const auto it = have.find(set.tasks[t].task_id);
    const int done = it == have.end() ? 0 : it->second;
    st.samples_resumed += size_t(std::min(done, o.samples_per_task));
    for (int j = done; j < o.samples_per_task; ++j) queue.push_back({t, j});
  }
  const size_t todo = queue.size();
  if (todo == 0) return st;

  FILE* out = std::fopen(o.path.c_str(), o.resume ? "ab" : "wb");
  DLLM_CHECK(out, o.path, ": cannot write");
  std::unique_ptr<FILE, int (*)(FILE*)> closer(out, std::fclose);
  const int room = engine.config().max_seq_len - o.gen.gen_length;
  DLLM_CHECK(room >= 1, "--gen-length ", o.gen.gen_length,
             " leaves no room for a prompt in the model's context of ",
             engine.config().max_seq_len);

  Generator gen(engine.model());
  std::vector<std::unique_ptr<Live>> live;
  const Timer timer;
  double last_draw = -1;
  auto draw = [&](bool final) {
    if (!o.progress) return;
    const double now = timer.Seconds();
    if (!final && now - last_draw < 0.2) return;
    last_draw = now;
    const size_t done = st.samples_generated;
    const int width = 30, filled = int(width * done / todo);
    const double eta = done ? now / double(done) * double(todo - done) : 0.0;
    std::fprintf(stderr,
                 "\r[%s%s] %zu/%zu samples | %zu live | %.1f tok/s | %s | "
                 "eta %s\x1b[K",
                 std::string(size_t(filled), '=').c_str(),
                 std::string(size_t(width - filled), ' ').c_str(), done, todo,
                 live.size(), now > 0 ? double(gen.stats().tokens) / now : 0.0,
                 Duration(now).c_str(), done ? Duration(eta).c_str() : "?");
    if (final) std::fputs("\r\x1b[K", stderr);
    std::fflush(stderr);
  };

  auto finish = [&](Live& l) {
    if (!gen.Done(l.id)) gen.Cancel(l.id);
    const GenerateResult r = gen.Take(l.id);
    const bool stop_string = l.stream.stopped() && !r.hit_eos;
    l.stream.Finish(r.tokens);
    const std::string completion = TruncateAtStop(l.stream.text(), set.stop);
    const CodeTask& task = set.tasks[l.job.task];
    ordered_json j;
    j["task_id"] = task.task_id;
    j["completion"] = completion;
    j["sample"] = l.job.sample;
    j["seed"] = l.seed;
    j["tokens"] = r.tokens.size();
    j["prompt_tokens"] = l.prompt_tokens;
    if (!task.suffix.empty()) j["suffix_tokens"] = l.suffix_tokens;
    if (l.dropped) j["tokens_dropped"] = l.dropped;
    j["steps"] = r.steps;
    j["nfe"] = l.nfe;
    j["seconds"] = l.timer.Seconds();
    j["finish"] = r.hit_eos ? "eos" : stop_string ? "stop" : "length";
    // Model output: invalid UTF-8 is replaced, never fatal.
    const std::string line =
        j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    DLLM_CHECK(
        std::fprintf(out, "%s\n", line.c_str()) > 0 && std::fflush(out) == 0,
        o.path, ": write failed (disk full?)");
    ++st.samples_generated;
    st.tokens += int64_t(r.tokens.size());
    st.sample_nfe += l.nfe;
  };

  while (!queue.empty() || !live.empty()) {
    while (!queue.empty() && int(live.size()) < o.batch) {
      const Job job = queue.front();
      queue.pop_front();
      const CodeTask& task = set.tasks[job.task];
      std::vector<int32_t> prompt =
          engine.Encode(task.prompt, /*add_special=*/true, "the prompt");
      std::vector<int32_t> suffix;
      if (!task.suffix.empty())
        suffix = engine.Encode(task.suffix, /*add_special=*/false, "suffix");
      const int dropped = FitContext(engine, task.prompt, prompt, suffix, room);
      st.prompts_truncated += dropped > 0;
      st.tokens_dropped += dropped;
      GenerateOptions opt = o.gen;
      opt.seed = o.gen.seed + uint64_t(job.sample);
      opt.suffix = suffix;
      auto l = std::make_unique<Live>(Live{
          job, -1, PrefixStreamer(engine.tokenizer(), opt.eos_ids, set.stop),
          int(prompt.size()), int(suffix.size()), dropped, opt.seed, 0,
          Timer()});
      try {
        l->id = gen.Add(std::move(prompt), opt);
      } catch (const Error& e) {
        Fail(task.task_id, ": ", e.what());
      }
      live.push_back(std::move(l));
    }
    gen.Step();
    st.forward_passes = gen.stats().forward_passes;
    for (auto& l : live) {
      ++l->nfe;
      l->stream.OnStep(gen.canvas(l->id));
      // Past a stop string the rest is cut anyway: stop paying for it.
      if (gen.Done(l->id) || l->stream.stopped()) {
        finish(*l);
        l.reset();
      }
    }
    live.erase(std::remove(live.begin(), live.end(), nullptr), live.end());
    st.seconds = timer.Seconds();
    draw(false);
  }
  draw(true);
  st.seconds = timer.Seconds();
  return st;
}

}  // namespace dllm::cli
