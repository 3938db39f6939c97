// Subcommands of the `dllm` tool register themselves here, so that adding one
// is adding one file (cmd_<name>.cc) with a DLLM_COMMAND line.
#pragma once

#include <string>
#include <vector>

namespace dllm::cli {

struct Command {
  const char* name;                   // e.g. "forward" or "tokenizer train"
  const char* summary;                // one line for `dllm --help`
  int (*run)(int argc, char** argv);  // argv[0] is the command name
};

bool RegisterCommand(const Command& cmd);
const std::vector<Command>& Commands();

}  // namespace dllm::cli

#define DLLM_COMMAND(name, summary, fn)        \
  static const bool dllm_cmd_registered_##fn = \
      ::dllm::cli::RegisterCommand({name, summary, fn})
