#include "generate_options.h"

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "dllm/error.h"
#include "dllm/generate_options.h"

namespace dllm::cli {

void AddGenerateOptions(Args& a) {
  const GenerateOptions defaults;
  for (const GenerateOptionSpec& s : GenerateOptionSpecs()) {
    const std::string flag = std::string("--") + s.name;
    if (s.kind == GenerateOptionSpec::Kind::kFlag)
      a.Flag(flag, s.help);
    else
      a.Option(flag, s.metavar, s.help,
               s.model_default ? std::string() : s.get(defaults));
  }
}

GenerateOptions ReadGenerateOptions(const Args& a, const Engine& engine) {
  std::vector<std::pair<std::string, std::string>> given;
  for (const GenerateOptionSpec& s : GenerateOptionSpecs()) {
    const std::string flag = std::string("--") + s.name;
    if (!a.Has(flag)) continue;
    given.emplace_back(s.name, s.kind == GenerateOptionSpec::Kind::kFlag
                                   ? std::string("true")
                                   : a.Get(flag));
  }
  GenerateOptions o = engine.DefaultOptions();
  try {
    ApplyGenerateOptions(o, given);
  } catch (const Error& e) {
    UsageFail(e.what());  // a bad value on the command line: exit status 2
  }
  // A block length the user never chose must not make their gen length an
  // error without saying where it came from.
  const int def_block = engine.DefaultOptions().block_length;
  DLLM_USAGE_CHECK(a.Has("--block-length") || def_block <= 0 ||
                       o.gen_length % def_block == 0,
                   "--gen-length ", o.gen_length,
                   " is not a multiple of this model's default block length ",
                   def_block, " (from ", engine.dir(),
                   "/generation_config.json): give --block-length too");
  return o;
}

void PrintGenerateSummary(const GenerateStats& s) {
  const double tpf = s.forward_passes ? double(s.tokens) / s.forward_passes : 0;
  std::fprintf(stderr,
               "\nforward passes (NFE) %d | tokens %lld | %.2f tokens/pass | "
               "%.1f tokens/s | %.1f ms/step | total %.2f s\n",
               s.forward_passes, (long long)s.tokens, tpf,
               s.seconds > 0 ? double(s.tokens) / s.seconds : 0.0,
               s.forward_passes ? 1e3 * s.seconds / s.forward_passes : 0.0,
               s.seconds);
}

void AddStopOption(Args& a) {
  a.Option("--stop", "TEXT",
           "end the text at this string (escapes: \\n \\t \\\\)");
}

std::vector<std::string> ReadStopOption(const Args& a) {
  if (!a.Has("--stop")) return {};
  const std::string in = a.Get("--stop");
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\\' || i + 1 == in.size()) {
      out += in[i];
      continue;
    }
    switch (in[++i]) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case '\\':
        out += '\\';
        break;
      default:
        UsageFail("option --stop: unknown escape '\\", in[i],
                  "' (use \\n, \\t, \\r or \\\\)");
    }
  }
  DLLM_USAGE_CHECK(!out.empty(), "option --stop: the stop string is empty");
  return {out};
}

}  // namespace dllm::cli
