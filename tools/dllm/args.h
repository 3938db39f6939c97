// A small command-line option parser: declared options only, so a typo is an
// error, and --help is generated from the declarations.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace dllm::cli {

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
  // are an error rather than silently truncated.
  int64_t GetInt(const std::string& name, int64_t lo = INT32_MIN,
                 int64_t hi = INT32_MAX) const;
  double GetDouble(const std::string& name) const;
  bool GetFlag(const std::string& name) const;
  const std::vector<std::string>& Positional() const { return positional_; }

  std::string Help() const;

 private:
  struct Spec {
    std::vector<std::string> names;
    std::string metavar, help, default_value;
    bool is_flag = false;
  };
  const Spec* Find(const std::string& name) const;
  std::string Key(const Spec& s) const { return s.names.back(); }

  std::string usage_, description_;
  std::vector<Spec> specs_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
  std::string positional_metavar_, positional_help_;
  bool allow_positional_ = false;
  int exit_code_ = 0;
};

}  // namespace dllm::cli
