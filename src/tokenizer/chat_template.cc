// ChatTemplate: finds a model's chat template (tokenizer_config.json,
// chat_template.jinja) and renders it with the Jinja engine in jinja/.
#include "dllm/chat_template.h"

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/mmap_file.h"
#include "dllm/error.h"
#include "formats/gguf.h"
#include "formats/tensor_store.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"
#include "tokenizer/jinja/value.h"

namespace dllm {

using json = nlohmann::ordered_json;

// The parsed template, shared by copies of a ChatTemplate: rendering only
// reads it, so one parse serves any number of threads.
struct JinjaProgram {
  std::vector<jinja::NodeP> body;
};

ChatTemplate::ChatTemplate() = default;

ChatTemplate ChatTemplate::FromString(const std::string& source,
                                      const std::string& special_tokens_json) {
  ChatTemplate t;
  t.source_ = source;
  t.special_tokens_json_ = special_tokens_json;
  auto prog = std::make_shared<JinjaProgram>();
  prog->body = jinja::Parse(jinja::Lex(source));
  t.program_ = std::move(prog);
  return t;
}

namespace {

// A GGUF model's template (tokenizer.chat_template), with the special
// tokens its ids name (tokenizer.ggml.bos_token_id, ...).
ChatTemplate FromGguf(const std::string& path) {
  GgufFile f(path);
  DLLM_CHECK(f.Find("tokenizer.chat_template") != nullptr, path,
             ": no tokenizer.chat_template in this GGUF file (this model "
             "ships no chat template)");
  const std::string tmpl = f.GetString("tokenizer.chat_template");
  json specials = json::object();
  if (f.Find("tokenizer.ggml.tokens")) {
    const std::vector<std::string>& tokens =
        f.GetStrings("tokenizer.ggml.tokens");
    const int64_t n = int64_t(tokens.size());
    for (const auto& [key, name] :
         {std::pair<const char*, const char*>{"bos_token_id", "bos_token"},
          {"eos_token_id", "eos_token"},
          {"unknown_token_id", "unk_token"},
          {"padding_token_id", "pad_token"},
          {"seperator_token_id", "sep_token"},
          {"mask_token_id", "mask_token"}}) {
      const std::string k = std::string("tokenizer.ggml.") + key;
      if (!f.Find(k)) continue;
      const int64_t id = f.GetInt(k, 0, INT64_MAX);
      if (id < n) specials[name] = tokens[size_t(id)];
    }
  }
  try {
    return ChatTemplate::FromString(
        tmpl, specials.dump(-1, ' ', false, json::error_handler_t::replace));
  } catch (const Error& e) {
    Fail(path, ": tokenizer.chat_template: ", e.what());
  }
}

}  // namespace

ChatTemplate ChatTemplate::FromTokenizerConfig(const std::string& path) {
  namespace fs = std::filesystem;
  if (IsGgufPath(path)) return FromGguf(path);
  std::string file = path;
  std::string override_template;
  if (fs::is_directory(path)) {
    fs::path dir(path);
    if (fs::exists(dir / "chat_template.jinja"))
      override_template =
          ReadFileToString((dir / "chat_template.jinja").string());
    file = (dir / "tokenizer_config.json").string();
    if (!fs::exists(file)) {
      DLLM_CHECK(
          !override_template.empty(), path,
          ": no tokenizer_config.json or chat_template.jinja in this folder");
      return FromString(override_template);
    }
  }
  json cfg;
  try {
    cfg = json::parse(ReadFileToString(file));
  } catch (const json::exception& e) {
    Fail(file, ": not valid JSON: ", e.what());
  }
  DLLM_CHECK(cfg.is_object(), file, ": expected a JSON object");
  std::string tmpl = override_template;
  if (tmpl.empty()) {
    DLLM_CHECK(
        cfg.contains("chat_template"), file,
        ": no \"chat_template\" field (this model ships no chat template)");
    const json& ct = cfg["chat_template"];
    if (ct.is_string()) {
      tmpl = ct.get<std::string>();
    } else if (ct.is_array()) {
      for (const json& e : ct) {
        if (e.is_object() && e.value("name", "") == "default" &&
            e.contains("template") && e["template"].is_string())
          tmpl = e["template"].get<std::string>();
      }
      DLLM_CHECK(!tmpl.empty(), file,
                 ": chat_template: no entry named \"default\"");
    } else {
      Fail(file,
           ": chat_template: expected a string or a list of {name, template}");
    }
  }
  json specials = json::object();
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token",
                          "sep_token", "cls_token", "mask_token"}) {
    if (!cfg.contains(key)) continue;
    const json& v = cfg[key];
    if (v.is_string())
      specials[key] = v;
    else if (v.is_object() && v.contains("content") && v["content"].is_string())
      specials[key] = v["content"];
  }
  if (cfg.contains("additional_special_tokens") &&
      cfg["additional_special_tokens"].is_array())
    specials["additional_special_tokens"] = cfg["additional_special_tokens"];
  try {
    return FromString(tmpl, specials.dump());
  } catch (const Error& e) {
    Fail(file, ": ", e.what());
  }
}

std::string ChatTemplate::Render(std::string_view context_json) const {
  DLLM_CHECK(program_, "chat template: none loaded");
  json ctx;
  try {
    ctx = json::parse(context_json.begin(), context_json.end());
  } catch (const json::exception& e) {
    Fail("chat template context: not valid JSON: ", e.what());
  }
  DLLM_CHECK(ctx.is_object(), "chat template context: expected a JSON object");
  json specials = json::parse(special_tokens_json_);
  jinja::Scope global;
  for (auto it = specials.begin(); it != specials.end(); ++it)
    global.vars[it.key()] = jinja::FromJson(it.value());
  for (auto it = ctx.begin(); it != ctx.end(); ++it)
    global.vars[it.key()] = jinja::FromJson(it.value());
  // Declared after `global`, so destroyed first: the macros it stored in
  // `global` point back into it but can no longer be called then.
  jinja::Interp interp;
  return interp.Run(program_->body, &global);
}

std::string ChatTemplate::Apply(std::string_view messages_json,
                                bool add_generation_prompt) const {
  json in;
  try {
    in = json::parse(messages_json.begin(), messages_json.end());
  } catch (const json::exception& e) {
    Fail("messages: not valid JSON: ", e.what());
  }
  json ctx;
  if (in.is_array()) {
    ctx["messages"] = in;
  } else if (in.is_object() && in.contains("messages")) {
    ctx = in;
  } else {
    Fail(
        "messages: expected a JSON array of {\"role\", \"content\"} or an "
        "object with \"messages\"");
  }
  DLLM_CHECK(ctx["messages"].is_array(), "messages: expected an array");
  ctx["add_generation_prompt"] = add_generation_prompt;
  return Render(ctx.dump());
}

}  // namespace dllm
