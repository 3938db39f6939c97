// dllm generate: diffusion generation from a prompt.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "args.h"
#include "base/error.h"
#include "canvas_view.h"
#include "command.h"
#include "dllm/generate.h"
#include "dllm/model.h"
#include "dllm/runtime.h"
#include "generate_options.h"
#include "parse_ids.h"
#include "prefix_stream.h"
#include "tokenizer/tokenizer.h"

namespace dllm::cli {

namespace {
bool Exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}
}  // namespace

void AddGenerateOptions(Args& a) {
  a.Option("--gen-length", "N", "tokens to generate", "64");
  a.Option("--steps", "N",
           "denoising steps (forward passes) for fixed schedules (default: gen "
           "length)");
  a.Option("--block-length", "N",
           "semi-autoregressive block size (default: gen length, one block)");
  a.Option("--sampler", "NAME",
           "low-confidence | random (LLaDA) | origin | maskgit-plus | "
           "topk-margin | entropy (Dream) "
           "(default: low-confidence for LLaDA models, entropy for Dream)");
  a.Option("--schedule", "NAME",
           "blocks | timesteps | threshold | factor | eb (default: blocks for "
           "LLaDA samplers, "
           "timesteps for Dream's)");
  a.Option("--temperature", "T", "sampling temperature; 0 = greedy", "0");
  a.Option("--top-p", "P", "nucleus filter (Dream samplers)", "1");
  a.Option("--top-k", "K", "top-k filter (Dream samplers; 0 = off)", "0");
  a.Option(
      "--alg-temp", "T",
      "Dream: sample positions from softmax(confidence/T) instead of top-k",
      "0");
  a.Option("--eps", "E", "Dream timesteps end at eps", "0.001");
  a.Option("--cfg", "W", "classifier-free guidance scale (0 = off)", "0");
  a.Option("--threshold", "TAU",
           "Fast-dLLM: commit every position with confidence >= TAU (sets "
           "--schedule threshold)");
  a.Option("--factor", "F", "Fast-dLLM factor rule (sets --schedule factor)");
  a.Option("--gamma", "G",
           "entropy-bounded sampler budget in nats (sets --schedule eb)");
  a.Flag("--ban-eos", "never generate EOS/EoT tokens");
  a.Flag("--eos-last", "commit positions that chose EOS/EoT after all others");
  a.Flag(
      "--no-early-stop",
      "keep denoising after an EOS is committed (the reference's behaviour)");
  a.Option("--seed", "N", "random seed", "0");
}

GenerateOptions ReadGenerateOptions(const Args& a, const ModelConfig& c) {
  GenerateOptions o;
  o.gen_length = int(a.GetInt("--gen-length"));
  o.steps = a.Has("--steps") ? int(a.GetInt("--steps")) : o.gen_length;
  o.block_length =
      a.Has("--block-length") ? int(a.GetInt("--block-length")) : 0;
  o.order =
      a.Has("--sampler")
          ? ParseOrder(a.Get("--sampler"))
          : (c.arch == Arch::kDream ? Order::kEntropy : Order::kLowConfidence);
  if (a.Has("--schedule")) o.schedule = ParseSchedule(a.Get("--schedule"));
  o.temperature = a.GetDouble("--temperature");
  o.top_p = a.GetDouble("--top-p");
  o.top_k = int(a.GetInt("--top-k"));
  o.alg_temp = a.GetDouble("--alg-temp");
  o.eps = a.GetDouble("--eps");
  o.cfg_scale = a.GetDouble("--cfg");
  if (a.Has("--threshold")) {
    o.threshold = a.GetDouble("--threshold");
    if (!a.Has("--schedule")) o.schedule = Schedule::kThreshold;
  }
  if (a.Has("--factor")) {
    o.factor = a.GetDouble("--factor");
    if (!a.Has("--schedule")) o.schedule = Schedule::kFactor;
  }
  if (a.Has("--gamma")) {
    o.gamma = a.GetDouble("--gamma");
    if (!a.Has("--schedule")) o.schedule = Schedule::kEntropyBound;
  }
  o.ban_eos = a.GetFlag("--ban-eos");
  o.eos_last = a.GetFlag("--eos-last");
  o.stop_at_eos = !a.GetFlag("--no-early-stop");
  o.seed = uint64_t(a.GetInt("--seed", 0, INT64_MAX));
  return o;
}

std::vector<int32_t> ModelEosIds(const ModelConfig& c, const Tokenizer* tok) {
  std::vector<int32_t> eos;
  if (c.eos_token_id >= 0) eos.push_back(c.eos_token_id);
  if (tok && tok->loaded()) {
    // LLaDA's instruct models end turns with <|eot_id|>; Dream's with
    // <|im_end|>.
    for (const char* name : {"<|eot_id|>", "<|im_end|>", "<|endoftext|>"}) {
      int32_t id = tok->TokenId(name);
      if (id >= 0 && id < c.vocab_size &&
          std::find(eos.begin(), eos.end(), id) == eos.end())
        eos.push_back(id);
    }
  }
  return eos;
}

Tokenizer LoadModelTokenizer(const std::string& dir) {
  if (Exists(dir + "/tokenizer.json"))
    return Tokenizer::FromFile(dir + "/tokenizer.json");
  return Tokenizer();
}

void PrintGenerateSummary(const GenerateStats& s) {
  const double tpf = s.forward_passes ? double(s.tokens) / s.forward_passes : 0;
  std::fprintf(stderr,
               "\nforward passes (NFE) %d | tokens %lld | %.2f tokens/pass | "
               "%.1f tokens/s | %.1f ms/step | "
               "total %.2f s\n",
               s.forward_passes, (long long)s.tokens, tpf,
               s.seconds > 0 ? double(s.tokens) / s.seconds : 0.0,
               s.forward_passes ? 1e3 * s.seconds / s.forward_passes : 0.0,
               s.seconds);
}

namespace {

struct StepState {
  CanvasView* view = nullptr;
  PrefixStreamer* stream = nullptr;
};

bool OnStep(const StepInfo& info, void* user) {
  auto* s = static_cast<StepState*>(user);
  if (s->view) s->view->Draw(info, 0);
  if (s->stream) s->stream->OnStep((*info.canvases)[0]);
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
  AddGenerateOptions(a);
  a.Flag("--visual",
         "redraw the canvas every step on stderr (masks dimmed, new tokens "
         "highlighted)");
  a.Flag("--print-ids",
         "print only the generated ids, space separated, on one line");
  a.Flag("--json", "print a JSON object with the text, ids and statistics");
  a.Option("-t,--threads", "N", "threads (0 = one per core)", "0");
  if (!a.Parse(argc, argv)) return a.exit_code();
  DLLM_CHECK(a.Has("--model"), "generate: -m DIR is required");
  DLLM_CHECK(a.Has("--prompt") != a.Has("--prompt-ids") ||
                 (!a.Has("--prompt") && !a.Has("--prompt-ids")),
             "generate: give -p TEXT or --prompt-ids, not both");
  SetNumThreads(int(a.GetInt("--threads", 0, 1024)));
  const std::string dir = a.Get("--model");
  auto model = Model::Load(dir);
  const ModelConfig& c = model->config();
  Tokenizer tok = LoadModelTokenizer(dir);
  std::vector<int32_t> prompt;
  if (a.Has("--prompt-ids")) {
    prompt = ParseIdList(a.Get("--prompt-ids"), "--prompt-ids");
  } else if (a.Has("--prompt")) {
    DLLM_CHECK(
        tok.loaded(), dir,
        ": no tokenizer.json, so -p TEXT cannot be encoded (use --prompt-ids)");
    prompt = tok.Encode(a.Get("--prompt"));
  }
  GenerateOptions o = ReadGenerateOptions(a, c);
  o.eos_ids = ModelEosIds(c, &tok);
  if (a.Has("--suffix-ids"))
    o.suffix = ParseIdList(a.Get("--suffix-ids"), "--suffix-ids");
  if (a.Has("--suffix")) {
    DLLM_CHECK(tok.loaded(), dir,
               ": no tokenizer.json, so --suffix TEXT cannot be encoded");
    o.suffix = tok.Encode(a.Get("--suffix"), /*add_special=*/false);
  }
  ValidateGenerateOptions(o, int(prompt.size()), c.max_seq_len);

  CanvasView view(tok.loaded() ? &tok : nullptr, c.mask_token_id, stderr);
  // Plain text output streams as the generated prefix becomes final.
  const bool plain =
      tok.loaded() && !a.GetFlag("--json") && !a.GetFlag("--print-ids");
  PrefixStreamer stream(tok, o.eos_ids, stdout);
  StepState ss;
  if (a.GetFlag("--visual")) ss.view = &view;
  if (plain && o.suffix.empty() && !a.GetFlag("--visual")) ss.stream = &stream;
  if (ss.stream) {
    std::fputs(a.Has("--prompt") ? a.Get("--prompt").c_str() : "", stdout);
    std::fflush(stdout);
  }
  GenerateStats stats;
  auto results = Generate(*model, {prompt}, o, OnStep, &ss, &stats);
  view.Finish();
  const GenerateResult& r = results[0];
  std::string text =
      tok.loaded() ? tok.Decode(r.tokens, /*skip_special=*/true) : "";
  if (a.GetFlag("--json")) {
    nlohmann::json j = {
        {"text", SanitizeUtf8(text)},
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
        {"schedule", ScheduleName(o.schedule)}};
    std::printf("%s\n", j.dump().c_str());
  } else if (a.GetFlag("--print-ids") || !tok.loaded()) {
    for (size_t i = 0; i < r.tokens.size(); ++i)
      std::printf("%s%d", i ? " " : "", r.tokens[i]);
    std::printf("\n");
  } else {
    // Infilling prints the middle once it is complete; otherwise the rest.
    if (ss.stream) {
      stream.Finish(r.tokens);
      std::printf("\n");
    } else {
      std::printf("%s%s\n", a.Has("--prompt") ? a.Get("--prompt").c_str() : "",
                  SanitizeUtf8(text).c_str());
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
