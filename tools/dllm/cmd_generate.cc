// dllm generate: diffusion generation from a prompt.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "args.h"
#include "canvas_view.h"
#include "command.h"
#include "dllm/engine.h"
#include "dllm/error.h"
#include "dllm/generate.h"
#include "dllm/generate_options.h"
#include "dllm/prefix_stream.h"
#include "generate_options.h"
#include "parse_ids.h"

namespace dllm::cli {

namespace {

struct StepState {
  CanvasView* view = nullptr;
  PrefixStreamer* stream = nullptr;
};

bool OnStep(const StepInfo& info, void* user) {
  auto* s = static_cast<StepState*>(user);
  if (s->view) s->view->Draw(info, 0);
  if (s->stream) {
    std::fputs(s->stream->OnStep((*info.canvases)[0]).c_str(), stdout);
    std::fflush(stdout);
    // Past a stop string nothing more is shown: stop denoising.
    return !s->stream->stopped();
  }
  return true;
}

int RunGenerate(int argc, char** argv) {
  Args a("dllm generate -m DIR (-p TEXT | --prompt-ids IDS) [options]",
         "Generates text by diffusion: the prompt is followed by --gen-length "
         "[MASK] tokens that are\n"
         "unmasked over the steps, as chosen by the sampler (which positions "
         "first) and the schedule\n"
         "(how many per step). The text goes to stdout; statistics to stderr.");
  a.Option("-m,--model", "DIR", "model folder");
  a.Option("-p,--prompt", "TEXT",
           "prompt text (needs tokenizer.json in the model folder)");
  a.Option("--prompt-ids", "IDS", "prompt as token ids");
  a.Option("--suffix", "TEXT",
           "infilling: text that follows the generated span");
  a.Option("--suffix-ids", "IDS", "infilling: suffix as token ids");
  AddStopOption(a);
  AddGenerateOptions(a);
  a.Flag("--visual",
         "redraw the canvas every step on stderr (masks dimmed, new tokens "
         "highlighted)");
  a.Flag("--print-ids",
         "print only the generated ids, space separated, on one line");
  a.Flag("--json", "print a JSON object with the text, ids and statistics");
  AddThreadsOption(a);
  AddDeviceOption(a);
  if (!a.Parse(argc, argv)) return a.exit_code();
  DLLM_USAGE_CHECK(a.Has("--model"), "generate: -m DIR is required");
  DLLM_USAGE_CHECK(a.Has("--prompt") != a.Has("--prompt-ids") ||
                       (!a.Has("--prompt") && !a.Has("--prompt-ids")),
                   "generate: give -p TEXT or --prompt-ids, not both");
  ApplyThreadsOption(a);
  auto engine = Engine::Load(a.Get("--model"), {DeviceOption(a)});
  const ModelConfig& c = engine->config();
  const Tokenizer& tok = engine->tokenizer();
  std::vector<int32_t> prompt;
  if (a.Has("--prompt-ids")) {
    prompt = ParseIdList(a.Get("--prompt-ids"), "--prompt-ids");
  } else if (a.Has("--prompt")) {
    prompt = engine->Encode(a.Get("--prompt"), /*add_special=*/true,
                            "-p TEXT (use --prompt-ids)");
  }
  GenerateOptions o = ReadGenerateOptions(a, *engine);
  if (a.Has("--suffix-ids"))
    o.suffix = ParseIdList(a.Get("--suffix-ids"), "--suffix-ids");
  if (a.Has("--suffix"))
    o.suffix = engine->Encode(a.Get("--suffix"), /*add_special=*/false,
                              "--suffix TEXT");
  try {
    ValidateGenerateOptions(o, int(prompt.size()), c.max_seq_len);
  } catch (const Error& e) {
    UsageFail(e.what());  // options that do not fit together: status 2
  }
  const std::vector<std::string> stops = ReadStopOption(a);
  DLLM_CHECK(stops.empty() || tok.loaded(), engine->dir(),
             ": --stop needs tokenizer.json (stop strings are text)");

  CanvasView view(tok.loaded() ? &tok : nullptr, c.mask_token_id, stderr);
  // Plain text output streams as the generated prefix becomes final.
  const bool plain =
      tok.loaded() && !a.GetFlag("--json") && !a.GetFlag("--print-ids");
  PrefixStreamer stream(tok, o.eos_ids, stops);
  StepState ss;
  if (a.GetFlag("--visual")) ss.view = &view;
  if (plain && o.suffix.empty() && !a.GetFlag("--visual")) ss.stream = &stream;
  if (ss.stream) {
    std::fputs(a.Has("--prompt") ? a.Get("--prompt").c_str() : "", stdout);
    std::fflush(stdout);
  }
  GenerateStats stats;
  auto results = Generate(engine->model(), {prompt}, o, OnStep, &ss, &stats);
  view.Finish();
  const GenerateResult& r = results[0];
  // The text up to a stop string, as the stream shows it.
  const std::string text =
      tok.loaded() ? PrefixStreamer(tok, o.eos_ids, stops).Finish(r.tokens)
                   : "";
  if (a.GetFlag("--json")) {
    nlohmann::json j = {
        {"text", text},
        {"prompt_tokens", prompt.size()},
        {"tokens", r.tokens},
        {"hit_eos", r.hit_eos},
        {"forward_passes", stats.forward_passes},
        {"steps", r.steps},
        {"tokens_per_forward", stats.forward_passes
                                   ? double(stats.tokens) / stats.forward_passes
                                   : 0},
        {"seconds", stats.seconds},
        {"sampler", OrderName(o.order)},
        {"schedule", ScheduleName(ResolveSchedule(o))},
        {"options", nlohmann::json::parse(GenerateOptionsToJson(o))}};
    std::printf("%s\n", j.dump().c_str());
  } else if (a.GetFlag("--print-ids") || !tok.loaded()) {
    for (size_t i = 0; i < r.tokens.size(); ++i)
      std::printf("%s%d", i ? " " : "", r.tokens[i]);
    std::printf("\n");
  } else {
    // Infilling prints the middle once it is complete; otherwise the rest.
    if (ss.stream) {
      std::printf("%s\n", stream.Finish(r.tokens).c_str());
    } else {
      std::printf("%s%s\n", a.Has("--prompt") ? a.Get("--prompt").c_str() : "",
                  text.c_str());
    }
  }
  if (!a.GetFlag("--json") && !a.GetFlag("--print-ids"))
    PrintGenerateSummary(stats);
  return 0;
}

}  // namespace

DLLM_COMMAND("generate",
             "generate text by masked diffusion (every published sampler)",
             RunGenerate);

}  // namespace dllm::cli
