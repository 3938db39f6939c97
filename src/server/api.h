// The OpenAI-shaped request and response bodies of the server: parsing and
// checking a request into a generation job, and the JSON of answers, stream
// chunks and error objects. No sockets here, so every bad-input case is a
// plain function call in the tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dllm/error.h"
#include "dllm/generate.h"

namespace dllm {
class Engine;
class Tokenizer;
}  // namespace dllm

namespace dllm::server {

// A request that fails with HTTP `status` and OpenAI's error object
// {"error": {"message", "type", "param", "code"}} ("" = null).
class ApiError : public Error {
 public:
  ApiError(int status, const std::string& message,
           std::string type = "invalid_request_error", std::string param = "",
           std::string code = "")
      : Error(message),
        status(status),
        type(std::move(type)),
        param(std::move(param)),
        code(std::move(code)) {}
  int status;
  std::string type, param, code;
};

std::string ErrorJson(const std::string& message, const std::string& type,
                      const std::string& param, const std::string& code);
inline std::string ErrorJson(const ApiError& e) {
  return ErrorJson(e.what(), e.type, e.param, e.code);
}

enum class Endpoint { kCompletions, kChat };

// A checked request, ready for the scheduler.
struct GenRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  std::vector<int32_t> prompt;  // chat: the rendered conversation
  // gen_length may exceed max_tokens: it is rounded up to whole blocks
  // (OpenAI clients send any max_tokens; LLaDA's blocks need multiples).
  GenerateOptions opt;
  int max_tokens = 0;  // the client's cap on completion tokens
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // Also stream the whole canvas after every step (Mercury's `diffusing`),
  // as `event: canvas` server-sent events; needs stream.
  bool diffusing = false;
};

// Longest stop list and stop string accepted (OpenAI allows 4 strings).
constexpr int kMaxStops = 16;
constexpr size_t kMaxStopBytes = 256;

// Parses and checks a request body against the engine (its tokenizer,
// template, context and default options). Throws ApiError.
GenRequest ParseRequest(Endpoint endpoint, std::string_view body,
                        const Engine& engine, const std::string& model_name);

// Answers. `id` like "cmpl-7", `created` in Unix seconds.
struct Usage {
  int prompt_tokens = 0, completion_tokens = 0;
};
std::string ResponseJson(Endpoint endpoint, const std::string& id,
                         int64_t created, const std::string& model,
                         const std::string& text,
                         const std::string& finish_reason, const Usage& usage);
// One SSE chunk: text (or, for chat, the role when `role_chunk`), or the
// last one with a finish_reason, or (usage != nullptr) the usage chunk of
// stream_options.include_usage. Returned as "data: {...}\n\n".
std::string ChunkEvent(Endpoint endpoint, const std::string& id,
                       int64_t created, const std::string& model,
                       const std::string& text,
                       const std::string& finish_reason, bool role_chunk,
                       const Usage* usage);

// One step of a generation as the live view sees it (`diffusing`): the
// generation region up to max_tokens.
struct CanvasFrame {
  int step = 0;                 // steps this sequence has taken (0 = none yet)
  int total_steps = 0;          // planned steps (fixed schedules) or the cap
  double elapsed_ms = 0;        // since the request joined the batch
  std::vector<int32_t> ids;     // token ids ([MASK] where masked)
  std::vector<uint8_t> masked;  // 1 where still masked
  std::vector<int32_t> committed;  // indices into ids committed this step
};
// "event: canvas\ndata: {...}\n\n": the frame with each position's text
// (null where masked) decoded by `tok`. See README "Serving".
std::string CanvasEvent(Endpoint endpoint, const std::string& id,
                        int64_t created, const std::string& model,
                        const CanvasFrame& frame, const Tokenizer& tok);

}  // namespace dllm::server
