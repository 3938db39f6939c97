#include "server/api.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "dllm/engine.h"
#include "dllm/generate_options.h"
#include "dllm/tokenizer.h"

namespace dllm::server {
namespace {

using nlohmann::json;

[[noreturn]] void Bad(const std::string& param, const std::string& message,
                      const std::string& code = "") {
  throw ApiError(400, message, "invalid_request_error", param, code);
}

// Fields this file maps itself; every other field that names a generation
// option (steps, block_length, sampler, ...) goes through the option table.
bool OpenAiField(const std::string& k) {
  return k == "max_tokens" || k == "max_completion_tokens" || k == "stop" ||
         k == "stream" || k == "stream_options" || k == "prompt" ||
         k == "messages" || k == "suffix" || k == "model" || k == "n" ||
         k == "diffusing";
}

std::string JsonType(const json& v) { return v.type_name(); }

std::vector<std::string> ParseStop(const json& v) {
  std::vector<std::string> out;
  if (v.is_null()) return out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    for (const json& s : v) {
      if (!s.is_string())
        Bad("stop", "stop: expected a string or a list of strings, got a " +
                        JsonType(s) + " in the list");
      out.push_back(s.get<std::string>());
    }
  } else {
    Bad("stop",
        "stop: expected a string or a list of strings, got " + JsonType(v));
  }
  if (out.size() > size_t(kMaxStops))
    Bad("stop", "stop: at most " + std::to_string(kMaxStops) +
                    " strings, got " + std::to_string(out.size()));
  for (const std::string& s : out) {
    if (s.empty()) Bad("stop", "stop: strings must not be empty");
    if (s.size() > kMaxStopBytes)
      Bad("stop", "stop: strings are limited to " +
                      std::to_string(kMaxStopBytes) + " bytes");
  }
  return out;
}

// "prompt": a string, a list holding one string, or a list of token ids.
std::vector<int32_t> ParsePrompt(const json& v, const Engine& engine) {
  const int V = engine.config().vocab_size;
  if (v.is_array() && v.size() == 1 && v[0].is_string())
    return ParsePrompt(v[0], engine);
  if (v.is_string()) {
    const std::string text = v.get<std::string>();
    if (text.empty()) Bad("prompt", "prompt: must not be empty");
    std::vector<int32_t> ids;
    try {
      ids = engine.Encode(text, /*add_special=*/true, "the prompt");
    } catch (const Error& e) {
      Bad("prompt", std::string("prompt: ") + e.what());
    }
    if (ids.empty()) Bad("prompt", "prompt: encodes to no tokens");
    return ids;
  }
  if (v.is_array()) {
    if (v.empty()) Bad("prompt", "prompt: must not be empty");
    std::vector<int32_t> ids;
    for (const json& t : v) {
      if (t.is_string())
        Bad("prompt", "prompt: one prompt per request (n = 1); got a list of " +
                          std::to_string(v.size()) + " strings");
      if (!t.is_number_integer() || t.get<int64_t>() < 0 ||
          t.get<int64_t>() >= V)
        Bad("prompt", "prompt: token ids must be integers in [0, " +
                          std::to_string(V) + "), got " + t.dump());
      ids.push_back(int32_t(t.get<int64_t>()));
    }
    return ids;
  }
  Bad("prompt",
      "prompt: expected a string or a list of token ids, got " + JsonType(v));
}

// "messages": [{"role", "content"}], content a string or a list of text
// parts (OpenAI's [{"type": "text", "text": ...}]).
json ParseMessages(const json& v) {
  if (!v.is_array())
    Bad("messages",
        "messages: expected a list of {\"role\", \"content\"}, "
        "got " +
            JsonType(v));
  if (v.empty()) Bad("messages", "messages: must not be empty");
  json out = json::array();
  for (size_t i = 0; i < v.size(); ++i) {
    const json& m = v[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) Bad("messages", where + ": expected an object");
    if (!m.contains("role") || !m["role"].is_string())
      Bad("messages", where + ".role: expected a string");
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant" &&
        role != "developer" && role != "tool")
      Bad("messages", where +
                          ".role: expected system, user or assistant, "
                          "got '" +
                          role + "'");
    std::string content;
    const json& c = m.contains("content") ? m["content"] : json();
    if (c.is_string()) {
      content = c.get<std::string>();
    } else if (c.is_array()) {
      for (const json& part : c) {
        if (!part.is_object() || part.value("type", "") != "text" ||
            !part.contains("text") || !part["text"].is_string())
          Bad("messages", where + ".content: only text parts are supported");
        content += part["text"].get<std::string>();
      }
    } else {
      Bad("messages", where + ".content: expected a string");
    }
    out.push_back({{"role", role == "developer" ? "system" : role},
                   {"content", content}});
  }
  return out;
}

// Applies one field alone to a scratch copy, so that the error names it.
void CheckOptionField(const GenerateOptions& base, const std::string& key,
                      const json& value) {
  GenerateOptions scratch = base;
  json one = json::object();
  one[key] = value;
  try {
    ApplyGenerateOptionsJson(scratch, one.dump(), /*ignore_unknown=*/true);
  } catch (const Error& e) {
    Bad(key, e.what());
  }
}

// The option a validation message is about ("top-p must be in (0, 1]"
// names top_p), so that the error object's param points at the field.
std::string ParamOfMessage(const std::string& msg) {
  for (const GenerateOptionSpec& s : GenerateOptionSpecs()) {
    std::string dash = s.name, space = s.name, json_name = s.name;
    for (char& c : space)
      if (c == '-') c = ' ';
    for (char& c : json_name)
      if (c == '-') c = '_';
    for (const std::string& n : {dash, space})
      if (msg.rfind(n + " ", 0) == 0 || msg.rfind(n + "(", 0) == 0 ||
          msg.rfind(n + " (", 0) == 0)
        return json_name;
  }
  return "";
}

}  // namespace

std::string ErrorJson(const std::string& message, const std::string& type,
                      const std::string& param, const std::string& code) {
  json e = {{"message", message},
            {"type", type},
            {"param", param.empty() ? json() : json(param)},
            {"code", code.empty() ? json() : json(code)}};
  return json{{"error", e}}.dump(-1, ' ', false,
                                 json::error_handler_t::replace);
}

GenRequest ParseRequest(Endpoint endpoint, std::string_view body,
                        const Engine& engine, const std::string& model_name) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    Bad("", "could not parse the JSON body of the request", "invalid_json");
  if (!j.is_object())
    Bad("", "the request body must be a JSON object, got " + JsonType(j),
        "invalid_json");
  GenRequest r;
  r.endpoint = endpoint;

  if (j.contains("model") && !j["model"].is_null()) {
    if (!j["model"].is_string())
      Bad("model", "model: expected a string, got " + JsonType(j["model"]));
    const std::string m = j["model"].get<std::string>();
    if (m != model_name)
      throw ApiError(404,
                     "The model '" + m + "' does not exist; this server has '" +
                         model_name + "' (GET /v1/models)",
                     "invalid_request_error", "model", "model_not_found");
  }
  if (j.contains("n") && !j["n"].is_null() &&
      !(j["n"].is_number_integer() && j["n"].get<int64_t>() == 1))
    Bad("n", "n: only n = 1 is supported, got " + j["n"].dump());
  if (j.contains("stream") && !j["stream"].is_null()) {
    if (!j["stream"].is_boolean())
      Bad("stream",
          "stream: expected true or false, got " + JsonType(j["stream"]));
    r.stream = j["stream"].get<bool>();
  }
  if (j.contains("stream_options") && j["stream_options"].is_object()) {
    const json& so = j["stream_options"];
    if (so.contains("include_usage")) {
      if (!so["include_usage"].is_boolean())
        Bad("stream_options",
            "stream_options.include_usage: expected true or false");
      r.include_usage = so["include_usage"].get<bool>();
    }
  }
  if (j.contains("stop")) r.stop = ParseStop(j["stop"]);
  if (j.contains("diffusing") && !j["diffusing"].is_null()) {
    if (!j["diffusing"].is_boolean())
      Bad("diffusing",
          "diffusing: expected true or false, got " + JsonType(j["diffusing"]));
    r.diffusing = j["diffusing"].get<bool>();
    if (r.diffusing && !r.stream)
      Bad("diffusing",
          "diffusing: the canvases come as server-sent events, so it needs "
          "\"stream\": true");
  }

  // Generation options: the model's defaults, then every field the option
  // table knows, then max_tokens as gen_length.
  GenerateOptions o = engine.DefaultOptions();
  json table = json::object();
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (OpenAiField(it.key()) || it.value().is_null()) continue;
    if (!FindGenerateOption(it.key())) continue;  // user, logprobs, ...
    CheckOptionField(o, it.key(), it.value());
    table[it.key()] = it.value();
  }
  const char* max_key = j.contains("max_tokens") ? "max_tokens"
                        : j.contains("max_completion_tokens")
                            ? "max_completion_tokens"
                            : nullptr;
  const int ctx = engine.config().max_seq_len;
  int max_tokens = o.gen_length;
  bool max_given = false;
  if (max_key && !j[max_key].is_null()) {
    const json& v = j[max_key];
    if (!v.is_number_integer())
      Bad(max_key,
          std::string(max_key) + ": expected an integer, got " + JsonType(v));
    const int64_t n = v.get<int64_t>();
    if (n < 1 || n > ctx)
      Bad(max_key, std::string(max_key) + ": must be in [1, " +
                       std::to_string(ctx) + "] (the model's context), got " +
                       std::to_string(n));
    max_tokens = int(n);
    max_given = true;
  }
  if (max_given && !table.contains("gen_length"))
    table["gen_length"] = max_tokens;
  try {
    ApplyGenerateOptionsJson(o, table.dump(), /*ignore_unknown=*/true);
  } catch (const Error& e) {
    Bad("", e.what());
  }
  if (table.contains("gen_length")) max_tokens = o.gen_length;
  // Whole blocks: round the canvas up and cap the text at max_tokens, unless
  // the client chose the block length itself (then its choice must fit).
  const int block = o.block_length > 0 ? o.block_length : o.gen_length;
  if (o.gen_length % block != 0 && !table.contains("block_length")) {
    o.gen_length = (o.gen_length + block - 1) / block * block;
    if (!table.contains("steps")) o.steps = o.gen_length;
  }
  r.max_tokens = max_tokens;

  if (endpoint == Endpoint::kCompletions) {
    if (!j.contains("prompt") || j["prompt"].is_null())
      Bad("prompt", "prompt: required");
    r.prompt = ParsePrompt(j["prompt"], engine);
    if (j.contains("suffix") && !j["suffix"].is_null()) {
      if (!j["suffix"].is_string())
        Bad("suffix",
            "suffix: expected a string, got " + JsonType(j["suffix"]));
      const std::string s = j["suffix"].get<std::string>();
      if (!s.empty()) {
        try {
          o.suffix = engine.Encode(s, /*add_special=*/false, "the suffix");
        } catch (const Error& e) {
          Bad("suffix", std::string("suffix: ") + e.what());
        }
      }
    }
  } else {
    if (!j.contains("messages")) Bad("messages", "messages: required");
    const json messages = ParseMessages(j["messages"]);
    try {
      r.prompt = engine.EncodeChat(messages.dump());
    } catch (const Error& e) {
      Bad("messages", e.what());
    }
  }
  const int64_t total =
      int64_t(r.prompt.size()) + o.gen_length + int64_t(o.suffix.size());
  if (total > ctx)
    Bad(endpoint == Endpoint::kChat ? "messages" : "prompt",
        "this model's context is " + std::to_string(ctx) +
            " tokens; the request needs " + std::to_string(total) + " (" +
            std::to_string(r.prompt.size()) + " in the prompt" +
            (o.suffix.empty()
                 ? ""
                 : ", " + std::to_string(o.suffix.size()) + " in the suffix") +
            ", " + std::to_string(o.gen_length) + " to generate)",
        "context_length_exceeded");
  try {
    ValidateGenerateOptions(o, int(r.prompt.size()), ctx);
  } catch (const Error& e) {
    std::string param = ParamOfMessage(e.what());
    // The client said max_tokens; gen_length is our name for it.
    if (param == "gen_length" && max_given) param = max_key;
    Bad(param, e.what());
  }
  r.opt = std::move(o);
  return r;
}

namespace {
json UsageJson(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}
json Reason(const std::string& r) { return r.empty() ? json() : json(r); }
std::string Dump(const json& j) {
  // Invalid UTF-8 cannot reach here (the decoder replaces it), but a dump
  // that throws would take a connection down: replace instead.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}
}  // namespace

std::string ResponseJson(Endpoint endpoint, const std::string& id,
                         int64_t created, const std::string& model,
                         const std::string& text,
                         const std::string& finish_reason, const Usage& usage) {
  json choice;
  if (endpoint == Endpoint::kCompletions)
    choice = {{"index", 0},
              {"text", text},
              {"logprobs", nullptr},
              {"finish_reason", Reason(finish_reason)}};
  else
    choice = {{"index", 0},
              {"message", {{"role", "assistant"}, {"content", text}}},
              {"logprobs", nullptr},
              {"finish_reason", Reason(finish_reason)}};
  json j = {{"id", id},
            {"object", endpoint == Endpoint::kCompletions ? "text_completion"
                                                          : "chat.completion"},
            {"created", created},
            {"model", model},
            {"choices", json::array({choice})},
            {"usage", UsageJson(usage)}};
  return Dump(j);
}

std::string ChunkEvent(Endpoint endpoint, const std::string& id,
                       int64_t created, const std::string& model,
                       const std::string& text,
                       const std::string& finish_reason, bool role_chunk,
                       const Usage* usage) {
  json choices = json::array();
  if (!usage) {
    json choice;
    if (endpoint == Endpoint::kCompletions) {
      choice = {{"index", 0},
                {"text", text},
                {"logprobs", nullptr},
                {"finish_reason", Reason(finish_reason)}};
    } else {
      json delta = json::object();
      if (role_chunk) {
        delta = {{"role", "assistant"}, {"content", ""}};
      } else if (finish_reason.empty()) {
        delta = {{"content", text}};
      }
      choice = {{"index", 0},
                {"delta", delta},
                {"logprobs", nullptr},
                {"finish_reason", Reason(finish_reason)}};
    }
    choices.push_back(choice);
  }
  json j = {
      {"id", id},
      {"object", endpoint == Endpoint::kCompletions ? "text_completion"
                                                    : "chat.completion.chunk"},
      {"created", created},
      {"model", model},
      {"choices", choices}};
  if (usage) j["usage"] = UsageJson(*usage);
  return "data: " + Dump(j) + "\n\n";
}

std::string CanvasEvent(Endpoint endpoint, const std::string& id,
                        int64_t created, const std::string& model,
                        const CanvasFrame& frame, const Tokenizer& tok) {
  // Keys in the order README documents them (json sorts its keys).
  using ojson = nlohmann::ordered_json;
  ojson tokens = ojson::array();
  int masked = 0;
  for (size_t i = 0; i < frame.ids.size(); ++i) {
    if (i < frame.masked.size() && frame.masked[i]) {
      tokens.push_back(nullptr);
      ++masked;
      continue;
    }
    // A live view must not fail on an id its tokenizer lacks (models pad
    // their vocabularies): such ids show as <id>.
    const int32_t t = frame.ids[i];
    std::string piece = "<" + std::to_string(t) + ">";
    if (tok.loaded()) {
      try {
        piece = SanitizeUtf8(tok.Decode(std::vector<int32_t>{t}));
      } catch (const Error&) {
      }
    }
    tokens.push_back(std::move(piece));
  }
  ojson j = {
      {"id", id},
      {"object", endpoint == Endpoint::kCompletions ? "text_completion.canvas"
                                                    : "chat.completion.canvas"},
      {"created", created},
      {"model", model},
      {"step", frame.step},
      {"total_steps", frame.total_steps},
      {"elapsed_ms", std::round(frame.elapsed_ms * 1e3) / 1e3},
      {"masked", masked},
      {"ids", frame.ids},
      {"tokens", std::move(tokens)},
      {"committed", frame.committed}};
  return "event: canvas\ndata: " +
         j.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n\n";
}

}  // namespace dllm::server
