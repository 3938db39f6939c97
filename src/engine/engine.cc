// Loading a model folder for use: weights, tokenizer, chat template, EOS ids
// and defaults, the same way for every front end.
#include "dllm/engine.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "dllm/error.h"
#include "dllm/files.h"
#include "dllm/generate_options.h"
#include "formats/gguf.h"
#include "formats/tensor_store.h"
#include "tokenizer/gguf_vocab.h"

namespace dllm {

std::vector<int32_t> ModelEosIds(const ModelConfig& c, const Tokenizer* tok) {
  std::vector<int32_t> eos;
  if (c.eos_token_id >= 0) eos.push_back(c.eos_token_id);
  if (tok && tok->loaded()) {
    // LLaDA's instruct models end turns with <|eot_id|>; Dream's with
    // <|im_end|>.
    for (const char* name : {"<|eot_id|>", "<|im_end|>", "<|endoftext|>"}) {
      int32_t id = tok->TokenId(name);
      if (id >= 0 && id < c.vocab_size &&
          std::find(eos.begin(), eos.end(), id) == eos.end())
        eos.push_back(id);
    }
  }
  return eos;
}

GenerateOptions DefaultGenerateOptions(const ModelConfig& c,
                                       std::vector<int32_t> eos_ids) {
  GenerateOptions o;
  o.steps = o.gen_length;
  // Each architecture's published pairing: LLaDA ranks by low confidence,
  // Dream by entropy (its generation_config default).
  o.order = c.arch == Arch::kDream ? Order::kEntropy : Order::kLowConfidence;
  o.eos_ids = std::move(eos_ids);
  return o;
}

void ApplyGenerationConfig(GenerateOptions& o, const std::string& text,
                           const std::string& origin, int32_t vocab_size) {
  using json = nlohmann::json;
  json j = json::parse(text, nullptr, false);
  DLLM_CHECK(!j.is_discarded() && j.is_object(), origin,
             ": expected a JSON object");
  // Hugging Face's names where they differ from ours; Dream's diffusion
  // fields (steps, alg_temp, eps) and ours (block_length, schedule, ...)
  // already use the option table's names.
  json ours = json::object();
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    if (v.is_null()) continue;
    if (k == "max_new_tokens") {
      ours["gen_length"] = v;
    } else if (k == "alg") {
      // Dream spells its orders with underscores ("maskgit_plus").
      DLLM_CHECK(v.is_string(), origin, ": field alg: expected a string");
      std::string name = v.get<std::string>();
      std::replace(name.begin(), name.end(), '_', '-');
      ours["sampler"] = name;
    } else if (k == "eos_token_id") {
      // An id or a list of ids that end generation, beside the config's.
      for (const json& id : v.is_array() ? v : json::array({v})) {
        DLLM_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 &&
                       id.get<int64_t>() < vocab_size,
                   origin, ": field eos_token_id: ", id.dump(),
                   " is not a token id of this model");
        const int32_t t = id.get<int32_t>();
        if (std::find(o.eos_ids.begin(), o.eos_ids.end(), t) == o.eos_ids.end())
          o.eos_ids.push_back(t);
      }
    } else if (k != "do_sample" && FindGenerateOption(k)) {
      ours[k] = v;
    }
  }
  // do_sample false means greedy whatever the temperature says.
  if (j.contains("do_sample") && j["do_sample"].is_boolean() &&
      !j["do_sample"].get<bool>())
    ours["temperature"] = 0.0;
  try {
    ApplyGenerateOptionsJson(o, ours.dump(), /*ignore_unknown=*/false);
  } catch (const Error& e) {
    Fail(origin, ": ", e.what());
  }
}

std::unique_ptr<Engine> Engine::Load(const std::string& dir,
                                     const LoadOptions& options) {
  std::unique_ptr<Engine> e(new Engine());
  e->dir_ = dir;
  e->model_ = Model::Load(dir, options);
  // A GGUF file holds everything a folder holds, as metadata: the tokenizer
  // (tokenizer.huggingface.json or tokenizer.ggml.*), the chat template
  // (tokenizer.chat_template) and our generation defaults
  // (dllm.generation_config, generation_config.json's text).
  std::unique_ptr<GgufFile> gguf;
  if (IsGgufPath(dir)) gguf = std::make_unique<GgufFile>(dir);
  if (gguf ? GgufHasTokenizer(*gguf) : FileExists(dir + "/tokenizer.json"))
    e->tokenizer_ = Tokenizer::FromFile(gguf ? dir : dir + "/tokenizer.json");
  // A missing or broken chat template only matters to chat: keep the reason
  // and report it when a conversation is encoded.
  try {
    e->chat_template_ = ChatTemplate::FromTokenizerConfig(dir);
  } catch (const Error& err) {
    e->chat_template_error_ = err.what();
  }
  e->eos_ids_ = ModelEosIds(e->config(), &e->tokenizer_);
  if (gguf) {
    // llama.cpp's end-of-turn / end-of-message ids end generation too.
    for (const char* key :
         {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
      const int64_t id =
          gguf->GetIntOr(key, -1, -1, int64_t(e->config().vocab_size) - 1);
      if (id >= 0 && std::find(e->eos_ids_.begin(), e->eos_ids_.end(),
                               int32_t(id)) == e->eos_ids_.end())
        e->eos_ids_.push_back(int32_t(id));
    }
  }
  e->defaults_ = DefaultGenerateOptions(e->config(), e->eos_ids_);
  if (gguf && gguf->Find("dllm.generation_config")) {
    ApplyGenerationConfig(
        e->defaults_, gguf->GetString("dllm.generation_config"),
        dir + ": dllm.generation_config", e->config().vocab_size);
    e->eos_ids_ = e->defaults_.eos_ids;
  }
  const std::string gen_config = dir + "/generation_config.json";
  if (!gguf && FileExists(gen_config)) {
    ApplyGenerationConfig(e->defaults_, ReadFileToString(gen_config),
                          gen_config, e->config().vocab_size);
    e->eos_ids_ = e->defaults_.eos_ids;
  }
  return e;
}

std::vector<int32_t> Engine::Encode(std::string_view text, bool add_special,
                                    const std::string& what) const {
  DLLM_CHECK(tokenizer_.loaded(), dir_,
             IsGgufPath(dir_) ? ": no tokenizer in this GGUF file, so "
                              : ": no tokenizer.json, so ",
             what, " cannot be encoded");
  return tokenizer_.Encode(text, add_special);
}

void Engine::RequireChat() const {
  DLLM_CHECK(tokenizer_.loaded(), dir_,
             IsGgufPath(dir_)
                 ? ": chat needs a tokenizer, and this GGUF file has none"
                 : ": chat needs tokenizer.json in the model folder");
  DLLM_CHECK(chat_template_.loaded(),
             "chat needs a chat template: ", chat_template_error_,
             ". A model trained on plain text continues text rather than "
             "answering (use `dllm generate`); for one that can chat, give the "
             "template (`dllm chat --chat-template FILE`)",
             IsGgufPath(dir_) ? "" : " or write it into ",
             IsGgufPath(dir_) ? "" : dir_,
             IsGgufPath(dir_)
                 ? ""
                 : "/tokenizer_config.json as {\"chat_template\": \"...\"}");
}

std::vector<int32_t> Engine::EncodeChat(std::string_view messages_json,
                                        bool add_generation_prompt) const {
  RequireChat();
  return tokenizer_.Encode(
      chat_template_.Apply(messages_json, add_generation_prompt),
      /*add_special=*/false);
}

std::string Engine::Decode(const std::vector<int32_t>& ids) const {
  if (!tokenizer_.loaded()) return "";
  return SanitizeUtf8(tokenizer_.Decode(ids, /*skip_special=*/true));
}

}  // namespace dllm
