// dllm chat: an interactive multi-turn chat through the model's chat template,
// the answer streamed as its prefix becomes final.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "args.h"
#include "canvas_view.h"
#include "command.h"
#include "dllm/engine.h"
#include "dllm/error.h"
#include "dllm/files.h"
#include "dllm/generate.h"
#include "dllm/prefix_stream.h"
#include "generate_options.h"
#include "line_editor.h"

namespace dllm::cli {
namespace {

struct ChatState {
  PrefixStreamer* stream = nullptr;
  CanvasView* view = nullptr;
};

// With --visual the canvas is drawn on stderr and the text printed at the
// end; otherwise the text streams. The streamer runs either way, since it
// finds the stop strings.
bool ChatStep(const StepInfo& info, void* user) {
  auto* s = static_cast<ChatState*>(user);
  std::string piece = s->stream->OnStep((*info.canvases)[0]);
  if (s->view) {
    s->view->Draw(info, 0);
  } else {
    std::fputs(piece.c_str(), stdout);
    std::fflush(stdout);
  }
  // A stop string or EOS ends the answer: no need to denoise the rest.
  return !LineEditor::interrupted && !s->stream->stopped();
}

ChatTemplate LoadTemplateFile(const std::string& path) {
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0)
    return ChatTemplate::FromTokenizerConfig(path);
  return ChatTemplate::FromString(ReadFileToString(path));
}

// Drops the oldest turns (never the system message nor the new question)
// until the conversation and the answer fit the context. Returns how many
// messages were dropped, or -1 when even the new question alone is too long.
int FitContext(const Engine& engine, nlohmann::json& messages, bool has_system,
               int gen_length, std::vector<int32_t>* prompt) {
  const int ctx = engine.config().max_seq_len;
  int dropped = 0;
  for (;;) {
    *prompt = engine.EncodeChat(messages.dump());
    if (int64_t(prompt->size()) + gen_length <= ctx) return dropped;
    const size_t first = has_system ? 1 : 0;
    if (messages.size() <= first + 1) return -1;
    messages.erase(messages.begin() + long(first));
    ++dropped;
  }
}

int RunChat(int argc, char** argv) {
  Args a("dllm chat -m DIR [--system TEXT] [generation options]",
         "Interactive chat: each line you type is a user turn, rendered with "
         "the model's chat\n"
         "template (tokenizer_config.json) together with the conversation so "
         "far; the answer is\n"
         "streamed as it becomes final. Line editing and history (arrows) on "
         "a terminal. /reset\n"
         "clears the history, /quit (or Ctrl-D, or Ctrl-C at the prompt) "
         "leaves; Ctrl-C during an\n"
         "answer stops it. When the conversation outgrows the context, the "
         "oldest turns are dropped.");
  a.Option("-m,--model", "DIR",
           "model folder with tokenizer.json and tokenizer_config.json");
  a.Option("--system", "TEXT",
           "system message at the start of the conversation");
  a.Option("--chat-template", "FILE",
           "use this chat template (a Jinja file, or a tokenizer_config.json) "
           "instead of the model's");
  AddStopOption(a);
  AddGenerateOptions(a);
  a.Flag("--visual",
         "show the canvas being denoised instead of streaming the text");
  a.Flag("--quiet", "no statistics after each answer");
  AddThreadsOption(a);
  AddDeviceOption(a);
  if (!a.Parse(argc, argv)) return a.exit_code();
  DLLM_USAGE_CHECK(a.Has("--model"), "chat: -m DIR is required");
  ApplyThreadsOption(a);
  const std::string dir = a.Get("--model");
  auto engine = Engine::Load(dir, {DeviceOption(a)});
  if (a.Has("--chat-template"))
    engine->SetChatTemplate(LoadTemplateFile(a.Get("--chat-template")));
  const ModelConfig& c = engine->config();
  const Tokenizer& tok = engine->tokenizer();
  engine->RequireChat();  // before the first prompt, not after it
  GenerateOptions o = ReadGenerateOptions(a, *engine);
  o.stop_at_eos = true;
  const std::vector<std::string> stops = ReadStopOption(a);

  LineEditor editor("dllm");
  const bool has_system = a.Has("--system");
  nlohmann::json messages = nlohmann::json::array();
  if (has_system)
    messages.push_back({{"role", "system"}, {"content", a.Get("--system")}});
  const bool quiet = a.GetFlag("--quiet");
  std::fprintf(
      stderr,
      "dllm chat: %s (%s, %.0fM params). /reset clears, /quit leaves.\n",
      dir.c_str(), ArchName(c.arch), double(c.NumParams()) / 1e6);
  std::string line;
  for (;;) {
    LineEditor::Status st = editor.Read("> ", &line);
    if (st != LineEditor::Status::kLine) {
      std::fputs("\n", stdout);
      break;
    }
    if (line == "/quit" || line == "/exit") break;
    if (line == "/reset") {
      messages.erase(messages.begin() + (has_system ? 1 : 0), messages.end());
      std::fputs("(history cleared)\n", stdout);
      continue;
    }
    if (line.empty()) continue;
    editor.AddHistory(line);
    messages.push_back({{"role", "user"}, {"content", line}});
    std::vector<int32_t> prompt;
    const int dropped =
        FitContext(*engine, messages, has_system, o.gen_length, &prompt);
    if (dropped < 0) {
      std::fprintf(stderr,
                   "error: this message (%zu tokens with the template) + %d "
                   "new tokens exceeds the context of %d tokens; write a "
                   "shorter one or lower --gen-length\n",
                   prompt.size(), o.gen_length, c.max_seq_len);
      messages.erase(messages.end() - 1);
      continue;
    }
    if (dropped > 0)
      std::fprintf(stderr,
                   "(dropped the %d oldest message%s to fit the context of %d "
                   "tokens)\n",
                   dropped, dropped == 1 ? "" : "s", c.max_seq_len);
    LineEditor::interrupted = 0;
    PrefixStreamer stream(tok, o.eos_ids, stops);
    CanvasView view(&tok, c.mask_token_id, stderr);
    ChatState cs;
    cs.stream = &stream;
    if (a.GetFlag("--visual")) cs.view = &view;
    GenerateStats stats;
    auto r = Generate(engine->model(), {prompt}, o, ChatStep, &cs, &stats);
    view.Finish();
    std::string rest = stream.Finish(r[0].tokens);
    std::fputs((cs.view ? stream.text() : rest).c_str(), stdout);
    std::fputs("\n", stdout);
    std::fflush(stdout);
    if (LineEditor::interrupted) std::fputs("(interrupted)\n", stdout);
    if (!quiet)
      std::fprintf(
          stderr, "[%lld tokens, %d forward passes, %.1f tokens/s]\n",
          (long long)stats.tokens, stats.forward_passes,
          stats.seconds > 0 ? double(stats.tokens) / stats.seconds : 0.0);
    messages.push_back({{"role", "assistant"}, {"content", stream.text()}});
  }
  return 0;
}

}  // namespace

DLLM_COMMAND("chat",
             "interactive multi-turn chat with the model's chat template",
             RunChat);

}  // namespace dllm::cli
