#include "server/scheduler.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <thread>

#include "dllm/engine.h"
#include "dllm/generator.h"
#include "dllm/prefix_stream.h"

namespace dllm::server {

void Job::Push(Event e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_one();
}

bool Job::Pop(Event* e, Clock::time_point until) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_until(lock, until, [&] { return !events_.empty(); }))
    return false;
  *e = std::move(events_.front());
  events_.pop_front();
  return true;
}

void Job::SetClientGoneProbe(std::function<bool()> probe) {
  std::lock_guard<std::mutex> lock(probe_mu_);
  probe_ = std::move(probe);
}

bool Job::ClientGone() {
  if (cancelled) return true;
  std::lock_guard<std::mutex> lock(probe_mu_);
  if (probe_ && probe_()) cancelled = true;
  return cancelled;
}

// A job in the batch: its Generator id and its streamer.
struct Scheduler::Live {
  std::shared_ptr<Job> job;
  int id = -1;
  PrefixStreamer stream;
  Clock::time_point joined;
};

namespace {

Event ErrorEvent(int status, const std::string& message,
                 const std::string& type, const std::string& code) {
  Event e;
  e.kind = Event::Kind::kError;
  e.status = status;
  e.error_json = ErrorJson(message, type, "", code);
  return e;
}

// The text of a sequence could not be decoded (e.g. the model chose an id
// past the end of its tokenizer's vocabulary): that request fails, the
// server and the rest of the batch go on.
Event DecodeFailed(const std::exception& e) {
  return ErrorEvent(
      500, std::string("cannot decode the generated tokens: ") + e.what(),
      "server_error", "");
}

// For a job whose client went away: nobody reads it, but the HTTP thread
// waiting on the job wakes up and lets the connection go (499 is nginx's
// "client closed request").
Event GoneEvent() {
  return ErrorEvent(499, "the client closed the connection",
                    "invalid_request_error", "client_closed_request");
}

// The canvas as the client sees it: the generation region ends at
// max_tokens (the rest is padding to whole blocks).
const Canvas& Capped(const Canvas& c, int max_tokens, Canvas* scratch) {
  if (c.gen_end - c.prompt_len <= max_tokens) return c;
  *scratch = c;
  scratch->gen_end = c.prompt_len + max_tokens;
  return *scratch;
}

// Every position up to the cap is decided: nothing the client will see can
// change, so the padding need not be denoised.
bool CapDecided(const Canvas& c, int max_tokens) {
  const int end = std::min(c.gen_end, c.prompt_len + max_tokens);
  for (int i = c.prompt_len; i < end; ++i)
    if (c.masked[size_t(i)]) return false;
  return true;
}

// The live view's frame of a sequence after a step (or before the first).
Event CanvasEventOf(const Generator& gen, int id, int max_tokens,
                    Clock::time_point joined) {
  const Canvas& c = gen.canvas(id);
  const int begin = c.prompt_len;
  const int end = std::min(c.gen_end, c.prompt_len + max_tokens);
  Event e;
  e.kind = Event::Kind::kCanvas;
  CanvasFrame& f = e.frame;
  f.step = c.steps_done;
  f.total_steps = gen.total_steps(id);
  f.elapsed_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - joined).count();
  f.ids.assign(c.ids.begin() + begin, c.ids.begin() + end);
  f.masked.assign(c.masked.begin() + begin, c.masked.begin() + end);
  for (int32_t p : gen.committed(id))
    if (p >= begin && p < end) f.committed.push_back(p - begin);
  return e;
}

}  // namespace

Scheduler::Scheduler(Engine& engine, int max_batch, int max_queue,
                     double step_delay_ms)
    : engine_(engine),
      max_batch_(max_batch),
      max_queue_(max_queue),
      step_delay_ms_(step_delay_ms) {}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Scheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Scheduler::Wake() { cv_.notify_all(); }

std::shared_ptr<Job> Scheduler::Submit(GenRequest req,
                                       Clock::time_point deadline) {
  auto job = std::make_shared<Job>(std::move(req), deadline);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ ||
        int(pending_.size()) + live_count_ >= max_batch_ + max_queue_) {
      ++metrics_.rejected;
      return nullptr;
    }
    pending_.push_back(job);
    metrics_.queue_depth = int(pending_.size());
  }
  ++metrics_.requests;
  cv_.notify_all();
  return job;
}

void Scheduler::Loop() {
  Generator gen(engine_.model());
  std::vector<std::unique_ptr<Live>> live;
  Canvas scratch;
  // Ends a live job: takes its result, sends the rest of the text and the
  // usage (or `error`), and forgets it.
  // A sequence leaves the batch: its place is given back before its client
  // hears the end (or a metric counts it), so that the client's next
  // request is never refused for a place about to be free.
  auto free_place = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    --live_count_;
  };
  auto retire = [&](Live& l, const Event* error) {
    free_place();
    if (!gen.Done(l.id)) gen.Cancel(l.id);
    GenerateResult r = gen.Take(l.id);
    const int cap = l.job->req.max_tokens;
    if (error) {
      l.job->Push(*error);
      return;
    }
    const bool capped = int(r.tokens.size()) > cap;
    if (capped) r.tokens.resize(size_t(cap));
    // Stopped before Finish: an EOS or a stop string inside the cap.
    const bool stopped = l.stream.stopped() ||
                         (r.hit_eos && !capped && int(r.tokens.size()) < cap);
    Event text;
    try {
      text.text = l.stream.Finish(r.tokens);
    } catch (const std::exception& e) {
      ++metrics_.failed;
      l.job->Push(DecodeFailed(e));
      return;
    }
    if (!text.text.empty()) l.job->Push(text);
    Event done;
    done.kind = Event::Kind::kDone;
    done.finish_reason = stopped ? "stop" : "length";
    done.usage.prompt_tokens =
        int(l.job->req.prompt.size() + l.job->req.opt.suffix.size());
    done.usage.completion_tokens = int(r.tokens.size());
    metrics_.completion_tokens += done.usage.completion_tokens;
    ++metrics_.finished;
    l.job->Push(std::move(done));
  };

  for (;;) {
    std::vector<std::shared_ptr<Job>> admit;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock,
               [&] { return stop_ || !pending_.empty() || !live.empty(); });
      if (stop_) break;
      while (!pending_.empty() &&
             int(live.size() + admit.size()) < max_batch_) {
        admit.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
      metrics_.queue_depth = int(pending_.size());
    }
    int admitted = 0;
    for (std::shared_ptr<Job>& job : admit) {
      if (job->ClientGone()) {
        ++metrics_.cancelled;
        job->Push(GoneEvent());
        continue;
      }
      if (Clock::now() > job->deadline) {
        ++metrics_.timed_out;
        job->Push(ErrorEvent(504, "the request waited past its deadline",
                             "timeout_error", "timeout"));
        continue;
      }
      auto l = std::make_unique<Live>(
          Live{job, -1,
               PrefixStreamer(engine_.tokenizer(), job->req.opt.eos_ids,
                              job->req.stop),
               Clock::now()});
      try {
        l->id = gen.Add(job->req.prompt, job->req.opt);
      } catch (const Error& e) {
        // ParseRequest checked the options; what is left (e.g. a prompt id
        // the model rejects) is still the client's input.
        ++metrics_.failed;
        job->Push(ErrorEvent(400, e.what(), "invalid_request_error", ""));
        continue;
      }
      metrics_.prompt_tokens += int64_t(job->req.prompt.size());
      Event started;
      started.kind = Event::Kind::kStarted;
      job->Push(std::move(started));
      if (job->req.diffusing)
        job->Push(CanvasEventOf(gen, l->id, job->req.max_tokens, l->joined));
      live.push_back(std::move(l));
      ++admitted;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      live_count_ = int(live.size());
    }
    metrics_.batch_size = int(live.size());
    // Drop the cancelled and the late before paying for their step.
    const Clock::time_point now = Clock::now();
    for (auto& l : live) {
      if (l->job->ClientGone()) {
        free_place();
        ++metrics_.cancelled;
        if (!gen.Done(l->id)) gen.Cancel(l->id);
        gen.Remove(l->id);
        l->job->Push(GoneEvent());  // wakes its HTTP thread, if it waits
        l.reset();
      } else if (now > l->job->deadline) {
        ++metrics_.timed_out;
        Event e = ErrorEvent(504, "the request ran past its deadline",
                             "timeout_error", "timeout");
        retire(*l, &e);
        l.reset();
      }
    }
    live.erase(std::remove(live.begin(), live.end(), nullptr), live.end());
    if (live.empty()) {
      std::lock_guard<std::mutex> lock(mu_);
      live_count_ = 0;
      metrics_.batch_size = 0;
      continue;
    }

    if (step_delay_ms_ > 0)
      std::this_thread::sleep_for(
          std::chrono::duration<double, std::milli>(step_delay_ms_));
    const Clock::time_point t0 = Clock::now();
    bool stepped = false;
    try {
      stepped = gen.Step();
    } catch (const std::exception& e) {
      // A failure inside the model is the server's, and every job in the
      // batch shares it.
      for (auto& l : live) {
        ++metrics_.failed;
        Event err =
            ErrorEvent(500, std::string("generation failed: ") + e.what(),
                       "server_error", "");
        retire(*l, &err);
      }
      live.clear();
      continue;
    }
    if (stepped) {
      ++metrics_.steps;
      metrics_.step_rows += int64_t(live.size());
      metrics_.step_micros +=
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() -
                                                                t0)
              .count();
    }
    for (auto& l : live) {
      const Canvas& c = gen.canvas(l->id);
      const int cap = l->job->req.max_tokens;
      if (l->job->req.diffusing && stepped)
        l->job->Push(CanvasEventOf(gen, l->id, cap, l->joined));
      Event piece;
      try {
        piece.text = l->stream.OnStep(Capped(c, cap, &scratch));
      } catch (const std::exception& e) {
        ++metrics_.failed;
        const Event err = DecodeFailed(e);
        retire(*l, &err);
        l.reset();
        continue;
      }
      if (!piece.text.empty()) l->job->Push(std::move(piece));
      if (gen.Done(l->id) || l->stream.stopped() || CapDecided(c, cap)) {
        retire(*l, nullptr);
        l.reset();
      }
    }
    live.erase(std::remove(live.begin(), live.end(), nullptr), live.end());
    {
      std::lock_guard<std::mutex> lock(mu_);
      live_count_ = int(live.size());
    }
    metrics_.batch_size = int(live.size());
  }

  // Shutting down: nobody is left to wait for.
  std::deque<std::shared_ptr<Job>> rest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rest.swap(pending_);
    live_count_ = 0;
  }
  const Event bye =
      ErrorEvent(503, "the server is shutting down", "server_error", "");
  for (auto& l : live) l->job->Push(bye);
  for (auto& j : rest) j->Push(bye);
}

std::string Scheduler::MetricsText() const {
  const Metrics& m = metrics_;
  std::string out;
  auto add = [&](const char* name, const char* type, const char* help,
                 double v) {
    char line[64];
    std::snprintf(line, sizeof(line), "%.10g", v);
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name +
           " " + type + "\n" + name + " " + line + "\n";
  };
  add("dllm_requests_total", "counter", "Generation requests accepted.",
      double(m.requests));
  add("dllm_requests_rejected_total", "counter",
      "Requests refused with 429 (queue full).", double(m.rejected));
  add("dllm_requests_finished_total", "counter",
      "Requests that ran to the end.", double(m.finished));
  add("dllm_requests_cancelled_total", "counter",
      "Requests dropped because the client went away.", double(m.cancelled));
  add("dllm_requests_timed_out_total", "counter",
      "Requests that ran past their deadline.", double(m.timed_out));
  add("dllm_requests_failed_total", "counter",
      "Requests that failed after they were queued.", double(m.failed));
  add("dllm_prompt_tokens_total", "counter",
      "Prompt tokens of admitted requests.", double(m.prompt_tokens));
  add("dllm_completion_tokens_total", "counter", "Tokens generated.",
      double(m.completion_tokens));
  add("dllm_queue_depth", "gauge", "Requests waiting to join the batch.",
      double(m.queue_depth));
  add("dllm_batch_size", "gauge", "Sequences in the running batch.",
      double(m.batch_size));
  add("dllm_steps_total", "counter", "Generator steps (one forward pass each).",
      double(m.steps));
  add("dllm_step_sequences_total", "counter",
      "Sum of the batch sizes of all steps.", double(m.step_rows));
  add("dllm_step_seconds_total", "counter", "Time spent in steps.",
      double(m.step_micros) * 1e-6);
  return out;
}

}  // namespace dllm::server
