// dllm convert / dllm quantize: Hugging Face folders <-> GGUF files, and GGUF
// files in another storage type (dllm/convert.h).
#include <cctype>
#include <cstdio>
#include <string>

#include "args.h"
#include "command.h"
#include "dllm/convert.h"
#include "dllm/error.h"

namespace dllm::cli {
namespace {

int Report(const ConvertResult& r, const std::string& cmd,
           const std::string& dst) {
  for (const std::string& w : r.warnings)
    std::fprintf(stderr, "%s: warning: %s\n", cmd.c_str(), w.c_str());
  std::fprintf(stderr, "%s: wrote %s (%lld tensors, %.1f MB of weights)\n",
               cmd.c_str(), dst.c_str(), (long long)r.tensors,
               double(r.bytes) / 1e6);
  return 0;
}

ConvertOptions Options(const Args& a, const std::string& cmd,
                       const std::string& outtype) {
  ConvertOptions o;
  o.outtype = outtype;
  o.force = a.GetFlag("--force");
  if (!a.GetFlag("--quiet"))
    o.progress = [cmd](const std::string& line) {
      std::fprintf(stderr, "%s: %s\n", cmd.c_str(), line.c_str());
    };
  return o;
}

void CheckOutType(const std::string& cmd, const std::string& t) {
  static const char* const kTypes[] = {"f32",  "f16",  "bf16", "q8_0",
                                       "q4_0", "q4_k", "q6_k", "auto"};
  std::string lower = t;
  for (char& ch : lower)
    ch = char(std::tolower(static_cast<unsigned char>(ch)));
  for (const char* k : kTypes)
    if (lower == k) return;
  UsageFail(cmd, ": unknown type '", t, "' (expected ", ConvertOutTypes(), ")");
}

int RunConvert(int argc, char** argv) {
  Args a("dllm convert SRC DST [--outtype TYPE] [--force]",
         "Converts a model between a Hugging Face folder and a GGUF file "
         "(llama.cpp's format):\n"
         "  FOLDER -> FILE.gguf   weights under llama.cpp's names (q/k rows "
         "reordered for its RoPE\n"
         "                        in the llada and llama architectures), the "
         "config, tokenizer\n"
         "                        (tokenizer.ggml.* and "
         "tokenizer.huggingface.json), chat template\n"
         "                        and generation_config.json as metadata\n"
         "  FILE.gguf -> FOLDER   config.json, model.safetensors, "
         "tokenizer.json,\n"
         "                        tokenizer_config.json, "
         "generation_config.json\n"
         "  FILE.gguf -> FILE.gguf  another storage type (as dllm quantize)\n"
         "Norms and biases stay f32. Block types follow llama-quantize: the "
         "output head (and a\n"
         "tied embedding) is Q6_K unless q8_0 is asked for; rows that are not "
         "whole blocks fall\n"
         "back to Q8_0, then F16.");
  a.AllowPositional("SRC DST", "source and destination");
  a.Option("--outtype", "TYPE",
           "f32, f16, bf16, q8_0, q4_0, q4_k, q6_k, or auto (as the source "
           "stores them; block types become f32 in a folder)",
           "auto");
  a.Flag("--force", "overwrite an existing destination");
  a.Flag("-q,--quiet", "no progress lines on stderr");
  AddThreadsOption(a);
  if (!a.Parse(argc, argv)) return a.exit_code();
  DLLM_USAGE_CHECK(a.Positional().size() == 2,
                   "convert: expected SRC and DST, got ", a.Positional().size(),
                   " arguments");
  CheckOutType("convert", a.Get("--outtype"));
  ApplyThreadsOption(a);
  const std::string src = a.Positional()[0], dst = a.Positional()[1];
  return Report(
      ConvertModel(src, dst, Options(a, "convert", a.Get("--outtype"))),
      "convert", dst);
}

int RunQuantize(int argc, char** argv) {
  Args a("dllm quantize SRC DST.gguf TYPE [--force]",
         "Writes a GGUF file whose matrices are stored as TYPE (q8_0, q4_0, "
         "q4_k, q6_k, f16, bf16,\n"
         "f32), from a GGUF file or a Hugging Face folder: the same as dllm "
         "convert SRC DST\n"
         "--outtype TYPE, spelled like llama-quantize. Norms and biases stay "
         "f32; the output\n"
         "head (and a tied embedding) is Q6_K unless TYPE is q8_0.");
  a.AllowPositional("SRC DST TYPE", "source, destination .gguf and type");
  a.Flag("--force", "overwrite an existing destination");
  a.Flag("-q,--quiet", "no progress lines on stderr");
  AddThreadsOption(a);
  if (!a.Parse(argc, argv)) return a.exit_code();
  DLLM_USAGE_CHECK(a.Positional().size() == 3,
                   "quantize: expected SRC DST TYPE, got ",
                   a.Positional().size(), " arguments");
  const std::string src = a.Positional()[0], dst = a.Positional()[1],
                    type = a.Positional()[2];
  CheckOutType("quantize", type);
  DLLM_USAGE_CHECK(dst.size() > 5 && dst.substr(dst.size() - 5) == ".gguf",
                   "quantize: the destination '", dst,
                   "' must be a .gguf file");
  ApplyThreadsOption(a);
  return Report(ConvertModel(src, dst, Options(a, "quantize", type)),
                "quantize", dst);
}

}  // namespace

DLLM_COMMAND("convert", "convert a model between a folder and a GGUF file",
             RunConvert);
DLLM_COMMAND("quantize", "write a GGUF file with quantized matrices",
             RunQuantize);

}  // namespace dllm::cli
