// dllm tokenize / detokenize / template / tokenizer train: the tokenizer
// layer from the command line.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "args.h"
#include "command.h"
#include "dllm/bpe_train.h"
#include "dllm/chat_template.h"
#include "dllm/error.h"
#include "dllm/files.h"
#include "dllm/tokenizer.h"
#include "parse_ids.h"

namespace dllm::cli {
namespace {

std::string TextArg(const Args& a, const char* cmd) {
  DLLM_USAGE_CHECK(a.Has("--text") != a.Has("--file"), cmd,
                   ": give exactly one of --text T or --file F");
  return a.Has("--text") ? a.Get("--text") : ReadFileToString(a.Get("--file"));
}

int RunTokenize(int argc, char** argv) {
  Args a(
      "dllm tokenize -m DIR|FILE (--text T | --file F) "
      "[--ids|--pieces|--count]",
      "Text to token ids with a model's tokenizer (tokenizer.json, a folder, "
      "vocab.json+merges.txt, or a .tiktoken file).");
  a.Option("-m,--model", "DIR|FILE", "model folder or tokenizer file");
  a.Option("--text", "T", "text to tokenize");
  a.Option("-f,--file", "F", "file whose bytes to tokenize");
  a.Flag("--ids", "print ids separated by spaces (the default)");
  a.Flag("--pieces", "print one token per line: id, tab, the token as JSON");
  a.Flag("--count", "print only the number of tokens");
  a.Flag("--no-special", "do not add the post-processor's BOS/EOS");
  if (!a.Parse(argc, argv)) return a.exit_code();
  DLLM_USAGE_CHECK(a.Has("--model"), "tokenize: -m DIR|FILE is required");
  Tokenizer tok = Tokenizer::FromFile(a.Get("--model"));
  std::vector<int32_t> ids =
      tok.Encode(TextArg(a, "tokenize"), !a.GetFlag("--no-special"));
  if (a.GetFlag("--count")) {
    std::printf("%zu\n", ids.size());
  } else if (a.GetFlag("--pieces")) {
    for (int32_t id : ids)
      std::printf("%d\t%s\n", id,
                  nlohmann::json(tok.TokenToPiece(id)).dump().c_str());
  } else {
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) line += ' ';
      line += std::to_string(ids[i]);
    }
    std::printf("%s\n", line.c_str());
  }
  return 0;
}

int RunDetokenize(int argc, char** argv) {
  Args a(
      "dllm detokenize -m DIR|FILE (--ids \"1 2 3\" | --file F) "
      "[--skip-special]",
      "Token ids back to text (written to stdout as is).");
  a.Option("-m,--model", "DIR|FILE", "model folder or tokenizer file");
  a.Option("--ids", "IDS", "ids separated by spaces or commas");
  a.Option("-f,--file", "F", "file holding the ids");
  a.Flag("--skip-special", "drop special tokens");
  if (!a.Parse(argc, argv)) return a.exit_code();
  DLLM_USAGE_CHECK(a.Has("--model"), "detokenize: -m DIR|FILE is required");
  DLLM_USAGE_CHECK(a.Has("--ids") != a.Has("--file"),
                   "detokenize: give exactly one of --ids or --file");
  std::string text =
      a.Has("--ids") ? a.Get("--ids") : ReadFileToString(a.Get("--file"));
  for (char& c : text)
    if (c == '\n' || c == '\t' || c == '[' || c == ']') c = ' ';
  std::vector<int32_t> ids =
      ParseIdList(text, a.Has("--ids") ? "--ids" : a.Get("--file"));
  Tokenizer tok = Tokenizer::FromFile(a.Get("--model"));
  std::string out = tok.Decode(ids, a.GetFlag("--skip-special"));
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int RunTemplate(int argc, char** argv) {
  Args a(
      "dllm template -m DIR|tokenizer_config.json --messages FILE.json "
      "[--no-generation-prompt]",
      "Renders the model's chat template. FILE.json holds [{\"role\", "
      "\"content\"}, ...] "
      "or {\"messages\": [...], \"tools\": [...], ...}.");
  a.Option("-m,--model", "DIR|FILE", "model folder or tokenizer_config.json");
  a.Option("--messages", "FILE.json", "the conversation");
  a.Flag("--no-generation-prompt", "do not open an assistant turn at the end");
  a.Flag("--ids",
         "print the token ids of the rendered text instead of the text");
  if (!a.Parse(argc, argv)) return a.exit_code();
  DLLM_USAGE_CHECK(a.Has("--model"), "template: -m DIR is required");
  DLLM_USAGE_CHECK(a.Has("--messages"),
                   "template: --messages FILE.json is required");
  ChatTemplate t = ChatTemplate::FromTokenizerConfig(a.Get("--model"));
  std::string text = t.Apply(ReadFileToString(a.Get("--messages")),
                             !a.GetFlag("--no-generation-prompt"));
  if (a.GetFlag("--ids")) {
    Tokenizer tok = Tokenizer::FromFile(a.Get("--model"));
    std::string line;
    for (int32_t id : tok.Encode(text, false)) line += std::to_string(id) + " ";
    if (!line.empty()) line.pop_back();
    std::printf("%s\n", line.c_str());
  } else {
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
  return 0;
}

int RunTokenizerTrain(int argc, char** argv) {
  Args a(
      "dllm tokenizer train --vocab-size N [--special \"<|mask|>,...\"] "
      "FILES... -o tokenizer.json",
      "Learns a byte-level BPE from text files; the result loads in dllm and "
      "in the Hugging "
      "Face tokenizers library and encodes identically in both.");
  a.Option("--vocab-size", "N",
           "vocabulary size, specials and 256 bytes included", "8192");
  a.Option("--special", "LIST",
           "comma-separated special tokens, given ids 0, 1, ...",
           "<|endoftext|>");
  a.Option("--pattern", "REGEX", "pre-tokenizer regex (default: Llama-3's)");
  a.Option("--min-frequency", "N", "merge pairs seen at least N times", "2");
  a.Option("-o,--output", "FILE", "where to write tokenizer.json");
  a.AllowPositional("FILES", "training text files");
  if (!a.Parse(argc, argv)) return a.exit_code();
  DLLM_USAGE_CHECK(a.Has("--output"),
                   "tokenizer train: -o tokenizer.json is required");
  DLLM_USAGE_CHECK(!a.Positional().empty(),
                   "tokenizer train: give one or more text files");
  BpeTrainOptions o;
  int64_t v = a.GetInt("--vocab-size");
  DLLM_CHECK(v > 0 && v <= (1 << 24),
             "tokenizer train: --vocab-size must be in [1, 16777216]");
  o.vocab_size = static_cast<size_t>(v);
  o.min_frequency = a.GetInt("--min-frequency");
  o.pattern = a.Get("--pattern");
  std::string specials = a.Get("--special");
  size_t pos = 0;
  while (pos <= specials.size() && !specials.empty()) {
    size_t c = specials.find(',', pos);
    if (c == std::string::npos) c = specials.size();
    std::string s = specials.substr(pos, c - pos);
    if (!s.empty()) o.special_tokens.push_back(s);
    pos = c + 1;
  }
  const bool tty = isatty(2);
  if (tty)
    o.progress = [](size_t done, size_t want) {
      std::fprintf(stderr, "\rmerges %zu/%zu", done, want);
    };
  BpeTrainStats st;
  std::string json = TrainBpeFromFiles(a.Positional(), o, &st);
  if (tty) std::fprintf(stderr, "\r");
  std::string out = a.Get("--output");
  // Create the output's folder (one level), as `-o tok/tokenizer.json`
  // suggests.
  const size_t slash = out.rfind('/');
  if (slash != std::string::npos && slash > 0)
    mkdir(out.substr(0, slash).c_str(), 0755);
  WriteFileAtomic(out, json.data(), json.size());
  Tokenizer::FromFile(out);  // check that it loads
  std::fprintf(stderr,
               "trained on %.2f MB (%llu words, %zu unique): %zu merges, vocab "
               "%zu -> %s\n",
               st.bytes / 1e6, static_cast<unsigned long long>(st.words),
               st.unique_words, st.merges, st.vocab_size, out.c_str());
  return 0;
}

}  // namespace

DLLM_COMMAND("tokenize", "text to token ids (--pieces to see the tokens)",
             RunTokenize);
DLLM_COMMAND("detokenize", "token ids to text", RunDetokenize);
DLLM_COMMAND("template", "render a model's chat template for a conversation",
             RunTemplate);
DLLM_COMMAND("tokenizer train",
             "learn a byte-level BPE tokenizer from text files",
             RunTokenizerTrain);

}  // namespace dllm::cli
