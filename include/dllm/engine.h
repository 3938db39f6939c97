// Public API: a model folder loaded for use, as every front end (CLI, server,
// evaluation) needs it: the weights, the tokenizer, the chat template, the
// end-of-sequence ids and the model's default generation options, loaded
// one way (gemma.cpp's `Gemma` is the model for this object).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dllm/chat_template.h"
#include "dllm/config.h"
#include "dllm/generate.h"
#include "dllm/model.h"
#include "dllm/tokenizer.h"

namespace dllm {

class Engine {
 public:
  // Loads `dir`: config.json and the weights (required), tokenizer.json and
  // the chat template of tokenizer_config.json (each optional: loaded() is
  // false when absent). `dir` may also be a GGUF file, which holds all of
  // these as metadata (dllm/convert.h). Throws dllm::Error naming what is
  // wrong.
  // `options` picks the device (dllm/model.h).
  static std::unique_ptr<Engine> Load(const std::string& dir,
                                      const LoadOptions& options = {});

  Model& model() { return *model_; }
  const ModelConfig& config() const { return model_->config(); }
  const std::string& dir() const { return dir_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  const ChatTemplate& chat_template() const { return chat_template_; }
  // The config's eos_token_id plus the tokenizer's end-of-turn tokens.
  const std::vector<int32_t>& eos_ids() const { return eos_ids_; }

  // What this model generates with when the user says nothing: the
  // architecture's published sampler, then the folder's
  // generation_config.json (Hugging Face's fields: max_new_tokens,
  // temperature, top_p, top_k, do_sample, eos_token_id; Dream's steps, alg,
  // alg_temp, eps; and any option of dllm/generate_options.h by its JSON
  // name, e.g. block_length, schedule, threshold).
  const GenerateOptions& DefaultOptions() const { return defaults_; }

  // Text to ids; `what` names the text in the error raised when the folder
  // has no tokenizer (e.g. "-p TEXT").
  std::vector<int32_t> Encode(std::string_view text, bool add_special,
                              const std::string& what) const;
  // A conversation (JSON array of {"role", "content"}) rendered through the
  // chat template and encoded; a clear error when there is no template.
  std::vector<int32_t> EncodeChat(std::string_view messages_json,
                                  bool add_generation_prompt = true) const;
  // Replaces the folder's chat template (e.g. `dllm chat --chat-template`).
  void SetChatTemplate(ChatTemplate t) { chat_template_ = std::move(t); }
  // Throws a clear error unless the folder has a tokenizer and a chat
  // template (what `dllm chat` needs), naming what is missing.
  void RequireChat() const;
  // Ids to text without special tokens, ill-formed UTF-8 replaced.
  std::string Decode(const std::vector<int32_t>& ids) const;

 private:
  Engine() = default;
  std::string dir_;
  std::unique_ptr<Model> model_;
  Tokenizer tokenizer_;
  ChatTemplate chat_template_;
  std::string chat_template_error_;  // why there is none, for EncodeChat
  std::vector<int32_t> eos_ids_;
  GenerateOptions defaults_;
};

// End-of-sequence ids of a model: the config's eos_token_id and, when a
// tokenizer is given, its end-of-turn tokens (<|eot_id|>, <|im_end|>,
// <|endoftext|>) that fall inside the model's vocabulary.
std::vector<int32_t> ModelEosIds(const ModelConfig& c, const Tokenizer* tok);

// The architecture's published sampler and schedule pairing, with the
// model's EOS ids (what Engine::DefaultOptions starts from).
GenerateOptions DefaultGenerateOptions(const ModelConfig& c,
                                       std::vector<int32_t> eos_ids);

// Applies the text of a generation_config.json (as Engine::Load reads it) to
// `o`; errors name `origin` and the field.
void ApplyGenerationConfig(GenerateOptions& o, const std::string& text,
                           const std::string& origin, int32_t vocab_size);

}  // namespace dllm
