// libFuzzer: request bodies from strangers, through exactly what
// POST /v1/completions and /v1/chat/completions run on them before any
// generation (server::ParseRequest against a real model's tokenizer, chat
// template, context and defaults), then what the scheduler does on
// admission (Generator::Add) and the answer writers, without a socket. The
// first byte picks the endpoint (even: completions, odd: chat); the rest is
// the body. Any bytes must end in a checked request or an ApiError with a
// 4xx status: no crash, no other exception, no undefined behaviour.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "dllm/engine.h"
#include "dllm/error.h"
#include "dllm/generator.h"
#include "server/api.h"

namespace {

using dllm::server::ApiError;
using dllm::server::Endpoint;

std::unique_ptr<dllm::Engine> g_engine;
std::unique_ptr<dllm::Generator> g_gen;

void Fail(const char* what) {
  std::fprintf(stderr, "http_json_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The shipped model: a real tokenizer and chat template (the weights are
  // mmapped and never run here).
  g_engine = dllm::Engine::Load(DLLM_SOURCE_DIR "/models/shakespeare-mdm");
  g_gen = std::make_unique<dllm::Generator>(g_engine->model());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Endpoint endpoint =
      (data[0] & 1) ? Endpoint::kChat : Endpoint::kCompletions;
  const std::string_view body(reinterpret_cast<const char*>(data + 1),
                              size - 1);
  dllm::server::GenRequest r;
  try {
    r = dllm::server::ParseRequest(endpoint, body, *g_engine,
                                   "shakespeare-mdm");
  } catch (const ApiError& e) {
    if (e.status < 400 || e.status > 499) Fail("an ApiError that is no 4xx");
    (void)dllm::server::ErrorJson(e);
    return 0;
  }
  // What an accepted request promises the scheduler.
  const int ctx = g_engine->config().max_seq_len;
  if (r.prompt.empty()) Fail("accepted an empty prompt");
  if (r.max_tokens < 1 || r.max_tokens > r.opt.gen_length)
    Fail("max_tokens outside [1, gen_length]");
  if (int64_t(r.prompt.size()) + r.opt.gen_length +
          int64_t(r.opt.suffix.size()) >
      ctx)
    Fail("accepted a request longer than the context");
  if (r.diffusing && !r.stream) Fail("diffusing without stream");
  // Admission, as the scheduler does it (an Error there is a 400 too).
  try {
    const int id = g_gen->Add(r.prompt, r.opt);
    dllm::server::CanvasFrame f;
    const dllm::Canvas& c = g_gen->canvas(id);
    const int end = std::min(c.gen_end, c.prompt_len + r.max_tokens);
    f.total_steps = g_gen->total_steps(id);
    f.ids.assign(c.ids.begin() + c.prompt_len, c.ids.begin() + end);
    f.masked.assign(c.masked.begin() + c.prompt_len, c.masked.begin() + end);
    (void)dllm::server::CanvasEvent(endpoint, "cmpl-0", 0, "m", f,
                                    g_engine->tokenizer());
    g_gen->Remove(id);
  } catch (const dllm::Error&) {
  }
  // The answer writers take any text (stop strings are the client's bytes).
  std::string text;
  for (const std::string& s : r.stop) text += s;
  dllm::server::Usage u{int(r.prompt.size()), r.max_tokens};
  (void)dllm::server::ResponseJson(endpoint, "cmpl-0", 0, "m", text, "stop", u);
  (void)dllm::server::ChunkEvent(endpoint, "cmpl-0", 0, "m", text, "", false,
                                 nullptr);
  (void)dllm::server::ChunkEvent(endpoint, "cmpl-0", 0, "m", "", "", false, &u);
  return 0;
}
