// Tokenizers in GGUF files, both ways. A GGUF model holds its tokenizer as
// llama.cpp's tokenizer.ggml.* arrays (model "gpt2" = byte-level BPE: tokens,
// token_type, merges, and the pre-tokenizer by name, tokenizer.ggml.pre) and
// may also hold the whole tokenizer.json as tokenizer.huggingface.json (a
// key gguf-py defines). Reading prefers the latter, which is exact; the
// arrays become the equivalent tokenizer.json. Writing stores both.
#pragma once

#include <string>
#include <vector>

#include "formats/gguf.h"

namespace dllm {

// llama.cpp's token types (tokenizer.ggml.token_type).
enum GgmlTokenType : int32_t {
  kGgmlTokenNormal = 1,
  kGgmlTokenUnknown = 2,
  kGgmlTokenControl = 3,
  kGgmlTokenUserDefined = 4,
  kGgmlTokenUnused = 5,
  kGgmlTokenByte = 6,
};

// The pre-tokenizer regexes (applied in order, each splitting the pieces of
// the one before) of a tokenizer.ggml.pre name, as the Hugging Face
// tokenizers of those families split (llama.cpp's src/llama-vocab.cpp lists
// the same families). False for a name we do not know.
bool GgufPreTokenizerPatterns(const std::string& pre,
                              std::vector<std::string>* patterns);
// The names GgufPreTokenizerPatterns knows, for messages.
std::string GgufPreTokenizerNames();

// Whether the GGUF file holds a tokenizer (either form).
bool GgufHasTokenizer(const GgufFile& f);

// The tokenizer.json text of a GGUF file's tokenizer:
// tokenizer.huggingface.json as stored, else one built from the
// tokenizer.ggml.* arrays (byte-level BPE only; tokens of type UNUSED are left
// out, CONTROL tokens become special added tokens, USER_DEFINED ones plain
// added tokens, add_bos_token / add_eos_token a TemplateProcessing
// post-processor). Throws naming the file and key on anything malformed or
// unsupported.
std::string GgufTokenizerJson(const GgufFile& f);

// Appends the tokenizer.ggml.* metadata of a tokenizer.json (text, named
// `source` in errors) for a model with `vocab_size` embedding rows, as
// llama.cpp's converter writes it: model "gpt2", the pre-tokenizer's name,
// vocab_size tokens (ids the tokenizer lacks as "[PADn]" of type UNUSED),
// their types, the merges, add_bos_token, and tokenizer.huggingface.json
// with the whole text. Keys already in `m` (token ids from the config) are
// left alone. A tokenizer llama.cpp cannot represent (not byte-level BPE,
// ids beyond the vocabulary) gets only tokenizer.huggingface.json, and a
// pre-tokenizer of unknown name gets "default"; each such case adds a line
// to `warnings`.
void AddTokenizerMetadata(const std::string& tokenizer_json,
                          const std::string& source, int vocab_size,
                          GgufMetadata* m, std::vector<std::string>* warnings);

}  // namespace dllm
