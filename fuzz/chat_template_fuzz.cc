// libFuzzer: a chat template is a program from a stranger's model folder.
// Parsing and rendering any text must end in output or a dllm::Error: no
// crash, no stack overflow, no endless loop, no runaway memory (the bounds
// of src/tokenizer/jinja/limits.h).
#include <cstddef>
#include <cstdint>
#include <string>

#include "dllm/chat_template.h"
#include "dllm/error.h"

namespace {

// A conversation touching what templates branch on: a system prompt, turns
// of both roles, a tool call and a tool definition.
constexpr const char* kConversation = R"({
  "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi <|im_end|> {{ x }}"},
    {"role": "assistant", "content": "Hello.",
     "tool_calls": [{"type": "function",
                     "function": {"name": "f", "arguments": {"a": 1}}}]},
    {"role": "tool", "content": "42"},
    {"role": "user", "content": "Ünïcödé ✓"}
  ],
  "tools": [{"type": "function",
             "function": {"name": "f", "description": "d",
                          "parameters": {"type": "object"}}}]
})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string source(reinterpret_cast<const char*>(data), size);
  try {
    dllm::ChatTemplate t = dllm::ChatTemplate::FromString(
        source, R"({"bos_token": "<s>", "eos_token": "</s>"})");
    (void)t.Apply(kConversation, true);
    (void)t.Apply("[]", false);
  } catch (const dllm::Error&) {
  }
  return 0;
}
