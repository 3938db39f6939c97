// Chat templates: the subset of Jinja that real chat templates use, rendered
// the way Hugging Face does (@huggingface/jinja, the engine of transformers.js
// and the Hub; transformers' own jinja2 environment agrees on these
// templates): trim_blocks + lstrip_blocks, `{%- -%}` whitespace control,
// if/elif/else, for (loop.index0/first/last/length..., else, tuple unpacking),
// set (including namespace attributes and {% set %}...{% endset %}), macros,
// break/continue, filters (trim, length, tojson, join, items, default,
// select/reject, selectattr/rejectattr, map(attribute=), first, last,
// reverse, sort, unique, upper, lower, title, capitalize, replace, indent,
// int, float, string, abs, list, safe), tests (defined, none, string,
// mapping, iterable, ...), string and dict methods, raise_exception,
// namespace, range, strftime_now. Anything else fails with a dllm::Error that
// names the construct and its line.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace dllm {

struct JinjaProgram;  // chat_template.cc

class ChatTemplate {
 public:
  ChatTemplate();
  // tokenizer_config.json (its "chat_template", a string or a list of
  // {name, template} where "default" wins; bos_token / eos_token / ...), a
  // model folder holding it (or chat_template.jinja / chat_template.json),
  // or a GGUF file (tokenizer.chat_template; the special tokens its
  // tokenizer.ggml.*_token_id keys name).
  static ChatTemplate FromTokenizerConfig(const std::string& path);
  // A template source; `special_tokens_json` is an object such as
  // {"bos_token": "<s>", "eos_token": "</s>"} added to every render.
  static ChatTemplate FromString(const std::string& source,
                                 const std::string& special_tokens_json = "{}");

  // Renders `messages_json` (a JSON array of {"role", "content", ...}, or an
  // object {"messages": [...], "tools": [...], ...} whose other fields become
  // template variables too) with `add_generation_prompt`.
  std::string Apply(std::string_view messages_json,
                    bool add_generation_prompt) const;
  // Renders with an arbitrary JSON object as the variables (the special
  // tokens are added unless given).
  std::string Render(std::string_view context_json) const;

  const std::string& source() const { return source_; }
  bool loaded() const { return program_ != nullptr; }

 private:
  std::string source_;
  std::string special_tokens_json_ = "{}";
  std::shared_ptr<const JinjaProgram> program_;
};

}  // namespace dllm
