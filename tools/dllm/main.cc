// dllm: the command-line tool. Each subcommand lives in its own cmd_*.cc and
// registers itself; this file only dispatches and turns errors into messages.
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "args.h"
#include "command.h"
#include "dllm/error.h"
#include "dllm/model.h"
#include "dllm/version.h"

namespace dllm::cli {

std::vector<Command>& MutableCommands() {
  static std::vector<Command> commands;
  return commands;
}
bool RegisterCommand(const Command& cmd) {
  MutableCommands().push_back(cmd);
  return true;
}
const std::vector<Command>& Commands() { return MutableCommands(); }

}  // namespace dllm::cli

namespace {

// `dllm --version` and `dllm version`: what to paste into a bug report.
int RunVersion(int argc, char** argv) {
  dllm::cli::Args a("dllm version",
                    "Prints the version, the SIMD targets compiled in and the "
                    "one this CPU uses.");
  if (!a.Parse(argc, argv)) return a.exit_code();
  const dllm::SimdInfo simd = dllm::GetSimdInfo();
  std::string compiled;
  for (const std::string& t : simd.compiled)
    compiled += (compiled.empty() ? "" : " ") + t;
  std::printf("dllm %s\n", dllm::kVersion);
  std::printf("simd   %s (compiled: %s)\n", simd.chosen.c_str(),
              compiled.c_str());
  std::printf("cores  %u\n", std::thread::hardware_concurrency());
  std::string devices;
  for (const std::string& d : dllm::CompiledDevices())
    devices += (devices.empty() ? "" : " ") + d;
  std::printf("devices %s (--device; cuda needs -DDLLM_CUDA=ON)\n",
              devices.c_str());
  return 0;
}

DLLM_COMMAND("version", "print the version and the SIMD targets", RunVersion);

void PrintUsage(FILE* f) {
  std::fprintf(
      f,
      "dllm: an engine for masked-diffusion language models\n\n"
      "usage: dllm COMMAND [options]   (dllm COMMAND --help for details)\n\n"
      "commands:\n");
  for (const auto& c : dllm::cli::Commands())
    std::fprintf(f, "  %-20s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "help")) {
    PrintUsage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version") || !std::strcmp(argv[1], "-V")) {
    char name[] = "version";
    char* args[] = {name, nullptr};
    return RunVersion(1, args);
  }
  // Longest match first, so "tokenizer train" wins over "tokenizer".
  const dllm::cli::Command* best = nullptr;
  int best_words = 0;
  for (const auto& c : dllm::cli::Commands()) {
    std::string name = c.name;
    int words = 0;
    size_t pos = 0;
    bool ok = true;
    while (ok && pos <= name.size()) {
      size_t sp = name.find(' ', pos);
      std::string w = name.substr(
          pos, sp == std::string::npos ? std::string::npos : sp - pos);
      ok = 1 + words < argc && w == argv[1 + words];
      if (ok) ++words;
      if (sp == std::string::npos) break;
      pos = sp + 1;
    }
    if (ok && words > best_words) {
      best = &c;
      best_words = words;
    }
  }
  if (!best) {
    // A group such as `dllm bench` or `dllm data`: list its commands.
    std::string group = std::string(argv[1]) + " ";
    bool listed = false;
    for (const auto& c : dllm::cli::Commands())
      if (std::string(c.name).rfind(group, 0) == 0) {
        if (!listed) std::fprintf(stderr, "dllm %s: choose one of\n", argv[1]);
        std::fprintf(stderr, "  dllm %-20s %s\n", c.name, c.summary);
        listed = true;
      }
    if (listed) return 2;
    std::fprintf(stderr, "dllm: unknown command '%s'\n\n", argv[1]);
    PrintUsage(stderr);
    return 2;
  }
  try {
    return best->run(argc - best_words, argv + best_words);
  } catch (const dllm::cli::UsageError& e) {
    // README: 2 for a bad command line, 1 for everything else.
    std::fprintf(stderr, "error: %s\n(dllm %s --help lists every option)\n",
                 e.what(), best->name);
    return 2;
  } catch (const dllm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
