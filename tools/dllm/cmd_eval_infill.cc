// dllm eval infill: fill-in-the-middle on source files a model has not seen.
// Single lines are cut out of the files; a diffusion model gets the code
// before and after the line and fills the gap, an autoregressive model (which
// cannot read a suffix) continues the code before it. Both are scored on the
// same lines by exact match and edit similarity of the line.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "args.h"
#include "command.h"
#include "dllm/engine.h"
#include "dllm/error.h"
#include "dllm/files.h"
#include "dllm/generate.h"
#include "dllm/generate_options.h"
#include "dllm/timer.h"
#include "generate_options.h"

namespace dllm::cli {
namespace {

namespace fs = std::filesystem;

bool EndsWith(const std::string& s, const std::string& end) {
  return s.size() >= end.size() &&
         s.compare(s.size() - end.size(), end.size(), end) == 0;
}

// Every file --files names, in a reproducible order: a folder contributes
// its files ending in `ext` (recursively, sorted by path, so that the same
// folder picks the same lines on every machine), a file itself, and @LIST the
// paths written in LIST, one per line.
void AddFiles(const std::string& entry, const std::string& ext,
              std::vector<std::string>& out) {
  if (!entry.empty() && entry[0] == '@') {
    const std::string list = ReadFileToString(entry.substr(1));
    size_t pos = 0;
    while (pos < list.size()) {
      size_t nl = list.find('\n', pos);
      if (nl == std::string::npos) nl = list.size();
      std::string p = list.substr(pos, nl - pos);
      pos = nl + 1;
      if (!p.empty() && p.back() == '\r') p.pop_back();
      if (p.find_first_not_of(" \t") == std::string::npos) continue;
      AddFiles(p, ext, out);
    }
    return;
  }
  std::error_code ec;
  const fs::file_status st = fs::status(entry, ec);
  DLLM_CHECK(!ec && fs::exists(st), "--files ", entry,
             ": no such file or folder");
  if (fs::is_regular_file(st)) {
    out.push_back(entry);
    return;
  }
  DLLM_CHECK(fs::is_directory(st), "--files ", entry,
             ": neither a file nor a folder");
  std::vector<std::string> found;
  for (fs::recursive_directory_iterator it(entry, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->is_regular_file(ec) && EndsWith(it->path().string(), ext))
      found.push_back(it->path().string());
  }
  DLLM_CHECK(!ec, "--files ", entry,
             ": cannot list the folder: ", ec.message());
  DLLM_CHECK(!found.empty(), "--files ", entry, ": no files ending in \"", ext,
             "\" under this folder (see --ext)");
  std::sort(found.begin(), found.end());
  out.insert(out.end(), found.begin(), found.end());
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// 1 - Levenshtein distance / the longer length, over bytes: 1 for identical
// strings, 0 for nothing in common (the edit similarity of code-completion
// benchmarks).
double EditSimilarity(const std::string& a, const std::string& b) {
  if (a.empty() && b.empty()) return 1.0;
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min(
          {row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return 1.0 - double(row[b.size()]) / double(std::max(a.size(), b.size()));
}

// A line that may be cut out: bytes [begin, end) of file `file`, without its
// newline.
struct Candidate {
  size_t file;
  int line_no;  // 1-based
  size_t begin, end;
};

int RunEvalInfill(int argc, char** argv) {
  Args a(
      "dllm eval infill -m MODEL --files DIR_OR_FILES [--lines N] "
      "[--context-tokens N] [--suffix-tokens N] [--span oracle|fixed] "
      "[generation options]",
      "Fill-in-the-middle on held-out source files. From the files, N single "
      "lines are picked\n"
      "deterministically (non-blank, --min-chars..--max-chars characters "
      "after trimming;\n"
      "evenly spaced over all such lines, files in sorted order). A diffusion "
      "model gets up to\n"
      "--context-tokens tokens before the line and --suffix-tokens after it "
      "and fills the gap;\n"
      "an autoregressive model gets the same prefix only and continues it. "
      "The generated text\n"
      "is cut at its first newline and compared with the line (both trimmed): "
      "exact match and\n"
      "edit similarity (1 - Levenshtein / longer length). The span is the "
      "true line's token\n"
      "count (line and newline, --span oracle: both models generate exactly "
      "that many tokens)\n"
      "or --gen-length tokens (--span fixed). A prefix or suffix that reaches "
      "the file's start\n"
      "or end is marked with the end-of-text token, as files are separated "
      "in training. One\n"
      "token per step in one block unless --steps / --block-length say "
      "otherwise (--span fixed).\n"
      "Progress on stderr; JSON (summary and every case) on stdout.");
  a.Option("-m,--model", "DIR", "model folder");
  a.Option("--files", "LIST",
           "comma-separated files and folders (folders: every file ending in "
           "--ext, recursively); @FILE reads paths from FILE, one per line");
  a.Option("--ext", "SUFFIX", "file name ending kept from folders", ".py");
  a.Option("--lines", "N", "lines to fill in", "100");
  a.Option("--context-tokens", "N", "most tokens of code before the line",
           "128");
  a.Option("--suffix-tokens", "N",
           "most tokens of code after the line (diffusion models)", "64");
  a.Option("--min-chars", "N", "shortest line kept (after trimming)", "8");
  a.Option("--max-chars", "N", "longest line kept (after trimming)", "80");
  a.Option("--span", "RULE",
           "oracle (the true line's token count) or fixed (--gen-length)",
           "oracle");
  AddGenerateOptions(a);
  AddThreadsOption(a);
  AddDeviceOption(a);
  if (!a.Parse(argc, argv)) return a.exit_code();
  // Every value is checked before the model is read (bad ones: exit 2).
  a.Require("--model");
  a.Require("--files");
  const int64_t n_lines = a.GetInt("--lines", 1, 1000000),
                ctx_tokens = a.GetInt("--context-tokens", 0, 1 << 20),
                suf_tokens = a.GetInt("--suffix-tokens", 0, 1 << 20),
                min_chars = a.GetInt("--min-chars", 1, 1 << 20),
                max_chars = a.GetInt("--max-chars", min_chars, 1 << 20);
  const std::string span = a.Get("--span");
  DLLM_USAGE_CHECK(span == "oracle" || span == "fixed",
                   "eval infill: --span must be oracle or fixed, got \"", span,
                   "\"");
  const bool oracle = span == "oracle";
  DLLM_USAGE_CHECK(!(oracle && a.Has("--gen-length")),
                   "eval infill: --gen-length sets the span of --span fixed; "
                   "with --span oracle the span is the true line's length");
  DLLM_USAGE_CHECK(!(oracle && a.Has("--block-length")),
                   "eval infill: --block-length needs --span fixed (oracle "
                   "spans differ in length from line to line)");
  ApplyThreadsOption(a);

  std::vector<std::string> files;
  {
    const std::string list = a.Get("--files");
    size_t pos = 0;
    while (pos <= list.size()) {
      size_t comma = list.find(',', pos);
      if (comma == std::string::npos) comma = list.size();
      const std::string entry = list.substr(pos, comma - pos);
      if (!entry.empty()) AddFiles(entry, a.Get("--ext"), files);
      pos = comma + 1;
    }
  }
  DLLM_CHECK(!files.empty(), "--files names no files");

  auto engine = Engine::Load(a.Get("--model"), {DeviceOption(a)});
  const ModelConfig& cfg = engine->config();
  DLLM_CHECK(engine->tokenizer().loaded(), engine->dir(),
             ": no tokenizer.json (infilling compares text)");
  const bool causal = cfg.causal;
  const int32_t eos = cfg.eos_token_id;
  const bool has_eos = eos >= 0 && eos < cfg.vocab_size;
  DLLM_USAGE_CHECK(!causal || ctx_tokens >= 1,
                   "eval infill: an autoregressive model needs a prefix: "
                   "--context-tokens must be at least 1");

  std::vector<std::string> texts(files.size());
  std::vector<Candidate> cands;
  for (size_t f = 0; f < files.size(); ++f) {
    texts[f] = ReadFileToString(files[f]);
    const std::string& t = texts[f];
    size_t pos = 0;
    int line_no = 0;
    while (pos < t.size()) {
      size_t nl = t.find('\n', pos);
      if (nl == std::string::npos) nl = t.size();
      ++line_no;
      const std::string trimmed = Trim(t.substr(pos, nl - pos));
      // An AR model needs a prompt: without an end-of-text token to mark the
      // file's start, a file's first line has none.
      const bool has_prompt = pos > 0 || has_eos;
      if (has_prompt && int64_t(trimmed.size()) >= min_chars &&
          int64_t(trimmed.size()) <= max_chars)
        cands.push_back({f, line_no, pos, nl});
      pos = nl + 1;
    }
  }
  DLLM_CHECK(!cands.empty(), "--files: no line of ", min_chars, "..", max_chars,
             " characters in ", files.size(), " file(s)");
  // Evenly spaced over all candidates (the middle of each of N equal
  // stretches): deterministic, and spread over every file rather than the
  // first few.
  std::vector<size_t> picked;
  const size_t n = std::min<size_t>(size_t(n_lines), cands.size());
  for (size_t i = 0; i < n; ++i)
    picked.push_back(
        size_t((double(i) + 0.5) * double(cands.size()) / double(n)));

  const GenerateOptions base = ReadGenerateOptions(a, *engine);
  const int fixed_len = a.Has("--gen-length") ? base.gen_length : 32;
  if (!oracle && !causal) {
    // Options that cannot fit together (a block length that does not divide
    // the span) are the command line's fault: say so before any line runs.
    GenerateOptions o = base;
    o.gen_length = fixed_len;
    o.steps = a.Has("--steps") ? std::min(base.steps, fixed_len) : fixed_len;
    try {
      ValidateGenerateOptions(o, 0, cfg.max_seq_len);
    } catch (const Error& e) {
      UsageFail("eval infill: ", e.what());
    }
  }
  const Tokenizer& tok = engine->tokenizer();
  const bool tty = isatty(fileno(stderr));
  Timer timer;
  nlohmann::json cases = nlohmann::json::array();
  int exact = 0, forward_passes = 0;
  double sim_sum = 0;
  GenerateOptions last = base;
  for (size_t k = 0; k < picked.size(); ++k) {
    const Candidate& c = cands[picked[k]];
    const std::string& t = texts[c.file];
    const std::string line = t.substr(c.begin, c.end - c.begin);
    // The span holds the line with its newline, so that its tokens end where
    // the file's own tokens do (BPE joins "):" and "\n" into one piece).
    const size_t after = std::min(t.size(), c.end + 1);
    std::vector<int32_t> prefix = tok.Encode(t.substr(0, c.begin), false);
    std::vector<int32_t> suffix = tok.Encode(t.substr(after), false);
    const std::vector<int32_t> truth =
        tok.Encode(t.substr(c.begin, after - c.begin), false);
    const int gen_len =
        oracle ? std::max<int>(1, int(truth.size())) : fixed_len;
    // Room in the model's context: the suffix gets its share first, the
    // prefix what is left.
    const int64_t room = int64_t(cfg.max_seq_len) - gen_len;
    DLLM_CHECK(room >= 1, "line ", files[c.file], ":", c.line_no, " needs ",
               gen_len, " tokens, more than the model's context of ",
               cfg.max_seq_len);
    const int64_t suf_keep =
        causal ? 0 : std::min<int64_t>(suf_tokens, room - 1);
    const int64_t pre_keep = std::min<int64_t>(ctx_tokens, room - suf_keep);
    const bool file_start = has_eos && int64_t(prefix.size()) < pre_keep;
    if (int64_t(prefix.size()) > pre_keep)
      prefix.erase(prefix.begin(), prefix.end() - pre_keep);
    if (file_start) prefix.insert(prefix.begin(), eos);
    const bool file_end = has_eos && int64_t(suffix.size()) < suf_keep;
    if (int64_t(suffix.size()) > suf_keep) suffix.resize(size_t(suf_keep));
    if (file_end) suffix.push_back(eos);

    GenerateOptions o = base;
    o.gen_length = gen_len;
    o.steps = a.Has("--steps") ? std::min(base.steps, gen_len) : gen_len;
    if (oracle) o.block_length = 0;
    o.suffix = causal ? std::vector<int32_t>() : suffix;
    GenerateStats stats;
    std::vector<GenerateResult> res;
    try {
      res = Generate(engine->model(), {prefix}, o, nullptr, nullptr, &stats);
    } catch (const Error& e) {
      Fail(files[c.file], ":", c.line_no, ": ", e.what());
    }
    forward_passes += stats.forward_passes;
    last = o;
    std::string out = engine->Decode(res[0].tokens);
    const size_t nl = out.find('\n');
    if (nl != std::string::npos) out.resize(nl);
    const std::string want = Trim(line), got = Trim(out);
    const bool hit = want == got;
    const double sim = EditSimilarity(want, got);
    exact += hit;
    sim_sum += sim;
    cases.push_back({{"file", files[c.file]},
                     {"line", c.line_no},
                     {"text", line},
                     {"completion", out},
                     {"exact", hit},
                     {"similarity", sim},
                     {"prefix_tokens", prefix.size()},
                     {"suffix_tokens", o.suffix.size()},
                     {"span_tokens", gen_len},
                     {"line_tokens", truth.size()}});
    const size_t done = k + 1;
    if (tty || done == picked.size() || done % 25 == 0) {
      std::fprintf(stderr,
                   "%sinfill %zu/%zu | exact %d (%.1f%%) | similarity %.3f | "
                   "%.1f s%s",
                   tty ? "\r" : "", done, picked.size(), exact,
                   100.0 * exact / double(done), sim_sum / double(done),
                   timer.Seconds(), tty ? "" : "\n");
      std::fflush(stderr);
    }
  }
  if (tty) std::fputc('\n', stderr);

  const double total = double(picked.size());
  nlohmann::json j = {
      {"model", a.Get("--model")},
      {"kind", causal ? "ar-prefix-only" : "diffusion-infill"},
      {"span", span},
      {"files", files.size()},
      {"candidate_lines", cands.size()},
      {"lines", picked.size()},
      {"exact", exact},
      {"exact_match", exact / total},
      {"edit_similarity", sim_sum / total},
      {"context_tokens", ctx_tokens},
      {"suffix_tokens", causal ? 0 : suf_tokens},
      {"forward_passes", forward_passes},
      {"seconds", timer.Seconds()},
      {"sampler", causal ? "autoregressive" : OrderName(last.order)},
      {"temperature", last.temperature},
      {"cases", cases}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace

DLLM_COMMAND("eval infill",
             "fill-in-the-middle exact match on held-out source lines",
             RunEvalInfill);

}  // namespace dllm::cli
