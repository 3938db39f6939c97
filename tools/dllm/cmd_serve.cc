// dllm serve: the OpenAI-compatible HTTP server over one model folder.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "args.h"
#include "command.h"
#include "dllm/engine.h"
#include "dllm/error.h"
#include "dllm/server.h"

namespace dllm::cli {
namespace {

int g_stop_pipe[2] = {-1, -1};

void OnStopSignal(int) {
  const char c = 's';
  (void)!write(g_stop_pipe[1], &c, 1);  // async-signal-safe
}

int RunServe(int argc, char** argv) {
  Args a("dllm serve -m DIR [--host 127.0.0.1] [--port 8080] [options]",
         "Serves the model over HTTP with OpenAI's API: POST /v1/completions "
         "(prompt, suffix for\n"
         "fill-in-the-middle), POST /v1/chat/completions, GET /v1/models, "
         "/health and /metrics\n"
         "(Prometheus). Requests take OpenAI's fields (max_tokens, "
         "temperature, top_p, stop, seed,\n"
         "stream) and every generation option by its JSON name (steps, "
         "block_length, sampler, ...);\n"
         "what a request leaves out comes from the model's defaults. Requests "
         "share each forward\n"
         "pass (continuous batching); beyond --max-batch they queue, beyond "
         "--max-queue they get 429.");
  a.Option("-m,--model", "DIR", "model folder");
  a.Option("--host", "ADDR",
           "address to listen on (0.0.0.0 for every interface: only with "
           "--api-key on a network you trust)",
           "127.0.0.1");
  a.Option("--port", "N", "port (0 = any free one, printed at start)", "8080");
  a.Option("--api-key", "KEY",
           "require 'Authorization: Bearer KEY' on /v1/ requests (default: "
           "$DLLM_API_KEY, else none)");
  a.Option("--max-batch", "N", "sequences generated together", "8");
  a.Option("--max-queue", "N", "requests waiting for a place in the batch",
           "32");
  a.Option("--timeout", "SECONDS", "per-request deadline", "600");
  a.Option("--max-body", "BYTES", "largest request body accepted", "1048576");
  a.Option("--model-name", "NAME",
           "the model id clients use (default: the folder's name)");
  a.Flag("--quiet", "no line per request on stderr");
  a.Option("--step-delay-ms", "MS",
           "testing: wait MS before every denoising step (holds requests "
           "open in tests)",
           "0");
  AddThreadsOption(a);
  AddDeviceOption(a);
  if (!a.Parse(argc, argv)) return a.exit_code();
  DLLM_USAGE_CHECK(a.Has("--model"), "serve: -m DIR is required");
  ServerOptions o;
  o.host = a.Get("--host");
  o.port = int(a.GetInt("--port", 0, 65535));
  o.api_key = a.Get("--api-key");
  if (o.api_key.empty())
    if (const char* k = std::getenv("DLLM_API_KEY")) o.api_key = k;
  o.max_batch = int(a.GetInt("--max-batch", 1, 4096));
  o.max_queue = int(a.GetInt("--max-queue", 0, 65536));
  o.timeout_seconds = a.GetDouble("--timeout", 0.001, 1e7);
  o.max_body_bytes = size_t(a.GetInt("--max-body", 1024, int64_t(1) << 32));
  o.model_name = a.Get("--model-name");
  o.step_delay_ms = a.GetDouble("--step-delay-ms", 0, 1e4);
  o.log_requests = !a.GetFlag("--quiet");
  // SIGINT and SIGTERM end the server cleanly. Any thread may take the
  // signal (OpenBLAS starts threads before main), so the handler only
  // writes a byte to a pipe that one thread waits on.
  DLLM_CHECK(pipe(g_stop_pipe) == 0, "serve: cannot create a pipe");
  struct sigaction sa = {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client gone is a failed write, not a death

  ApplyThreadsOption(a);

  auto engine = Engine::Load(a.Get("--model"), {DeviceOption(a)});
  Server server(*engine, o);
  const int port = server.Bind();
  std::fprintf(
      stderr, "dllm serve: %s as '%s' on http://%s:%d (batch %d, queue %d%s)\n",
      a.Get("--model").c_str(), server.model_name().c_str(), o.host.c_str(),
      port, o.max_batch, o.max_queue,
      o.api_key.empty() ? "" : ", API key required");
  std::fflush(stderr);
  std::thread waiter([&] {
    char c = 0;
    while (read(g_stop_pipe[0], &c, 1) < 0 && errno == EINTR) {
    }
    if (c == 's') std::fprintf(stderr, "dllm serve: stopping\n");
    server.Stop();
  });
  server.Serve();
  // Serve() returned without a signal (it failed): wake the waiter.
  const char quit = 'q';
  (void)!write(g_stop_pipe[1], &quit, 1);
  waiter.join();
  return 0;
}

}  // namespace

DLLM_COMMAND("serve", "serve a model over HTTP (OpenAI-compatible API)",
             RunServe);

}  // namespace dllm::cli
