// Byte-level BPE tokenizers as the Hugging Face `tokenizers` library runs
// them: added tokens split out first, then the normalizer, the pre-tokenizer
// (regex splits through PCRE2), the byte-to-unicode map and the BPE merges by
// rank, then the post-processor (BOS/EOS templates). Decoding inverts the byte
// map; StreamDecoder emits text piece by piece without ever cutting a UTF-8
// character in half.
//
// Invalid UTF-8 on input: every ill-formed sequence is replaced by U+FFFD
// (maximal-subpart rule, as Python's bytes.decode(errors="replace") and the
// WHATWG TextDecoder do) before tokenizing, so ids match what the Hugging Face
// library gives for the decoded string. Decoding bytes that do not form valid
// UTF-8 likewise yields U+FFFD per ill-formed subsequence.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dllm {

struct TokenizerImpl;  // tokenizer.cc

class Tokenizer {
 public:
  Tokenizer();  // empty; assign from a factory below

  // Loads, by what `path` is:
  //  - a tokenizer.json file;
  //  - a GGUF file (FromGguf);
  //  - a folder holding tokenizer.json, or vocab.json + merges.txt (GPT-2);
  //  - a *.tiktoken rank file (gpt2/r50k, cl100k, o200k or qwen regex chosen by
  //    the file name; cl100k's regex when the name says nothing).
  // Throws dllm::Error naming the file and field on anything malformed.
  static Tokenizer FromFile(const std::string& path);
  // The tokenizer of a GGUF model: its tokenizer.huggingface.json when
  // present (exact), else the byte-level BPE of its tokenizer.ggml.* arrays
  // (tokens, token_type, merges, the pre-tokenizer named by
  // tokenizer.ggml.pre, add_bos_token). Throws naming the file and key.
  static Tokenizer FromGguf(const std::string& path);
  // Parses tokenizer.json text; `source` names it in error messages.
  static Tokenizer FromJson(std::string_view json, const std::string& source);
  // GPT-2 layout: vocab.json ({"token": id}) and merges.txt ("a b" per line).
  static Tokenizer FromVocabMerges(const std::string& vocab_json_path,
                                   const std::string& merges_txt_path);
  // A tiktoken rank file ("base64-token rank" per line), the given
  // pre-tokenizer regex and special tokens (content, id).
  static Tokenizer FromTiktoken(
      const std::string& path, const std::string& pattern,
      const std::vector<std::pair<std::string, int32_t>>& specials);

  // The pre-tokenizer regexes of well-known byte-level BPE families.
  static const char* kGpt2Pattern;
  static const char* kCl100kPattern;  // also Llama-3's
  static const char* kQwen2Pattern;
  static const char* kO200kPattern;

  // Text to ids. `add_special` applies the post-processor (e.g. Llama-3's
  // BOS). Special tokens written in the text are always recognised, as the
  // Hugging Face library does by default.
  std::vector<int32_t> Encode(std::string_view text,
                              bool add_special = true) const;
  // Ids to text. Unknown ids throw; `skip_special` drops special tokens.
  std::string Decode(std::span<const int32_t> ids,
                     bool skip_special = false) const;

  // The token as written in the vocabulary (byte-level form, e.g. "Ġthe").
  // Throws on an out-of-range id.
  std::string TokenToPiece(int32_t id) const;
  // The bytes the token decodes to (may be part of a UTF-8 character).
  const std::string& TokenBytes(int32_t id) const;
  // Id of a vocabulary or added token by its written form; -1 if none.
  int32_t TokenId(std::string_view piece) const;
  bool IsSpecial(int32_t id) const;
  // One past the largest id (vocabulary plus added tokens).
  size_t vocab_size() const;

  // Ids of the post-processor's BOS / EOS (the first special token before /
  // after the sequence in its template); -1 when it adds none.
  int32_t bos_id() const;
  int32_t eos_id() const;

  bool loaded() const { return impl_ != nullptr; }
  // A one-line description: model type, vocabulary size, pre-tokenizer.
  std::string Describe() const;

 private:
  explicit Tokenizer(std::shared_ptr<const TokenizerImpl> impl);
  std::shared_ptr<const TokenizerImpl> impl_;
};

// Turns ids into text incrementally: Add() returns the newly completed text,
// holding back an incomplete UTF-8 sequence at the end until the token that
// completes it arrives. The concatenation of all Add() results and Finish()
// equals Decode(all ids). Bytes that can never complete a character come out
// as U+FFFD, as in Decode.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = false);
  std::string Add(int32_t id);
  std::string Add(std::span<const int32_t> ids);
  // Flushes what is held back (as U+FFFD) and resets.
  std::string Finish();
  // Bytes held back waiting for the rest of a character.
  size_t pending() const { return pending_.size(); }

 private:
  const Tokenizer* tok_;
  bool skip_special_;
  std::string pending_;
};

// Replaces every ill-formed UTF-8 subsequence of `s` by U+FFFD
// (maximal-subpart rule). Returns `s` unchanged when it is valid.
std::string SanitizeUtf8(std::string_view s);
// Length of the longest prefix of `s` that can be emitted now: everything but
// a trailing incomplete (yet possibly valid) UTF-8 sequence.
size_t Utf8CompletePrefix(std::string_view s);

}  // namespace dllm
