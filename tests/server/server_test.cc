// `dllm serve` end to end: the real binary on a loopback port, driven with
// httplib's client (every bad-input case, streaming, batching) and with the
// official `openai` npm package (scripts/server/).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "serve_process.h"
#include "test_util.h"

namespace dllm {
namespace {

using nlohmann::json;

const std::string kModel =
    std::string(DLLM_SOURCE_DIR) + "/models/shakespeare-mdm";

httplib::Client Client(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120, 0);
  return c;
}

struct Reply {
  int status = -1;
  std::string body;
};

Reply Post(int port, const std::string& path, const std::string& body,
           const httplib::Headers& headers = {}) {
  httplib::Client c = Client(port);
  auto r = c.Post(path.c_str(), headers, body, "application/json");
  if (!r) return {};
  return {r->status, r->body};
}

// The data payloads of an SSE body, up to and without [DONE] (done says
// whether it came).
std::vector<json> Events(const std::string& body, bool* done) {
  std::vector<json> out;
  *done = false;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) end = body.size();
    const std::string ev = body.substr(pos, end - pos);
    pos = end + 2;
    if (ev.rfind("data: ", 0) != 0) continue;  // comments (keep-alive)
    const std::string data = ev.substr(6);
    if (data == "[DONE]") {
      *done = true;
      break;
    }
    out.push_back(json::parse(data));
  }
  return out;
}

// Text and finish_reason of a streamed answer.
std::pair<std::string, std::string> StreamText(const std::string& body,
                                               bool chat) {
  bool done = false;
  std::string text, reason;
  for (const json& e : Events(body, &done)) {
    if (e["choices"].empty()) continue;
    const json& c = e["choices"][0];
    if (chat) {
      if (c["delta"].contains("content"))
        text += c["delta"]["content"].get<std::string>();
    } else {
      text += c["text"].get<std::string>();
    }
    if (!c["finish_reason"].is_null()) reason = c["finish_reason"];
  }
  EXPECT_TRUE(done) << body;
  return {text, reason};
}

// The canvases of a `diffusing` stream: the data of its `event: canvas`
// events, in order.
std::vector<json> CanvasFrames(const std::string& body) {
  std::vector<json> out;
  const std::string head = "event: canvas\ndata: ";
  size_t pos = 0;
  while ((pos = body.find(head, pos)) != std::string::npos) {
    const size_t start = pos + head.size();
    const size_t end = body.find("\n\n", start);
    out.push_back(json::parse(body.substr(start, end - start)));
    pos = end;
  }
  return out;
}

class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ =
        new test::ServeProcess("-m " + kModel +
                               " --quiet -t 1 --max-batch 8 --max-queue 16 "
                               "--max-body 65536");
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_GT(server_->port(), 0) << server_->log();
    port_ = server_->port();
  }
  static test::ServeProcess* server_;
  int port_ = 0;
};
test::ServeProcess* Serve::server_ = nullptr;

TEST_F(Serve, HealthModelsAndMetrics) {
  httplib::Client c = Client(port_);
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  auto m = c.Get("/v1/models");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  json j = json::parse(m->body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["data"][0]["id"], "shakespeare-mdm");
  auto p = c.Get("/metrics");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->status, 200);
  for (const char* name :
       {"dllm_requests_total", "dllm_completion_tokens_total",
        "dllm_queue_depth", "dllm_batch_size", "dllm_step_seconds_total"})
    EXPECT_NE(p->body.find(std::string("\n") + name + " "), std::string::npos)
        << name << "\n"
        << p->body;
}

TEST_F(Serve, CompletionMatchesTheCli) {
  Reply r =
      Post(port_, "/v1/completions",
           R"({"model": "shakespeare-mdm", "prompt": "ROMEO:", "max_tokens": 16,
                     "temperature": 0.7, "seed": 1})");
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["model"], "shakespeare-mdm");
  const std::string text = j["choices"][0]["text"];
  const std::string reason = j["choices"][0]["finish_reason"];
  EXPECT_TRUE(reason == "stop" || reason == "length") << reason;
  const json& u = j["usage"];
  EXPECT_GT(u["prompt_tokens"].get<int>(), 0);
  EXPECT_GT(u["completion_tokens"].get<int>(), 0);
  EXPECT_LE(u["completion_tokens"].get<int>(), 16);
  EXPECT_EQ(u["total_tokens"].get<int>(),
            u["prompt_tokens"].get<int>() + u["completion_tokens"].get<int>());
  // The same options on the command line give the same text.
  test::CommandResult cli = test::RunShell(
      std::string("(") + DLLM_CLI_PATH + " generate -m " + kModel +
      " -p ROMEO: --gen-length 16 --temperature 0.7 --seed 1 2>/dev/null)");
  ASSERT_EQ(cli.code, 0) << cli.out;
  EXPECT_EQ(cli.out, "ROMEO:" + text + "\n");
}

TEST_F(Serve, StreamGivesTheSameText) {
  for (bool chat : {false, true}) {
    const std::string path = chat ? "/v1/chat/completions" : "/v1/completions";
    json req = {{"max_tokens", 48}, {"temperature", 0.7}, {"seed", 5}};
    if (chat)
      req["messages"] = {{{"role", "user"}, {"content", "What news?"}}};
    else
      req["prompt"] = "JULIET:";
    Reply plain = Post(port_, path, req.dump());
    ASSERT_EQ(plain.status, 200) << plain.body;
    req["stream"] = true;
    req["stream_options"] = {{"include_usage", true}};
    Reply streamed = Post(port_, path, req.dump());
    ASSERT_EQ(streamed.status, 200) << streamed.body;
    json j = json::parse(plain.body);
    const std::string text =
        chat ? j["choices"][0]["message"]["content"] : j["choices"][0]["text"];
    if (chat) {
      EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
    }
    auto [stext, sreason] = StreamText(streamed.body, chat);
    EXPECT_EQ(stext, text) << (chat ? "chat" : "completion");
    EXPECT_EQ(sreason, j["choices"][0]["finish_reason"]);
    bool done = false;
    std::vector<json> ev = Events(streamed.body, &done);
    ASSERT_FALSE(ev.empty());
    EXPECT_EQ(ev.back()["usage"], j["usage"]);  // include_usage's last chunk
    if (chat) {
      EXPECT_EQ(ev.front()["choices"][0]["delta"]["role"], "assistant");
    }
  }
}

TEST_F(Serve, DiffusingStreamsEveryCanvas) {
  const int n = 24;
  json req = {{"prompt", "ROMEO:"}, {"max_tokens", n},    {"steps", 12},
              {"block_length", 8},  {"temperature", 0.7}, {"seed", 9},
              {"ban_eos", true}};
  Reply plain = Post(port_, "/v1/completions", req.dump());
  ASSERT_EQ(plain.status, 200) << plain.body;
  const std::string text = json::parse(plain.body)["choices"][0]["text"];
  req["stream"] = true;
  Reply streamed = Post(port_, "/v1/completions", req.dump());
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  // Without `diffusing` a stream is plain OpenAI: no named events.
  EXPECT_EQ(streamed.body.find("event:"), std::string::npos);
  req["diffusing"] = true;
  Reply diffusing = Post(port_, "/v1/completions", req.dump());
  ASSERT_EQ(diffusing.status, 200) << diffusing.body;
  // The same text as ever, and the canvases beside it.
  EXPECT_EQ(StreamText(diffusing.body, false).first, text);
  std::vector<json> frames = CanvasFrames(diffusing.body);
  ASSERT_EQ(frames.size(), 13u) << diffusing.body;  // before step 1, then 12
  const json& f0 = frames[0];
  EXPECT_EQ(f0["object"], "text_completion.canvas");
  EXPECT_EQ(f0["model"], "shakespeare-mdm");
  EXPECT_TRUE(f0["id"].get<std::string>().rfind("cmpl-", 0) == 0);
  EXPECT_EQ(f0["step"], 0);
  EXPECT_EQ(f0["total_steps"], 12);
  EXPECT_EQ(f0["masked"], n);
  EXPECT_EQ(f0["committed"], json::array());
  ASSERT_EQ(f0["tokens"].size(), size_t(n));
  for (int i = 0; i < n; ++i) {
    EXPECT_TRUE(f0["tokens"][i].is_null());
    EXPECT_EQ(f0["ids"][i], 1);  // the model's mask id
  }
  for (size_t k = 1; k < frames.size(); ++k) {
    SCOPED_TRACE("frame " + std::to_string(k));
    const json &a = frames[k - 1], &b = frames[k];
    EXPECT_EQ(b["id"], f0["id"]);
    EXPECT_EQ(b["step"], int(k));
    EXPECT_GE(b["elapsed_ms"].get<double>(), a["elapsed_ms"].get<double>());
    // `committed` is exactly the positions that lost their mask at this
    // step; decided positions never change.
    json fresh = json::array();
    int masked = 0;
    for (int i = 0; i < n; ++i) {
      const bool was = a["tokens"][i].is_null(), is = b["tokens"][i].is_null();
      EXPECT_FALSE(!was && is) << "position " << i << " was masked again";
      if (was && !is) fresh.push_back(i);
      if (!was) EXPECT_EQ(b["ids"][i], a["ids"][i]);
      masked += is;
    }
    EXPECT_EQ(b["committed"], fresh);
    EXPECT_EQ(b["masked"], masked);
    EXPECT_EQ(fresh.size(), 2u);  // 24 tokens in 12 steps
  }
  // The last canvas is the answer: its pieces spell the text, and its ids
  // are what `dllm generate` makes with the same options.
  const json& last = frames.back();
  EXPECT_EQ(last["masked"], 0);
  std::string spelled, ids;
  for (int i = 0; i < n; ++i) {
    spelled += last["tokens"][i].get<std::string>();
    ids += (i ? " " : "") + std::to_string(last["ids"][i].get<int>());
  }
  EXPECT_EQ(spelled, text);
  test::CommandResult cli = test::RunShell(
      std::string("(") + DLLM_CLI_PATH + " generate -m " + kModel +
      " -p ROMEO: --gen-length 24 --steps 12 --block-length 8 "
      "--temperature 0.7 --seed 9 --ban-eos --print-ids 2>/dev/null)");
  ASSERT_EQ(cli.code, 0) << cli.out;
  EXPECT_EQ(cli.out, ids + "\n");

  // Chat too, with its own object name.
  json chat = {{"messages", {{{"role", "user"}, {"content", "What news?"}}}},
               {"max_tokens", 16},
               {"seed", 4}};
  Reply chat_plain = Post(port_, "/v1/chat/completions", chat.dump());
  ASSERT_EQ(chat_plain.status, 200) << chat_plain.body;
  chat["stream"] = true;
  chat["diffusing"] = true;
  Reply chat_diff = Post(port_, "/v1/chat/completions", chat.dump());
  ASSERT_EQ(chat_diff.status, 200) << chat_diff.body;
  EXPECT_EQ(StreamText(chat_diff.body, true).first,
            json::parse(chat_plain.body)["choices"][0]["message"]["content"]);
  frames = CanvasFrames(chat_diff.body);
  ASSERT_GE(frames.size(), 2u);
  EXPECT_EQ(frames[0]["object"], "chat.completion.canvas");
  EXPECT_GT(frames[0]["masked"].get<int>(), frames.back()["masked"].get<int>());
}

TEST_F(Serve, WebPageAndProps) {
  httplib::Client c = Client(port_);
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  const std::string& html = page->body;
  EXPECT_EQ(html.rfind("<!doctype html>", 0), 0u);
  EXPECT_NE(html.find("id=\"canvas\""), std::string::npos);
  EXPECT_NE(html.find("diffusing: true"), std::string::npos);
  // Self-contained: nothing is fetched from elsewhere.
  for (const char* external :
       {"http://", "https://", "src=", "<link", "@import"})
    EXPECT_EQ(html.find(external), std::string::npos) << external;
  auto props = c.Get("/props");
  ASSERT_TRUE(props);
  ASSERT_EQ(props->status, 200);
  json p = json::parse(props->body);
  EXPECT_EQ(p["model"], "shakespeare-mdm");
  EXPECT_EQ(p["context_length"], 256);
  EXPECT_EQ(p["chat"], true);
  EXPECT_EQ(p["api_key_required"], false);
  // The model's generation_config.json: 64 tokens in blocks of 8, 32 steps.
  const json& d = p["default_generation_settings"];
  EXPECT_EQ(d["gen_length"], 64);
  EXPECT_EQ(d["block_length"], 8);
  EXPECT_EQ(d["steps"], 32);
  EXPECT_EQ(d["sampler"], "low-confidence");
}

TEST_F(Serve, StopStringsCutTheText) {
  const std::string base =
      R"("prompt": "ROMEO:", "max_tokens": 64, "temperature": 0.7, "seed": 3)";
  Reply full = Post(port_, "/v1/completions", "{" + base + "}");
  ASSERT_EQ(full.status, 200) << full.body;
  const std::string text = json::parse(full.body)["choices"][0]["text"];
  const size_t nl = text.find(':');
  ASSERT_NE(nl, std::string::npos)
      << "pick a seed whose text has a ':' : " << text;
  for (const char* stop : {R"(":")", R"([":", "zzz"])"}) {
    for (bool stream : {false, true}) {
      Reply cut = Post(port_, "/v1/completions",
                       "{" + base + ", \"stop\": " + stop + ", \"stream\": " +
                           (stream ? "true" : "false") + "}");
      ASSERT_EQ(cut.status, 200) << cut.body;
      std::string got, reason;
      if (stream) {
        std::tie(got, reason) = StreamText(cut.body, false);
      } else {
        json j = json::parse(cut.body);
        got = j["choices"][0]["text"];
        reason = j["choices"][0]["finish_reason"];
      }
      EXPECT_EQ(got, text.substr(0, nl)) << stop;
      EXPECT_EQ(reason, "stop");
    }
  }
}

TEST_F(Serve, AnyMaxTokensAndInfilling) {
  // 13 is no multiple of the model's block length (8): the canvas is padded
  // to whole blocks and the text capped.
  Reply r = Post(
      port_, "/v1/completions",
      R"({"prompt": "ROMEO:", "max_tokens": 13, "seed": 2, "ban_eos": true})");
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["usage"]["completion_tokens"], 13);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  // Fill in the middle, with diffusion settings as extra fields.
  r = Post(
      port_, "/v1/completions",
      R"({"prompt": "ROMEO:\nWhat", "suffix": "\n\nJULIET:\nAy me!", "max_tokens": 16,
               "steps": 16, "block_length": 16, "sampler": "low-confidence", "seed": 4})");
  ASSERT_EQ(r.status, 200) << r.body;
  j = json::parse(r.body);
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 8);  // prompt + suffix
}

struct BadCase {
  const char* path;
  std::string body;
  int status;
  const char* param;  // "" = null
  const char* code;   // "" = null
};

TEST_F(Serve, BadInputGetsOpenAiErrors) {
  const std::string c = "/v1/completions", ch = "/v1/chat/completions";
  std::string long_prompt;
  for (int i = 0; i < 400; ++i) long_prompt += "ROMEO: ";
  const std::vector<BadCase> cases = {
      {c.c_str(), "{", 400, "", "invalid_json"},
      {c.c_str(), "[1, 2]", 400, "", "invalid_json"},
      {c.c_str(), R"({"max_tokens": 8})", 400, "prompt", ""},
      {c.c_str(), R"({"prompt": 5})", 400, "prompt", ""},
      {c.c_str(), R"({"prompt": ""})", 400, "prompt", ""},
      {c.c_str(), R"({"prompt": ["a", "b"]})", 400, "prompt", ""},
      {c.c_str(), R"({"prompt": [1, 99999]})", 400, "prompt", ""},
      {c.c_str(), json({{"prompt", long_prompt}}).dump(), 400, "prompt",
       "context_length_exceeded"},
      {c.c_str(), R"({"prompt": "a", "max_tokens": 0})", 400, "max_tokens", ""},
      {c.c_str(), R"({"prompt": "a", "max_tokens": 100000})", 400, "max_tokens",
       ""},
      {c.c_str(), R"({"prompt": "a", "max_tokens": "16"})", 400, "max_tokens",
       ""},
      {c.c_str(), R"({"prompt": "a", "max_tokens": 250})", 400, "prompt",
       "context_length_exceeded"},
      {c.c_str(), R"({"prompt": "a", "temperature": "hot"})", 400,
       "temperature", ""},
      {c.c_str(), R"({"prompt": "a", "temperature": -1})", 400, "temperature",
       ""},
      {c.c_str(), R"({"prompt": "a", "top_p": 0})", 400, "top_p", ""},
      {c.c_str(), R"({"prompt": "a", "seed": 1.5})", 400, "seed", ""},
      {c.c_str(), R"({"prompt": "a", "sampler": "nope"})", 400, "sampler", ""},
      {c.c_str(), R"({"prompt": "a", "stop": 5})", 400, "stop", ""},
      {c.c_str(), R"({"prompt": "a", "stop": [""]})", 400, "stop", ""},
      {c.c_str(), R"({"prompt": "a", "stream": "yes"})", 400, "stream", ""},
      {c.c_str(), R"({"prompt": "a", "diffusing": true})", 400, "diffusing",
       ""},
      {c.c_str(), R"({"prompt": "a", "stream": true, "diffusing": 1})", 400,
       "diffusing", ""},
      {c.c_str(), R"({"prompt": "a", "suffix": 3})", 400, "suffix", ""},
      {c.c_str(), R"({"prompt": "a", "n": 2})", 400, "n", ""},
      {c.c_str(), R"({"prompt": "a", "max_tokens": 16, "block_length": 7})",
       400, "max_tokens", ""},
      {c.c_str(), R"({"prompt": "a", "model": "gpt-4"})", 404, "model",
       "model_not_found"},
      {c.c_str(), R"({"prompt": "a", "model": 7})", 400, "model", ""},
      {ch.c_str(), R"({"max_tokens": 8})", 400, "messages", ""},
      {ch.c_str(), R"({"messages": "hi"})", 400, "messages", ""},
      {ch.c_str(), R"({"messages": []})", 400, "messages", ""},
      {ch.c_str(), R"({"messages": [{"role": "user"}]})", 400, "messages", ""},
      {ch.c_str(), R"({"messages": [{"role": "wizard", "content": "x"}]})", 400,
       "messages", ""},
      {"/v1/nothing", "{}", 404, "", "unknown_url"},
      {c.c_str(), std::string(70000, ' '), 413, "", "request_too_large"},
  };
  for (const BadCase& b : cases) {
    SCOPED_TRACE(std::string(b.path) + " " + b.body.substr(0, 80));
    Reply r = Post(port_, b.path, b.body);
    ASSERT_EQ(r.status, b.status) << r.body;
    json j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << r.body;
    const json& e = j["error"];
    EXPECT_TRUE(e["message"].is_string() &&
                !e["message"].get<std::string>().empty());
    EXPECT_TRUE(e["type"].is_string());
    EXPECT_EQ(e["param"], *b.param ? json(b.param) : json()) << r.body;
    EXPECT_EQ(e["code"], *b.code ? json(b.code) : json()) << r.body;
  }
  // And it keeps serving.
  Reply ok = Post(port_, c, R"({"prompt": "ROMEO:", "max_tokens": 8})");
  EXPECT_EQ(ok.status, 200) << ok.body;
}

// The value of a Prometheus line "name value".
double Metric(int port, const std::string& name) {
  httplib::Client c = Client(port);
  auto r = c.Get("/metrics");
  if (!r) return -1;
  const size_t at = r->body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(r->body.substr(at + name.size() + 2));
}

TEST_F(Serve, ConcurrentRequestsEqualTheirSoloResults) {
  const int n = 8;
  auto body = [](int i) {
    json j = {{"prompt", i % 2 ? "ROMEO:" : "KING HENRY:"},
              {"max_tokens", 8 * (1 + i % 4)},
              {"temperature", 0.7},
              {"seed", 100 + i}};
    if (i % 3 == 0) j["stop"] = "\n";
    return j.dump();
  };
  std::vector<std::string> solo(n), together(n);
  for (int i = 0; i < n; ++i) {
    Reply r = Post(port_, "/v1/completions", body(i));
    ASSERT_EQ(r.status, 200) << r.body;
    solo[size_t(i)] = json::parse(r.body)["choices"][0]["text"];
  }
  const double steps0 = Metric(port_, "dllm_steps_total");
  const double rows0 = Metric(port_, "dllm_step_sequences_total");
  std::vector<std::thread> threads;
  std::vector<int> status(n);
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      Reply r = Post(port_, "/v1/completions", body(i));
      status[size_t(i)] = r.status;
      if (r.status == 200)
        together[size_t(i)] = json::parse(r.body)["choices"][0]["text"];
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(status[size_t(i)], 200);
    EXPECT_EQ(together[size_t(i)], solo[size_t(i)]) << i;
  }
  // They shared steps: more sequences were stepped than steps were taken.
  EXPECT_GT(Metric(port_, "dllm_step_sequences_total") - rows0,
            Metric(port_, "dllm_steps_total") - steps0);
}

TEST(ServeLimits, FullQueueIs429AndGoneClientsAreCancelled) {
  // 20 ms per step: the holder's 240 steps keep it running for seconds
  // however fast (or loaded) the machine, so the 429 below cannot race it.
  test::ServeProcess s("-m " + kModel +
                       " --quiet -t 1 --max-batch 1 --max-queue 0"
                       " --step-delay-ms 20");
  ASSERT_GT(s.port(), 0) << s.log();
  // A long streamed request holds the only place...
  std::promise<void> started, release;
  std::shared_future<void> release_f = release.get_future().share();
  std::thread holder([&] {
    httplib::Client c = Client(s.port());
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body =
        R"({"prompt": "ROMEO:", "max_tokens": 240, "ban_eos": true, "stream": true})";
    req.set_header("Content-Type", "application/json");
    bool first = true;
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      if (first) {
        first = false;
        started.set_value();
        release_f.wait();
      }
      return false;  // hang up
    };
    c.send(req);
  });
  started.get_future().wait();
  // ...so another is refused at once.
  Reply busy = Post(s.port(), "/v1/completions", R"({"prompt": "ROMEO:"})");
  EXPECT_EQ(busy.status, 429) << busy.body;
  EXPECT_EQ(json::parse(busy.body)["error"]["code"], "rate_limit_exceeded");
  release.set_value();
  holder.join();
  // The server notices the hang-up at a write and drops the sequence.
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (Metric(s.port(), "dllm_requests_cancelled_total") < 1 &&
         std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(Metric(s.port(), "dllm_requests_cancelled_total"), 1);
  EXPECT_EQ(Metric(s.port(), "dllm_requests_finished_total"), 0);
  Reply ok = Post(s.port(), "/v1/completions",
                  R"({"prompt": "ROMEO:", "max_tokens": 8})");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Metric(s.port(), "dllm_requests_rejected_total"), 1);
}

// With one place and no queue, a client that waits for each answer before
// sending the next is never refused: a finished (or cancelled) sequence
// gives its place back before its client hears the end. (It used to be
// given back after, so a quick next request could meet a 429.)
TEST(ServeLimits, SequentialClientsAreNeverRefused) {
  test::ServeProcess s("-m " + kModel +
                       " --quiet -t 1 --max-batch 1 --max-queue 0");
  ASSERT_GT(s.port(), 0) << s.log();
  for (int i = 0; i < 30; ++i) {
    Reply r = Post(s.port(), "/v1/completions",
                   R"({"prompt": "ROMEO:", "max_tokens": 2})");
    ASSERT_EQ(r.status, 200) << "request " << i << ": " << r.body;
  }
  EXPECT_EQ(Metric(s.port(), "dllm_requests_rejected_total"), 0);
}

// A client that sends a (non-streamed) request and hangs up before the
// answer: the scheduler sees the closed connection before its next step.
TEST(ServeLimits, GoneNonStreamingClientIsCancelled) {
  test::ServeProcess s("-m " + kModel +
                       " --quiet -t 1 --max-batch 1 --max-queue 0");
  ASSERT_GT(s.port(), 0) << s.log();
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(s.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  // 240 steps: several seconds of work.
  const std::string body =
      R"({"prompt": "ROMEO:", "max_tokens": 240, "steps": 240, "ban_eos": true})";
  const std::string request =
      "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(write(fd, request.data(), request.size()), ssize_t(request.size()));
  // Hang up once it is being generated.
  auto wait_for = [&](const char* metric, double at_least) {
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (Metric(s.port(), metric) < at_least &&
           std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return Metric(s.port(), metric);
  };
  ASSERT_GE(wait_for("dllm_steps_total", 2), 2) << "it did not start";
  close(fd);
  const double steps_at_close = Metric(s.port(), "dllm_steps_total");
  EXPECT_EQ(wait_for("dllm_requests_cancelled_total", 1), 1);
  const double steps_at_cancel = Metric(s.port(), "dllm_steps_total");
  EXPECT_LT(steps_at_cancel - steps_at_close, 20)
      << "the generation went on after the client left";
  EXPECT_EQ(Metric(s.port(), "dllm_requests_finished_total"), 0);
  EXPECT_EQ(Metric(s.port(), "dllm_batch_size"), 0);
  // The place is free again, and a client that stays gets its answer.
  Reply ok = Post(s.port(), "/v1/completions",
                  R"({"prompt": "ROMEO:", "max_tokens": 8})");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Metric(s.port(), "dllm_requests_finished_total"), 1);
  EXPECT_EQ(Metric(s.port(), "dllm_requests_cancelled_total"), 1);
}

// A model that chooses ids its tokenizer lacks (a 2,048-entry vocabulary
// with a tokenizer of 300): that request fails with a 500, streamed or not,
// and the server goes on.
TEST(ServeLimits, UndecodableTokensFailOnlyTheirRequest) {
  test::TempDir dir;
  const std::string m = dir / "m";
  {
    std::ofstream text(dir / "corpus.txt");
    for (int i = 0; i < 200; ++i)
      text << "hello there, how are you today? I am fine, thank you.\n";
  }
  test::CommandResult r = test::RunDllm(
      "init --layers 2 --d-model 32 --heads 4 --ffn 64 --vocab 2048 --ctx 128 "
      "--mask-id 3 --eos-id 1 -o " +
      m);
  ASSERT_EQ(r.code, 0) << r.out;
  r = test::RunDllm(
      "tokenizer train --vocab-size 300 --special "
      "'<|endoftext|>,<|im_end|>,<|im_start|>,<|mask|>' " +
      (dir / "corpus.txt") + " -o " + m + "/tokenizer.json");
  ASSERT_EQ(r.code, 0) << r.out;
  test::ServeProcess s("-m " + m + " --quiet -t 1");
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string req =
      R"({"prompt": "hello", "max_tokens": 16, "temperature": 1, "ban_eos": true, "seed": 1)";
  Reply plain = Post(s.port(), "/v1/completions", req + "}");
  EXPECT_EQ(plain.status, 500) << plain.body;
  json e = json::parse(plain.body);
  EXPECT_EQ(e["error"]["type"], "server_error");
  EXPECT_NE(e["error"]["message"].get<std::string>().find("out of range"),
            std::string::npos)
      << plain.body;
  // Streamed, with the canvases (which show such ids as <id>): the error
  // comes as an event after the headers.
  Reply streamed = Post(s.port(), "/v1/completions",
                        req + R"(, "stream": true, "diffusing": true})");
  EXPECT_EQ(streamed.status, 200);
  EXPECT_NE(streamed.body.find("data: {\"error\""), std::string::npos)
      << streamed.body;
  EXPECT_NE(streamed.body.find("data: [DONE]"), std::string::npos);
  bool odd_id = false;
  for (const json& f : CanvasFrames(streamed.body))
    for (const json& t : f["tokens"])
      odd_id |= t.is_string() && t.get<std::string>().size() > 1 &&
                t.get<std::string>()[0] == '<' &&
                std::isdigit((unsigned char)t.get<std::string>()[1]);
  EXPECT_TRUE(odd_id) << streamed.body;
  httplib::Client c = Client(s.port());
  auto h = c.Get("/health");
  ASSERT_TRUE(h) << s.log();
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(Metric(s.port(), "dllm_requests_failed_total"), 2);
}

TEST(ServeLimits, DeadlineAndApiKey) {
  test::ServeProcess s("-m " + kModel +
                       " --quiet -t 1 --timeout 0.05 --api-key sekrit");
  ASSERT_GT(s.port(), 0) << s.log();
  const std::string body =
      R"({"prompt": "ROMEO:", "max_tokens": 240, "ban_eos": true})";
  Reply r = Post(s.port(), "/v1/completions", body);
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "invalid_api_key");
  r = Post(s.port(), "/v1/completions", body,
           {{"Authorization", "Bearer wrong"}});
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "invalid_api_key");
  httplib::Client c = Client(s.port());
  auto h = c.Get("/health");  // no key needed for probes
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  // The right key; 240 steps take far longer than the 50 ms deadline.
  r = Post(s.port(), "/v1/completions", body,
           {{"Authorization", "Bearer sekrit"}});
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "timeout");
}

TEST_F(Serve, OpenAiNpmClient) {
  const std::string dir = std::string(DLLM_SOURCE_DIR) + "/scripts/server";
  if (test::RunShell("node --version").code != 0)
    GTEST_SKIP() << "node is not installed";
  if (test::RunShell("test -d " + dir + "/node_modules/openai").code != 0)
    GTEST_SKIP()
        << "the openai npm package is absent (bash scripts/server/setup.sh)";
  test::CommandResult r =
      test::RunShell("node " + dir + "/openai_client.js http://127.0.0.1:" +
                     std::to_string(port_) + "/v1");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("openai client: all checks passed"), std::string::npos)
      << r.out;
}

}  // namespace
}  // namespace dllm
