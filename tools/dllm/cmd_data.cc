// dllm data prepare: text (or SFT conversations) to token files for training.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "args.h"
#include "command.h"
#include "dllm/chat_template.h"
#include "dllm/error.h"
#include "dllm/files.h"
#include "dllm/tokenizer.h"
#include "dllm/train_run.h"

namespace dllm::cli {
namespace {

std::string FolderOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return path;
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

int32_t SpecialId(const Tokenizer& tok,
                  std::initializer_list<const char*> names) {
  for (const char* n : names) {
    int32_t id = tok.TokenId(n);
    if (id >= 0) return id;
  }
  return -1;
}

int RunDataPrepare(int argc, char** argv) {
  Args a(
      "dllm data prepare --tokenizer T FILES... -o DIR [--val-fraction F] | "
      "--sft FILE.jsonl",
      "Tokenizes a corpus into DIR/train.bin and DIR/val.bin (uint32 token "
      "ids) with a\n"
      "train/validation split: by default the last 10% of the text is "
      "validation, as nanoGPT\n"
      "does for tiny Shakespeare. With --sft, renders JSONL conversations "
      "({\"messages\": [...]})\n"
      "through the chat template and records where each answer starts "
      "(DIR/sft.bin, sft.json).\n"
      "DIR/meta.json records the counts; the tokenizer files are copied into "
      "DIR.");
  a.Option(
      "--tokenizer", "T",
      "tokenizer.json, or a folder holding it (and tokenizer_config.json)");
  a.Option("-o,--out", "DIR", "output folder");
  a.Option("--val-fraction", "F", "fraction of the text kept for validation",
           "0.1");
  a.Option("--sft", "FILE", "JSONL conversations for supervised fine-tuning");
  a.AllowPositional("FILES", "text files (concatenated in order)");
  if (!a.Parse(argc, argv)) return a.exit_code();
  DLLM_USAGE_CHECK(a.Has("--tokenizer") && a.Has("--out"),
                   "data prepare: --tokenizer and -o are required");
  const std::string tpath = a.Get("--tokenizer");
  const std::string tfile =
      FileExists(tpath + "/tokenizer.json") ? tpath + "/tokenizer.json" : tpath;
  {
    // The data folder keeps a copy of tokenizer.json, which a GGUF model
    // holds inside: convert the model to a folder first.
    char magic[4] = {};
    std::ifstream(tfile, std::ios::binary).read(magic, 4);
    DLLM_USAGE_CHECK(std::string(magic, 4) != "GGUF", "data prepare: ", tfile,
                     " is a GGUF file; --tokenizer takes tokenizer.json or a "
                     "folder holding it (`dllm convert ",
                     tfile, " DIR` writes one)");
  }
  Tokenizer tok = Tokenizer::FromFile(tfile);
  const std::string out = a.Get("--out");
  if (mkdir(out.c_str(), 0755) != 0 && errno != EEXIST)
    Fail(out, ": cannot create folder: ", std::strerror(errno));
  nlohmann::json meta = {
      {"vocab_size", tok.vocab_size()},
      {"mask_token_id", SpecialId(tok, {"<|mask|>", "<|mdm_mask|>", "[MASK]"})},
      {"eos_token_id",
       SpecialId(tok, {"<|endoftext|>", "<|eot_id|>", "</s>"})}};

  if (a.Has("--sft")) {
    const std::string cfg_dir = FolderOf(tfile);
    ChatTemplate tmpl = ChatTemplate::FromTokenizerConfig(cfg_dir);
    DLLM_CHECK(tmpl.loaded(), cfg_dir,
               ": no chat template in tokenizer_config.json");
    const int32_t eos = meta["eos_token_id"];
    DLLM_CHECK(eos >= 0, tfile, ": no end-of-text token to end answers with");
    std::string text = ReadFileToString(a.Get("--sft"));
    std::vector<int32_t> tokens;
    nlohmann::json records = nlohmann::json::array();
    size_t line_no = 0, pos = 0;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      std::string line = text.substr(
          pos, nl == std::string::npos ? std::string::npos : nl - pos);
      pos = nl == std::string::npos ? text.size() : nl + 1;
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      std::vector<int32_t> prompt, answer;
      try {
        auto j = nlohmann::json::parse(line, nullptr, false);
        DLLM_CHECK(!j.is_discarded(), a.Get("--sft"), ":", line_no,
                   ": not valid JSON");
        DLLM_CHECK(
            j.contains("messages") && j["messages"].is_array() &&
                j["messages"].size() >= 2,
            a.Get("--sft"), ":", line_no,
            ": expected {\"messages\": [..., {\"role\": \"assistant\", ...}]}");
        auto msgs = j["messages"];
        const auto last = msgs.back();
        DLLM_CHECK(last.value("role", "") == "assistant" &&
                       last.contains("content") && last["content"].is_string(),
                   a.Get("--sft"), ":", line_no,
                   ": the last message must be the assistant's answer");
        msgs.erase(msgs.end() - 1);
        prompt = tok.Encode(tmpl.Apply(msgs.dump(), true), false);
        answer = tok.Encode(last["content"].get<std::string>(), false);
        answer.push_back(eos);
      } catch (const nlohmann::json::exception& e) {
        Fail(a.Get("--sft"), ":", line_no, ": ", e.what());
      }
      records.push_back(
          {tokens.size(), prompt.size() + answer.size(), prompt.size()});
      tokens.insert(tokens.end(), prompt.begin(), prompt.end());
      tokens.insert(tokens.end(), answer.begin(), answer.end());
    }
    DLLM_CHECK(!records.empty(), a.Get("--sft"), ": no conversations");
    WriteTokenFile(out + "/sft.bin", tokens);
    std::string sj = nlohmann::json{{"records", records}}.dump();
    WriteFileAtomic(out + "/sft.json", sj.data(), sj.size());
    meta["sft_records"] = records.size();
    meta["sft_tokens"] = tokens.size();
    meta["train_tokens"] = tokens.size();
    meta["val_tokens"] = 0;
    meta["train_bytes"] = text.size();
    meta["val_bytes"] = 0;
    std::fprintf(stderr, "data: %zu conversations, %zu tokens -> %s/sft.bin\n",
                 records.size(), tokens.size(), out.c_str());
  } else {
    DLLM_USAGE_CHECK(!a.Positional().empty(), "data prepare: no input files");
    std::string text;
    for (const std::string& f : a.Positional()) text += ReadFileToString(f);
    const double frac = a.GetDouble("--val-fraction");
    DLLM_CHECK(frac >= 0 && frac < 1,
               "data prepare: --val-fraction must be in [0, 1)");
    // Split at a line start near the requested point, never inside a character.
    size_t split = size_t(double(text.size()) * (1.0 - frac));
    if (frac > 0) {
      size_t nl = text.find('\n', split);
      split = nl == std::string::npos ? text.size() : nl + 1;
    } else {
      split = text.size();
    }
    const std::string train_text = text.substr(0, split),
                      val_text = text.substr(split);
    std::vector<int32_t> train = tok.Encode(train_text, false),
                         val = tok.Encode(val_text, false);
    WriteTokenFile(out + "/train.bin", train);
    WriteTokenFile(out + "/val.bin", val);
    meta["train_tokens"] = train.size();
    meta["val_tokens"] = val.size();
    meta["train_bytes"] = train_text.size();
    meta["val_bytes"] = val_text.size();
    std::fprintf(stderr,
                 "data: %zu bytes -> %zu train tokens, %zu validation tokens "
                 "(%.2f bytes/token) in %s\n",
                 text.size(), train.size(), val.size(),
                 double(text.size()) / double(train.size() + val.size()),
                 out.c_str());
  }
  std::string tj = ReadFileToString(tfile);
  WriteFileAtomic(out + "/tokenizer.json", tj.data(), tj.size());
  // Lets train --init-from and eval loss refuse a model of another tokenizer.
  meta["tokenizer_fingerprint"] = TokenizerFingerprint(tj);
  const std::string cfg = FolderOf(tfile) + "/tokenizer_config.json";
  if (FileExists(cfg)) {
    std::string cj = ReadFileToString(cfg);
    WriteFileAtomic(out + "/tokenizer_config.json", cj.data(), cj.size());
  }
  std::string mj = meta.dump(2);
  WriteFileAtomic(out + "/meta.json", mj.data(), mj.size());
  return 0;
}

}  // namespace

DLLM_COMMAND("data prepare",
             "tokenize a corpus (or SFT conversations) for training",
             RunDataPrepare);

}  // namespace dllm::cli
