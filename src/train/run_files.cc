#include "train/run_files.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "dllm/error.h"
#include "dllm/files.h"
#include "dllm/train_run.h"

namespace dllm {

namespace {

// The pid of a `NAME.tmp.PID` file name, or 0 when it has no such suffix.
pid_t TempFilePid(const std::string& name) {
  const size_t at = name.rfind(".tmp.");
  if (at == std::string::npos || at == 0) return 0;
  const std::string digits = name.substr(at + 5);
  if (digits.empty() || digits.size() > 9 ||
      digits.find_first_not_of("0123456789") != std::string::npos)
    return 0;
  return pid_t(std::atol(digits.c_str()));
}

bool ProcessAlive(pid_t pid) {
  // EPERM: it exists but belongs to someone else; leave its files alone.
  return kill(pid, 0) == 0 || errno == EPERM;
}

}  // namespace

std::vector<std::string> RemoveStaleTempFiles(const std::string& dir) {
  std::vector<std::string> removed;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return removed;
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) names.push_back(e->d_name);
  closedir(d);
  for (const std::string& name : names) {
    const pid_t pid = TempFilePid(name);
    // Our own pid's temporaries belong to a save in progress.
    if (pid <= 0 || pid == getpid() || ProcessAlive(pid)) continue;
    if (unlink((dir + "/" + name).c_str()) == 0) removed.push_back(name);
  }
  return removed;
}

void TruncateLog(const std::string& path, int64_t step,
                 const std::string& header) {
  std::string kept = header;
  if (FileExists(path)) {
    const std::string text = ReadFileToString(path);
    std::map<int64_t, std::string> rows;
    size_t pos = text.find('\n');  // the first line is the header
    if (pos != std::string::npos) {
      kept = text.substr(0, pos + 1);
      ++pos;
      for (size_t nl; (nl = text.find('\n', pos)) != std::string::npos;
           pos = nl + 1) {
        const std::string line = text.substr(pos, nl - pos);
        char* end = nullptr;
        const long long s = std::strtoll(line.c_str(), &end, 10);
        if (end == line.c_str() || *end != ',' || s < 1 || s > step) continue;
        rows[s] = line + "\n";  // a repeat (from older versions) wins
      }
    }
    for (const auto& [s, line] : rows) kept += line;
  }
  WriteFileAtomic(path, kept.data(), kept.size());
}

std::string TokenizerFingerprint(const std::string& tokenizer_json) {
  // FNV-1a over the bytes: cheap, stable across platforms and versions.
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : tokenizer_json) h = (h ^ ch) * 0x100000001b3ull;
  char buf[40];
  std::snprintf(buf, sizeof(buf), "fnv1a64:%016llx", (unsigned long long)h);
  return buf;
}

void CheckSameTokenizer(const std::string& data_dir,
                        const std::string& model_dir) {
  const std::string model_tok = model_dir + "/tokenizer.json";
  if (!FileExists(model_tok)) return;
  std::string data_fp;
  if (FileExists(data_dir + "/meta.json")) {
    auto meta = nlohmann::json::parse(ReadFileToString(data_dir + "/meta.json"),
                                      nullptr, false);
    if (meta.is_object() && meta.contains("tokenizer_fingerprint") &&
        meta["tokenizer_fingerprint"].is_string())
      data_fp = meta["tokenizer_fingerprint"].get<std::string>();
  }
  // Data prepared before meta.json had a fingerprint: its tokenizer copy.
  if (data_fp.empty() && FileExists(data_dir + "/tokenizer.json"))
    data_fp =
        TokenizerFingerprint(ReadFileToString(data_dir + "/tokenizer.json"));
  if (data_fp.empty()) return;
  const std::string model_fp =
      TokenizerFingerprint(ReadFileToString(model_tok));
  DLLM_CHECK(data_fp == model_fp, "the data in ", data_dir,
             " was tokenized with another tokenizer than the model in ",
             model_dir, " (", data_fp, " vs ", model_fp, " for ", model_tok,
             "): its token ids would mean other tokens; prepare the data with "
             "`dllm data prepare --tokenizer ",
             model_dir, "`");
}

}  // namespace dllm
