// dllm chat: an interactive multi-turn chat through the model's chat template,
// the answer streamed as its prefix becomes final.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "args.h"
#include "base/error.h"
#include "canvas_view.h"
#include "command.h"
#include "dllm/generate.h"
#include "dllm/model.h"
#include "dllm/runtime.h"
#include "generate_options.h"
#include "prefix_stream.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace dllm::cli {
namespace {

volatile std::sig_atomic_t g_interrupted = 0;
void OnSigint(int) { g_interrupted = 1; }

struct ChatState {
  PrefixStreamer* stream = nullptr;
  CanvasView* view = nullptr;
};

bool ChatStep(const StepInfo& info, void* user) {
  auto* s = static_cast<ChatState*>(user);
  if (s->view) s->view->Draw(info, 0);
  if (s->stream) s->stream->OnStep((*info.canvases)[0]);
  return !g_interrupted;
}

int RunChat(int argc, char** argv) {
  Args a("dllm chat -m DIR [--system TEXT] [generation options]",
         "Interactive chat: each line you type is a user turn, rendered with "
         "the model's chat\n"
         "template (tokenizer_config.json) together with the conversation so "
         "far; the answer is\n"
         "streamed as it becomes final. Commands: /reset clears the history, "
         "/quit (or Ctrl-D)\n"
         "leaves; Ctrl-C stops the answer being generated.");
  a.Option("-m,--model", "DIR",
           "model folder with tokenizer.json and tokenizer_config.json");
  a.Option("--system", "TEXT",
           "system message at the start of the conversation");
  AddGenerateOptions(a);
  a.Flag("--visual",
         "show the canvas being denoised instead of streaming the text");
  a.Flag("--quiet", "no statistics after each answer");
  a.Option("-t,--threads", "N", "threads (0 = one per core)", "0");
  if (!a.Parse(argc, argv)) return a.exit_code();
  DLLM_CHECK(a.Has("--model"), "chat: -m DIR is required");
  SetNumThreads(int(a.GetInt("--threads", 0, 1024)));
  const std::string dir = a.Get("--model");
  auto model = Model::Load(dir);
  const ModelConfig& c = model->config();
  Tokenizer tok = LoadModelTokenizer(dir);
  DLLM_CHECK(tok.loaded(), dir,
             ": chat needs tokenizer.json in the model folder");
  ChatTemplate tmpl = ChatTemplate::FromTokenizerConfig(dir);
  DLLM_CHECK(tmpl.loaded(), dir,
             ": chat needs a chat_template in tokenizer_config.json");
  GenerateOptions o = ReadGenerateOptions(a, c);
  o.eos_ids = ModelEosIds(c, &tok);
  o.stop_at_eos = true;

  std::signal(SIGINT, OnSigint);
  nlohmann::json messages = nlohmann::json::array();
  if (a.Has("--system"))
    messages.push_back({{"role", "system"}, {"content", a.Get("--system")}});
  const bool quiet = a.GetFlag("--quiet");
  std::fprintf(
      stderr,
      "dllm chat: %s (%s, %.0fM params). /reset clears, /quit leaves.\n",
      dir.c_str(), ArchName(c.arch), double(c.NumParams()) / 1e6);
  std::string line;
  for (;;) {
    std::fputs("> ", stdout);
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) {
      std::fputs("\n", stdout);
      break;
    }
    if (line == "/quit" || line == "/exit") break;
    if (line == "/reset") {
      nlohmann::json keep = nlohmann::json::array();
      if (a.Has("--system")) keep.push_back(messages[0]);
      messages = keep;
      std::fputs("(history cleared)\n", stdout);
      continue;
    }
    if (line.empty()) continue;
    messages.push_back({{"role", "user"}, {"content", line}});
    std::string rendered =
        tmpl.Apply(messages.dump(), /*add_generation_prompt=*/true);
    std::vector<int32_t> prompt = tok.Encode(rendered, /*add_special=*/false);
    if (int64_t(prompt.size()) + o.gen_length > c.max_seq_len) {
      std::fprintf(stderr,
                   "error: the conversation (%zu tokens) + %d new tokens "
                   "exceeds the context of %d; "
                   "/reset to start over\n",
                   prompt.size(), o.gen_length, c.max_seq_len);
      messages.erase(messages.end() - 1);
      continue;
    }
    g_interrupted = 0;
    PrefixStreamer stream(tok, o.eos_ids, stdout);
    CanvasView view(&tok, c.mask_token_id, stderr);
    ChatState st;
    if (a.GetFlag("--visual"))
      st.view = &view;
    else
      st.stream = &stream;
    GenerateStats stats;
    auto r = Generate(*model, {prompt}, o, ChatStep, &st, &stats);
    if (st.stream)
      stream.Finish(r[0].tokens);
    else
      std::fputs(SanitizeUtf8(tok.Decode(r[0].tokens, true)).c_str(), stdout);
    std::fputs("\n", stdout);
    std::fflush(stdout);
    if (g_interrupted) std::fputs("(interrupted)\n", stdout);
    if (!quiet)
      std::fprintf(
          stderr, "[%lld tokens, %d forward passes, %.1f tokens/s]\n",
          (long long)stats.tokens, stats.forward_passes,
          stats.seconds > 0 ? double(stats.tokens) / stats.seconds : 0.0);
    messages.push_back(
        {{"role", "assistant"}, {"content", tok.Decode(r[0].tokens, true)}});
  }
  return 0;
}

}  // namespace

DLLM_COMMAND("chat",
             "interactive multi-turn chat with the model's chat template",
             RunChat);

}  // namespace dllm::cli
