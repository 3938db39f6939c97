// dllm::Server on cpp-httplib: routes, the API key, error objects for every
// failure (including httplib's own: 404, 413), and SSE streaming.
#include <dirent.h>
#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>

#include "dllm/engine.h"
#include "dllm/generate_options.h"
#include "dllm/server.h"
#include "server/api.h"
#include "server/scheduler.h"
#include "server/web_page.h"

namespace dllm {

using server::ApiError;
using server::Clock;
using server::Endpoint;
using server::ErrorJson;
using server::Event;

struct Server::Impl {
  Impl(Engine& e, ServerOptions o)
      : engine(e),
        opt(std::move(o)),
        scheduler(e, std::max(1, opt.max_batch), std::max(0, opt.max_queue),
                  opt.step_delay_ms) {}
  Engine& engine;
  ServerOptions opt;
  server::Scheduler scheduler;
  httplib::Server http;
  std::atomic<int64_t> next_id{0};
  std::atomic<int64_t> http_errors{0};
  int port = 0;
  bool bound = false;

  void Routes();
  void Generate(Endpoint endpoint, const httplib::Request& req,
                httplib::Response& res);
};

namespace {

void SendError(httplib::Response& res, int status, const std::string& json) {
  res.status = status;
  res.set_content(json, "application/json");
}
void SendError(httplib::Response& res, const ApiError& e) {
  SendError(res, e.status, ErrorJson(e));
}

// Compares without an early exit, so the time taken does not tell how much
// of a guessed key was right.
bool SameKey(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= (unsigned char)(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

int64_t UnixNow() { return int64_t(std::time(nullptr)); }

std::string BaseName(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const size_t s = dir.rfind('/');
  return s == std::string::npos ? dir : dir.substr(s + 1);
}

// The numeric host and the port of a socket address, as httplib writes
// Request::remote_addr and remote_port.
bool HostPort(const sockaddr_storage& a, socklen_t len, std::string* host,
              int* port) {
  char h[NI_MAXHOST], p[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&a), len, h, sizeof(h), p,
                  sizeof(p), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return false;
  *host = h;
  *port = std::atoi(p);
  return true;
}

// Whether `fd` is the socket of the connection `req` came on: its far end
// is the request's remote address and its near end the local port.
bool IsConnectionOf(int fd, const httplib::Request& req) {
  sockaddr_storage peer{}, self{};
  socklen_t plen = sizeof(peer), slen = sizeof(self);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&self), &slen) != 0)
    return false;
  std::string host, self_host;
  int port = -1, self_port = -1;
  return HostPort(peer, plen, &host, &port) &&
         HostPort(self, slen, &self_host, &self_port) &&
         port == req.remote_port && self_port == req.local_port &&
         host == req.remote_addr;
}

// The socket `req` came on, or -1. cpp-httplib 0.11 (Debian 12's) gives a
// handler no socket, but one thread serves a connection from accept to
// close, so the socket with the request's two addresses is this
// connection's for as long as the handler (and its content provider) runs.
// Found among the process's descriptors once per thread and connection.
int ConnectionFd(const httplib::Request& req) {
  thread_local int cached = -1;
  if (cached >= 0 && IsConnectionOf(cached, req)) return cached;
  cached = -1;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return -1;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == dirfd(d)) continue;
    struct stat st;
    if (fstat(int(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    if (IsConnectionOf(int(fd), req)) {
      cached = int(fd);
      break;
    }
  }
  closedir(d);
  return cached;
}

// The far end closed the connection (what newer httplib calls
// is_connection_closed): readable, and a peek reads end-of-file or fails.
// Pipelined bytes of a next request read as alive.
bool PeerClosed(int fd) {
  pollfd p{fd, POLLIN, 0};
  const int n = poll(&p, 1, 0);
  if (n <= 0) return false;
  if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return true;
  char c;
  const ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return r == 0 ||
         (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

// Clears a job's client-gone probe when the handler lets go of the
// connection, unless the stream's resource releaser will.
struct ProbeGuard {
  std::shared_ptr<server::Job> job;
  ~ProbeGuard() {
    if (job) job->ClearClientGoneProbe();
  }
};

}  // namespace

void Server::Impl::Routes() {
  const size_t threads =
      size_t(std::max(1, opt.max_batch) + std::max(0, opt.max_queue) + 8);
  // Each waiting request holds an HTTP thread, so there must be enough for
  // a full batch, a full queue and some left to answer 429, /health and
  // /metrics at once.
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(opt.max_body_bytes);
  http.set_keep_alive_max_count(1000);
  // A streamed answer can be silent for a while (between blocks); the
  // heartbeat keeps writes going, so the write timeout only catches clients
  // that stopped reading.
  http.set_write_timeout(30, 0);

  http.set_pre_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (opt.api_key.empty() || req.path.rfind("/v1/", 0) != 0)
          return httplib::Server::HandlerResponse::Unhandled;
        const std::string auth = req.get_header_value("Authorization");
        const std::string prefix = "Bearer ";
        if (auth.empty()) {
          SendError(res, 401,
                    ErrorJson("missing API key: send the header "
                              "'Authorization: Bearer KEY'",
                              "invalid_request_error", "", "invalid_api_key"));
          return httplib::Server::HandlerResponse::Handled;
        }
        if (auth.rfind(prefix, 0) != 0 ||
            !SameKey(auth.substr(prefix.size()), opt.api_key)) {
          SendError(res, 401,
                    ErrorJson("incorrect API key provided",
                              "invalid_request_error", "", "invalid_api_key"));
          return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
      });
  // httplib's own refusals (no route, body too large, bad request line) get
  // the same error object as ours.
  http.set_error_handler(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return;
        ++http_errors;
        std::string msg, code;
        switch (res.status) {
          case 404:
            msg = "unknown request URL: " + req.method + " " + req.path;
            code = "unknown_url";
            break;
          case 413:
            msg = "request body too large (the limit is " +
                  std::to_string(opt.max_body_bytes) + " bytes)";
            code = "request_too_large";
            break;
          default:
            msg = "bad request";
            break;
        }
        SendError(res, res.status,
                  ErrorJson(msg, "invalid_request_error", "", code));
      });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                                std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    SendError(res, 500, ErrorJson(what, "server_error", "", ""));
  });
  if (opt.log_requests)
    http.set_logger(
        [](const httplib::Request& req, const httplib::Response& res) {
          std::fprintf(stderr, "%s %s %d\n", req.method.c_str(),
                       req.path.c_str(), res.status);
        });

  // The live view: one static page that talks to the API below.
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-cache");
    res.set_content(server::kWebPage, "text/html; charset=utf-8");
  });
  // What the page (or any client) needs to know of the model: its id,
  // context, chat template and default generation options (llama.cpp's
  // server has the same endpoint).
  http.Get("/props", [this](const httplib::Request&, httplib::Response& res) {
    nlohmann::json j = {{"model", opt.model_name},
                        {"context_length", engine.config().max_seq_len},
                        {"chat", engine.tokenizer().loaded() &&
                                     engine.chat_template().loaded()},
                        {"mask_token_id", engine.config().mask_token_id},
                        {"max_batch", opt.max_batch},
                        {"api_key_required", !opt.api_key.empty()},
                        {"default_generation_settings",
                         nlohmann::json::parse(
                             GenerateOptionsToJson(engine.DefaultOptions()))}};
    res.set_content(j.dump(), "application/json");
  });
  http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"status\":\"ok\"}", "application/json");
  });
  http.Get(
      "/v1/models", [this](const httplib::Request&, httplib::Response& res) {
        nlohmann::json m = {{"id", opt.model_name},
                            {"object", "model"},
                            {"created", 0},
                            {"owned_by", "dllm"},
                            {"context_length", engine.config().max_seq_len}};
        nlohmann::json j = {{"object", "list"},
                            {"data", nlohmann::json::array({m})}};
        res.set_content(j.dump(), "application/json");
      });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(scheduler.MetricsText(), "text/plain; version=0.0.4");
  });
  http.Post("/v1/completions",
            [this](const httplib::Request& req, httplib::Response& res) {
              Generate(Endpoint::kCompletions, req, res);
            });
  http.Post("/v1/chat/completions",
            [this](const httplib::Request& req, httplib::Response& res) {
              Generate(Endpoint::kChat, req, res);
            });
}

void Server::Impl::Generate(Endpoint endpoint, const httplib::Request& req,
                            httplib::Response& res) {
  const Clock::time_point deadline =
      Clock::now() +
      std::chrono::milliseconds(int64_t(opt.timeout_seconds * 1e3));
  server::GenRequest r;
  try {
    r = server::ParseRequest(endpoint, req.body, engine, opt.model_name);
  } catch (const ApiError& e) {
    SendError(res, e);
    return;
  }
  const bool stream = r.stream, include_usage = r.include_usage;
  const int fd = ConnectionFd(req);
  std::shared_ptr<server::Job> job = scheduler.Submit(std::move(r), deadline);
  // From here the scheduler checks the connection before every step, so a
  // client that hangs up (streamed or not) is dropped at the next one.
  ProbeGuard guard;
  if (job && fd >= 0) {
    job->SetClientGoneProbe([fd] { return PeerClosed(fd); });
    guard.job = job;
  }
  if (!job) {
    res.set_header("Retry-After", "1");
    SendError(res, 429,
              ErrorJson("the server is busy (" + std::to_string(opt.max_batch) +
                            " running, " + std::to_string(opt.max_queue) +
                            " queued); retry later",
                        "rate_limit_error", "", "rate_limit_exceeded"));
    return;
  }
  const std::string id =
      std::string(endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-") +
      std::to_string(next_id++);
  const int64_t created = UnixNow();
  // Waits past the deadline a little: the scheduler answers late jobs itself.
  const auto give_up = deadline + std::chrono::seconds(5);

  // Until the job joins the batch an error can still be a status code.
  Event e;
  if (!job->Pop(&e, give_up)) {
    job->cancelled = true;
    SendError(res, 504,
              ErrorJson("the request timed out in the queue", "timeout_error",
                        "", "timeout"));
    return;
  }
  if (e.kind == Event::Kind::kError) {
    SendError(res, e.status, e.error_json);
    return;
  }

  if (!stream) {
    std::string text;
    for (;;) {
      if (!job->Pop(&e, give_up)) {
        job->cancelled = true;
        SendError(
            res, 504,
            ErrorJson("the request timed out", "timeout_error", "", "timeout"));
        return;
      }
      if (e.kind == Event::Kind::kText) text += e.text;
      if (e.kind == Event::Kind::kError) {
        SendError(res, e.status, e.error_json);
        return;
      }
      if (e.kind == Event::Kind::kDone) break;
    }
    res.set_content(server::ResponseJson(endpoint, id, created, opt.model_name,
                                         text, e.finish_reason, e.usage),
                    "application/json");
    return;
  }

  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  guard.job = nullptr;  // the resource releaser clears the probe
  const std::string model = opt.model_name;
  const Tokenizer* tok = &engine.tokenizer();
  // The chat role chunk goes first, as OpenAI sends it.
  auto first = std::make_shared<bool>(endpoint == Endpoint::kChat);
  res.set_chunked_content_provider(
      "text/event-stream",
      [job, endpoint, id, created, model, include_usage, give_up, first, tok](
          size_t, httplib::DataSink& sink) {
        auto send = [&](const std::string& s) {
          if (sink.write(s.data(), s.size())) return true;
          job->cancelled = true;  // the client went away
          return false;
        };
        if (*first) {
          *first = false;
          return send(server::ChunkEvent(endpoint, id, created, model, "", "",
                                         /*role_chunk=*/true, nullptr));
        }
        Event ev;
        // A comment line every second of silence: SSE clients ignore it, and
        // a failed write tells that the client is gone.
        const auto until =
            std::min(give_up, Clock::now() + std::chrono::seconds(1));
        if (!job->Pop(&ev, until)) {
          if (Clock::now() >= give_up) {
            job->cancelled = true;
            return false;
          }
          return send(": keep-alive\n\n");
        }
        switch (ev.kind) {
          case Event::Kind::kStarted:
            return true;
          case Event::Kind::kText:
            return send(server::ChunkEvent(endpoint, id, created, model,
                                           ev.text, "", false, nullptr));
          case Event::Kind::kCanvas:
            return send(server::CanvasEvent(endpoint, id, created, model,
                                            ev.frame, *tok));
          case Event::Kind::kError:
            // Headers are gone already: the error travels as an event.
            send("data: " + ev.error_json + "\n\n");
            send("data: [DONE]\n\n");
            sink.done();
            return true;
          case Event::Kind::kDone:
            if (!send(server::ChunkEvent(endpoint, id, created, model, "",
                                         ev.finish_reason, false, nullptr)))
              return false;
            if (include_usage &&
                !send(server::ChunkEvent(endpoint, id, created, model, "", "",
                                         false, &ev.usage)))
              return false;
            if (!send("data: [DONE]\n\n")) return false;
            sink.done();
            return true;
        }
        return false;
      },
      [this, job](bool success) {
        job->ClearClientGoneProbe();
        if (!success) {
          job->cancelled = true;
          scheduler.Wake();
        }
      });
}

Server::Server(Engine& engine, ServerOptions opt)
    : impl_(std::make_unique<Impl>(engine, std::move(opt))) {
  if (impl_->opt.model_name.empty())
    impl_->opt.model_name = BaseName(engine.dir());
  impl_->Routes();
}

Server::~Server() { Stop(); }

int Server::Bind() {
  Impl& s = *impl_;
  if (s.opt.port == 0) {
    s.port = s.http.bind_to_any_port(s.opt.host);
  } else {
    s.port = s.http.bind_to_port(s.opt.host, s.opt.port) ? s.opt.port : -1;
  }
  DLLM_CHECK(s.port > 0, "serve: cannot listen on ", s.opt.host, ":",
             s.opt.port,
             " (is another server using the port? --port 0 picks a free one)");
  s.bound = true;
  s.scheduler.Start();
  return s.port;
}

void Server::Serve() {
  DLLM_CHECK(impl_->bound, "Server::Serve: call Bind() first");
  impl_->http.listen_after_bind();
}

void Server::Stop() {
  impl_->http.stop();
  impl_->scheduler.Stop();
}

const std::string& Server::model_name() const { return impl_->opt.model_name; }

}  // namespace dllm
