// Public API: the HTTP server (`dllm serve`). OpenAI-shaped endpoints
// (/v1/completions, /v1/chat/completions, /v1/models) plus /health and
// /metrics over one loaded Engine. One scheduler thread owns the model and a
// Generator: requests from the HTTP threads wait in a bounded queue, join the
// running batch between steps and leave it when done (continuous batching),
// and streaming responses carry text as its prefix becomes final (DESIGN.md
// "Streaming a diffusion generation").
//
//   auto engine = dllm::Engine::Load("models/shakespeare-mdm");
//   dllm::Server server(*engine, {});
//   int port = server.Bind();   // throws dllm::Error if the port is taken
//   server.Serve();             // until Stop() from another thread
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace dllm {

class Engine;

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback unless asked otherwise
  int port = 8080;                 // 0 = any free port (Bind() says which)
  std::string api_key;  // when set, requests need "Authorization: Bearer KEY"
  int max_batch = 8;    // sequences stepped together
  int max_queue = 32;   // requests waiting beyond those; more get 429
  double timeout_seconds = 600;  // per request, from arrival to the end
  size_t max_body_bytes = 1 << 20;
  std::string model_name;    // the id clients name; "" = the folder's name
  bool log_requests = true;  // one line per request on stderr
  // Testing: the scheduler waits this long before every denoising step, so
  // that a test can hold a request open however fast the machine is.
  double step_delay_ms = 0;
};

class Server {
 public:
  // The engine must outlive the server.
  Server(Engine& engine, ServerOptions opt);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket and starts the scheduler; returns the port.
  int Bind();
  // Answers requests until Stop(). Bind() first.
  void Serve();
  // Stops accepting, cancels what is queued or running, returns at once;
  // Serve() returns once the connections are closed. Any thread.
  void Stop();

  const std::string& model_name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dllm
