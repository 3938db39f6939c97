// A small command-line option parser: declared options only, so a typo is an
// error, and --help is generated from the declarations.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dllm/error.h"

namespace dllm::cli {

// A bad command line: unknown option, bad option value, missing required
// option, bad combination of options. main.cc exits with 2 for it and with 1
// for every other dllm::Error (bad files, runtime failures), as the README
// promises scripts.
class UsageError : public Error {
 public:
  using Error::Error;
};

// Throws UsageError with the concatenated message.
template <typename... T>
[[noreturn]] void UsageFail(const T&... parts) {
  throw UsageError(StrCat(parts...));
}

// DLLM_CHECK for the command line: throws UsageError (exit status 2).
#define DLLM_USAGE_CHECK(cond, ...)                   \
  do {                                                \
    if (!(cond)) ::dllm::cli::UsageFail(__VA_ARGS__); \
  } while (0)

class Args {
 public:
  // usage: e.g. "dllm forward -m DIR --ids \"1 2 3\" [options]".
  Args(std::string usage, std::string description);

  // Declares an option taking a value. `names` is "-m,--model" or "--ids".
  void Option(const std::string& names, const std::string& metavar,
              const std::string& help, const std::string& default_value = "");
  // Declares a boolean flag.
  void Flag(const std::string& names, const std::string& help);
  // Allows positional arguments (collected in Positional()).
  void AllowPositional(const std::string& metavar, const std::string& help);

  // Parses argv[1..argc). Returns false when the caller should exit with
  // `exit_code()` (help printed, or an error printed to stderr).
  bool Parse(int argc, char** argv);
  int exit_code() const { return exit_code_; }

  bool Has(const std::string& name) const;         // given on the command line
  std::string Get(const std::string& name) const;  // value or default
  // Integer option; values outside [lo, hi] (by default what an int holds)
  // are a UsageError rather than silently truncated.
  int64_t GetInt(const std::string& name, int64_t lo = INT32_MIN,
                 int64_t hi = INT32_MAX) const;
  // Number option; NaN, Inf and values outside [lo, hi] are a UsageError.
  double GetDouble(const std::string& name, double lo = -1e300,
                   double hi = 1e300) const;
  bool GetFlag(const std::string& name) const;
  const std::vector<std::string>& Positional() const { return positional_; }

  // UsageError unless `name` was given: "init: -o/--out DIR is required".
  void Require(const std::string& name) const;
  // UsageError when both were given: "... cannot be used together".
  void Conflicts(const std::string& a, const std::string& b) const;
  // The command's name as the usage line spells it ("tokenizer train"), for
  // messages.
  std::string command() const;

  std::string Help() const;
  // The declared option closest to an unknown one: the dllm name of a
  // llama.cpp or Hugging Face spelling (-n, --temp, max_new_tokens), the
  // declared option with '_' for '-', else the nearest by edit distance;
  // "" when nothing is close.
  std::string Suggest(const std::string& unknown) const;

 private:
  struct Spec {
    std::vector<std::string> names;
    std::string metavar, help, default_value;
    bool is_flag = false;
  };
  const Spec* Find(const std::string& name) const;
  // "-m/--model DIR" (or "-m/--model").
  std::string Display(const Spec& s, bool with_metavar = true) const;
  std::string Key(const Spec& s) const { return s.names.back(); }

  std::string usage_, description_;
  std::vector<Spec> specs_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
  std::string positional_metavar_, positional_help_;
  bool allow_positional_ = false;
  int exit_code_ = 0;
};

// -t/--threads, declared and applied the same way by every command that
// computes: 0 (the default) = one thread per core. More threads than cores
// only wait on each other, so that is warned about on stderr.
void AddThreadsOption(Args& a);
void ApplyThreadsOption(const Args& a);

// --device cpu|cuda|cuda:N, the same in every command that loads a model
// to run it; DeviceOption checks the spelling (a UsageError) and returns it
// for LoadOptions (dllm/model.h).
void AddDeviceOption(Args& a);
std::string DeviceOption(const Args& a);

}  // namespace dllm::cli
